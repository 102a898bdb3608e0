//! The rules file: which Graph objects the bridge owns (the catalog) and which
//! of them each SCIM user should have.
//!
//! The file is parsed and validated once at start-up ([`Rules::from_toml`]);
//! errors name the rule and key. [`Rules::evaluate`] turns a SCIM user (its
//! JSON representation) into a [`DesiredState`].

mod eval;
pub mod path;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use eval::{Condition, DesiredState};
use path::AttrPath;

/// Errors in the rules file; each names where the problem is.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum RulesError {
    /// The file is not valid TOML or has unknown/ill-typed keys.
    #[error("rules file: {0}")]
    Syntax(String),
    /// A rule (or `defaults`) references a name that is not in the catalog.
    #[error("rule {rule:?}: unknown {kind} {name:?} (not in [catalog.{kind}s])")]
    UnknownCatalogName {
        /// Rule name, or `defaults`.
        rule: String,
        /// `group`, `license` or `role`.
        kind: &'static str,
        /// The unknown name.
        name: String,
    },
    /// A `when` key uses an unknown operator.
    #[error(
        "rule {rule:?}: when.{key}: unknown operator {op:?} (expected eq, ne, in, not_in, \
         starts_with, exists; quote paths containing '.', e.g. 'manager.value')"
    )]
    BadOperator {
        /// Rule name.
        rule: String,
        /// The `when` key.
        key: String,
        /// The operator found.
        op: String,
    },
    /// A `when` key is not a valid SCIM attribute path.
    #[error("rule {rule:?}: when.{key}: bad attribute path: {reason}")]
    BadPath {
        /// Rule name (or `match`).
        rule: String,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An operator has a value of the wrong type.
    #[error("rule {rule:?}: when.{key}: {reason}")]
    BadValue {
        /// Rule name.
        rule: String,
        /// The `when` key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Two rules share a name.
    #[error("rule {rule:?}: duplicate rule name")]
    DuplicateRule {
        /// The name.
        rule: String,
    },
    /// Another invalid setting.
    #[error("{key}: {reason}")]
    Invalid {
        /// The key, e.g. `match.graph` or `catalog.groups.eng`.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// How a SCIM user is matched to a Graph user.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    /// SCIM attribute path whose value identifies the user.
    pub scim: String,
    /// Graph property that must equal it: `userPrincipalName`, `id`, `employeeId` or `mail`.
    pub graph: String,
}

impl Default for MatchSpec {
    fn default() -> Self {
        Self {
            scim: "userName".into(),
            graph: "userPrincipalName".into(),
        }
    }
}

/// Creation of Graph users that do not exist yet.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CreateSpec {
    /// Create missing users (otherwise the plan reports "no match").
    #[serde(default)]
    pub enabled: bool,
    /// Usage location when the SCIM user has no work-address country.
    #[serde(default)]
    pub usage_location: Option<String>,
}

/// A license in the catalog.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LicenseSpec {
    /// The SKU id (GUID).
    pub sku_id: String,
    /// Service plans to disable.
    #[serde(default)]
    pub disabled_plans: Vec<String>,
}

/// A directory role in the catalog.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// Role definition id (or built-in template id).
    pub role_definition_id: String,
    /// Scope, `/` for the whole directory.
    #[serde(default = "root_scope")]
    pub directory_scope_id: String,
}

fn root_scope() -> String {
    "/".into()
}

/// The only objects the bridge may touch, by local name.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Group name → object id.
    #[serde(default)]
    pub groups: BTreeMap<String, String>,
    /// License name → SKU.
    #[serde(default)]
    pub licenses: BTreeMap<String, LicenseSpec>,
    /// Role name → role definition and scope.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleSpec>,
}

/// Grants for every active user.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Catalog group names.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Catalog license names.
    #[serde(default)]
    pub licenses: Vec<String>,
    /// Catalog role names.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Leaver policy.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LeaverSpec {
    /// Hard-delete the Graph user this many days after it left; never when absent.
    #[serde(default)]
    pub delete_after_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    when: toml::Table,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    licenses: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    version: Option<u32>,
    #[serde(rename = "match", default)]
    match_: MatchSpec,
    #[serde(default)]
    create: CreateSpec,
    #[serde(default)]
    catalog: Catalog,
    #[serde(default)]
    defaults: Grants,
    #[serde(default)]
    leaver: LeaverSpec,
    #[serde(default)]
    rule: Vec<RawRule>,
}

/// A validated rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Rule name.
    pub name: String,
    /// Conditions; all must hold.
    pub when: Vec<(String, AttrPath, Vec<Condition>)>,
    /// What the rule grants.
    pub grants: Grants,
}

/// A validated rules file.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// User matching.
    pub match_spec: MatchSpec,
    /// Parsed `match.scim` path.
    pub match_path: AttrPath,
    /// User creation.
    pub create: CreateSpec,
    /// Owned objects.
    pub catalog: Catalog,
    /// Grants for every active user.
    pub defaults: Grants,
    /// Leaver policy.
    pub leaver: LeaverSpec,
    /// Rules in file order.
    pub rules: Vec<Rule>,
}

