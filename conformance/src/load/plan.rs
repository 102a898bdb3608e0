//! Pure request builders: the bodies and paths of every workload, and the Entra initial cycle.
//!
//! Nothing here touches the network, so the shapes and the order of the Entra cycle are unit
//! tested (see reference §1.2 and §1.4 of the Entra notes: match `GET`, then `POST`, groups
//! created without members, then `PATCH` `Add members` in batches).

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use crate::ctx::{ENTERPRISE, GROUP, PATCH_OP, USER};

/// Largest number of members Entra puts into one group `PATCH`.
pub const ENTRA_MEMBER_BATCH: usize = 100;

/// HTTP method of a planned request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PATCH`
    Patch,
}

impl Method {
    /// The method name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
        }
    }
}

/// One request, relative to the SCIM base URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Req {
    /// Method.
    pub method: Method,
    /// Path and query, starting with `/` (e.g. `/Users?filter=...`), already percent-encoded.
    pub path: String,
    /// JSON body, serialised.
    pub body: Option<String>,
}

impl Req {
    /// A `GET`.
    pub fn get(path: String) -> Self {
        Self {
            method: Method::Get,
            path,
            body: None,
        }
    }

    /// A request with a JSON body.
    pub fn with_body(method: Method, path: String, body: &Value) -> Self {
        Self {
            method,
            path,
            body: Some(body.to_string()),
        }
    }
}

/// Percent-encodes a query parameter value.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

/// Quotes a string as a SCIM filter literal (a JSON string).
fn literal(value: &str) -> String {
    Value::String(value.to_owned()).to_string()
}

/// `GET /Users/{id}` (W1).
pub fn get_user(id: &str) -> Req {
    Req::get(format!("/Users/{}", encode(id)))
}

/// `GET /Users?filter=userName eq "..."`: W2, and Entra's match request for a user.
pub fn find_user(user_name: &str) -> Req {
    let filter = format!("userName eq {}", literal(user_name));
    Req::get(format!("/Users?filter={}", encode(&filter)))
}

/// `GET /Groups?excludedAttributes=members&filter=displayName eq "..."`: Entra's match for a group.
pub fn find_group(display_name: &str) -> Req {
    let filter = format!("displayName eq {}", literal(display_name));
    Req::get(format!(
        "/Groups?excludedAttributes=members&filter={}",
        encode(&filter)
    ))
}

/// `GET /Groups/{id}?excludedAttributes=members` (W6).
pub fn get_group_without_members(id: &str) -> Req {
    Req::get(format!("/Groups/{}?excludedAttributes=members", encode(id)))
}

/// `GET /Users?startIndex=..&count=..` (W8); `page` counts from 0.
pub fn list_users_page(page: u64, count: u64) -> Req {
    Req::get(format!(
        "/Users?startIndex={}&count={count}",
        page * count + 1
    ))
}

/// The e-mail address of a benchmark user.
pub fn email_of(user_name: &str) -> String {
    if user_name.contains('@') {
        user_name.to_owned()
    } else {
        format!("{user_name}@bench.example")
    }
}

/// `POST /Users` with the body Entra sends (reference §1.4 A), for a user named `user_name`.
pub fn create_user(user_name: &str, external_id: &str) -> Req {
    let body = json!({
        "schemas": [USER, ENTERPRISE],
        "externalId": external_id,
        "userName": user_name,
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": email_of(user_name)}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Bench User", "familyName": "User", "givenName": "Bench"},
        "roles": [],
        ENTERPRISE: {"department": "Benchmarks"}
    });
    Req::with_body(Method::Post, "/Users".into(), &body)
}

/// `POST /Groups` without members, as Entra creates groups (reference §1.2).
pub fn create_group(display_name: &str, external_id: &str) -> Req {
    let body = json!({
        "schemas": [GROUP],
        "externalId": external_id,
        "displayName": display_name,
        "members": []
    });
    Req::with_body(Method::Post, "/Groups".into(), &body)
}

