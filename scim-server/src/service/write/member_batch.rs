//! Member `PATCH`es of one group, written together.
//!
//! Why: within a process the writes of one resource wait for each other on its lock
//! ([`crate::service::locks`]), and each was a read of the group, a lookup of the members it adds
//! and a commit of its own. A burst of member `PATCH`es to one group (Entra and Okta send a
//! group's member changes in parallel; a wave of hires joins everyone to one group) therefore
//! ran at one commit latency each: 800 a second on PostgreSQL, where the other writes of the
//! machine ran at thousands (issue 14, `docs/benchmarks.md`).
//!
//! Now a member `PATCH` (one whose member operations name ids, so the member list is not loaded:
//! [`Members::Delta`], without `If-Match`) is queued under the group's lock name, and whoever
//! next holds that lock takes every `PATCH` queued by then and writes them together:
//!
//! - one read of the group and one lookup of all the member ids they add;
//! - each request decided in arrival order on the result of the one before, by the pipeline's
//!   own steps, as if they had run one after another: each keeps its own version (and so its
//!   own ETag) and its own change record with its principal and request id; one that is
//!   refused (a bad path, a read-only attribute) gets its own error and changes nothing;
//! - one write ([`Resources::update_successive`](crate::store::Resources::update_successive)):
//!   the last version, the net membership delta
//!   ([`MembershipDelta::followed_by`]) and the records in order, committed together; a
//!   compare-and-swap race lost to another replica is retried for the whole batch.
//!
//! The batch runs in a task of its own, so a client that disconnects while its request leads a
//! batch does not abandon the others' answers.

use super::{
    AttemptError, Decision, Pipeline, Prepared, Writer, Written, keep_known_members, lock_key,
    retry_lost_races,
};
use crate::state::AppState;
use crate::store::{Load, WriteStep};
use scim_core::change::Change;
use scim_core::patch::{self, Members, MembershipDelta};
use scim_core::resource::Resource;
use scim_core::schema::ResourceType;
use scim_core::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use tokio::sync::oneshot;

/// The most requests one write takes; more wait for the next one. Bounds the statement (each
/// request adds a change record) and the latency of the requests it holds.
const MAX_BATCH: usize = 64;

/// Whether a prepared write is a member `PATCH` that may be written with others.
pub(super) fn joins_batch(rt: &ResourceType, prepared: &Prepared, if_match: Option<&str>) -> bool {
    // With If-Match the client names the version it read: it must be written alone, against
    // exactly that version.
    rt.is_group()
        && if_match.is_none_or(|h| h.trim().is_empty())
        && matches!(
            prepared,
            Prepared::Patch {
                mode: Members::Delta,
                ..
            }
        )
}

/// Member `PATCH`es waiting for their group's lock, by lock name.
#[derive(Debug, Default)]
pub(crate) struct MemberPatchQueues {
    queues: Mutex<HashMap<String, Vec<Queued>>>,
    tickets: std::sync::atomic::AtomicU64,
}

/// A queued member `PATCH` and where its answer goes.
struct Queued {
    /// Tells the request's own entry from others'.
    ticket: u64,
    writer: Writer,
    prepared: Prepared,
    answer: oneshot::Sender<Result<Written>>,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued")
            .field("principal", &self.writer.principal)
            .finish_non_exhaustive()
    }
}

impl MemberPatchQueues {
    fn push(&self, key: &str, queued: Queued) {
        self.lock().entry(key.to_string()).or_default().push(queued);
    }

