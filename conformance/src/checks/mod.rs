//! The registry of checks. Each check has a stable id whose first segment is its
//! area, a title, and a reference to the RFC section or client behaviour it comes from.

use crate::config::Profile;
use crate::ctx::{Ctx, Res};

mod attributes;
mod bulk;
mod common;
mod discovery;
mod entra;
mod entra_groups;
mod errors;
mod etag;
mod filter;
mod fixtures;
mod groups;
mod okta;
mod paging;
mod patch;
mod sort;
mod users;

/// The area a check belongs to (the first segment of its id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Area {
    /// `/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`.
    Discovery,
    /// User CRUD.
    Users,
    /// Group CRUD.
    Groups,
    /// Filtering.
    Filter,
    /// Sorting.
    Sort,
    /// Pagination.
    Paging,
    /// `attributes` / `excludedAttributes`.
    Attributes,
    /// PATCH.
    Patch,
    /// ETags and conditional requests.
    Etag,
    /// Bulk.
    Bulk,
    /// Error responses.
    Errors,
    /// Entra ID profile.
    Entra,
    /// Okta profile.
    Okta,
}

impl Area {
    /// All areas in run order.
    pub const ALL: [Area; 13] = [
        Area::Discovery,
        Area::Users,
        Area::Groups,
        Area::Filter,
        Area::Sort,
        Area::Paging,
        Area::Attributes,
        Area::Patch,
        Area::Etag,
        Area::Bulk,
        Area::Errors,
        Area::Entra,
        Area::Okta,
    ];

    /// Lowercase name, also the id prefix.
    pub fn name(self) -> &'static str {
        match self {
            Area::Discovery => "discovery",
            Area::Users => "users",
            Area::Groups => "groups",
            Area::Filter => "filter",
            Area::Sort => "sort",
            Area::Paging => "paging",
            Area::Attributes => "attributes",
            Area::Patch => "patch",
            Area::Etag => "etag",
            Area::Bulk => "bulk",
            Area::Errors => "errors",
            Area::Entra => "entra",
            Area::Okta => "okta",
        }
    }

    /// The area of a check id, from its first segment.
    pub fn of_id(id: &str) -> Option<Area> {
        let first = id.split('.').next()?;
        Self::ALL.into_iter().find(|a| a.name() == first)
    }

    /// The profile checks of this area belong to.
    pub fn profile(self) -> Profile {
        match self {
            Area::Entra => Profile::Entra,
            Area::Okta => Profile::Okta,
            _ => Profile::Rfc,
        }
    }
}

/// An optional feature declared in `/ServiceProviderConfig` (RFC 7643 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// `patch.supported`.
    Patch,
    /// `bulk.supported`.
    Bulk,
    /// `filter.supported`.
    Filter,
    /// `sort.supported`.
    Sort,
    /// `etag.supported`.
    Etag,
    /// `changePassword.supported`.
    ChangePassword,
}

impl Feature {
    /// The ServiceProviderConfig attribute name.
    pub fn key(self) -> &'static str {
        match self {
            Feature::Patch => "patch",
            Feature::Bulk => "bulk",
            Feature::Filter => "filter",
            Feature::Sort => "sort",
            Feature::Etag => "etag",
            Feature::ChangePassword => "changePassword",
        }
    }
}

/// The body of a check.
pub type CheckFn = Box<dyn Fn(&mut Ctx) -> Res + Send + Sync>;

/// One conformance check.
pub struct Check {
    /// Stable id, `<area>.<subject>.<case>`.
    pub id: &'static str,
    /// Area (first id segment).
    pub area: Area,
    /// One-line title.
    pub title: &'static str,
    /// RFC section or client behaviour the check comes from.
    pub reference: &'static str,
    /// Profile the check belongs to.
    pub profile: Profile,
    /// Features the check needs; when the server declares one unsupported, RFC checks are skipped.
    pub requires: Vec<Feature>,
    /// The check itself.
    pub run: CheckFn,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("id", &self.id)
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

impl Check {
    /// A check; its area and profile follow from the id's first segment.
    pub fn new(
        id: &'static str,
        title: &'static str,
        reference: &'static str,
        run: impl Fn(&mut Ctx) -> Res + Send + Sync + 'static,
    ) -> Self {
        let area = Area::of_id(id).unwrap_or_else(|| panic!("check id {id} has no known area"));
        Check {
            id,
            area,
            title,
            reference,
            profile: area.profile(),
            requires: Vec::new(),
            run: Box::new(run),
        }
    }

    /// Declares a feature the check needs.
    pub fn needs(mut self, f: Feature) -> Self {
        self.requires.push(f);
        self
    }
}

/// Shorthand for [`Check::new`].
pub(crate) fn c(
    id: &'static str,
    title: &'static str,
    reference: &'static str,
    run: impl Fn(&mut Ctx) -> Res + Send + Sync + 'static,
) -> Check {
    Check::new(id, title, reference, run)
}

/// Every check, in run order.
pub fn registry() -> Vec<Check> {
    let mut all = Vec::new();
    all.extend(discovery::checks());
    all.extend(users::checks());
    all.extend(groups::checks());
    all.extend(filter::checks());
    all.extend(sort::checks());
    all.extend(paging::checks());
    all.extend(attributes::checks());
    all.extend(patch::checks());
    all.extend(etag::checks());
    all.extend(bulk::checks());
    all.extend(errors::checks());
    all.extend(entra::checks());
    all.extend(entra_groups::checks());
    all.extend(okta::checks());
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let reg = registry();
        let mut seen = HashSet::new();
        for c in &reg {
            assert!(seen.insert(c.id), "duplicate id {}", c.id);
            assert!(
                c.id.chars().all(|ch| ch.is_ascii_lowercase()
                    || ch.is_ascii_digit()
                    || ch == '.'
                    || ch == '-'),
                "id {} must be lowercase ascii, digits, '.', '-'",
                c.id
            );
            assert!(
                c.id.split('.').count() >= 2,
                "id {} needs an area and a subject",
                c.id
            );
            assert_eq!(Area::of_id(c.id), Some(c.area));
        }
    }

    #[test]
    fn at_least_150_checks() {
        assert!(registry().len() >= 150, "only {} checks", registry().len());
    }

    #[test]
    fn every_check_has_a_title_and_a_reference() {
        for c in registry() {
            assert!(!c.title.trim().is_empty(), "{} has no title", c.id);
            let r = c.reference;
            assert!(
                r.contains("RFC ") || r.contains("Entra") || r.contains("Okta"),
                "{} reference {r:?} names no RFC or client",
                c.id
            );
        }
    }

    #[test]
    fn every_area_has_checks() {
        let reg = registry();
        for a in Area::ALL {
            assert!(
                reg.iter().any(|c| c.area == a),
                "area {} has no check",
                a.name()
            );
        }
    }
}
