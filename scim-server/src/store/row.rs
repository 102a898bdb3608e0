//! The mapping between a [`Resource`] and its stored row: the columns derived from its
//! attributes on every write (the keys provisioning clients match on) and the way back.

use super::{Result, StoreError};
use scim_core::resource::{Attributes, Meta, Resource};
use scim_core::schema::{ENTERPRISE_USER_URN, ResourceType};
use serde_json::Value;
use time::OffsetDateTime;

/// User attributes whose values go to `resource_values` (lower-cased) so that
/// `emails[type eq "work"].value eq "x"` is an index lookup: the RFC 7643 multi-valued
/// attributes with a case-insensitive string `value`.
pub const INDEXED_MULTI_VALUED: &[&str] = &[
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "entitlements",
    "roles",
];

/// One `resource_values` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueRow {
    /// The attribute (`emails`, …).
    pub attr: &'static str,
    /// The element's `type`, lower-cased, if it has a string one.
    pub type_ci: Option<String>,
    /// The element's `value`, lower-cased.
    pub value_ci: String,
}

/// Everything a write stores for one resource, derived from it.
#[derive(Debug, Clone)]
pub struct RowData {
    /// Lower-cased `userName` (User) or `displayName` (Group).
    pub unique_key: Option<String>,
    /// `externalId`, as sent (case-exact).
    pub external_id: Option<String>,
    /// The enterprise extension's `manager.value`.
    pub manager_id: Option<String>,
    /// What a reference to this resource displays: `displayName`, else `userName`.
    pub display: Option<String>,
    /// The attributes stored in the row: without `members` (a Group's live in their own table)
    /// and `groups` (derived from membership).
    pub attributes: Attributes,
    /// Values of indexed multi-valued attributes.
    pub values: Vec<ValueRow>,
    /// A Group's member ids from its `members` attribute (used by create).
    pub members: Vec<String>,
}

/// The case folding used for every case-insensitive key (stored and looked up alike).
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

fn str_attr<'a>(attrs: &'a Attributes, name: &str) -> Option<&'a str> {
    attrs.get(name).and_then(Value::as_str)
}

/// Derives the stored row of `resource` (of type `rt`).
pub fn row_data(rt: &ResourceType, resource: &Resource) -> RowData {
    let mut attributes = resource.attributes.clone();
    let mut members = Vec::new();
    if rt.is_group()
        && let Some(Value::Array(list)) = attributes.remove("members")
    {
        for m in list {
            if let Some(id) = m.get("value").and_then(Value::as_str)
                && !members.iter().any(|x| x == id)
            {
                members.push(id.to_string());
            }
        }
    }
    if rt.is_user() {
        attributes.remove("groups");
    }
    let unique_key = rt
        .unique_attribute()
        .and_then(|a| str_attr(&attributes, a))
        .map(fold);
    let external_id = str_attr(&attributes, "externalId").map(str::to_string);
    let manager_id = attributes
        .get(ENTERPRISE_USER_URN)
        .and_then(|ext| ext.get("manager"))
        .and_then(|m| match m {
            Value::Object(o) => o.get("value").and_then(Value::as_str),
            Value::String(s) => Some(s.as_str()),
            _ => None,
        })
        .map(str::to_string);
    let display = str_attr(&attributes, "displayName")
        .or_else(|| str_attr(&attributes, "userName"))
        .map(str::to_string);
    let mut values = Vec::new();
    if rt.is_user() {
        for &attr in INDEXED_MULTI_VALUED {
            let Some(Value::Array(items)) = attributes.get(attr) else {
                continue;
            };
            for item in items {
                let Some(value) = item.get("value").and_then(Value::as_str) else {
                    continue;
                };
                values.push(ValueRow {
                    attr,
                    type_ci: item.get("type").and_then(Value::as_str).map(fold),
                    value_ci: fold(value),
                });
            }
        }
    }
    RowData {
        unique_key,
        external_id,
        manager_id,
        display,
        attributes,
        values,
        members,
    }
}

