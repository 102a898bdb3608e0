//! Data-driven tables: `(filter, expected)` against fixed resources, and error tables.

use super::{Filter, MAX_FILTER_DEPTH, MAX_FILTER_LEN, MAX_FILTER_NODES};
use crate::error::ScimType;
use crate::schema::{
    AttributeType, ENTERPRISE_USER_URN, Location, Schema, SchemaRegistry, USER_URN,
};
use serde_json::{Map, Value, json};

const ACME: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";

fn registry() -> SchemaRegistry {
    let mut r = SchemaRegistry::builtin();
    let doc = json!({
        "id": ACME,
        "attributes": [
            {"name": "badgeNumber", "type": "integer"},
            {"name": "score", "type": "decimal"},
            {"name": "hired", "type": "dateTime"},
            {"name": "vip", "type": "boolean"},
            {"name": "tags", "type": "string", "multiValued": true},
            {"name": "code", "type": "string", "caseExact": true},
            {"name": "photo", "type": "binary"}
        ]
    });
    r.add_schema(Schema::from_json(&doc).unwrap());
    r.extend_resource_type("User", ACME, false).unwrap();
    r
}

fn user() -> Map<String, Value> {
    json!({
        "schemas": [USER_URN, ENTERPRISE_USER_URN, ACME],
        "id": "2819c223",
        "externalId": "ExT-1",
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs Jensen",
        "title": "",
        "nickName": null,
        "active": true,
        "emails": [
            {"type": "work", "value": "bjensen@example.com", "primary": true},
            {"type": "home", "value": "babs@jensen.org"}
        ],
        "phoneNumbers": [{"type": "mobile", "value": "555-1234"}],
        "addresses": [],
        "customText": "Hello",
        "customNumber": 5,
        ENTERPRISE_USER_URN: {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {"value": "26118915", "displayName": "John Smith"}
        },
        ACME: {
            "badgeNumber": 1200,
            "score": 4.5,
            "hired": "2015-03-01T09:00:00+01:00",
            "vip": false,
            "tags": ["Red", "blue"],
            "code": "AbC",
            "photo": "QUJD"
        },
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": "W/\"3\"",
            "location": "https://example.com/v2/Users/2819c223"
        }
    })
    .as_object()
    .unwrap()
    .clone()
}

fn parse(text: &str) -> crate::Result<Filter> {
    let r = registry();
    let rt = r.resource_type("User").unwrap().clone();
    Filter::parse(&r, &rt, text)
}

#[track_caller]
fn check(filter: &str, resource: &Map<String, Value>, expected: bool) {
    let f = parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    assert_eq!(f.matches(resource), expected, "{filter}\n{f:#?}");
    // The canonical text means the same.
    let again = parse(&f.to_string()).unwrap_or_else(|e| panic!("{f}: {e}"));
    assert_eq!(again, f, "{filter} printed as {f}");
}

