//! What the console reads and does, with no HTTP types: each function authorises the operator
//! for its [`Action`] first, then calls the same store and token functions the SCIM API and the
//! CLI use, so a console action and an API call cannot disagree.
//!
//! Every action (allowed or refused) is recorded in `console_actions` with the person's
//! subject, name and role; reads are not recorded.

use super::db::{ActionRow, NewAction};
use super::roles::{Action, Operator, Permit, authorize};
use super::{Console, ConsoleError};
use crate::auth::SecretString;
use crate::store::{ChangeRecord, Load, TokenRecord};
use scim_core::query::{ListQuery, QueryParams};
use serde_json::Value;

/// Rows per page of a people or groups list.
pub const PAGE_SIZE: u64 = 25;
/// Records shown on a timeline page.
pub const TIMELINE_LENGTH: i64 = 50;

/// The dashboard's figures.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Users in the tenant.
    pub users: u64,
    /// Groups in the tenant.
    pub groups: u64,
    /// The newest change records.
    pub recent_changes: Vec<ChangeRecord>,
    /// The change log's head: last sequence number and hash.
    pub chain_head: Option<(i64, String)>,
    /// Whether the Graph bridge is configured.
    pub bridge_configured: bool,
    /// The newest console actions.
    pub recent_actions: Vec<ActionRow>,
    /// The HR intake queue (all tenants), when the server runs the intake.
    pub intake: Option<crate::inbound::queue::QueueStatus>,
    /// The Graph bridge's lag and dead letters for this tenant, when `[graph]` is configured.
    pub bridge: Option<super::queues::BridgeOverview>,
}

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Users.
    User,
    /// Groups.
    Group,
}

impl Kind {
    fn resource_type(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }

    /// The attributes a list may sort by: derived columns of the row, not JSON values.
    pub fn sort_keys(self) -> &'static [(&'static str, &'static str)] {
        match self {
            // Not `displayName`: for a User it lives only in the JSON, and sorting 100,000 rows
            // by a JSON value takes seconds.
            Kind::User => &[
                ("userName", "User name"),
                ("meta.lastModified", "Last modified"),
            ],
            Kind::Group => &[
                ("displayName", "Display name"),
                ("meta.lastModified", "Last modified"),
            ],
        }
    }
}

/// A search as the list page's form sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct Search {
    /// A plain search box: user names (group names) starting with the text.
    pub q: String,
    /// A SCIM filter (RFC 7644 §3.4.2.2), used instead of `q` when given.
    pub filter: String,
    /// A key of [`Kind::sort_keys`].
    pub sort: String,
    /// `ascending` or `descending`.
    pub order: String,
    /// 1-based index of the first row.
    pub start: u64,
    /// The page after the row with this key ([`super::db::ListKey::encode`]).
    pub after: String,
    /// The page before the row with this key.
    pub before: String,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Listing {
    /// Matches in total.
    pub total: u64,
    /// 1-based index of the first row.
    pub start: u64,
    /// The rows, as the SCIM API returns them.
    pub rows: Vec<Value>,
    /// The next page's `after=` key, when the list pages by key and there is a next page.
    pub next: Option<String>,
    /// The previous page's `before=` key, when the list pages by key and this is not the first.
    pub previous: Option<String>,
}

/// Which field of the search form an error belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name (`filter`, `sort`).
    pub field: &'static str,
    /// What is wrong, for the person.
    pub message: String,
}

/// A person or group with their timeline.
#[derive(Debug, Clone)]
pub struct Detail {
    /// The resource as the SCIM API returns it (with a User's `groups`).
    pub resource: Value,
    /// Its change records, newest first.
    pub timeline: Vec<ChangeRecord>,
}

