//! Arbitrary UTF-8 as a filter against the builtin User type: parsing must return a filter or
//! `invalidFilter`, never panic or overflow the stack, and a parsed filter must evaluate and
//! print back to text that parses to the same filter.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_core::filter::Filter;
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
            if again != filter {
                // A huge decimal may alternate between two neighbouring f64 values when
                // serde_json reads it back (see `stable_number`); anything else is a bug.
                let twice = Filter::parse(&fixture.registry, users, &again.to_string());
                assert_eq!(twice.as_ref(), Ok(&filter), "{printed}");
            }
        }
        Err(err) => assert_eq!(err.scim_type(), Some(scim_core::ScimType::InvalidFilter)),
    }
});
