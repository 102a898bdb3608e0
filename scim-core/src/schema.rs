//! Schemas, attribute characteristics and resource types (RFC 7643 §2, §6, §7), and the
//! [`SchemaRegistry`] that resolves attribute paths against them.
//!
//! Attribute characteristics drive everything else in the engine: normalisation (canonical
//! names, boolean coercion), validation (required, mutability), filtering (`caseExact`, types),
//! sorting, PATCH and output (`returned`).
//!
//! ```
//! use scim_core::schema::{SchemaRegistry, AttributeType, USER_RESOURCE};
//!
//! let registry = SchemaRegistry::builtin();
//! let user = registry.resource_type(USER_RESOURCE).unwrap();
//! // Attribute names are case-insensitive (RFC 7643 §2.1) and resolve to their canonical case.
//! let path = registry.resolve_str(user, "NAME.givenname").unwrap();
//! assert_eq!(path.to_string(), "name.givenName");
//! // Unqualified enterprise attributes resolve to the extension, as Entra sends them.
//! let manager = registry.resolve_str(user, "manager").unwrap();
//! assert_eq!(manager.schema, scim_core::schema::ENTERPRISE_USER_URN);
//! assert_eq!(manager.attr.kind, AttributeType::Complex);
//! ```

mod builtin;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

pub use builtin::{enterprise_user_schema, group_schema, user_schema};

/// Core User schema URN (RFC 7643 §4.1).
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Core Group schema URN (RFC 7643 §4.2).
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Enterprise User extension URN (RFC 7643 §4.3).
pub const ENTERPRISE_USER_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The name and endpoint stem of the User resource type.
pub const USER_RESOURCE: &str = "User";
/// The name and endpoint stem of the Group resource type.
pub const GROUP_RESOURCE: &str = "Group";

/// RFC 7643 §2.3 data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttributeType {
    /// A sequence of characters.
    String,
    /// `true` or `false`.
    Boolean,
    /// A real number with at least one digit after the decimal point.
    Decimal,
    /// A whole number.
    Integer,
    /// An xsd:dateTime string.
    DateTime,
    /// Base64-encoded binary data.
    Binary,
    /// A URI reference.
    Reference,
    /// A complex attribute made of sub-attributes.
    Complex,
}

/// RFC 7643 §7 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    /// "The attribute SHALL NOT be modified."
    ReadOnly,
    /// "The attribute MAY be updated and read at any time." (the default)
    #[default]
    ReadWrite,
    /// "The attribute MAY be defined at resource creation … or at record replacement via a
    /// request … After the initial definition, values SHALL NOT be updated."
    Immutable,
    /// "The attribute MAY be updated at any time. Attribute values SHALL NOT be returned."
    WriteOnly,
}

/// RFC 7643 §7 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    /// Always returned, whatever `attributes`/`excludedAttributes` say.
    Always,
    /// Never returned.
    Never,
    /// Returned by default unless excluded. (the default)
    #[default]
    Default,
    /// Returned only when named in `attributes`.
    Request,
}

/// RFC 7643 §7 `uniqueness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    /// No uniqueness enforced. (the default)
    #[default]
    None,
    /// Unique within the service provider (for us: within a tenant).
    Server,
    /// Globally unique.
    Global,
}

/// One attribute definition (RFC 7643 §7), as `/Schemas` serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeDef {
    /// The attribute's canonical name.
    pub name: String,
    /// The data type.
    #[serde(rename = "type")]
    pub kind: AttributeType,
    /// Whether the attribute holds an array of values.
    #[serde(default)]
    pub multi_valued: bool,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Whether the attribute is required.
    #[serde(default)]
    pub required: bool,
    /// Whether string comparison is case-sensitive.
    #[serde(default)]
    pub case_exact: bool,
    /// When the attribute may be written.
    #[serde(default)]
    pub mutability: Mutability,
    /// When the attribute is returned.
    #[serde(default)]
    pub returned: Returned,
    /// How the service provider enforces uniqueness.
    #[serde(default)]
    pub uniqueness: Uniqueness,
    /// Suggested values (e.g. `work`, `home`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canonical_values: Vec<String>,
    /// Referenced resource types for `reference` attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_types: Vec<String>,
    /// Sub-attributes of a complex attribute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<AttributeDef>,
}

