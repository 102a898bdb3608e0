//! W7: Entra's initial provisioning cycle, replayed with the requests Entra sends (reference
//! §1.2): for every user a match `GET /Users?filter=userName eq`, then `POST /Users` when absent;
//! for every group a match `GET /Groups?excludedAttributes=members&filter=displayName eq`, then
//! `POST /Groups` without members; then `PATCH /Groups/{id}` `Add members`, 100 at most each.

use std::sync::Arc;
use std::time::Duration;

use super::LoadError;
use super::engine::{Client, for_each};
use super::hist::Recorder;
use super::plan::{self, CycleStep, Directory, entra_cycle};
use super::report::PhaseReport;
use super::state::{SeedGroup, SeedUser, State, first_listed_id, id_of};

/// What the cycle measured: one phase per step kind, and the whole.
pub struct CycleOutcome {
    /// Users, groups, memberships.
    pub phases: Vec<PhaseReport>,
    /// All requests together.
    pub total: Recorder,
    /// Wall-clock time of the three phases.
    pub elapsed: Duration,
}

/// Finds a resource with `find`, creates it with `create` when the list is empty.
async fn match_then_create(
    c: &Client,
    rec: &mut Recorder,
    find: plan::Req,
    create: plan::Req,
) -> Option<String> {
    let a = c.timed(rec, &find).await?;
    if !(200..300).contains(&a.status) {
        return None;
    }
    match first_listed_id(&a.body) {
        Some(Some(id)) => Some(id),
        Some(None) => {
            let a = c.timed(rec, &create).await?;
            (a.status == 201 || a.status == 200)
                .then(|| id_of(&a.body))
                .flatten()
        }
        None => None,
    }
}

/// Runs the cycle for `dir`, appending the created users and groups to `state`.
pub async fn run_cycle(
    client: &Client,
    state: &mut State,
    dir: &Directory,
    concurrency: usize,
) -> Result<CycleOutcome, LoadError> {
    let [user_steps, group_steps, member_steps] = entra_cycle(dir);
    let base = state.users.len();
    let mut phases = Vec::new();
    let mut total = Recorder::default();
    let mut elapsed = Duration::ZERO;

    // Phase 1: users.
    let names: Arc<Vec<String>> = Arc::new(
        user_steps
            .iter()
            .map(|s| match s {
                CycleStep::MatchThenCreateUser(i) => state.user_name(base + i),
                _ => unreachable!("phase 1 holds user steps"),
            })
            .collect(),
    );
    eprintln!("entra cycle: {} users…", names.len());
    let job_names = names.clone();
    let (ids, rec, t) = for_each(client, names.len(), concurrency, move |c, i, mut rec| {
        let names = job_names.clone();
        async move {
            let name = &names[i];
            let id = match_then_create(
                &c,
                &mut rec,
                plan::find_user(name),
                plan::create_user(name, &format!("ext-{name}")),
            )
            .await;
            (id, rec)
        }
    })
    .await;
    phases.push(PhaseReport::from_recorder("users", &rec, t.as_secs_f64()));
    total.merge(&rec);
    elapsed += t;
    let missing = ids.iter().filter(|i| i.is_none()).count();
    if missing > 0 {
        return Err(LoadError::Seed(format!(
            "entra cycle: {missing} of {} users were not created: {}",
            ids.len(),
            rec.samples.first().map(String::as_str).unwrap_or("?")
        )));
    }
    for (i, id) in ids.into_iter().enumerate() {
        state.users.push(SeedUser {
            id: id.unwrap_or_default(),
            user_name: names[i].clone(),
        });
    }

    // Phase 2: groups.
    let gnames: Arc<Vec<String>> = Arc::new(
        group_steps
            .iter()
            .map(|s| match s {
                CycleStep::MatchThenCreateGroup(g) => state.group_name(&format!("c{g}")),
                _ => unreachable!("phase 2 holds group steps"),
            })
            .collect(),
    );
    eprintln!("entra cycle: {} groups…", gnames.len());
    let job_names = gnames.clone();
    let (gids, rec, t) = for_each(client, gnames.len(), concurrency, move |c, i, mut rec| {
        let names = job_names.clone();
        async move {
            let name = &names[i];
            let id = match_then_create(
                &c,
                &mut rec,
                plan::find_group(name),
                plan::create_group(name, &format!("ext-{name}")),
            )
            .await;
            (id, rec)
        }
    })
    .await;
    phases.push(PhaseReport::from_recorder("groups", &rec, t.as_secs_f64()));
    total.merge(&rec);
    elapsed += t;
    if gids.iter().any(Option::is_none) {
        return Err(LoadError::Seed(format!(
            "entra cycle: groups were not created: {}",
            rec.samples.first().map(String::as_str).unwrap_or("?")
        )));
    }
    let gids: Vec<String> = gids.into_iter().map(Option::unwrap_or_default).collect();

    // Phase 3: memberships.
    let patches: Arc<Vec<plan::Req>> = Arc::new(
        member_steps
            .iter()
            .map(|s| match s {
                CycleStep::AddMembers(g, members) => {
                    let ids: Vec<&str> = members
                        .iter()
                        .map(|&i| state.users[base + i].id.as_str())
                        .collect();
                    plan::add_members(&gids[*g], &ids)
                }
                _ => unreachable!("phase 3 holds member steps"),
            })
            .collect(),
    );
    eprintln!(
        "entra cycle: {} memberships in {} PATCHes…",
        dir.memberships(),
        patches.len()
    );
    let job_patches = patches.clone();
    let (_, rec, t) = for_each(client, patches.len(), concurrency, move |c, i, mut rec| {
        let patches = job_patches.clone();
        async move {
            c.timed(&mut rec, &patches[i]).await;
            (Some(()), rec)
        }
    })
    .await;
    phases.push(PhaseReport::from_recorder(
        "memberships",
        &rec,
        t.as_secs_f64(),
    ));
    total.merge(&rec);
    elapsed += t;
    for (g, (&(start, len), name)) in dir.groups.iter().zip(gnames.iter()).enumerate() {
        state.groups.push(SeedGroup {
            id: gids[g].clone(),
            name: name.clone(),
            start: base + start,
            len,
        });
    }
    Ok(CycleOutcome {
        phases,
        total,
        elapsed,
    })
}
