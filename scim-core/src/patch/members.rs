//! `members` handled as a delta of ids, so storage can patch a huge group without loading it.

use super::matcher::value_eq_ids;
use super::{MembershipDelta, PatchOp, PatchOperation};
use crate::error::{Error, Result};
use crate::normalize::attribute_value;
use crate::schema::{AttributeDef, GROUP_URN};
use scim_v2::filter::{AttrPath, PatchPath, ValFilter};
use serde_json::Value;
use std::collections::HashSet;

/// Whether `op` touches `members` in a way only the loaded member list can answer.
pub(super) fn needs_inline(op: &PatchOperation) -> bool {
    match &op.path {
        None => false,
        Some(PatchPath::Attr(p)) => is_members(p) && p.sub_attr.is_some(),
        Some(PatchPath::Value(vp)) => {
            is_members(&vp.attr)
                && !(op.op == PatchOp::Remove
                    && vp.sub_attr.is_none()
                    && value_eq_ids(&vp.filter).is_some())
        }
    }
}

fn is_members(p: &AttrPath) -> bool {
    p.name.eq_ignore_ascii_case("members")
        && p.uri
            .as_deref()
            .is_none_or(|u| u.eq_ignore_ascii_case(GROUP_URN))
}

/// The error for a member operation [`super::Members::Delta`] cannot express; a server that
/// consults [`super::needs_inline_members`] first never sees it.
pub(super) fn needs_loading() -> Error {
    Error::invalid_path(
        "this operation on members selects members by something other than their id and needs \
         the member list loaded (check patch::needs_inline_members before using Members::Delta)",
    )
}

/// A [`MembershipDelta`] under construction: operations net out in order, and `added` and
/// `removed` stay disjoint.
#[derive(Debug, Default)]
pub(super) struct DeltaBuilder {
    clear: bool,
    added: Vec<String>,
    added_set: HashSet<String>,
    removed: Vec<String>,
    removed_set: HashSet<String>,
}

impl DeltaBuilder {
    /// A builder that continues `delta`.
    pub(super) fn from_delta(delta: MembershipDelta) -> Self {
        DeltaBuilder {
            clear: delta.clear,
            added_set: delta.added.iter().cloned().collect(),
            added: delta.added,
            removed_set: delta.removed.iter().cloned().collect(),
            removed: delta.removed,
        }
    }

    pub(super) fn add(&mut self, id: String) {
        if self.removed_set.remove(&id) {
            self.removed.retain(|r| *r != id);
        }
        if self.added_set.insert(id.clone()) {
            self.added.push(id);
        }
    }

    pub(super) fn remove(&mut self, id: String) {
        if self.added_set.remove(&id) {
            self.added.retain(|a| *a != id);
        }
        // After a clear, nothing that was not added since remains to be removed.
        if !self.clear && self.removed_set.insert(id.clone()) {
            self.removed.push(id);
        }
    }

    pub(super) fn clear(&mut self) {
        *self = DeltaBuilder {
            clear: true,
            ..DeltaBuilder::default()
        };
    }

    pub(super) fn finish(self) -> MembershipDelta {
        MembershipDelta {
            clear: self.clear,
            added: self.added,
            removed: self.removed,
        }
    }

