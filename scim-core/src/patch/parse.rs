//! The PatchOp body: operations, their `op` in any case, their parsed `path`.

use super::PatchRequest;
use crate::error::{Error, Result};
use scim_v2::filter::PatchPath;
use serde_json::Value;
use std::fmt;

/// A PATCH operation kind (RFC 7644 §3.5.2), parsed case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchOp {
    /// `add` (RFC 7644 §3.5.2.1).
    Add,
    /// `replace` (RFC 7644 §3.5.2.3).
    Replace,
    /// `remove` (RFC 7644 §3.5.2.2).
    Remove,
}

impl PatchOp {
    /// The lower-case wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PatchOp::Add => "add",
            PatchOp::Replace => "replace",
            PatchOp::Remove => "remove",
        }
    }

    /// Parses `add`, `replace` or `remove` in any case (Entra sends `Add`, `Replace`, `Remove`).
    pub fn parse(s: &str) -> Option<Self> {
        [PatchOp::Add, PatchOp::Replace, PatchOp::Remove]
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for PatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One PATCH operation.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    /// The operation.
    pub op: PatchOp,
    /// The target; `None` means the resource itself (only for `add` and `replace`).
    pub path: Option<PatchPath>,
    /// The value as sent: `None` when the member was absent, `Some(Value::Null)` for an
    /// explicit `null`.
    pub value: Option<Value>,
}

impl fmt::Display for PatchOperation {
    /// `op path`, as error details name an operation (the value is not shown: it may carry
    /// personal data or a password).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)?;
        if let Some(path) = &self.path {
            write!(f, " {path}")?;
        }
        Ok(())
    }
}

/// Parses a PATCH `path` with the `scim_v2` grammar (`invalidPath` when it does not parse).
///
/// ```
/// let path = scim_core::patch::parse_path("emails[type eq \"work\"].value").unwrap();
/// assert_eq!(path.to_string(), "emails[type eq \"work\"].value");
/// assert!(scim_core::patch::parse_path("emails[type eq").is_err());
/// ```
pub fn parse_path(s: &str) -> Result<PatchPath> {
    if let Some(path) = parsed_paths::get(s) {
        return Ok(path);
    }
    let path = s.parse::<PatchPath>().map_err(|e| {
        let shown: String = s.chars().take(200).collect();
        Error::invalid_path(format!("path {shown:?} does not parse: {e}"))
    })?;
    parsed_paths::put(s, &path);
    Ok(path)
}

/// Paths parsed before, by their text. The grammar's lexer (`lalrpop-util`) builds a new lazy
/// DFA cache for every parse and determinises its states again, a few percent of an Entra
/// `PATCH`'s CPU (profile in `docs/benchmarks.md`); clients send the same few paths over and
/// over (`active`, `name.givenName`, `emails[type eq "work"].value`), so most parses become a
/// lookup. Bounded: short paths only, and the map is emptied when full (paths that name one
/// member each, `members[value eq "…"]`, would otherwise only churn it).
mod parsed_paths {
    use scim_v2::filter::PatchPath;
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    /// Most paths kept.
    const CAPACITY: usize = 256;
    /// Longest path kept, in bytes.
    const LONGEST: usize = 64;

    fn paths() -> &'static Mutex<HashMap<String, PatchPath>> {
        static PATHS: OnceLock<Mutex<HashMap<String, PatchPath>>> = OnceLock::new();
        PATHS.get_or_init(Mutex::default)
    }

    pub(super) fn get(s: &str) -> Option<PatchPath> {
        if s.len() > LONGEST {
            return None;
        }
        paths().lock().ok()?.get(s).cloned()
    }

    pub(super) fn put(s: &str, path: &PatchPath) {
        if s.len() > LONGEST {
            return;
        }
        if let Ok(mut paths) = paths().lock() {
            if paths.len() >= CAPACITY {
                paths.clear();
            }
            paths.insert(s.to_string(), path.clone());
        }
    }
}

