//! `kill -9` of the real binary under concurrent writers, on SQLite and PostgreSQL: every
//! acknowledged write survives, no write is half-applied (a PATCH sets two attributes together;
//! they never disagree), every stored version has its change record, and `audit verify` passes.
//! Bounded: three kills per database, about two seconds of load each.

use super::*;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

const WRITERS: usize = 6;
const KILLS: usize = 3;

/// What a writer was told: resource id -> (version, value) acknowledged last.
type Acks = Arc<Mutex<HashMap<String, (u64, String)>>>;

async fn writer(s: Arc<Proc>, tag: String, acks: Acks, stop: Arc<AtomicBool>) {
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let Ok(r) = s
            .send(
                Method::POST,
                "/Users",
                Some(
                    &serde_json::to_vec(&json!({
                        "schemas": [USER_URN], "userName": format!("{tag}-{n}"),
                        "title": "v0", "displayName": "v0"
                    }))
                    .unwrap(),
                ),
                &[],
            )
            .await
        else {
            return;
        };
        if r.status != StatusCode::CREATED {
            continue;
        }
        let id = r.body["id"].as_str().unwrap().to_string();
        acks.lock().unwrap().insert(id.clone(), (1, "v0".into()));
        for k in 1..=3u64 {
            let value = format!("v{k}");
            let body = json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "value": {"title": value, "displayName": value}}
            ]});
            let Ok(r) = s
                .send(
                    Method::PATCH,
                    &format!("/Users/{id}"),
                    Some(&serde_json::to_vec(&body).unwrap()),
                    &[],
                )
                .await
            else {
                return;
            };
            if r.status != StatusCode::OK {
                break;
            }
            let version = r.body["meta"]["version"]
                .as_str()
                .and_then(|v| v.trim_start_matches("W/").trim_matches('"').parse().ok())
                .unwrap_or(k + 1);
            acks.lock().unwrap().insert(id.clone(), (version, value));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_concurrent_writers_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    for (db, url, _pg) in databases(&dir).await {
        let launch = Launch::new(&url);
        let acks: Acks = Arc::default();
        for round in 0..KILLS {
            let s = Arc::new(launch.start());
            let stop = Arc::new(AtomicBool::new(false));
            let tasks: Vec<_> = (0..WRITERS)
                .map(|w| {
                    tokio::spawn(writer(
                        s.clone(),
                        format!("r{round}w{w}"),
                        acks.clone(),
                        stop.clone(),
                    ))
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            // SIGKILL while requests are in flight.
            let pid = s.child.id();
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            stop.store(true, Ordering::SeqCst);
            for t in tasks {
                let _ = t.await;
            }
            drop(s);
        }
        let acked = acks.lock().unwrap().clone();
        assert!(
            acked.len() >= WRITERS,
            "{db}: only {} acknowledged creates",
            acked.len()
        );

        // Every acknowledged write is there, whole.
        let s = launch.start();
        for (id, (version, value)) in &acked {
            let r = s.call(Method::GET, &format!("/Users/{id}"), None).await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "{db}: acknowledged user {id} lost: {}",
                r.body
            );
            let stored: u64 = r.body["meta"]["version"]
                .as_str()
                .unwrap()
                .trim_start_matches("W/")
                .trim_matches('"')
                .parse()
                .unwrap();
            assert!(
                stored >= *version,
                "{db}: {id} at version {stored}, acknowledged {version}"
            );
            assert_eq!(
                r.body["title"], r.body["displayName"],
                "{db}: {id} half-applied: {}",
                r.body
            );
            if stored == *version {
                assert_eq!(r.body["title"], value.as_str(), "{db}: {id}");
            }
        }
        drop(s);

        // Every stored version has exactly its change record.
        let store = scim_server::store::open_store(&url).await.unwrap();
        let mut records: HashMap<String, Vec<u64>> = HashMap::new();
        let mut after = 0;
        loop {
            let batch = store.changes_after("default", after, 1000).await.unwrap();
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for r in batch {
                records.entry(r.resource_id).or_default().push(r.version);
            }
        }
        let registry = scim_core::schema::SchemaRegistry::builtin();
        let rt = registry.resource_type("User").unwrap();
        for id in acked.keys() {
            let stored = store
                .get("default", rt, id, Default::default())
                .await
                .unwrap()
                .unwrap();
            let versions = records.get(id).cloned().unwrap_or_default();
            let expected: Vec<u64> = (1..=stored.meta.version).collect();
            assert_eq!(versions, expected, "{db}: change records of {id}");
        }
        let (ok, out) = launch.run(&["audit", "verify"]);
        assert!(ok, "{db}: {out}");
        eprintln!(
            "{db}: {} acknowledged users survived {KILLS} kills",
            acked.len()
        );
    }
}
