//! The HR intake end to end, through the real binary on 127.0.0.1, on SQLite and PostgreSQL:
//! an Entra-format bulkUpload sample (core + enterprise + a custom extension) creates the users;
//! re-sending it changes nothing (no new change records); a changed department updates; an
//! absent `active` keeps the current value; `active: false` disables; a manager arriving after
//! its report (same job, later job) is resolved; a bad record fails alone; structure errors are
//! 400s naming the operation or the limit; and a job answered 202 survives `kill -9`.
//!
//! The worker runs on its own schedule inside the server: tests poll the job resource a bounded
//! number of times (never a fixed sleep).

use crate::support::{ChildGuard, postgres_base};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub(crate) const TOKEN: &str = "inbound-test-token-0123456789abcdef";
use scim_core::bulk::BULK_REQUEST_URN as BULK;
use scim_core::schema::ENTERPRISE_USER_URN as ENTERPRISE;
const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:contoso:1.0:User";

fn sample() -> Value {
    serde_json::from_str(include_str!("fixtures/entra-bulkupload-sample.json")).unwrap()
}

/// The database a test's servers share (kept across restarts).
pub(crate) struct Db {
    pub(crate) url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl Db {
    pub(crate) fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        Db {
            url: format!("sqlite://{}", dir.path().join("scim.db").display()),
            _dir: Some(dir),
            pg: None,
        }
    }

    pub(crate) async fn postgres() -> Db {
        use sqlx::Connection;
        let base = postgres_base();
        let admin = format!("{base}/postgres");
        let name = format!("scim_inbound_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin}: {e} (set SCIM_TEST_POSTGRES_URL)"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        Db {
            url: format!("{base}/{name}"),
            _dir: None,
            pg: Some((admin, name)),
        }
    }

    /// Runs the binary's CLI on this database; (exit code, stdout).
    pub(crate) fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_scim-server"))
            .args(args)
            .env_clear()
            .env("SCIM_DATABASE_URL", &self.url)
            .env("SCIM_LOG", "warn")
            .output()
            .expect("running scim-server");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    }

