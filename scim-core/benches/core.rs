//! Criterion benchmarks for the engine's hot paths. One group; each engine contributes a
//! `*_benches` function.

// `criterion_group!` generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use scim_core::filter::Filter;
use scim_core::patch::{self, Members, PatchRequest};
use scim_core::resource::{Meta, Resource};
use scim_core::schema::SchemaRegistry;
use serde_json::json;

/// Filter parsing (with resolution) and evaluation.
fn filter_benches(c: &mut Criterion) {
    let registry = SchemaRegistry::builtin();
    let users = registry.resource_type("User").expect("builtin User type");
    let entra = r#"userName eq "bjensen@example.com" and emails[type eq "work"].value eq "bjensen@example.com""#;
    let chain = (0..50)
        .map(|i| format!(r#"id eq "2819c223-7f76-453a-919d-4138{i:08}""#))
        .collect::<Vec<_>>()
        .join(" or ");
    let user = json!({
        "id": "2819c223",
        "externalId": "e1",
        "userName": "bjensen@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "active": true,
        "emails": [
            {"type": "home", "value": "babs@jensen.org"},
            {"type": "work", "value": "bjensen@example.com", "primary": true}
        ],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Eng",
            "manager": {"value": "m1"}
        },
        "meta": {"created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"}
    });
    let user = user.as_object().expect("object");
    let parsed = Filter::parse(&registry, users, entra).expect("valid filter");
    let wide = Filter::parse(&registry, users, &chain).expect("valid filter");
    let dated = Filter::parse(
        &registry,
        users,
        r#"meta.lastModified gt "2011-01-01T00:00:00Z" and not (manager eq "m2")"#,
    )
    .expect("valid filter");

    let mut group = c.benchmark_group("filter");
    group.bench_function("parse_entra", |b| {
        b.iter(|| Filter::parse(&registry, users, black_box(entra)))
    });
    group.bench_function("parse_or_chain_50", |b| {
        b.iter(|| Filter::parse(&registry, users, black_box(&chain)))
    });
    group.bench_function("eval_entra", |b| {
        b.iter(|| black_box(&parsed).matches(user))
    });
    group.bench_function("eval_or_chain_50", |b| {
        b.iter(|| black_box(&wide).matches(user))
    });
    group.bench_function("eval_datetime_not", |b| {
        b.iter(|| black_box(&dated).matches(user))
    });
    group.finish();
}

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

criterion_group!(benches, filter_benches, patch_benches);
criterion_main!(benches);
