//! Value-level normalisation: one attribute's value brought to the shape its definition demands.

use crate::error::{Error, Result};
use crate::schema::{AttributeDef, AttributeType};
use serde_json::{Map, Number, Value};

/// Normalises one attribute's value for its definition.
///
/// - JSON `null` means absent and yields `None` (RFC 7644 §3.5.2.3: "a null value … removes
///   the attribute"); empty arrays and empty complex objects are absent too.
/// - Booleans sent as strings (`"True"`, `"false"`, any case) become JSON booleans: Entra's default
///   `active` mapping emits them (reference Q2). Any other string is `invalidValue`.
/// - Sub-attribute names are matched case-insensitively and given their canonical case
///   (RFC 7643 §2.1); sub-attributes no schema declares are kept as sent.
/// - A complex attribute given a bare string becomes `{"value": …}` when the definition has a
///   `value` sub-attribute (Entra's `"manager": "<id>"`), and a single-valued attribute given a
///   one-element array takes that element (Entra's legacy `manager: [{"$ref", "value"}]`).
/// - `roles` entries whose `value` is a JSON-encoded object are unwrapped into the entry
///   (Entra's `AppRoleAssignmentsComplex`, reference Q16).
///
/// `wire_path` names the attribute in error details.
pub fn attribute_value(def: &AttributeDef, value: Value, wire_path: &str) -> Result<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    if def.multi_valued {
        let items = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("{wire_path}[{i}]");
            if let Some(v) = single_value(def, item, &path)? {
                out.push(if def.name == "roles" {
                    unwrap_encoded_value(v)
                } else {
                    v
                });
            }
        }
        return Ok(if out.is_empty() {
            None
        } else {
            Some(Value::Array(out))
        });
    }
    let value = match value {
        Value::Array(mut items) if items.len() == 1 => items.remove(0),
        Value::Array(items) if items.is_empty() => return Ok(None),
        Value::Array(_) => {
            return Err(Error::invalid_value(format!(
                "{wire_path} is single-valued but an array of several values was sent"
            )));
        }
        other => other,
    };
    single_value(def, value, wire_path)
}

/// Normalises one (non-array) value of an attribute, complex or simple.
fn single_value(def: &AttributeDef, value: Value, wire_path: &str) -> Result<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    if def.kind != AttributeType::Complex {
        if is_blank_for(def, &value) {
            return Ok(None);
        }
        return scalar(def, value, wire_path).map(Some);
    }
    let obj = match value {
        Value::Object(obj) => obj,
        Value::String(s) if def.sub_attribute("value").is_some() => {
            let mut obj = Map::new();
            obj.insert("value".into(), Value::String(s));
            obj
        }
        other => {
            return Err(Error::invalid_value(format!(
                "{wire_path} is complex and expects an object, got {}",
                kind_name(&other)
            )));
        }
    };
    let mut out = Map::new();
    for (key, sub_value) in obj {
        match def.sub_attribute(&key) {
            Some(sub) => {
                let path = format!("{wire_path}.{}", sub.name);
                if let Some(v) = single_value_of_sub(sub, sub_value, &path)? {
                    out.insert(sub.name.clone(), v);
                }
            }
            None if sub_value.is_null() => {}
            None => {
                out.insert(key, sub_value);
            }
        }
    }
    Ok(if out.is_empty() {
        None
    } else {
        Some(Value::Object(out))
    })
}

fn single_value_of_sub(sub: &AttributeDef, value: Value, wire_path: &str) -> Result<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    if is_blank_for(sub, &value) {
        return Ok(None);
    }
    if sub.kind == AttributeType::Complex {
        // RFC 7643 §2.3.8 forbids complex sub-attributes; keep whatever arrived.
        return Ok(Some(value));
    }
    scalar(sub, value, wire_path).map(Some)
}

fn scalar(def: &AttributeDef, value: Value, wire_path: &str) -> Result<Value> {
    let bad = |what: &str, v: &Value| {
        Error::invalid_value(format!("{wire_path} must be {what}, got {}", describe(v)))
    };
    match def.kind {
        AttributeType::Boolean => match &value {
            Value::Bool(_) => Ok(value),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(bad("a boolean (true or false)", &value)),
        },
        AttributeType::Integer => match &value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(|i| Value::Number(i.into()))
                .map_err(|_| bad("an integer", &value)),
            _ => Err(bad("an integer", &value)),
        },
        AttributeType::Decimal => match &value {
            Value::Number(_) => Ok(value),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| bad("a decimal number", &value)),
            _ => Err(bad("a decimal number", &value)),
        },
        AttributeType::DateTime => match &value {
            Value::String(s) if crate::resource::parse_datetime(s).is_some() => Ok(value),
            _ => Err(bad("an xsd:dateTime such as 2024-05-01T12:00:00Z", &value)),
        },
        AttributeType::String | AttributeType::Reference | AttributeType::Binary => match value {
            Value::String(_) => Ok(value),
            // Stored as sent but as a string: HR feeds send employee numbers as JSON numbers.
            Value::Number(n) if def.kind == AttributeType::String => {
                Ok(Value::String(n.to_string()))
            }
            Value::Bool(b) if def.kind == AttributeType::String => Ok(Value::String(b.to_string())),
            other => Err(bad("a string", &other)),
        },
        AttributeType::Complex => unreachable_complex(wire_path),
    }
}