/// `value` with every string case-folded by [`fold`] (keys kept): SQLite's `attributes_ci`.
pub fn folded(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(fold(s)),
        Value::Array(items) => Value::Array(items.iter().map(folded).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), folded(v))).collect())
        }
        other => other.clone(),
    }
}

/// An attribute map with every string case-folded (SQLite's `attributes_ci`), without copying
/// the map first.
pub fn folded_attributes(attrs: &Attributes) -> Value {
    Value::Object(attrs.iter().map(|(k, v)| (k.clone(), folded(v))).collect())
}

/// Nanoseconds since the Unix epoch, as stored in `created_ns` / `last_modified_ns`.
pub fn to_ns(t: OffsetDateTime) -> i64 {
    // i64 nanoseconds cover the years 1677 to 2262.
    t.unix_timestamp_nanos()
        .clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// The inverse of [`to_ns`].
pub fn from_ns(ns: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {ns}: {e}")))
}

/// A stored version as `u64`.
pub fn version_from_db(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative version {v}")))
}

/// A version as stored (`BIGINT`).
pub fn version_to_db(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("version {v} out of range")))
}

/// A resource rebuilt from its row.
pub fn resource_from_row(
    resource_type: String,
    id: String,
    version: i64,
    created_ns: i64,
    last_modified_ns: i64,
    attributes: Value,
) -> Result<Resource> {
    let Value::Object(attributes) = attributes else {
        return Err(StoreError::Corrupt(format!(
            "attributes of {resource_type} {id} are not an object"
        )));
    };
    Ok(Resource {
        resource_type,
        id,
        attributes,
        meta: Meta {
            created: from_ns(created_ns)?,
            last_modified: from_ns(last_modified_ns)?,
            version: version_from_db(version)?,
        },
    })
}

/// A `members` element as a Group read with members shows it.
pub fn member_value(id: String, member_type: String, display: Option<String>) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("value".into(), Value::String(id));
    m.insert("type".into(), Value::String(member_type));
    if let Some(d) = display {
        m.insert("display".into(), Value::String(d));
    }
    Value::Object(m)
}

/// A `groups` element as a User read with groups shows it (RFC 7643 §4.1.2).
pub fn group_value(id: String, display: Option<String>) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("value".into(), Value::String(id));
    if let Some(d) = display {
        m.insert("display".into(), Value::String(d));
    }
    m.insert("type".into(), Value::String("direct".into()));
    Value::Object(m)
}

/// A User's `groups` list from the `groups_json` column of [`super::sql::get_statement`] (NULL
/// when there are none), in group id order.
pub fn groups_from_json(json: Option<&str>) -> Result<Vec<Value>> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let mut pairs: Vec<(String, Option<String>)> = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("groups of a user: {e}")))?;
    pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(pairs
        .into_iter()
        .map(|(id, display)| group_value(id, display))
        .collect())
}

/// Replaces the multi-valued attribute `name` of `resource` with `list`, leaving it absent when
/// `list` is empty (a loaded `members` or `groups` list).
pub fn set_list(resource: &mut Resource, name: &str, list: Vec<Value>) {
    resource.attributes.remove(name);
    if !list.is_empty() {
        resource.attributes.insert(name.into(), Value::Array(list));
    }
}

/// The uniqueness error for a write of `resource` refused by the unique constraint `violation`
/// describes (see `unique_violation`); its wording is the core's
/// ([`Resource::uniqueness_conflict`]).
pub fn uniqueness_error(rt: &ResourceType, resource: &Resource, violation: &str) -> StoreError {
    let error = resource.uniqueness_conflict(rt, violation.contains("unique_key"));
    StoreError::Uniqueness {
        detail: error.detail().to_string(),
    }
}

/// A `resources` row as selected by [`super::sql::Dialect::resource_columns`].
#[derive(Debug, sqlx::FromRow)]
pub struct ResourceRow {
    /// The resource type.
    pub resource_type: String,
    /// The id.
    pub id: String,
    /// The version.
    pub version: i64,
    /// Creation time (ns).
    pub created_ns: i64,
    /// Last modification time (ns).
    pub last_modified_ns: i64,
    /// The attributes as JSON text.
    pub attributes: String,
    /// A User's groups as `[[group id, display], …]` when the statement selected them
    /// ([`super::sql::get_statement`]); absent otherwise.
    #[sqlx(default)]
    pub groups_json: Option<String>,
}

