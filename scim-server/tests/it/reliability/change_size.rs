//! Issue 13 defect 2, the change log's share: a change record stores what changed, not two
//! copies of the resource. A Bulk of small PATCHes on a large user writes small records (with
//! whole before/after snapshots, each record of the run below would have taken about 380 KB,
//! 19 MB for the Bulk), and `audit verify` still passes. SQLite and PostgreSQL, through the
//! real binary.

use super::*;
use scim_core::change::{Change, MAX_DELTA_BYTES};
use serde_json::json;

use scim_core::bulk::BULK_REQUEST_URN as BULK;
const PATCHES: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_of_small_patches_on_a_large_user_writes_small_change_records() {
    let dir = tempfile::tempdir().unwrap();
    for (db, url, _pg) in databases(&dir).await {
        let launch = Launch::new(&url);
        let s = launch.start();
        // About 190 KB of addresses (under the 256 KiB resource limit).
        let addresses: Vec<Value> = (0..180)
            .map(|i| json!({"type": "other", "formatted": format!("{i:04} {}", "a".repeat(1000))}))
            .collect();
        let created = s
            .call(
                Method::POST,
                "/Users",
                Some(json!({"schemas": [USER_URN], "userName": "large", "addresses": addresses})),
            )
            .await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{db}: {}",
            created.body
        );
        let id = created.body["id"].as_str().unwrap().to_string();
        let user_bytes = created.body.to_string().len();

        let operations: Vec<Value> = (0..PATCHES)
            .map(|i| {
                json!({
                    "method": "PATCH",
                    "path": format!("/Users/{id}"),
                    "data": {"schemas": [PATCH_OP], "Operations": [
                        {"op": "replace", "path": "title", "value": format!("title {i}")}
                    ]}
                })
            })
            .collect();
        let bulk = s
            .call(
                Method::POST,
                "/Bulk",
                Some(json!({"schemas": [BULK], "Operations": operations})),
            )
            .await;
        assert_eq!(bulk.status, StatusCode::OK, "{db}: {}", bulk.body);
        let statuses: Vec<&str> = bulk.body["Operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["status"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(statuses, vec!["200"; PATCHES], "{db}");
        drop(s);

        let store = scim_server::store::open_store(&url).await.unwrap();
        let records = store.changes_after("default", 0, 10_000).await.unwrap();
        let of_user: Vec<_> = records.iter().filter(|r| r.resource_id == id).collect();
        let patches: Vec<_> = of_user.iter().filter(|r| r.operation == "patch").collect();
        assert_eq!(patches.len(), PATCHES, "{db}");
        let patch_bytes: usize = patches.iter().map(|r| r.change_json.len()).sum();
        let create_bytes = of_user[0].change_json.len();
        eprintln!(
            "{db}: user {user_bytes} B; create record {create_bytes} B; {PATCHES} PATCH \
             records {patch_bytes} B in all"
        );
        assert!(
            patch_bytes <= PATCHES * 512,
            "{db}: {PATCHES} one-attribute PATCH records took {patch_bytes} bytes"
        );
        assert!(
            create_bytes <= MAX_DELTA_BYTES + 4096 && create_bytes < user_bytes / 4,
            "{db}: the create record of a {user_bytes}-byte user took {create_bytes} bytes"
        );
        // What the last record says: the path, its new value and the small old one.
        let last: Change = serde_json::from_str(&patches[PATCHES - 1].change_json).unwrap();
        assert_eq!(last.changed_paths, ["title"]);
        assert_eq!(
            serde_json::to_value(&last.delta).unwrap(),
            json!([{"path": "title", "value": format!("title {}", PATCHES - 1), "old": format!("title {}", PATCHES - 2)}])
        );
        let (ok, out) = launch.run(&["audit", "verify"]);
        assert!(ok, "{db}: audit verify: {out}");
    }
}
