//! Thin handlers: extract the session and the form, call one [`super::service`] function,
//! render the result with [`super::views`].

pub mod access;
pub mod admin;
pub mod auth;
pub mod dashboard;
pub mod directory;
pub mod people;
pub mod queues;
pub mod reviews;
pub mod tokens;
pub mod upload;

use super::session::Session;
use super::{Console, ConsoleError};
use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use serde::de::DeserializeOwned;

/// Largest console form body accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A form posted by a signed-in person, accepted only with the session's CSRF token (field
/// `csrf`). Every console POST handler takes one, so no action can skip the check.
#[derive(Debug)]
pub struct CsrfForm<T> {
    /// The session that posted.
    pub session: Session,
    /// The form's other fields.
    pub form: T,
}

impl<S, T> FromRequest<S> for CsrfForm<T>
where
    S: Send + Sync,
    Console: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = ConsoleError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session =
            <Session as axum::extract::FromRequestParts<S>>::from_request_parts(&mut parts, state)
                .await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| ConsoleError::BadRequest("the form is too large".into()))?;
        check_csrf(&session, &bytes)?;
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ConsoleError::BadRequest(format!("the form could not be read: {e}")))?;
        Ok(Self { session, form })
    }
}

fn check_csrf(session: &Session, body: &Bytes) -> Result<(), ConsoleError> {
    let submitted = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    session.check_csrf(submitted.as_deref())
}
