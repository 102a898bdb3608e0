//! End-to-end tests against the real binary over HTTP on 127.0.0.1, on SQLite and on PostgreSQL:
//! a full Entra ID provisioning cycle, a full Okta cycle, and concurrency (one `userName` created
//! ten times at once, forty concurrent member adds, `If-Match` updates that never lose a write).
//!
//! PostgreSQL: each run creates a fresh database through `SCIM_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432`). When that variable is unset and no server answers, the
//! PostgreSQL runs are skipped with a note; when it is set (as `.ci/run` does) they are required.

use crate::support::PgDatabase;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const TOKEN: &str = "e2e-token-0123456789abcdefghijklmnopqrstuv";
use scim_core::patch::PATCH_OP_URN as PATCH_OP;
use scim_core::schema::ENTERPRISE_USER_URN as ENTERPRISE;
use scim_core::schema::GROUP_URN;
use scim_core::schema::USER_URN;

/// A running `scim-server serve` child process.
struct Server {
    child: Child,
    base: String,
    client: Client,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgDatabase>,
}

impl Server {
    fn spawn(database_url: &str, dir: Option<tempfile::TempDir>, pg: Option<PgDatabase>) -> Server {
        Server::spawn_with(database_url, dir, pg, &[])
    }

    fn spawn_with(
        database_url: &str,
        dir: Option<tempfile::TempDir>,
        pg: Option<PgDatabase>,
        env: &[(&str, &str)],
    ) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scim-server"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SCIM_LISTEN", "127.0.0.1:0")
            .env("SCIM_DATABASE_URL", database_url)
            .env("SCIM_TOKEN", TOKEN)
            .env("SCIM_LOG", "warn")
            .env("SCIM_SHUTDOWN_GRACE_SECONDS", "5")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning scim-server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("scim-server listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!("scim-server did not report its address within 60 s");
            }
        };
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            // The HTTPS test serves a self-signed certificate.
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        Server {
            child,
            base,
            client,
            _dir: dir,
            _pg: pg,
        }
    }

    async fn sqlite() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("scim.db").display());
        Server::spawn(&url, Some(dir), None)
    }

    async fn postgres() -> Option<Server> {
        let pg = PgDatabase::create().await?;
        let url = pg.url.clone();
        Some(Server::spawn(&url, None, Some(pg)))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = self
            .client
            .request(method, url)
            .header("authorization", format!("Bearer {TOKEN}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/scim+json; charset=utf-8")
                .body(serde_json::to_vec(&body).unwrap());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        (status, headers, body)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (s, _, b) = self.send(method, path, body, &[]).await;
        (s, b)
    }

    async fn expect(&self, method: Method, path: &str, body: Option<Value>, status: u16) -> Value {
        let (s, b) = self.call(method.clone(), path, body).await;
        assert_eq!(s.as_u16(), status, "{method} {path}: {b}");
        b
    }

    /// Stops the server with SIGTERM and checks it exits cleanly (graceful shutdown).
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "scim-server exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("scim-server did not stop within 30 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The Entra ID provisioning cycle, in the order Entra sends it (reference §1.7), in both the
/// legacy and the `aadOptscim062020` dialects.
async fn entra_cycle(s: &Server) {
    // Test Connection: a random GUID that matches nothing, without a User-Agent (reqwest sends
    // none by default) and with the flag appended as an unknown query parameter.
    let probe = format!(
        "/Users?aadOptscim062020&filter={}",
        enc("userName eq \"5f1c0c8e-3c6a-4df0-9a7e-1f0e0c3a9b11\"")
    );
    let r = s.expect(Method::GET, &probe, None, 200).await;
    assert_eq!(r["totalResults"], 0);
    assert_eq!(r["Resources"], json!([]));
    let gprobe = format!(
        "/Groups?excludedAttributes=members&filter={}",
        enc("displayName eq \"5f1c0c8e-probe\"")
    );
    assert_eq!(
        s.expect(Method::GET, &gprobe, None, 200).await["totalResults"],
        0
    );

    // Schema discovery.
    let schemas = s.expect(Method::GET, "/Schemas", None, 200).await;
    assert!(
        schemas["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == ENTERPRISE)
    );

    // Initial cycle: match, then create (flag-era shape) ...
    let match_alice = format!("/Users?filter={}", enc("userName eq \"alice@contoso.com\""));
    assert_eq!(
        s.expect(Method::GET, &match_alice, None, 200).await["totalResults"],
        0
    );
    let (status, headers, alice) = s
        .send(
            Method::POST,
            "/Users",
            Some(json!({
                "schemas": [USER_URN, ENTERPRISE],
                "externalId": "alice", "userName": "alice@contoso.com", "active": true,
                "emails": [{"primary": true, "type": "work", "value": "alice@contoso.com"}],
                "meta": {"resourceType": "User"},
                "name": {"formatted": "Alice Smith", "familyName": "Smith", "givenName": "Alice"},
                "roles": []
            })),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{alice}");
    assert_eq!(
        headers.get("location").unwrap().to_str().unwrap(),
        alice["meta"]["location"].as_str().unwrap()
    );
    assert!(headers.get("etag").is_some());
    let alice_id = id(&alice);
    // ... and the legacy shape: nulls, top-level enterprise attributes, a malformed URN.
    let bob = s
        .expect(
            Method::POST,
            "/Users",
            Some(json!({
                "schemas": [USER_URN, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
                "externalId": "bob", "userName": "bob@contoso.com", "active": true,
                "addresses": null, "displayName": "Bob Jones",
                "emails": [{"type": "work", "value": "bob@contoso.com", "primary": true}],
                "meta": {"resourceType": "User"}, "name": {"familyName": "Jones", "givenName": "Bob"},
                "phoneNumbers": null, "preferredLanguage": null, "title": null,
                "department": "Sales", "manager": null
            })),
            201,
        )
        .await;
    let bob_id = id(&bob);
    assert_eq!(bob[ENTERPRISE]["department"], "Sales");

    // Reference pass: the manager, then Entra's check.
    let manager =
        patch(json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": bob_id}]));
    let r = s
        .expect(
            Method::PATCH,
            &format!("/Users/{alice_id}"),
            Some(manager),
            200,
        )
        .await;
    assert_eq!(r[ENTERPRISE]["manager"]["value"], bob_id);
    let check = format!(
        "/Users?filter={}&attributes=id",
        enc(&format!("id eq \"{alice_id}\" and manager eq \"{bob_id}\""))
    );
    assert_eq!(
        s.expect(Method::GET, &check, None, 200).await["totalResults"],
        1
    );

    // Attribute changes, legacy dialect: one op per attribute, capitalised ops, value paths.
    let legacy = patch(json!([
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "alice.smith@contoso.com"},
        {"op": "Replace", "path": "name.familyName", "value": "Smith-Jones"},
        {"op": "Add", "path": "title", "value": "Engineer"},
        {"op": "Replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"}
    ]));
    let r = s
        .expect(
            Method::PATCH,
            &format!("/Users/{alice_id}"),
            Some(legacy),
            200,
        )
        .await;
    assert_eq!(r["emails"][0]["value"], "alice.smith@contoso.com");
    assert_eq!(r["name"]["familyName"], "Smith-Jones");
    assert_eq!(r["title"], "Engineer");
    assert_eq!(r["addresses"][0]["streetAddress"], "1 Main St");
    // Compliant dialect: a path-less replace with dotted and URN keys, with `active` and an
    // attribute no schema declares riding along.
    let compliant = patch(json!([{"op": "replace", "value": {
        "displayName": "Alice S.",
        "name.givenName": "Alicia",
        format!("{ENTERPRISE}:employeeNumber"): "701984",
        "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:tag": "x1",
        "active": true
    }}]));
    let r = s
        .expect(
            Method::PATCH,
            &format!("/Users/{alice_id}"),
            Some(compliant),
            200,
        )
        .await;
    assert_eq!(r["displayName"], "Alice S.");
    assert_eq!(r["name"]["givenName"], "Alicia");
    assert_eq!(r[ENTERPRISE]["employeeNumber"], "701984");
    assert!(r.get("name.givenName").is_none());

    // Groups: match, create without members, add members.
    let match_group = format!(
        "/Groups?excludedAttributes=members&filter={}",
        enc("displayName eq \"Sales\"")
    );
    assert_eq!(
        s.expect(Method::GET, &match_group, None, 200).await["totalResults"],
        0
    );
    let group = s
        .expect(
            Method::POST,
            "/Groups",
            Some(json!({
                "schemas": [GROUP_URN, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                "externalId": "8aa1a0c0", "displayName": "Sales", "meta": {"resourceType": "Group"}
            })),
            201,
        )
        .await;
    let gpath = format!("/Groups/{}", id(&group));
    let carol = s
        .expect(
            Method::POST,
            "/Users",
            Some(json!({"userName": "carol@contoso.com"})),
            201,
        )
        .await;
    let carol_id = id(&carol);
    let add = patch(json!([{"op": "Add", "path": "members", "value": [
        {"$ref": null, "value": alice_id}, {"$ref": null, "value": bob_id}, {"value": carol_id}
    ]}]));
    s.expect(Method::PATCH, &gpath, Some(add), 204).await;
    let lean = s
        .expect(
            Method::GET,
            &format!("{gpath}?excludedAttributes=members"),
            None,
            200,
        )
        .await;
    assert!(lean.get("members").is_none());
    let mut want = vec![alice_id.clone(), bob_id.clone(), carol_id.clone()];
    want.sort();
    assert_eq!(
        member_ids(&s.expect(Method::GET, &gpath, None, 200).await),
        want
    );
    // Legacy remove with a value array removes only the listed members.
    let remove = patch(
        json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": carol_id}]}]),
    );
    s.expect(Method::PATCH, &gpath, Some(remove), 204).await;
    let mut want = vec![alice_id.clone(), bob_id.clone()];
    want.sort();
    assert_eq!(
        member_ids(&s.expect(Method::GET, &gpath, None, 200).await),
        want
    );
    // Compliant remove by filter.
    let remove =
        patch(json!([{"op": "remove", "path": format!("members[value eq \"{bob_id}\"]")}]));
    s.expect(Method::PATCH, &gpath, Some(remove), 204).await;
    assert_eq!(
        member_ids(&s.expect(Method::GET, &gpath, None, 200).await),
        vec![alice_id.clone()]
    );
    // Rename.
    let rename = patch(json!([{"op": "Replace", "path": "displayName", "value": "Sales EMEA"}]));
    s.expect(Method::PATCH, &gpath, Some(rename), 204).await;

    // Disable with the string "False", still readable by id and filter; re-enable with "True".
    let disable = patch(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    let r = s
        .expect(
            Method::PATCH,
            &format!("/Users/{alice_id}"),
            Some(disable),
            200,
        )
        .await;
    assert_eq!(r["active"], false);
    assert_eq!(
        s.expect(Method::GET, &format!("/Users/{alice_id}"), None, 200)
            .await["active"],
        false
    );
    let found = s
        .expect(
            Method::GET,
            &format!("/Users?filter={}", enc("userName eq \"alice@contoso.com\"")),
            None,
            200,
        )
        .await;
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["Resources"][0]["active"], false);
    let enable = patch(json!([{"op": "Replace", "path": "active", "value": "True"}]));
    let r = s
        .expect(
            Method::PATCH,
            &format!("/Users/{alice_id}"),
            Some(enable),
            200,
        )
        .await;
    assert_eq!(r["active"], true);

    // Hard delete: the user and its memberships.
    s.expect(Method::DELETE, &format!("/Users/{alice_id}"), None, 204)
        .await;
    s.expect(Method::GET, &format!("/Users/{alice_id}"), None, 404)
        .await;
    assert!(member_ids(&s.expect(Method::GET, &gpath, None, 200).await).is_empty());
    s.expect(Method::DELETE, &gpath, None, 204).await;
    s.expect(Method::GET, &gpath, None, 404).await;
}

/// The Okta cycle (reference §3.1): create with password, PUT updates, paging with count=100,
/// deactivation by PATCH, group push.
async fn okta_cycle(s: &Server) {
    let match_path = format!(
        "/Users?filter={}&startIndex=1&count=100",
        enc("userName eq \"test.user@okta.local\"")
    );
    assert_eq!(
        s.expect(Method::GET, &match_path, None, 200).await["totalResults"],
        0
    );
    let create = json!({
        "schemas": [USER_URN], "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [], "password": "1mz050nq", "active": true
    });
    let user = s
        .expect(Method::POST, "/Users", Some(create.clone()), 201)
        .await;
    assert!(user.get("password").is_none());
    let uid = id(&user);
    let dup = s.expect(Method::POST, "/Users", Some(create), 409).await;
    assert_eq!(dup["scimType"], "uniqueness");
    assert_eq!(dup["status"], "409");
    // The uppercased userName finds the user (caseExact false).
    let upper = format!(
        "/Users?filter={}",
        enc("userName eq \"TEST.USER@OKTA.LOCAL\"")
    );
    assert_eq!(
        s.expect(Method::GET, &upper, None, 200).await["totalResults"],
        1
    );
    // Unknown id.
    let missing = s
        .expect(
            Method::GET,
            "/Users/010101001010101011001010101011",
            None,
            404,
        )
        .await;
    assert_eq!(missing["status"], "404");
    assert!(missing["detail"].is_string());

    // PUT updates: Okta GETs, then PUTs the full object back (id, groups, meta included).
    let mut full = s
        .expect(Method::GET, &format!("/Users/{uid}"), None, 200)
        .await;
    full["name"]["familyName"] = json!("Updated");
    full["password"] = json!("n3wpassw0rd");
    let put = s
        .expect(
            Method::PUT,
            &format!("/Users/{uid}"),
            Some(full.clone()),
            200,
        )
        .await;
    assert_eq!(put["name"]["familyName"], "Updated");
    assert_eq!(put["id"], uid);
    // A PUT without `active` keeps it.
    full.as_object_mut().unwrap().remove("active");
    let put = s
        .expect(Method::PUT, &format!("/Users/{uid}"), Some(full), 200)
        .await;
    assert_eq!(put["active"], true);

    // Paging with count=100 and small pages: stable, complete, integers.
    for i in 0..6 {
        s.expect(
            Method::POST,
            "/Users",
            Some(json!({"userName": format!("page{i}@okta.local"), "name": {"givenName": "P", "familyName": format!("{i}")},
                        "emails": [{"value": format!("page{i}@okta.local")}], "active": true})),
            201,
        )
        .await;
    }
    let all = s
        .expect(Method::GET, "/Users?startIndex=1&count=100", None, 200)
        .await;
    let total = all["totalResults"].as_u64().unwrap();
    assert!(total >= 7);
    assert_eq!(all["Resources"].as_array().unwrap().len() as u64, total);
    let mut seen = Vec::new();
    let mut start = 1;
    while start <= total {
        let page = s
            .expect(
                Method::GET,
                &format!("/Users?startIndex={start}&count=2"),
                None,
                200,
            )
            .await;
        assert_eq!(page["startIndex"], start);
        assert!(page["itemsPerPage"].is_u64());
        for r in page["Resources"].as_array().unwrap() {
            seen.push(id(r));
        }
        start += 2;
    }
    let listed: Vec<String> = all["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .collect();
    assert_eq!(
        seen, listed,
        "paging must follow the same order as the full list"
    );

    // Deactivation by a path-less PATCH.
    let deactivate = patch(json!([{"op": "replace", "value": {"active": false}}]));
    let r = s
        .expect(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(deactivate),
            200,
        )
        .await;
    assert_eq!(r["active"], false);

    // Group push.
    let group = s
        .expect(
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP_URN], "displayName": "Test SCIMv2", "members": []})),
            201,
        )
        .await;
    let gid = id(&group);
    let gpath = format!("/Groups/{gid}");
    let others: Vec<String> = all["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .filter(|i| *i != uid)
        .take(2)
        .collect();
    let rename = patch(
        json!([{"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2 renamed"}}]),
    );
    s.expect(Method::PATCH, &gpath, Some(rename), 204).await;
    let membership = patch(json!([
        {"op": "add", "path": "members", "value": [{"value": uid, "display": "test.user@okta.local"}, {"value": others[0]}]}
    ]));
    s.expect(Method::PATCH, &gpath, Some(membership), 204).await;
    let membership = patch(json!([
        {"op": "remove", "path": format!("members[value eq \"{}\"]", others[0])},
        {"op": "add", "path": "members", "value": [{"value": others[1]}]}
    ]));
    s.expect(Method::PATCH, &gpath, Some(membership), 204).await;
    let g = s.expect(Method::GET, &gpath, None, 200).await;
    assert_eq!(g["displayName"], "Test SCIMv2 renamed");
    let mut want = vec![uid.clone(), others[1].clone()];
    want.sort();
    assert_eq!(member_ids(&g), want);
    let full_push =
        patch(json!([{"op": "replace", "path": "members", "value": [{"value": others[0]}]}]));
    s.expect(Method::PATCH, &gpath, Some(full_push), 204).await;
    assert_eq!(
        member_ids(&s.expect(Method::GET, &gpath, None, 200).await),
        vec![others[0].clone()]
    );
    s.expect(Method::DELETE, &gpath, None, 204).await;
}

/// Concurrency over HTTP.
async fn concurrency(s: &Server) {
    // Ten creates of one userName: one 201, nine 409.
    let creates = (0..10).map(|_| {
        s.call(
            Method::POST,
            "/Users",
            Some(json!({"userName": "race@example.com"})),
        )
    });
    let results = futures::future::join_all(creates).await;
    let created = results
        .iter()
        .filter(|(st, _)| *st == StatusCode::CREATED)
        .count();
    let conflicts = results
        .iter()
        .filter(|(st, b)| *st == StatusCode::CONFLICT && b["scimType"] == "uniqueness")
        .count();
    assert_eq!((created, conflicts), (1, 9), "{results:?}");

    // Forty concurrent member adds to one group all land: more writers than the service's
    // compare-and-swap retries (16), as Entra's parallel member PATCHes to one group can be.
    let group = s
        .expect(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "Concurrent"})),
            201,
        )
        .await;
    let gpath = format!("/Groups/{}", id(&group));
    let mut users = Vec::new();
    for i in 0..40 {
        let u = s
            .expect(
                Method::POST,
                "/Users",
                Some(json!({"userName": format!("member{i}@example.com")})),
                201,
            )
            .await;
        users.push(id(&u));
    }
    let adds = users.iter().map(|u| {
        s.call(
            Method::PATCH,
            &gpath,
            Some(patch(
                json!([{"op": "add", "path": "members", "value": [{"value": u}]}]),
            )),
        )
    });
    for (status, body) in futures::future::join_all(adds).await {
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let mut want = users.clone();
    want.sort();
    assert_eq!(
        member_ids(&s.expect(Method::GET, &gpath, None, 200).await),
        want
    );

    // If-Match updates never lose a write: each writer appends its own email under If-Match,
    // retrying after 412; every success is in the final state.
    let target = s
        .expect(
            Method::POST,
            "/Users",
            Some(json!({"userName": "etag-race@example.com"})),
            201,
        )
        .await;
    let upath = format!("/Users/{}", id(&target));
    let writer = |w: usize| {
        let upath = upath.clone();
        async move {
            let mut successes = Vec::new();
            let mut attempts = 0;
            while successes.len() < 2 && attempts < 100 {
                attempts += 1;
                let (_, headers, _) = s.send(Method::GET, &upath, None, &[]).await;
                let etag = headers.get("etag").unwrap().to_str().unwrap().to_string();
                let value = format!("w{w}-{}@example.com", successes.len());
                let body = patch(
                    json!([{"op": "add", "path": "emails", "value": [{"value": value, "type": "other"}]}]),
                );
                let (status, _, b) = s
                    .send(Method::PATCH, &upath, Some(body), &[("if-match", &etag)])
                    .await;
                match status.as_u16() {
                    200 => successes.push(value),
                    412 => {}
                    other => panic!("unexpected {other}: {b}"),
                }
            }
            successes
        }
    };
    let all: Vec<String> = futures::future::join_all((0..5).map(writer))
        .await
        .into_iter()
        .flatten()
        .collect();
    let final_state = s.expect(Method::GET, &upath, None, 200).await;
    let mut emails: Vec<String> = final_state["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap().to_string())
        .collect();
    emails.sort();
    let mut want = all;
    want.sort();
    assert_eq!(emails, want, "a successful If-Match write was lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_entra_okta_and_concurrency() {
    let s = Server::sqlite().await;
    entra_cycle(&s).await;
    okta_cycle(&s).await;
    concurrency(&s).await;
    s.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_entra_okta_and_concurrency() {
    let Some(s) = Server::postgres().await else {
        return;
    };
    entra_cycle(&s).await;
    okta_cycle(&s).await;
    concurrency(&s).await;
    s.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_without_credentials_prints_a_working_token() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scim.db").display());
    let mut child = crate::support::ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_scim-server"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SCIM_LISTEN", "127.0.0.1:0")
            .env("SCIM_DATABASE_URL", &url)
            .env("SCIM_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut token = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let trimmed = line.trim();
            if trimmed.starts_with("scim_") {
                token = Some(trimmed.to_string());
            }
            if let Some(url) = trimmed.strip_prefix("scim-server listening on ") {
                let _ = tx.send((token.clone(), url.to_string()));
            }
        }
    });
    let (token, base) = rx.recv_timeout(Duration::from_secs(60)).expect("address");
    let token = token.expect("a first-start token on stdout");
    let client = Client::new();
    let ok = client
        .get(format!("{base}/Users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let denied = client.get(format!("{base}/Users")).send().await.unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    let _ = child.kill();
    let _ = child.wait();
}

/// HTTPS served directly with rustls, from `[tls]` certificate and key files (a self-signed
/// test certificate for localhost, valid until 2126, in `tests/it/fixtures/`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_served_directly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scim.db").display());
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures");
    let cert = format!("{fixtures}/tls-cert.pem");
    let key = format!("{fixtures}/tls-key.pem");
    let s = Server::spawn_with(
        &url,
        Some(dir),
        None,
        &[("SCIM_TLS__CERT", &cert), ("SCIM_TLS__KEY", &key)],
    );
    assert!(s.base.starts_with("https://"), "{}", s.base);
    let r = s
        .expect(Method::GET, "/ServiceProviderConfig", None, 200)
        .await;
    assert_eq!(
        r["meta"]["location"].as_str().unwrap().split(':').next(),
        Some("https")
    );
    s.stop();
}

/// The maintenance subcommands: tenants, tokens (a created token works, a revoked one does not),
/// the audit chain check and the configuration check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_manages_tenants_tokens_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scim.db").display());
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_scim-server"))
            .args(args)
            .env_clear()
            .env("SCIM_DATABASE_URL", &url)
            .env("SCIM_LOG", "warn")
            .output()
            .expect("running scim-server");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    assert_eq!(cli(&["migrate"]).0, Some(0));
    let (code, out) = cli(&["tenant", "create", "acme", "--bulk-upsert"]);
    assert_eq!(code, Some(0), "{out}");
    let (_, out) = cli(&["tenant", "list"]);
    assert!(out.contains("acme") && out.contains("true"), "{out}");
    let (code, out) = cli(&["token", "create", "--tenant", "acme", "--label", "okta"]);
    assert_eq!(code, Some(0), "{out}");
    let secret = out.lines().nth(1).unwrap().trim().to_string();
    let token_id = out.split_whitespace().nth(1).unwrap().to_string();
    assert_ne!(cli(&["token", "create", "--tenant", "nobody"]).0, Some(0));

    let s = Server::spawn(&url, Some(dir), None);
    let users = format!("{}/Users", s.base);
    let status = |token: String| {
        let client = s.client.clone();
        let users = users.clone();
        async move {
            client
                .get(users)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(secret.clone()).await, StatusCode::OK);
    let created = s
        .client
        .post(&users)
        .bearer_auth(&secret)
        .json(&json!({"userName": "acme-user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(cli(&["token", "revoke", &token_id]).0, Some(0));
    // The server trusts a verified token for `[auth] token_cache_seconds` (5 by default): the
    // revocation must apply within that bound, not necessarily at once.
    let revoked_by = std::time::Instant::now() + Duration::from_secs(8);
    loop {
        let now = status(secret.clone()).await;
        if now == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(now, StatusCode::OK);
        assert!(
            std::time::Instant::now() < revoked_by,
            "a revoked token was still accepted after the cache bound"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, out) = cli(&["token", "list", "--tenant", "acme"]);
    assert!(out.contains("revoked"), "{out}");
    assert!(
        !out.contains("scim_"),
        "token list must not show secrets: {out}"
    );
    let (code, out) = cli(&["audit", "verify", "--tenant", "acme"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 records, chain intact"), "{out}");
    s.stop();

    let (code, out) = cli(&["check-config"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("configuration OK"), "{out}");
}

/// Several replicas on one PostgreSQL database (issue 14): two `scim-server serve` processes
/// share the database; member PATCHes to one group, sent at once to both, all land (the final
/// membership is the union of the additions), and the change log holds one record per write in
/// a chain `audit verify` accepts. One replica runs with a small configured pool
/// (`[database] max_connections`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_replicas_share_one_database() {
    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    let url = pg.url.clone();
    let a = Server::spawn(&url, None, Some(pg));
    let b = Server::spawn_with(&url, None, None, &[("SCIM_DATABASE__MAX_CONNECTIONS", "2")]);
    const USERS: usize = 24;
    let mut users = Vec::new();
    for i in 0..USERS {
        let s = if i % 2 == 0 { &a } else { &b };
        let u = s
            .expect(
                Method::POST,
                "/Users",
                Some(
                    json!({"schemas": [USER_URN], "userName": format!("replica-{i}@example.com")}),
                ),
                201,
            )
            .await;
        users.push(id(&u));
    }
    let group = id(&b
        .expect(
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP_URN], "displayName": "replicated"})),
            201,
        )
        .await);
    let path = format!("/Groups/{group}");
    let adds = users.iter().enumerate().map(|(i, user)| {
        let s = if i % 2 == 0 { &a } else { &b };
        let body = patch(json!([{"op": "add", "path": "members", "value": [{"value": user}]}]));
        let path = path.clone();
        async move { s.call(Method::PATCH, &path, Some(body)).await }
    });
    for (status, body) in futures::future::join_all(adds).await {
        assert!(status.is_success(), "{status}: {body}");
    }
    let mut want = users.clone();
    want.sort();
    for s in [&a, &b] {
        let g = s.expect(Method::GET, &path, None, 200).await;
        assert_eq!(member_ids(&g), want, "a member PATCH was lost");
        assert_eq!(g["meta"]["version"], json!(format!("W/\"{}\"", USERS + 1)));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_scim-server"))
        .args(["audit", "verify", "--tenant", "default"])
        .env_clear()
        .env("SCIM_DATABASE_URL", &url)
        .env("SCIM_LOG", "warn")
        .output()
        .expect("running scim-server audit verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // One record per user, one for the group, one per member PATCH.
    let records = 2 * USERS + 1;
    assert!(
        text.contains(&format!("{records} records, chain intact")),
        "{text}"
    );
    b.stop();
    a.stop();
}
