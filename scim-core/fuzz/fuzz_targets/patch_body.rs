//! Arbitrary bytes as a PATCH request body: JSON → `PatchRequest::parse` → `apply` to a fixed
//! user and a fixed group, in both membership modes. Nothing may panic; every failure is a 400
//! with a PATCH error type; a success is deterministic, and re-applying the same request with
//! `Members::Delta` only fails where `needs_inline_members` said it would.

#![no_main]

mod common;

use common::Fixture;
use libfuzzer_sys::fuzz_target;
use scim_core::ScimType;
use scim_core::patch::{self, Members, PatchRequest, needs_inline_members};
use serde_json::json;
use std::sync::OnceLock;

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        Fixture::new(
            json!({
                "userName": "bjensen",
                "active": true,
                "name": {"givenName": "Barbara", "familyName": "Jensen"},
                "emails": [{"type": "work", "value": "b@example.com", "primary": true}],
                "phoneNumbers": [{"type": "mobile", "value": "555"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                    "employeeNumber": "701984",
                    "manager": {"value": "m1", "displayName": "Boss"}
                }
            }),
            json!({"displayName": "Sales", "members": [{"value": "u-1"}, {"value": "u-2", "display": "B"}]}),
        )
    })
}

fn patch_error(err: &scim_core::Error) -> bool {
    err.status() == 400
        && matches!(
            err.scim_type(),
            Some(
                ScimType::InvalidPath
                    | ScimType::NoTarget
                    | ScimType::Mutability
                    | ScimType::InvalidValue
                    | ScimType::InvalidSyntax
                    | ScimType::TooMany
            )
        )
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let request = match PatchRequest::parse(body, 32) {
        Ok(request) => request,
        Err(err) => {
            assert!(patch_error(&err), "{err}");
            return;
        }
    };
    let f = fixture();
    for (rt, resource) in [("User", &f.user), ("Group", &f.group)] {
        let Some(rt) = f.registry.resource_type(rt) else {
            return;
        };
        let inline = patch::apply(&f.registry, rt, resource, &request, Members::Inline);
        match &inline {
            Ok(out) => {
                let again = patch::apply(&f.registry, rt, resource, &request, Members::Inline);
                assert_eq!(again.as_ref(), Ok(out));
                assert_eq!(out.changed, !out.changed_paths.is_empty());
                assert_eq!(out.changed, out.attributes != resource.attributes);
            }
            Err(err) => assert!(patch_error(err), "{err}"),
        }
        let delta = patch::apply(&f.registry, rt, resource, &request, Members::Delta);
        match &delta {
            Ok(out) => {
                if let Some(d) = &out.members {
                    assert!(d.added.iter().all(|id| !d.removed.contains(id)));
                }
            }
            Err(err) => {
                assert!(patch_error(err), "{err}");
                // Delta may only fail beyond Inline where the server was told to load members.
                if inline.is_ok() {
                    assert!(needs_inline_members(&request), "{err}");
                }
            }
        }
    }
});
