//! A SQLite database that cannot grow: the server runs with a file-size limit (`ulimit -f`, with
//! SIGXFSZ ignored, so a write past the limit fails as on a full disk). Writes past it get a
//! clear 507 or 503 (never 500, never a half-applied write), reads keep working, and after a
//! restart without the limit every acknowledged write is there, the file passes
//! `PRAGMA integrity_check`, `audit verify` passes and writes work again. Needs only `sh`; no
//! root, no mount.

use super::*;
use serde_json::json;

#[tokio::test]
async fn a_sqlite_file_that_cannot_grow_gives_a_clear_error_and_no_corruption() {
    if !std::path::Path::new("/bin/sh").exists() {
        eprintln!("skipping the disk-full test: no /bin/sh to apply a file-size limit");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scim.db");
    let url = format!("sqlite://{}", path.display());
    let launch = Launch::new(&url);
    let s = launch.start();
    let first = s.call(Method::POST, "/Users", Some(user("first"))).await;
    assert_eq!(first.status, StatusCode::CREATED);
    drop(s);

    // Room for a few hundred kilobytes more than the files hold now (WAL included).
    let used: u64 = ["scim.db", "scim.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0);
    let blocks = (used + 600 * 1024) / 512;
    let mut limited = launch.clone();
    limited.shell_prefix = Some(format!("ulimit -f {blocks}; trap '' XFSZ;"));
    let s = limited.start();
    let mut acked = vec![first.body["id"].as_str().unwrap().to_string()];
    let mut refused = None;
    for n in 0..200 {
        let r = s
            .call(
                Method::POST,
                "/Users",
                Some(
                    json!({"schemas": [USER_URN], "userName": format!("filler-{n}"),
                    "title": "f".repeat(60 * 1024)}),
                ),
            )
            .await;
        match r.status {
            StatusCode::CREATED => acked.push(r.body["id"].as_str().unwrap().to_string()),
            _ => {
                refused = Some(r);
                break;
            }
        }
    }
    let refused = refused.expect("the file-size limit was never reached");
    assert!(
        matches!(refused.status.as_u16(), 503 | 507),
        "a full disk answered {}: {}",
        refused.status,
        refused.body
    );
    assert!(
        refused.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("nothing was changed")),
        "{}",
        refused.body
    );
    // Still full: later writes are refused alike; reads work.
    for n in 0..3 {
        let r = s
            .call(
                Method::POST,
                "/Users",
                Some(json!({"schemas": [USER_URN],
                "userName": format!("again-{n}"), "title": "f".repeat(60 * 1024)})),
            )
            .await;
        assert_ne!(
            r.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}\n{}",
            r.body,
            s.stderr_text()
        );
    }
    let read = s
        .call(Method::GET, &format!("/Users/{}", acked[0]), None)
        .await;
    assert_eq!(read.status, StatusCode::OK);
    eprintln!(
        "disk full after {} acknowledged creates: {} {}",
        acked.len(),
        refused.status,
        refused.body["detail"]
    );
    s.kill9();

    // Without the limit: nothing lost, nothing corrupt, writable again.
    let s = launch.start();
    for id in &acked {
        let r = s.call(Method::GET, &format!("/Users/{id}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "acknowledged {id} lost");
    }
    let again = s
        .call(Method::POST, "/Users", Some(user("after-full")))
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    drop(s);
    let store = scim_server::store::SqliteStore::open(&url).await.unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let (ok, out) = launch.run(&["audit", "verify"]);
    assert!(ok, "{out}");
}
