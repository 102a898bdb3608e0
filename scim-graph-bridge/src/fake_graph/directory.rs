//! The emulated directory and Graph routes of the fake.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};

mod routes;

use super::FakeResponse;
pub(crate) use routes::dispatch_logged;
use routes::{not_found, page, ref_id, select};

const DUP_MEMBER: &str = "One or more added object references already exist for the following modified properties: 'members'.";
const MISSING_MEMBER: &str = "One or more removed object references do not exist for the following modified properties: 'members'.";
const DUP_ROLE: &str = "A conflicting object with one or more of the specified property values is present in the directory.";
const BAD_USAGE_LOCATION: &str =
    "License assignment cannot be done for user with invalid usage location.";

#[derive(Clone, Debug, Default)]
struct FUser {
    props: Map<String, Value>,
    licenses: BTreeMap<String, Vec<String>>,
    manager: Option<String>,
    /// `signInActivity`, returned only when `$select`ed (as Graph does).
    sign_in: Option<Value>,
}

#[derive(Clone, Debug, Default)]
struct FGroup {
    name: String,
    members: BTreeSet<String>,
    owners: BTreeSet<String>,
}

#[derive(Clone, Debug)]
struct FRole {
    definition: String,
    principal: String,
    scope: String,
}

/// The fake tenant's directory.
#[derive(Debug, Default)]
pub struct Directory {
    users: BTreeMap<String, FUser>,
    deleted: BTreeMap<String, FUser>,
    groups: BTreeMap<String, FGroup>,
    skus: BTreeMap<String, (String, u32)>,
    roles: BTreeMap<String, FRole>,
    hidden: HashMap<String, u32>,
    /// Requests referencing a newly created user answered 404 before it "replicates".
    pub replication_delay: u32,
    /// `assignLicense` calls answered "invalid usage location" right after a PATCH of `usageLocation`.
    pub usage_location_delay: u32,
    stale_location: HashMap<String, u32>,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Directory {
    /// Adds a user with the given properties; returns its id.
    pub fn add_user(&mut self, props: Value) -> String {
        let id = new_id();
        let mut p = props.as_object().cloned().unwrap_or_default();
        p.insert("id".into(), Value::String(id.clone()));
        p.entry("accountEnabled").or_insert(Value::Bool(true));
        self.users.insert(
            id.clone(),
            FUser {
                props: p,
                ..FUser::default()
            },
        );
        id
    }
    /// Adds a group; returns its id.
    pub fn add_group(&mut self, name: &str) -> String {
        let id = new_id();
        self.groups.insert(
            id.clone(),
            FGroup {
                name: name.into(),
                ..FGroup::default()
            },
        );
        id
    }
    /// Adds a subscribed SKU with `units` seats; returns its id.
    pub fn add_sku(&mut self, part: &str, units: u32) -> String {
        let id = new_id();
        self.skus.insert(id.clone(), (part.into(), units));
        id
    }
    /// Adds a user to a group directly (seeding).
    pub fn add_member(&mut self, group: &str, user: &str) {
        if let Some(g) = self.groups.get_mut(group) {
            g.members.insert(user.into());
        }
    }
    /// Removes a user from a group directly (a change made in Entra by hand).
    pub fn remove_member(&mut self, group: &str, user: &str) {
        if let Some(g) = self.groups.get_mut(group) {
            g.members.remove(user);
        }
    }
    /// Makes a user an owner of a group (seeding).
    pub fn add_owner(&mut self, group: &str, user: &str) {
        if let Some(g) = self.groups.get_mut(group) {
            g.owners.insert(user.into());
        }
    }
    /// Owners of a group.
    pub fn owners(&self, group: &str) -> BTreeSet<String> {
        self.groups
            .get(group)
            .map(|g| g.owners.clone())
            .unwrap_or_default()
    }
    /// Sets (or, with `None`, clears) the user's `signInActivity.lastSignInDateTime` (RFC 3339),
    /// as Graph reports it with `$select=signInActivity`. `false` when there is no such user.
    pub fn set_last_sign_in(&mut self, user: &str, at: Option<&str>) -> bool {
        let Some(id) = self.find_user(user) else {
            return false;
        };
        let u = self.users.get_mut(&id).expect("found");
        u.sign_in = at.map(|t| {
            json!({"lastSignInDateTime": t, "lastSignInRequestId": uuid::Uuid::new_v4().to_string(),
                   "lastNonInteractiveSignInDateTime": t, "lastSuccessfulSignInDateTime": t})
        });
        true
    }
    /// Assigns a role directly (seeding); returns the assignment id.
    pub fn assign_role(&mut self, user: &str, definition: &str, scope: &str) -> String {
        let id = format!("{}-1", uuid::Uuid::new_v4().simple());
        self.roles.insert(
            id.clone(),
            FRole {
                definition: definition.into(),
                principal: user.into(),
                scope: scope.into(),
            },
        );
        id
    }
    /// Assigns a license directly (seeding).
    pub fn assign_license(&mut self, user: &str, sku: &str) {
        if let Some(u) = self.users.get_mut(user) {
            u.licenses.insert(sku.into(), Vec::new());
        }
    }
    /// The user's properties (with `assignedLicenses`), if it exists and is not deleted.
    pub fn user(&self, id: &str) -> Option<Value> {
        self.users.get(id).map(user_json)
    }
    /// Id of the user with this UPN.
    pub fn user_by_upn(&self, upn: &str) -> Option<String> {
        self.find_user(upn)
    }
    /// Whether the user was (soft) deleted.
    pub fn is_deleted(&self, id: &str) -> bool {
        self.deleted.contains_key(id)
    }
    /// Direct members of a group.
    pub fn members(&self, group: &str) -> BTreeSet<String> {
        self.groups
            .get(group)
            .map(|g| g.members.clone())
            .unwrap_or_default()
    }
    /// Groups the user is a direct member of.
    pub fn groups_of(&self, user: &str) -> BTreeSet<String> {
        self.groups
            .iter()
            .filter(|(_, g)| g.members.contains(user))
            .map(|(id, _)| id.clone())
            .collect()
    }
    /// `(roleDefinitionId, directoryScopeId)` of the user's role assignments.
    pub fn roles_of(&self, user: &str) -> BTreeSet<(String, String)> {
        self.roles
            .values()
            .filter(|r| r.principal == user)
            .map(|r| (r.definition.clone(), r.scope.clone()))
            .collect()
    }
    /// SKU ids assigned directly to the user.
    pub fn licenses_of(&self, user: &str) -> BTreeSet<String> {
        self.users
            .get(user)
            .map(|u| u.licenses.keys().cloned().collect())
            .unwrap_or_default()
    }
    /// The user's manager id.
    pub fn manager_of(&self, user: &str) -> Option<String> {
        self.users.get(user).and_then(|u| u.manager.clone())
    }
    /// A JSON snapshot of the whole directory.
    pub fn snapshot(&self) -> Value {
        json!({
            "users": self.users.values().map(user_json).collect::<Vec<_>>(),
            "deletedUsers": self.deleted.keys().collect::<Vec<_>>(),
            "groups": self.groups.iter().map(|(id, g)| json!({"id": id, "displayName": g.name, "members": g.members, "owners": g.owners})).collect::<Vec<_>>(),
            "roleAssignments": self.roles.iter().map(|(id, r)| role_json(id, r)).collect::<Vec<_>>(),
            "subscribedSkus": self.skus_json(),
        })
    }

    fn find_user(&self, key: &str) -> Option<String> {
        if self.users.contains_key(key) {
            return Some(key.into());
        }
        self.users
            .iter()
            .find(|(_, u)| {
                u.props
                    .get("userPrincipalName")
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.eq_ignore_ascii_case(key))
            })
            .map(|(id, _)| id.clone())
    }

