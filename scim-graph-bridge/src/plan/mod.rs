//! Planning: the difference between desired and actual state as ordered steps.
//!
//! Order (least privilege first, licenses only after the usage location):
//! - joiner/mover: create or update attributes → manager → role removals →
//!   group adds → one `assignLicense` (adds and removes) → group removals → role adds;
//! - leaver: disable → revoke sessions → role removals → group removals →
//!   license removals → (after the retention) hard delete.
//!
//! Only catalog objects appear in [`ActualState`], so nothing else is ever removed.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::rules::{DesiredState, Rules};

/// The Graph user as observed, restricted to the catalog.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct GraphUser {
    /// Graph object id.
    pub id: String,
    /// `accountEnabled`.
    pub account_enabled: bool,
    /// Managed properties as read (e.g. `department`).
    pub attributes: BTreeMap<String, Value>,
    /// Graph id of the manager.
    pub manager_id: Option<String>,
    /// Catalog groups the user is a direct member of.
    pub groups: BTreeSet<String>,
    /// Catalog licenses assigned directly → their disabled plans.
    pub licenses: BTreeMap<String, Vec<String>>,
    /// Catalog roles held → role assignment id.
    pub roles: BTreeMap<String, String>,
}

/// What is known of the user in Graph.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ActualState {
    /// Whether Graph was read at all (it is not in plan mode).
    pub known: bool,
    /// The matched user, if any.
    pub user: Option<GraphUser>,
}

/// A license to add.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LicenseAdd {
    /// Catalog name.
    pub name: String,
    /// SKU id.
    pub sku_id: String,
    /// Disabled service plans.
    pub disabled_plans: Vec<String>,
}

/// A license to remove.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LicenseRemove {
    /// Catalog name.
    pub name: String,
    /// SKU id.
    pub sku_id: String,
}

/// One Graph operation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// `POST /users` (a random password that must be changed is generated when applied).
    CreateUser {
        /// UPN.
        user_principal_name: String,
        /// Mail nickname.
        mail_nickname: String,
        /// Display name.
        display_name: String,
        /// Further properties (usage location, department, …).
        attributes: BTreeMap<String, Value>,
    },
    /// `PATCH /users/{id}` with changed properties (and `accountEnabled: true` on re-hire).
    UpdateUser {
        /// Properties to set.
        attributes: BTreeMap<String, Value>,
    },
    /// `PUT /users/{id}/manager/$ref`.
    SetManager {
        /// Graph id of the manager.
        manager_id: String,
    },
    /// `PATCH /users/{id}` `{"accountEnabled": false}`.
    DisableAccount,
    /// `POST /users/{id}/revokeSignInSessions`.
    RevokeSessions,
    /// `DELETE /roleManagement/directory/roleAssignments/{id}`.
    RemoveRole {
        /// Catalog name.
        role: String,
        /// Assignment id.
        assignment_id: String,
    },
    /// `POST /groups/{id}/members/$ref`.
    AddGroup {
        /// Catalog name.
        group: String,
        /// Group object id.
        group_id: String,
    },
    /// `POST /users/{id}/assignLicense` with adds and removes in one call.
    AssignLicenses {
        /// Licenses to add (or whose disabled plans change).
        add: Vec<LicenseAdd>,
        /// Licenses to remove.
        remove: Vec<LicenseRemove>,
    },
    /// `DELETE /groups/{id}/members/{user}/$ref`.
    RemoveGroup {
        /// Catalog name.
        group: String,
        /// Group object id.
        group_id: String,
    },
    /// `POST /roleManagement/directory/roleAssignments`.
    AddRole {
        /// Catalog name.
        role: String,
        /// Role definition id.
        role_definition_id: String,
        /// Directory scope.
        directory_scope_id: String,
    },
    /// `DELETE /users/{id}` (soft delete).
    DeleteUser,
}

impl Step {
    /// A short label such as `add_group`.
    pub fn label(&self) -> &'static str {
        match self {
            Step::CreateUser { .. } => "create_user",
            Step::UpdateUser { .. } => "update_user",
            Step::SetManager { .. } => "set_manager",
            Step::DisableAccount => "disable_account",
            Step::RevokeSessions => "revoke_sessions",
            Step::RemoveRole { .. } => "remove_role",
            Step::AddGroup { .. } => "add_group",
            Step::AssignLicenses { .. } => "assign_licenses",
            Step::RemoveGroup { .. } => "remove_group",
            Step::AddRole { .. } => "add_role",
            Step::DeleteUser => "delete_user",
        }
    }
}

