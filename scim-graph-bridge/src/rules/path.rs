//! SCIM attribute paths as used in `when` keys and `[match] scim`.
//!
//! Grammar (a subset of RFC 7644 §3.10 `attrPath` / `valuePath`):
//! `[URN ":"] attr ["[" filter "]"] ["." subAttr]` where `filter` is
//! `subAttr op value` (`op` one of `eq ne sw pr`) joined by `and`.
//! Attribute names compare case-insensitively (RFC 7643 §2.1).

use serde_json::Value;

/// The enterprise user extension URN.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The core user schema URN.
pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// Short names resolved in the enterprise extension.
const ENTERPRISE_SHORT: [&str; 6] = [
    "department",
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "manager",
];

/// A parsed attribute path.
#[derive(Clone, Debug, PartialEq)]
pub struct AttrPath {
    /// Extension schema URN holding the attribute; `None` for core attributes.
    pub schema: Option<String>,
    /// The attribute name.
    pub attr: String,
    /// A value filter on a multi-valued attribute.
    pub filter: Vec<FilterCmp>,
    /// A sub-attribute.
    pub sub: Option<String>,
}

/// One comparison inside `[...]`.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterCmp {
    /// Sub-attribute compared.
    pub attr: String,
    /// Operator: `eq`, `ne`, `sw` or `pr`.
    pub op: String,
    /// Literal (absent for `pr`).
    pub value: Value,
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}

impl AttrPath {
    /// Parses a path; the error explains what is wrong.
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        if s.is_empty() {
            return Err("empty path".into());
        }
        let head_end = s.find('[').unwrap_or(s.len());
        let (schema, rest) = if s[..head_end].to_ascii_lowercase().starts_with("urn:") {
            let i = s[..head_end].rfind(':').ok_or("URN without attribute")?;
            let urn = &s[..i];
            let rest = &s[i + 1..];
            if urn.eq_ignore_ascii_case(CORE_USER) {
                (None, rest)
            } else {
                (Some(urn.to_owned()), rest)
            }
        } else {
            (None, s)
        };
        let (attr, filter, after) = match rest.find('[') {
            Some(i) => {
                let close = rest.rfind(']').ok_or("unclosed '['")?;
                if close < i {
                    return Err("unbalanced brackets".into());
                }
                let f = parse_filter(&rest[i + 1..close])?;
                (&rest[..i], f, &rest[close + 1..])
            }
            None => match rest.split_once('.') {
                Some((a, _)) => (a, Vec::new(), &rest[a.len()..]),
                None => (rest, Vec::new(), ""),
            },
        };
        let sub = if after.is_empty() {
            None
        } else {
            let sub = after.strip_prefix('.').ok_or("expected '.' after ']'")?;
            if !is_name(sub) {
                return Err(format!("bad sub-attribute {sub:?}"));
            }
            Some(sub.to_owned())
        };
        if !is_name(attr) {
            return Err(format!("bad attribute name {attr:?}"));
        }
        let schema = match schema {
            None if ENTERPRISE_SHORT
                .iter()
                .any(|n| n.eq_ignore_ascii_case(attr)) =>
            {
                Some(ENTERPRISE.to_owned())
            }
            other => other,
        };
        Ok(Self {
            schema,
            attr: attr.to_owned(),
            filter,
            sub,
        })
    }

    /// The scalar values at this path in a SCIM resource (multi-valued attributes flatten).
    /// `null` values are skipped.
    pub fn resolve(&self, resource: &Value) -> Vec<Value> {
        let base = match &self.schema {
            None => Some(resource),
            Some(urn) => get_ci(resource, urn),
        };
        let Some(v) = base.and_then(|b| get_ci(b, &self.attr)) else {
            return Vec::new();
        };
        let items: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let mut out = Vec::new();
        for item in items {
            if !self.filter.iter().all(|f| f.matches(item)) {
                continue;
            }
            let leaf = match &self.sub {
                Some(sub) => get_ci(item, sub),
                None => Some(item),
            };
            match leaf {
                Some(Value::Null) | None => {}
                Some(Value::Array(a)) => out.extend(a.iter().filter(|x| !x.is_null()).cloned()),
                Some(x) => out.push(x.clone()),
            }
        }
        out
    }
}