    fn skus_json(&self) -> Vec<Value> {
        self.skus
            .iter()
            .map(|(id, (part, units))| {
                let used = self.users.values().filter(|u| u.licenses.contains_key(id)).count();
                json!({"skuId": id, "skuPartNumber": part, "prepaidUnits": {"enabled": units}, "consumedUnits": used})
            })
            .collect()
    }
}

fn user_json(u: &FUser) -> Value {
    let mut p = u.props.clone();
    p.remove("passwordProfile");
    let lic: Vec<Value> = u
        .licenses
        .iter()
        .map(|(s, d)| json!({"skuId": s, "disabledPlans": d}))
        .collect();
    let states: Vec<Value> = u
        .licenses
        .iter()
        .map(|(s, d)| json!({"skuId": s, "disabledPlans": d, "assignedByGroup": null, "state": "Active", "error": "None"}))
        .collect();
    p.insert("assignedLicenses".into(), Value::Array(lic));
    p.insert("licenseAssignmentStates".into(), Value::Array(states));
    Value::Object(p)
}

fn role_json(id: &str, r: &FRole) -> Value {
    json!({"@odata.type": "#microsoft.graph.unifiedRoleAssignment", "id": id,
           "roleDefinitionId": r.definition, "principalId": r.principal, "directoryScopeId": r.scope})
}