/// The dashboard.
pub async fn dashboard(console: &Console, operator: &Operator) -> Result<Dashboard, ConsoleError> {
    authorize(operator, Action::ViewDirectory)?;
    let tenant = &operator.tenant;
    let count = |kind: Kind| async move {
        let app = console.app();
        let rt = app
            .registry
            .resource_type(kind.resource_type())
            .ok_or_else(|| ConsoleError::Internal(format!("no {} type", kind.resource_type())))?;
        // `count = 0` asks the store for the total only.
        let query = ListQuery {
            count: 0,
            ..ListQuery::from_params(
                &app.registry,
                rt,
                &QueryParams::default(),
                app.settings.query_limits(),
            )?
        };
        Ok::<u64, ConsoleError>(
            app.store
                .list(tenant, rt, &query, Load::default())
                .await?
                .total,
        )
    };
    Ok(Dashboard {
        users: count(Kind::User).await?,
        groups: count(Kind::Group).await?,
        recent_changes: console.db().recent_changes(tenant, None, None, 10).await?,
        chain_head: console.db().chain_head(tenant).await?,
        bridge_configured: console.bridge_configured(),
        recent_actions: console.db().recent_actions(tenant, 5).await?,
        intake: match console.app().inbound.as_deref() {
            Some(i) => Some(i.queue.status(console.app().clock.now()).await?),
            None => None,
        },
        bridge: super::queues::bridge_overview(console, operator).await?,
    })
}

/// The console's action log of the tenant, newest first.
pub async fn activity(
    console: &Console,
    operator: &Operator,
) -> Result<Vec<ActionRow>, ConsoleError> {
    authorize(operator, Action::ViewDirectory)?;
    Ok(console.db().recent_actions(&operator.tenant, 100).await?)
}

/// The SCIM filter a plain search box means: people whose `userName`, or groups whose
/// `displayName`, starts with the text (case-insensitively, as `sw` compares them). Only these
/// derived, lower-cased columns: a prefix over JSON attributes (names, e-mail addresses) scans
/// every row's JSON, seconds at 100,000 users; the SCIM filter box can still ask for it.
pub fn plain_filter(kind: Kind, text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let quoted = serde_json::to_string(text).unwrap_or_default();
    Some(match kind {
        Kind::User => format!("userName sw {quoted}"),
        Kind::Group => format!("displayName sw {quoted}"),
    })
}

/// A page of people or groups. A bad filter or sort is a [`FieldError`] for that field.
pub async fn list(
    console: &Console,
    operator: &Operator,
    kind: Kind,
    search: &Search,
) -> Result<Result<Listing, FieldError>, ConsoleError> {
    authorize(operator, Action::ViewDirectory)?;
    let app = console.app();
    let rt = app
        .registry
        .resource_type(kind.resource_type())
        .ok_or_else(|| ConsoleError::Internal("resource type missing".into()))?;
    let (filter, field) = if search.filter.trim().is_empty() {
        (plain_filter(kind, &search.q), "q")
    } else {
        (Some(search.filter.trim().to_string()), "filter")
    };
    if let Some(f) = &filter
        && f.len() > app.settings.limits.max_filter_length
    {
        return Ok(Err(FieldError {
            field,
            message: format!(
                "the search is {} bytes long; at most {} are accepted",
                f.len(),
                app.settings.limits.max_filter_length
            ),
        }));
    }
    let sort = match search.sort.as_str() {
        "" => kind.sort_keys()[0].0,
        s => match kind.sort_keys().iter().find(|(k, _)| *k == s) {
            Some((k, _)) => k,
            None => {
                return Ok(Err(FieldError {
                    field: "sort",
                    message: format!("cannot sort by {s:?}"),
                }));
            }
        },
    };
    let descending = search.order == "descending";
    if search.filter.trim().is_empty() {
        return Ok(Ok(keyset_page(
            console, operator, kind, rt, search, sort, descending,
        )
        .await?));
    }
    let params = QueryParams {
        filter,
        sort_by: Some(sort.to_string()),
        sort_order: Some(if search.order == "descending" {
            "descending".into()
        } else {
            "ascending".into()
        }),
        start_index: Some(search.start.max(1).to_string()),
        count: Some(PAGE_SIZE.to_string()),
        ..QueryParams::default()
    };
    let query =
        match ListQuery::from_params(&app.registry, rt, &params, app.settings.query_limits()) {
            Ok(q) => q,
            Err(e) if e.status() == 400 => {
                return Ok(Err(FieldError {
                    field,
                    message: e.detail().to_string(),
                }));
            }
            Err(e) => return Err(e.into()),
        };
    let page = app
        .store
        .list(&operator.tenant, rt, &query, Load::default())
        .await?;
    Ok(Ok(Listing {
        total: page.total,
        start: query.start_index,
        rows: page
            .resources
            .iter()
            .map(|r| r.to_json(&app.registry, None))
            .collect(),
        next: None,
        previous: None,
    }))
}

