//! Sorting (RFC 7644 §3.4.2.3) over the shared fixture users.

use serde_json::json;

use super::fixtures::{People, people};
use super::{Check, Feature, c};
use crate::ctx::{Ctx, GROUP, Res, id_of, ids};

const R: &str = "RFC 7644 §3.4.2.3";

fn order(ctx: &mut Ctx, fx: &People, query: &str) -> Result<Vec<String>, crate::ctx::Stop> {
    let l = ctx.filter("/Users", &format!("userName sw \"{}\"", fx.prefix), query)?;
    Ok(ids(&l)
        .iter()
        .filter_map(|i| fx.name_of(i).map(str::to_string))
        .collect())
}

fn expect_order(ctx: &mut Ctx, query: &str, want: &[&str]) -> Res {
    let fx = people(ctx)?;
    let got = order(ctx, &fx, query)?;
    if got != want {
        return Err(ctx.fail_with(
            format!("{query} to order the fixture users as {want:?}"),
            format!("order {got:?}"),
        ));
    }
    Ok(())
}

pub(super) fn checks() -> Vec<Check> {
    vec![
        c("sort.ascending-default", "sortBy without sortOrder sorts ascending", R, |ctx| expect_order(ctx, "&sortBy=name.familyName", &["alice", "bob", "carol", "dave"])).needs(Feature::Sort).needs(Feature::Filter),
        c("sort.ascending-explicit", "sortOrder=ascending", R, |ctx| expect_order(ctx, "&sortBy=name.familyName&sortOrder=ascending", &["alice", "bob", "carol", "dave"])).needs(Feature::Sort).needs(Feature::Filter),
        c("sort.descending", "sortOrder=descending", R, |ctx| expect_order(ctx, "&sortBy=name.familyName&sortOrder=descending", &["dave", "carol", "bob", "alice"])).needs(Feature::Sort).needs(Feature::Filter),
        c("sort.case-insensitive-strings", "Strings that are not caseExact sort case-insensitively (userName)", R, |ctx| {
            expect_order(ctx, "&sortBy=userName", &["alice", "bob", "carol", "dave"])
        })
        .needs(Feature::Sort).needs(Feature::Filter),
        c("sort.attribute-name-case", "sortBy attribute names are case-insensitive", "RFC 7643 §2.1, RFC 7644 §3.4.2.3", |ctx| {
            expect_order(ctx, "&sortBy=NAME.FAMILYNAME&sortOrder=descending", &["dave", "carol", "bob", "alice"])
        })
        .needs(Feature::Sort).needs(Feature::Filter),
        c("sort.with-paging", "Sorted pages continue each other", "RFC 7644 §3.4.2.3, §3.4.2.4", |ctx| {
            let fx = people(ctx)?;
            let mut got = order(ctx, &fx, "&sortBy=name.givenName&startIndex=1&count=2")?;
            got.extend(order(ctx, &fx, "&sortBy=name.givenName&startIndex=3&count=2")?);
            ctx.ensure(got == ["alice", "bob", "carol", "dave"], format!("pages of 2 sorted by name.givenName: alice, bob | carol, dave; got {got:?}"))
        })
        .needs(Feature::Sort).needs(Feature::Filter),
        c("sort.search-post", "sortBy and sortOrder in a POST .search body", "RFC 7644 §3.4.3", |ctx| {
            let fx = people(ctx)?;
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": format!("userName sw \"{}\"", fx.prefix), "sortBy": "name.familyName", "sortOrder": "descending"});
            let r = ctx.post("/Users/.search", &body)?;
            ctx.status(&r, &[200], "")?;
            let l = ctx.obj(&r)?;
            let got: Vec<String> = ids(&l).iter().filter_map(|i| fx.name_of(i).map(str::to_string)).collect();
            ctx.ensure(got == ["dave", "carol", "bob", "alice"], format!("order dave, carol, bob, alice; got {got:?}"))
        })
        .needs(Feature::Sort).needs(Feature::Filter),
        c("sort.groups.displayname", "Groups sort by displayName", R, |ctx| {
            let p = ctx.unique("gsort");
            let mut made = Vec::new();
            for n in ["b", "c", "a"] {
                let g = ctx.create_raw("/Groups", &json!({"schemas": [GROUP], "displayName": format!("{p}-{n}")}))?;
                made.push(id_of(&g));
            }
            let l = ctx.filter("/Groups", &format!("displayName sw \"{p}\""), "&sortBy=displayName")?;
            let want = vec![made[2].clone(), made[0].clone(), made[1].clone()];
            ctx.ensure(ids(&l) == want, format!("groups in order {p}-a, {p}-b, {p}-c ({want:?})"))
        })
        .needs(Feature::Sort).needs(Feature::Filter),
    ]
}
