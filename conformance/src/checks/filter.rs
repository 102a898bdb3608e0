//! Filtering (RFC 7644 §3.4.2.2): every operator, logical combinations, grouping,
//! value filters and case rules, against the shared fixture users.

use std::collections::BTreeSet;

use serde_json::json;

use super::fixtures::people;
use super::{Check, Feature, c};
use crate::ctx::{Ctx, Res, attr, id_of, ids};

/// A table-driven filter case. In `filter`, `{P}` is the fixture prefix, `{PU}` the
/// same upper-cased, and `{ID_name}` a fixture user's id.
struct Case {
    id: &'static str,
    title: &'static str,
    reference: &'static str,
    filter: &'static str,
    /// Prefix the filter with `userName sw "{P}" and (...)` to keep it narrow on a shared server.
    scoped: bool,
    expect: &'static [&'static str],
}

const R: &str = "RFC 7644 §3.4.2.2";

const CASES: &[Case] = &[
    Case {
        id: "filter.eq.username",
        title: "eq on userName",
        reference: R,
        filter: "userName eq \"{P}-alice\"",
        scoped: false,
        expect: &["alice"],
    },
    Case {
        id: "filter.eq.username-case-insensitive",
        title: "eq on userName ignores case (caseExact false)",
        reference: "RFC 7643 §4.1.1, RFC 7644 §3.4.2.2",
        filter: "userName eq \"{PU}-ALICE\"",
        scoped: false,
        expect: &["alice"],
    },
    Case {
        id: "filter.eq.externalid",
        title: "eq on externalId",
        reference: R,
        filter: "externalId eq \"{P}-ExtA\"",
        scoped: false,
        expect: &["alice"],
    },
    Case {
        id: "filter.eq.externalid-case-exact",
        title: "eq on externalId respects case (caseExact true)",
        reference: "RFC 7643 §3.1",
        filter: "externalId eq \"{P}-exta\"",
        scoped: false,
        expect: &[],
    },
    Case {
        id: "filter.eq.id",
        title: "eq on id",
        reference: R,
        filter: "id eq \"{ID_carol}\"",
        scoped: false,
        expect: &["carol"],
    },
    Case {
        id: "filter.eq.boolean",
        title: "eq on a boolean (active eq false)",
        reference: R,
        filter: "active eq false",
        scoped: true,
        expect: &["bob"],
    },
    Case {
        id: "filter.eq.sub-attribute",
        title: "eq on a complex sub-attribute (name.familyName)",
        reference: R,
        filter: "name.familyName eq \"Baker\"",
        scoped: true,
        expect: &["bob"],
    },
    Case {
        id: "filter.eq.multi-valued",
        title: "eq on a multi-valued sub-attribute matches any value (emails.value)",
        reference: R,
        filter: "emails.value eq \"bob@{P}.example.com\"",
        scoped: false,
        expect: &["bob"],
    },
    Case {
        id: "filter.eq.case-insensitive-value",
        title: "eq on title ignores case (caseExact false)",
        reference: "RFC 7643 §4.1.1, RFC 7644 §3.4.2.2",
        filter: "title eq \"ENGINEER\"",
        scoped: true,
        expect: &["alice", "carol"],
    },
    Case {
        id: "filter.eq.no-match",
        title: "A filter matching nothing is 200 with totalResults 0",
        reference: "RFC 7644 §3.4.2",
        filter: "userName eq \"{P}-nobody\"",
        scoped: false,
        expect: &[],
    },
    Case {
        id: "filter.ne",
        title: "ne",
        reference: R,
        filter: "userType ne \"Employee\"",
        scoped: true,
        expect: &["bob", "dave"],
    },
    Case {
        id: "filter.co",
        title: "co",
        reference: R,
        filter: "title co \"gine\"",
        scoped: true,
        expect: &["alice", "carol"],
    },
    Case {
        id: "filter.co.case-insensitive",
        title: "co ignores case on caseExact false attributes",
        reference: R,
        filter: "name.givenName co \"LIC\"",
        scoped: true,
        expect: &["alice"],
    },
    Case {
        id: "filter.sw",
        title: "sw",
        reference: R,
        filter: "userName sw \"{P}-d\"",
        scoped: false,
        expect: &["dave"],
    },
    Case {
        id: "filter.sw.case-insensitive",
        title: "sw ignores case on userName",
        reference: R,
        filter: "userName sw \"{PU}-AL\"",
        scoped: false,
        expect: &["alice"],
    },
    Case {
        id: "filter.ew",
        title: "ew",
        reference: R,
        filter: "emails.value ew \".example.org\"",
        scoped: true,
        expect: &["alice", "carol"],
    },
    Case {
        id: "filter.ew.username",
        title: "ew on userName",
        reference: R,
        filter: "userName ew \"-dave\"",
        scoped: true,
        expect: &["dave"],
    },
    Case {
        id: "filter.pr",
        title: "pr (present)",
        reference: R,
        filter: "title pr",
        scoped: true,
        expect: &["alice", "bob", "carol"],
    },
    Case {
        id: "filter.pr.single-holder",
        title: "pr on an attribute only one user has",
        reference: R,
        filter: "nickName pr",
        scoped: true,
        expect: &["alice"],
    },
    Case {
        id: "filter.gt.string",
        title: "gt on strings (lexical order)",
        reference: R,
        filter: "name.familyName gt \"Baker\"",
        scoped: true,
        expect: &["carol", "dave"],
    },
    Case {
        id: "filter.ge.string",
        title: "ge on strings",
        reference: R,
        filter: "name.familyName ge \"Baker\"",
        scoped: true,
        expect: &["bob", "carol", "dave"],
    },
    Case {
        id: "filter.lt.string",
        title: "lt on strings",
        reference: R,
        filter: "name.familyName lt \"Cole\"",
        scoped: true,
        expect: &["alice", "bob"],
    },
    Case {
        id: "filter.le.string",
        title: "le on strings",
        reference: R,
        filter: "name.familyName le \"Cole\"",
        scoped: true,
        expect: &["alice", "bob", "carol"],
    },
    Case {
        id: "filter.gt.datetime",
        title: "gt on a dateTime (meta.created)",
        reference: R,
        filter: "meta.created gt \"2000-01-01T00:00:00Z\"",
        scoped: true,
        expect: &["alice", "bob", "carol", "dave"],
    },
    Case {
        id: "filter.lt.datetime",
        title: "lt on a dateTime (meta.created)",
        reference: R,
        filter: "meta.created lt \"2000-01-01T00:00:00Z\"",
        scoped: true,
        expect: &[],
    },
    Case {
        id: "filter.ge.datetime-lastmodified",
        title: "ge on meta.lastModified",
        reference: R,
        filter: "meta.lastModified ge \"2000-01-01T00:00:00Z\"",
        scoped: true,
        expect: &["alice", "bob", "carol", "dave"],
    },
    Case {
        id: "filter.and",
        title: "and",
        reference: R,
        filter: "userType eq \"Employee\" and active eq true",
        scoped: true,
        expect: &["alice", "carol"],
    },
    Case {
        id: "filter.or",
        title: "or",
        reference: R,
        filter: "userName eq \"{P}-alice\" or userName eq \"{P}-dave\"",
        scoped: false,
        expect: &["alice", "dave"],
    },
    Case {
        id: "filter.not",
        title: "not (...)",
        reference: R,
        filter: "not (userType eq \"Employee\")",
        scoped: true,
        expect: &["bob", "dave"],
    },
    Case {
        id: "filter.precedence.and-over-or",
        title: "and binds tighter than or",
        reference: R,
        filter: "userName eq \"{P}-Bob\" or userName eq \"{P}-alice\" and active eq true",
        scoped: false,
        expect: &["alice", "bob"],
    },
    Case {
        id: "filter.grouping.parentheses",
        title: "Parentheses override precedence",
        reference: R,
        filter: "(userName eq \"{P}-Bob\" or userName eq \"{P}-alice\") and active eq true",
        scoped: false,
        expect: &["alice"],
    },
    Case {
        id: "filter.grouping.nested",
        title: "Nested grouping with not",
        reference: R,
        filter: "(userType eq \"Intern\" or userType eq \"Contractor\") and not (active eq false)",
        scoped: true,
        expect: &["dave"],
    },
    Case {
        id: "filter.valuepath.and",
        title: "Value filter with and inside brackets",
        reference: R,
        filter: "emails[type eq \"work\" and value co \"bob@\"]",
        scoped: true,
        expect: &["bob"],
    },
    Case {
        id: "filter.valuepath.simple",
        title: "Value filter on type",
        reference: R,
        filter: "emails[type eq \"home\"]",
        scoped: true,
        expect: &["alice", "carol"],
    },
    Case {
        id: "filter.valuepath.combined",
        title: "Value filter combined with another expression",
        reference: R,
        filter: "emails[type eq \"work\"] and userType eq \"Intern\"",
        scoped: true,
        expect: &["dave"],
    },
    Case {
        id: "filter.case.attribute-name",
        title: "Attribute names in filters are case-insensitive",
        reference: R,
        filter: "USERNAME eq \"{P}-alice\"",
        scoped: false,
        expect: &["alice"],
    },
    Case {
        id: "filter.case.operator",
        title: "Operators are case-insensitive",
        reference: R,
        filter: "userName EQ \"{P}-alice\"",
        scoped: false,
        expect: &["alice"],
    },
    Case {
        id: "filter.case.logical-operator",
        title: "Logical operators are case-insensitive",
        reference: R,
        filter: "userName eq \"{P}-alice\" OR userName eq \"{P}-carol\"",
        scoped: false,
        expect: &["alice", "carol"],
    },
    Case {
        id: "filter.urn.core-attribute",
        title: "Fully qualified core attribute in a filter",
        reference: "RFC 7644 §3.10",
        filter: "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"{P}-alice\"",
        scoped: false,
        expect: &["alice"],
    },
    Case {
        id: "filter.urn.extension-attribute",
        title: "Fully qualified enterprise extension attribute in a filter",
        reference: "RFC 7644 §3.10",
        filter: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"Sales\"",
        scoped: true,
        expect: &["bob"],
    },
];

