//! The mapping file: how an HR system's fields become SCIM attributes, shared by HR events and
//! (later) CSV import. TOML:
//!
//! ```toml
//! [attributes]
//! externalId = { from = "employeeId" }
//! userName = { from = "email", transform = ["trim", "lowercase"] }
//! "name.givenName" = { from = "firstName" }
//! displayName = { concat = ["firstName", "lastName"], separator = " " }
//! 'emails[type eq "work"].value' = { from = "email", transform = ["lowercase"] }
//! "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" = { from = "deptCode", lookup = "departments" }
//!
//! [lookup.departments]
//! "100" = "Engineering"
//! "200" = "IT"
//! ```
//!
//! A target is a SCIM attribute path (RFC 7644 §3.10: `[URN:]name[.sub]`), or
//! `name[type eq "T"].sub` for one typed element of a multi-valued attribute (emails, phone
//! numbers, addresses). An HR field that is absent or empty leaves its attribute out (so the
//! user keeps its value); a lookup that has no entry for a value fails the record, naming the
//! field, the value and the table.

use scim_core::schema::split_path;
use scim_core::{Error, Result};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A parsed, checked mapping.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// SCIM path -> where its value comes from.
    pub attributes: BTreeMap<String, Source>,
    /// Lookup tables by name.
    #[serde(default)]
    pub lookup: BTreeMap<String, BTreeMap<String, String>>,
}

/// Where one attribute's value comes from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// One HR field.
    #[serde(default)]
    pub from: Option<String>,
    /// Several HR fields joined (empty ones skipped).
    #[serde(default)]
    pub concat: Vec<String>,
    /// What joins `concat` (default one space).
    #[serde(default)]
    pub separator: Option<String>,
    /// Applied in order: `trim`, `lowercase`, `uppercase`.
    #[serde(default)]
    pub transform: Vec<Transform>,
    /// A lookup table (of `[lookup]`) the value is translated through.
    #[serde(default)]
    pub lookup: Option<String>,
}

impl Source {
    /// The HR fields this value reads.
    pub fn fields(&self) -> Vec<&str> {
        match &self.from {
            Some(f) => vec![f.as_str()],
            None => self.concat.iter().map(String::as_str).collect(),
        }
    }
}

/// A record the mapping refuses, with the HR field(s) and the attribute at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The HR field (several joined by `+` for a `concat`).
    pub field: String,
    /// The SCIM attribute path it maps to.
    pub path: String,
    /// The SCIM error (400).
    pub error: Error,
}

/// A value transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transform {
    /// Leading and trailing white space removed.
    Trim,
    /// Lower case.
    Lowercase,
    /// Upper case.
    Uppercase,
}

