//! Compiler unit tests: what reaches the SQL text.

use super::*;
use scim_core::filter::{CompareOp, Comparison, Filter};
use scim_core::query::{Projection, Sort};
use scim_core::schema::SchemaRegistry;
use serde_json::json;

fn list(filter: Filter, sort: Option<&str>) -> Vec<ListSql> {
    let reg = SchemaRegistry::builtin();
    let rt = reg.resource_type("User").unwrap();
    let query = ListQuery {
        filter: Some(filter),
        sort: sort.map(|p| Sort {
            path: reg.resolve_str(rt, p).unwrap(),
            order: SortOrder::Descending,
        }),
        start_index: 1,
        count: 10,
        projection: Projection::default(),
        cursor: None,
    };
    [Dialect::Sqlite, Dialect::Postgres]
        .into_iter()
        .map(|d| compile_list(d, "tenant'1", rt, &query))
        .collect()
}

#[test]
fn request_values_and_paths_are_bound_never_inlined() {
    let reg = SchemaRegistry::builtin();
    let rt = reg.resource_type("User").unwrap();
    let evil = "x'); DROP TABLE resources; --";
    let filter = Filter::Or(vec![
        Filter::Compare(Comparison {
            path: reg.resolve_str(rt, "title").unwrap(),
            op: CompareOp::Co,
            value: json!(evil),
        }),
        Filter::Compare(Comparison {
            path: reg.resolve_str(rt, "userName").unwrap(),
            op: CompareOp::Eq,
            value: json!(evil),
        }),
        Filter::Present(reg.resolve(rt, None, "x\"evil'", None).unwrap_or_else(|| {
            let mut p = reg.resolve_str(rt, "title").unwrap();
            p.attr.name = "x\"evil'".into();
            p.declared = false;
            p
        })),
    ]);
    for sql in list(filter, Some("name.givenName")) {
        for text in [&sql.page, &sql.count] {
            assert!(!text.to_lowercase().contains("drop table"), "{text}");
            assert!(!text.contains("evil"), "{text}");
            assert!(!text.contains("tenant'1"), "{text}");
        }
        assert!(
            sql.args
                .iter()
                .any(|a| *a == Arg::Text(evil.to_lowercase()))
        );
        assert!(sql.count_args <= sql.args.len());
    }
}

#[test]
fn placeholders_match_the_arguments() {
    let reg = SchemaRegistry::builtin();
    let rt = reg.resource_type("User").unwrap();
    let filter = Filter::ValuePath {
        path: reg.resolve_str(rt, "addresses").unwrap(),
        filter: Box::new(Filter::Compare(Comparison {
            path: reg.resolve_str(rt, "addresses.locality").unwrap(),
            op: CompareOp::Sw,
            value: json!("Ber"),
        })),
    };
    for sql in list(filter, Some("emails.value")) {
        let highest = (1..=sql.args.len())
            .rev()
            .find(|n| sql.page.contains(&format!("${n}")))
            .unwrap();
        assert_eq!(highest, sql.args.len(), "{}", sql.page);
        assert!(!sql.count.contains(&format!("${}", sql.count_args + 1)));
    }
}

#[test]
fn placeholders_are_renumbered_and_nothing_else_changes() {
    assert_eq!(
        renumber_placeholders("SELECT $1, $2 FROM t WHERE a = $10", 12),
        "SELECT $13, $14 FROM t WHERE a = $22"
    );
    // JSON paths hold `$` without a digit; text around the placeholders (UTF-8) is kept.
    assert_eq!(
        renumber_placeholders("SELECT json_extract(j.value, '$[0]'), 'é' || $3", 2),
        "SELECT json_extract(j.value, '$[0]'), 'é' || $5"
    );
    assert_eq!(renumber_placeholders("SELECT $1", 0), "SELECT $1");
    assert_eq!(renumber_placeholders("COMMIT$", 4), "COMMIT$");
}
