//! The benchmark data a server holds: which users and groups the load tool created, kept in a
//! JSON state file between invocations so that workloads run one after another on the same
//! data (`--state`), and the seeding that creates what is missing through the SCIM API.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::LoadError;
use super::engine::{Client, for_each};
use super::hist::Recorder;
use super::plan;

/// A user created by the tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedUser {
    /// Server-assigned id.
    pub id: String,
    /// `userName`.
    pub user_name: String,
}

/// A group created by the tool; its members are `users[start .. start + len]` of the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedGroup {
    /// Server-assigned id.
    pub id: String,
    /// `displayName`.
    pub name: String,
    /// Index of the first member in [`State::users`].
    pub start: usize,
    /// Number of members.
    pub len: usize,
}

/// Everything the tool created on one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Prefix of every name the tool creates (unique per state).
    pub prefix: String,
    /// Users, in creation order; the `i`-th is named [`State::user_name`]`(i)`.
    pub users: Vec<SeedUser>,
    /// Groups.
    pub groups: Vec<SeedGroup>,
}

impl State {
    /// An empty state with a fresh prefix.
    pub fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            prefix: format!("bench-{}", &id[..8]),
            users: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// Reads the state file, or a fresh state when it does not exist.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::new()),
            Err(source) => Err(LoadError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Writes the state file.
    pub fn save(&self, path: &Path) -> Result<(), LoadError> {
        std::fs::write(path, serde_json::to_vec(self)?).map_err(|source| LoadError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// `userName` of the `i`-th user.
    pub fn user_name(&self, i: usize) -> String {
        format!("{}-u{i:07}@bench.example", self.prefix)
    }

    /// `displayName` of a group.
    pub fn group_name(&self, label: &str) -> String {
        format!("{}-g-{label}", self.prefix)
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

/// The `id` of a created resource, from a `201` body.
pub fn id_of(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("id")?.as_str().map(str::to_owned)
}

/// The id of the first resource of a list response, `Some(None)` for an empty list, `None`
/// when the body is not a list response.
pub fn first_listed_id(body: &[u8]) -> Option<Option<String>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let total = v.get("totalResults")?.as_u64()?;
    if total == 0 {
        return Some(None);
    }
    Some(
        v.get("Resources")?
            .get(0)?
            .get("id")?
            .as_str()
            .map(str::to_owned),
    )
}

/// Creates users `from .. to` (named by [`State::user_name`]); on `409` looks the user up.
/// Returns their ids in order and the recorder.
pub async fn create_users(
    client: &Client,
    names: Vec<String>,
    concurrency: usize,
) -> Result<(Vec<SeedUser>, Recorder), LoadError> {
    let n = names.len();
    let names = std::sync::Arc::new(names);
    let job_names = names.clone();
    let (ids, rec, _) = for_each(client, n, concurrency, None, move |c, i, mut rec| {
        let names = job_names.clone();
        async move {
            let name = &names[i];
            let ext = format!("ext-{name}");
            let req = plan::create_user(name, &ext);
            // Seeding retries a request that got no answer (a restarting or saturated
            // server), a few times.
            let mut a = None;
            for attempt in 0..4u64 {
                a = c.timed(&mut rec, &req).await;
                if a.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
            }
            let id = match a {
                Some(a) if a.status == 201 || a.status == 200 => id_of(&a.body),
                Some(a) if a.status == 409 => c
                    .timed(&mut rec, &plan::find_user(name))
                    .await
                    .and_then(|a| first_listed_id(&a.body).flatten()),
                _ => None,
            };
            (id, rec)
        }
    })
    .await;
    let mut users = Vec::with_capacity(n);
    for (i, id) in ids.into_iter().enumerate() {
        let id = id.ok_or_else(|| {
            LoadError::Seed(format!(
                "creating user {} failed: {}",
                names[i],
                rec.samples
                    .first()
                    .map(String::as_str)
                    .unwrap_or("no id in the answer")
            ))
        })?;
        users.push(SeedUser {
            id,
            user_name: names[i].clone(),
        });
    }
    Ok((users, rec))
}

/// Makes sure the state holds at least `n` users, creating the missing ones.
pub async fn ensure_users(
    client: &Client,
    state: &mut State,
    n: usize,
    concurrency: usize,
) -> Result<(), LoadError> {
    if state.users.len() >= n {
        return Ok(());
    }
    let names: Vec<String> = (state.users.len()..n).map(|i| state.user_name(i)).collect();
    let t = std::time::Instant::now();
    eprintln!(
        "seeding {} users ({} stored)…",
        names.len(),
        state.users.len()
    );
    let (users, _) = create_users(client, names, concurrency).await?;
    state.users.extend(users);
    eprintln!(
        "seeded up to {n} users in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Adds users `members` (state indices) to group `group_id` in Entra-sized `PATCH`es.
pub async fn add_members(
    client: &Client,
    state: &State,
    group_id: &str,
    members: std::ops::Range<usize>,
    concurrency: usize,
) -> Result<Recorder, LoadError> {
    let batches: Vec<Vec<String>> = members
        .collect::<Vec<_>>()
        .chunks(plan::ENTRA_MEMBER_BATCH)
        .map(|c| c.iter().map(|&i| state.users[i].id.clone()).collect())
        .collect();
    let n = batches.len();
    let batches = std::sync::Arc::new(batches);
    let gid: std::sync::Arc<str> = group_id.into();
    let (ok, rec, _) = for_each(client, n, concurrency, None, move |c, i, mut rec| {
        let batches = batches.clone();
        let gid = gid.clone();
        async move {
            let a = c
                .timed(&mut rec, &plan::add_members(&gid, &batches[i]))
                .await;
            (
                a.filter(|a| (200..300).contains(&a.status)).map(|_| ()),
                rec,
            )
        }
    })
    .await;
    if ok.iter().any(Option::is_none) {
        return Err(LoadError::Seed(format!(
            "adding members to group {group_id} failed: {}",
            rec.samples.first().map(String::as_str).unwrap_or("?")
        )));
    }
    Ok(rec)
}

/// The index of a group in the state whose members are exactly the first `size` users,
/// creating and filling one when there is none.
pub async fn ensure_group(
    client: &Client,
    state: &mut State,
    size: usize,
    concurrency: usize,
) -> Result<usize, LoadError> {
    if let Some(i) = state
        .groups
        .iter()
        .position(|g| g.start == 0 && g.len == size)
    {
        return Ok(i);
    }
    ensure_users(client, state, size, concurrency).await?;
    let name = state.group_name(&format!("size{size}-{}", state.groups.len()));
    let mut rec = Recorder::default();
    let a = client
        .timed(&mut rec, &plan::create_group(&name, &format!("ext-{name}")))
        .await;
    let id = a
        .filter(|a| (200..300).contains(&a.status))
        .and_then(|a| id_of(&a.body))
        .ok_or_else(|| {
            LoadError::Seed(format!(
                "creating group {name} failed: {}",
                rec.samples.first().map(String::as_str).unwrap_or("no id")
            ))
        })?;
    let t = std::time::Instant::now();
    eprintln!("seeding a group of {size} members…");
    add_members(client, state, &id, 0..size, concurrency).await?;
    eprintln!("seeded in {:.1}s", t.elapsed().as_secs_f64());
    state.groups.push(SeedGroup {
        id,
        name,
        start: 0,
        len: size,
    });
    Ok(state.groups.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_bodies() {
        assert_eq!(id_of(br#"{"id":"abc","userName":"x"}"#), Some("abc".into()));
        assert_eq!(id_of(b"not json"), None);
        assert_eq!(
            first_listed_id(br#"{"totalResults":0,"Resources":[]}"#),
            Some(None)
        );
        assert_eq!(
            first_listed_id(br#"{"totalResults":1,"Resources":[{"id":"u1"}]}"#),
            Some(Some("u1".into()))
        );
        assert_eq!(first_listed_id(br#"{"id":"u1"}"#), None);
    }

    #[test]
    fn state_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let mut s = State::load(&path).unwrap();
        assert!(s.prefix.starts_with("bench-"));
        assert_eq!(
            s.user_name(42),
            format!("{}-u0000042@bench.example", s.prefix)
        );
        s.users.push(SeedUser {
            id: "1".into(),
            user_name: s.user_name(0),
        });
        s.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), s);
    }
}
