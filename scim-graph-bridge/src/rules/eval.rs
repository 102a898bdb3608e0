//! `when` conditions and evaluation of the rules on a SCIM user.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::path::{AttrPath, scalar_eq};
use super::{Rules, RulesError};
use scim_core::schema::ENTERPRISE_USER_URN;

/// One operator applied to the values at a path.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// Some value equals (strings case-insensitively).
    Eq(Value),
    /// No value equals.
    Ne(Value),
    /// Some value is in the list.
    In(Vec<Value>),
    /// No value is in the list.
    NotIn(Vec<Value>),
    /// Some string value starts with the prefix (case-insensitively).
    StartsWith(String),
    /// The attribute has (`true`) or lacks (`false`) a non-empty value.
    Exists(bool),
}

fn scalar(v: toml::Value) -> Option<Value> {
    match v {
        toml::Value::String(s) => Some(Value::String(s)),
        toml::Value::Integer(i) => Some(Value::from(i)),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map(Value::Number),
        toml::Value::Boolean(b) => Some(Value::Bool(b)),
        _ => None,
    }
}

pub(super) fn parse_conditions(
    rule: &str,
    key: &str,
    v: toml::Value,
) -> Result<Vec<Condition>, RulesError> {
    let bad = |reason: String| RulesError::BadValue {
        rule: rule.into(),
        key: key.into(),
        reason,
    };
    let table = match v {
        toml::Value::Table(t) => t,
        toml::Value::Array(_) => {
            return Err(bad("a list needs an operator: use { in = [...] }".into()));
        }
        other => {
            let s = scalar(other).ok_or_else(|| bad("unsupported value".into()))?;
            return Ok(vec![Condition::Eq(s)]);
        }
    };
    if table.is_empty() {
        return Err(bad("empty condition".into()));
    }
    let mut out = Vec::new();
    for (op, val) in table {
        let one = |val: toml::Value| {
            scalar(val).ok_or_else(|| bad(format!("{op}: expected a string, number or boolean")))
        };
        let list = |val: toml::Value| match val {
            toml::Value::Array(a) if !a.is_empty() => a
                .into_iter()
                .map(|x| scalar(x).ok_or_else(|| bad(format!("{op}: list items must be scalars"))))
                .collect::<Result<Vec<_>, _>>(),
            _ => Err(bad(format!("{op}: expected a non-empty list"))),
        };
        out.push(match op.as_str() {
            "eq" => Condition::Eq(one(val)?),
            "ne" => Condition::Ne(one(val)?),
            "in" => Condition::In(list(val)?),
            "not_in" => Condition::NotIn(list(val)?),
            "starts_with" => match val {
                toml::Value::String(s) => Condition::StartsWith(s),
                _ => return Err(bad("starts_with: expected a string".into())),
            },
            "exists" => match val {
                toml::Value::Boolean(b) => Condition::Exists(b),
                _ => return Err(bad("exists: expected true or false".into())),
            },
            _ => {
                return Err(RulesError::BadOperator {
                    rule: rule.into(),
                    key: key.into(),
                    op,
                });
            }
        });
    }
    Ok(out)
}

impl Condition {
    /// Whether the condition holds for the values found at the path.
    pub fn holds(&self, values: &[Value]) -> bool {
        let present: Vec<&Value> = values
            .iter()
            .filter(|v| !matches!(v, Value::String(s) if s.is_empty()))
            .collect();
        let any_eq = |x: &Value| present.iter().any(|v| scalar_eq(v, x));
        match self {
            Condition::Eq(x) => any_eq(x),
            Condition::Ne(x) => !any_eq(x),
            Condition::In(xs) => xs.iter().any(any_eq),
            Condition::NotIn(xs) => !xs.iter().any(any_eq),
            Condition::StartsWith(p) => {
                let p = p.to_lowercase();
                present
                    .iter()
                    .any(|v| v.as_str().is_some_and(|s| s.to_lowercase().starts_with(&p)))
            }
            Condition::Exists(want) => present.is_empty() != *want,
        }
    }
}