impl ResourceRow {
    /// The row as the SQLite reads on the calling thread get it (`store/inline_reads.rs`):
    /// the same columns by name as sqlx's `FromRow` takes them, `groups_json` when selected.
    pub(crate) fn from_inline(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            resource_type: row.get("resource_type")?,
            id: row.get("id")?,
            version: row.get("version")?,
            created_ns: row.get("created_ns")?,
            last_modified_ns: row.get("last_modified_ns")?,
            attributes: row.get("attributes")?,
            groups_json: match row.as_ref().column_index("groups_json") {
                Ok(i) => row.get(i)?,
                Err(_) => None,
            },
        })
    }

    /// The resource the row stores.
    pub fn into_resource(self) -> Result<Resource> {
        let attributes: Value = serde_json::from_str(&self.attributes)
            .map_err(|e| StoreError::Corrupt(format!("attributes of {}: {e}", self.id)))?;
        resource_from_row(
            self.resource_type,
            self.id,
            self.version,
            self.created_ns,
            self.last_modified_ns,
            attributes,
        )
    }
}

/// A `tenants` row.
#[derive(Debug, sqlx::FromRow)]
pub struct TenantRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Option.
    pub bulk_upsert_by_external_id: bool,
    /// RFC 3339.
    pub created: String,
}

/// Parses a stored RFC 3339 timestamp.
pub fn parse_time(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {s:?}: {e}")))
}

/// Formats a timestamp for storage (RFC 3339, UTC, full precision).
pub fn format_time(t: OffsetDateTime) -> String {
    scim_core::resource::format_datetime(t)
}

impl TryFrom<TenantRow> for super::Tenant {
    type Error = StoreError;
    fn try_from(r: TenantRow) -> Result<Self> {
        Ok(super::Tenant {
            id: r.id,
            name: r.name,
            bulk_upsert_by_external_id: r.bulk_upsert_by_external_id,
            created: parse_time(&r.created)?,
        })
    }
}

/// A `tokens` row.
#[derive(Debug, sqlx::FromRow)]
pub struct TokenRow {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// Label.
    pub label: String,
    /// Read-only.
    pub read_only: bool,
    /// RFC 3339.
    pub created: String,
    /// RFC 3339.
    pub expires: Option<String>,
    /// RFC 3339.
    pub revoked: Option<String>,
}

impl TryFrom<TokenRow> for super::TokenRecord {
    type Error = StoreError;
    fn try_from(r: TokenRow) -> Result<Self> {
        Ok(super::TokenRecord {
            id: r.id,
            tenant: r.tenant_id,
            secret_hash: r.secret_hash,
            label: r.label,
            read_only: r.read_only,
            created: parse_time(&r.created)?,
            expires: r.expires.as_deref().map(parse_time).transpose()?,
            revoked: r.revoked.as_deref().map(parse_time).transpose()?,
        })
    }
}

/// The columns a change-record read selects.
pub const CHANGE_COLUMNS: &str = "tenant_id, tenant_seq, resource_type, resource_id, \
     CAST(version AS BIGINT) AS version, operation, change_json, principal, request_id, \
     occurred_at, prev_hash, hash";

/// A `scim_changes` row.
#[derive(Debug, sqlx::FromRow)]
pub struct ChangeRow {
    /// Tenant.
    pub tenant_id: String,
    /// Sequence.
    pub tenant_seq: i64,
    /// Resource type.
    pub resource_type: String,
    /// Resource id.
    pub resource_id: String,
    /// Version.
    pub version: i64,
    /// Operation.
    pub operation: String,
    /// Change JSON.
    pub change_json: String,
    /// Principal.
    pub principal: String,
    /// Request id.
    pub request_id: Option<String>,
    /// RFC 3339.
    pub occurred_at: String,
    /// Predecessor hash.
    pub prev_hash: String,
    /// Hash.
    pub hash: String,
}