impl FilterCmp {
    fn matches(&self, item: &Value) -> bool {
        let v = get_ci(item, &self.attr).filter(|v| !v.is_null());
        match self.op.as_str() {
            "pr" => v.is_some(),
            "eq" => v.is_some_and(|v| scalar_eq(v, &self.value)),
            "ne" => !v.is_some_and(|v| scalar_eq(v, &self.value)),
            "sw" => match (v, &self.value) {
                (Some(Value::String(a)), Value::String(b)) => {
                    a.to_lowercase().starts_with(&b.to_lowercase())
                }
                _ => false,
            },
            _ => false,
        }
    }
}

/// Equality of scalars: strings case-insensitively, numbers numerically.
pub fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.to_lowercase() == y.to_lowercase(),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Case-insensitive object member lookup.
pub fn get_ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn parse_filter(s: &str) -> Result<Vec<FilterCmp>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    loop {
        let (name, after) = rest
            .split_once(char::is_whitespace)
            .ok_or("incomplete filter")?;
        if !is_name(name) {
            return Err(format!("bad filter attribute {name:?}"));
        }
        let after = after.trim_start();
        let (op, after) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
        let op = op.to_ascii_lowercase();
        let (value, after) = match op.as_str() {
            "pr" => (Value::Null, after.trim_start()),
            "eq" | "ne" | "sw" => parse_literal(after.trim_start())?,
            other => return Err(format!("unsupported filter operator {other:?}")),
        };
        out.push(FilterCmp {
            attr: name.to_owned(),
            op,
            value,
        });
        if after.is_empty() {
            return Ok(out);
        }
        let (and, more) = after
            .split_once(char::is_whitespace)
            .ok_or("trailing input in filter")?;
        if !and.eq_ignore_ascii_case("and") {
            return Err(format!("expected 'and' in filter, found {and:?}"));
        }
        rest = more.trim_start();
    }
}

fn parse_literal(s: &str) -> Result<(Value, &str), String> {
    if let Some(body) = s.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    let lit = &s[..i + 2];
                    let v = serde_json::from_str(lit).map_err(|e| format!("bad string: {e}"))?;
                    return Ok((v, s[i + 2..].trim_start()));
                }
                _ => escaped = false,
            }
        }
        return Err("unterminated string in filter".into());
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    let v: Value =
        serde_json::from_str(&s[..end]).map_err(|_| format!("bad literal {:?}", &s[..end]))?;
    Ok((v, s[end..].trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "userName": "ada@example.com",
            "title": "Support Engineer",
            "emails": [{"value": "a@x", "type": "work"}, {"value": "b@y", "type": "home"}],
            "addresses": [{"type": "work", "country": "GB"}, {"type": "home", "country": "FR"}],
            "name": {"givenName": "Ada"},
            ENTERPRISE: {"department": "IT", "manager": {"value": "m-1"}}
        })
    }

    #[test]
    fn resolves_paths() {
        let cases: &[(&str, Value)] = &[
            ("userName", json!(["ada@example.com"])),
            ("USERNAME", json!(["ada@example.com"])),
            ("name.givenName", json!(["Ada"])),
            ("emails.value", json!(["a@x", "b@y"])),
            ("emails[type eq \"work\"].value", json!(["a@x"])),
            ("addresses[type eq \"work\"].country", json!(["GB"])),
            (
                "addresses[type eq \"WORK\" and country pr].country",
                json!(["GB"]),
            ),
            ("department", json!(["IT"])),
            ("manager.value", json!(["m-1"])),
            (&format!("{ENTERPRISE}:department"), json!(["IT"])),
            (&format!("{CORE_USER}:title"), json!(["Support Engineer"])),
            ("costCenter", json!([])),
            ("nickName", json!([])),
        ];
        for (path, want) in cases {
            let p = AttrPath::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(Value::Array(p.resolve(&user())), *want, "{path}");
        }
    }

    #[test]
    fn rejects_bad_paths() {
        for bad in [
            "",
            "1abc",
            "emails[type eq]",
            "emails[type eq \"x\"",
            "emails[type co \"x\"].value",
            "a b",
            "emails[type eq \"w\"]value",
        ] {
            assert!(AttrPath::parse(bad).is_err(), "{bad:?} should fail");
        }
    }
}