    /// The number of change records of the default tenant (`audit verify`).
    pub(crate) fn change_records(&self) -> u64 {
        let (code, out) = self.cli(&["audit", "verify", "--tenant", "default"]);
        assert_eq!(code, Some(0), "{out}");
        out.split_whitespace()
            .zip(out.split_whitespace().skip(1))
            .find(|(_, w)| w.starts_with("records"))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or_else(|| panic!("no record count in {out:?}"))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// A running `scim-server serve`.
pub(crate) struct Server {
    pub(crate) child: ChildGuard,
    pub(crate) root: String,
    pub(crate) client: Client,
}

impl Server {
    pub(crate) fn start(db: &Db, env: &[(&str, &str)]) -> Server {
        let mut child = ChildGuard(
            Command::new(env!("CARGO_BIN_EXE_scim-server"))
                .arg("serve")
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("SCIM_LISTEN", "127.0.0.1:0")
                .env("SCIM_DATABASE_URL", &db.url)
                .env("SCIM_TOKEN", TOKEN)
                .env("SCIM_LOG", "warn")
                .env("SCIM_SHUTDOWN_GRACE_SECONDS", "5")
                .env("SCIM_INBOUND__POLL_INTERVAL_MS", "100")
                .envs(env.iter().copied())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawning scim-server"),
        );
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("scim-server listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("scim-server reports its address");
        Server {
            child,
            root: base.trim_end_matches("/scim/v2").to_string(),
            client: Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.root)
        };
        let mut req = self.client.request(method, url).bearer_auth(TOKEN);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Posts a bulkUpload body; the job's URL (from `Location`).
    async fn upload(&self, body: &Value) -> String {
        let (status, headers, answer) = self
            .send(reqwest::Method::POST, "/inbound/v1/bulkUpload", Some(body))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        let location = headers["location"].to_str().unwrap().to_string();
        assert!(location.starts_with(&self.root), "{location}");
        assert_eq!(answer["status"], "queued");
        location
    }

    /// Polls a job until it is finished (bounded).
    pub(crate) async fn finished(&self, job: &str) -> Value {
        for _ in 0..600 {
            let (status, _, body) = self.send(reqwest::Method::GET, job, None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if ["completed", "completedWithErrors", "dead"]
                .contains(&body["status"].as_str().unwrap_or(""))
            {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("job {job} did not finish within 30 s");
    }

    async fn run(&self, body: &Value) -> Value {
        let job = self.upload(body).await;
        self.finished(&job).await
    }

    /// The user with an externalId.
    pub(crate) async fn user(&self, external: &str) -> Value {
        let path = format!("/scim/v2/Users?filter=externalId%20eq%20%22{external}%22");
        let (status, _, list) = self.send(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["totalResults"], 1, "{external}: {list}");
        list["Resources"][0].clone()
    }
}

fn bulk(records: Vec<Value>) -> Value {
    let ops: Vec<Value> = records
        .into_iter()
        .map(|data| json!({"method": "POST", "path": "/Users", "bulkId": data["externalId"].clone(), "data": data}))
        .collect();
    json!({"schemas": [BULK], "Operations": ops, "failOnErrors": null})
}

pub(crate) fn outcomes(job: &Value) -> Vec<String> {
    job["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["outcome"].as_str().unwrap().to_string())
        .collect()
}

async fn intake_cycle(db: &Db) {
    let s = Server::start(db, &[]);
    // The sample: the report (701984) comes before its manager (89607) in the same job.
    let job = s.run(&sample()).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(outcomes(&job), ["created", "created"]);
    assert_eq!(job["counts"]["created"], 2);
    assert_eq!(job["operations"][0]["bulkId"], "701984");
    let babs = s.user("701984").await;
    let john = s.user("89607").await;
    assert_eq!(job["operations"][0]["id"], babs["id"]);
    assert_eq!(babs["userName"], "bjensen@contoso.example");
    assert_eq!(babs["active"], true);
    assert_eq!(
        john["active"], true,
        "an absent active is true for a new user"
    );
    assert_eq!(babs[ENTERPRISE]["department"], "Tour Operations");
    assert_eq!(babs[ENTERPRISE]["manager"]["value"], john["id"]);
    assert_eq!(babs[CUSTOM]["HireDate"], "07/23/2030");
    let records = db.change_records();

    // Re-sent as is: nothing changes, no change record.
    let job = s.run(&sample()).await;
    assert_eq!(outcomes(&job), ["unchanged", "unchanged"], "{job}");
    assert_eq!(db.change_records(), records);
    assert_eq!(
        s.user("701984").await["meta"]["version"],
        babs["meta"]["version"]
    );

    // A mover: the department changes, `active` is left out and stays true.
    let mut mover = sample()["Operations"][0]["data"].clone();
    mover[ENTERPRISE]["department"] = json!("Finance");
    mover.as_object_mut().unwrap().remove("active");
    let job = s.run(&bulk(vec![mover])).await;
    assert_eq!(outcomes(&job), ["updated"], "{job}");
    assert_eq!(db.change_records(), records + 1);
    let babs = s.user("701984").await;
    assert_eq!(babs[ENTERPRISE]["department"], "Finance");
    assert_eq!(babs["active"], true);
    assert_eq!(babs[ENTERPRISE]["manager"]["value"], john["id"]);

    // A leaver: `active: false` disables.
    let leaver =
        json!({"externalId": "89607", "userName": "jsmith@contoso.example", "active": false});
    let job = s.run(&bulk(vec![leaver])).await;
    assert_eq!(outcomes(&job), ["updated"], "{job}");
    assert_eq!(s.user("89607").await["active"], false);

    // A manager arriving in a later job than its report.
    let report = json!({"externalId": "300", "userName": "report@contoso.example",
        ENTERPRISE: {"manager": {"value": "400"}}});
    let job = s.run(&bulk(vec![report])).await;
    assert_eq!(outcomes(&job), ["created"], "{job}");
    assert!(s.user("300").await[ENTERPRISE]["manager"].is_null());
    let manager = json!({"externalId": "400", "userName": "boss@contoso.example"});
    let job = s.run(&bulk(vec![manager])).await;
    assert_eq!(outcomes(&job), ["created"], "{job}");
    let boss = s.user("400").await;
    assert_eq!(
        s.user("300").await[ENTERPRISE]["manager"]["value"],
        boss["id"]
    );

    // Bad records fail alone: a taken userName, no externalId; the good one lands.
    let records = db.change_records();
    let job = s
        .run(&bulk(vec![
            json!({"externalId": "500", "userName": "BJENSEN@contoso.example"}),
            json!({"userName": "nobody@contoso.example"}),
            json!({"externalId": "501", "userName": "new@contoso.example"}),
        ]))
        .await;
    assert_eq!(job["status"], "completedWithErrors", "{job}");
    assert_eq!(outcomes(&job), ["failed", "failed", "created"]);
    assert_eq!(job["operations"][0]["error"]["status"], "409");
    assert_eq!(job["operations"][0]["error"]["scimType"], "uniqueness");
    assert_eq!(job["operations"][1]["error"]["status"], "400");
    assert!(
        job["operations"][1]["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("externalId")
    );
    assert_eq!(job["counts"]["failed"], 2);
    assert_eq!(db.change_records(), records + 1);

    // Structure errors: a 400 for the whole request, nothing queued.
    let too_many = bulk(
        (0..51)
            .map(|i| json!({"externalId": format!("x{i}"), "userName": format!("x{i}")}))
            .collect(),
    );
    let mut patch = sample();
    patch["Operations"][1]["method"] = json!("PATCH");
    let mut groups = sample();
    groups["Operations"][0]["path"] = json!("/Groups");
    for (body, words) in [
        (too_many, "at most 50"),
        (patch, "Operations[1]: method \"PATCH\""),
        (groups, "Operations[0]: path \"/Groups\""),
    ] {
        let (status, _, err) = s
            .send(reqwest::Method::POST, "/inbound/v1/bulkUpload", Some(&body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert!(err["detail"].as_str().unwrap().contains(words), "{err}");
    }
    // Other tenants' jobs and unknown ids are 404; no credential is 401.
    let (status, _, _) = s
        .send(reqwest::Method::GET, "/inbound/v1/jobs/nope", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let anonymous = s
        .client
        .post(format!("{}/inbound/v1/bulkUpload", s.root))
        .json(&sample())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // Operations: the queue on /metrics (published after each worker round) and the CLI.
    let mut published = false;
    for _ in 0..200 {
        let text = s
            .client
            .get(format!("{}/metrics", s.root))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("scim_inbound_queue_depth 0")
            && text.contains("scim_inbound_dead_letters 0")
        {
            assert!(
                text.contains("scim_inbound_oldest_job_age_seconds"),
                "{text}"
            );
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(published, "the intake gauges never appeared on /metrics");
    let (code, out) = db.cli(&["inbound", "status"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("queued: 0") && out.contains("dead letters: 0"),
        "{out}"
    );
    let (code, out) = db.cli(&["inbound", "dead-letters", "list"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("no dead letters"), "{out}");
    let (code, _) = db.cli(&["inbound", "dead-letters", "retry", "nope"]);
    assert_eq!(code, Some(1));
    drop(s);
}

/// A job answered 202 is processed after `kill -9` and a restart.
async fn survives_kill(db: &Db) {
    // The first server accepts but has no worker, so the job is certainly unprocessed when killed.
    let mut s = Server::start(db, &[("SCIM_INBOUND__WORKER", "false")]);
    let job = s.upload(&sample()).await;
    s.child.kill().unwrap(); // SIGKILL
    s.child.wait().unwrap();
    let s = Server::start(db, &[]);
    let job = job.replace(&job[..job.find("/inbound").unwrap()], &s.root);
    let done = s.finished(&job).await;
    assert_eq!(outcomes(&done), ["created", "created"], "{done}");
    assert_eq!(
        s.user("701984").await[ENTERPRISE]["manager"]["value"],
        s.user("89607").await["id"]
    );
}

#[tokio::test]
async fn sqlite_bulk_upload_cycle_and_kill() {
    let db = Db::sqlite();
    intake_cycle(&db).await;
    let db = Db::sqlite();
    survives_kill(&db).await;
}

#[tokio::test]
async fn postgres_bulk_upload_cycle_and_kill() {
    let db = Db::postgres().await;
    intake_cycle(&db).await;
    let db = Db::postgres().await;
    survives_kill(&db).await;
}