impl TryFrom<ChangeRow> for super::ChangeRecord {
    type Error = StoreError;
    fn try_from(r: ChangeRow) -> Result<Self> {
        Ok(super::ChangeRecord {
            tenant: r.tenant_id,
            seq: version_from_db(r.tenant_seq)?,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            version: version_from_db(r.version)?,
            operation: r.operation,
            change_json: r.change_json,
            principal: r.principal,
            request_id: r.request_id,
            occurred_at: r.occurred_at,
            prev_hash: r.prev_hash,
            hash: r.hash,
        })
    }
}

/// `e` as the client's uniqueness error when it is a unique-index violation of `resource`'s row
/// (SQLite reports it from the write's one query, whichever statement failed); else `e`.
pub(crate) fn as_uniqueness_error(
    e: StoreError,
    rt: &ResourceType,
    resource: &Resource,
) -> StoreError {
    match e {
        StoreError::Database(db) => match super::unique_violation(&db) {
            Some(v) => uniqueness_error(rt, resource, &v),
            None => StoreError::Database(db),
        },
        other => other,
    }
}

/// The row as PostgreSQL's hot reads get it (`store/pg_clients.rs`): the same
/// columns by name as sqlx's `FromRow` takes them, `groups_json` when selected.
impl super::pg_clients::DecodeRow for ResourceRow {
    fn decode(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            resource_type: row.try_get("resource_type")?,
            id: row.try_get("id")?,
            version: row.try_get("version")?,
            created_ns: row.try_get("created_ns")?,
            last_modified_ns: row.try_get("last_modified_ns")?,
            attributes: row.try_get("attributes")?,
            groups_json: match row.columns().iter().position(|c| c.name() == "groups_json") {
                Some(i) => row.try_get(i)?,
                None => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::schema::SchemaRegistry;
    use serde_json::json;

    #[test]
    fn derives_keys_values_and_strips_membership() {
        let reg = SchemaRegistry::builtin();
        let user = reg.resource_type("User").unwrap();
        let attrs = json!({
            "userName": "BJensen@Example.com",
            "externalId": "Ext-1",
            "emails": [{"type": "Work", "value": "B@X.com"}, {"value": "other@x"}, {"type": "home"}],
            "groups": [{"value": "g"}],
            ENTERPRISE_USER_URN: {"manager": {"value": "m1"}}
        });
        let r = Resource::new(
            "User",
            "u1",
            attrs.as_object().unwrap().clone(),
            Meta::new(OffsetDateTime::UNIX_EPOCH),
        );
        let row = row_data(user, &r);
        assert_eq!(row.unique_key.as_deref(), Some("bjensen@example.com"));
        assert_eq!(row.external_id.as_deref(), Some("Ext-1"));
        assert_eq!(row.manager_id.as_deref(), Some("m1"));
        assert_eq!(row.display.as_deref(), Some("BJensen@Example.com"));
        assert!(!row.attributes.contains_key("groups"));
        assert_eq!(
            row.values,
            vec![
                ValueRow {
                    attr: "emails",
                    type_ci: Some("work".into()),
                    value_ci: "b@x.com".into()
                },
                ValueRow {
                    attr: "emails",
                    type_ci: None,
                    value_ci: "other@x".into()
                },
            ]
        );

        let group = reg.resource_type("Group").unwrap();
        let attrs = json!({"displayName": "Admins", "members": [{"value": "u1"}, {"value": "u1"}, {"value": "u2"}]});
        let g = Resource::new(
            "Group",
            "g1",
            attrs.as_object().unwrap().clone(),
            Meta::new(OffsetDateTime::UNIX_EPOCH),
        );
        let row = row_data(group, &g);
        assert_eq!(row.members, vec!["u1", "u2"]);
        assert!(!row.attributes.contains_key("members"));
        assert_eq!(row.unique_key.as_deref(), Some("admins"));
    }
}