impl Directory {
    fn create_user(&mut self, body: Option<Value>) -> FakeResponse {
        let b = body.unwrap_or_default();
        for req in [
            "accountEnabled",
            "displayName",
            "mailNickname",
            "userPrincipalName",
        ] {
            if b.get(req).is_none_or(Value::is_null) {
                return FakeResponse::err(
                    400,
                    "Request_BadRequest",
                    &format!("Invalid value specified for property '{req}' of resource 'User'."),
                );
            }
        }
        if b["passwordProfile"]["password"]
            .as_str()
            .is_none_or(|p| p.len() < 8)
        {
            return FakeResponse::err(
                400,
                "Request_BadRequest",
                "The specified password does not comply with password complexity requirements.",
            );
        }
        let upn = b["userPrincipalName"].as_str().unwrap_or_default();
        if self.find_user(upn).is_some() {
            let mut e = super::graph_error(
                "Request_BadRequest",
                "Another object with the same value for property userPrincipalName already exists.",
            );
            e["error"]["details"] = json!([{"code": "ObjectConflict", "target": "userPrincipalName", "message": "Another object with the same value for property userPrincipalName already exists."}]);
            return FakeResponse::new(400, Some(e));
        }
        let id = self.add_user(b);
        if self.replication_delay > 0 {
            self.hidden.insert(id.clone(), self.replication_delay);
        }
        FakeResponse::new(201, self.user(&id))
    }