    /// Takes up to [`MAX_BATCH`] of the oldest queued requests; the name is forgotten once its
    /// queue is empty.
    fn take(&self, key: &str) -> Vec<Queued> {
        let mut queues = self.lock();
        let Some(queue) = queues.get_mut(key) else {
            return Vec::new();
        };
        if queue.len() <= MAX_BATCH {
            return queues.remove(key).unwrap_or_default();
        }
        queue.drain(..MAX_BATCH).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Queued>>> {
        self.queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Writes a member `PATCH` of group `id` with whatever others queue for it meanwhile, and
/// returns its own outcome.
pub(super) async fn submit(
    state: &AppState,
    writer: &Writer,
    rt: &ResourceType,
    id: String,
    prepared: Prepared,
) -> Result<Written> {
    let key = lock_key(&writer.tenant, &rt.name, &id);
    let (answer, mut answered) = oneshot::channel();
    let ticket = state
        .member_patches
        .tickets
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    state.member_patches.push(
        &key,
        Queued {
            ticket,
            writer: writer.clone(),
            prepared,
            answer,
        },
    );
    loop {
        // Answered by whoever takes this request, or the lock to take it (with whatever queued
        // since) oneself. A request answered by another's batch must not wait for the lock as
        // well: it would hold its answer back until it got the lock, and then write the
        // requests queued meanwhile before returning.
        tokio::select! {
            biased;
            outcome = &mut answered => {
                // A panic in the batch's task drops its answers.
                return outcome.unwrap_or_else(|_| Err(Error::internal()));
            }
            held = state.write_locks.lock(key.clone()) => {
                let batch = state.member_patches.take(&key);
                match batch.as_slice() {
                    [] => {}
                    // Only this request: written on its own task, as any single write (a
                    // cancellation then abandons no one else's answer).
                    [only] if only.ticket == ticket => {
                        write_batch(state.clone(), rt.clone(), id.clone(), batch, held).await;
                    }
                    _ => {
                        let task = tokio::spawn(write_batch(
                            state.clone(),
                            rt.clone(),
                            id.clone(),
                            batch,
                            held,
                        ));
                        let _ = task.await;
                    }
                }
            }
        }
    }
}

/// Member ids looked up once for a whole batch.
#[derive(Debug, Default)]
pub(super) struct LookedUp {
    checked: HashSet<String>,
    known: HashSet<String>,
}

impl LookedUp {
    /// Of `ids`: those known to exist, and those not looked up yet.
    pub(super) fn split(&self, ids: &[String]) -> (HashSet<String>, Vec<String>) {
        let mut known = HashSet::new();
        let mut unchecked = Vec::new();
        for id in ids {
            if self.known.contains(id) {
                known.insert(id.clone());
            } else if !self.checked.contains(id) {
                unchecked.push(id.clone());
            }
        }
        (known, unchecked)
    }
}

/// How one request of a batch ended, before the batch is stored.
enum Outcome {
    /// Refused by the pipeline: its answer.
    Refused(Error),
    /// Changes nothing: the resource as it then stood.
    Unchanged(Resource),
    /// Stored as this version.
    Stored(Resource),
}

/// Writes `batch` (holding the group's lock, `_held`) and answers every request in it.
async fn write_batch(
    state: AppState,
    rt: ResourceType,
    id: String,
    batch: Vec<Queued>,
    _held: tokio::sync::OwnedMutexGuard<()>,
) {
    let resource = (
        batch[0].writer.tenant.as_str(),
        rt.name.as_str(),
        id.as_str(),
    );
    let outcomes = retry_lost_races(state.clock.as_ref(), resource, true, || {
        attempt_batch(&state, &rt, &id, &batch)
    })
    .await;
    match outcomes {
        Ok(outcomes) => {
            for (queued, outcome) in batch.into_iter().zip(outcomes) {
                let _ = queued.answer.send(match outcome {
                    Outcome::Refused(e) => Err(e),
                    Outcome::Unchanged(resource) => Ok(written(&id, resource, false)),
                    Outcome::Stored(resource) => Ok(written(&id, resource, true)),
                });
            }
        }
        Err(e) => {
            for queued in batch {
                let _ = queued.answer.send(Err(e.clone()));
            }
        }
    }
}

fn written(id: &str, resource: Resource, changed: bool) -> Written {
    Written {
        id: id.to_string(),
        version: resource.meta.version,
        changed,
        resource: Some(resource),
        loaded: Load::default(),
    }
}

/// One attempt: read, decide each request in order, store the result as one write. The
/// outcomes are in the batch's order; `Err` is the whole batch's.
async fn attempt_batch(
    state: &AppState,
    rt: &ResourceType,
    id: &str,
    batch: &[Queued],
) -> std::result::Result<Vec<Outcome>, AttemptError> {
    let tenant = &batch[0].writer.tenant;
    let now = state.clock.now();
    let existing = state
        .resources
        .get(tenant, rt, id, Load::default())
        .await
        .map_err(Error::from)?
        .ok_or_else(|| Error::not_found(&rt.name, id))?;
    // A request alone looks its members up while it is decided, as any write does.
    let looked_up = match batch {
        [_] => None,
        _ => Some(look_up_members(state, rt, tenant, &existing, batch).await?),
    };

    let expected = existing.meta.version;
    let mut current = existing;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut stored: Vec<(usize, Change)> = Vec::new();
    let mut net: Option<MembershipDelta> = None;
    for (i, queued) in batch.iter().enumerate() {
        let pipeline = Pipeline {
            looked_up: looked_up.as_ref(),
            ..Pipeline::new(state, &queued.writer, rt)
        };
        match pipeline
            .decide(id, &queued.prepared, Some(current.clone()), now)
            .await
        {
            Err(e) => outcomes.push(Outcome::Refused(e)),
            Ok(Decision::Unchanged(resource)) => outcomes.push(Outcome::Unchanged(resource)),
            Ok(Decision::Store {
                resource,
                members,
                change,
                ..
            }) => {
                if let Some(delta) = members {
                    net = Some(match net.take() {
                        Some(before) => before.followed_by(&delta),
                        None => delta,
                    });
                }
                current = resource.clone();
                stored.push((i, change));
                outcomes.push(Outcome::Stored(resource));
            }
            Ok(Decision::Delete { .. }) => outcomes.push(Outcome::Refused(Error::internal())),
        }
    }
    if stored.is_empty() {
        return Ok(outcomes);
    }
    let contexts: Vec<_> = stored
        .iter()
        .map(|(i, _)| batch[*i].writer.context(now))
        .collect();
    let steps: Vec<WriteStep<'_>> = contexts
        .iter()
        .zip(&stored)
        .map(|(ctx, (_, change))| WriteStep { ctx, change })
        .collect();
    state
        .resources
        .update_successive(rt, &current, expected, net.as_ref(), &steps)
        .await
        .map_err(AttemptError::from_store)?;
    Ok(outcomes)
}

/// Looks up, in one go, every member id the batch's requests add (each request applied to the
/// group as read: member ids come from the requests, not from the group).
async fn look_up_members(
    state: &AppState,
    rt: &ResourceType,
    tenant: &str,
    group: &Resource,
    batch: &[Queued],
) -> Result<LookedUp> {
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    for queued in batch {
        let Prepared::Patch { request, mode } = &queued.prepared else {
            continue;
        };
        // A request the pipeline will refuse adds nothing; it gets its error when decided.
        if let Ok(outcome) = patch::apply(&state.registry, rt, group, request, *mode) {
            for added in outcome.members.into_iter().flat_map(|d| d.added) {
                if seen.insert(added.clone()) {
                    ids.push(added);
                }
            }
        }
    }
    let known = if ids.is_empty() {
        HashSet::new()
    } else {
        keep_known_members(&state.registry, state.resources.as_ref(), tenant, &ids).await?
    };
    Ok(LookedUp {
        checked: ids.into_iter().collect(),
        known,
    })
}

#[cfg(test)]
mod tests {
    //! The batch over a real (in-memory SQLite) store; concurrency across replicas and over
    //! HTTP is covered by `tests/it/e2e.rs` on both databases.

    use super::*;
    use crate::auth::{CredentialKind, Principal};
    use crate::service::RequestCtx;
    use crate::service::write::{WriteRequest, write};
    use crate::store::{SqliteStore, Store};
    use scim_core::patch::PatchRequest;
    use serde_json::{Value, json};
    use std::sync::Arc;
    use std::time::Duration;

    fn writer(request_id: &str) -> Writer {
        RequestCtx::new(
            Principal::new("t1", "token:test", false, CredentialKind::StaticToken),
            Some(request_id.to_string()),
            "http://localhost/scim/v2",
        )
        .writer()
        .unwrap()
    }

    fn patch_of(operations: Value) -> PatchRequest {
        PatchRequest::parse(
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": operations,
            }),
            100,
        )
        .unwrap()
    }

    async fn create(state: &AppState, rt: &ResourceType, body: Value) -> String {
        write(state, &writer("setup"), rt, WriteRequest::Create { body })
            .await
            .unwrap()
            .id
    }

    fn queued(state: &AppState) -> usize {
        state.member_patches.lock().values().map(Vec::len).sum()
    }

    /// Member `PATCH`es that queue while the group's lock is held are written as one write
    /// when it is released: each is decided on the one before, keeps its own version and
    /// record, and one that is refused changes nothing and does not stop the others.
    #[tokio::test]
    async fn queued_member_patches_are_one_write_each_with_its_own_version_and_record() {
        let store = Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap());
        store.migrate().await.unwrap();
        let config = crate::config::Config::default();
        let clock: Arc<dyn crate::clock::Clock> = Arc::new(crate::clock::ManualClock::new(
            time::OffsetDateTime::UNIX_EPOCH,
        ));
        let auth = crate::auth::AuthService::from_config(
            &crate::auth::AuthConfig::default(),
            crate::auth::token_store(store.clone()),
            clock.clone(),
        )
        .unwrap();
        let state = AppState::with_clock(&config, store.clone(), Arc::new(auth), clock);
        let users = state.registry.resource_type("User").unwrap().clone();
        let groups = state.registry.resource_type("Group").unwrap().clone();
        let mut members = Vec::new();
        for name in ["ann", "ben", "cat", "dan"] {
            members.push(create(&state, &users, json!({"userName": name})).await);
        }
        let group = create(
            &state,
            &groups,
            json!({"displayName": "Staff", "members": [{"value": members[0]}]}),
        )
        .await;

        let requests = [
            json!([{"op": "add", "path": "members", "value": [{"value": members[1]}]}]),
            json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", members[0])}]),
            // Refused: `id` is readOnly (RFC 7643 §3.1) and this one differs.
            json!([{"op": "replace", "value": {"id": "another-id"}}]),
            json!([{"op": "add", "path": "members", "value": [{"value": members[2]}, {"value": "no-such-id"}]},
                   {"op": "replace", "path": "displayName", "value": "Staff 2"}]),
            json!([{"op": "remove", "path": "members", "value": [{"value": members[1]}]}]),
        ];
        let held = state
            .write_locks
            .lock(lock_key("t1", "Group", &group))
            .await;
        let before = store.group_commit_counts();
        let mut tasks = Vec::new();
        for (i, operations) in requests.iter().enumerate() {
            let (task_state, groups) = (state.clone(), groups.clone());
            let request = WriteRequest::Patch {
                id: group.clone(),
                request: patch_of(operations.clone()),
                if_match: None,
            };
            tasks.push(tokio::spawn(async move {
                write(&task_state, &writer(&format!("req-{i}")), &groups, request).await
            }));
            // Queued in this order.
            let mut waited = 0;
            while queued(&state) < i + 1 {
                assert!(waited < 5_000, "PATCH {i} never queued for the group");
                tokio::time::sleep(Duration::from_millis(1)).await;
                waited += 1;
            }
        }
        drop(held);
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }

