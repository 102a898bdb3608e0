//! Rewrites, before the grammar sees the text:
//!
//! - Entra's `attr[filter].sub op value` (outside the RFC 7644 §3.4.2.2 ABNF) into the
//!   equivalent RFC form `attr[(filter) and sub op value]`;
//! - `not(` into `not (`: the ABNF (`*1"not" "(" FILTER ")"`) needs no space there, but the
//!   `scim_v2` lexer only takes `not` followed by whitespace.
//!
//! The scanner knows just enough of the lexical grammar to do this safely: JSON string literals
//! (so a `]` or `.` inside `"…"` is never taken for syntax), brackets, attribute names, the ten
//! operators and the end of a comparison value. Anything that does not fit the pattern exactly is
//! left alone for the real parser to accept or reject.

/// The rewritten text and a map from its byte offsets back to the caller's text, so syntax errors
/// name positions the client can find in what it sent.
#[derive(Debug)]
pub(super) struct Rewritten {
    /// The filter text to parse.
    pub text: String,
    /// `(offset in text, offset in the original)` at the start of each copied or inserted piece,
    /// in increasing order. Empty when nothing was rewritten.
    map: Vec<(usize, usize)>,
    /// The pass that produced this pass's input, if any.
    before: Option<Box<Rewritten>>,
}

impl Rewritten {
    /// The offset in the original text corresponding to `offset` in the rewritten text.
    pub fn original_offset(&self, offset: usize) -> usize {
        let offset = match self.map.iter().rev().find(|(out, _)| *out <= offset) {
            Some((out, orig)) => orig + (offset - out),
            None => offset,
        };
        match &self.before {
            Some(before) => before.original_offset(offset),
            None => offset,
        }
    }
}

/// Both rewrites, with offsets mapped back through both.
pub(super) fn rewrite(text: &str) -> Rewritten {
    let first = not_paren(text);
    let mut second = entra_value_paths(&first.text);
    if !first.map.is_empty() {
        second.before = Some(Box::new(first));
    }
    second
}

/// Inserts a space in every `not(` that starts a word outside string literals.
fn not_paren(text: &str) -> Rewritten {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut map = Vec::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            i = skip_string(bytes, i);
            continue;
        }
        let word_start =
            i == 0 || matches!(bytes[i - 1], b'(' | b'[') || bytes[i - 1].is_ascii_whitespace();
        if word_start
            && bytes
                .get(i..i + 3)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"not"))
            && bytes.get(i + 3) == Some(&b'(')
        {
            map.push((out.len(), copied));
            out.push_str(&text[copied..i + 3]);
            map.push((out.len(), i + 3));
            out.push(' ');
            map.push((out.len(), i + 3));
            copied = i + 3;
            i += 4;
            continue;
        }
        i += 1;
    }
    if copied == 0 {
        return Rewritten {
            text: text.to_string(),
            map: Vec::new(),
            before: None,
        };
    }
    out.push_str(&text[copied..]);
    Rewritten {
        text: out,
        map,
        before: None,
    }
}

const OPERATORS: [&str; 10] = ["eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le", "pr"];

