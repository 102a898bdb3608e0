//! scim-core benchmarks (criterion): PATCH.
#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn benches`.

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use scim_core::patch::{self, Members, PatchRequest};
use scim_core::resource::{Meta, Resource};
use scim_core::schema::SchemaRegistry;
use serde_json::json;

/// PATCH: a typical Entra user update (string boolean, value paths, extension attributes), and a
/// group member add in Delta mode.
fn patch_benches(c: &mut Criterion) {
    let registry = SchemaRegistry::builtin();
    let users = registry.resource_type("User").unwrap();
    let groups = registry.resource_type("Group").unwrap();
    let user = Resource::new(
        "User",
        "u-1",
        json!({
            "userName": "bjensen@example.com",
            "active": true,
            "displayName": "Barbara Jensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984"}
        })
        .as_object()
        .unwrap()
        .clone(),
        Meta::new(time::OffsetDateTime::UNIX_EPOCH),
    );
    let entra = json!({
        "schemas": [patch::PATCH_OP_URN],
        "Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b.jensen@example.com"},
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
            {"op": "Replace", "path": "name.familyName", "value": "Jensen-Smith"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m-1"},
            {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Tours"}
        ]
    });
    c.bench_function("patch/entra_user_parse_and_apply", |b| {
        b.iter(|| {
            let request = PatchRequest::parse(black_box(entra.clone()), 100).unwrap();
            patch::apply(&registry, users, &user, &request, Members::Inline).unwrap()
        })
    });

    let group = Resource::new(
        "Group",
        "g-1",
        json!({"displayName": "Sales"}).as_object().unwrap().clone(),
        Meta::new(time::OffsetDateTime::UNIX_EPOCH),
    );
    let members: Vec<_> = (0..100)
        .map(|i| json!({"$ref": null, "value": format!("user-{i:05}")}))
        .collect();
    let add = PatchRequest::parse(
        json!({"Operations": [{"op": "Add", "path": "members", "value": members}]}),
        100,
    )
    .unwrap();
    c.bench_function("patch/group_add_100_members_delta", |b| {
        b.iter(|| patch::apply(&registry, groups, &group, black_box(&add), Members::Delta).unwrap())
    });
}

criterion_group!(benches, patch_benches);
criterion_main!(benches);
