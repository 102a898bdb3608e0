//! The one write pipeline: every change to a resource (create, replace, PATCH, delete, each Bulk
//! operation, and every later writer such as HR intake or console actions) goes through
//! [`write()`], so a rule is decided once.
//!
//! Per request: take the per-resource lock of this process, then per attempt
//!
//! 1. **load** the stored resource, once ([`Resources::get`]); check `If-Match`;
//! 2. **decide** in `scim-core`: validate a create, merge a replace
//!    ([`scim_core::validate::replace`]), apply a PATCH ([`scim_core::patch::apply`]); secrets
//!    are dropped by the schema's one rule ([`SchemaRegistry::strip_secrets`]);
//! 3. **member rules** (Groups): every member change becomes one [`MembershipDelta`], whose
//!    unknown ids are dropped and logged in one place (`Pipeline::keep_known`);
//! 4. **validate** the result; a PATCH that changes nothing stops here (no version bump, no
//!    record);
//! 5. **record** the [`Change`] (its changed paths and delta come from the decision, not
//!    recomputed);
//! 6. **compare-and-swap** on the version loaded ([`Resources::update`] / `delete`), which
//!    commits the write and its change record together. A lost race without `If-Match` is
//!    retried from step 1 after a jittered backoff that waits on the injected [`Clock`]
//!    ([`backoff_delay`]); with `If-Match` it is 412.
//!
//! Member `PATCH`es of one group that queue behind each other in this process are decided one
//! after another and stored as one write, each with its own version and change record
//! (`service/write/member_batch.rs`).
//!
//! Writing needs a [`Writer`], the capability [`RequestCtx::writer`] returns after checking the
//! credential may write; nothing else can make one, and the store's write methods take the
//! [`WriteContext`] only a `Writer` makes.
//!
//! A new writer builds a typed [`WriteRequest`]. For example an HR intake that upserts a User by
//! `externalId`:
//!
//! ```no_run
//! use scim_server::service::RequestCtx;
//! use scim_server::service::write::{self, WriteRequest};
//! use scim_server::state::AppState;
//! use serde_json::json;
//!
//! async fn hire(state: &AppState, ctx: &RequestCtx, employee_no: &str) -> scim_core::Result<String> {
//!     let writer = ctx.writer()?; // 403 for a read-only credential
//!     let users = state.registry.resource_type("User").expect("builtin");
//!     let body = json!({"userName": format!("{employee_no}@example.com"), "externalId": employee_no});
//!     let request = match write::find_by_external_id(state, &writer, users, employee_no).await? {
//!         Some(id) => WriteRequest::Replace { id, body, if_match: None },
//!         None => WriteRequest::Create { body },
//!     };
//!     let written = write::write(state, &writer, users, request).await?;
//!     Ok(written.id)
//! }
//! ```

mod member_batch;

pub(crate) use member_batch::MemberPatchQueues;

use super::RequestCtx;
use crate::clock::Clock;
use crate::state::AppState;
use crate::store::{Load, Resources, StoreError, WriteContext};
use scim_core::change::Change;
use scim_core::etag::check_if_match;
use scim_core::patch::{self, Members, MembershipDelta, PatchRequest};
use scim_core::resource::{Attributes, Meta, Resource};
use scim_core::schema::{GROUP_RESOURCE, ResourceType, SchemaRegistry, USER_RESOURCE};
use scim_core::{Error, Result, normalize, validate};
use serde_json::Value;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::time::Duration;
use time::OffsetDateTime;

/// How many attempts a write that keeps losing compare-and-swap races (without `If-Match`) gets.
/// Within one process writes to one resource queue on a lock, so races are lost only to other
/// replicas; with three replicas under load, 16 attempts over about 0.4 s still ran out now and
/// then (`scripts/bench.sh`, W5 at 3 replicas: 1 request in 500 answered 412). 64 attempts with
/// the delay's cap growing to 256 ms wait up to about 12 s, inside the request timeout.
pub const MAX_WRITE_ATTEMPTS: usize = 64;

/// The capability to write resources as one authenticated caller. Only
/// [`RequestCtx::writer`] makes one, after checking the credential may write (lldap's habit: a
/// write cannot be reached without the value authorisation returns).
#[derive(Debug, Clone)]
pub struct Writer {
    tenant: String,
    principal: String,
    request_id: Option<String>,
}