/// Rewrites every `attr[filter].sub op value` and `attr[filter].sub pr` in `text`.
pub(super) fn entra_value_paths(text: &str) -> Rewritten {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let mut map = Vec::new();
    // Start of the not-yet-copied part of `text`.
    let mut copied = 0;
    // Offset (in `text`) just after the last unmatched `[`.
    let mut open: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = skip_string(bytes, i),
            b'[' => {
                open = Some(i + 1);
                i += 1;
            }
            b']' => {
                let Some(start) = open.take() else {
                    i += 1;
                    continue;
                };
                match trailing_comparison(bytes, i + 1) {
                    Some((sub_start, end)) => {
                        let inner = &text[start..i];
                        let wrap = has_or(inner.as_bytes());
                        // `…attr[`
                        map.push((out.len(), copied));
                        out.push_str(&text[copied..start]);
                        if wrap {
                            map.push((out.len(), start));
                            out.push('(');
                        }
                        // the original value filter
                        map.push((out.len(), start));
                        out.push_str(inner);
                        map.push((out.len(), i));
                        if wrap {
                            out.push(')');
                        }
                        out.push_str(" and ");
                        // `sub op value`
                        map.push((out.len(), sub_start));
                        out.push_str(&text[sub_start..end]);
                        map.push((out.len(), end));
                        out.push(']');
                        copied = end;
                        i = end;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    if copied == 0 {
        return Rewritten {
            text: text.to_string(),
            map: Vec::new(),
            before: None,
        };
    }
    map.push((out.len(), copied));
    out.push_str(&text[copied..]);
    Rewritten {
        text: out,
        map,
        before: None,
    }
}

/// The offset just past the string literal starting at `start` (a `"`), honouring `\` escapes.
/// An unterminated literal runs to the end.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// After a `]` at `at - 1`: if `.sub op value` or `.sub pr` follows, the offset where `sub`
/// starts and the offset just past the value (or `pr`).
fn trailing_comparison(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    if bytes.get(at) != Some(&b'.') {
        return None;
    }
    let sub_start = at + 1;
    let mut i = sub_start;
    if !bytes.get(i)?.is_ascii_alphabetic() {
        return None;
    }
    while bytes
        .get(i)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
    {
        i += 1;
    }
    let after_name = i;
    i = skip_space(bytes, i);
    if i == after_name || i + 2 > bytes.len() {
        return None;
    }
    let op = std::str::from_utf8(&bytes[i..i + 2]).ok()?;
    let op = OPERATORS
        .iter()
        .find(|candidate| candidate.eq_ignore_ascii_case(op))?;
    i += 2;
    if *op == "pr" {
        // `pr` must end the term.
        return match bytes.get(i) {
            None | Some(b')' | b']') => Some((sub_start, i)),
            Some(b) if b.is_ascii_whitespace() => Some((sub_start, i)),
            _ => None,
        };
    }
    let after_op = i;
    i = skip_space(bytes, i);
    if i == after_op || i >= bytes.len() {
        return None;
    }
    let end = if bytes[i] == b'"' {
        skip_string(bytes, i)
    } else {
        let mut j = i;
        while j < bytes.len() && !bytes[j].is_ascii_whitespace() && !b"()[]".contains(&bytes[j]) {
            j += 1;
        }
        j
    };
    (end > i).then_some((sub_start, end))
}

fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// Whether a value filter contains an `or` operator outside string literals (in which case it
/// needs parentheses before `and` is appended, since `and` binds tighter).
fn has_or(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = skip_string(bytes, i),
            b if b.is_ascii_whitespace()
                && bytes
                    .get(i + 1..i + 3)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"or"))
                && bytes.get(i + 3).is_some_and(u8::is_ascii_whitespace) =>
            {
                return true;
            }
            _ => i += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_sub_attribute_after_value_filter() {
        let cases = [
            (
                r#"emails[type eq "work"].value eq "a@b""#,
                r#"emails[type eq "work" and value eq "a@b"]"#,
            ),
            (
                r#"emails[type eq "work"].value pr"#,
                r#"emails[type eq "work" and value pr]"#,
            ),
            (
                r#"emails[type eq "work"].value PR and active eq true"#,
                r#"emails[type eq "work" and value PR] and active eq true"#,
            ),
            (
                r#"emails[type eq "work" or type eq "home"].value co "@x""#,
                r#"emails[(type eq "work" or type eq "home") and value co "@x"]"#,
            ),
            (
                r#"userName eq "a" and phoneNumbers[type eq "mobile"].value eq "555""#,
                r#"userName eq "a" and phoneNumbers[type eq "mobile" and value eq "555"]"#,
            ),
            (
                r#"not (emails[type eq "work"].value eq "a")"#,
                r#"not (emails[type eq "work" and value eq "a"])"#,
            ),
            (
                r#"x[a eq 1].b gt 2 or y[c eq "d"].e eq null"#,
                r#"x[a eq 1 and b gt 2] or y[c eq "d" and e eq null]"#,
            ),
            // Brackets, dots and `or` inside strings are not syntax.
            (
                r#"emails[type eq "w]. or x"].value eq "a]b.c eq 1""#,
                r#"emails[type eq "w]. or x" and value eq "a]b.c eq 1"]"#,
            ),
            (
                r#"emails[type eq "a\"]"].value eq "b""#,
                r#"emails[type eq "a\"]" and value eq "b"]"#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(entra_value_paths(input).text, want, "{input}");
        }
    }

    #[test]
    fn leaves_everything_else_alone() {
        for input in [
            r#"emails[type eq "work"]"#,
            r#"emails[type eq "work"].value"#,
            r#"emails[type eq "work"].value eq"#,
            r#"emails[type eq "work"].value xx "a""#,
            r#"emails[type eq "work"].1 eq "a""#,
            r#"userName eq "x[y].z eq 1""#,
            r#"emails[type eq "work"]. value eq "a""#,
            "]].a eq 1",
            "",
            r#"""#,
            r#"a eq "\"#,
        ] {
            let out = entra_value_paths(input);
            assert_eq!(out.text, input);
            assert_eq!(out.original_offset(3), 3);
        }
    }

    #[test]
    fn spaces_not_before_a_parenthesis() {
        let cases = [
            ("not(a pr)", "not (a pr)"),
            ("NOT(a pr) and not(b pr)", "NOT (a pr) and not (b pr)"),
            ("(not(a pr))", "(not (a pr))"),
            (r#"x[not(a eq "not(")]"#, r#"x[not (a eq "not(")]"#),
            ("knot(a pr)", "knot(a pr)"),
            ("not (a pr)", "not (a pr)"),
        ];
        for (input, want) in cases {
            assert_eq!(rewrite(input).text, want, "{input}");
        }
        let input = r#"not(emails[type eq "w"].value pr) & x"#;
        let out = rewrite(input);
        assert_eq!(out.text, r#"not (emails[type eq "w" and value pr]) & x"#);
        let at = out.text.find('&').unwrap();
        assert_eq!(out.original_offset(at), input.find('&').unwrap());
        let at = out.text.find("value").unwrap();
        assert_eq!(out.original_offset(at), input.find("value").unwrap());
    }

    #[test]
    fn maps_offsets_back_to_the_original() {
        let input = r#"emails[type eq "work" or type eq "x"].value eq "a" and bad"#;
        let out = entra_value_paths(input);
        let at = out.text.find("bad").unwrap();
        assert_eq!(out.original_offset(at), input.find("bad").unwrap());
        let at = out.text.find("value").unwrap();
        assert_eq!(out.original_offset(at), input.find("value").unwrap());
        assert_eq!(out.original_offset(2), 2);
    }
}