pub(super) fn request(body: Value, max_operations: usize) -> Result<PatchRequest> {
    let Value::Object(mut body) = body else {
        return Err(Error::invalid_syntax(
            "a PatchOp body must be a JSON object",
        ));
    };
    let key = body
        .keys()
        .find(|k| k.eq_ignore_ascii_case("Operations"))
        .cloned();
    let operations = match key.and_then(|k| body.remove(&k)) {
        Some(Value::Array(ops)) => ops,
        Some(_) => {
            return Err(Error::invalid_syntax(
                "\"Operations\" must be an array (RFC 7644 §3.5.2)",
            ));
        }
        None => {
            return Err(Error::invalid_syntax(
                "\"Operations\" is missing (RFC 7644 §3.5.2)",
            ));
        }
    };
    if operations.len() > max_operations {
        return Err(Error::too_many(format!(
            "{} PATCH operations sent; at most {max_operations} are accepted per request",
            operations.len()
        )));
    }
    let operations = operations
        .into_iter()
        .enumerate()
        .map(|(i, op)| operation(op).map_err(|e| e.context(format!("Operations[{i}]"))))
        .collect::<Result<_>>()?;
    Ok(PatchRequest { operations })
}

fn operation(value: Value) -> Result<PatchOperation> {
    let Value::Object(obj) = value else {
        return Err(Error::invalid_syntax("an operation must be a JSON object"));
    };
    let (mut op, mut path, mut val) = (None, None, None);
    for (key, v) in obj {
        if key.eq_ignore_ascii_case("op") {
            op = Some(v);
        } else if key.eq_ignore_ascii_case("path") {
            path = Some(v);
        } else if key.eq_ignore_ascii_case("value") {
            val = Some(v);
        }
    }
    let op = match op {
        Some(Value::String(s)) => PatchOp::parse(&s).ok_or_else(|| {
            let shown: String = s.chars().take(40).collect();
            Error::invalid_syntax(format!("\"op\" {shown:?} is not add, replace or remove"))
        })?,
        Some(_) => return Err(Error::invalid_syntax("\"op\" must be a string")),
        None => return Err(Error::invalid_syntax("\"op\" is missing")),
    };
    let path = match path {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(parse_path(&s)?),
        Some(_) => return Err(Error::invalid_path("\"path\" must be a string")),
    };
    let operation = PatchOperation {
        op,
        path,
        value: val,
    };
    check(&operation)?;
    Ok(operation)
}

/// The structural rules every operation satisfies (also re-checked by `apply`, since the fields
/// are public).
pub(super) fn check(op: &PatchOperation) -> Result<()> {
    match (op.op, &op.path, &op.value) {
        (PatchOp::Remove, None, _) => Err(Error::no_target(
            "remove needs a \"path\" (RFC 7644 §3.5.2.2: if path is unspecified, the operation \
             fails with noTarget)",
        )),
        (PatchOp::Add | PatchOp::Replace, _, None) => Err(Error::invalid_syntax(format!(
            "{} needs a \"value\"",
            op.op
        ))),
        (PatchOp::Add | PatchOp::Replace, None, Some(v)) if !v.is_object() => {
            Err(Error::invalid_syntax(format!(
                "{} without a \"path\" needs a \"value\" object of attributes (RFC 7644 §3.5.2)",
                op.op
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_path;

    #[test]
    fn a_path_parsed_again_is_the_same_and_an_error_stays_an_error() {
        let member = "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]";
        for text in ["name.givenName", "emails[type eq \"work\"].value", member] {
            let first = parse_path(text).unwrap();
            let again = parse_path(text).unwrap();
            assert_eq!(first, again);
            assert_eq!(again.to_string(), text);
        }
        for _ in 0..2 {
            assert!(parse_path("emails[type eq").is_err());
        }
    }

    /// Found by the `patch_path` fuzz target: a number that is printed in exponent form must
    /// parse back to the same `f64`. serde_json (which reads the filter's numbers) rounds
    /// exponent-form decimals only approximately unless its `float_roundtrip` feature is on.
    #[test]
    fn a_large_number_in_a_value_filter_prints_back_to_itself() {
        for text in [
            "members[value eq 2222222222222222222222222222222222]",
            "members[value eq 2.2222222222222222e+33]",
            "x[value eq 0.30000000000000004]",
            "x[value eq 1.7976931348623157e308]",
        ] {
            let path = parse_path(text).unwrap();
            let printed = path.to_string();
            assert_eq!(
                parse_path(&printed).unwrap(),
                path,
                "{text} printed as {printed}"
            );
        }
    }

    #[test]
    fn more_paths_than_are_kept_still_parse_to_themselves() {
        for round in 0..2 {
            for i in 0..600 {
                let text = format!("attribute{i}.sub");
                let path = parse_path(&text).unwrap();
                assert_eq!(path.to_string(), text, "round {round}");
            }
        }
    }
}