impl Writer {
    /// The tenant written to.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The capability for a writer inside this server that authorised its caller itself: the
    /// console after `console::roles::authorize` (principal `console:<subject>`), governance
    /// after its reviewer check (`governance:<subject>`), a JIT approval (`jit:<approver>`), the
    /// HR intake worker acting for the principal that submitted the job. The principal is what
    /// the change log records, so it names the person or credential, never a secret.
    ///
    /// Crate-private: a library user or another crate gets a `Writer` only through
    /// [`RequestCtx::writer`], after authentication.
    pub(crate) fn acting_for(
        tenant: impl Into<String>,
        principal: impl Into<String>,
        request_id: Option<String>,
    ) -> Self {
        Self {
            tenant: tenant.into(),
            principal: principal.into(),
            request_id,
        }
    }

    /// The recorded principal.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// The store's record of this writer at `now` (what the change log records).
    pub fn context(&self, now: OffsetDateTime) -> WriteContext {
        WriteContext {
            tenant: self.tenant.clone(),
            principal: self.principal.clone(),
            request_id: self.request_id.clone(),
            now,
        }
    }
}

impl RequestCtx {
    /// The write capability for this request: 403 for a read-only credential.
    pub fn writer(&self) -> Result<Writer> {
        self.require_write()?;
        Ok(Writer::acting_for(
            self.principal.tenant().to_string(),
            self.principal.id().to_string(),
            self.request_id.clone(),
        ))
    }
}

/// Records `event` (no resource changed) in the writer's tenant chain, in a transaction of its
/// own, at the server's clock; returns its sequence number. To commit it with rows of the
/// caller's, use [`crate::store::change_log::append_event_in`] with
/// [`Writer::context`] inside that transaction.
pub async fn record_event(
    state: &AppState,
    writer: &Writer,
    event: &scim_core::change_log::AuditEvent,
) -> Result<u64> {
    let ctx = writer.context(state.clock.now());
    Ok(state.store.append_event(&ctx, event).await?)
}

/// One typed write.
#[derive(Debug, Clone)]
pub enum WriteRequest {
    /// POST (RFC 7644 §3.3): a new resource from a request body.
    Create {
        /// The body as sent (normalised and validated by the pipeline).
        body: Value,
    },
    /// PUT (RFC 7644 §3.5.1).
    Replace {
        /// The resource id.
        id: String,
        /// The body as sent.
        body: Value,
        /// The `If-Match` header, if any.
        if_match: Option<String>,
    },
    /// PATCH (RFC 7644 §3.5.2).
    Patch {
        /// The resource id.
        id: String,
        /// The parsed operations.
        request: PatchRequest,
        /// The `If-Match` header, if any.
        if_match: Option<String>,
    },
    /// DELETE (RFC 7644 §3.6).
    Delete {
        /// The resource id.
        id: String,
        /// The `If-Match` header, if any.
        if_match: Option<String>,
    },
}

impl WriteRequest {
    fn id(&self) -> Option<&str> {
        match self {
            WriteRequest::Create { .. } => None,
            WriteRequest::Replace { id, .. }
            | WriteRequest::Patch { id, .. }
            | WriteRequest::Delete { id, .. } => Some(id),
        }
    }

