//! The operator console at `/console`: server-rendered HTML for the people who run provisioning.
//!
//! - [`config`]: the `[console]` table (timeouts, the OpenID Connect provider, role mappings);
//! - [`roles`]: roles, actions, and the [`roles::Permit`] only [`roles::authorize`] makes;
//! - [`service`]: what each page reads and each action does, authorised per role, on the same
//!   [`crate::store::Store`] and token functions as the SCIM API and the CLI;
//! - [`actions`]: new hire, update, termination and rehire through the one write pipeline,
//!   dated ones through the HR intake's queue;
//! - [`queues`]: the HR intake's jobs and the Graph bridge's queue, plans and dead letters,
//!   through their own APIs; retrying a dead letter;
//! - [`session`] and [`oidc`]: sign-in (authorization code + PKCE, or a one-time admin link),
//!   database sessions with idle and absolute timeouts, CSRF tokens;
//! - [`upload`]: CSV uploads (preview, run, progress, per-row report) through the HR intake's
//!   own import function and job queue;
//! - [`admin`]: tenants, the Graph rules in effect and the configuration with every secret
//!   redacted, for admins of the server's default tenant;
//! - [`db`]: the console's tables on a pool of its own;
//! - [`views`], [`pages`], [`assets`]: maud templates, thin handlers, embedded static files.
//!
//! Invariants: every page but sign-in needs a valid session; every POST carries the session's
//! CSRF token; every action is authorised in [`service`] (never by hiding a button) and
//! recorded in `console_actions` with the person's identity; no inline script or style (the
//! Content-Security-Policy forbids it); every form works without JavaScript.

pub mod actions;
pub mod admin;
pub mod assets;
pub mod config;
pub mod db;
pub mod governance;
pub mod oidc;
pub mod pages;
pub mod queues;
pub mod roles;
pub mod service;
pub mod session;
pub mod upload;
pub mod views;

pub use config::ConsoleConfig;

use crate::state::AppState;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use db::ConsoleDb;
use http::{HeaderValue, StatusCode, header};
use std::io::Write;
use std::sync::{Arc, OnceLock};

/// The console's state: the server's [`AppState`] plus the console's own parts.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

struct Inner {
    app: AppState,
    db: ConsoleDb,
    config: ConsoleConfig,
    oidc: Option<oidc::OidcClient>,
    default_tenant: String,
    bridge: Option<scim_graph_bridge::store::BridgeStore>,
    server: OnceLock<admin::ServerView>,
    hygiene: governance::HygieneCache,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl axum::extract::FromRef<Console> for AppState {
    fn from_ref(c: &Console) -> AppState {
        c.inner.app.clone()
    }
}

impl Console {
    /// A console over `app`, with its tables on `db`, and the Graph bridge's tables when
    /// `[graph]` is configured.
    pub fn new(
        app: AppState,
        db: ConsoleDb,
        config: ConsoleConfig,
        default_tenant: impl Into<String>,
        bridge: Option<scim_graph_bridge::store::BridgeStore>,
    ) -> anyhow::Result<Self> {
        let oidc = match &config.oidc {
            Some(c) => Some(oidc::OidcClient::new(c.clone(), app.clock.clone())?),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                app,
                db,
                config,
                oidc,
                default_tenant: default_tenant.into(),
                bridge,
                server: OnceLock::new(),
                hygiene: governance::HygieneCache::default(),
            }),
        })
    }

    /// The server's state.
    pub fn app(&self) -> &AppState {
        &self.inner.app
    }

    /// The console's tables.
    pub fn db(&self) -> &ConsoleDb {
        &self.inner.db
    }

    /// The `[console]` configuration.
    pub fn config(&self) -> &ConsoleConfig {
        &self.inner.config
    }

    /// The OpenID Connect client, when a provider is configured.
    pub fn oidc(&self) -> Option<&oidc::OidcClient> {
        self.inner.oidc.as_ref()
    }

    /// The tenant of one-time links and the first tenant tried at sign-in.
    pub fn default_tenant(&self) -> &str {
        &self.inner.default_tenant
    }

    /// Whether `[graph]` is configured (the dashboard says so).
    pub fn bridge_configured(&self) -> bool {
        self.inner.bridge.is_some()
    }

    /// The Graph bridge's tables (plans, dead letters, queue), when `[graph]` is configured.
    pub fn bridge(&self) -> Option<&scim_graph_bridge::store::BridgeStore> {
        self.inner.bridge.as_ref()
    }

    /// Gives the admin pages the server's configuration (redacted) and Graph rules; `mount`
    /// does this at start-up. The first call wins; without one the admin pages say the
    /// configuration is unknown.
    pub fn set_server_view(&self, view: admin::ServerView) {
        let _ = self.inner.server.set(view);
    }

    /// What the admin pages show about the server, once [`Console::set_server_view`] ran.
    pub fn server_view(&self) -> Option<&admin::ServerView> {
        self.inner.server.get()
    }

    /// The latest hygiene report per tenant (the Hygiene page).
    pub fn hygiene_cache(&self) -> &governance::HygieneCache {
        &self.inner.hygiene
    }

    /// Cookies get `Secure` (and the `__Host-` prefix) when the console is reached over HTTPS:
    /// the server terminates TLS, or its public URL is `https`.
    pub fn secure_cookies(&self) -> bool {
        let s = &self.inner.app.settings;
        s.tls
            || s.public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
    }

    /// Now, in Unix seconds, from the server's clock.
    pub fn now(&self) -> i64 {
        self.inner.app.clock.now().unix_timestamp()
    }

    /// Creates a one-time admin sign-in link for the default tenant; returns its secret (the
    /// path is `/console/auth/link/{secret}`), valid `link_valid_minutes`, usable once.
    pub async fn issue_admin_link(&self) -> anyhow::Result<String> {
        let secret = crate::auth::secret::generate_secret("cl_");
        let now = self.now();
        let valid = i64::try_from(self.config().link_valid_minutes).unwrap_or(60) * 60;
        self.db()
            .insert_link(
                &crate::auth::secret::hash_secret(secret.expose()),
                self.default_tenant(),
                now,
                now + valid,
            )
            .await?;
        Ok(secret.expose().to_string())
    }
}

