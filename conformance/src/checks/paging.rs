//! Index pagination invariants (RFC 7644 §3.4.2.4) over twelve fixture users. The
//! pages are narrowed to the fixture with a `userName sw` filter, so these checks need
//! filtering and are skipped when the server declares it unsupported.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::fixtures::{PAGE_USERS, page_users};
use super::{Check, Feature, c};
use crate::ctx::{Ctx, GROUP, Stop, id_of, ids, resources};

const R: &str = "RFC 7644 §3.4.2.4";

fn page(ctx: &mut Ctx, query: &str) -> Result<(Value, Vec<String>), Stop> {
    let (p, _) = page_users(ctx)?;
    let l = ctx.filter("/Users", &format!("userName sw \"{p}\""), query)?;
    let i = ids(&l);
    Ok((l, i))
}

fn total_is_full(ctx: &mut Ctx, l: &Value) -> crate::ctx::Res {
    ctx.ensure(
        l["totalResults"] == PAGE_USERS,
        format!("totalResults {PAGE_USERS} (the full count, not the page size)"),
    )
}

pub(super) fn checks() -> Vec<Check> {
    vec![
        c("paging.total-results-full-count", "totalResults is the full count, whatever the page size", R, |ctx| {
            let (l, _) = page(ctx, "&startIndex=1&count=5")?;
            total_is_full(ctx, &l)
        }),
        c("paging.count-limits-page", "count limits the number of Resources", R, |ctx| {
            let (_, i) = page(ctx, "&startIndex=1&count=5")?;
            ctx.ensure(i.len() == 5, format!("5 Resources, got {}", i.len()))
        }),
        c("paging.items-per-page", "itemsPerPage equals the number of Resources returned", R, |ctx| {
            let (l, i) = page(ctx, "&startIndex=1&count=5")?;
            ctx.ensure(l["itemsPerPage"] == i.len(), format!("itemsPerPage {}", i.len()))
        }),
        c("paging.start-index-echoed", "startIndex in the response is the requested one", R, |ctx| {
            let (l, _) = page(ctx, "&startIndex=6&count=5")?;
            ctx.ensure(l["startIndex"] == 6, "startIndex 6")
        }),
        c("paging.default-start-index", "Without startIndex, the response starts at 1", R, |ctx| {
            let (l, _) = page(ctx, "&count=5")?;
            ctx.ensure(l["startIndex"] == 1, "startIndex 1")
        }),
        c("paging.pages-disjoint-and-complete", "Pages are disjoint and their union is the full result", R, |ctx| {
            let (_, all) = page_users(ctx)?;
            let mut seen = BTreeSet::new();
            for start in [1, 6, 11] {
                let (_, i) = page(ctx, &format!("&startIndex={start}&count=5"))?;
                for id in i {
                    if !seen.insert(id.clone()) {
                        return Err(ctx.fail_with("pages 1-5, 6-10, 11-15 without repeated ids", format!("id {id} appeared twice")));
                    }
                }
            }
            let want: BTreeSet<String> = all.into_iter().collect();
            ctx.ensure(seen == want, format!("the union of pages equal to the {PAGE_USERS} created users"))
        }),
        c("paging.order-stable", "The same query returns the same order twice", R, |ctx| {
            let (_, a) = page(ctx, "&startIndex=1&count=12")?;
            let (_, b) = page(ctx, "&startIndex=1&count=12")?;
            ctx.ensure(a == b, "identical id sequences for two identical queries")
        }),
        c("paging.pages-follow-full-order", "Page boundaries follow the order of the whole result", R, |ctx| {
            let (_, full) = page(ctx, "&startIndex=1&count=12")?;
            let (_, p2) = page(ctx, "&startIndex=4&count=3")?;
            ctx.ensure(full.len() == 12 && p2 == full[3..6], "items 4-6 of the full result as the page startIndex=4&count=3")
        }),
        c("paging.start-index-zero", "startIndex < 1 is interpreted as 1", R, |ctx| {
            let (_, a) = page(ctx, "&startIndex=1&count=3")?;
            let (l, b) = page(ctx, "&startIndex=0&count=3")?;
            ctx.ensure(l.get("startIndex").is_some_and(|s| s == 1) && a == b, "startIndex=0 answered like startIndex=1 (startIndex 1, same page)")
        }),
        c("paging.start-index-negative", "A negative startIndex is interpreted as 1", R, |ctx| {
            let (_, a) = page(ctx, "&startIndex=1&count=3")?;
            let (_, b) = page(ctx, "&startIndex=-4&count=3")?;
            ctx.ensure(a == b, "startIndex=-4 answered like startIndex=1")
        }),
        c("paging.count-zero", "count=0 returns no Resources but the full totalResults", R, |ctx| {
            let (l, i) = page(ctx, "&count=0")?;
            ctx.ensure(i.is_empty(), "no Resources")?;
            total_is_full(ctx, &l)
        }),
        c("paging.count-negative", "A negative count is interpreted as 0", R, |ctx| {
            let (l, i) = page(ctx, "&count=-1")?;
            ctx.ensure(i.is_empty(), "no Resources")?;
            total_is_full(ctx, &l)
        }),
        c("paging.beyond-end", "startIndex past the end returns no Resources and the full totalResults", R, |ctx| {
            let (l, i) = page(ctx, "&startIndex=13&count=5")?;
            ctx.ensure(i.is_empty(), "no Resources")?;
            total_is_full(ctx, &l)
        }),
        c("paging.last-page-partial", "The last page holds the remainder", R, |ctx| {
            let (l, i) = page(ctx, "&startIndex=11&count=5")?;
            ctx.ensure(i.len() == 2, format!("2 Resources (11 and 12 of {PAGE_USERS}), got {}", i.len()))?;
            total_is_full(ctx, &l)
        }),
        c("paging.search-post", "startIndex and count in a POST .search body", "RFC 7644 §3.4.3", |ctx| {
            let (p, _) = page_users(ctx)?;
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": format!("userName sw \"{p}\""), "startIndex": 3, "count": 4});
            let r = ctx.post("/Users/.search", &body)?;
            ctx.status(&r, &[200], "")?;
            let l = ctx.obj(&r)?;
            ctx.ensure(resources(&l).len() == 4 && l["totalResults"] == PAGE_USERS && l["startIndex"] == 3, format!("4 Resources, totalResults {PAGE_USERS}, startIndex 3"))
        }),
        c("paging.groups", "Groups page like users", R, |ctx| {
            let p = ctx.unique("gpage");
            let mut made = BTreeSet::new();
            for n in 0..3 {
                let g = ctx.create_raw("/Groups", &json!({"schemas": [GROUP], "displayName": format!("{p}-{n}")}))?;
                made.insert(id_of(&g));
            }
            let mut seen = BTreeSet::new();
            for start in 1..=3 {
                let l = ctx.filter("/Groups", &format!("displayName sw \"{p}\""), &format!("&startIndex={start}&count=1"))?;
                ctx.ensure(l["totalResults"] == 3 && ids(&l).len() == 1, "totalResults 3 and one group per page")?;
                seen.extend(ids(&l));
            }
            ctx.ensure(seen == made, "three pages of one group covering the three groups")
        }),
    ]
    .into_iter()
    .map(|c| c.needs(Feature::Filter))
    .collect()
}
