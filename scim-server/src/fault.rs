//! Where the cause of a server-side failure goes: recorded where it happens (a store error, a
//! panic, a failed Bulk operation) and logged once, by the HTTP layer
//! ([`crate::http::error::log_failures`]), on one line with the request id and the status. Outside
//! a request (the CLI, the bridge worker) a recorded cause is logged at once.

use std::cell::RefCell;
use std::fmt::Display;
use std::future::Future;

tokio::task_local! {
    static CAUSES: RefCell<Vec<String>>;
}

/// Records the cause of a failure the client sees only as a generic 5xx.
pub fn record(cause: impl Display) {
    let text = cause.to_string();
    if CAUSES
        .try_with(|c| c.borrow_mut().push(text.clone()))
        .is_err()
    {
        tracing::error!(cause = %text, "failure outside a request");
    }
}

/// Runs `fut` collecting the causes recorded while it runs; returns its output and them.
pub async fn collect<F: Future>(fut: F) -> (F::Output, Vec<String>) {
    CAUSES
        .scope(RefCell::new(Vec::new()), async move {
            let out = fut.await;
            let causes = CAUSES.with(|c| c.take());
            (out, causes)
        })
        .await
}
