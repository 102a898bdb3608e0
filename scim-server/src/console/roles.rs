//! Console roles, the actions they may take, and the permit an action needs.
//!
//! Authorisation is decided here, on the server, for every action: a page may hide a button a
//! role cannot use, but hiding is a courtesy, never the check. Code that performs or records an
//! action needs a [`Permit`], and only [`authorize`] makes one (lldap's habit: a capability is a
//! value that authorisation creates, not a struct anyone can fill).

use std::fmt;

/// A console role, from the ID token's groups or app roles (`[console.roles.<tenant>]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads everything the console shows; takes no action.
    Viewer,
    /// Runs joiner, mover and leaver actions and retries stuck work.
    Operator,
    /// Decides access reviews and approvals.
    Approver,
    /// Everything, including credentials and configuration.
    Admin,
}

impl Role {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// The role named `s`, as stored.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "approver" => Some(Role::Approver),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a person does in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// See the dashboard, people, groups and their timelines.
    ViewDirectory,
    /// See the credentials of the tenant (ids, labels, dates; never secrets).
    ViewTokens,
    /// Create a bearer token (its secret is shown once).
    CreateToken,
    /// Revoke a bearer token.
    RevokeToken,
    /// A new hire (joiner): create a person, active now or from a start date.
    Hire,
    /// Update a person (mover): department, title, manager, employee id.
    Update,
    /// Terminate a person (leaver), now or at a date.
    Terminate,
    /// Rehire a former employee, now or at a date.
    Rehire,
    /// Queue an HR intake dead letter again.
    RetryIntakeJob,
    /// Put a Graph bridge dead letter back on the bridge's queue.
    RetryBridgeWork,
    /// Preview a CSV upload (each row's outcome; nothing written).
    PreviewImport,
    /// Upload a CSV file of employees as an HR intake job.
    RunImport,
    /// See the server's tenants, the Graph rules in effect and the configuration (secrets
    /// redacted).
    ViewAdmin,
    /// Create a tenant.
    CreateTenant,
    /// See the governance pages: one's review inbox, time-bound grants, hygiene, leaver
    /// evidence (and download it).
    ViewGovernance,
    /// See every access review campaign of the tenant with its items.
    ViewCampaigns,
    /// Decide access review items assigned to oneself (keep or revoke, with a justification).
    DecideReview,
    /// Ask for a time-bound grant for a person.
    RequestGrant,
    /// Approve or deny a pending time-bound grant.
    DecideGrant,
}

impl Action {
    /// The name recorded in the console's action log.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ViewDirectory => "view_directory",
            Action::ViewTokens => "view_tokens",
            Action::CreateToken => "create_token",
            Action::RevokeToken => "revoke_token",
            Action::Hire => "hire",
            Action::Update => "update",
            Action::Terminate => "terminate",
            Action::Rehire => "rehire",
            Action::RetryIntakeJob => "retry_intake_job",
            Action::RetryBridgeWork => "retry_bridge_work",
            Action::PreviewImport => "preview_import",
            Action::RunImport => "run_import",
            Action::ViewAdmin => "view_admin",
            Action::CreateTenant => "create_tenant",
            Action::ViewGovernance => "view_governance",
            Action::ViewCampaigns => "view_campaigns",
            Action::DecideReview => "decide_review",
            Action::RequestGrant => "request_grant",
            Action::DecideGrant => "decide_grant",
        }
    }

    /// Every action, for tables and tests that cover each.
    pub const ALL: &'static [Action] = &[
        Action::ViewDirectory,
        Action::ViewTokens,
        Action::CreateToken,
        Action::RevokeToken,
        Action::Hire,
        Action::Update,
        Action::Terminate,
        Action::Rehire,
        Action::RetryIntakeJob,
        Action::RetryBridgeWork,
        Action::ViewGovernance,
        Action::ViewCampaigns,
        Action::DecideReview,
        Action::RequestGrant,
        Action::DecideGrant,
        Action::PreviewImport,
        Action::RunImport,
        Action::ViewAdmin,
        Action::CreateTenant,
    ];

    /// The roles that may take this action.
    pub fn allowed_roles(self) -> &'static [Role] {
        const EVERYONE: &[Role] = &[Role::Viewer, Role::Operator, Role::Approver, Role::Admin];
        match self {
            Action::ViewDirectory | Action::ViewTokens | Action::ViewGovernance => EVERYONE,
            // A bearer token can write every resource of the tenant: only admins mint or revoke.
            Action::CreateToken | Action::RevokeToken => &[Role::Admin],
            // Joiner, mover and leaver work and retrying stuck work are the operator's job; the
            // roles ranked above it (`admin` > `approver` > `operator`, as sign-in ranks them)
            // include it.
            Action::Hire
            | Action::Update
            | Action::Terminate
            | Action::Rehire
            | Action::RetryIntakeJob
            | Action::RetryBridgeWork
            | Action::RequestGrant => &[Role::Operator, Role::Approver, Role::Admin],
            // A CSV upload is a batch of joiner and mover writes: the operator's work. A preview
            // writes nothing but reads every row's person, so it takes the same role.
            Action::PreviewImport | Action::RunImport => {
                &[Role::Operator, Role::Approver, Role::Admin]
            }
            // Tenants, the Graph rules and the configuration are the server's, not one
            // tenant's directory: admins only.
            Action::ViewAdmin | Action::CreateTenant => &[Role::Admin],
            // Deciding access (a review item, a time-bound grant) is the approver's job; the
            // admin, ranked above, includes it.
            Action::DecideReview | Action::DecideGrant => &[Role::Approver, Role::Admin],
            // Every campaign with every reviewer's items: the people who run the reviews.
            Action::ViewCampaigns => &[Role::Admin],
        }
    }
}