    /// Applies one member operation. `filter` is the value filter of `members[…]`, `has_sub`
    /// whether the path continues into a member sub-attribute.
    pub(super) fn apply(
        &mut self,
        def: &AttributeDef,
        op: PatchOp,
        filter: Option<&ValFilter>,
        has_sub: bool,
        value: Option<&Value>,
    ) -> Result<()> {
        if has_sub {
            return Err(needs_loading());
        }
        let value = value.filter(|v| !super::values::blank(v));
        match (op, filter) {
            (PatchOp::Remove, None) => match value {
                Some(v) => member_ids(def, v)?
                    .into_iter()
                    .for_each(|id| self.remove(id)),
                None => self.clear(),
            },
            (PatchOp::Remove, Some(f)) => {
                let ids = value_eq_ids(f).ok_or_else(needs_loading)?;
                ids.into_iter().for_each(|id| self.remove(id));
            }
            (PatchOp::Add, None) => {
                if let Some(v) = value {
                    member_ids(def, v)?.into_iter().for_each(|id| self.add(id));
                }
            }
            (PatchOp::Replace, None) => {
                let ids = match value {
                    Some(v) => member_ids(def, v)?,
                    None => Vec::new(),
                };
                self.clear();
                ids.into_iter().for_each(|id| self.add(id));
            }
            (PatchOp::Add | PatchOp::Replace, Some(_)) => return Err(needs_loading()),
        }
        Ok(())
    }
}

/// The member ids of a `members` value (`[{"value": id, "$ref": null, "display": …}]`, one
/// object, or bare id strings). Each entry needs a string `value` (`invalidValue`).
pub(super) fn member_ids(def: &AttributeDef, value: &Value) -> Result<Vec<String>> {
    let elements = match attribute_value(def, value.clone(), &def.name)? {
        Some(Value::Array(items)) => items,
        Some(other) => vec![other],
        None => Vec::new(),
    };
    elements
        .iter()
        .enumerate()
        .map(|(i, el)| {
            el.get("value")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    Error::invalid_value(format!(
                        "{}[{i}].value (the member id) is required",
                        def.name
                    ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_net_out_in_order_and_stay_disjoint() {
        let mut d = DeltaBuilder::default();
        d.add("a".into());
        d.add("b".into());
        d.add("a".into());
        d.remove("a".into());
        d.remove("c".into());
        d.add("c".into());
        let out = d.finish();
        assert_eq!(out.added, ["b", "c"]);
        assert_eq!(out.removed, ["a"]);
        assert!(!out.clear);

        let mut d = DeltaBuilder::default();
        d.remove("x".into());
        d.clear();
        d.add("y".into());
        d.remove("z".into());
        let out = d.finish();
        assert!(out.clear);
        assert_eq!(out.added, ["y"]);
        assert!(out.removed.is_empty());
    }

    fn delta(clear: bool, added: &[&str], removed: &[&str]) -> MembershipDelta {
        MembershipDelta {
            clear,
            added: added.iter().map(|s| s.to_string()).collect(),
            removed: removed.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Applies deltas to a member set as storage does: clear, remove, add.
    fn stored(mut members: Vec<String>, deltas: &[MembershipDelta]) -> Vec<String> {
        for d in deltas {
            if d.clear {
                members.retain(|m| d.added.contains(m));
            }
            members.retain(|m| !d.removed.contains(m));
            for a in &d.added {
                if !members.contains(a) {
                    members.push(a.clone());
                }
            }
        }
        members.sort();
        members
    }

    #[test]
    fn successive_deltas_store_what_they_store_one_after_another() {
        let start: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let steps = [
            delta(false, &["x"], &["a"]),
            delta(false, &["a"], &["x", "b"]),
            delta(false, &["y"], &[]),
            delta(false, &[], &["y", "c"]),
            delta(true, &["b", "z"], &[]),
            delta(false, &["c"], &["z"]),
        ];
        for n in 1..=steps.len() {
            let merged = steps[1..n]
                .iter()
                .fold(steps[0].clone(), |acc, d| acc.followed_by(d));
            assert!(
                merged.added.iter().all(|a| !merged.removed.contains(a)),
                "added and removed stay disjoint: {merged:?}"
            );
            assert_eq!(
                stored(start.clone(), std::slice::from_ref(&merged)),
                stored(start.clone(), &steps[..n]),
                "after {n} steps, merged {merged:?}"
            );
        }
        // Add then remove of a member that was never there leaves a removal only.
        let merged = delta(false, &["n"], &[]).followed_by(&delta(false, &[], &["n"]));
        assert_eq!(merged, delta(false, &[], &["n"]));
    }
}