/// An empty string given for a boolean, number or dateTime is "no value": Entra's null-update
/// test (reference Q19) sends `""` for optional attributes of every type and expects them cleared.
fn is_blank_for(def: &AttributeDef, value: &Value) -> bool {
    matches!(value, Value::String(s) if s.is_empty())
        && matches!(
            def.kind,
            AttributeType::Boolean
                | AttributeType::Integer
                | AttributeType::Decimal
                | AttributeType::DateTime
        )
}

fn unreachable_complex(wire_path: &str) -> Result<Value> {
    Err(Error::invalid_value(format!(
        "{wire_path}: complex value where a simple value was expected"
    )))
}

fn unwrap_encoded_value(entry: Value) -> Value {
    let Value::Object(mut obj) = entry else {
        return entry;
    };
    let decoded = match obj.get("value") {
        Some(Value::String(s)) if s.trim_start().starts_with('{') => {
            serde_json::from_str::<Map<String, Value>>(s).ok()
        }
        _ => None,
    };
    if let Some(inner) = decoded {
        obj.remove("value");
        for (k, v) in inner {
            obj.entry(k).or_insert(v);
        }
        // The role's identity is its `value`; Entra puts the role name there inside the encoding.
        if let (false, Some(id)) = (obj.contains_key("value"), obj.get("id").cloned()) {
            obj.insert("value".into(), id);
        }
    }
    Value::Object(obj)
}

/// How an error message names the JSON kind of `v` ("a string", "an array", …).
pub(super) fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) if s.len() <= 64 => format!("the string {s:?}"),
        other => kind_name(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{SchemaRegistry, USER_RESOURCE};
    use serde_json::json;

    fn def(path: &str) -> AttributeDef {
        let r = SchemaRegistry::builtin();
        let rt = r.resource_type(USER_RESOURCE).unwrap();
        r.resolve_str(rt, path).unwrap().attr
    }

    #[test]
    fn table() {
        let cases: Vec<(&str, Value, Option<Value>)> = vec![
            ("active", json!("True"), Some(json!(true))),
            ("active", json!("false"), Some(json!(false))),
            ("active", json!("FALSE"), Some(json!(false))),
            ("active", json!(null), None),
            (
                "emails",
                json!([{"Value": "a@b", "Type": "work", "Primary": "True"}]),
                Some(json!([{"value": "a@b", "type": "work", "primary": true}])),
            ),
            ("emails", json!([]), None),
            (
                "emails",
                json!({"value": "a@b"}),
                Some(json!([{"value": "a@b"}])),
            ),
            ("manager", json!("123"), Some(json!({"value": "123"}))),
            (
                "manager",
                json!({"Value": "123"}),
                Some(json!({"value": "123"})),
            ),
            (
                "manager",
                json!([{"$ref": "https://x/Users/1", "value": "1"}]),
                Some(json!({"$ref": "https://x/Users/1", "value": "1"})),
            ),
            ("manager", json!({"value": null}), None),
            (
                "name",
                json!({"givenName": "B", "familyName": null, "custom": 1}),
                Some(json!({"givenName": "B", "custom": 1})),
            ),
            ("employeeNumber", json!(701984), Some(json!("701984"))),
            ("active", json!(""), None),
            (
                "emails",
                json!([{"value": "a@b", "primary": ""}]),
                Some(json!([{"value": "a@b"}])),
            ),
            (
                "roles",
                json!([{"value": "{\"id\":\"827f\",\"value\":\"Admin\",\"displayName\":\"Doc Admin\"}"}]),
                Some(json!([{"id": "827f", "value": "Admin", "displayName": "Doc Admin"}])),
            ),
        ];
        for (path, input, want) in cases {
            let got = attribute_value(&def(path), input.clone(), path)
                .unwrap_or_else(|e| panic!("{path} {input}: {e}"));
            assert_eq!(got, want, "{path} {input}");
        }
    }

    #[test]
    fn errors_name_the_wire_path() {
        let cases = [
            ("active", json!("yes"), "active must be a boolean"),
            (
                "emails",
                json!([{"primary": "maybe"}]),
                "emails[0].primary must be a boolean",
            ),
            ("manager", json!(3), "manager is complex"),
            ("userName", json!({"a": 1}), "userName must be a string"),
        ];
        for (path, input, want) in cases {
            let err = attribute_value(&def(path), input, path).unwrap_err();
            assert_eq!(err.scim_type(), Some(crate::error::ScimType::InvalidValue));
            assert!(err.detail().contains(want), "{}", err.detail());
        }
    }
}
