//! The `scim-core` engine on its own, as an application that is not an HTTP server would use it:
//! normalise what Entra ID sends, validate it, evaluate a filter and project the output.
//!
//! Run with `cargo run -p scim-examples --example core_basics`.

use scim_core::filter::Filter;
use scim_core::query::Projection;
use scim_core::resource::{Meta, Resource};
use scim_core::schema::SchemaRegistry;
use serde_json::json;

fn main() -> Result<(), scim_core::Error> {
    let registry = SchemaRegistry::builtin();
    let users = registry.resource_type("User").expect("built-in User type");

    // Entra's legacy create: capitalised names, a string boolean, the malformed enterprise URN,
    // nulls, and the manager as a bare id.
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
        "UserName": "jyoung@contoso.com",
        "Active": "True",
        "title": null,
        "emails": [{"Type": "work", "Value": "jyoung@contoso.com", "Primary": true}],
        "department": "Sales",
        "manager": "u-bob"
    });
    let attributes = scim_core::normalize::request_body(&registry, users, body)?;
    scim_core::validate::create(&registry, users, &attributes)?;

    let user = Resource::new(
        "User",
        "u-joy",
        attributes,
        Meta::new(time::OffsetDateTime::now_utc()),
    );
    let representation = user.to_json(&registry, Some("https://scim.example.com/scim/v2"));
    println!(
        "stored as:\n{}",
        serde_json::to_string_pretty(&representation).expect("JSON")
    );

    // The matching filter Entra sends when the work email is the matching attribute.
    let filter = Filter::parse(
        &registry,
        users,
        r#"emails[type eq "work"].value eq "JYOUNG@contoso.com""#,
    )?;
    let object = representation.as_object().expect("a resource is an object");
    println!("filter {filter} matches: {}", filter.matches(object));

    // `attributes=userName,urn:…:enterprise:2.0:User:manager`
    let projection = Projection::parse(
        &registry,
        users,
        Some("userName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"),
        None,
    );
    let projected = projection.apply(&registry, users, representation);
    println!(
        "projected:\n{}",
        serde_json::to_string_pretty(&projected).expect("JSON")
    );
    Ok(())
}
