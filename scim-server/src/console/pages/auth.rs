//! Sign-in (OpenID Connect, or a one-time admin link) and sign-out.

use super::CsrfForm;
use crate::auth::secret::hash_secret;
use crate::console::db::LoginRow;
use crate::console::oidc::{OidcError, tenant_role};
use crate::console::roles::{Operator, Role};
use crate::console::session::{LOGIN_COOKIE, cookie, set_cookie};
use crate::console::views::bare_page;
use crate::console::{Console, ConsoleError};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode, header};
use maud::html;
use serde::Deserialize;

/// A started sign-in must come back within this many seconds.
const LOGIN_WINDOW_SECONDS: i64 = 600;

/// `?reason=` of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct SigninQuery {
    reason: Option<String>,
}

/// `GET /console/signin`.
pub async fn signin(State(console): State<Console>, Query(q): Query<SigninQuery>) -> Response {
    let notice = match q.reason.as_deref() {
        Some("expired") => Some(
            "Your session ended after a period without activity, or at its time limit. Sign in again.",
        ),
        Some("signedout") => Some("You are signed out."),
        _ => None,
    };
    bare_page(
        "Sign in",
        html! {
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            @if console.oidc().is_some() {
                p { "Sign in with your organisation account. Your console role comes from your groups." }
                p { a.button href="/console/auth/login" { "Sign in with your organisation account" } }
            } @else {
                p { "No sign-in provider is configured ([console.oidc] in the server's configuration)." }
                p { "Use the one-time admin sign-in link that " code { "scim-server serve" } " printed when it started; restart the server for a new one." }
            }
        },
    )
    .into_response()
}

/// The redirect URI of this console: configured, else this request's origin.
fn redirect_uri(console: &Console, headers: &HeaderMap) -> String {
    if let Some(url) = console.oidc_redirect_url() {
        return url.to_string();
    }
    let base = crate::http::extract::base_url(&console.app().settings, headers, None);
    let origin = url::Url::parse(&base)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or(base);
    format!("{origin}/console/auth/callback")
}

impl Console {
    fn oidc_redirect_url(&self) -> Option<&str> {
        self.config()
            .oidc
            .as_ref()
            .and_then(|o| o.redirect_url.as_deref())
    }
}

/// `GET /console/auth/login`: to the provider, with state, nonce and PKCE.
pub async fn login(
    State(console): State<Console>,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    let oidc = console
        .oidc()
        .ok_or_else(|| ConsoleError::NotFound("no sign-in provider is configured".into()))?;
    let started = oidc.start(&redirect_uri(&console, &headers)).await?;
    let now = console.now();
    console
        .db()
        .insert_login(
            &hash_secret(&started.state),
            &LoginRow {
                nonce: started.nonce,
                code_verifier: started.code_verifier,
                created_at: now,
            },
            now - LOGIN_WINDOW_SECONDS,
        )
        .await?;
    let cookie = set_cookie(
        LOGIN_COOKIE,
        &started.state,
        console.secure_cookies(),
        Some(LOGIN_WINDOW_SECONDS),
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Redirect::to(&started.authorization_url),
    )
        .into_response())
}

/// The provider's callback parameters.
#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /console/auth/callback`: redeem the code, verify the ID token, map the role, start a
/// session.
pub async fn callback(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(cb): Query<Callback>,
) -> Result<Response, ConsoleError> {
    let oidc = console
        .oidc()
        .ok_or_else(|| ConsoleError::NotFound("no sign-in provider is configured".into()))?;
    if let Some(error) = cb.error {
        let description = cb.error_description.unwrap_or_default();
        return Err(OidcError::Refused(format!("{error} {description}").trim().to_string()).into());
    }
    let (Some(code), Some(state)) = (cb.code, cb.state) else {
        return Err(ConsoleError::BadRequest(
            "the sign-in callback lacks its code or state; start again from the sign-in page"
                .into(),
        ));
    };
    // The state must be the one this browser was given (login CSRF, OpenID Connect Core
    // §3.1.2.1), and is good once.
    let bound = cookie(&headers, LOGIN_COOKIE)
        .is_some_and(|c| subtle::ConstantTimeEq::ct_eq(c.as_bytes(), state.as_bytes()).into());
    let login = console.db().take_login(&hash_secret(&state)).await?;
    let login = match login {
        Some(l) if bound && console.now() - l.created_at <= LOGIN_WINDOW_SECONDS => l,
        _ => {
            return Err(OidcError::Invalid(
                "this sign-in was not started in this browser, was already used, or took too \
                 long; start again from the sign-in page"
                    .into(),
            )
            .into());
        }
    };
    let identity = oidc
        .finish(
            &code,
            &redirect_uri(&console, &headers),
            &login.code_verifier,
            &login.nonce,
        )
        .await?;
    let Some((tenant, role)) = tenant_role(console.config(), console.default_tenant(), &identity)
    else {
        tracing::warn!(subject = %identity.subject, "console sign-in without a role");
        let page = bare_page(
            "No console role",
            html! {
                p.notice.warn role="alert" {
                    "You signed in as " (identity.display_name) ", but none of your groups or app roles grants a console role. "
                    "Ask an administrator to add one of them to [console.roles.<tenant>]."
                }
            },
        );
        return Ok((StatusCode::FORBIDDEN, page).into_response());
    };
    let operator = Operator {
        tenant,
        subject: identity.subject,
        display_name: identity.display_name,
        role,
    };
    let session_cookie = console.start_session_as(&operator, &identity.names).await?;
    let clear_login = set_cookie(LOGIN_COOKIE, "", console.secure_cookies(), Some(0));
    let mut response = Redirect::to("/console").into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        session_cookie
            .parse()
            .map_err(|_| ConsoleError::Internal("cookie".into()))?,
    );
    h.append(
        header::SET_COOKIE,
        clear_login
            .parse()
            .map_err(|_| ConsoleError::Internal("cookie".into()))?,
    );
    Ok(response)
}

/// `GET /console/auth/link/{secret}`: a page with one button, so that a link scanner fetching
/// the URL does not use up the link.
pub async fn link_page(Path(secret): Path<String>) -> Response {
    bare_page(
        "One-time sign-in",
        html! {
            p { "This link signs you in once as the console's administrator." }
            form method="post" action=(format!("/console/auth/link/{secret}")) {
                button type="submit" { "Sign in as administrator" }
            }
        },
    )
    .into_response()
}

/// `POST /console/auth/link/{secret}`: uses the link, starts an admin session.
pub async fn link_use(
    State(console): State<Console>,
    Path(secret): Path<String>,
) -> Result<Response, ConsoleError> {
    let tenant = console
        .db()
        .use_link(&hash_secret(&secret), console.now())
        .await?
        .ok_or_else(|| {
            ConsoleError::SignIn(OidcError::Invalid(
                "this sign-in link is unknown, expired or already used; restart the server for a new one".into(),
            ))
        })?;
    let operator = Operator {
        tenant,
        subject: "one-time-link".into(),
        display_name: "first-start administrator".into(),
        role: Role::Admin,
    };
    let session_cookie = console.start_session(&operator).await?;
    Ok((
        [(header::SET_COOKIE, session_cookie)],
        Redirect::to("/console"),
    )
        .into_response())
}

/// `POST /console/signout`.
pub async fn signout(
    State(console): State<Console>,
    form: CsrfForm<std::collections::HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let cookie = console.end_session(&form.session).await?;
    Ok((
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/console/signin?reason=signedout"),
    )
        .into_response())
}
