//! What any stored resource may hold, whatever the database behind it: the checks that make
//! SQLite and PostgreSQL accept and refuse the same requests, and that bound what one resource
//! (and so every read of it, and every change record of it) can cost.
//!
//! - NUL (U+0000) is refused everywhere, in values and in attribute names. PostgreSQL's `text`
//!   and `jsonb` cannot hold it ("invalid byte sequence for encoding UTF8: 0x00") while SQLite
//!   can; refusing it on both is the only rule both can keep. No SCIM attribute needs it (RFC
//!   7643 §2.3.1 strings are "a sequence of zero or more Unicode characters", and no identity
//!   provider sends a NUL on purpose).
//! - The values clients match on (`userName`, a Group's `displayName`, `externalId`,
//!   `manager.value` and the `value` of every element of a multi-valued attribute) go into
//!   database indexes, whose keys PostgreSQL limits to about 2,700 bytes. They are limited to
//!   [`ResourceLimits::max_indexed_value_bytes`], checked on the value and its lower-cased form
//!   (lower-casing can make a string longer), so a long value is a 400 naming the attribute on
//!   both databases instead of a 500 on one.
//! - A resource's stored size and the number of values of one multi-valued attribute are
//!   bounded ([`ResourceLimits`]); a Group's `members` are not counted (they live in their own
//!   table and a group may have any number).
//! - An integer is kept exactly or refused: JSON numbers without a fraction or exponent beyond
//!   the 64-bit range would otherwise become floating point silently (RFC 7643 §2.3.4: "A whole
//!   number with no fractional digits or decimal").

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::resource::Attributes;
use crate::schema::{ENTERPRISE_USER_URN, GROUP_URN, ResourceType};
use serde_json::Value;

/// Bounds on one stored resource. Every field is a configuration key of the server
/// (`[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceLimits {
    /// The largest resource, as stored JSON without a Group's members (413 beyond).
    pub max_resource_bytes: usize,
    /// The most values one multi-valued attribute may hold, a Group's `members` aside (400
    /// `invalidValue` beyond).
    pub max_values_per_attribute: usize,
    /// The longest value of an attribute clients match on, in bytes (400 `invalidValue` beyond).
    pub max_indexed_value_bytes: usize,
}

impl ResourceLimits {
    /// The highest `max_indexed_value_bytes` the PostgreSQL index can take: its key limit is
    /// 2,704 bytes, and a lower-cased value may be half as long again as the value.
    pub const INDEXED_VALUE_CEILING: usize = 1600;
}

impl Default for ResourceLimits {
    fn default() -> Self {
        Self {
            max_resource_bytes: 256 * 1024,
            max_values_per_attribute: 1000,
            max_indexed_value_bytes: 1024,
        }
    }
}