impl AttributeDef {
    /// A new attribute with RFC 7643 §2.2 defaults (single-valued, optional, case-insensitive,
    /// readWrite, returned by default, not unique).
    pub fn new(name: impl Into<String>, kind: AttributeType) -> Self {
        Self {
            name: name.into(),
            kind,
            multi_valued: false,
            description: String::new(),
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: Vec::new(),
            reference_types: Vec::new(),
            sub_attributes: Vec::new(),
        }
    }

    /// A sub-attribute by name, matched case-insensitively.
    pub fn sub_attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Whether the attribute is a secret: RFC 7643 §7 `returned: never` ("never returned",
    /// `password`). A secret is accepted on input and then dropped: never stored, never in a
    /// change record, never output.
    pub fn is_secret(&self) -> bool {
        self.returned == Returned::Never
    }

    /// True for a multi-valued complex attribute (`emails`, `members`, …).
    pub fn is_multi_complex(&self) -> bool {
        self.multi_valued && self.kind == AttributeType::Complex
    }

    /// An attribute synthesised for a name no schema declares. Such attributes are kept as the
    /// client sent them (Entra sends custom extension attributes, and rejecting one would block a
    /// deactivation riding in the same request), compared case-insensitively as strings.
    pub fn undeclared(name: &str) -> Self {
        let mut def = Self::new(name, AttributeType::String);
        def.description = "not declared by any schema; stored as sent".into();
        def
    }
}

/// A schema document (RFC 7643 §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    /// The schema URN.
    pub id: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// Human-readable description.
    #[serde(default)]
    pub description: String,
    /// The attributes.
    pub attributes: Vec<AttributeDef>,
}

impl Schema {
    /// A top-level attribute by name, matched case-insensitively.
    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Parses a schema document as `/Schemas` serves it (extra keys such as `schemas` and `meta`
    /// are ignored). Validates names and sub-attribute nesting.
    pub fn from_json(doc: &Value) -> Result<Self> {
        let schema: Schema = serde_json::from_value(doc.clone())
            .map_err(|e| Error::invalid_syntax(format!("schema document: {e}")))?;
        if !schema.id.starts_with("urn:") {
            return Err(Error::invalid_value(format!(
                "schema id {:?} must be a URN (RFC 7643 §7)",
                schema.id
            )));
        }
        for attr in &schema.attributes {
            check_attribute(&schema.id, attr, false)?;
        }
        Ok(schema)
    }
}

fn check_attribute(schema: &str, attr: &AttributeDef, nested: bool) -> Result<()> {
    let valid = attr
        .name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
        && attr
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$');
    if !valid {
        return Err(Error::invalid_value(format!(
            "schema {schema}: attribute name {:?} is not an RFC 7643 §2.1 ATTRNAME",
            attr.name
        )));
    }
    if attr.kind == AttributeType::Complex && nested {
        return Err(Error::invalid_value(format!(
            "schema {schema}: sub-attribute {:?} is complex; RFC 7643 §2.3.8 forbids nesting",
            attr.name
        )));
    }
    if attr.kind != AttributeType::Complex && !attr.sub_attributes.is_empty() {
        return Err(Error::invalid_value(format!(
            "schema {schema}: attribute {:?} has subAttributes but is not complex",
            attr.name
        )));
    }
    for sub in &attr.sub_attributes {
        check_attribute(schema, sub, true)?;
    }
    Ok(())
}

/// A reference from a resource type to one of its schema extensions (RFC 7643 §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaExtension {
    /// The extension schema URN.
    pub schema: String,
    /// Whether every resource of the type must carry the extension.
    pub required: bool,
}

/// A resource type (RFC 7643 §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceType {
    /// The resource type's id, e.g. `User`.
    pub id: String,
    /// The resource type's name, e.g. `User`.
    pub name: String,
    /// The endpoint relative to the base URL, e.g. `/Users`.
    pub endpoint: String,
    /// Human-readable description.
    #[serde(default)]
    pub description: String,
    /// The core schema URN.
    pub schema: String,
    /// Schema extensions.
    #[serde(default)]
    pub schema_extensions: Vec<SchemaExtension>,
    /// The attribute whose value is unique per tenant, derived from the core schema when the
    /// type is registered (see [`ResourceType::unique_attribute`]); not part of the wire form.
    #[serde(skip)]
    unique: Option<String>,
}