/// A page of a list without a SCIM filter (the plain box or nothing), paged by key on an index
/// that yields the order (migration 0031): the database reads one page of keys and the count
/// from indexes, then the store reads the page's resources by id. `start` only numbers the rows
/// shown (or skips rows for a page reached by number without a key).
async fn keyset_page(
    console: &Console,
    operator: &Operator,
    kind: Kind,
    rt: &scim_core::schema::ResourceType,
    search: &Search,
    sort: &str,
    descending: bool,
) -> Result<Listing, ConsoleError> {
    use super::db::{KeysetQuery, ListKey, ListOrder};
    let app = console.app();
    let order = if sort == "meta.lastModified" {
        ListOrder::LastModified
    } else {
        ListOrder::Name
    };
    let text = search.q.trim();
    let prefix = (!text.is_empty()).then(|| crate::store::row::fold(text));
    let after = ListKey::decode(&search.after, order);
    let before = ListKey::decode(&search.before, order);
    let start = search.start.max(1);
    // Going back runs the query the other way from the first row shown, then turns it round.
    let backwards = after.is_none() && before.is_some();
    let limit = i64::try_from(PAGE_SIZE).unwrap_or(25) + 1;
    let mut keys = console
        .db()
        .list_keys(&KeysetQuery {
            tenant: &operator.tenant,
            resource_type: kind.resource_type(),
            order,
            descending: descending != backwards,
            prefix: prefix.as_deref(),
            after: after.as_ref().or(before.as_ref()),
            offset: if after.is_none() && before.is_none() {
                start - 1
            } else {
                0
            },
            limit,
        })
        .await?;
    let more = keys.len() as u64 > PAGE_SIZE;
    keys.truncate(PAGE_SIZE as usize);
    if backwards {
        keys.reverse();
    }
    let total = console
        .db()
        .count_keys(&operator.tenant, kind.resource_type(), prefix.as_deref())
        .await?;
    let mut rows = Vec::with_capacity(keys.len());
    for key in &keys {
        // A row deleted between the two reads is left out of this page.
        if let Some(r) = app
            .resources
            .get(&operator.tenant, rt, &key.id, Load::default())
            .await?
        {
            rows.push(r.to_json(&app.registry, None));
        }
    }
    let has_next = if backwards { true } else { more };
    let has_previous = if backwards { more } else { start > 1 };
    Ok(Listing {
        total,
        start,
        next: keys.last().filter(|_| has_next).map(|k| k.encode(order)),
        previous: keys
            .first()
            .filter(|_| has_previous)
            .map(|k| k.encode(order)),
        rows,
    })
}

/// A person or group by id, with its timeline (newest first, older than `before`).
pub async fn detail(
    console: &Console,
    operator: &Operator,
    kind: Kind,
    id: &str,
    before: Option<u64>,
) -> Result<Detail, ConsoleError> {
    authorize(operator, Action::ViewDirectory)?;
    let app = console.app();
    let rt = app
        .registry
        .resource_type(kind.resource_type())
        .ok_or_else(|| ConsoleError::Internal("resource type missing".into()))?;
    // A group's members can number in the hundreds of thousands: they are not loaded here.
    let load = Load {
        members: false,
        groups: kind == Kind::User,
    };
    let resource = app
        .store
        .get(&operator.tenant, rt, id, load)
        .await?
        .ok_or_else(|| ConsoleError::NotFound(format!("there is no {} with id {id}", rt.name)))?;
    Ok(Detail {
        resource: resource.to_json(&app.registry, None),
        timeline: console
            .db()
            .recent_changes(&operator.tenant, Some(id), before, TIMELINE_LENGTH)
            .await?,
    })
}