/// Graph properties accepted in `match.graph`.
pub const MATCH_PROPERTIES: [&str; 4] = ["userPrincipalName", "id", "employeeId", "mail"];

impl Rules {
    /// Reads and validates a rules file.
    pub fn load(path: &std::path::Path) -> crate::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        Ok(Self::from_toml(&text)?)
    }

    /// Parses and validates rules from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| RulesError::Syntax(e.to_string()))?;
        if let Some(v) = raw.version.filter(|v| *v != 1) {
            return Err(RulesError::Invalid {
                key: "version".into(),
                reason: format!("unsupported version {v}"),
            });
        }
        let match_path =
            AttrPath::parse(&raw.match_.scim).map_err(|reason| RulesError::BadPath {
                rule: "match".into(),
                key: "scim".into(),
                reason,
            })?;
        if !MATCH_PROPERTIES.contains(&raw.match_.graph.as_str()) {
            return Err(RulesError::Invalid {
                key: "match.graph".into(),
                reason: format!(
                    "{:?} is not one of {}",
                    raw.match_.graph,
                    MATCH_PROPERTIES.join(", ")
                ),
            });
        }
        if let Some(ul) = &raw.create.usage_location
            && (ul.len() != 2 || !ul.chars().all(|c| c.is_ascii_alphabetic()))
        {
            return Err(RulesError::Invalid {
                key: "create.usage_location".into(),
                reason: format!("{ul:?} is not an ISO 3166 alpha-2 code"),
            });
        }
        validate_catalog(&raw.catalog)?;
        check_refs("defaults", &raw.defaults, &raw.catalog)?;
        let mut rules: Vec<Rule> = Vec::with_capacity(raw.rule.len());
        for r in raw.rule {
            if r.name.trim().is_empty() {
                return Err(RulesError::Invalid {
                    key: "rule.name".into(),
                    reason: "empty rule name".into(),
                });
            }
            if rules.iter().any(|x| x.name == r.name) {
                return Err(RulesError::DuplicateRule { rule: r.name });
            }
            let grants = Grants {
                groups: r.groups,
                licenses: r.licenses,
                roles: r.roles,
            };
            check_refs(&r.name, &grants, &raw.catalog)?;
            let mut when = Vec::new();
            for (key, value) in r.when {
                let path = AttrPath::parse(&key).map_err(|reason| RulesError::BadPath {
                    rule: r.name.clone(),
                    key: key.clone(),
                    reason,
                })?;
                let conds = eval::parse_conditions(&r.name, &key, value)?;
                when.push((key, path, conds));
            }
            rules.push(Rule {
                name: r.name,
                when,
                grants,
            });
        }
        Ok(Self {
            match_spec: raw.match_,
            match_path,
            create: raw.create,
            catalog: raw.catalog,
            defaults: raw.defaults,
            leaver: raw.leaver,
            rules,
        })
    }

    /// The value of the match attribute of a SCIM user.
    pub fn match_value(&self, user: &serde_json::Value) -> Option<String> {
        self.match_path
            .resolve(user)
            .into_iter()
            .find_map(|v| match v {
                serde_json::Value::String(s) if !s.is_empty() => Some(s),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    }
}

fn validate_catalog(c: &Catalog) -> Result<(), RulesError> {
    let bad = |key: String, reason: &str| RulesError::Invalid {
        key,
        reason: reason.into(),
    };
    for (name, id) in &c.groups {
        if id.trim().is_empty() {
            return Err(bad(
                format!("catalog.groups.{name}"),
                "empty group object id",
            ));
        }
    }
    for (name, l) in &c.licenses {
        if l.sku_id.trim().is_empty() {
            return Err(bad(
                format!("catalog.licenses.{name}.sku_id"),
                "empty sku id",
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (name, l) in &c.licenses {
        if !seen.insert(l.sku_id.to_ascii_lowercase()) {
            return Err(bad(
                format!("catalog.licenses.{name}.sku_id"),
                "sku id listed twice",
            ));
        }
    }
    for (name, r) in &c.roles {
        if r.role_definition_id.trim().is_empty() {
            return Err(bad(
                format!("catalog.roles.{name}.role_definition_id"),
                "empty role definition id",
            ));
        }
        if !r.directory_scope_id.starts_with('/') {
            return Err(bad(
                format!("catalog.roles.{name}.directory_scope_id"),
                "must start with '/'",
            ));
        }
    }
    Ok(())
}

fn check_refs(rule: &str, g: &Grants, c: &Catalog) -> Result<(), RulesError> {
    let unknown = |kind: &'static str, name: &String| RulesError::UnknownCatalogName {
        rule: rule.to_owned(),
        kind,
        name: name.clone(),
    };
    if let Some(n) = g.groups.iter().find(|n| !c.groups.contains_key(*n)) {
        return Err(unknown("group", n));
    }
    if let Some(n) = g.licenses.iter().find(|n| !c.licenses.contains_key(*n)) {
        return Err(unknown("license", n));
    }
    if let Some(n) = g.roles.iter().find(|n| !c.roles.contains_key(*n)) {
        return Err(unknown("role", n));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