#[test]
fn operators_on_strings_honour_case_exact() {
    let u = user();
    let cases = [
        // userName: caseExact false
        (r#"userName eq "bjensen""#, true),
        (r#"userName eq "BJENSEN""#, true),
        (r#"userName eq "bjense""#, false),
        (r#"userName ne "BJensen""#, false),
        (r#"userName ne "other""#, true),
        (r#"userName co "JEN""#, true),
        (r#"userName co "xyz""#, false),
        (r#"userName sw "BJ""#, true),
        (r#"userName sw "jen""#, false),
        (r#"userName ew "SEN""#, true),
        (r#"userName ew "bj""#, false),
        (r#"userName gt "BA""#, true),
        (r#"userName gt "BZ""#, false),
        (r#"userName ge "BJENSEN""#, true),
        (r#"userName lt "C""#, true),
        (r#"userName lt "bjensen""#, false),
        (r#"userName le "BJENSEN""#, true),
        // externalId and id: caseExact true
        (r#"externalId eq "ExT-1""#, true),
        (r#"externalId eq "ext-1""#, false),
        (r#"externalId co "xT""#, true),
        (r#"externalId co "XT""#, false),
        (r#"externalId sw "E""#, true),
        (r#"externalId ew "t-1""#, false),
        (r#"externalId gt "D""#, true),
        (r#"externalId gt "a""#, false),
        (r#"id eq "2819c223""#, true),
        (r#"id eq "2819C223""#, false),
        (
            r#"urn:example:params:scim:schemas:extension:acme:2.0:User:code eq "AbC""#,
            true,
        ),
        (r#"code eq "abc""#, false),
        // An unquoted number compared with a string attribute means its text.
        (r#"employeeNumber eq 701984"#, true),
        // Binary: equality only, per caseExact of the definition.
        (r#"photo eq "QUJD""#, true),
        (r#"photo ne "QUJD""#, false),
    ];
    for (f, want) in cases {
        check(f, &u, want);
    }
}

#[test]
fn numbers_booleans_and_datetimes() {
    let u = user();
    let cases = [
        ("badgeNumber eq 1200", true),
        ("badgeNumber eq 1200.0", true),
        ("badgeNumber ne 1200", false),
        ("badgeNumber gt 1199", true),
        ("badgeNumber gt 1200", false),
        ("badgeNumber ge 1200", true),
        ("badgeNumber lt 1200.5", true),
        ("badgeNumber le 1199", false),
        ("badgeNumber lt -5", false),
        (r#"badgeNumber eq "1200""#, true),
        ("score gt 4.4", true),
        ("score lt 4.5", false),
        ("score le 4.5", true),
        ("score eq 4.5e0", true),
        // Long decimals keep a value that survives printing (found by fuzzing).
        ("score lt 5222222222222222222222222222222222222222", true),
        (
            "score gt 0.1000000000000000055511151231257827021181583404541015625",
            true,
        ),
        ("active eq true", true),
        ("active eq false", false),
        ("active ne false", true),
        (r#"active eq "True""#, true),
        ("vip eq false", true),
        ("vip eq true", false),
        ("vip pr", true),
        (r#"meta.lastModified gt "2011-05-13T04:42:33Z""#, true),
        (r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, false),
        (r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, true),
        (r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#, true),
        (r#"meta.lastModified lt "2011-05-13T04:42:34.001Z""#, true),
        (r#"meta.created le "2010-01-23T04:56:22""#, true),
        (r#"meta.created lt "2010-01-23T04:56:22Z""#, false),
        (r#"hired eq "2015-03-01T08:00:00Z""#, true),
        (r#"hired gt "2015-03-01T08:30:00Z""#, false),
        (r#"meta.resourceType eq "User""#, true),
        (r#"meta.resourceType eq "user""#, false),
        (r#"meta.version eq "W/\"3\"""#, true),
        (r#"meta.location sw "https://example.com/""#, true),
    ];
    for (f, want) in cases {
        check(f, &u, want);
    }
}

#[test]
fn presence_and_null() {
    let u = user();
    let cases = [
        ("userName pr", true),
        ("title pr", false),      // ""
        ("nickName pr", false),   // null
        ("addresses pr", false),  // []
        ("profileUrl pr", false), // absent
        ("emails pr", true),
        ("name pr", true),
        ("name.middleName pr", false),
        ("manager pr", true),
        ("manager.value pr", true),
        ("title eq null", true),
        ("title ne null", false),
        ("userName eq null", false),
        ("userName ne null", true),
        ("emails.display eq null", true),
        ("id pr", true),
        ("meta.lastModified pr", true),
    ];
    for (f, want) in cases {
        check(f, &u, want);
    }
    let mut empty_object = Map::new();
    empty_object.insert("name".into(), json!({"givenName": "", "familyName": null}));
    empty_object.insert("emails".into(), json!([{}, {"value": ""}]));
    check("name pr", &empty_object, false);
    check("emails pr", &empty_object, false);
    check("emails.value pr", &empty_object, false);
}

#[test]
fn multi_valued_attributes_match_any_element() {
    let u = user();
    let cases = [
        (r#"emails.value co "@jensen""#, true),
        (r#"emails.value eq "BJENSEN@example.com""#, true),
        (r#"emails.value eq "nobody@x""#, false),
        (r#"emails.type eq "home""#, true),
        // ne is not (eq): no element equals.
        (r#"emails.type ne "home""#, false),
        (r#"emails.type ne "other""#, true),
        (r#"phoneNumbers.value ne "1""#, true),
        (r#"addresses.type ne "work""#, true),
        // A complex attribute compared without a sub-attribute compares its `value`.
        (r#"emails eq "babs@jensen.org""#, true),
        (r#"emails co "nobody""#, false),
        (r#"tags eq "red""#, true),
        (r#"tags eq "green""#, false),
        (r#"tags sw "BL""#, true),
        (r#"tags ne "blue""#, false),
        (r#"emails.primary eq true"#, true),
        // Separate elements may satisfy separate conditions outside brackets...
        (
            r#"emails.type eq "home" and emails.value ew "example.com""#,
            true,
        ),
        // ...but not inside one value filter.
        (
            r#"emails[type eq "home" and value ew "example.com"]"#,
            false,
        ),
        (r#"emails[type eq "work" and value ew "example.com"]"#, true),
        (r#"emails[type eq "work" or type eq "other"]"#, true),
        (r#"emails[not (type eq "work")]"#, true),
        (r#"emails[type eq "x"]"#, false),
        (r#"emails[primary eq true]"#, true),
        (r#"emails[EMAILS.TYPE eq "home"]"#, true),
        (r#"addresses[type eq "work"]"#, false),
        (r#"phoneNumbers[type eq "mobile" and value pr]"#, true),
        // Single-valued complex: the object is the one element.
        (r#"name[givenName eq "barbara"]"#, true),
        (
            r#"name[givenName eq "barbara" and familyName sw "x"]"#,
            false,
        ),
        (r#"manager[value eq "26118915"]"#, true),
        (r#"manager[displayName co "smith"]"#, true),
        // Undeclared sub-attributes inside a value filter are looked up as sent.
        (r#"emails[nosuch eq "x"]"#, false),
    ];
    for (f, want) in cases {
        check(f, &u, want);
    }
}

#[test]
fn logic_precedence_and_grouping() {
    let u = user();
    let t = r#"userName eq "bjensen""#;
    let f = r#"userName eq "nobody""#;
    let cases = [
        // `and` binds tighter than `or`: T or (F and F) = T
        (format!("{t} or {f} and {f}"), true),
        // (T or F) and F = F
        (format!("({t} or {f}) and {f}"), false),
        (format!("{f} and {f} or {t}"), true),
        (format!("{f} and ({f} or {t})"), false),
        (format!("not ({t})"), false),
        (format!("not ({f}) and {t}"), true),
        (format!("not ({t} or {f})"), false),
        (format!("not (not ({t}))"), true),
        (format!("(({t}))"), true),
        // The ABNF needs no space between `not` and `(`.
        (format!("not({f}) and NOT({f})"), true),
        (format!("{t} and {t} and {t} and {f}"), false),
        (format!("{f} or {f} or {f} or {t}"), true),
        (format!("{t} AND NOT ({f}) Or {f}"), true),
    ];
    for (filter, want) in cases {
        check(&filter, &u, want);
    }
}

#[test]
fn names_operators_and_urns_are_case_insensitive() {
    let u = user();
    let cases = [
        (r#"USERNAME EQ "BJENSEN""#, true),
        (r#"DisplayName eq "babs jensen""#, true),
        (r#"Name.GivenName Sw "bar""#, true),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen""#,
            true,
        ),
        (
            r#"URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:USERNAME eq "bjensen""#,
            true,
        ),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName eq "jensen""#,
            true,
        ),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:id eq "2819c223""#,
            true,
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
            true,
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915""#,
            true,
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "26118915""#,
            true,
        ),
        (r#"department eq "tour operations""#, true),
        (r#"manager eq "26118915""#, true),
        (r#"manager.value eq "26118915""#, true),
        (r#"id eq "2819c223" and manager eq "26118915""#, true),
        (r#"id eq "2819c223" and manager eq "1""#, false),
        (r#"Manager.Value EQ "26118915""#, true),
    ];
    for (f, want) in cases {
        check(f, &u, want);
    }
    let f = parse(r#"USERNAME eq "x""#).unwrap();
    let Filter::Compare(c) = &f else { panic!() };
    assert_eq!(c.path.attr.name, "userName");
    assert!(c.path.declared);
    let f = parse(r#"manager eq "x""#).unwrap();
    let Filter::Compare(c) = &f else { panic!() };
    assert_eq!(
        c.path.to_string(),
        format!("{ENTERPRISE_USER_URN}:manager.value")
    );
    assert_eq!(c.path.location, Location::Extension);
}

#[test]
fn entra_sub_attribute_after_value_filter() {
    let u = user();
    let cases = [
        (
            r#"emails[type eq "work"].value eq "bjensen@example.com""#,
            true,
        ),
        (
            r#"emails[type eq "work"].value eq "BJENSEN@EXAMPLE.COM""#,
            true,
        ),
        (
            r#"emails[type eq "home"].value eq "bjensen@example.com""#,
            false,
        ),
        (r#"emails[type eq "work"].value pr"#, true),
        (r#"emails[type eq "home"].display pr"#, false),
        (
            r#"emails[type eq "home" or type eq "work"].value ew "org""#,
            true,
        ),
        (
            r#"emails[type eq "x" or type eq "work"].value ew "org""#,
            false,
        ),
        (
            r#"phoneNumbers[type eq "mobile"].value eq "555-1234" and userName eq "bjensen""#,
            true,
        ),
        (
            r#"userName eq "bjensen" and emails[type eq "work"].value co "@example""#,
            true,
        ),
        (r#"not (emails[type eq "work"].value eq "x")"#, true),
        (
            r#"EMAILS[TYPE EQ "work"].VALUE EQ "bjensen@example.com""#,
            true,
        ),
    ];
    for (f, want) in cases {
        check(f, &u, want);
    }
    assert_eq!(
        parse(r#"emails[type eq "work"].value eq "x""#).unwrap(),
        parse(r#"emails[type eq "work" and value eq "x"]"#).unwrap()
    );
    assert_eq!(
        parse(r#"emails[type eq "a" or type eq "b"].value eq "x""#).unwrap(),
        parse(r#"emails[(type eq "a" or type eq "b") and value eq "x"]"#).unwrap()
    );
}

#[test]
fn undeclared_attributes_resolve_and_match_what_is_stored() {
    let u = user();
    let cases = [
        (r#"noSuchAttribute eq "x""#, false),
        ("noSuchAttribute pr", false),
        (r#"noSuchAttribute ne "x""#, true),
        (r#"no.such eq "x""#, false),
        (r#"name.nosuch eq "x""#, false),
        (r#"urn:example:unknown:2.0:User:foo eq "x""#, false),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nosuch eq "x""#,
            false,
        ),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "Babs Jensen""#,
            false,
        ),
        (r#"customText eq "hello""#, true),
        (r#"CUSTOMTEXT sw "HE""#, true),
        ("customNumber eq 5", true),
        ("customNumber gt 4", true),
        (r#"customNumber eq "5""#, true),
        ("customText gt 4", false),
        (r#"nosuch[value eq "x"]"#, false),
        // `schemas` is no schema's attribute, but stored values still compare.
        (
            r#"schemas eq "URN:example:params:scim:schemas:extension:acme:2.0:User""#,
            true,
        ),
    ];
    for (f, want) in cases {
        check(f, &u, want);
    }
    let f = parse(r#"urn:example:unknown:2.0:User:foo eq "x""#).unwrap();
    let Filter::Compare(c) = &f else { panic!() };
    assert!(!c.path.declared);
    assert_eq!(c.path.location, Location::Extension);
    assert_eq!(c.path.schema, "urn:example:unknown:2.0:User");
    assert_eq!(c.path.attr.kind, AttributeType::String);
    let f = parse(r#"nosuch eq "x""#).unwrap();
    let Filter::Compare(c) = &f else { panic!() };
    assert_eq!(
        (c.path.location, c.path.schema.as_str()),
        (Location::Core, USER_URN)
    );
    // Stored under an undeclared extension URN.
    let mut custom = Map::new();
    custom.insert("urn:example:unknown:2.0:User".into(), json!({"foo": "X"}));
    check(r#"urn:example:unknown:2.0:User:foo eq "x""#, &custom, true);
}

#[test]
fn groups() {
    let r = registry();
    let rt = r.resource_type("Group").unwrap();
    let group = json!({
        "id": "g1",
        "displayName": "Admins",
        "members": [{"value": "u1", "display": "Ann"}, {"value": "u2", "type": "User"}]
    });
    let group = group.as_object().unwrap();
    for (f, want) in [
        (r#"displayName eq "ADMINS""#, true),
        (r#"members[value eq "u2"]"#, true),
        (r#"members[value eq "U2"]"#, false), // members.value is caseExact
        (r#"members eq "u1""#, true),
        (r#"members.value eq "u3""#, false),
        (r#"members[display eq "ann"]"#, true),
        (r#"members[type eq "User" and value eq "u2"]"#, true),
    ] {
        let filter = Filter::parse(&r, rt, f).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(filter.matches(group), want, "{f}");
    }
}

#[test]
fn value_filters_for_patch_paths() {
    let r = registry();
    let rt = r.resource_type("User").unwrap();
    let path: scim_v2::filter::PatchPath =
        r#"emails[type eq "work" and value co "@x"].value"#.parse().unwrap();
    let scim_v2::filter::PatchPath::Value(vp) = path else {
        panic!()
    };
    let parent = r.resolve_str(rt, "emails").unwrap();
    let f = Filter::resolve_value_filter(&r, rt, &parent, &vp.filter).unwrap();
    // Outside its brackets the inner filter prints with parent-qualified paths.
    assert_eq!(
        f.to_string(),
        r#"emails.type eq "work" and emails.value co "@x""#
    );
    let Filter::And(items) = &f else { panic!() };
    let Filter::Compare(c) = &items[0] else {
        panic!()
    };
    assert_eq!(c.path.sub.as_ref().unwrap().name, "type");
    assert_eq!(c.path.attr.name, "emails");
    assert!(f.matches_element(&json!({"type": "WORK", "value": "a@x.org"})));
    assert!(!f.matches_element(&json!({"type": "home", "value": "a@x.org"})));
    assert!(!f.matches_element(&json!("a@x.org")));

    let rt = r.resource_type("Group").unwrap();
    let parent = r.resolve_str(rt, "members").unwrap();
    let path: scim_v2::filter::PatchPath = r#"members[display eq "Ann"]"#.parse().unwrap();
    let scim_v2::filter::PatchPath::Value(vp) = path else {
        panic!()
    };
    let f = Filter::resolve_value_filter(&r, rt, &parent, &vp.filter).unwrap();
    assert!(f.matches_element(&json!({"value": "u1", "display": "ann"})));
}

#[track_caller]
fn error(filter: &str, detail_contains: &str) {
    let err = parse(filter).expect_err(filter);
    assert_eq!(err.scim_type(), Some(ScimType::InvalidFilter), "{filter}");
    assert_eq!(err.status(), 400);
    assert!(
        err.detail().contains(detail_contains),
        "{filter}: {:?} does not contain {detail_contains:?}",
        err.detail()
    );
}

#[test]
fn syntax_errors_name_the_offset_and_what_was_expected() {
    let cases = [
        ("", "filter is empty"),
        ("   ", "filter is empty"),
        (
            r#"userName foo "x""#,
            "unexpected `foo` at offset 9; expected one of eq",
        ),
        (
            r#"userName eq"#,
            "unexpected `eq` at offset 9: an operator needs a space",
        ),
        (r#"userName eq "x" and"#, "`and` and `or` need a space"),
        (
            r#"userName eq "x" and not"#,
            "filter ends unexpectedly at offset 23",
        ),
        (r#"userName eq "x"#, "unterminated string at offset 12"),
        (r#"  userName eq "x"#, "unterminated string at offset 14"),
        (r#"userName eq "x")"#, "unexpected `)` at offset 15"),
        (r#"(userName eq "x""#, "filter ends unexpectedly"),
        (r#"userName eq x"#, "at offset 12"),
        (r#"userName eq "x" userName"#, "at offset 16"),
        (r#"emails[type eq "work"].value"#, "at offset 22"),
        (
            r#"emails[type eq "a" or type eq "b"].value eq "x" and bad"#,
            "at offset 55",
        ),
        (
            r#"emails[type eq "a" or type eq "b"].value eq "x" and bad & x"#,
            "`&` at offset 56",
        ),
        (r#"emails[value[type eq "x"]]"#, "unexpected"),
        (
            r#"userName eq "x" & title pr"#,
            "unexpected character `&` at offset 16",
        ),
        (r#"name.given.x eq "a""#, "more than one sub-attribute"),
        ("not userName pr", "unexpected"),
    ];
    for (f, want) in cases {
        error(f, want);
    }
}

#[test]
fn type_errors_are_invalid_filter() {
    let cases = [
        ("active gt true", "not defined for boolean"),
        ("active le false", "not defined for boolean"),
        (r#"active co "t""#, "not defined for boolean"),
        (r#"active eq "yes""#, "compares with true or false"),
        ("active eq 1", "compares with true or false"),
        (r#"vip gt true"#, "not defined for boolean"),
        (r#"photo gt "QUJD""#, "not defined for binary"),
        (r#"meta.created gt "notadate""#, "not an xsd:dateTime"),
        (r#"meta.lastModified eq 5"#, "not an xsd:dateTime"),
        (r#"meta.created co "2010""#, "strings only"),
        (r#"badgeNumber co "1""#, "strings only"),
        (r#"badgeNumber eq "many""#, "not a number"),
        ("badgeNumber eq true", "compares with a number"),
        ("userName gt null", "only eq and ne compare with null"),
        (r#"name eq "x""#, "name is complex"),
        (r#"meta eq "x""#, "meta is complex"),
        (r#"name.givenName[value eq "x"]"#, "not to a sub-attribute"),
        (r#"userName[value eq "x"]"#, "not a complex attribute"),
        (
            r#"emails[name.givenName eq "x"]"#,
            "must name a sub-attribute of emails",
        ),
        ("noSuch gt true", "not defined for boolean"),
        (r#"noSuch co 5"#, "strings only"),
    ];
    for (f, want) in cases {
        error(f, want);
    }
}

#[test]
fn limits() {
    // Length: checked before parsing.
    let long = format!(r#"userName eq "{}""#, "a".repeat(MAX_FILTER_LEN));
    error(&long, "maximum is 8192");
    let at_limit = format!(r#"userName eq "{}""#, "a".repeat(MAX_FILTER_LEN - 14));
    assert_eq!(at_limit.len(), MAX_FILTER_LEN);
    parse(&at_limit).unwrap();

    // Depth: 10,000 nested `not (` is rejected on length; 1,000 by the grammar's budget; both
    // quickly and without recursion.
    for n in [10_000, 1_000, 60, MAX_FILTER_DEPTH] {
        let deep = format!("{}userName pr{}", "not (".repeat(n), ")".repeat(n));
        let started = std::time::Instant::now();
        let err = parse(&deep).unwrap_err();
        assert_eq!(err.scim_type(), Some(ScimType::InvalidFilter));
        assert!(started.elapsed().as_secs() < 2);
        if deep.len() <= MAX_FILTER_LEN {
            assert!(
                err.detail().contains("deeper than the maximum of 16"),
                "{n}: {err}"
            );
        }
    }
    let ok = format!(
        "{}userName pr{}",
        "not (".repeat(MAX_FILTER_DEPTH - 1),
        ")".repeat(MAX_FILTER_DEPTH - 1)
    );
    parse(&ok).unwrap();
    let brackets = format!("{}userName pr{}", "(".repeat(2_000), ")".repeat(2_000));
    error(&brackets, "deeper than the maximum");
    // Alternating operators nest; `a and (b or (c and (…)))` 20 deep is too deep.
    let mut alt = String::from("title pr");
    for i in 0..20 {
        let op = if i % 2 == 0 { "and" } else { "or" };
        alt = format!("userName pr {op} ({alt})");
    }
    error(&alt, "deeper than the maximum");

    // Nodes: a flat chain has depth 2 but MAX_FILTER_NODES + 1 nodes.
    let terms = |n: usize| vec!["id pr"; n].join(" or ");
    parse(&terms(MAX_FILTER_NODES - 1)).unwrap();
    error(
        &terms(MAX_FILTER_NODES),
        "more than the maximum of 512 nodes",
    );
    let ids = (0..100)
        .map(|i| format!(r#"id eq "{i}""#))
        .collect::<Vec<_>>()
        .join(" or ");
    parse(&ids).unwrap();
}