    fn if_match(&self) -> Option<&str> {
        match self {
            WriteRequest::Create { .. } => None,
            WriteRequest::Replace { if_match, .. }
            | WriteRequest::Patch { if_match, .. }
            | WriteRequest::Delete { if_match, .. } => if_match.as_deref(),
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The resource id (new for a create).
    pub id: String,
    /// The version now stored (for a delete: the version deleted).
    pub version: u64,
    /// Whether anything was written (false for a PATCH that changed nothing).
    pub changed: bool,
    /// The resource as written, without a Group's `members` (they live in the membership table)
    /// and, unless the load asked for them, a User's `groups`; `None` after a delete.
    pub resource: Option<Resource>,
    /// What `resource` carries beyond its row (`groups` when they were loaded, or trivially
    /// for a User just created).
    pub loaded: Load,
}

/// Runs one write through the pipeline (see the module doc).
pub async fn write(
    state: &AppState,
    writer: &Writer,
    rt: &ResourceType,
    request: WriteRequest,
) -> Result<Written> {
    write_loading(state, writer, rt, request, Load::default()).await
}

/// [`write()`], loading `extra` (a User's `groups`) with the resource on each attempt's one read,
/// so a reply that shows them needs no second read.
pub async fn write_loading(
    state: &AppState,
    writer: &Writer,
    rt: &ResourceType,
    request: WriteRequest,
    extra: Load,
) -> Result<Written> {
    Pipeline::new(state, writer, rt)
        .run(state, request, extra)
        .await
}

/// What a write would do, decided by the same steps as [`write()`] (normalise, load, decide in
/// the core, validate) but stored nowhere: for previews such as `scim-server import --dry-run`,
/// whose "would update" and "would leave unchanged" must agree with what the write then does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preview {
    /// A new resource would be stored.
    Create,
    /// The resource would get a new version and a change record.
    Change,
    /// Nothing would be written (a PATCH that changes nothing).
    Unchanged,
    /// The resource would be deleted.
    Delete,
}

/// Decides `request` as [`write()`] would, without storing anything or taking a write lock. A
/// refusal (a bad value, a missing resource) is the error the write would answer. Uniqueness is
/// the store's constraint, so a create that would collide previews as [`Preview::Create`].
pub async fn preview(
    state: &AppState,
    writer: &Writer,
    rt: &ResourceType,
    request: WriteRequest,
) -> Result<Preview> {
    let pipeline = Pipeline::new(state, writer, rt);
    let if_match = request.if_match().map(str::to_string);
    let id = request
        .id()
        .map(str::to_string)
        .unwrap_or_else(new_resource_id);
    let prepared = pipeline.prepare(request)?;
    let existing = match &prepared {
        Prepared::Create(_) => None,
        _ => {
            let found = state
                .resources
                .get(&writer.tenant, rt, &id, Load::default())
                .await?
                .ok_or_else(|| Error::not_found(&rt.name, &id))?;
            check_if_match(if_match.as_deref(), found.meta.version)?;
            Some(found)
        }
    };
    Ok(
        match pipeline
            .decide(&id, &prepared, existing, state.clock.now())
            .await?
        {
            Decision::Unchanged(_) => Preview::Unchanged,
            Decision::Store { expected: None, .. } => Preview::Create,
            Decision::Store { .. } => Preview::Change,
            Decision::Delete { .. } => Preview::Delete,
        },
    )
}

/// Finds a resource id by `externalId` (HR-style upserts).
pub async fn find_by_external_id(
    state: &AppState,
    writer: &Writer,
    rt: &ResourceType,
    external_id: &str,
) -> Result<Option<String>> {
    Ok(state
        .resources
        .find_by_external_id(&writer.tenant, rt, external_id)
        .await?
        .map(|r| r.id))
}

/// The request, prepared once before the first attempt.
enum Prepared {
    Create(Attributes),
    Replace(Attributes),
    Patch {
        request: PatchRequest,
        mode: Members,
    },
    Delete,
}

/// What one attempt decided to store.
enum Decision {
    /// Nothing changes (a no-op PATCH).
    Unchanged(Resource),
    /// Store `resource` (over `expected`, unless a create) with its membership delta.
    Store {
        resource: Resource,
        expected: Option<u64>,
        members: Option<MembershipDelta>,
        change: Change,
    },
    /// Delete the resource at version `expected`.
    Delete { existing: Resource, change: Change },
}

struct Pipeline<'a> {
    registry: &'a SchemaRegistry,
    resources: &'a dyn Resources,
    clock: &'a dyn Clock,
    writer: &'a Writer,
    rt: &'a ResourceType,
    /// What a stored resource may hold, the same on every database.
    limits: scim_core::validate::ResourceLimits,
    /// Member ids already looked up for this write (a batch of member `PATCH`es looks up all
    /// of its ids at once); others are looked up when needed.
    looked_up: Option<&'a member_batch::LookedUp>,
}

impl<'a> Pipeline<'a> {
    fn new(state: &'a AppState, writer: &'a Writer, rt: &'a ResourceType) -> Self {
        Pipeline {
            registry: &state.registry,
            resources: state.resources.as_ref(),
            clock: state.clock.as_ref(),
            writer,
            rt,
            limits: state.settings.limits.resource_limits(),
            looked_up: None,
        }
    }
}