/// The signed-in person, from their session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// The SCIM tenant the session works in.
    pub tenant: String,
    /// The identity provider's stable subject (`sub`), or `one-time-link` for the first-start
    /// sign-in.
    pub subject: String,
    /// A name to show and to record (`name`, `preferred_username` or `email`).
    pub display_name: String,
    /// The role granted at sign-in.
    pub role: Role,
}

impl Operator {
    /// The principal recorded for this person's writes, distinct from any API credential.
    pub fn principal(&self) -> String {
        format!("console:{}", self.subject)
    }
}

/// Proof that `operator` may take `action`: made only by [`authorize`].
#[derive(Debug, Clone)]
pub struct Permit {
    operator: Operator,
    action: Action,
}

impl Permit {
    /// Who acts.
    pub fn operator(&self) -> &Operator {
        &self.operator
    }

    /// The action permitted.
    pub fn action(&self) -> Action {
        self.action
    }
}

/// Refused: the role may not take the action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {role} role may not {what}; ask an admin for a role that may")]
pub struct Forbidden {
    /// The operator's role.
    pub role: Role,
    /// A phrase for the refused action.
    pub what: &'static str,
}

/// Decides whether `operator` may take `action`.
pub fn authorize(operator: &Operator, action: Action) -> Result<Permit, Forbidden> {
    if action.allowed_roles().contains(&operator.role) {
        Ok(Permit {
            operator: operator.clone(),
            action,
        })
    } else {
        Err(Forbidden {
            role: operator.role,
            what: match action {
                Action::ViewDirectory => "view the directory",
                Action::ViewTokens => "view tokens",
                Action::CreateToken => "create tokens",
                Action::RevokeToken => "revoke tokens",
                Action::Hire => "hire people",
                Action::Update => "update people",
                Action::Terminate => "terminate people",
                Action::Rehire => "rehire people",
                Action::RetryIntakeJob => "retry intake jobs",
                Action::RetryBridgeWork => "retry Graph bridge work",
                Action::PreviewImport => "preview CSV uploads",
                Action::RunImport => "upload CSV files",
                Action::ViewAdmin => "view the server's administration pages",
                Action::CreateTenant => "create tenants",
                Action::ViewGovernance => "view governance",
                Action::ViewCampaigns => "view review campaigns",
                Action::DecideReview => "decide access reviews",
                Action::RequestGrant => "request time-bound access",
                Action::DecideGrant => "approve or deny time-bound access",
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator(role: Role) -> Operator {
        Operator {
            tenant: "t".into(),
            subject: "s".into(),
            display_name: "n".into(),
            role,
        }
    }

    #[test]
    fn the_permission_matrix() {
        use Role::*;
        for (action, allowed) in [
            (
                Action::ViewDirectory,
                vec![Viewer, Operator, Approver, Admin],
            ),
            (Action::ViewTokens, vec![Viewer, Operator, Approver, Admin]),
            (Action::CreateToken, vec![Admin]),
            (Action::RevokeToken, vec![Admin]),
            (Action::Hire, vec![Operator, Approver, Admin]),
            (Action::Update, vec![Operator, Approver, Admin]),
            (Action::Terminate, vec![Operator, Approver, Admin]),
            (Action::Rehire, vec![Operator, Approver, Admin]),
            (Action::RetryIntakeJob, vec![Operator, Approver, Admin]),
            (Action::RetryBridgeWork, vec![Operator, Approver, Admin]),
            (Action::PreviewImport, vec![Operator, Approver, Admin]),
            (Action::RunImport, vec![Operator, Approver, Admin]),
            (Action::ViewAdmin, vec![Admin]),
            (Action::CreateTenant, vec![Admin]),
            (
                Action::ViewGovernance,
                vec![Viewer, Operator, Approver, Admin],
            ),
            (Action::ViewCampaigns, vec![Admin]),
            (Action::DecideReview, vec![Approver, Admin]),
            (Action::RequestGrant, vec![Operator, Approver, Admin]),
            (Action::DecideGrant, vec![Approver, Admin]),
        ] {
            for role in [Viewer, Operator, Approver, Admin] {
                assert!(Action::ALL.contains(&action));
                let permit = authorize(&operator(role), action);
                assert_eq!(permit.is_ok(), allowed.contains(&role), "{role} {action:?}");
                if let Ok(p) = permit {
                    assert_eq!(p.action(), action);
                }
            }
        }
    }

    #[test]
    fn every_action_has_a_name_and_a_role_that_may_take_it() {
        for action in Action::ALL {
            assert!(!action.as_str().is_empty());
            assert!(
                authorize(&operator(Role::Admin), *action).is_ok(),
                "{action:?}"
            );
        }
    }

    #[test]
    fn a_refusal_says_what_and_who() {
        let e = authorize(&operator(Role::Viewer), Action::CreateToken).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the viewer role may not create tokens; ask an admin for a role that may"
        );
    }

    #[test]
    fn role_names_round_trip() {
        for role in [Role::Viewer, Role::Operator, Role::Approver, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