/// Members shown per page of a group.
pub const MEMBERS_PAGE: i64 = 50;

/// One page of a group's members.
#[derive(Debug, Clone)]
pub struct Members {
    /// Members in all.
    pub total: u64,
    /// This page, by id.
    pub rows: Vec<super::db::MemberRow>,
    /// The next page's `after=` (the last id shown), when there is one.
    pub next: Option<String>,
}

/// A page of the members of group `id`, after member id `after` (paged by the membership
/// table's key: a group can have hundreds of thousands of members).
pub async fn members(
    console: &Console,
    operator: &Operator,
    id: &str,
    after: &str,
) -> Result<Members, ConsoleError> {
    authorize(operator, Action::ViewDirectory)?;
    let mut rows = console
        .db()
        .group_members(&operator.tenant, id, after, MEMBERS_PAGE + 1)
        .await?;
    let more = rows.len() as i64 > MEMBERS_PAGE;
    rows.truncate(MEMBERS_PAGE as usize);
    Ok(Members {
        total: console.db().count_members(&operator.tenant, id).await?,
        next: rows.last().filter(|_| more).map(|r| r.member_id.clone()),
        rows,
    })
}

/// Records an action (allowed or refused) twice: as an audit event in the tenant's
/// hash-chained change log (`console.action`, principal `console:<subject>`), which `audit
/// verify` checks and no one can edit unnoticed, and in the console's own action log, which the
/// Activity page lists.
pub(crate) async fn log_action(
    console: &Console,
    operator: &Operator,
    action: Action,
    target: &str,
    outcome: &str,
    request_id: Option<&str>,
) -> Result<(), ConsoleError> {
    let subject_type = match action {
        Action::ViewDirectory
        | Action::Hire
        | Action::Update
        | Action::Terminate
        | Action::Rehire => "User",
        Action::ViewTokens | Action::CreateToken | Action::RevokeToken => "Token",
        Action::RetryIntakeJob => "IntakeJob",
        Action::RetryBridgeWork => "BridgeDeadLetter",
        Action::PreviewImport | Action::RunImport => "IntakeJob",
        Action::ViewAdmin | Action::CreateTenant => "Tenant",
        Action::ViewGovernance | Action::ViewCampaigns | Action::DecideReview => "AccessReview",
        Action::RequestGrant | Action::DecideGrant => "JitGrant",
    };
    // The subject id must be a short printable string; a form's free text may be neither.
    let subject_id = if target.is_empty()
        || target.len() > scim_core::change_log::MAX_EVENT_SUBJECT_ID_BYTES
        || target.chars().any(char::is_control)
    {
        "-"
    } else {
        target
    };
    let detail = serde_json::json!({
        "action": action.as_str(),
        "outcome": outcome,
        "operator": operator.display_name,
        "role": operator.role.as_str(),
    });
    let event =
        scim_core::change_log::AuditEvent::new("console.action", subject_type, subject_id, detail)?;
    let ctx = crate::store::WriteContext {
        tenant: operator.tenant.clone(),
        principal: operator.principal(),
        request_id: request_id.map(str::to_string),
        now: console.app().clock.now(),
    };
    console.app().store.append_event(&ctx, &event).await?;
    console
        .db()
        .record_action(NewAction {
            tenant: &operator.tenant,
            at: console.now(),
            subject: &operator.subject,
            display_name: &operator.display_name,
            role: operator.role.as_str(),
            action: action.as_str(),
            target,
            outcome,
            request_id,
        })
        .await?;
    Ok(())
}

