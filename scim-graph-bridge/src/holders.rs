//! Who holds a grant in Graph now, with each holder's last sign-in: what an access review
//! starts from. Reads only (no write), through the bridge's [`GraphClient`].
//!
//! - a group (catalog or not): `GET /groups/{id}/members/microsoft.graph.user` (direct members,
//!   paged; `GroupMember.Read.All`);
//! - a directory role: `GET /roleManagement/directory/roleAssignments?$filter=roleDefinitionId
//!   eq '…'` restricted to the catalog's scope (`RoleManagement.Read.Directory`);
//! - a license: `GET /users?$filter=assignedLicenses/any(x:x/skuId eq …)` (`User.Read.All`);
//!   only direct assignments count, as in the planner;
//! - each holder's `signInActivity.lastSignInDateTime` through `GET /users/{id}?$select=…`
//!   in `$batch`es (`AuditLog.Read.All`; Graph returns it only with an Entra ID P1 licence, so a
//!   missing value means "unknown", never "inactive").

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::Result;
use crate::graph::{GraphClient, GraphRequest};
use crate::overrides::{Grant, GrantKind};
use crate::rules::Rules;

/// Where a reviewed grant lives in Graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GrantTarget {
    /// A catalog grant (by catalog name).
    Catalog {
        /// The grant.
        grant: Grant,
    },
    /// A Graph group outside the rules' catalog, by object id (reviewable, never planned).
    GraphGroup {
        /// The group's object id.
        group_id: String,
    },
}

/// One holder of a grant as Graph reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// The Graph user id.
    pub graph_user_id: String,
    /// `userPrincipalName`.
    pub user_principal_name: Option<String>,
    /// `displayName`.
    pub display_name: Option<String>,
    /// The value of the rules' `match.graph` property (how the SCIM user is found).
    pub match_value: Option<String>,
    /// `signInActivity.lastSignInDateTime`, when Graph reports one.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_sign_in: Option<OffsetDateTime>,
    /// The role assignment id (roles only): what a revocation deletes.
    pub assignment_id: Option<String>,
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The Graph object id of `target` (group id, role definition id or SKU id); `None` when a
/// catalog name is unknown.
pub fn object_id(rules: &Rules, target: &GrantTarget) -> Option<String> {
    match target {
        GrantTarget::GraphGroup { group_id } => Some(group_id.clone()),
        GrantTarget::Catalog { grant } => match grant.kind {
            GrantKind::Group => rules.catalog.groups.get(&grant.name).cloned(),
            GrantKind::Role => rules
                .catalog
                .roles
                .get(&grant.name)
                .map(|r| r.role_definition_id.clone()),
            GrantKind::License => rules
                .catalog
                .licenses
                .get(&grant.name)
                .map(|l| l.sku_id.clone()),
        },
    }
}