/// What a resource type is, which decides where its relations live: a Group's `members` and a
/// User's `groups` are kept in the membership table, not in the resource's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// A type on the RFC 7643 §4.1 User schema: `groups` is derived from membership.
    User,
    /// A type on the RFC 7643 §4.2 Group schema: `members` lives in the membership table.
    Group,
    /// Any other type: attributes only.
    Custom,
}

impl ResourceType {
    /// A resource type on `schema` (the core schema URN) with no extensions; register it with
    /// [`SchemaRegistry::add_resource_type`], which derives its unique attribute from the schema.
    pub fn new(
        name: impl Into<String>,
        endpoint: impl Into<String>,
        schema: impl Into<String>,
    ) -> Self {
        let name = name.into();
        Self {
            id: name.clone(),
            name,
            endpoint: endpoint.into(),
            description: String::new(),
            schema: schema.into(),
            schema_extensions: Vec::new(),
            unique: None,
        }
    }

    /// What the type is, decided by its core schema, so a custom type on the Group schema
    /// behaves as a Group everywhere (service, storage, bridge).
    pub fn kind(&self) -> ResourceKind {
        if self.schema.eq_ignore_ascii_case(USER_URN) {
            ResourceKind::User
        } else if self.schema.eq_ignore_ascii_case(GROUP_URN) {
            ResourceKind::Group
        } else {
            ResourceKind::Custom
        }
    }

    /// Whether the type is Group-like (members in the membership table).
    pub fn is_group(&self) -> bool {
        self.kind() == ResourceKind::Group
    }

    /// Whether the type is User-like (`groups` derived from membership).
    pub fn is_user(&self) -> bool {
        self.kind() == ResourceKind::User
    }

    /// The attribute whose value is unique per tenant, case-insensitively: the first top-level,
    /// single-valued string attribute of the core schema declared `uniqueness` `server` or
    /// `global` (RFC 7643 §7), e.g. `userName` for Users and `displayName` for Groups. `None`
    /// for a type not obtained from a [`SchemaRegistry`].
    pub fn unique_attribute(&self) -> Option<&str> {
        self.unique.as_deref()
    }

    /// Whether `urn` is this type's core schema or one of its extensions (case-insensitive).
    pub fn has_schema(&self, urn: &str) -> bool {
        self.schema.eq_ignore_ascii_case(urn)
            || self
                .schema_extensions
                .iter()
                .any(|e| e.schema.eq_ignore_ascii_case(urn))
    }
}

/// The common attributes every resource carries (RFC 7643 §3.1): `id`, `externalId`, `meta`.
/// They belong to no schema document but resolve like core attributes.
pub fn common_attributes() -> &'static [AttributeDef] {
    static COMMON: std::sync::OnceLock<Vec<AttributeDef>> = std::sync::OnceLock::new();
    COMMON.get_or_init(builtin::common_attributes)
}

/// An attribute path resolved against a resource type: canonical names and the definitions that
/// govern the attribute. Storage layers compile filters from these; the engine evaluates with them.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPath {
    /// The schema URN that owns the attribute (the core schema for common attributes).
    pub schema: String,
    /// Where the attribute lives in a resource's JSON.
    pub location: Location,
    /// The attribute definition (canonical name).
    pub attr: AttributeDef,
    /// The sub-attribute definition, when the path names one.
    pub sub: Option<AttributeDef>,
    /// False when no schema declares the attribute (see [`AttributeDef::undeclared`]).
    pub declared: bool,
}

/// Where an attribute lives in a resource's JSON representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// `id`, `externalId` or `meta` (RFC 7643 §3.1).
    Common,
    /// A top-level attribute of the core schema.
    Core,
    /// Under the extension's URN key (RFC 7643 §3.3).
    Extension,
}

impl ResolvedPath {
    /// The definition that types the leaf value: the sub-attribute if any, else the attribute.
    pub fn leaf(&self) -> &AttributeDef {
        self.sub.as_ref().unwrap_or(&self.attr)
    }

