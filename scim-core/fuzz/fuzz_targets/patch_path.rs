//! Arbitrary UTF-8 as a PATCH path: parsing returns a path or `invalidPath`, never panics; a
//! parsed path prints back to text that parses to the same path; applying a `remove` on it to a
//! fixed user and group resolves it against the schemas without panicking, and fails (if it does)
//! only with a PATCH error type.

#![no_main]

mod common;

use common::Fixture;
use libfuzzer_sys::fuzz_target;
use scim_core::ScimType;
use scim_core::patch::{self, Members, PatchOp, PatchOperation, PatchRequest};
use serde_json::json;
use std::sync::OnceLock;

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        Fixture::new(
            json!({
                "userName": "bjensen",
                "name": {"givenName": "Barbara", "familyName": "Jensen"},
                "emails": [{"type": "work", "value": "b@example.com", "primary": true}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}}
            }),
            json!({"displayName": "Sales", "members": [{"value": "u-1"}, {"value": "u-2"}]}),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = match patch::parse_path(text) {
        Ok(path) => path,
        Err(err) => {
            assert_eq!(err.scim_type(), Some(ScimType::InvalidPath));
            return;
        }
    };
    let printed = path.to_string();
    assert_eq!(
        patch::parse_path(&printed).ok().as_ref(),
        Some(&path),
        "{printed}"
    );
    let f = fixture();
    for (rt, resource) in [("User", &f.user), ("Group", &f.group)] {
        let Some(rt) = f.registry.resource_type(rt) else {
            return;
        };
        for op in [PatchOp::Remove, PatchOp::Replace] {
            let request = PatchRequest {
                operations: vec![PatchOperation {
                    op,
                    path: Some(path.clone()),
                    value: Some(json!("x")),
                }],
            };
            for members in [Members::Inline, Members::Delta] {
                if let Err(err) = patch::apply(&f.registry, rt, resource, &request, members) {
                    assert!(
                        matches!(
                            err.scim_type(),
                            Some(
                                ScimType::InvalidPath
                                    | ScimType::NoTarget
                                    | ScimType::Mutability
                                    | ScimType::InvalidValue
                                    | ScimType::InvalidSyntax
                            )
                        ),
                        "{err}"
                    );
                }
            }
        }
    }
});
