//! Which Graph answers mean "done", "already done", "try again" or "give up".
//!
//! Graph's directory error codes are broad (`Request_BadRequest` covers many
//! cases), so some cases are told apart by status, code *and* a message
//! substring. All such strings live in [`KNOWN`], each with a test.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The operation a response belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OpKind {
    /// `POST /users`.
    CreateUser,
    /// `PATCH /users/{id}`.
    UpdateUser,
    /// `PUT /users/{id}/manager/$ref`.
    SetManager,
    /// `POST /users/{id}/revokeSignInSessions`.
    RevokeSessions,
    /// `POST /groups/{id}/members/$ref`.
    AddMember,
    /// `DELETE /groups/{id}/members/{uid}/$ref`.
    RemoveMember,
    /// `POST /users/{id}/assignLicense`.
    AssignLicense,
    /// `POST /roleManagement/directory/roleAssignments`.
    AddRole,
    /// `DELETE /roleManagement/directory/roleAssignments/{id}`.
    RemoveRole,
    /// `DELETE /users/{id}`.
    DeleteUser,
}

/// How a response is to be treated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The call did what was asked.
    Done,
    /// The target state already held (e.g. "already a member").
    AlreadyDone {
        /// Why this counts as done.
        reason: String,
    },
    /// The call failed.
    Failed {
        /// `true`: retrying will not help (no seats, usage location, permissions).
        permanent: bool,
        /// HTTP status.
        http_status: u16,
        /// Graph error code.
        code: String,
        /// Graph error message.
        message: String,
    },
}

impl Outcome {
    /// Done or already done.
    pub fn is_success(&self) -> bool {
        !matches!(self, Outcome::Failed { .. })
    }
    /// A failure that may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Outcome::Failed {
                permanent: false,
                ..
            }
        )
    }
}

/// What a known signature means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meaning {
    /// Count as success.
    AlreadyDone,
    /// A business-rule failure; record it, do not retry.
    Permanent,
    /// Retry later (after re-reading state).
    Transient,
}

/// `(operation, status, code or "" for any, message substring or "" for any, meaning)`.
pub const KNOWN: &[(OpKind, u16, &str, &str, Meaning)] = &[
    (
        OpKind::AddMember,
        400,
        "Request_BadRequest",
        "added object references already exist",
        Meaning::AlreadyDone,
    ),
    (OpKind::RemoveMember, 404, "", "", Meaning::AlreadyDone),
    (
        OpKind::RemoveMember,
        400,
        "Request_BadRequest",
        "removed object references do not exist",
        Meaning::AlreadyDone,
    ),
    (
        OpKind::AddRole,
        400,
        "Request_BadRequest",
        "conflicting object with one or more of the specified property values",
        Meaning::AlreadyDone,
    ),
    (OpKind::RemoveRole, 404, "", "", Meaning::AlreadyDone),
    (OpKind::DeleteUser, 404, "", "", Meaning::AlreadyDone),
    (
        OpKind::AssignLicense,
        400,
        "Request_BadRequest",
        "does not have a corresponding license",
        Meaning::AlreadyDone,
    ),
    (
        OpKind::AssignLicense,
        400,
        "Request_BadRequest",
        "invalid usage location",
        Meaning::Permanent,
    ),
    (
        OpKind::AssignLicense,
        400,
        "Request_BadRequest",
        "does not have any available licenses",
        Meaning::Permanent,
    ),
    (
        OpKind::AssignLicense,
        400,
        "",
        "CountViolation",
        Meaning::Permanent,
    ),
    (
        OpKind::AssignLicense,
        400,
        "",
        "inherited from a group membership",
        Meaning::Permanent,
    ),
    (
        OpKind::CreateUser,
        400,
        "Request_BadRequest",
        "same value for property userPrincipalName already exists",
        Meaning::Transient,
    ),
];

/// Graph error `(code, message)` from a body.
pub fn error_parts(body: &Value) -> (String, String) {
    let e = &body["error"];
    (
        e["code"].as_str().unwrap_or("").to_owned(),
        e["message"].as_str().unwrap_or("").to_owned(),
    )
}