    /// The attribute's value (not the sub-attribute's) in a resource's attribute map, following
    /// the extension URN key when the attribute lives in an extension.
    pub fn attribute_value<'a>(&self, attributes: &'a Map<String, Value>) -> Option<&'a Value> {
        match self.location {
            Location::Common | Location::Core => attributes.get(&self.attr.name),
            Location::Extension => attributes
                .get(&self.schema)?
                .as_object()?
                .get(&self.attr.name),
        }
    }

    /// The fully qualified form, e.g. `urn:…:enterprise:2.0:User:manager.value`.
    pub fn qualified(&self) -> String {
        let mut s = format!("{}:{}", self.schema, self.attr.name);
        if let Some(sub) = &self.sub {
            s.push('.');
            s.push_str(&sub.name);
        }
        s
    }
}

impl fmt::Display for ResolvedPath {
    /// The wire path: unqualified for core and common attributes, URN-qualified for extensions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location == Location::Extension {
            write!(f, "{}:", self.schema)?;
        }
        f.write_str(&self.attr.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{}", sub.name)?;
        }
        Ok(())
    }
}

/// The schemas and resource types a service provider supports.
///
/// Cheap to share behind an `Arc`; immutable once built.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    schemas: Vec<Arc<Schema>>,
    resource_types: Vec<ResourceType>,
}

impl SchemaRegistry {
    /// An empty registry.
    pub fn empty() -> Self {
        Self {
            schemas: Vec::new(),
            resource_types: Vec::new(),
        }
    }

    /// The RFC 7643 core User and Group schemas, the Enterprise User extension, and the `User`
    /// (with the enterprise extension, not required) and `Group` resource types.
    pub fn builtin() -> Self {
        let mut registry = Self::empty();
        registry.schemas.push(Arc::new(user_schema()));
        registry.schemas.push(Arc::new(group_schema()));
        registry.schemas.push(Arc::new(enterprise_user_schema()));
        registry.resource_types.push(ResourceType {
            id: USER_RESOURCE.into(),
            name: USER_RESOURCE.into(),
            endpoint: "/Users".into(),
            description: "User Account".into(),
            schema: USER_URN.into(),
            schema_extensions: vec![SchemaExtension {
                schema: ENTERPRISE_USER_URN.into(),
                required: false,
            }],
            unique: None,
        });
        registry.resource_types.push(ResourceType {
            id: GROUP_RESOURCE.into(),
            name: GROUP_RESOURCE.into(),
            endpoint: "/Groups".into(),
            description: "Group".into(),
            schema: GROUP_URN.into(),
            schema_extensions: Vec::new(),
            unique: None,
        });
        for i in 0..registry.resource_types.len() {
            let unique = registry.derive_unique(&registry.resource_types[i]);
            registry.resource_types[i].unique = unique;
        }
        registry
    }

    /// Removes every secret attribute from `attrs` (a resource of type `rt`), at the top level
    /// and inside extension objects. This is the one rule for secrets (see
    /// [`AttributeDef::is_secret`]): the service drops them from requests (nothing secret is
    /// stored), change records never carry them and [`crate::resource::Resource::to_json`]
    /// never outputs them.
    pub fn strip_secrets(&self, rt: &ResourceType, attrs: &mut Map<String, Value>) {
        let core = self.schema(&rt.schema);
        attrs.retain(|key, value| {
            if let Some(urn) = self.extension_urn(rt, key) {
                if let (Some(ext), Some(obj)) = (self.schema(urn), value.as_object_mut()) {
                    obj.retain(|k, _| ext.attribute(k).is_none_or(|a| !a.is_secret()));
                }
                return true;
            }
            core.and_then(|s| s.attribute(key))
                .is_none_or(|a| !a.is_secret())
        });
    }

    /// The unique attribute of `rt` by its core schema (see [`ResourceType::unique_attribute`]).
    fn derive_unique(&self, rt: &ResourceType) -> Option<String> {
        self.schema(&rt.schema)?
            .attributes
            .iter()
            .find(|a| {
                a.uniqueness != Uniqueness::None
                    && a.kind == AttributeType::String
                    && !a.multi_valued
            })
            .map(|a| a.name.clone())
    }

    /// Adds a schema (for example a custom extension loaded from a JSON document). Replaces a
    /// schema with the same id.
    pub fn add_schema(&mut self, schema: Schema) {
        self.schemas
            .retain(|s| !s.id.eq_ignore_ascii_case(&schema.id));
        self.schemas.push(Arc::new(schema));
    }