impl Pipeline<'_> {
    async fn run(&self, state: &AppState, request: WriteRequest, extra: Load) -> Result<Written> {
        let if_match = request.if_match().map(str::to_string);
        let id = match request.id() {
            // No id holds a NUL (ids are UUIDs), and PostgreSQL cannot even compare one.
            Some(id) if id.contains('\0') => {
                return Err(Error::not_found(
                    &self.rt.name,
                    &id.replace('\0', "\\u0000"),
                ));
            }
            Some(id) => id.to_string(),
            None => new_resource_id(),
        };
        let prepared = self.prepare(request)?;
        if member_batch::joins_batch(self.rt, &prepared, if_match.as_deref()) {
            return member_batch::submit(state, self.writer, self.rt, id, prepared).await;
        }
        let load = match &prepared {
            Prepared::Patch {
                mode: Members::Inline,
                ..
            } if self.rt.is_group() => Load {
                members: true,
                groups: false,
            },
            Prepared::Delete | Prepared::Create(_) => Load::default(),
            _ => Load {
                members: false,
                groups: extra.groups && self.rt.is_user(),
            },
        };
        let _serialised = state
            .write_locks
            .lock(lock_key(&self.writer.tenant, &self.rt.name, &id))
            .await;
        // With a non-empty If-Match a lost race is the client's 412 (RFC 7644 §3.14), not
        // ours to retry.
        let retry = if_match.as_deref().is_none_or(|h| h.trim().is_empty());
        let resource = (
            self.writer.tenant.as_str(),
            self.rt.name.as_str(),
            id.as_str(),
        );
        retry_lost_races(self.clock, resource, retry, || {
            self.attempt(&id, &prepared, if_match.as_deref(), load)
        })
        .await
    }

    /// Step 0, once: parse and normalise the request.
    fn prepare(&self, request: WriteRequest) -> Result<Prepared> {
        Ok(match request {
            WriteRequest::Create { body } => {
                let mut attrs = normalize::request_body(self.registry, self.rt, body)?;
                self.registry.strip_secrets(self.rt, &mut attrs);
                validate::create(self.registry, self.rt, &attrs)?;
                Prepared::Create(attrs)
            }
            WriteRequest::Replace { body, .. } => {
                let mut attrs = normalize::request_body(self.registry, self.rt, body)?;
                self.registry.strip_secrets(self.rt, &mut attrs);
                Prepared::Replace(attrs)
            }
            WriteRequest::Patch { request, .. } => {
                // Member operations by id become a delta for storage, so a PATCH to a
                // 100,000-member group never loads its members; only filters on other member
                // sub-attributes need them loaded.
                let mode = if self.rt.is_group() && !patch::needs_inline_members(&request) {
                    Members::Delta
                } else {
                    Members::Inline
                };
                Prepared::Patch { request, mode }
            }
            WriteRequest::Delete { .. } => Prepared::Delete,
        })
    }

    /// Steps 1 to 6, once.
    async fn attempt(
        &self,
        id: &str,
        prepared: &Prepared,
        if_match: Option<&str>,
        load: Load,
    ) -> std::result::Result<Written, AttemptError> {
        let now = self.clock.now();
        let existing = match prepared {
            Prepared::Create(_) => None,
            _ => {
                let found = self
                    .resources
                    .get(&self.writer.tenant, self.rt, id, load)
                    .await
                    .map_err(Error::from)?
                    .ok_or_else(|| Error::not_found(&self.rt.name, id))?;
                check_if_match(if_match, found.meta.version)?;
                Some(found)
            }
        };
        let decision = self.decide(id, prepared, existing, now).await?;
        let ctx = self.writer.context(now);
        match decision {
            Decision::Unchanged(resource) => Ok(Written {
                id: id.to_string(),
                version: resource.meta.version,
                changed: false,
                resource: Some(resource),
                loaded: Load {
                    members: false,
                    groups: load.groups,
                },
            }),
            Decision::Store {
                resource,
                expected,
                members,
                change,
            } => {
                let stored = match expected {
                    None => match self
                        .resources
                        .create(&ctx, self.rt, &resource, &change)
                        .await
                    {
                        Err(e @ StoreError::Uniqueness { .. }) => {
                            match self.earlier_create().await? {
                                Some(found) => {
                                    return Ok(Written {
                                        id: found.id.clone(),
                                        version: found.meta.version,
                                        changed: false,
                                        resource: Some(found),
                                        loaded: Load::default(),
                                    });
                                }
                                None => Err(e),
                            }
                        }
                        other => other,
                    },
                    Some(expected) => {
                        self.resources
                            .update(
                                &ctx,
                                self.rt,
                                &resource,
                                expected,
                                members.as_ref(),
                                &change,
                            )
                            .await
                    }
                };
                stored.map_err(AttemptError::from_store)?;
                Ok(Written {
                    id: id.to_string(),
                    version: resource.meta.version,
                    changed: true,
                    resource: Some(resource),
                    loaded: Load {
                        members: false,
                        groups: load.groups || (expected.is_none() && self.rt.is_user()),
                    },
                })
            }
            Decision::Delete { existing, change } => {
                self.resources
                    .delete(&ctx, self.rt, id, Some(existing.meta.version), &change)
                    .await
                    .map_err(AttemptError::from_store)?;
                Ok(Written {
                    id: id.to_string(),
                    version: existing.meta.version,
                    changed: true,
                    resource: None,
                    loaded: Load::default(),
                })
            }
        }
    }

    /// Steps 2 to 5: decide in the core, apply the member rules, validate, describe the change.
    async fn decide(
        &self,
        id: &str,
        prepared: &Prepared,
        existing: Option<Resource>,
        now: OffsetDateTime,
    ) -> Result<Decision> {
        match (prepared, existing) {
            (Prepared::Create(attrs), _) => {
                let mut attrs = attrs.clone();
                if self.rt.is_group() {
                    let mut delta = take_members(&mut attrs, false);
                    self.keep_known(id, &mut delta).await?;
                    put_members(&mut attrs, &delta.added);
                }
                self.check_limits(&attrs)?;
                let resource = Resource::new(self.rt.name.clone(), id, attrs, Meta::new(now));
                let change = Change::created(self.registry, &resource);
                Ok(Decision::Store {
                    resource,
                    expected: None,
                    members: None,
                    change,
                })
            }
            (Prepared::Replace(incoming), Some(mut existing)) => {
                let groups = existing.attributes.remove("groups");
                let mut attrs =
                    validate::replace(self.registry, self.rt, &existing, incoming.clone())?;
                self.registry.strip_secrets(self.rt, &mut attrs);
                self.check_limits(&attrs)?;
                let members = if self.rt.is_group() {
                    let mut delta = take_members(&mut attrs, true);
                    self.keep_known(id, &mut delta).await?;
                    Some(delta)
                } else {
                    None
                };
                let resource = successor(&existing, attrs, now);
                let change = Change::replaced(self.registry, &existing, &resource, members.clone());
                Ok(Decision::Store {
                    resource: with_groups(resource, groups),
                    expected: Some(existing.meta.version),
                    members,
                    change,
                })
            }
            (Prepared::Patch { request, mode }, Some(mut existing)) => {
                let groups = existing.attributes.remove("groups");
                let mut outcome = patch::apply(self.registry, self.rt, &existing, request, *mode)?;
                self.registry
                    .strip_secrets(self.rt, &mut outcome.attributes);
                if self.rt.is_group() {
                    let delta = match outcome.members.take() {
                        // Member operations applied as a delta.
                        Some(mut delta) => {
                            self.keep_known(id, &mut delta).await?;
                            Some(delta)
                        }
                        // The whole member list was patched in place: store it as a
                        // replacement.
                        None if outcome.changed_paths.iter().any(|p| p == "members") => {
                            let mut delta = take_members(&mut outcome.attributes, true);
                            self.keep_known(id, &mut delta).await?;
                            Some(delta)
                        }
                        None => {
                            outcome.attributes.remove("members");
                            None
                        }
                    };
                    outcome.set_members(delta);
                    existing.attributes.remove("members");
                }
                if !outcome.changed {
                    return Ok(Decision::Unchanged(with_groups(existing, groups)));
                }
                validate::patch_result(self.registry, self.rt, &outcome.attributes)?;
                self.check_limits(&outcome.attributes)?;
                let attrs = std::mem::take(&mut outcome.attributes);
                let resource = successor(&existing, attrs, now);
                let change = Change::patched(self.registry, &existing, &resource, &outcome);
                Ok(Decision::Store {
                    resource: with_groups(resource, groups),
                    expected: Some(existing.meta.version),
                    members: outcome.members,
                    change,
                })
            }
            (Prepared::Delete, Some(existing)) => {
                let change = Change::deleted(self.registry, &existing);
                Ok(Decision::Delete { existing, change })
            }
            (_, None) => Err(Error::internal()),
        }
    }

    /// Checks what a write would store against the resource limits
    /// (`scim_core::validate::limits`: size, values per attribute, indexed value lengths).
    fn check_limits(&self, attrs: &Attributes) -> Result<()> {
        validate::limits::resource(self.rt, attrs, &self.limits)
    }

    /// A create that a client retries after an unknown outcome (503 for a lost connection): the
    /// resource an earlier attempt with the same request id (`X-Request-Id`) by the same
    /// principal stored, so the retry answers as the first attempt would have. A Bulk gives
    /// each operation its own request id (`service::bulk`), so two creates of one Bulk are not
    /// mistaken for each other.
    async fn earlier_create(&self) -> Result<Option<Resource>> {
        let Some(request_id) = self.writer.request_id.as_deref().filter(|r| !r.is_empty()) else {
            return Ok(None);
        };
        let Some(id) = self
            .resources
            .created_by_request(
                &self.writer.tenant,
                self.rt,
                &self.writer.principal,
                request_id,
            )
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .resources
            .get(&self.writer.tenant, self.rt, &id, Load::default())
            .await?)
    }

    /// The member rule: ids that name no User or Group of the tenant are dropped from `added`
    /// and logged (a project decision: Entra and Okta send members before creating them, and a
    /// rejected PATCH would be retried forever), never rejected.
    async fn keep_known(&self, group_id: &str, delta: &mut MembershipDelta) -> Result<()> {
        let known = match self.looked_up {
            Some(looked_up) => {
                let (mut known, unchecked) = looked_up.split(&delta.added);
                if !unchecked.is_empty() {
                    known.extend(
                        keep_known_members(
                            self.registry,
                            self.resources,
                            &self.writer.tenant,
                            &unchecked,
                        )
                        .await?,
                    );
                }
                known
            }
            None => {
                keep_known_members(
                    self.registry,
                    self.resources,
                    &self.writer.tenant,
                    &delta.added,
                )
                .await?
            }
        };
        let skipped: Vec<&String> = delta
            .added
            .iter()
            .filter(|id| !known.contains(*id))
            .collect();
        if !skipped.is_empty() {
            tracing::warn!(
                group = group_id,
                skipped = ?skipped,
                "group members that do not exist were skipped"
            );
        }
        delta.added.retain(|id| known.contains(id));
        Ok(())
    }
}