/// W4: `PATCH /Users/{id}` in Entra's legacy dialect: capitalised `Replace` of the work
/// e-mail through a value filter and `active` as the string `"False"`.
pub fn patch_user_legacy(id: &str, new_email: &str) -> Req {
    let body = json!({
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": new_email},
            {"op": "Replace", "path": "active", "value": "False"}
        ]
    });
    Req::with_body(Method::Patch, format!("/Users/{}", encode(id)), &body)
}

/// `PATCH /Groups/{id}` adding members the way Entra does (`"op":"Add"`, `$ref` null).
pub fn add_members<S: AsRef<str>>(group_id: &str, member_ids: &[S]) -> Req {
    let members: Vec<Value> = member_ids
        .iter()
        .map(|m| json!({"$ref": null, "value": m.as_ref()}))
        .collect();
    let body = json!({
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Add", "path": "members", "value": members}]
    });
    Req::with_body(
        Method::Patch,
        format!("/Groups/{}", encode(group_id)),
        &body,
    )
}

/// `PATCH /Groups/{id}` removing one member with an RFC 7644 value filter (the form Entra sends
/// with `aadOptscim062020`, and the only one every server accepts).
pub fn remove_member(group_id: &str, member_id: &str) -> Req {
    let body = json!({
        "schemas": [PATCH_OP],
        "Operations": [{"op": "remove", "path": format!("members[value eq {}]", literal(member_id))}]
    });
    Req::with_body(
        Method::Patch,
        format!("/Groups/{}", encode(group_id)),
        &body,
    )
}

/// Who belongs to which group in a synthetic directory: the Entra cycle's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    /// Number of users.
    pub users: usize,
    /// Members of each group, as a contiguous range of user indices `(start, len)`.
    pub groups: Vec<(usize, usize)>,
}

impl Directory {
    /// A directory of `users` users and `groups` groups holding `memberships` memberships in all.
    ///
    /// The first groups take the sizes in `tiers` (their members are the first users), so the
    /// group-size workloads find groups of exactly those sizes; the remaining memberships are
    /// spread evenly over the other groups, each a contiguous run of users at a different offset.
    /// Sizes are capped at `users`; with no group left for the remainder it is dropped.
    pub fn new(users: usize, groups: usize, memberships: usize, tiers: &[usize]) -> Self {
        let mut out = Vec::with_capacity(groups);
        let mut left = memberships;
        for &t in tiers.iter().take(groups) {
            let len = t.min(users).min(left);
            out.push((0, len));
            left -= len;
        }
        let rest = groups - out.len();
        if rest > 0 && users > 0 {
            let base = (left / rest).min(users);
            let mut extra = if base < users { left - base * rest } else { 0 };
            for j in 0..rest {
                let mut len = base;
                if extra > 0 && len < users {
                    len += 1;
                    extra -= 1;
                }
                let span = users - len + 1;
                let start = (j * 7919) % span;
                out.push((start, len));
            }
        }
        Self { users, groups: out }
    }

    /// Total memberships.
    pub fn memberships(&self) -> usize {
        self.groups.iter().map(|(_, l)| l).sum()
    }

    /// The membership `PATCH`es, group by group, each with at most `batch` user indices.
    pub fn member_batches(&self, batch: usize) -> Vec<(usize, Vec<usize>)> {
        let batch = batch.max(1);
        let mut out = Vec::new();
        for (g, &(start, len)) in self.groups.iter().enumerate() {
            let mut i = start;
            while i < start + len {
                let end = (i + batch).min(start + len);
                out.push((g, (i..end).collect()));
                i = end;
            }
        }
        out
    }
}

/// One step of the Entra initial cycle as Entra sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CycleStep {
    /// `GET /Users?filter=userName eq` for user `i`; if absent, `POST /Users`.
    MatchThenCreateUser(usize),
    /// `GET /Groups?excludedAttributes=members&filter=displayName eq` for group `g`; if absent,
    /// `POST /Groups` without members.
    MatchThenCreateGroup(usize),
    /// `PATCH /Groups/{g}` `Add members` with these user indices.
    AddMembers(usize, Vec<usize>),
}