fn expand(template: &str, p: &str, ids: &std::collections::BTreeMap<String, String>) -> String {
    let mut f = template
        .replace("{PU}", &p.to_uppercase())
        .replace("{P}", p);
    for (k, v) in ids {
        f = f.replace(&format!("{{ID_{k}}}"), v);
    }
    f
}

fn run_case(ctx: &mut Ctx, case: &Case) -> Res {
    let fx = people(ctx)?;
    let mut f = expand(case.filter, &fx.prefix, &fx.ids);
    if case.scoped {
        f = format!("userName sw \"{}\" and ({f})", fx.prefix);
    }
    let l = ctx.filter("/Users", &f, "&count=200")?;
    let got: BTreeSet<String> = ids(&l)
        .iter()
        .filter_map(|i| fx.name_of(i).map(str::to_string))
        .collect();
    let want: BTreeSet<String> = case.expect.iter().map(|s| s.to_string()).collect();
    if got != want {
        return Err(ctx.fail_with(
            format!("filter {f:?} to match exactly {want:?} among the fixture users"),
            format!("matched {got:?}"),
        ));
    }
    if case.expect.is_empty() {
        ctx.ensure(l["totalResults"] == 0, "totalResults 0")?;
    }
    Ok(())
}

fn invalid(ctx: &mut Ctx, filter: &str) -> Res {
    let r = ctx.get(&format!("/Users?filter={}", Ctx::enc(filter)))?;
    ctx.status(&r, &[400], "an invalid filter")?;
    ctx.ensure(
        attr(r.j(), "scimType") == "invalidFilter",
        "scimType \"invalidFilter\"",
    )
}

