//! Governance overrides of the rules: what the planner must withhold from, or add to, one
//! user's desired state beyond what the rules derive.
//!
//! Two kinds, both named by catalog grant (the rules' `[catalog.*]` names, never Graph ids):
//! - [`OverrideAction::Suppress`]: an access review revoked a grant the rules still derive (an
//!   *exception*); the planner leaves it out so a reconcile does not re-add it, and the plan
//!   says "suppressed by review …";
//! - [`OverrideAction::Add`]: a time-bound grant (just-in-time access) the rules do not derive,
//!   active until its expiry.
//!
//! The planner computes `desired = rules ∪ active adds − suppressions` ([`apply_overrides`]).
//! A leaver gets nothing added: leaving revokes everything, exceptions or not. The server
//! implements [`AccessOverrides`] over its governance tables (as `StoreDirectory` implements
//! `UserDirectory`); [`NoOverrides`] is the default, and [`MemoryOverrides`] serves tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Result;
use crate::rules::{Catalog, DesiredState};

/// Which kind of catalog object a grant is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantKind {
    /// A group (`[catalog.groups]`).
    Group,
    /// A directory role (`[catalog.roles]`).
    Role,
    /// A license (`[catalog.licenses]`).
    License,
}

impl GrantKind {
    /// `group`, `role` or `license`, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantKind::Group => "group",
            GrantKind::Role => "role",
            GrantKind::License => "license",
        }
    }

    /// The inverse of [`GrantKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "group" => Some(GrantKind::Group),
            "role" => Some(GrantKind::Role),
            "license" => Some(GrantKind::License),
            _ => None,
        }
    }
}

impl std::fmt::Display for GrantKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A catalog grant: kind and catalog name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Grant {
    /// Group, role or license.
    pub kind: GrantKind,
    /// Its name in the rules' catalog.
    pub name: String,
}

impl Grant {
    /// A grant of `kind` named `name`.
    pub fn new(kind: GrantKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }

    /// Whether the catalog names it.
    pub fn in_catalog(&self, catalog: &Catalog) -> bool {
        match self.kind {
            GrantKind::Group => catalog.groups.contains_key(&self.name),
            GrantKind::Role => catalog.roles.contains_key(&self.name),
            GrantKind::License => catalog.licenses.contains_key(&self.name),
        }
    }

    /// Whether `desired` holds it.
    pub fn held_by(&self, desired: &DesiredState) -> bool {
        match self.kind {
            GrantKind::Group => desired.groups.contains(&self.name),
            GrantKind::Role => desired.roles.contains(&self.name),
            GrantKind::License => desired.licenses.contains(&self.name),
        }
    }

    fn set_in(&self, desired: &mut DesiredState, on: bool) {
        let set = match self.kind {
            GrantKind::Group => &mut desired.groups,
            GrantKind::Role => &mut desired.roles,
            GrantKind::License => &mut desired.licenses,
        };
        if on {
            set.insert(self.name.clone());
        } else {
            set.remove(&self.name);
        }
    }
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.kind, self.name)
    }
}

/// What an override does to its grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum OverrideAction {
    /// Withhold the grant even when the rules derive it (a review's exception).
    Suppress {
        /// Why, shown in the plan, e.g. `review 7f3c…`.
        reason: String,
    },
    /// Grant it although the rules do not, until `until` (a time-bound grant).
    Add {
        /// When it ends; from then on the override has no effect.
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
        /// Why, shown in the plan, e.g. `time-bound grant 51d2…`.
        reason: String,
    },
}

/// One override of one user's desired state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// The catalog grant it concerns.
    pub grant: Grant,
    /// Suppress or add.
    #[serde(flatten)]
    pub action: OverrideAction,
}

/// Where the planner reads a user's overrides from (the server: its governance tables).
#[async_trait::async_trait]
pub trait AccessOverrides: Send + Sync {
    /// The overrides in force for `user_id` (a SCIM id) of `tenant` at `now`. Errors use
    /// [`crate::Error::Directory`] (a reconcile is retried later, like an unreadable user).
    async fn for_user(
        &self,
        tenant: &str,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Override>>;
}

/// No overrides: the rules alone decide (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoOverrides;

#[async_trait::async_trait]
impl AccessOverrides for NoOverrides {
    async fn for_user(&self, _: &str, _: &str, _: OffsetDateTime) -> Result<Vec<Override>> {
        Ok(Vec::new())
    }
}

/// Overrides held in memory, for tests and demos.
#[derive(Debug, Default)]
pub struct MemoryOverrides {
    by_user: Mutex<BTreeMap<(String, String), Vec<Override>>>,
}

impl MemoryOverrides {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an override for a user.
    pub fn push(&self, tenant: &str, user_id: &str, o: Override) {
        self.by_user
            .lock()
            .expect("overrides")
            .entry((tenant.into(), user_id.into()))
            .or_default()
            .push(o);
    }

