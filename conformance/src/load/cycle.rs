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
    /// Why the cycle did not finish (time limit), `None` when it did.
    pub incomplete: Option<String>,
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

/// One "match GET, then POST when absent" phase over `names`, `concurrency` at a time: the ids
/// found or created (None where a request failed or the deadline passed), the recorder and the
/// phase's duration.
async fn match_create_phase(
    client: &Client,
    concurrency: usize,
    deadline: Option<std::time::Instant>,
    names: Arc<Vec<String>>,
    find: fn(&str) -> plan::Req,
    create: fn(&str, &str) -> plan::Req,
) -> (Vec<Option<String>>, Recorder, Duration) {
    let n = names.len();
    for_each(client, n, concurrency, deadline, move |c, i, mut rec| {
        let names = names.clone();
        async move {
            let name = &names[i];
            let id = match_then_create(
                &c,
                &mut rec,
                find(name),
                create(name, &format!("ext-{name}")),
            )
            .await;
            (id, rec)
        }
    })
    .await
}

/// Runs the cycle for `dir`, appending the created users and groups to `state`. With a
/// `time_limit`, no new step starts after it and the outcome says what was left undone.
pub async fn run_cycle(
    client: &Client,
    state: &mut State,
    dir: &Directory,
    concurrency: usize,
    time_limit: Option<Duration>,
) -> Result<CycleOutcome, LoadError> {
    let deadline = time_limit.map(|t| std::time::Instant::now() + t);
    let overdue = || deadline.is_some_and(|d| std::time::Instant::now() >= d);
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
    let (ids, rec, t) = match_create_phase(
        client,
        concurrency,
        deadline,
        names.clone(),
        plan::find_user,
        plan::create_user,
    )
    .await;
    phases.push(PhaseReport::from_recorder("users", &rec, t.as_secs_f64()));
    total.merge(&rec);
    elapsed += t;
    let missing = ids.iter().filter(|i| i.is_none()).count();
    if missing > 0 && overdue() {
        return Ok(CycleOutcome {
            incomplete: Some(format!(
                "time limit reached in the users phase: {missing} of {} users not done",
                ids.len()
            )),
            phases,
            total,
            elapsed,
        });
    }
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
    let (gids, rec, t) = match_create_phase(
        client,
        concurrency,
        deadline,
        gnames.clone(),
        plan::find_group,
        plan::create_group,
    )
    .await;
    phases.push(PhaseReport::from_recorder("groups", &rec, t.as_secs_f64()));
    total.merge(&rec);
    elapsed += t;
    let missing = gids.iter().filter(|i| i.is_none()).count();
    if missing > 0 && overdue() {
        return Ok(CycleOutcome {
            incomplete: Some(format!(
                "time limit reached in the groups phase: {missing} of {} groups not done",
                gids.len()
            )),
            phases,
            total,
            elapsed,
        });
    }
    if missing > 0 {
        return Err(LoadError::Seed(format!(
            "entra cycle: groups were not created: {}",
            rec.samples.first().map(String::as_str).unwrap_or("?")
        )));
    }
    let gids: Vec<String> = gids.into_iter().map(Option::unwrap_or_default).collect();

    // Phase 3: memberships. The PATCHes of one group go one after another (the next when the
    // previous is answered), groups in parallel, the groups with most PATCHes first.
    let mut per_group: Vec<Vec<plan::Req>> = vec![Vec::new(); gids.len()];
    for s in &member_steps {
        match s {
            CycleStep::AddMembers(g, members) => {
                let ids: Vec<&str> = members
                    .iter()
                    .map(|&i| state.users[base + i].id.as_str())
                    .collect();
                per_group[*g].push(plan::add_members(&gids[*g], &ids));
            }
            _ => unreachable!("phase 3 holds member steps"),
        }
    }
    let n_patches: usize = per_group.iter().map(Vec::len).sum();
    per_group.sort_by_key(|p| std::cmp::Reverse(p.len()));
    eprintln!(
        "entra cycle: {} memberships in {n_patches} PATCHes…",
        dir.memberships()
    );
    let per_group = Arc::new(per_group);
    let job_groups = per_group.clone();
    let (done, rec, t) = for_each(
        client,
        per_group.len(),
        concurrency,
        deadline,
        move |c, i, mut rec| {
            let groups = job_groups.clone();
            async move {
                let mut sent = 0usize;
                for req in &groups[i] {
                    if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                        break;
                    }
                    c.timed(&mut rec, req).await;
                    sent += 1;
                }
                (Some(sent), rec)
            }
        },
    )
    .await;
    phases.push(PhaseReport::from_recorder(
        "memberships",
        &rec,
        t.as_secs_f64(),
    ));
    total.merge(&rec);
    elapsed += t;
    let sent: usize = done.iter().map(|d| d.unwrap_or(0)).sum();
    let incomplete = (sent < n_patches).then(|| {
        format!(
            "time limit reached in the memberships phase: {} of {n_patches} PATCHes not sent",
            n_patches - sent
        )
    });
    for (g, (&(start, len), name)) in dir.groups.iter().zip(gnames.iter()).enumerate() {
        state.groups.push(SeedGroup {
            id: gids[g].clone(),
            name: name.clone(),
            start: base + start,
            len,
        });
    }
    Ok(CycleOutcome {
        incomplete,
        phases,
        total,
        elapsed,
    })
}
