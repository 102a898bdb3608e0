//! Small helpers several check modules share.

use serde_json::Value;

use crate::ctx::{Ctx, Stop, attr, values_of};

/// The `userName` of a resource ("" if absent).
pub(super) fn uname(v: &Value) -> String {
    attr(v, "userName").as_str().unwrap_or_default().to_string()
}

/// The member ids of the group at `p`, read back with GET, sorted.
pub(super) fn members(ctx: &mut Ctx, p: &str) -> Result<Vec<String>, Stop> {
    let g = ctx.fetch(p)?;
    let mut m = values_of(&g, "members");
    m.sort();
    Ok(m)
}

/// `v`, sorted.
pub(super) fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}