/// Refuses a NUL character anywhere in a JSON value (strings and object keys), naming where:
/// 400 `invalidValue`.
pub fn no_nul(value: &Value) -> Result<()> {
    fn walk(value: &Value, path: &mut String) -> Result<()> {
        match value {
            Value::String(s) if s.contains('\0') => Err(Error::invalid_value(format!(
                "{} contains a NUL character (U+0000), which this service does not accept",
                if path.is_empty() { "the body" } else { path }
            ))),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Object(map) => {
                for (key, item) in map {
                    if key.contains('\0') {
                        return Err(Error::invalid_value(
                            "an attribute name contains a NUL character (U+0000), which this \
                             service does not accept",
                        ));
                    }
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk(value, &mut String::new())
}

/// Refuses a filter comparing with a string that holds a NUL (such as `userName eq
/// "a\u0000b"`): 400 `invalidFilter`. No stored value can hold one ([`no_nul`]).
pub fn filter_values(filter: &Filter) -> Result<()> {
    match filter {
        Filter::And(items) | Filter::Or(items) => items.iter().try_for_each(filter_values),
        Filter::Not(inner) => filter_values(inner),
        Filter::ValuePath { filter, .. } => filter_values(filter),
        Filter::Present(_) => Ok(()),
        Filter::Compare(c) => match &c.value {
            Value::String(s) if s.contains('\0') => Err(Error::invalid_filter(
                "the filter compares with a value containing a NUL character (U+0000), which \
                 no resource can hold",
            )),
            _ => Ok(()),
        },
    }
}

/// Refuses an integer that JSON parsing would turn into a floating-point number (outside the
/// range of a 64-bit integer), in the raw JSON text of a request body: 400 `invalidValue`.
/// The text is assumed to be JSON that parsed; numbers inside strings are not numbers.
pub fn exact_integers(json: &[u8]) -> Result<()> {
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < json.len()
                    && matches!(json[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let token = &json[start..i];
                let integer = !token.iter().any(|b| matches!(b, b'.' | b'e' | b'E'));
                let text = std::str::from_utf8(token).unwrap_or("");
                if integer && text.parse::<i64>().is_err() && text.parse::<u64>().is_err() {
                    let shown: String = text.chars().take(24).collect();
                    return Err(Error::invalid_value(format!(
                        "the integer {shown}{} ({} digits) is outside the 64-bit range this \
                         service stores exactly; send it as a string attribute or a decimal",
                        if text.len() > shown.len() { "…" } else { "" },
                        text.trim_start_matches('-').len()
                    )));
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Checks a resource's attributes, as they would be stored, against `limits`: indexed values'
/// lengths, values per multi-valued attribute and the total size. `rt` decides which
/// `displayName` is a unique key (a Group's).
pub fn resource(rt: &ResourceType, attrs: &Attributes, limits: &ResourceLimits) -> Result<()> {
    let group = rt.schema.eq_ignore_ascii_case(GROUP_URN);
    let indexed_len = |name: &str, value: &str| -> Result<()> {
        let len = value.len().max(value.to_lowercase().len());
        if len > limits.max_indexed_value_bytes {
            Err(Error::invalid_value(format!(
                "{name} is {len} bytes long; at most {} bytes are accepted",
                limits.max_indexed_value_bytes
            )))
        } else {
            Ok(())
        }
    };
    let mut top: Vec<&str> = vec!["userName", "externalId"];
    if group {
        top.push("displayName");
    }
    for (key, value) in attrs {
        if let (Some(name), Value::String(s)) =
            (top.iter().find(|n| n.eq_ignore_ascii_case(key)), value)
        {
            indexed_len(name, s)?;
        }
    }
    let mut size = 2usize;
    for (key, value) in attrs {
        if group && key.eq_ignore_ascii_case("members") {
            continue;
        }
        if key.eq_ignore_ascii_case(ENTERPRISE_USER_URN)
            && let Some(manager) = value.get("manager")
        {
            let id = manager.get("value").unwrap_or(manager);
            if let Some(id) = id.as_str() {
                indexed_len("manager.value", id)?;
            }
        }
        multi_valued(key, value, limits, &indexed_len)?;
        size += key.len() + 4 + value.to_string().len();
        if size > limits.max_resource_bytes {
            return Err(Error::payload_too_large(format!(
                "the resource would exceed {} bytes, the most this service stores for one \
                 resource",
                limits.max_resource_bytes
            )));
        }
    }
    Ok(())
}

/// Counts and index-length checks of the multi-valued attributes in `value` (an attribute or an
/// extension object).
fn multi_valued(
    key: &str,
    value: &Value,
    limits: &ResourceLimits,
    indexed_len: &dyn Fn(&str, &str) -> Result<()>,
) -> Result<()> {
    match value {
        Value::Array(items) => {
            if items.len() > limits.max_values_per_attribute {
                return Err(Error::invalid_value(format!(
                    "{key} has {} values; at most {} are accepted",
                    items.len(),
                    limits.max_values_per_attribute
                )));
            }
            for item in items {
                if let Some(v) = item.get("value").and_then(Value::as_str) {
                    indexed_len(&format!("{key}.value"), v)?;
                }
            }
            Ok(())
        }
        // An extension's attributes (`urn:…:enterprise:2.0:User` and custom ones).
        Value::Object(map) if key.contains(':') => map
            .iter()
            .try_for_each(|(k, v)| multi_valued(&format!("{key}:{k}"), v, limits, indexed_len)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScimType;
    use crate::schema::SchemaRegistry;
    use serde_json::json;

    fn attrs(v: Value) -> Attributes {
        v.as_object().cloned().unwrap()
    }

    fn check(rt: &str, body: Value) -> std::result::Result<(), (u16, String)> {
        let registry = SchemaRegistry::builtin();
        let rt = registry.resource_type(rt).unwrap();
        resource(rt, &attrs(body), &ResourceLimits::default())
            .map_err(|e| (e.status(), e.detail().to_string()))
    }

    #[test]
    fn nul_is_refused_with_its_path() {
        for (body, path) in [
            (json!({"userName": "a\u{0}b"}), "userName"),
            (
                json!({"emails": [{"value": "x"}, {"value": "a\u{0}"}]}),
                "emails[1].value",
            ),
            (json!({"x": {"y": "\u{0}"}}), "x.y"),
        ] {
            let err = no_nul(&body).unwrap_err();
            assert_eq!(err.scim_type(), Some(ScimType::InvalidValue));
            assert!(err.detail().starts_with(path), "{}", err.detail());
        }
        let err = no_nul(&json!({"a\u{0}": 1})).unwrap_err();
        assert!(err.detail().contains("attribute name"));
        no_nul(&json!({"userName": "a\\u0000b", "n": 0, "l": [null, true]})).unwrap();
    }

    #[test]
    fn integers_beyond_64_bits_are_refused_and_others_kept() {
        for ok in [
            &b"{\"n\": 9223372036854775807}"[..],
            b"{\"n\": -9223372036854775808}",
            b"{\"n\": 18446744073709551615}",
            b"{\"n\": 1.5e300, \"m\": 123456789012345678901234567890.0}",
            b"{\"s\": \"123456789012345678901234567890\", \"e\": \"\\\"1\"}",
            b"[1,2,-3]",
        ] {
            exact_integers(ok).unwrap();
        }
        for bad in [
            &b"{\"n\": 123456789012345678901234567890}"[..],
            b"[-9223372036854775809]",
            b"{\"a\":\"\\\\\", \"n\": 18446744073709551616}",
        ] {
            let err = exact_integers(bad).unwrap_err();
            assert_eq!(err.status(), 400);
            assert!(err.detail().contains("64-bit"), "{}", err.detail());
        }
    }

    #[test]
    fn indexed_values_are_limited_by_name() {
        let long = "x".repeat(1025);
        for (rt, body, name) in [
            ("User", json!({"userName": long}), "userName"),
            (
                "User",
                json!({"userName": "a", "externalId": long}),
                "externalId",
            ),
            (
                "User",
                json!({"userName": "a", "emails": [{"value": long}]}),
                "emails.value",
            ),
            ("Group", json!({"displayName": long}), "displayName"),
            (
                "User",
                json!({"userName": "a", ENTERPRISE_USER_URN: {"manager": {"value": long}}}),
                "manager.value",
            ),
        ] {
            let (status, detail) = check(rt, body).unwrap_err();
            assert_eq!(status, 400);
            assert!(
                detail.starts_with(name) && detail.contains("1024"),
                "{detail}"
            );
        }
        // Lower-casing lengthens 'İ' from 2 to 3 bytes: the longer form counts.
        let (_, detail) = check("User", json!({"userName": "İ".repeat(400)})).unwrap_err();
        assert!(detail.contains("1200 bytes"), "{detail}");
        // A User's displayName is not a key; 1025 bytes is fine.
        check("User", json!({"userName": "a", "displayName": long})).unwrap();
        check("User", json!({"userName": "x".repeat(1024)})).unwrap();
    }

    #[test]
    fn size_and_value_counts_are_bounded_but_members_are_not() {
        let many: Vec<Value> = (0..1001)
            .map(|i| json!({"value": format!("{i}@x")}))
            .collect();
        let (status, detail) =
            check("User", json!({"userName": "a", "emails": many.clone()})).unwrap_err();
        assert_eq!(status, 400);
        assert!(detail.contains("emails has 1001 values"), "{detail}");
        check("Group", json!({"displayName": "g", "members": many})).unwrap();
        let (status, _) = check(
            "User",
            json!({"userName": "a", "title": "t".repeat(300 * 1024)}),
        )
        .unwrap_err();
        assert_eq!(status, 413);
    }

    #[test]
    fn filters_comparing_with_nul_are_refused() {
        let registry = SchemaRegistry::builtin();
        let rt = registry.resource_type("User").unwrap();
        // The filter grammar decodes JSON escapes, so the parsed value holds the NUL itself.
        let f = Filter::parse(&registry, rt, "userName eq \"a\\u0000b\"").unwrap();
        let err = filter_values(&f).unwrap_err();
        assert_eq!(err.scim_type(), Some(ScimType::InvalidFilter));
        let ok = Filter::parse(&registry, rt, "userName eq \"ab\"").unwrap();
        filter_values(&ok).unwrap();
    }
}