/// The ids among `ids` that exist as Users or Groups of the tenant.
pub(crate) async fn keep_known_members(
    registry: &SchemaRegistry,
    resources: &dyn Resources,
    tenant: &str,
    ids: &[String],
) -> Result<HashSet<String>> {
    let mut known = HashSet::new();
    let mut rest: Vec<String> = ids.to_vec();
    for name in [USER_RESOURCE, GROUP_RESOURCE] {
        if rest.is_empty() {
            break;
        }
        let Some(rt) = registry.resource_type(name) else {
            continue;
        };
        known.extend(resources.existing_ids(tenant, rt, &rest).await?);
        rest.retain(|id| !known.contains(id));
    }
    Ok(known)
}

/// The id of a resource being created: a UUIDv7, whose leading bits are the time of its
/// creation, so that ids given one after another sort one after another (within one process
/// `Uuid::now_v7` guarantees it, within a millisecond too; replicas' ids interleave by their
/// clocks, and are unique by their random bits).
///
/// RFC 7643 §3.1 asks only that the service provider issue `id`, unique and never reassigned;
/// how it is made is ours to choose. Every index led by the id (the primary key, the list
/// order, value rows and the change log by resource) then grows at its end, where the writes of
/// one group commit share their pages; a random (v4) id put each write on a random page of
/// each, and SQLite writes every page a commit touched to its WAL (W3 on SQLite 9,400–9,600 →
/// 12,200–13,500 creates/s, docs/benchmarks.md, "Ids in creation order"). The time it tells is
/// `meta.created`, which every response carries anyway. Lists, in id order, now return
/// resources in the order they were created, and a resource created while a client pages
/// lands after its pages rather than among them.
fn new_resource_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Takes a Group body's `members` out of `attrs` as a delta (ids once each, in order); `clear`
/// for a replacement of the whole list.
fn take_members(attrs: &mut Attributes, clear: bool) -> MembershipDelta {
    let mut seen = HashSet::new();
    let added = match attrs.remove("members") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|m| m.get("value").and_then(Value::as_str))
            .filter(|id| seen.insert(id.to_string()))
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    MembershipDelta {
        clear,
        added,
        removed: Vec::new(),
    }
}