/// What Graph should hold for one user, by catalog names.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DesiredState {
    /// `false` when the SCIM user no longer exists (DELETE).
    pub exists: bool,
    /// Desired `accountEnabled`.
    pub account_enabled: bool,
    /// Catalog groups the user should be a member of.
    pub groups: BTreeSet<String>,
    /// Catalog licenses the user should hold directly.
    pub licenses: BTreeSet<String>,
    /// Catalog roles the user should hold.
    pub roles: BTreeSet<String>,
    /// Graph user properties to set (only those the SCIM user carries).
    pub attributes: BTreeMap<String, Value>,
    /// SCIM id of the manager, if any.
    pub manager: Option<String>,
    /// SCIM `userName`.
    pub user_name: Option<String>,
    /// Value of the match attribute.
    pub match_value: Option<String>,
    /// Names of the rules that matched.
    pub matched_rules: Vec<String>,
}

impl DesiredState {
    /// Whether this is a leaver (deleted or inactive).
    pub fn is_leaver(&self) -> bool {
        !self.exists || !self.account_enabled
    }
}

fn first_string(user: &Value, path: &str) -> Option<String> {
    let p = AttrPath::parse(path).ok()?;
    p.resolve(user).into_iter().find_map(|v| match v {
        Value::String(s) if !s.trim().is_empty() => Some(s),
        _ => None,
    })
}

impl Rules {
    /// Evaluates the rules; `None` means the SCIM user was deleted.
    pub fn evaluate(&self, user: Option<&Value>) -> DesiredState {
        let Some(user) = user else {
            return DesiredState::default();
        };
        let active = match user.get("active") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => !s.eq_ignore_ascii_case("false"),
            _ => true,
        };
        let mut d = DesiredState {
            exists: true,
            account_enabled: active,
            user_name: first_string(user, "userName"),
            match_value: self.match_value(user),
            ..DesiredState::default()
        };
        if !active {
            return d;
        }
        let mut grant = |g: &super::Grants| {
            d.groups.extend(g.groups.iter().cloned());
            d.licenses.extend(g.licenses.iter().cloned());
            d.roles.extend(g.roles.iter().cloned());
        };
        grant(&self.defaults);
        let mut matched = Vec::new();
        for r in &self.rules {
            let holds = r.when.iter().all(|(_, path, conds)| {
                let values = path.resolve(user);
                conds.iter().all(|c| c.holds(&values))
            });
            if holds {
                grant(&r.grants);
                matched.push(r.name.clone());
            }
        }
        d.matched_rules = matched;
        let ent = |a: &str| format!("{ENTERPRISE_USER_URN}:{a}");
        let display = first_string(user, "displayName")
            .or_else(|| first_string(user, "name.formatted"))
            .or_else(|| {
                let parts: Vec<String> = ["name.givenName", "name.familyName"]
                    .iter()
                    .filter_map(|p| first_string(user, p))
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            });
        let mapping: [(&str, Option<String>); 7] = [
            ("displayName", display),
            ("givenName", first_string(user, "name.givenName")),
            ("surname", first_string(user, "name.familyName")),
            ("jobTitle", first_string(user, "title")),
            ("department", first_string(user, &ent("department"))),
            ("employeeId", first_string(user, &ent("employeeNumber"))),
            ("companyName", first_string(user, &ent("organization"))),
        ];
        for (k, v) in mapping {
            if let Some(v) = v {
                d.attributes.insert(k.to_owned(), Value::String(v));
            }
        }
        let country = first_string(user, "addresses[type eq \"work\"].country")
            .filter(|c| c.len() == 2 && c.chars().all(|x| x.is_ascii_alphabetic()))
            .map(|c| c.to_ascii_uppercase());
        if let Some(ul) = country.or_else(|| self.create.usage_location.clone()) {
            d.attributes
                .insert("usageLocation".into(), Value::String(ul));
        }
        d.manager = first_string(user, &ent("manager.value"));
        d
    }
}
