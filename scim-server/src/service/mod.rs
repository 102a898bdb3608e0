//! The protocol logic behind every endpoint: create, get, replace, patch, delete, list and search
//! resources, Bulk, `/Me` and discovery. Each function takes the [`AppState`], the caller's
//! [`RequestCtx`] and plain values, calls `scim-core` to decide and the [`crate::store::Store`] to
//! persist, and returns JSON or a [`scim_core::Error`]. Every write goes through the one
//! pipeline in [`mod@write`]. No HTTP types appear here, so the same
//! functions serve handlers, Bulk operations and embedding applications.

pub mod bulk;
pub mod discovery;
pub mod locks;
pub mod resources;
pub mod write;

use crate::auth::Principal;
use crate::state::AppState;
use scim_core::etag::ETag;
use scim_core::schema::ResourceType;
use scim_core::{Error, Result};
use serde_json::Value;

/// Who is calling and where the SCIM base is, for one request.
///
/// Made only where a [`Principal`] exists (the HTTP layer's `Caller` extractor after
/// authentication, the crate's internal actors), so a service function that takes one is
/// reached only by an authenticated caller; the fields are private for the same reason. Tests
/// build one through `crate::test_support` (feature `test-support`).
#[derive(Debug, Clone)]
pub struct RequestCtx {
    principal: Principal,
    request_id: Option<String>,
    base_url: String,
}

impl RequestCtx {
    /// The context of a request by `principal` (crate-private: see the type's doc).
    pub(crate) fn new(
        principal: Principal,
        request_id: Option<String>,
        base_url: impl Into<String>,
    ) -> Self {
        Self {
            principal,
            request_id,
            base_url: base_url.into(),
        }
    }

    /// The authenticated caller (its tenant keys every data access).
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The request id, recorded with writes.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The SCIM base URL as the client sees it, e.g. `https://host/scim/v2`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The caller's tenant.
    pub fn tenant(&self) -> &str {
        self.principal.tenant()
    }

    /// Refuses writes by read-only credentials (403).
    pub fn require_write(&self) -> Result<()> {
        if self.principal.read_only() {
            Err(Error::forbidden(
                "this credential is read-only and may not modify resources",
            ))
        } else {
            Ok(())
        }
    }
}

/// A resource as returned by a write or a read.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceReply {
    /// The (projected) representation.
    pub body: Value,
    /// The version's ETag.
    pub etag: ETag,
    /// The resource's URL (`meta.location`).
    pub location: String,
}

/// The result of a GET by id.
#[derive(Debug, Clone, PartialEq)]
pub enum GetReply {
    /// The resource.
    Found(ResourceReply),
    /// `If-None-Match` named the current version (304).
    NotModified(ETag),
}

/// The result of a PATCH.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchReply {
    /// 200 with the resource (Users, or Groups when the client asked for attributes).
    Resource(ResourceReply),
    /// 204 (Groups: Entra advises against returning member lists).
    NoContent(ETag),
}

/// The resource type served at an endpoint name such as `User`.
pub(crate) fn resource_type<'a>(state: &'a AppState, name: &str) -> Result<&'a ResourceType> {
    state
        .registry
        .resource_type(name)
        .ok_or_else(|| Error::not_found_detail(format!("no resource type {name}")))
}

/// The URL of a resource.
pub(crate) fn location(base_url: &str, rt: &ResourceType, id: &str) -> String {
    format!(
        "{}/{}/{}",
        base_url.trim_end_matches('/'),
        rt.endpoint.trim_start_matches('/'),
        id
    )
}