    /// Adds a resource type. Its core schema and extensions must already be registered.
    pub fn add_resource_type(&mut self, mut resource_type: ResourceType) -> Result<()> {
        for urn in std::iter::once(&resource_type.schema)
            .chain(resource_type.schema_extensions.iter().map(|e| &e.schema))
        {
            if self.schema(urn).is_none() {
                return Err(Error::invalid_value(format!(
                    "resource type {}: schema {urn} is not registered",
                    resource_type.name
                )));
            }
        }
        resource_type.unique = self.derive_unique(&resource_type);
        self.resource_types
            .retain(|r| !r.name.eq_ignore_ascii_case(&resource_type.name));
        self.resource_types.push(resource_type);
        Ok(())
    }

    /// Attaches a registered extension schema to a resource type.
    pub fn extend_resource_type(
        &mut self,
        resource_type: &str,
        urn: &str,
        required: bool,
    ) -> Result<()> {
        let schema = self
            .schema(urn)
            .ok_or_else(|| Error::invalid_value(format!("schema {urn} is not registered")))?
            .id
            .clone();
        let rt = self
            .resource_types
            .iter_mut()
            .find(|r| r.name.eq_ignore_ascii_case(resource_type))
            .ok_or_else(|| {
                Error::invalid_value(format!("resource type {resource_type} is not registered"))
            })?;
        rt.schema_extensions
            .retain(|e| !e.schema.eq_ignore_ascii_case(&schema));
        rt.schema_extensions
            .push(SchemaExtension { schema, required });
        Ok(())
    }

    /// A schema by URN (case-insensitive).
    pub fn schema(&self, urn: &str) -> Option<&Schema> {
        self.schemas
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
            .map(|s| s.as_ref())
    }

    /// All schemas, in registration order.
    pub fn schemas(&self) -> impl Iterator<Item = &Schema> {
        self.schemas.iter().map(|s| s.as_ref())
    }

    /// A resource type by name (case-insensitive).
    pub fn resource_type(&self, name: &str) -> Option<&ResourceType> {
        self.resource_types
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
    }

    /// All resource types, in registration order.
    pub fn resource_types(&self) -> impl Iterator<Item = &ResourceType> {
        self.resource_types.iter()
    }

    /// The extension schemas of a resource type.
    pub fn extensions<'a>(&'a self, rt: &'a ResourceType) -> impl Iterator<Item = &'a Schema> + 'a {
        rt.schema_extensions
            .iter()
            .filter_map(|e| self.schema(&e.schema))
    }

    /// If `key` names (case-insensitively) one of the resource type's extension schemas, its
    /// canonical URN. Used for `{"urn:…:enterprise:2.0:User": {…}}` body keys.
    pub fn extension_urn<'a>(&'a self, rt: &'a ResourceType, key: &str) -> Option<&'a str> {
        rt.schema_extensions
            .iter()
            .find(|e| e.schema.eq_ignore_ascii_case(key))
            .map(|e| e.schema.as_str())
    }

    /// Resolves an attribute path given as its parts (as the `scim_v2` filter grammar splits it).
    ///
    /// Lookup order for an unqualified name: the common attributes, then the core schema, then the
    /// resource type's extensions in order. RFC 7644 §3.10 says unqualified names refer to the
    /// core schema; falling back to extensions accepts what Entra sends (`manager`,
    /// `department` without their URN).
    ///
    /// Returns `None` when no schema declares the attribute or sub-attribute. A qualified path
    /// whose URN the resource type does not carry is also `None`.
    pub fn resolve(
        &self,
        rt: &ResourceType,
        uri: Option<&str>,
        name: &str,
        sub: Option<&str>,
    ) -> Option<ResolvedPath> {
        let (schema, location, attr) = match uri {
            Some(uri) => {
                let schema = self.schema(uri).filter(|s| rt.has_schema(&s.id))?;
                let location = if schema.id.eq_ignore_ascii_case(&rt.schema) {
                    Location::Core
                } else {
                    Location::Extension
                };
                match schema.attribute(name) {
                    Some(attr) => (schema.id.clone(), location, attr),
                    None if location == Location::Core => {
                        let attr = common_attributes()
                            .iter()
                            .find(|a| a.name.eq_ignore_ascii_case(name))?;
                        (schema.id.clone(), Location::Common, attr)
                    }
                    None => return None,
                }
            }
            None => {
                if let Some(attr) = common_attributes()
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(name))
                {
                    (rt.schema.clone(), Location::Common, attr)
                } else if let Some(attr) = self.schema(&rt.schema).and_then(|s| s.attribute(name)) {
                    (rt.schema.clone(), Location::Core, attr)
                } else {
                    let (schema, attr) = self
                        .extensions(rt)
                        .find_map(|s| s.attribute(name).map(|a| (s, a)))?;
                    (schema.id.clone(), Location::Extension, attr)
                }
            }
        };
        let sub = match sub {
            Some(sub) => Some(attr.sub_attribute(sub)?.clone()),
            None => None,
        };
        Some(ResolvedPath {
            schema,
            location,
            attr: attr.clone(),
            sub,
            declared: true,
        })
    }

    /// Resolves a path string such as `name.givenName`, `emails.value` or
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
    ///
    /// Unlike [`SchemaRegistry::resolve`], an unknown attribute is an error (`invalidPath`) naming
    /// the path; callers that keep undeclared attributes use [`SchemaRegistry::resolve`].
    pub fn resolve_str(&self, rt: &ResourceType, path: &str) -> Result<ResolvedPath> {
        let (uri, name, sub) = split_path(path);
        self.resolve(rt, uri, name, sub).ok_or_else(|| {
            Error::invalid_path(format!(
                "{path:?} is not an attribute of resource type {}",
                rt.name
            ))
        })
    }
}

