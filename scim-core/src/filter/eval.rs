//! Evaluation of a resolved [`Filter`](super::Filter) against a resource's JSON representation.

use super::Filter;
use serde_json::{Map, Value};

impl Filter {
    /// Whether the resource (its full representation, as [`crate::resource::Resource::to_json`]
    /// gives it, with `id` and `meta`) matches.
    pub fn matches(&self, resource: &Map<String, Value>) -> bool {
        let _ = resource;
        todo!("filter helper: evaluation")
    }

    /// Whether one element of a multi-valued attribute matches a value-path filter (the filter's
    /// paths name sub-attributes). Used by PATCH for `emails[type eq "work"]` targets.
    pub fn matches_element(&self, element: &Value) -> bool {
        let _ = element;
        todo!("filter helper: element evaluation")
    }
}
