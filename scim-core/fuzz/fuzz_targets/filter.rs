//! Arbitrary UTF-8 as a filter against the builtin User type: parsing must return a filter or
//! `invalidFilter`, never panic or overflow the stack, and a parsed filter must evaluate and
//! print back to text that parses to the same filter.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_core::filter::{Comparison, Filter};
use scim_core::schema::SchemaRegistry;
use std::sync::OnceLock;

struct Fixture {
    registry: SchemaRegistry,
    user: serde_json::Map<String, serde_json::Value>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        registry: SchemaRegistry::builtin(),
        user: serde_json::json!({
            "id": "2819c223",
            "externalId": "e1",
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "active": true,
            "emails": [{"type": "work", "value": "b@example.com", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Eng",
                "manager": {"value": "m1"}
            },
            "meta": {"created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"}
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let fixture = fixture();
    let Some(users) = fixture.registry.resource_type("User") else {
        return;
    };
    match Filter::parse(&fixture.registry, users, text) {
        Ok(filter) => {
            let _ = filter.matches(&fixture.user);
            let printed = filter.to_string();
            // Canonical text can outgrow the limit (`manager` prints URN-qualified).
            if printed.len() > scim_core::filter::MAX_FILTER_LEN {
                return;
            }
            let again = Filter::parse(&fixture.registry, users, &printed);
            let Ok(again) = again else {
                panic!("{printed}: {again:?}");
            };
            assert!(same(&again, &filter), "{printed}\n{again:?}\n{filter:?}");
        }
        Err(err) => assert_eq!(err.scim_type(), Some(scim_core::ScimType::InvalidFilter)),
    }
});

/// Structural equality, except that a huge decimal may come back as a neighbouring `f64`
/// (serde_json's default float parsing is not exact; see `stable_number` in the parser).
fn same(a: &Filter, b: &Filter) -> bool {
    match (a, b) {
        (Filter::And(x), Filter::And(y)) | (Filter::Or(x), Filter::Or(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Filter::Not(x), Filter::Not(y)) => same(x, y),
        (Filter::ValuePath { path: p, filter: x }, Filter::ValuePath { path: q, filter: y }) => {
            p == q && same(x, y)
        }
        (Filter::Compare(x), Filter::Compare(y)) => same_comparison(x, y),
        _ => a == b,
    }
}

fn same_comparison(x: &Comparison, y: &Comparison) -> bool {
    if x.path != y.path || x.op != y.op {
        return false;
    }
    match (x.value.as_f64(), y.value.as_f64()) {
        (Some(a), Some(b)) if x.value.is_f64() || y.value.is_f64() => {
            (a - b).abs() <= a.abs().max(b.abs()) * 1e-12
        }
        _ => x.value == y.value,
    }
}