impl Mapping {
    /// Parses and checks a mapping file's text; errors name the attribute at fault.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mapping: Mapping =
            toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
        for (path, source) in &mapping.attributes {
            let at = |why: &str| format!("mapping `attributes.{path}`: {why}");
            match (&source.from, source.concat.is_empty()) {
                (Some(_), true) | (None, false) => {}
                _ => return Err(at("give exactly one of `from` or `concat`")),
            }
            if let Some(table) = &source.lookup
                && !mapping.lookup.contains_key(table)
            {
                return Err(at(&format!("no table `[lookup.{table}]`")));
            }
            target(path).map_err(|e| at(e.detail()))?;
        }
        if !mapping.attributes.contains_key("externalId") {
            return Err("mapping: `attributes.externalId` is required (the employee id records are matched on)".into());
        }
        Ok(mapping)
    }

    /// The SCIM user (a JSON object) an HR record maps to.
    pub fn apply(&self, record: &Map<String, Value>) -> Result<Value> {
        self.apply_naming_fields(record).map_err(|e| e.error)
    }

    /// [`Mapping::apply`], with a refusal naming the HR field(s) it came from (a CSV report
    /// names the column).
    pub fn apply_naming_fields(
        &self,
        record: &Map<String, Value>,
    ) -> std::result::Result<Value, FieldError> {
        let mut user = Map::new();
        for (path, source) in &self.attributes {
            let at = |error: Error| FieldError {
                field: source.fields().join("+"),
                path: path.clone(),
                error,
            };
            let Some(value) = self.value(record, source).map_err(at)? else {
                continue;
            };
            put(&mut user, &target(path).map_err(at)?, value);
        }
        Ok(Value::Object(user))
    }

    /// Every HR field the mapping reads, each once: the employee id's first, then in attribute
    /// order.
    pub fn fields(&self) -> Vec<&str> {
        let mut seen = self.fields_of("externalId");
        for source in self.attributes.values() {
            for f in source.fields() {
                if !seen.contains(&f) {
                    seen.push(f);
                }
            }
        }
        seen
    }

    /// The HR field(s) the attribute at `path` comes from (`externalId`'s: the employee id).
    pub fn fields_of(&self, path: &str) -> Vec<&str> {
        self.attributes
            .get(path)
            .map(Source::fields)
            .unwrap_or_default()
    }

    /// The mapped attribute paths and the HR fields each reads.
    pub fn targets(&self) -> impl Iterator<Item = (&str, Vec<&str>)> {
        self.attributes
            .iter()
            .map(|(path, source)| (path.as_str(), source.fields()))
    }

    fn value(&self, record: &Map<String, Value>, source: &Source) -> Result<Option<String>> {
        let field = |name: &str| -> Option<String> {
            match record.get(name)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            }
            .filter(|s| !s.trim().is_empty())
        };
        let mut value = match &source.from {
            Some(name) => match field(name) {
                Some(v) => v,
                None => return Ok(None),
            },
            None => {
                let parts: Vec<String> = source.concat.iter().filter_map(|n| field(n)).collect();
                if parts.is_empty() {
                    return Ok(None);
                }
                parts.join(source.separator.as_deref().unwrap_or(" "))
            }
        };
        for t in &source.transform {
            value = match t {
                Transform::Trim => value.trim().to_string(),
                Transform::Lowercase => value.to_lowercase(),
                Transform::Uppercase => value.to_uppercase(),
            };
        }
        if let Some(table) = &source.lookup {
            let entries = self.lookup.get(table).ok_or_else(|| {
                Error::invalid_value(format!("the mapping names no lookup table {table:?}"))
            })?;
            value = entries.get(&value).cloned().ok_or_else(|| {
                Error::invalid_value(format!(
                    "{value:?} (from {}) is not in lookup table {table:?}",
                    source.from.as_deref().unwrap_or("concat")
                ))
            })?;
        }
        Ok(Some(value))
    }
}

/// Where a mapped value goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// The extension URN, for an extension attribute.
    urn: Option<String>,
    name: String,
    /// `type` of the element, for `name[type eq "T"].sub`.
    element_type: Option<String>,
    sub: Option<String>,
}

const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

fn target(path: &str) -> Result<Target> {
    if let Some((name, rest)) = path.split_once('[') {
        // name[type eq "T"].sub
        let (filter, sub) = rest.split_once("].").ok_or_else(|| {
            Error::invalid_path(format!("{path:?}: expected name[type eq \"T\"].sub"))
        })?;
        let mut words = filter.split_whitespace();
        let ok = words.next().is_some_and(|w| w.eq_ignore_ascii_case("type"))
            && words.next().is_some_and(|w| w.eq_ignore_ascii_case("eq"));
        let value: String = words.collect::<Vec<_>>().join(" ");
        let value = value.trim_matches('"');
        if !ok || value.is_empty() || name.contains(':') {
            return Err(Error::invalid_path(format!(
                "{path:?}: only core multi-valued attributes filtered as name[type eq \"T\"].sub are supported"
            )));
        }
        return Ok(Target {
            urn: None,
            name: name.to_string(),
            element_type: Some(value.to_string()),
            sub: Some(sub.to_string()),
        });
    }
    let (uri, name, sub) = split_path(path);
    if name.is_empty() {
        return Err(Error::invalid_path(format!("{path:?} names no attribute")));
    }
    Ok(Target {
        urn: uri
            .filter(|u| !u.eq_ignore_ascii_case(CORE_USER))
            .map(str::to_string),
        name: name.to_string(),
        element_type: None,
        sub: sub.map(str::to_string),
    })
}