/// Puts a create's kept member ids back as its `members` attribute (storage and the change
/// record read them there).
fn put_members(attrs: &mut Attributes, ids: &[String]) {
    if !ids.is_empty() {
        let list = ids
            .iter()
            .map(|id| serde_json::json!({"value": id}))
            .collect();
        attrs.insert("members".into(), Value::Array(list));
    }
}

/// A User's loaded `groups` put back on the resource a write returns (they are read-only and
/// derived, so they are kept out of the decision and the change record).
fn with_groups(mut resource: Resource, groups: Option<Value>) -> Resource {
    if let Some(groups) = groups {
        resource.attributes.insert("groups".into(), groups);
    }
    resource
}

/// The name of a resource's write lock in [`AppState::write_locks`].
fn lock_key(tenant: &str, resource_type: &str, id: &str) -> String {
    format!("{tenant}\u{0}{resource_type}\u{0}{id}")
}

/// The next version of `existing` holding `attrs`: version + 1, created as before, modified `now`.
fn successor(existing: &Resource, attrs: Attributes, now: OffsetDateTime) -> Resource {
    Resource::new(
        existing.resource_type.clone(),
        existing.id.clone(),
        attrs,
        Meta {
            created: existing.meta.created,
            last_modified: now,
            version: existing.meta.version + 1,
        },
    )
}