/// Records an allowed action (outcome `ok`).
pub(crate) async fn record_action(
    console: &Console,
    permit: &Permit,
    target: &str,
    request_id: Option<&str>,
) -> Result<(), ConsoleError> {
    log_action(
        console,
        permit.operator(),
        permit.action(),
        target,
        "ok",
        request_id,
    )
    .await
}

/// Authorises an action; a refusal is recorded before it is returned.
pub(crate) async fn permit(
    console: &Console,
    operator: &Operator,
    action: Action,
    target: &str,
    request_id: Option<&str>,
) -> Result<Permit, ConsoleError> {
    match authorize(operator, action) {
        Ok(p) => Ok(p),
        Err(refused) => {
            log_action(console, operator, action, target, "refused", request_id).await?;
            tracing::warn!(subject = %operator.subject, role = %operator.role, action = action.as_str(), "console action refused");
            Err(refused.into())
        }
    }
}

/// The tenant's static tokens, oldest first (hashes stay in the store; none is shown).
pub async fn tokens(
    console: &Console,
    operator: &Operator,
) -> Result<Vec<TokenRecord>, ConsoleError> {
    authorize(operator, Action::ViewTokens)?;
    let store = crate::auth::token_store(console.app().store.clone());
    Ok(crate::auth::list_tokens(store.as_ref(), Some(&operator.tenant)).await?)
}

/// Longest token label accepted.
pub const MAX_LABEL_LEN: usize = 100;

/// Creates a token in the operator's tenant; its secret is returned once and stored nowhere.
pub async fn create_token(
    console: &Console,
    operator: &Operator,
    label: &str,
    read_only: bool,
    request_id: Option<&str>,
) -> Result<Result<(TokenRecord, SecretString), FieldError>, ConsoleError> {
    let label = label.trim();
    let permit = permit(console, operator, Action::CreateToken, label, request_id).await?;
    if label.is_empty()
        || label.chars().count() > MAX_LABEL_LEN
        || label.chars().any(char::is_control)
    {
        return Ok(Err(FieldError {
            field: "label",
            message: format!(
                "give the token a label of 1 to {MAX_LABEL_LEN} characters, such as \"Entra ID provisioning\""
            ),
        }));
    }
    let store = crate::auth::token_store(console.app().store.clone());
    let (record, secret) = crate::auth::create_token(
        store.as_ref(),
        &operator.tenant,
        label,
        read_only,
        console.app().clock.now(),
    )
    .await?;
    record_action(console, &permit, &record.id, request_id).await?;
    Ok(Ok((record, secret)))
}

/// One of the tenant's static tokens by id.
pub async fn token(
    console: &Console,
    operator: &Operator,
    id: &str,
) -> Result<TokenRecord, ConsoleError> {
    tokens(console, operator)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ConsoleError::NotFound(format!("there is no token {id} in this tenant")))
}

/// Revokes a token of the operator's tenant.
pub async fn revoke_token(
    console: &Console,
    operator: &Operator,
    id: &str,
    request_id: Option<&str>,
) -> Result<TokenRecord, ConsoleError> {
    let permit = permit(console, operator, Action::RevokeToken, id, request_id).await?;
    // Only a token of this tenant: the id alone would reach any tenant's.
    let token = token(console, operator, id).await?;
    if token.revoked.is_none() {
        let store = crate::auth::token_store(console.app().store.clone());
        crate::auth::revoke_token(store.as_ref(), id, console.app().clock.now()).await?;
    }
    record_action(console, &permit, id, request_id).await?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_search_quotes_its_text() {
        assert_eq!(plain_filter(Kind::Group, "  "), None);
        assert_eq!(
            plain_filter(Kind::Group, r#"Sales "EU""#).unwrap(),
            r#"displayName sw "Sales \"EU\"""#
        );
        assert_eq!(
            plain_filter(Kind::User, "ada").unwrap(),
            r#"userName sw "ada""#
        );
    }
}
