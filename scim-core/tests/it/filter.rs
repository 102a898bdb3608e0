//! Property tests for the filter engine: printing and parsing round trips.

use proptest::prelude::*;
use scim_core::filter::Filter;
use scim_core::schema::SchemaRegistry;
use scim_v2::filter::{
    AttrExp, AttrPath, CompValue, CompareOp, Filter as Ast, ValFilter, ValuePath,
};
use serde_json::json;

use scim_core::schema::ENTERPRISE_USER_URN as ENTERPRISE;
use scim_core::schema::USER_URN as CORE;

fn path(s: &str) -> AttrPath {
    let (uri, rest) = match s.rfind(':') {
        Some(i) => (Some(s[..i].to_string()), &s[i + 1..]),
        None => (None, s),
    };
    let (name, sub) = match rest.split_once('.') {
        Some((n, sub)) => (n.to_string(), Some(sub.to_string())),
        None => (rest.to_string(), None),
    };
    AttrPath {
        uri,
        name,
        sub_attr: sub,
    }
}

fn attr_path() -> impl Strategy<Value = AttrPath> + Clone {
    prop::sample::select(vec![
        "userName".to_string(),
        "USERNAME".into(),
        "name.givenName".into(),
        "emails".into(),
        "emails.value".into(),
        "emails.type".into(),
        "externalId".into(),
        "id".into(),
        "active".into(),
        "meta.lastModified".into(),
        "department".into(),
        "manager".into(),
        format!("{ENTERPRISE}:manager"),
        format!("{ENTERPRISE}:employeeNumber"),
        format!("{CORE}:displayName"),
        "customThing".into(),
        "urn:example:x:1.0:User:custom".into(),
    ])
    .prop_map(|s| path(&s))
}

fn sub_path() -> impl Strategy<Value = AttrPath> + Clone {
    prop::sample::select(vec!["type", "value", "primary", "display", "Type"])
        .prop_map(AttrPath::with_name)
}

fn op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Lt,
        CompareOp::Ge,
        CompareOp::Le,
    ])
}

fn value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        "[a-zA-Z0-9@. ]{0,8}".prop_map(CompValue::Str),
        "\\PC{0,6}".prop_map(CompValue::Str),
        // Brackets, quotes and operator words inside strings are not syntax.
        prop::sample::select(vec!["a].b eq \"c", "x[y]", " or ", "\\\"", "not ("])
            .prop_map(|s| CompValue::Str(s.to_string())),
        prop::sample::select(vec!["2011-05-13T04:42:34Z", "2024-01-01T00:00:00+02:00"])
            .prop_map(|s| CompValue::Str(s.to_string())),
        any::<i64>().prop_map(|n| CompValue::Number(n.into())),
        Just(CompValue::True),
        Just(CompValue::False),
        Just(CompValue::Null),
    ]
}

fn attr_exp(paths: impl Strategy<Value = AttrPath> + Clone) -> impl Strategy<Value = AttrExp> {
    prop_oneof![
        1 => paths.clone().prop_map(AttrExp::Present),
        4 => (paths, op(), value()).prop_map(|(p, o, v)| AttrExp::Comparison(p, o, v)),
    ]
}

fn val_filter() -> impl Strategy<Value = ValFilter> {
    let leaf = attr_exp(sub_path()).prop_map(ValFilter::Attr);
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|f| ValFilter::Not(Box::new(f))),
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|items| ValFilter::all(items).unwrap()),
            prop::collection::vec(inner, 2..4).prop_map(|items| ValFilter::any(items).unwrap()),
        ]
    })
}

/// Random filters in the shape the parser produces (same-operator chains flattened).
fn filter() -> impl Strategy<Value = Ast> {
    let value_path = (
        prop::sample::select(vec![
            "emails",
            "phoneNumbers",
            "name",
            "manager",
            "unknownList",
        ]),
        val_filter(),
    )
        .prop_map(|(attr, filter)| {
            Ast::ValuePath(ValuePath {
                attr: AttrPath::with_name(attr),
                filter: Box::new(filter),
            })
        });
    let leaf = prop_oneof![4 => attr_exp(attr_path()).prop_map(Ast::Attr), 1 => value_path];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|f| Ast::Not(Box::new(f))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|items| Ast::all(items).unwrap()),
            prop::collection::vec(inner, 2..4).prop_map(|items| Ast::any(items).unwrap()),
        ]
    })
}

fn user() -> serde_json::Map<String, serde_json::Value> {
    json!({
        "id": "1",
        "externalId": "e1",
        "userName": "bjensen",
        "name": {"givenName": "Barbara"},
        "active": true,
        "emails": [{"type": "work", "value": "b@x.com", "primary": true}, {"type": "home", "value": ""}],
        "customThing": "Hello",
        ENTERPRISE: {"department": "Eng", "manager": {"value": "m1"}},
        "meta": {"lastModified": "2011-05-13T04:42:34Z"}
    })
    .as_object()
    .unwrap()
    .clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `parse(print(f))` resolves to what resolving `f` directly gives, errors included.
    #[test]
    fn printing_then_parsing_resolves_the_same(ast in filter()) {
        let registry = SchemaRegistry::builtin();
        let users = registry.resource_type("User").unwrap();
        let text = ast.to_string();
        let direct = Filter::resolve(&registry, users, &ast);
        let parsed = Filter::parse(&registry, users, &text);
        prop_assert_eq!(&parsed, &direct, "{}", text);
    }

    /// Our canonical text parses back to the same filter, and `not (f)` negates it.
    #[test]
    fn canonical_text_round_trips(ast in filter()) {
        let registry = SchemaRegistry::builtin();
        let users = registry.resource_type("User").unwrap();
        let Ok(f) = Filter::resolve(&registry, users, &ast) else { return Ok(()) };
        let text = f.to_string();
        let again = Filter::parse(&registry, users, &text);
        prop_assert_eq!(again.as_ref(), Ok(&f), "{}", text);
        let user = user();
        let negated = Filter::parse(&registry, users, &format!("not ({text})")).unwrap();
        prop_assert_eq!(negated.matches(&user), !f.matches(&user), "{}", text);
    }

    /// Arbitrary text never panics: it parses or it is `invalidFilter`.
    #[test]
    fn arbitrary_text_is_a_filter_or_invalid_filter(text in "\\PC{0,64}") {
        let registry = SchemaRegistry::builtin();
        let users = registry.resource_type("User").unwrap();
        if let Err(e) = Filter::parse(&registry, users, &text) {
            prop_assert_eq!(e.scim_type(), Some(scim_core::ScimType::InvalidFilter));
        }
    }
}