fn put(user: &mut Map<String, Value>, t: &Target, value: String) {
    let container = match &t.urn {
        Some(urn) => {
            let ext = user
                .entry(urn.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            match ext {
                Value::Object(m) => m,
                _ => return,
            }
        }
        None => user,
    };
    match (&t.element_type, &t.sub) {
        (Some(kind), Some(sub)) => {
            let list = container
                .entry(t.name.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(items) = list else { return };
            let pos = items
                .iter()
                .position(|i| i.get("type").and_then(Value::as_str) == Some(kind.as_str()));
            let item = match pos {
                Some(p) => &mut items[p],
                None => {
                    items.push(serde_json::json!({ "type": kind }));
                    let last = items.len() - 1;
                    &mut items[last]
                }
            };
            if let Value::Object(m) = item {
                m.insert(sub.clone(), Value::String(value));
            }
        }
        (None, Some(sub)) => {
            let parent = container
                .entry(t.name.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = parent {
                m.insert(sub.clone(), Value::String(value));
            }
        }
        _ => {
            container.insert(t.name.clone(), Value::String(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MAPPING: &str = r#"
[attributes]
externalId = { from = "employeeId" }
userName = { from = "email", transform = ["trim", "lowercase"] }
"name.givenName" = { from = "firstName" }
"name.familyName" = { from = "lastName" }
displayName = { concat = ["firstName", "lastName"] }
'emails[type eq "work"].value' = { from = "email", transform = ["trim", "lowercase"] }
'phoneNumbers[type eq "mobile"].value' = { from = "mobile" }
title = { from = "jobTitle" }
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" = { from = "deptCode", lookup = "departments" }
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value" = { from = "managerId" }

[lookup.departments]
"100" = "Engineering"
"200" = "IT"
"#;

    #[test]
    fn records_map_to_scim_users() {
        let m = Mapping::parse(MAPPING).unwrap();
        let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        // (HR record, SCIM user)
        let cases = [
            (
                json!({"employeeId": 1001, "email": " Ada@Contoso.example ", "firstName": "Ada",
                       "lastName": "Lovelace", "deptCode": "100", "managerId": "900", "mobile": "+1 555"}),
                json!({"externalId": "1001", "userName": "ada@contoso.example",
                       "name": {"givenName": "Ada", "familyName": "Lovelace"}, "displayName": "Ada Lovelace",
                       "emails": [{"type": "work", "value": "ada@contoso.example"}],
                       "phoneNumbers": [{"type": "mobile", "value": "+1 555"}],
                       ent: {"department": "Engineering", "manager": {"value": "900"}}}),
            ),
            (
                // absent and empty fields leave their attributes out
                json!({"employeeId": "7", "firstName": "", "lastName": "Byron", "jobTitle": null}),
                json!({"externalId": "7", "name": {"familyName": "Byron"}, "displayName": "Byron"}),
            ),
        ];
        for (record, want) in cases {
            let got = m.apply(record.as_object().unwrap()).unwrap();
            assert_eq!(got, want, "{record}");
        }
        let e = m
            .apply(
                json!({"employeeId": "8", "deptCode": "999"})
                    .as_object()
                    .unwrap(),
            )
            .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(
            e.detail().contains("\"999\"") && e.detail().contains("departments"),
            "{}",
            e.detail()
        );
    }

    #[test]
    fn bad_mappings_name_the_attribute() {
        // (mapping text, words of the error)
        let cases = [
            (
                "[attributes]\nuserName = { from = \"email\" }",
                "externalId",
            ),
            (
                "[attributes]\nexternalId = { from = \"id\", concat = [\"a\"] }",
                "attributes.externalId",
            ),
            (
                "[attributes]\nexternalId = { from = \"id\", lookup = \"nope\" }",
                "[lookup.nope]",
            ),
            (
                "[attributes]\nexternalId = { from = \"id\", transform = [\"reverse\"] }",
                "reverse",
            ),
            (
                "[attributes]\nexternalId = { from = \"id\" }\n'emails[value eq \"x\"].type' = { from = \"e\" }",
                "emails",
            ),
            ("[attrs]\n", "attrs"),
        ];
        for (text, words) in cases {
            let e = Mapping::parse(text).unwrap_err();
            assert!(e.contains(words), "{text}: {e}");
        }
    }
}
