//! Resources: a schema-driven attribute map plus the server-managed `id` and `meta`.
//!
//! Attributes are kept in their wire form with canonical names: core attributes at the top level,
//! extension attributes under their schema URN (RFC 7643 §3.3). Attributes no schema declares are
//! kept as sent, so an unknown custom extension attribute never blocks the rest of a request.
//!
//! ```
//! use scim_core::resource::{Meta, Resource};
//! use serde_json::json;
//!
//! let mut attrs = serde_json::Map::new();
//! attrs.insert("userName".into(), json!("bjensen"));
//! let user = Resource::new("User", "2819c223", attrs, Meta::new(time::OffsetDateTime::UNIX_EPOCH));
//! let json = user.to_json(&scim_core::schema::SchemaRegistry::builtin(), Some("https://example.com/scim/v2"));
//! assert_eq!(json["id"], "2819c223");
//! assert_eq!(json["meta"]["location"], "https://example.com/scim/v2/Users/2819c223");
//! assert_eq!(json["meta"]["version"], "W/\"1\"");
//! assert_eq!(json["schemas"][0], "urn:ietf:params:scim:schemas:core:2.0:User");
//! ```

mod diff;
mod typed;

use crate::etag::ETag;
use crate::schema::SchemaRegistry;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use diff::changed_paths;
pub use typed::{EnterpriseUser, Group, Member, MultiValue, Name, User};

/// A resource's attributes in wire form (canonical names, extensions under their URN).
pub type Attributes = Map<String, Value>;

/// Server-managed metadata (RFC 7643 §3.1 `meta`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// When the resource was created.
    pub created: OffsetDateTime,
    /// When the resource was last modified.
    pub last_modified: OffsetDateTime,
    /// A counter bumped on every change that alters the resource; the ETag is derived from it.
    pub version: u64,
}

impl Meta {
    /// Metadata for a resource created at `now`, version 1.
    pub fn new(now: OffsetDateTime) -> Self {
        Self {
            created: now,
            last_modified: now,
            version: 1,
        }
    }
}

/// A stored resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The resource type name, e.g. `User`.
    pub resource_type: String,
    /// The server-assigned id.
    pub id: String,
    /// The attributes (without `id`, `meta` or `schemas`).
    pub attributes: Attributes,
    /// Server-managed metadata.
    pub meta: Meta,
}

/// Formats a timestamp as RFC 3339 (xsd:dateTime), the form `meta.created` takes on the wire.
pub fn format_datetime(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Parses an xsd:dateTime (RFC 3339, as RFC 7643 §2.3.5 requires). A value without an offset is
/// taken as UTC, which is what clients that send one mean.
pub fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .or_else(|| OffsetDateTime::parse(&format!("{s}Z"), &Rfc3339).ok())
}

impl Resource {
    /// A resource from its parts.
    pub fn new(
        resource_type: impl Into<String>,
        id: impl Into<String>,
        attributes: Attributes,
        meta: Meta,
    ) -> Self {
        Self {
            resource_type: resource_type.into(),
            id: id.into(),
            attributes,
            meta,
        }
    }

    /// The 409 `uniqueness` answer for storing this resource of type `rt` when another
    /// resource of the tenant holds its unique attribute's value (`value_taken`) or its id.
    /// RFC 7644 §3.3: a create that "conflicts with existing resources (e.g., a 'User' resource
    /// with a duplicate 'userName')" answers 409 with `scimType` `uniqueness`.
    pub fn uniqueness_conflict(
        &self,
        rt: &crate::schema::ResourceType,
        value_taken: bool,
    ) -> crate::Error {
        let taken = rt
            .unique_attribute()
            .filter(|_| value_taken)
            .map(|attr| (attr, self.attributes.get(attr).and_then(Value::as_str)));
        crate::Error::uniqueness(match taken {
            Some((attr, value)) => format!(
                "{attr} {:?} is already in use in this tenant",
                value.unwrap_or_default()
            ),
            None => format!("{} id {:?} already exists", rt.name, self.id),
        })
    }