/// Why a console request failed; each becomes a page with the right status.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No valid session: to the sign-in page (`signin`, or `expired` when a session timed out).
    #[error("sign in to continue")]
    SignedOut(&'static str),
    /// The role may not take the action.
    #[error(transparent)]
    Forbidden(#[from] roles::Forbidden),
    /// Refused for a reason other than the role (an item assigned to another reviewer, an
    /// approver a time-bound grant's policy does not name, a server-wide page asked for from
    /// another tenant than the server's default one): 403 with the reason.
    #[error("{0}")]
    Refused(String),
    /// A form without the session's CSRF token.
    #[error(
        "this form was not sent from a console page of your current session; reload the page and try again"
    )]
    Csrf,
    /// Nothing by that id.
    #[error("{0}")]
    NotFound(String),
    /// Bad input the person can correct.
    #[error("{0}")]
    BadRequest(String),
    /// An upload larger than the server accepts.
    #[error("{0}")]
    TooLarge(String),
    /// Sign-in failed.
    #[error(transparent)]
    SignIn(#[from] oidc::OidcError),
    /// A failure of ours (logged; the page says only that something went wrong).
    #[error("internal error")]
    Internal(String),
}

impl From<crate::store::StoreError> for ConsoleError {
    fn from(e: crate::store::StoreError) -> Self {
        ConsoleError::Internal(e.to_string())
    }
}

impl From<anyhow::Error> for ConsoleError {
    fn from(e: anyhow::Error) -> Self {
        ConsoleError::Internal(format!("{e:#}"))
    }
}