/// The current holders of `target`, users only, each with the last sign-in Graph reports.
pub async fn holders(
    client: &GraphClient,
    rules: &Rules,
    target: &GrantTarget,
) -> Result<Vec<Holder>> {
    let match_prop = rules.match_spec.graph.clone();
    let select = format!("id,userPrincipalName,displayName,{match_prop}");
    let unknown = || {
        crate::Error::config(format!(
            "{target:?}: not in the rules' catalog (`[catalog.*]`)"
        ))
    };
    let mut assignments: Vec<(String, String)> = Vec::new();
    let users: Vec<Value> = match target {
        GrantTarget::GraphGroup { group_id } => {
            list(
                client,
                &format!(
                    "/groups/{}/members/microsoft.graph.user?$select={select}&$top=999",
                    enc(group_id)
                ),
            )
            .await?
        }
        GrantTarget::Catalog { grant } => match grant.kind {
            GrantKind::Group => {
                let gid = rules.catalog.groups.get(&grant.name).ok_or_else(unknown)?;
                list(
                    client,
                    &format!(
                        "/groups/{}/members/microsoft.graph.user?$select={select}&$top=999",
                        enc(gid)
                    ),
                )
                .await?
            }
            GrantKind::License => {
                let sku = rules
                    .catalog
                    .licenses
                    .get(&grant.name)
                    .ok_or_else(unknown)?;
                let filter = format!("assignedLicenses/any(x:x/skuId eq {})", sku.sku_id);
                list(
                    client,
                    &format!(
                        "/users?$filter={}&$select={select},licenseAssignmentStates&$top=999",
                        enc(&filter)
                    ),
                )
                .await?
                .into_iter()
                .filter(|u| direct_license(u, &sku.sku_id))
                .collect()
            }
            GrantKind::Role => {
                let spec = rules.catalog.roles.get(&grant.name).ok_or_else(unknown)?;
                let filter = format!("roleDefinitionId eq '{}'", spec.role_definition_id);
                let rows = list(
                    client,
                    &format!(
                        "/roleManagement/directory/roleAssignments?$filter={}",
                        enc(&filter)
                    ),
                )
                .await?;
                assignments = rows
                    .iter()
                    .filter(|a| {
                        a["directoryScopeId"].as_str().unwrap_or("/") == spec.directory_scope_id
                    })
                    .filter_map(|a| {
                        Some((
                            a["principalId"].as_str()?.to_owned(),
                            a["id"].as_str()?.to_owned(),
                        ))
                    })
                    .collect();
                let reads: Vec<GraphRequest> = assignments
                    .iter()
                    .map(|(p, _)| GraphRequest::get(format!("/users/{}?$select={select}", enc(p))))
                    .collect();
                let answers = client.batch(&reads).await?;
                let mut found = Vec::new();
                for r in answers {
                    // a principal that is not a user (a group or a service principal) is 404 here
                    if r.is_success() {
                        found.push(r.body);
                    } else if r.status != 404 {
                        return Err(r.to_error().into());
                    }
                }
                found
            }
        },
    };
    let mut out: Vec<Holder> = users
        .iter()
        .filter_map(|u| {
            let id = u["id"].as_str()?.to_owned();
            Some(Holder {
                assignment_id: assignments
                    .iter()
                    .find(|(p, _)| p.eq_ignore_ascii_case(&id))
                    .map(|(_, a)| a.clone()),
                user_principal_name: u["userPrincipalName"].as_str().map(str::to_owned),
                display_name: u["displayName"].as_str().map(str::to_owned),
                match_value: u[match_prop.as_str()].as_str().map(str::to_owned),
                last_sign_in: None,
                graph_user_id: id,
            })
        })
        .collect();
    out.sort_by(|a, b| a.graph_user_id.cmp(&b.graph_user_id));
    out.dedup_by(|a, b| a.graph_user_id == b.graph_user_id);
    let reads: Vec<GraphRequest> = out
        .iter()
        .map(|h| {
            GraphRequest::get(format!(
                "/users/{}?$select=id,signInActivity",
                enc(&h.graph_user_id)
            ))
        })
        .collect();
    let answers = client.batch(&reads).await?;
    for (h, r) in out.iter_mut().zip(answers) {
        if r.is_success() {
            h.last_sign_in = r.body["signInActivity"]["lastSignInDateTime"]
                .as_str()
                .and_then(|s| {
                    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
                });
        }
    }
    Ok(out)
}

fn direct_license(user: &Value, sku: &str) -> bool {
    match user["licenseAssignmentStates"].as_array() {
        Some(states) => states.iter().any(|s| {
            s["assignedByGroup"].is_null()
                && s["skuId"]
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(sku))
        }),
        None => true,
    }
}

async fn list(client: &GraphClient, path: &str) -> Result<Vec<Value>> {
    let r = client.send(&GraphRequest::get(path.to_owned())).await?;
    if !r.is_success() {
        return Err(r.to_error().into());
    }
    let mut items = r.body["value"].as_array().cloned().unwrap_or_default();
    if let Some(next) = r.body["@odata.nextLink"].as_str() {
        items.extend(client.get_all(next, 1000).await?);
    }
    Ok(items)
}