    /// The weak ETag of the current version.
    pub fn etag(&self) -> ETag {
        ETag::new(self.meta.version)
    }

    /// The full representation: `schemas` (the core schema plus every extension present), `id`,
    /// the attributes and `meta`. `returned: never` attributes are dropped here, so no path
    /// outputs a password (RFC 7643 §7: "never … SHALL NOT be returned"). `base_url` (the SCIM
    /// base, e.g. `https://host/scim/v2`) fills `meta.location`.
    ///
    /// This is also the form filters are evaluated against, since `id` and `meta.*` are
    /// filterable (RFC 7644 §3.4.2.2).
    pub fn to_json(&self, registry: &SchemaRegistry, base_url: Option<&str>) -> Value {
        self.clone().into_json(registry, base_url)
    }

    /// [`Self::to_json`], consuming the resource: the attribute values move into the
    /// representation instead of being copied (the read path renders each resource once).
    pub fn into_json(self, registry: &SchemaRegistry, base_url: Option<&str>) -> Value {
        let Resource {
            resource_type,
            id,
            attributes,
            meta: resource_meta,
        } = self;
        let rt = registry.resource_type(&resource_type);
        let mut schemas = vec![Value::String(
            rt.map(|r| r.schema.clone())
                .unwrap_or_else(|| resource_type.clone()),
        )];
        let core = rt.and_then(|rt| registry.schema(&rt.schema));
        let mut out = Map::with_capacity(attributes.len() + 3);
        out.insert("schemas".into(), Value::Null);
        let location = base_url.map(|base| {
            let endpoint = rt.map(|r| r.endpoint.trim_start_matches('/').to_string());
            let endpoint = endpoint.unwrap_or_else(|| format!("{resource_type}s"));
            format!("{}/{}/{}", base.trim_end_matches('/'), endpoint, id)
        });
        out.insert("id".into(), Value::String(id));
        for (key, mut value) in attributes {
            if value.is_null() {
                continue;
            }
            if let Some(urn) = rt.and_then(|rt| registry.extension_urn(rt, &key)) {
                if value.as_object().is_some_and(|o| !o.is_empty()) {
                    schemas.push(Value::String(urn.to_string()));
                }
                if let (Some(schema), Some(obj)) = (registry.schema(urn), value.as_object_mut()) {
                    obj.retain(|k, _| schema.attribute(k).is_none_or(|a| !a.is_secret()));
                }
                out.insert(key, value);
                continue;
            }
            // An extension object no schema declares (a custom extension Entra sends) is kept
            // as sent; RFC 7643 §3: "schemas" lists the URIs the representation carries, so it is
            // listed too.
            if key.starts_with("urn:") && value.as_object().is_some_and(|o| !o.is_empty()) {
                schemas.push(Value::String(key.clone()));
                out.insert(key, value);
                continue;
            }
            let never = core
                .and_then(|s| s.attribute(&key))
                .is_some_and(|a| a.is_secret());
            if !never {
                out.insert(key, value);
            }
        }
        out.insert("schemas".into(), Value::Array(schemas));
        if let Some(base) = base_url {
            add_member_refs(&mut out, registry, base);
        }
        let mut meta = Map::with_capacity(5);
        meta.insert("resourceType".into(), Value::String(resource_type));
        meta.insert(
            "created".into(),
            Value::String(format_datetime(resource_meta.created)),
        );
        meta.insert(
            "lastModified".into(),
            Value::String(format_datetime(resource_meta.last_modified)),
        );
        if let Some(location) = location {
            meta.insert("location".into(), Value::String(location));
        }
        meta.insert(
            "version".into(),
            Value::String(ETag::new(resource_meta.version).to_string()),
        );
        out.insert("meta".into(), Value::Object(meta));
        Value::Object(out)
    }
}

