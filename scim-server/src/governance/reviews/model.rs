//! What a campaign is made of and how the API shows reviews and items.

use super::*;

/// Schedule kind: start a review.
pub const TASK_START: &str = "review.start";
/// Schedule kind: remind reviewers of undecided items.
pub const TASK_REMIND: &str = "review.remind";
/// Schedule kind: the due date (close, and apply when the campaign says so).
pub const TASK_DUE: &str = "review.due";

/// Most entries in a scope, reminders, or decisions in one request.
pub const MAX_SCOPE: usize = 50;
/// Most decisions in one bulk request.
pub const MAX_DECISIONS: usize = 1000;
pub(super) const MAX_TEXT: usize = 1000;

/// One reviewed grant, as a campaign names it: `{"group": "eng"}`, `{"role": "helpdesk"}`,
/// `{"license": "e5"}` (catalog names), or `{"graphGroup": "<object id>"}` (outside the rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum ScopeEntry {
    /// A catalog group.
    Group(String),
    /// A catalog directory role.
    Role(String),
    /// A catalog license.
    License(String),
    /// A Graph group outside the rules' catalog, by object id.
    GraphGroup(String),
}

impl ScopeEntry {
    pub(super) fn target(&self) -> GrantTarget {
        let catalog = |kind, name: &String| GrantTarget::Catalog {
            grant: Grant::new(kind, name.clone()),
        };
        match self {
            ScopeEntry::Group(n) => catalog(GrantKind::Group, n),
            ScopeEntry::Role(n) => catalog(GrantKind::Role, n),
            ScopeEntry::License(n) => catalog(GrantKind::License, n),
            ScopeEntry::GraphGroup(id) => GrantTarget::GraphGroup {
                group_id: id.clone(),
            },
        }
    }
}

pub(super) fn label(target: &GrantTarget) -> String {
    match target {
        GrantTarget::Catalog { grant } => grant.to_string(),
        GrantTarget::GraphGroup { group_id } => format!("Graph group {group_id}"),
    }
}

/// Who reviews.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "mode", rename_all = "camelCase", deny_unknown_fields)]
pub enum Reviewers {
    /// Each user's manager (SCIM enterprise `manager`); `fallback` when there is none, it is
    /// not a SCIM user, or it is the user.
    Manager {
        /// The fallback reviewer (a SCIM userName or an e-mail address).
        fallback: String,
    },
    /// One named reviewer for every item.
    Named {
        /// The reviewer (a SCIM userName or an e-mail address).
        reviewer: String,
    },
}

/// What undecided items become at the due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum DefaultDecision {
    /// Keep the access.
    Keep,
    /// Revoke it.
    Revoke,
    /// Follow each item's recommendation.
    Recommendation,
}

impl DefaultDecision {
    /// `keep`, `revoke` or `recommendation`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultDecision::Keep => "keep",
            DefaultDecision::Revoke => "revoke",
            DefaultDecision::Recommendation => "recommendation",
        }
    }
}

/// A campaign as created (`POST /governance/v1/reviews`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReviewSpec {
    /// A name reviewers recognise, e.g. "Q3 privileged groups".
    pub name: String,
    /// The grants under review.
    pub scope: Vec<ScopeEntry>,
    /// Who decides.
    pub reviewers: Reviewers,
    /// When it starts (default: now).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: Option<OffsetDateTime>,
    /// When it is due.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub due_at: OffsetDateTime,
    /// Reminders of undecided items, in hours before the due date (e.g. `[72, 24]`).
    #[serde(default)]
    pub reminders_before_due_hours: Vec<u32>,
    /// What undecided items become at the due date.
    pub default_decision: DefaultDecision,
    /// Apply the results at the due date (otherwise an operator applies them).
    #[serde(default = "yes")]
    pub auto_apply: bool,
    /// Days without a sign-in after which revoking is recommended (default: `[governance]
    /// inactivity_days`).
    #[serde(default)]
    pub inactivity_days: Option<u32>,
}

fn yes() -> bool {
    true
}

/// A decision on an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionRequest {
    /// The item (in bulk requests; the path names it otherwise).
    #[serde(default)]
    pub item_id: Option<String>,
    /// `keep` or `revoke`.
    pub decision: String,
    /// Why (required).
    pub justification: String,
}

/// Item counts of a review.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Items.
    pub items: u64,
    /// Not decided yet.
    pub undecided: u64,
    /// Decided keep.
    pub keep: u64,
    /// Decided revoke.
    pub revoke: u64,
    /// Applied (kept or revoked in Graph).
    pub applied: u64,
    /// Whose application failed (apply again to retry).
    pub failed: u64,
}

/// A review as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewView {
    /// Id.
    pub id: String,
    /// `scheduled`, `active`, `completed` or `applied`.
    pub status: String,
    /// The campaign's settings.
    pub spec: ReviewSpec,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// By which credential (or `cli`).
    pub created_by: String,
    /// Started.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<OffsetDateTime>,
    /// Closed.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<OffsetDateTime>,
    /// Applied.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub applied_at: Option<OffsetDateTime>,
    /// Items by state.
    pub counts: Counts,
}

/// An item as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemView {
    /// Id.
    pub id: String,
    /// The grant, e.g. `group "eng"`.
    pub grant: String,
    /// The grant as a structure.
    #[schema(value_type = Object)]
    pub target: Value,
    /// The holder's Graph id.
    pub graph_user_id: String,
    /// Its UPN.
    pub user_principal_name: Option<String>,
    /// Its display name.
    pub display_name: Option<String>,
    /// The SCIM user it matches.
    pub scim_user_id: Option<String>,
    /// Who decides.
    pub reviewer: String,
    /// Last sign-in Graph reported.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_sign_in: Option<OffsetDateTime>,
    /// Whether the rules derive the grant for the user.
    pub rule_derived: bool,
    /// `keep` or `revoke`.
    pub recommendation: String,
    /// Why.
    pub recommendation_reason: String,
    /// `keep`, `revoke`, or null.
    pub decision: Option<String>,
    /// The justification.
    pub justification: Option<String>,
    /// Who decided (`default`: the campaign's default).
    pub decided_by: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<OffsetDateTime>,
    /// `kept`, `revoked` or `failed` once applied.
    pub outcome: Option<String>,
    /// Details (Graph's answer).
    pub outcome_detail: Option<String>,
}

impl From<ItemRow> for ItemView {
    fn from(i: ItemRow) -> Self {
        Self {
            grant: i.target_label,
            target: serde_json::from_str(&i.target).unwrap_or_default(),
            graph_user_id: i.graph_user_id,
            user_principal_name: i.user_principal_name,
            display_name: i.display_name,
            scim_user_id: i.scim_user_id,
            reviewer: i.reviewer,
            last_sign_in: i.last_sign_in_ms.map(from_millis),
            rule_derived: i.rule_derived != 0,
            recommendation: i.recommendation,
            recommendation_reason: i.recommendation_reason,
            decision: i.decision,
            justification: i.justification,
            decided_by: i.decided_by,
            decided_at: i.decided_at_ms.map(from_millis),
            outcome: i.outcome,
            outcome_detail: i.outcome_detail,
            id: i.id,
        }
    }
}