/// The whole initial cycle in three phases (users, groups, memberships): steps of one phase may
/// run concurrently, except that the `PATCH`es of one group go one after another in the order
/// given; a phase starts when the previous one is done.
pub fn entra_cycle(dir: &Directory) -> [Vec<CycleStep>; 3] {
    [
        (0..dir.users).map(CycleStep::MatchThenCreateUser).collect(),
        (0..dir.groups.len())
            .map(CycleStep::MatchThenCreateGroup)
            .collect(),
        dir.member_batches(ENTRA_MEMBER_BATCH)
            .into_iter()
            .map(|(g, m)| CycleStep::AddMembers(g, m))
            .collect(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_requests_are_encoded() {
        assert_eq!(
            find_user("a b@x").path,
            "/Users?filter=userName%20eq%20%22a%20b%40x%22"
        );
        assert_eq!(
            find_group("Sales").path,
            "/Groups?excludedAttributes=members&filter=displayName%20eq%20%22Sales%22"
        );
        assert_eq!(
            list_users_page(2, 100).path,
            "/Users?startIndex=201&count=100"
        );
        assert_eq!(
            get_group_without_members("g1").path,
            "/Groups/g1?excludedAttributes=members"
        );
    }

    #[test]
    fn legacy_patch_shape() {
        let r = patch_user_legacy("u1", "n@x");
        assert_eq!((r.method, r.path.as_str()), (Method::Patch, "/Users/u1"));
        let v: Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
        assert_eq!(v["Operations"][0]["op"], "Replace");
        assert_eq!(v["Operations"][0]["path"], "emails[type eq \"work\"].value");
        assert_eq!(
            v["Operations"][1],
            json!({"op":"Replace","path":"active","value":"False"})
        );
    }

    #[test]
    fn member_patches() {
        let v: Value =
            serde_json::from_str(add_members("g", &["a", "b"]).body.as_deref().unwrap()).unwrap();
        assert_eq!(
            v["Operations"],
            json!([{"op":"Add","path":"members","value":[{"$ref":null,"value":"a"},{"$ref":null,"value":"b"}]}])
        );
        let v: Value =
            serde_json::from_str(remove_member("g", "a").body.as_deref().unwrap()).unwrap();
        assert_eq!(v["Operations"][0]["path"], "members[value eq \"a\"]");
        let v: Value =
            serde_json::from_str(create_group("G", "e").body.as_deref().unwrap()).unwrap();
        assert_eq!(v["members"], json!([]));
    }

    #[test]
    fn directory_sizes() {
        let d = Directory::new(100_000, 1_000, 1_000_000, &[10, 10_000, 100_000]);
        assert_eq!(d.groups.len(), 1_000);
        assert_eq!(d.memberships(), 1_000_000);
        assert_eq!(&d.groups[..3], &[(0, 10), (0, 10_000), (0, 100_000)]);
        for &(s, l) in &d.groups {
            assert!(s + l <= 100_000);
        }
        // Quick sizes.
        let d = Directory::new(5_000, 20, 50_000, &[10, 1_000, 5_000]);
        assert_eq!(d.memberships(), 50_000);
        // More memberships than fit: capped at users per group.
        let d = Directory::new(10, 3, 1_000, &[]);
        assert_eq!(d.groups, vec![(0, 10), (0, 10), (0, 10)]);
        assert_eq!(Directory::new(10, 0, 5, &[1]).groups, vec![]);
    }

    #[test]
    fn entra_cycle_order_and_batches() {
        let d = Directory::new(250, 3, 420, &[250]);
        let [users, groups, patches] = entra_cycle(&d);
        assert_eq!(users.len(), 250);
        assert_eq!(users[0], CycleStep::MatchThenCreateUser(0));
        assert_eq!(
            groups,
            vec![
                CycleStep::MatchThenCreateGroup(0),
                CycleStep::MatchThenCreateGroup(1),
                CycleStep::MatchThenCreateGroup(2)
            ]
        );
        // 250 members in batches of 100, 100, 50, then 85 + 85 for the other two groups.
        let sizes: Vec<(usize, usize)> = patches
            .iter()
            .map(|s| match s {
                CycleStep::AddMembers(g, m) => (*g, m.len()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sizes, vec![(0, 100), (0, 100), (0, 50), (1, 85), (2, 85)]);
        let total: usize = sizes.iter().map(|(_, n)| n).sum();
        assert_eq!(total, d.memberships());
    }
}