/// Sets `$ref` on each `members` element of a Group and each `groups` element of a User: RFC
/// 7643 §4.2 "$ref: The URI corresponding to a SCIM resource that is a member of this Group", and
/// §4.1.2 likewise for a User's groups. References are built here, from the resource ids and the
/// client's base URL, so a `$ref` a client sent is never echoed back (it is ignored on input).
/// A member's endpoint comes from its `type` (`User` or `Group`); a `groups` element always names
/// a Group.
fn add_member_refs(out: &mut Map<String, Value>, registry: &SchemaRegistry, base: &str) {
    let base = base.trim_end_matches('/');
    let endpoint = |type_name: &str| {
        registry
            .resource_type(type_name)
            .map(|rt| rt.endpoint.trim_start_matches('/').to_string())
    };
    for (attribute, fixed_type) in [("members", None), ("groups", Some("Group"))] {
        let Some(Value::Array(items)) = out.get_mut(attribute) else {
            continue;
        };
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            let Some(id) = item.get("value").and_then(Value::as_str) else {
                continue;
            };
            let type_name = fixed_type.or_else(|| item.get("type").and_then(Value::as_str));
            let Some(endpoint) = type_name.and_then(endpoint) else {
                continue;
            };
            let uri = format!("{base}/{endpoint}/{id}");
            item.insert("$ref".into(), Value::String(uri));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ENTERPRISE_USER_URN;
    use serde_json::json;

    #[test]
    fn member_and_group_references_are_absolute_uris_from_the_base_url() {
        let registry = SchemaRegistry::builtin();
        let group = json!({"displayName": "G", "members": [
            {"value": "u1", "type": "User", "$ref": "https://client.example/sent/u1"},
            {"value": "g2", "type": "Group", "display": "Nested"}
        ]});
        let group = Resource::new(
            "Group",
            "g1",
            group.as_object().unwrap().clone(),
            Meta::new(OffsetDateTime::UNIX_EPOCH),
        );
        let out = group.to_json(&registry, Some("https://scim.example/scim/v2/"));
        assert_eq!(
            out["members"],
            json!([
                {"value": "u1", "type": "User", "$ref": "https://scim.example/scim/v2/Users/u1"},
                {"value": "g2", "type": "Group", "display": "Nested", "$ref": "https://scim.example/scim/v2/Groups/g2"}
            ])
        );
        let user = json!({"userName": "a", "groups": [{"value": "g1", "type": "direct"}]});
        let user = Resource::new(
            "User",
            "u1",
            user.as_object().unwrap().clone(),
            Meta::new(OffsetDateTime::UNIX_EPOCH),
        );
        let out = user.to_json(&registry, Some("https://scim.example/scim/v2"));
        assert_eq!(
            out["groups"][0]["$ref"],
            "https://scim.example/scim/v2/Groups/g1"
        );
        // Without a base URL there is nothing absolute to point at.
        assert!(
            user.to_json(&registry, None)["groups"][0]
                .get("$ref")
                .is_none()
        );
    }

    #[test]
    fn to_json_lists_present_extensions_and_never_returns_password() {
        let registry = SchemaRegistry::builtin();
        let attrs = json!({
            "userName": "a",
            "password": "hunter2",
            ENTERPRISE_USER_URN: {"department": "Eng"}
        });
        let r = Resource::new(
            "User",
            "1",
            attrs.as_object().unwrap().clone(),
            Meta::new(OffsetDateTime::UNIX_EPOCH),
        );
        let out = r.to_json(&registry, None);
        assert_eq!(
            out["schemas"],
            json!([
                "urn:ietf:params:scim:schemas:core:2.0:User",
                ENTERPRISE_USER_URN
            ])
        );
        assert!(out.get("password").is_none());
        let custom = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
        let mut attrs = r.attributes.clone();
        attrs.insert(custom.into(), json!({"tag": "701984"}));
        let r = Resource::new("User", "1", attrs, Meta::new(OffsetDateTime::UNIX_EPOCH));
        let out = r.to_json(&registry, None);
        assert_eq!(out["schemas"][2], custom);
        assert_eq!(out[custom]["tag"], "701984");
        assert_eq!(out["meta"]["created"], "1970-01-01T00:00:00Z");
        assert!(out["meta"].get("location").is_none());
    }
}