/// Splits `[URI ":"] ATTRNAME ["." subAttr]` (RFC 7644 §3.10) without validating characters.
///
/// The URI prefix is everything up to the last `:`; a `.` only separates a sub-attribute after
/// that point, so `urn:…:enterprise:2.0:User:manager.value` splits into the extension URN,
/// `manager` and `value` (the `2.0` inside the URN is not a sub-attribute separator).
pub fn split_path(path: &str) -> (Option<&str>, &str, Option<&str>) {
    let (uri, rest) = match path.rfind(':') {
        Some(i) => (Some(&path[..i]), &path[i + 1..]),
        None => (None, path),
    };
    match rest.split_once('.') {
        Some((name, sub)) => (uri, name, Some(sub)),
        None => (uri, rest, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_and_unique_attribute_come_from_the_core_schema() {
        let mut r = SchemaRegistry::builtin();
        let user = r.resource_type("User").unwrap();
        assert_eq!(
            (user.kind(), user.unique_attribute()),
            (ResourceKind::User, Some("userName"))
        );
        let group = r.resource_type("Group").unwrap();
        assert_eq!(
            (group.kind(), group.unique_attribute()),
            (ResourceKind::Group, Some("displayName"))
        );
        // A custom type on the Group schema is a Group; one on its own schema is Custom, unique
        // by what its schema declares.
        r.add_resource_type(ResourceType::new("Team", "/Teams", GROUP_URN))
            .unwrap();
        let team = r.resource_type("Team").unwrap();
        assert_eq!(
            (team.kind(), team.unique_attribute()),
            (ResourceKind::Group, Some("displayName"))
        );
        let device = Schema::from_json(&serde_json::json!({
            "id": "urn:example:Device", "name": "Device",
            "attributes": [
                {"name": "label", "type": "string"},
                {"name": "serial", "type": "string", "uniqueness": "server"}
            ]
        }))
        .unwrap();
        r.add_schema(device);
        r.add_resource_type(ResourceType::new(
            "Device",
            "/Devices",
            "urn:example:Device",
        ))
        .unwrap();
        let device = r.resource_type("Device").unwrap();
        assert_eq!(
            (device.kind(), device.unique_attribute()),
            (ResourceKind::Custom, Some("serial"))
        );
    }

    #[test]
    fn secrets_are_what_the_schema_never_returns() {
        let (r, rt) = user();
        let mut attrs = serde_json::json!({
            "userName": "a",
            "PassWord": "s3cret",
            "urn:example:ext": {"password": "kept: no schema declares it"},
            ENTERPRISE_USER_URN: {"department": "Eng"}
        })
        .as_object()
        .unwrap()
        .clone();
        r.strip_secrets(&rt, &mut attrs);
        assert_eq!(
            Value::Object(attrs),
            serde_json::json!({
                "userName": "a",
                "urn:example:ext": {"password": "kept: no schema declares it"},
                ENTERPRISE_USER_URN: {"department": "Eng"}
            })
        );
    }

    fn user() -> (SchemaRegistry, ResourceType) {
        let r = SchemaRegistry::builtin();
        let rt = r.resource_type("user").unwrap().clone();
        (r, rt)
    }

    #[test]
    fn resolves_paths_case_insensitively_to_canonical_names() {
        let (r, rt) = user();
        let cases = [
            ("userName", "userName", Location::Core),
            ("USERNAME", "userName", Location::Core),
            ("name.GIVENNAME", "name.givenName", Location::Core),
            ("emails.value", "emails.value", Location::Core),
            ("id", "id", Location::Common),
            ("externalid", "externalId", Location::Common),
            ("meta.lastModified", "meta.lastModified", Location::Common),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:userName",
                "userName",
                Location::Core,
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                Location::Extension,
            ),
            (
                "department",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                Location::Extension,
            ),
        ];
        for (input, want, loc) in cases {
            let p = r
                .resolve_str(&rt, input)
                .unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(p.to_string(), want, "{input}");
            assert_eq!(p.location, loc, "{input}");
        }
    }

    #[test]
    fn unknown_paths_are_invalid_path_errors() {
        let (r, rt) = user();
        for input in [
            "nope",
            "name.nope",
            "urn:ietf:params:scim:schemas:core:2.0:Group:displayName",
            "urn:x:y:foo",
        ] {
            let err = r.resolve_str(&rt, input).unwrap_err();
            assert_eq!(
                err.scim_type(),
                Some(crate::error::ScimType::InvalidPath),
                "{input}"
            );
            assert!(err.detail().contains(input), "{input}: {}", err.detail());
        }
    }

    #[test]
    fn builtin_schemas_serialise_as_rfc_documents() {
        let doc = serde_json::to_value(user_schema()).unwrap();
        let user_name = &doc["attributes"][0];
        assert_eq!(user_name["name"], "userName");
        assert_eq!(user_name["type"], "string");
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["required"], true);
        // A document as /Schemas serves it loads back to the same schema.
        assert_eq!(Schema::from_json(&doc).unwrap(), user_schema());
    }

    #[test]
    fn custom_extension_loads_from_json_and_resolves() {
        let mut r = SchemaRegistry::builtin();
        let doc = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": "urn:example:params:scim:schemas:extension:acme:2.0:User",
            "name": "AcmeUser",
            "attributes": [{"name": "badgeNumber", "type": "integer", "multiValued": false}]
        });
        r.add_schema(Schema::from_json(&doc).unwrap());
        r.extend_resource_type(
            "User",
            "urn:example:params:scim:schemas:extension:acme:2.0:User",
            false,
        )
        .unwrap();
        let rt = r.resource_type("User").unwrap();
        let p = r.resolve_str(rt, "badgeNumber").unwrap();
        assert_eq!(p.attr.kind, AttributeType::Integer);
        assert_eq!(p.location, Location::Extension);
    }

    #[test]
    fn schema_documents_with_bad_names_or_nesting_are_rejected() {
        let bad_name =
            serde_json::json!({"id": "urn:x:y", "attributes": [{"name": "1x", "type": "string"}]});
        assert!(Schema::from_json(&bad_name).is_err());
        let nested = serde_json::json!({"id": "urn:x:y", "attributes": [{"name": "a", "type": "complex",
            "subAttributes": [{"name": "b", "type": "complex"}]}]});
        assert!(Schema::from_json(&nested).is_err());
        let not_urn = serde_json::json!({"id": "acme", "attributes": []});
        assert!(Schema::from_json(&not_urn).is_err());
    }

    #[test]
    fn split_path_keeps_urn_dots() {
        assert_eq!(
            split_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"),
            (
                Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
                "manager",
                Some("value")
            )
        );
        assert_eq!(
            split_path("name.givenName"),
            (None, "name", Some("givenName"))
        );
    }
}
