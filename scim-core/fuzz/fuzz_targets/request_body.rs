//! Arbitrary bytes as a request body, through every check the server makes on one before
//! storing it: the raw-text integer check, JSON parsing, the NUL check, normalisation of a
//! User and a Group body, create validation and the resource limits; and the same bytes as a
//! Bulk request. Nothing may panic, and every refusal is a client error (4xx) with a detail.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_core::bulk::BulkRequest;
use scim_core::schema::SchemaRegistry;
use scim_core::validate::{self, ResourceLimits};
use scim_core::{Error, normalize};
use std::sync::OnceLock;

fn registry() -> &'static SchemaRegistry {
    static REGISTRY: OnceLock<SchemaRegistry> = OnceLock::new();
    REGISTRY.get_or_init(SchemaRegistry::builtin)
}

fn client_error(e: &Error) {
    assert!(
        (400..500).contains(&e.status()) && !e.detail().is_empty(),
        "not a client error: {e}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Err(e) = validate::limits::exact_integers(data) {
        client_error(&e);
    }
    if let Err(e) = validate::limits::no_nul(&value) {
        client_error(&e);
        return;
    }
    let registry = registry();
    let limits = ResourceLimits::default();
    for name in ["User", "Group"] {
        let rt = registry.resource_type(name).expect("builtin type");
        match normalize::request_body(registry, rt, value.clone()) {
            Ok(attrs) => {
                if let Err(e) = validate::create(registry, rt, &attrs) {
                    client_error(&e);
                }
                if let Err(e) = validate::limits::resource(rt, &attrs, &limits) {
                    client_error(&e);
                }
            }
            Err(e) => client_error(&e),
        }
    }
    match BulkRequest::parse(value, 1000) {
        Ok(_) => {}
        Err(e) => client_error(&e),
    }
});
