//! Reading a user's actual state from Graph, restricted to the catalog.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Result;
use crate::graph::{GraphClient, GraphRequest};
use crate::plan::{ActualState, GraphUser};
use crate::rules::{DesiredState, Rules};

/// Properties read from the user object.
pub(crate) const USER_SELECT: &str = "id,userPrincipalName,accountEnabled,displayName,givenName,surname,jobTitle,department,employeeId,companyName,usageLocation,mail,assignedLicenses,licenseAssignmentStates";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Finds the Graph user whose `match.graph` property equals `value`.
pub(crate) async fn find_user(
    client: &GraphClient,
    rules: &Rules,
    value: &str,
) -> Result<Option<Value>> {
    let prop = rules.match_spec.graph.as_str();
    if prop == "id" {
        return get_by_id(client, value).await;
    }
    let filter = format!("{prop} eq '{}'", value.replace('\'', "''"));
    let r = client
        .send(&GraphRequest::get(format!(
            "/users?$filter={}&$select={USER_SELECT}",
            enc(&filter)
        )))
        .await?;
    if !r.is_success() {
        return Err(r.to_error().into());
    }
    Ok(r.body["value"].as_array().and_then(|a| a.first()).cloned())
}

async fn get_by_id(client: &GraphClient, id: &str) -> Result<Option<Value>> {
    let r = client
        .send(&GraphRequest::get(format!(
            "/users/{}?$select={USER_SELECT}",
            enc(id)
        )))
        .await?;
    match r.status {
        404 => Ok(None),
        _ if r.is_success() => Ok(Some(r.body)),
        _ => Err(r.to_error().into()),
    }
}

/// Reads the actual state: the user (by known id, else by match), its direct
/// memberships, direct licenses, role assignments and manager.
pub(crate) async fn actual_state(
    client: &GraphClient,
    rules: &Rules,
    desired: &DesiredState,
    known_id: Option<&str>,
) -> Result<ActualState> {
    let mut user = match known_id {
        Some(id) => get_by_id(client, id).await?,
        None => None,
    };
    if user.is_none()
        && let Some(v) = &desired.match_value
    {
        user = find_user(client, rules, v).await?;
    }
    let Some(u) = user else {
        return Ok(ActualState {
            known: true,
            user: None,
        });
    };
    let id = u["id"].as_str().unwrap_or_default().to_owned();
    let reads = [
        GraphRequest::get(format!(
            "/users/{id}/memberOf/microsoft.graph.group?$select=id&$top=999"
        )),
        GraphRequest::get(format!(
            "/roleManagement/directory/roleAssignments?$filter={}",
            enc(&format!("principalId eq '{id}'"))
        )),
        GraphRequest::get(format!("/users/{id}/manager?$select=id")),
    ];
    let res = client.batch(&reads).await?;
    let mut groups_json = res[0].body["value"].as_array().cloned().unwrap_or_default();
    if !res[0].is_success() {
        return Err(res[0].to_error().into());
    }
    if let Some(next) = res[0].body["@odata.nextLink"].as_str() {
        groups_json.extend(client.get_all(next, 100).await?);
    }
    if !res[1].is_success() {
        return Err(res[1].to_error().into());
    }
    let mut roles_json = res[1].body["value"].as_array().cloned().unwrap_or_default();
    if let Some(next) = res[1].body["@odata.nextLink"].as_str() {
        roles_json.extend(client.get_all(next, 100).await?);
    }
    let manager_id = if res[2].is_success() {
        res[2].body["id"].as_str().map(str::to_owned)
    } else {
        None
    };
    if !res[2].is_success() && res[2].status != 404 {
        return Err(res[2].to_error().into());
    }
    let cat = &rules.catalog;
    let member_ids: Vec<String> = groups_json
        .iter()
        .filter_map(|g| g["id"].as_str().map(str::to_ascii_lowercase))
        .collect();
    let groups = cat
        .groups
        .iter()
        .filter(|(_, gid)| member_ids.contains(&gid.to_ascii_lowercase()))
        .map(|(n, _)| n.clone())
        .collect();
    let direct: Vec<(String, Vec<String>)> = match u["licenseAssignmentStates"].as_array() {
        Some(states) => states
            .iter()
            .filter(|s| s["assignedByGroup"].is_null())
            .map(|s| {
                (
                    s["skuId"].as_str().unwrap_or_default().to_owned(),
                    strings(&s["disabledPlans"]),
                )
            })
            .collect(),
        None => u["assignedLicenses"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|l| {
                        (
                            l["skuId"].as_str().unwrap_or_default().to_owned(),
                            strings(&l["disabledPlans"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    let licenses = cat
        .licenses
        .iter()
        .filter_map(|(n, l)| {
            direct
                .iter()
                .find(|(s, _)| s.eq_ignore_ascii_case(&l.sku_id))
                .map(|(_, d)| (n.clone(), d.clone()))
        })
        .collect();
    let mut roles = BTreeMap::new();
    for (name, spec) in &cat.roles {
        if let Some(a) = roles_json.iter().find(|a| {
            a["roleDefinitionId"]
                .as_str()
                .is_some_and(|d| d.eq_ignore_ascii_case(&spec.role_definition_id))
                && a["directoryScopeId"].as_str().unwrap_or("/") == spec.directory_scope_id
        }) {
            roles.insert(
                name.clone(),
                a["id"].as_str().unwrap_or_default().to_owned(),
            );
        }
    }
    let attributes = desired
        .attributes
        .keys()
        .filter_map(|k| {
            u.get(k)
                .filter(|v| !v.is_null())
                .map(|v| (k.clone(), v.clone()))
        })
        .collect();
    Ok(ActualState {
        known: true,
        user: Some(GraphUser {
            id,
            account_enabled: u["accountEnabled"].as_bool().unwrap_or(true),
            attributes,
            manager_id,
            groups,
            licenses,
            roles,
        }),
    })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