/// The kind of change a plan carries out.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    /// A new Graph user is created.
    Create,
    /// An existing, enabled user is brought to the desired state (joiner or mover).
    Update,
    /// A disabled user is re-enabled and restored.
    Rehire,
    /// An inactive or deleted user loses what the bridge granted.
    Leaver,
    /// No Graph user matches and creation is disabled (or impossible).
    Unmatched,
}

/// A serialisable plan for one user.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    /// What kind of change.
    pub kind: PlanKind,
    /// Graph user id, when known.
    pub graph_user_id: Option<String>,
    /// Whether the actual state was read from Graph.
    pub actual_known: bool,
    /// Ordered steps; empty means nothing to do.
    pub steps: Vec<Step>,
    /// Human-readable remarks.
    pub notes: Vec<String>,
    /// SHA-256 of the desired state.
    pub desired_hash: String,
    /// The desired state the plan was computed from.
    pub desired: DesiredState,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_noop(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Extra inputs to planning.
#[derive(Clone, Debug, Default)]
pub struct PlanContext {
    /// Graph id of the desired manager (resolved from the SCIM manager).
    pub manager_graph_id: Option<String>,
    /// When the user left (for the hard-delete retention).
    pub left_at: Option<OffsetDateTime>,
    /// Now.
    pub now: Option<OffsetDateTime>,
}

/// Hash of a desired state.
pub fn desired_hash(d: &DesiredState) -> String {
    let bytes = serde_json::to_vec(d).unwrap_or_default();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Computes the plan turning `actual` into `desired`.
pub fn plan(
    rules: &Rules,
    desired: &DesiredState,
    actual: &ActualState,
    ctx: &PlanContext,
) -> Plan {
    let mut notes = Vec::new();
    let assumed;
    let user = if actual.known {
        actual.user.as_ref()
    } else {
        notes.push(
            "Graph was not read (plan mode): the user is assumed to exist with no catalog grants"
                .into(),
        );
        assumed = GraphUser {
            id: String::new(),
            account_enabled: true,
            ..GraphUser::default()
        };
        Some(&assumed)
    };
    let mut out = Plan {
        kind: PlanKind::Update,
        graph_user_id: user.map(|u| u.id.clone()).filter(|id| !id.is_empty()),
        actual_known: actual.known,
        steps: Vec::new(),
        notes,
        desired_hash: desired_hash(desired),
        desired: desired.clone(),
    };
    if desired.is_leaver() {
        out.kind = PlanKind::Leaver;
        match user {
            None => out
                .notes
                .push("no Graph user matches; nothing to revoke".into()),
            Some(u) => out.steps = leaver_steps(rules, u, ctx),
        }
        return out;
    }
    let empty = GraphUser::default();
    let current = match user {
        Some(u) => {
            if !u.account_enabled {
                out.kind = PlanKind::Rehire;
            }
            u
        }
        None => {
            let upn = if rules.match_spec.graph == "userPrincipalName" {
                desired.match_value.clone()
            } else {
                desired.user_name.clone()
            };
            match (rules.create.enabled, upn) {
                (true, Some(upn)) => {
                    out.kind = PlanKind::Create;
                    let mut attributes = desired.attributes.clone();
                    let display_name = match attributes.remove("displayName") {
                        Some(Value::String(s)) => s,
                        _ => upn.clone(),
                    };
                    out.steps.push(Step::CreateUser {
                        mail_nickname: mail_nickname(&upn),
                        user_principal_name: upn,
                        display_name,
                        attributes,
                    });
                    &empty
                }
                (true, None) => {
                    out.kind = PlanKind::Unmatched;
                    out.notes.push(
                        "no Graph user matches and the SCIM user has no userName to create one"
                            .into(),
                    );
                    return out;
                }
                (false, _) => {
                    out.kind = PlanKind::Unmatched;
                    out.notes
                        .push("no Graph user matches and [create] is disabled".into());
                    return out;
                }
            }
        }
    };
    if user.is_some() {
        let mut changed: BTreeMap<String, Value> = desired
            .attributes
            .iter()
            .filter(|(k, v)| current.attributes.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !current.account_enabled {
            changed.insert("accountEnabled".into(), Value::Bool(true));
        }
        if !changed.is_empty() {
            out.steps.push(Step::UpdateUser {
                attributes: changed,
            });
        }
    }
    match (&ctx.manager_graph_id, &desired.manager) {
        (Some(m), _) if current.manager_id.as_ref() != Some(m) => {
            out.steps.push(Step::SetManager {
                manager_id: m.clone(),
            });
        }
        (None, Some(scim_mgr)) => {
            out.notes.push(format!(
                "manager {scim_mgr} has no Graph user yet; manager not set"
            ));
        }
        _ => {}
    }
    let cat = &rules.catalog;
    for (role, assignment_id) in &current.roles {
        if !desired.roles.contains(role) {
            out.steps.push(Step::RemoveRole {
                role: role.clone(),
                assignment_id: assignment_id.clone(),
            });
        }
    }
    for g in desired.groups.difference(&current.groups) {
        out.steps.push(Step::AddGroup {
            group: g.clone(),
            group_id: cat.groups[g].clone(),
        });
    }
    let add: Vec<LicenseAdd> = desired
        .licenses
        .iter()
        .filter(|n| {
            let want = &cat.licenses[*n].disabled_plans;
            current
                .licenses
                .get(*n)
                .is_none_or(|have| !same_set(have, want))
        })
        .map(|n| LicenseAdd {
            name: n.clone(),
            sku_id: cat.licenses[n].sku_id.clone(),
            disabled_plans: cat.licenses[n].disabled_plans.clone(),
        })
        .collect();
    let remove: Vec<LicenseRemove> = current
        .licenses
        .keys()
        .filter(|n| !desired.licenses.contains(*n))
        .filter_map(|n| {
            cat.licenses.get(n).map(|l| LicenseRemove {
                name: n.clone(),
                sku_id: l.sku_id.clone(),
            })
        })
        .collect();
    if !add.is_empty() || !remove.is_empty() {
        out.steps.push(Step::AssignLicenses { add, remove });
    }
    for g in current.groups.difference(&desired.groups) {
        if let Some(id) = cat.groups.get(g) {
            out.steps.push(Step::RemoveGroup {
                group: g.clone(),
                group_id: id.clone(),
            });
        }
    }
    for r in &desired.roles {
        if !current.roles.contains_key(r) {
            let spec = &cat.roles[r];
            out.steps.push(Step::AddRole {
                role: r.clone(),
                role_definition_id: spec.role_definition_id.clone(),
                directory_scope_id: spec.directory_scope_id.clone(),
            });
        }
    }
    out
}

fn leaver_steps(rules: &Rules, u: &GraphUser, ctx: &PlanContext) -> Vec<Step> {
    let mut steps = Vec::new();
    let removals = !u.roles.is_empty() || !u.groups.is_empty() || !u.licenses.is_empty();
    if u.account_enabled {
        steps.push(Step::DisableAccount);
    }
    if u.account_enabled || removals {
        steps.push(Step::RevokeSessions);
    }
    for (role, id) in &u.roles {
        steps.push(Step::RemoveRole {
            role: role.clone(),
            assignment_id: id.clone(),
        });
    }
    for g in &u.groups {
        if let Some(id) = rules.catalog.groups.get(g) {
            steps.push(Step::RemoveGroup {
                group: g.clone(),
                group_id: id.clone(),
            });
        }
    }
    let remove: Vec<LicenseRemove> = u
        .licenses
        .keys()
        .filter_map(|n| {
            rules.catalog.licenses.get(n).map(|l| LicenseRemove {
                name: n.clone(),
                sku_id: l.sku_id.clone(),
            })
        })
        .collect();
    if !remove.is_empty() {
        steps.push(Step::AssignLicenses {
            add: Vec::new(),
            remove,
        });
    }
    if let (Some(days), Some(left), Some(now)) =
        (rules.leaver.delete_after_days, ctx.left_at, ctx.now)
        && !u.id.is_empty()
        && now >= left + time::Duration::days(i64::from(days))
    {
        steps.push(Step::DeleteUser);
    }
    steps
}

/// When a leaver becomes due for hard deletion, if the policy deletes at all.
pub fn delete_due_at(rules: &Rules, left_at: OffsetDateTime) -> Option<OffsetDateTime> {
    rules
        .leaver
        .delete_after_days
        .map(|d| left_at + time::Duration::days(i64::from(d)))
}

fn same_set(a: &[String], b: &[String]) -> bool {
    let a: BTreeSet<String> = a.iter().map(|s| s.to_ascii_lowercase()).collect();
    let b: BTreeSet<String> = b.iter().map(|s| s.to_ascii_lowercase()).collect();
    a == b
}

/// A mail nickname derived from a UPN: its local part, restricted to safe characters.
pub fn mail_nickname(upn: &str) -> String {
    let local = upn.split('@').next().unwrap_or(upn);
    let s: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    if s.is_empty() { "user".into() } else { s }
}

#[cfg(test)]
mod tests;