        let versions: Vec<Option<u64>> = outcomes
            .iter()
            .map(|o| o.as_ref().ok().map(|w| w.version))
            .collect();
        assert_eq!(versions, [Some(2), Some(3), None, Some(4), Some(5)]);
        let refused = outcomes[2].as_ref().unwrap_err();
        assert_eq!(
            (refused.status(), refused.scim_type()),
            (400, Some(scim_core::error::ScimType::Mutability)),
            "{refused}"
        );
        let after = store.group_commit_counts();
        assert_eq!(
            after.writes - before.writes,
            1,
            "four stored PATCHes, one write"
        );

        let stored = state
            .resources
            .get(
                "t1",
                &groups,
                &group,
                Load {
                    members: true,
                    groups: false,
                },
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.meta.version, 5);
        assert_eq!(stored.attributes["displayName"], "Staff 2");
        let ids: Vec<&str> = stored.attributes["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["value"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [members[2].as_str()]);

        let records = state.store.changes_after("t1", 0, 100).await.unwrap();
        let group_records: Vec<(u64, Option<&str>, String)> = records
            .iter()
            .filter(|r| r.resource_id == group && r.version > 1)
            .map(|r| {
                let change: Change = serde_json::from_str(&r.change_json).unwrap();
                let members = change.members.unwrap_or_default();
                (
                    r.version,
                    r.request_id.as_deref(),
                    format!("+{:?} -{:?}", members.added.len(), members.removed.len()),
                )
            })
            .collect();
        assert_eq!(
            group_records,
            [
                (2, Some("req-0"), "+1 -0".to_string()),
                (3, Some("req-1"), "+0 -1".to_string()),
                (4, Some("req-3"), "+1 -0".to_string()),
                (5, Some("req-4"), "+0 -1".to_string()),
            ],
            "unknown member ids are dropped from the record as from the write"
        );
        let report = state.store.verify_chain("t1").await.unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(queued(&state), 0);
    }
}
