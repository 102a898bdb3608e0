//! The canonical text of a [`Filter`]: canonical attribute names, lowercase
//! operators, URN-qualified extension paths, parentheses only where precedence needs them.
//! Parsing the text again gives the same filter.
//!
//! ```
//! use scim_core::filter::Filter;
//! use scim_core::schema::SchemaRegistry;
//!
//! let registry = SchemaRegistry::builtin();
//! let users = registry.resource_type("User").unwrap();
//! let f = Filter::parse(&registry, users, r#"USERNAME EQ "x" AND (Manager eq "m" OR emails[TYPE eq "work"].value pr)"#).unwrap();
//! let text = f.to_string();
//! assert_eq!(
//!     text,
//!     r#"userName eq "x" and (urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m" or emails[type eq "work" and value pr])"#
//! );
//! assert_eq!(Filter::parse(&registry, users, &text).unwrap(), f);
//! ```

use super::Filter;
use crate::schema::ResolvedPath;
use std::fmt;

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_filter(self, f, false)
    }
}

/// `inner`: inside `attr[…]`, where paths print as the bare sub-attribute name.
fn write_filter(filter: &Filter, f: &mut fmt::Formatter<'_>, inner: bool) -> fmt::Result {
    match filter {
        Filter::And(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(" and ")?;
                }
                if matches!(item, Filter::Or(_)) {
                    f.write_str("(")?;
                    write_filter(item, f, inner)?;
                    f.write_str(")")?;
                } else {
                    write_filter(item, f, inner)?;
                }
            }
            Ok(())
        }
        Filter::Or(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(" or ")?;
                }
                write_filter(item, f, inner)?;
            }
            Ok(())
        }
        Filter::Not(item) => {
            f.write_str("not (")?;
            write_filter(item, f, inner)?;
            f.write_str(")")
        }
        Filter::Present(path) => {
            write_path(path, f, inner)?;
            f.write_str(" pr")
        }
        Filter::Compare(c) => {
            write_path(&c.path, f, inner)?;
            write!(f, " {} {}", c.op, c.value)
        }
        Filter::ValuePath { path, filter } => {
            write_path(path, f, false)?;
            f.write_str("[")?;
            write_filter(filter, f, true)?;
            f.write_str("]")
        }
    }
}

fn write_path(path: &ResolvedPath, f: &mut fmt::Formatter<'_>, inner: bool) -> fmt::Result {
    match (&path.sub, inner) {
        (Some(sub), true) => f.write_str(&sub.name),
        _ => write!(f, "{path}"),
    }
}
