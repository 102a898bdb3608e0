//! The one filter shape identity providers send on every lookup, read without the grammar.
//!
//! Entra ID and Okta look a resource up before each create with `userName eq "…"`,
//! `externalId eq "…"` or `displayName eq "…"`: one attribute, one operator, one string.
//! The `scim_v2` grammar's lexer (lalrpop-util 0.23) builds a fresh lazy DFA cache for every
//! text it lexes, which made parsing such a filter 7 % of a lookup's whole cost on the server
//! (`docs/benchmarks.md`, 2026-12-03). This reader accepts a strict subset of RFC 7644
//! §3.4.2.2 — `ATTRNAME ["." ATTRNAME] SP compareOp SP string`, single spaces, a string
//! without escapes or control characters — and produces exactly the AST the grammar produces
//! for it; anything else (`None`) goes to the grammar, errors included. The property test
//! below holds the two to the same answer.

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter};

/// The AST of `text` if it is a single comparison of the simple shape, else `None`.
pub(super) fn comparison(text: &str) -> Option<Filter> {
    // The grammar trims the text first (`scim_v2::filter::Filter::from_str`).
    let text = text.trim();
    let (path, rest) = text.split_once(' ')?;
    let (op, value) = rest.split_once(' ')?;
    let op = operator(op)?;
    let value = plain_string(value)?;
    let (name, sub_attr) = match path.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (path, None),
    };
    if !attr_name(name) || sub_attr.is_some_and(|sub| !attr_name(sub)) {
        return None;
    }
    // A name the lexer takes for a keyword: `true`, `false` and `null` are values, and `not`
    // followed by a space is the negation.
    if sub_attr.is_none()
        && (matches!(name, "true" | "false" | "null") || name.eq_ignore_ascii_case("not"))
    {
        return None;
    }
    let path = AttrPath {
        uri: None,
        name: name.to_string(),
        sub_attr: sub_attr.map(str::to_string),
    };
    Some(Filter::Attr(AttrExp::Comparison(
        path,
        op,
        CompValue::Str(value.to_string()),
    )))
}

/// RFC 7644 §3.4.2.2 `compareOp` other than `pr`, in any case.
fn operator(op: &str) -> Option<CompareOp> {
    let [a, b] = op.as_bytes() else { return None };
    Some(match [a.to_ascii_lowercase(), b.to_ascii_lowercase()] {
        [b'e', b'q'] => CompareOp::Eq,
        [b'n', b'e'] => CompareOp::Ne,
        [b'c', b'o'] => CompareOp::Co,
        [b's', b'w'] => CompareOp::Sw,
        [b'e', b'w'] => CompareOp::Ew,
        [b'g', b't'] => CompareOp::Gt,
        [b'l', b't'] => CompareOp::Lt,
        [b'g', b'e'] => CompareOp::Ge,
        [b'l', b'e'] => CompareOp::Le,
        _ => return None,
    })
}

/// `ATTRNAME = ALPHA *(nameChar)`, `nameChar = "-" / "_" / DIGIT / ALPHA`.
fn attr_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The contents of a JSON string literal that needs no unescaping: quoted, with no `"`, `\`
/// or control character inside (each of those takes the grammar's way).
fn plain_string(literal: &str) -> Option<&str> {
    let inner = literal.strip_prefix('"')?.strip_suffix('"')?;
    if inner
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        return None;
    }
    Some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn grammar(text: &str) -> Option<Filter> {
        text.parse::<Filter>().ok()
    }

    #[test]
    fn the_lookups_identity_providers_send_are_read_here() {
        for text in [
            r#"userName eq "bjensen@example.com""#,
            r#"externalId eq "5f1d2c3e-0000-4000-8000-000000000001""#,
            r#"displayName eq "Sales Team (EMEA)""#,
            r#"name.familyName EQ "O'Brien""#,
            r#"  emails.value sw "ann"  "#,
            r#"title co "ünïcödé [x] and (y) or z""#,
        ] {
            let fast = comparison(text).unwrap_or_else(|| panic!("{text} not read here"));
            assert_eq!(Some(fast), grammar(text), "{text}");
        }
    }

    #[test]
    fn anything_else_goes_to_the_grammar() {
        for text in [
            r#"userName eq "a\"b""#,
            r#"userName eq "a\u0041""#,
            r#"userName  eq "x""#,
            r#"userName eq  "x""#,
            r#"userName pr"#,
            r#"userName eq 42"#,
            r#"userName eq true"#,
            r#"userName eq "x" and active eq true"#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#,
            r#"emails[type eq "work"]"#,
            r#"name.familyName.x eq "x""#,
            r#"not eq "x""#,
            r#"true eq "x""#,
            r#"1userName eq "x""#,
            "userName eq \"tab\there\"",
            r#"userName foo "x""#,
            r#"userName eq "x"#,
        ] {
            assert_eq!(comparison(text), None, "{text}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whenever the reader answers, the grammar gives the same AST.
        #[test]
        fn whatever_is_read_here_the_grammar_reads_the_same(
            text in r#"[ \t]?[a-zA-Z1_ :-]{0,3}(not|NOT|true|null|userName|name)([.][a-zA-Z1_-]{0,4}){0,2} (eq|Eq|pr|co|gt|xx|and) ("[a-z \\"\t\u{e9}\[\]()]{0,6}"?|[0-9]{1,3}|true)( |\t)?"#
        ) {
            if let Some(fast) = comparison(&text) {
                prop_assert_eq!(Some(fast), grammar(&text), "{}", text);
            }
        }

        /// Every simple comparison is read here, as the grammar reads it.
        #[test]
        fn every_simple_comparison_is_read_here(
            name in "[a-zA-Z][a-zA-Z0-9_-]{0,8}",
            sub in proptest::option::of("[a-zA-Z][a-zA-Z0-9_-]{0,8}"),
            op in "(eq|ne|co|sw|ew|gt|lt|ge|le|EQ|Sw)",
            value in r#"[^"\\\p{Cc}]{0,12}"#,
        ) {
            prop_assume!(!matches!(name.as_str(), "true" | "false" | "null")
                && !name.eq_ignore_ascii_case("not"));
            let text = match &sub {
                Some(sub) => format!(r#"{name}.{sub} {op} "{value}""#),
                None => format!(r#"{name} {op} "{value}""#),
            };
            let fast = comparison(&text);
            prop_assert!(fast.is_some(), "{}", text);
            prop_assert_eq!(fast, grammar(&text), "{}", text);
        }
    }
}