/// Classifies a final response to `op`.
pub fn classify(op: OpKind, status: u16, body: &Value) -> Outcome {
    if (200..300).contains(&status) {
        return Outcome::Done;
    }
    let (code, message) = error_parts(body);
    let known = KNOWN.iter().find(|(o, s, c, m, _)| {
        *o == op
            && *s == status
            && (c.is_empty() || *c == code)
            && (m.is_empty() || message.to_lowercase().contains(&m.to_lowercase()))
    });
    let failed = |permanent| Outcome::Failed {
        permanent,
        http_status: status,
        code: code.clone(),
        message: message.clone(),
    };
    match known.map(|k| k.4) {
        Some(Meaning::AlreadyDone) => Outcome::AlreadyDone {
            reason: format!("{status} {code}: {message}"),
        },
        Some(Meaning::Permanent) => failed(true),
        Some(Meaning::Transient) => failed(false),
        None => match status {
            408 | 409 | 412 | 423 | 429 | 500 | 502 | 503 | 504 => failed(false),
            404 => failed(false),
            _ => failed(true),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(code: &str, msg: &str) -> Value {
        json!({"error": {"code": code, "message": msg}})
    }

    #[test]
    fn known_signatures() {
        let cases: &[(OpKind, u16, &str, &str, &str)] = &[
            (
                OpKind::AddMember,
                400,
                "Request_BadRequest",
                "One or more added object references already exist for the following modified properties: 'members'.",
                "already",
            ),
            (
                OpKind::AddMember,
                400,
                "Request_BadRequest",
                "Invalid object identifier",
                "permanent",
            ),
            (
                OpKind::AddMember,
                404,
                "Request_ResourceNotFound",
                "Resource 'x' does not exist",
                "transient",
            ),
            (
                OpKind::RemoveMember,
                404,
                "Request_ResourceNotFound",
                "One or more removed object references do not exist for the following modified properties: 'members'.",
                "already",
            ),
            (
                OpKind::RemoveMember,
                400,
                "Request_BadRequest",
                "One or more removed object references do not exist for the following modified properties: 'members'.",
                "already",
            ),
            (
                OpKind::AddRole,
                400,
                "Request_BadRequest",
                "A conflicting object with one or more of the specified property values is present in the directory.",
                "already",
            ),
            (
                OpKind::RemoveRole,
                404,
                "Request_ResourceNotFound",
                "",
                "already",
            ),
            (
                OpKind::DeleteUser,
                404,
                "Request_ResourceNotFound",
                "",
                "already",
            ),
            (
                OpKind::AssignLicense,
                400,
                "Request_BadRequest",
                "License assignment cannot be done for user with invalid usage location.",
                "permanent",
            ),
            (
                OpKind::AssignLicense,
                400,
                "Request_BadRequest",
                "Subscription with SKU abc does not have any available licenses.",
                "permanent",
            ),
            (
                OpKind::AssignLicense,
                400,
                "Request_BadRequest",
                "User license is inherited from a group membership and it cannot be removed directly from the user.",
                "permanent",
            ),
            (
                OpKind::AssignLicense,
                400,
                "Request_BadRequest",
                "User does not have a corresponding license.",
                "already",
            ),
            (
                OpKind::CreateUser,
                400,
                "Request_BadRequest",
                "Another object with the same value for property userPrincipalName already exists.",
                "transient",
            ),
            (
                OpKind::UpdateUser,
                429,
                "TooManyRequests",
                "Please retry again later.",
                "transient",
            ),
            (
                OpKind::UpdateUser,
                503,
                "serviceNotAvailable",
                "",
                "transient",
            ),
            (
                OpKind::UpdateUser,
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
                "permanent",
            ),
            (OpKind::UpdateUser, 204, "", "", "done"),
        ];
        for (op, status, code, msg, want) in cases {
            let got = match classify(*op, *status, &body(code, msg)) {
                Outcome::Done => "done",
                Outcome::AlreadyDone { .. } => "already",
                Outcome::Failed {
                    permanent: true, ..
                } => "permanent",
                Outcome::Failed {
                    permanent: false, ..
                } => "transient",
            };
            assert_eq!(got, *want, "{op:?} {status} {msg}");
        }
    }
}
