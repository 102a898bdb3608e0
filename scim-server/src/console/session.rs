//! Console sessions: a random secret in an HttpOnly, SameSite=Lax cookie (`Secure` and the
//! `__Host-` prefix when the console is served over HTTPS), its SHA-256 in `console_sessions`,
//! an idle and an absolute timeout measured on the server's [`crate::clock::Clock`], and one CSRF
//! token per session that every form carries (the synchronizer-token pattern).
//!
//! SameSite=Lax rather than Strict: a person following a link to a console page from mail or
//! chat arrives signed in. Lax still withholds the cookie from cross-site POSTs, and the CSRF
//! token refuses a forged form whatever the browser does with cookies.

use super::db::SessionRow;
use super::roles::{Operator, Role};
use super::{Console, ConsoleError};
use crate::auth::secret::{generate_secret, hash_secret};
use axum::extract::{FromRef, FromRequestParts};
use http::HeaderMap;
use http::request::Parts;
use subtle::ConstantTimeEq;

/// The session cookie's name over plain HTTP.
pub const COOKIE: &str = "scim_console";
/// The session cookie's name over HTTPS: the `__Host-` prefix pins it to this host and path `/`.
pub const SECURE_COOKIE: &str = "__Host-scim_console";
/// The cookie binding an OpenID Connect sign-in to the browser that started it.
pub const LOGIN_COOKIE: &str = "scim_console_login";

/// A signed-in browser, checked on every request.
#[derive(Debug, Clone)]
pub struct Session {
    /// The person and their role.
    pub operator: Operator,
    /// The token every form of this session carries.
    pub csrf_token: String,
    /// The request id of the current request.
    pub request_id: Option<String>,
    id_hash: String,
}

impl Session {
    /// Checks a form's CSRF token against the session's (constant time).
    pub fn check_csrf(&self, submitted: Option<&str>) -> Result<(), ConsoleError> {
        match submitted {
            Some(token) if bool::from(token.as_bytes().ct_eq(self.csrf_token.as_bytes())) => Ok(()),
            _ => Err(ConsoleError::Csrf),
        }
    }

    /// The hash the session is stored under.
    pub(crate) fn id_hash(&self) -> &str {
        &self.id_hash
    }
}

/// Reads a cookie from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value with the console's attributes; `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

impl Console {
    /// The session cookie's name for this console.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure_cookies() {
            SECURE_COOKIE
        } else {
            COOKIE
        }
    }

    /// Starts a session for `operator`: stores it and returns the `Set-Cookie` value.
    pub async fn start_session(&self, operator: &Operator) -> Result<String, ConsoleError> {
        self.start_session_as(operator, &Default::default()).await
    }

    /// [`Console::start_session`] for a person the ID token names (`email`,
    /// `preferred_username`): the names their review items and approvals are matched by
    /// ([`super::governance`]).
    pub async fn start_session_as(
        &self,
        operator: &Operator,
        names: &super::governance::ReviewerIdentity,
    ) -> Result<String, ConsoleError> {
        let now = self.now();
        let secret = generate_secret("cs_");
        let row = SessionRow {
            tenant_id: operator.tenant.clone(),
            subject: operator.subject.clone(),
            display_name: operator.display_name.clone(),
            role: operator.role.as_str().to_string(),
            csrf_token: generate_secret("").expose().to_string(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.config().absolute_timeout().whole_seconds(),
        };
        let id_hash = hash_secret(secret.expose());
        self.db().insert_session(&id_hash, &row).await?;
        if names.email.is_some() || names.username.is_some() {
            self.db().set_session_names(&id_hash, names).await?;
        }
        tracing::info!(
            tenant = %operator.tenant,
            subject = %operator.subject,
            role = %operator.role,
            "console sign-in"
        );
        Ok(set_cookie(
            self.cookie_name(),
            secret.expose(),
            self.secure_cookies(),
            None,
        ))
    }

    /// The session a request's cookie names, if it is valid now. An expired session is deleted.
    pub async fn session(&self, headers: &HeaderMap) -> Result<Session, ConsoleError> {
        let secret =
            cookie(headers, self.cookie_name()).ok_or(ConsoleError::SignedOut("signin"))?;
        let id_hash = hash_secret(secret);
        let row = self
            .db()
            .session(&id_hash)
            .await?
            .ok_or(ConsoleError::SignedOut("signin"))?;
        let now = self.now();
        let idle_over = now > row.last_seen_at + self.config().idle_timeout().whole_seconds();
        if now > row.expires_at || idle_over {
            self.db().delete_session(&id_hash, now).await?;
            return Err(ConsoleError::SignedOut("expired"));
        }
        let role = Role::parse(&row.role).ok_or(ConsoleError::SignedOut("signin"))?;
        // One write a minute at most keeps the idle clock right without a write per page.
        if now - row.last_seen_at >= 60 {
            self.db().touch_session(&id_hash, now).await?;
        }
        Ok(Session {
            operator: Operator {
                tenant: row.tenant_id,
                subject: row.subject,
                display_name: row.display_name,
                role,
            },
            csrf_token: row.csrf_token,
            request_id: crate::http::extract::request_id(headers),
            id_hash,
        })
    }

    /// Ends the session and returns the `Set-Cookie` value that deletes the cookie.
    pub async fn end_session(&self, session: &Session) -> Result<String, ConsoleError> {
        self.db()
            .delete_session(session.id_hash(), self.now())
            .await?;
        Ok(set_cookie(
            self.cookie_name(),
            "",
            self.secure_cookies(),
            Some(0),
        ))
    }
}

impl<S> FromRequestParts<S> for Session
where
    S: Send + Sync,
    Console: FromRef<S>,
{
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Console::from_ref(state).session(&parts.headers).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.append("cookie", "a=1; scim_console_login=x".parse().unwrap());
        h.append("cookie", "scim_console=s3cret".parse().unwrap());
        assert_eq!(cookie(&h, COOKIE), Some("s3cret"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), Some("x"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn cookie_attributes() {
        assert_eq!(
            set_cookie(SECURE_COOKIE, "v", true, None),
            "__Host-scim_console=v; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            set_cookie(COOKIE, "", false, Some(0)),
            "scim_console=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
        );
    }
}