impl From<scim_core::Error> for ConsoleError {
    fn from(e: scim_core::Error) -> Self {
        match e.status() {
            404 => ConsoleError::NotFound(e.detail().to_string()),
            s if s < 500 => ConsoleError::BadRequest(e.detail().to_string()),
            _ => ConsoleError::Internal(e.detail().to_string()),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = match &self {
            ConsoleError::SignedOut(reason) => {
                return Redirect::to(&format!("/console/signin?reason={reason}")).into_response();
            }
            ConsoleError::Forbidden(_) | ConsoleError::Csrf | ConsoleError::Refused(_) => {
                StatusCode::FORBIDDEN
            }
            ConsoleError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::SignIn(oidc::OidcError::Provider(_)) => StatusCode::BAD_GATEWAY,
            ConsoleError::SignIn(_) => StatusCode::UNAUTHORIZED,
            ConsoleError::Internal(cause) => {
                tracing::error!(%cause, "console request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = match &self {
            ConsoleError::Internal(_) => {
                "Something went wrong on the server; it has been logged. Try again, or ask an \
                 administrator to look at the server log."
                    .to_string()
            }
            other => other.to_string(),
        };
        (status, views::error_page(status, &message)).into_response()
    }
}

/// Security headers on every console response: a strict CSP (no inline script or style, no
/// framing, forms only to the console), no MIME sniffing, no referrer (a one-time link is a
/// secret in a URL), and no caching of pages (they carry personal data and CSRF tokens).
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/console/assets/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !is_asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The console's routes, under `/console`.
pub fn router(console: Console) -> Router {
    // A multipart body carries the file and a few small fields: room for both, so that the
    // file's own limit (`inbound.max_import_bytes`) is the one a person meets.
    let upload_limit = upload::max_file_bytes(&console).saturating_add(64 * 1024);
    Router::new()
        .route("/console", get(pages::dashboard::show))
        .route(
            "/console/",
            get(|| async { Redirect::permanent("/console") }),
        )
        .route("/console/signin", get(pages::auth::signin))
        .route("/console/signout", post(pages::auth::signout))
        .route("/console/auth/login", get(pages::auth::login))
        .route("/console/auth/callback", get(pages::auth::callback))
        .route(
            "/console/auth/link/{secret}",
            get(pages::auth::link_page).post(pages::auth::link_use),
        )
        .route("/console/people", get(pages::directory::people))
        .route(
            "/console/people/new",
            get(pages::people::new_hire).post(pages::people::hire),
        )
        .route("/console/people/{id}", get(pages::directory::person))
        .route(
            "/console/people/{id}/update",
            get(pages::people::edit).post(pages::people::update),
        )
        .route(
            "/console/people/{id}/terminate",
            get(pages::people::confirm_terminate).post(pages::people::terminate),
        )
        .route(
            "/console/people/{id}/rehire",
            get(pages::people::confirm_rehire).post(pages::people::rehire),
        )
        .route("/console/intake", get(pages::queues::intake))
        .route("/console/intake/{id}", get(pages::queues::intake_job))
        .route(
            "/console/intake/{id}/retry",
            get(pages::queues::confirm_intake_retry).post(pages::queues::retry_intake),
        )
        .route("/console/bridge", get(pages::queues::bridge))
        .route(
            "/console/bridge/dead-letters/{id}/retry",
            get(pages::queues::confirm_bridge_retry).post(pages::queues::retry_bridge),
        )
        .route("/console/groups", get(pages::directory::groups))
        .route("/console/groups/{id}", get(pages::directory::group))
        .route(
            "/console/admin/tokens",
            get(pages::tokens::list).post(pages::tokens::create),
        )
        .route(
            "/console/admin/tokens/{id}/revoke",
            get(pages::tokens::confirm_revoke).post(pages::tokens::revoke),
        )
        .route(
            "/console/upload",
            get(pages::upload::form)
                .post(pages::upload::run)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route(
            "/console/upload/preview",
            post(pages::upload::preview).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/console/upload/jobs/{id}", get(pages::upload::job))
        .route(
            "/console/upload/jobs/{id}/progress",
            get(pages::upload::progress),
        )
        .route(
            "/console/upload/jobs/{id}/report.csv",
            get(pages::upload::report),
        )
        .route("/console/admin", get(pages::admin::index))
        .route(
            "/console/admin/tenants",
            get(pages::admin::tenants).post(pages::admin::create_tenant),
        )
        .route("/console/admin/rules", get(pages::admin::rules))
        .route("/console/admin/config", get(pages::admin::config))
        .route("/console/activity", get(pages::dashboard::activity))
        .route("/console/reviews", get(pages::reviews::inbox))
        .route("/console/reviews/campaigns", get(pages::reviews::campaigns))
        .route(
            "/console/reviews/campaigns/{id}",
            get(pages::reviews::campaign),
        )
        .route(
            "/console/reviews/{review}/decisions",
            post(pages::reviews::decide_selected),
        )
        .route(
            "/console/reviews/{review}/items/{item}",
            get(pages::reviews::item).post(pages::reviews::decide_item),
        )
        .route(
            "/console/jit",
            get(pages::access::grants).post(pages::access::request),
        )
        .route("/console/jit/{id}", get(pages::access::grant))
        .route("/console/jit/{id}/approve", post(pages::access::approve))
        .route("/console/jit/{id}/deny", post(pages::access::deny))
        .route(
            "/console/hygiene",
            get(pages::access::hygiene).post(pages::access::refresh_hygiene),
        )
        .route("/console/evidence", get(pages::access::evidence_list))
        .route(
            "/console/evidence/export",
            get(pages::access::evidence_export),
        )
        .route("/console/assets/{name}", get(assets::serve))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(console)
}

/// For `serve`: the console's router when `[console]` enables it (the default), else an empty
/// router. Opens the console's pool; with no sign-in provider configured, creates a one-time
/// admin sign-in link and prints it on standard output (like the first-start token).
pub async fn mount(config: &crate::config::Config, app: &AppState) -> anyhow::Result<Router> {
    let console_config = config.console_config()?;
    if !console_config.enabled {
        return Ok(Router::new());
    }
    let db = match ConsoleDb::open(&config.database_url).await {
        Ok(db) => db,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "the console is not served");
            return Ok(Router::new());
        }
    };
    let bridge = match crate::bridge::graph_config(config)? {
        Some(_) => Some(crate::bridge::open_bridge_store(&config.database_url).await?),
        None => None,
    };
    let console = Console::new(
        app.clone(),
        db,
        console_config,
        config.default_tenant.clone(),
        bridge,
    )?;
    console.set_server_view(admin::ServerView::from_config(config));
    if console.oidc().is_none() {
        let secret = console.issue_admin_link().await?;
        let origin = match &config.public_url {
            Some(url) => url::Url::parse(url)?.origin().ascii_serialization(),
            None => format!("http://{}", config.listen),
        };
        let minutes = console.config().link_valid_minutes;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "The console has no sign-in provider ([console.oidc]), so a one-time admin sign-in \
             link was created for tenant {:?}.\nIt works once, for {minutes} minutes (restart \
             the server for a new one):\n\n    {origin}/console/auth/link/{secret}\n",
            config.default_tenant
        )?;
        out.flush()?;
    }
    Ok(router(console))
}