    #[allow(clippy::too_many_arguments)]
    fn user_route(
        &mut self,
        method: &str,
        id: &str,
        rest: &[&str],
        q: &HashMap<String, String>,
        body: Option<Value>,
        base: &str,
        path: &str,
    ) -> FakeResponse {
        match (method, rest) {
            ("GET", []) => {
                let mut u = self.user(id).unwrap_or_default();
                if q.get("$select")
                    .is_some_and(|s| s.split(',').any(|k| k.trim() == "signInActivity"))
                {
                    u["signInActivity"] = self.users[id].sign_in.clone().unwrap_or(Value::Null);
                }
                FakeResponse::new(200, Some(select(u, q)))
            }
            ("PATCH", []) => {
                let Some(Value::Object(b)) = body else {
                    return FakeResponse::err(400, "Request_BadRequest", "Body required.");
                };
                if b.contains_key("usageLocation") && self.usage_location_delay > 0 {
                    self.stale_location
                        .insert(id.to_owned(), self.usage_location_delay);
                }
                let u = self.users.get_mut(id).expect("exists");
                for (k, v) in b {
                    if k == "id" {
                        continue;
                    }
                    if v.is_null() {
                        u.props.remove(&k)
                    } else {
                        u.props.insert(k, v)
                    };
                }
                FakeResponse::new(204, None)
            }
            ("DELETE", []) => {
                let u = self.users.remove(id).expect("exists");
                for g in self.groups.values_mut() {
                    g.members.remove(id);
                }
                self.deleted.insert(id.into(), u);
                FakeResponse::new(204, None)
            }
            ("PUT", ["manager", "$ref"]) => {
                let Some(m) = ref_id(&body) else {
                    return FakeResponse::err(400, "Request_BadRequest", "Missing @odata.id.");
                };
                if !self.users.contains_key(&m) {
                    return not_found(&m);
                }
                self.users.get_mut(id).expect("exists").manager = Some(m);
                FakeResponse::new(204, None)
            }
            ("GET", ["manager"]) => match self.manager_of(id).and_then(|m| self.user(&m)) {
                Some(m) => FakeResponse::new(200, Some(select(m, q))),
                None => not_found("manager"),
            },
            ("POST", ["revokeSignInSessions"]) => {
                let now = time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                self.users
                    .get_mut(id)
                    .expect("exists")
                    .props
                    .insert("signInSessionsValidFromDateTime".into(), Value::String(now));
                FakeResponse::new(
                    200,
                    Some(
                        json!({"@odata.context": format!("{base}/v1.0/$metadata#Edm.Boolean"), "value": true}),
                    ),
                )
            }
            ("POST", ["assignLicense"]) => self.assign_license_call(id, body),
            ("GET", ["memberOf"]) | ("GET", ["memberOf", "microsoft.graph.group"]) => {
                let items = self
                    .groups
                    .iter()
                    .filter(|(_, g)| g.members.contains(id))
                    .map(|(gid, g)| json!({"@odata.type": "#microsoft.graph.group", "id": gid, "displayName": g.name}))
                    .collect();
                page(items, q, base, path)
            }
            _ => FakeResponse::err(
                400,
                "Request_BadRequest",
                &format!("fake: unsupported {method} {path}"),
            ),
        }
    }

    fn assign_license_call(&mut self, id: &str, body: Option<Value>) -> FakeResponse {
        let b = body.unwrap_or_default();
        let (Some(adds), Some(removes)) =
            (b["addLicenses"].as_array(), b["removeLicenses"].as_array())
        else {
            return FakeResponse::err(
                400,
                "Request_BadRequest",
                "Invalid value specified for property 'addLicenses' or 'removeLicenses'.",
            );
        };
        let u = &self.users[id];
        let has_location = u
            .props
            .get("usageLocation")
            .and_then(Value::as_str)
            .is_some_and(|s| s.len() == 2);
        let stale = match self.stale_location.get_mut(id) {
            Some(n) if *n > 0 && !adds.is_empty() => {
                *n -= 1;
                true
            }
            _ => false,
        };
        if !adds.is_empty() && (!has_location || stale) {
            return FakeResponse::err(400, "Request_BadRequest", BAD_USAGE_LOCATION);
        }
        let mut new = u.licenses.clone();
        for r in removes {
            let sku = r.as_str().unwrap_or_default();
            if new.remove(sku).is_none() {
                return FakeResponse::err(
                    400,
                    "Request_BadRequest",
                    "User does not have a corresponding license.",
                );
            }
        }
        for a in adds {
            let sku = a["skuId"].as_str().unwrap_or_default().to_owned();
            let Some((_, units)) = self.skus.get(&sku) else {
                return FakeResponse::err(
                    400,
                    "Request_BadRequest",
                    &format!("License {sku} does not correspond to a valid company License."),
                );
            };
            let used = self
                .users
                .iter()
                .filter(|(uid, x)| *uid != id && x.licenses.contains_key(&sku))
                .count();
            if used as u32 >= *units {
                return FakeResponse::err(
                    400,
                    "Request_BadRequest",
                    &format!("Subscription with SKU {sku} does not have any available licenses."),
                );
            }
            let disabled = a["disabledPlans"]
                .as_array()
                .map(|d| {
                    d.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            new.insert(sku, disabled);
        }
        self.users.get_mut(id).expect("exists").licenses = new;
        FakeResponse::new(200, self.user(id))
    }
}