pub(super) fn checks() -> Vec<Check> {
    let mut v: Vec<Check> = CASES
        .iter()
        .map(|case| {
            c(case.id, case.title, case.reference, move |ctx| {
                run_case(ctx, case)
            })
            .needs(Feature::Filter)
        })
        .collect();
    v.extend([
        c("filter.gt.boolean-400", "gt on a boolean is 400 invalidFilter", R, |ctx| {
            people(ctx)?;
            invalid(ctx, "active gt false")
        })
        .needs(Feature::Filter),
        c("filter.invalid.syntax-400", "A filter missing its value is 400 invalidFilter", "RFC 7644 §3.4.2.2, §3.12", |ctx| invalid(ctx, "userName eq")).needs(Feature::Filter),
        c("filter.invalid.operator-400", "An unknown operator is 400 invalidFilter", "RFC 7644 §3.4.2.2, §3.12", |ctx| invalid(ctx, "userName zz \"a\"")).needs(Feature::Filter),
        c("filter.invalid.unbalanced-400", "Unbalanced parentheses are 400 invalidFilter", "RFC 7644 §3.4.2.2, §3.12", |ctx| invalid(ctx, "(userName eq \"a\"")).needs(Feature::Filter),
        c("filter.search.post", "POST /Users/.search with a filter", "RFC 7644 §3.4.3", |ctx| {
            let fx = people(ctx)?;
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": format!("userName eq \"{}-alice\"", fx.prefix)});
            let r = ctx.post("/Users/.search", &body)?;
            ctx.status(&r, &[200], "")?;
            let l = ctx.obj(&r)?;
            ctx.ensure(ids(&l) == vec![fx.ids["alice"].clone()], format!("Resources [{}]", fx.ids["alice"]))
        })
        .needs(Feature::Filter),
        c("filter.groups.displayname", "eq on Group displayName", R, |ctx| {
            let g = ctx.create_group("fgdn", &[])?;
            let name = attr(&g, "displayName").as_str().unwrap_or_default().to_string();
            let l = ctx.filter("/Groups", &format!("displayName eq \"{name}\""), "")?;
            ctx.ensure(ids(&l) == vec![id_of(&g)], format!("exactly the group {}", id_of(&g)))
        })
        .needs(Feature::Filter),
        c("filter.groups.members-value", "Value filter on Group members (members[value eq ...])", R, |ctx| {
            let u = id_of(&ctx.create_user("fgm", json!({}))?);
            let g = ctx.create_group("fgm", &[&u])?;
            ctx.create_group("fgm-other", &[])?;
            let l = ctx.filter("/Groups", &format!("members[value eq \"{u}\"]"), "")?;
            ctx.ensure(ids(&l) == vec![id_of(&g)], format!("exactly the group {}", id_of(&g)))
        })
        .needs(Feature::Filter),
        c("filter.groups.members-dotted", "eq on members.value", R, |ctx| {
            let u = id_of(&ctx.create_user("fgmd", json!({}))?);
            let g = ctx.create_group("fgmd", &[&u])?;
            let l = ctx.filter("/Groups", &format!("members.value eq \"{u}\""), "")?;
            ctx.ensure(ids(&l) == vec![id_of(&g)], format!("exactly the group {}", id_of(&g)))
        })
        .needs(Feature::Filter),
        c("filter.escaped-quote", "A quoted value with an escaped double quote", "RFC 7644 §3.4.2.2, RFC 7159 §7", |ctx| {
            let u = ctx.create_user("fquote", json!({"title": "Say \"hi\" now"}))?;
            let name = attr(&u, "userName").as_str().unwrap_or_default().to_string();
            let l = ctx.filter("/Users", &format!("userName eq \"{name}\" and title eq \"Say \\\"hi\\\" now\""), "")?;
            ctx.ensure(ids(&l) == vec![id_of(&u)], "the user whose title contains quotes")
        })
        .needs(Feature::Filter),
    ]);
    v
}