/// The wait before retry `attempt` (1, 2, …) of a lost compare-and-swap: a delay in
/// `0..=2^min(attempt, 8)` ms, doubling with each attempt, picked by hashing the clock's time
/// with the resource key so writers racing from several replicas spread out instead of
/// colliding again. Derived from the [`Clock`], so a test clock makes it deterministic.
pub fn backoff_delay(now: OffsetDateTime, key: &str, attempt: usize) -> Duration {
    let cap_ms = 1u64 << attempt.min(8);
    let mut hasher = std::hash::DefaultHasher::new();
    now.unix_timestamp_nanos().hash(&mut hasher);
    key.hash(&mut hasher);
    attempt.hash(&mut hasher);
    Duration::from_millis(hasher.finish() % (cap_ms + 1))
}

/// Runs `attempt` until it does not lose a compare-and-swap race, waiting [`backoff_delay`]
/// between tries, at most [`MAX_WRITE_ATTEMPTS`] tries; with `retry` false a lost race is the
/// answer at once. Every write of the pipeline, alone or batched, retries through this.
/// `resource` (tenant, type, id) spreads the waits of racing writers; its key is built only
/// when a race is lost.
async fn retry_lost_races<T, Fut>(
    clock: &dyn Clock,
    resource: (&str, &str, &str),
    retry: bool,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T>
where
    Fut: std::future::Future<Output = std::result::Result<T, AttemptError>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(AttemptError::Lost(e)) => {
                tries += 1;
                if !retry || tries >= MAX_WRITE_ATTEMPTS {
                    return Err(e.into());
                }
                metrics::counter!(crate::metrics::PATCH_RETRIES).increment(1);
                let key = lock_key(resource.0, resource.1, resource.2);
                clock.sleep(backoff_delay(clock.now(), &key, tries)).await;
            }
            Err(AttemptError::Failed(e)) => return Err(e),
            Ok(done) => return Ok(done),
        }
    }
}

/// Why an attempt did not write.
enum AttemptError {
    /// A compare-and-swap race was lost (retry without `If-Match`).
    Lost(StoreError),
    /// Anything else: the answer.
    Failed(Error),
}

impl AttemptError {
    fn from_store(e: StoreError) -> Self {
        match e {
            StoreError::VersionMismatch { .. } => AttemptError::Lost(e),
            other => AttemptError::Failed(other.into()),
        }
    }
}

impl From<Error> for AttemptError {
    fn from(e: Error) -> Self {
        AttemptError::Failed(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_its_cap_and_stays_within_it() {
        let t = OffsetDateTime::UNIX_EPOCH;
        for attempt in 1..70 {
            let cap = Duration::from_millis(1 << attempt.min(8));
            let d = backoff_delay(
                t + time::Duration::nanoseconds(attempt as i64),
                "k",
                attempt,
            );
            assert!(d <= cap, "attempt {attempt}: {d:?} > {cap:?}");
        }
        // Jitter: different times spread the delays.
        let spread: HashSet<Duration> = (0..50)
            .map(|i| backoff_delay(t + time::Duration::nanoseconds(i), "k", 6))
            .collect();
        assert!(spread.len() > 5, "{spread:?}");
    }
}