    /// Removes every override of a user.
    pub fn clear(&self, tenant: &str, user_id: &str) {
        self.by_user
            .lock()
            .expect("overrides")
            .remove(&(tenant.into(), user_id.into()));
    }
}

#[async_trait::async_trait]
impl AccessOverrides for MemoryOverrides {
    async fn for_user(
        &self,
        tenant: &str,
        user_id: &str,
        _: OffsetDateTime,
    ) -> Result<Vec<Override>> {
        Ok(self
            .by_user
            .lock()
            .expect("overrides")
            .get(&(tenant.into(), user_id.into()))
            .cloned()
            .unwrap_or_default())
    }
}

/// Applies `overrides` to `desired` at `now`: active adds first, then suppressions (a
/// suppression wins over an add of the same grant: a reviewer's "revoke" is the later, more
/// deliberate decision). Returns the plan notes that say what was changed and why.
///
/// Ignored, with a note: grants outside the catalog (the bridge touches nothing else), adds
/// past their `until`, and every add for a leaver (deleted or inactive users get nothing).
pub fn apply_overrides(
    desired: &mut DesiredState,
    overrides: &[Override],
    catalog: &Catalog,
    now: OffsetDateTime,
) -> Vec<String> {
    let mut notes = Vec::new();
    let leaver = desired.is_leaver();
    for o in overrides {
        if !o.grant.in_catalog(catalog) {
            notes.push(format!(
                "override of {} ignored: not in the rules' catalog",
                o.grant
            ));
            continue;
        }
        if let OverrideAction::Add { until, reason } = &o.action {
            if leaver {
                notes.push(format!(
                    "{} not added by {reason}: the user is a leaver",
                    o.grant
                ));
            } else if *until <= now {
                // expired: nothing to say, the grant simply lapses with the rules' view
            } else if !o.grant.held_by(desired) {
                o.grant.set_in(desired, true);
                notes.push(format!("{} added by {reason}", o.grant));
            }
        }
    }
    for o in overrides {
        if let OverrideAction::Suppress { reason } = &o.action
            && o.grant.in_catalog(catalog)
            && o.grant.held_by(desired)
        {
            o.grant.set_in(desired, false);
            notes.push(format!("{} suppressed by {reason}", o.grant));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Rules;
    use time::macros::datetime;

    const RULES: &str = r#"
[catalog.groups]
eng = "g-eng"
admins = "g-admins"
[catalog.roles]
helpdesk = { role_definition_id = "r-1" }
[defaults]
groups = ["eng"]
"#;

    fn desired(active: bool) -> DesiredState {
        let mut d = DesiredState {
            exists: true,
            account_enabled: active,
            ..DesiredState::default()
        };
        if active {
            d.groups.insert("eng".into());
        }
        d
    }

    #[test]
    fn desired_is_rules_plus_active_adds_minus_suppressions() {
        let rules = Rules::from_toml(RULES).unwrap();
        let now = datetime!(2026-03-01 12:00 UTC);
        let add = |kind, name: &str, until| Override {
            grant: Grant::new(kind, name),
            action: OverrideAction::Add {
                until,
                reason: "time-bound grant j1".into(),
            },
        };
        let suppress = |kind, name: &str| Override {
            grant: Grant::new(kind, name),
            action: OverrideAction::Suppress {
                reason: "review r1".into(),
            },
        };
        // (overrides, active user, groups expected, roles expected, a note containing)
        type Case<'a> = (Vec<Override>, bool, Vec<&'a str>, Vec<&'a str>, &'a str);
        let cases: Vec<Case> = vec![
            (vec![], true, vec!["eng"], vec![], ""),
            (
                vec![suppress(GrantKind::Group, "eng")],
                true,
                vec![],
                vec![],
                "group \"eng\" suppressed by review r1",
            ),
            (
                vec![add(
                    GrantKind::Role,
                    "helpdesk",
                    now + time::Duration::hours(4),
                )],
                true,
                vec!["eng"],
                vec!["helpdesk"],
                "role \"helpdesk\" added by time-bound grant j1",
            ),
            (
                vec![add(GrantKind::Role, "helpdesk", now)],
                true,
                vec!["eng"],
                vec![],
                "",
            ),
            (
                vec![
                    add(GrantKind::Group, "admins", now + time::Duration::hours(1)),
                    suppress(GrantKind::Group, "admins"),
                ],
                true,
                vec!["eng"],
                vec![],
                "suppressed",
            ),
            (
                vec![add(
                    GrantKind::Group,
                    "admins",
                    now + time::Duration::hours(1),
                )],
                false,
                vec![],
                vec![],
                "the user is a leaver",
            ),
            (
                vec![suppress(GrantKind::Group, "not-in-catalog")],
                true,
                vec!["eng"],
                vec![],
                "not in the rules' catalog",
            ),
        ];
        for (overrides, active, groups, roles, note) in cases {
            let mut d = desired(active);
            let notes = apply_overrides(&mut d, &overrides, &rules.catalog, now);
            let got: Vec<&str> = d.groups.iter().map(String::as_str).collect();
            assert_eq!(got, groups, "{overrides:?}");
            let got: Vec<&str> = d.roles.iter().map(String::as_str).collect();
            assert_eq!(got, roles, "{overrides:?}");
            if note.is_empty() {
                assert!(notes.is_empty(), "{notes:?}");
            } else {
                assert!(notes.iter().any(|n| n.contains(note)), "{notes:?}");
            }
        }
    }

    #[test]
    fn grant_kinds_round_trip() {
        for k in [GrantKind::Group, GrantKind::Role, GrantKind::License] {
            assert_eq!(GrantKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(GrantKind::parse("app"), None);
    }
}
