//! Reliability and abuse, against the real binary on 127.0.0.1 (issue 13): the same answers from
//! SQLite and PostgreSQL for what one of them cannot store, limits on a resource, database
//! outages through a loopback proxy, `kill -9` under concurrent writers, a SQLite file that
//! cannot grow, credentials naming tenants, and the error log line.
//!
//! Every suite is bounded (seconds, not minutes): the crash test kills a few times, the outage
//! test cuts the connection once per phase.

mod audit_events;
mod chain_seal;
mod change_size;
mod crash;
mod diskfull;
mod limits;
mod outage;
mod tenants;

use crate::support::PgDatabase;
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

const TOKEN: &str = "reliability-token-0123456789abcdefghijkl";
use scim_core::patch::PATCH_OP_URN as PATCH_OP;
use scim_core::schema::USER_URN;

/// A `scim-server serve` process: its address, and every line it wrote to standard error.
struct Proc {
    child: Child,
    base: String,
    root: String,
    stderr: Arc<Mutex<Vec<String>>>,
    client: Client,
}

/// How to start a server.
#[derive(Clone)]
struct Launch {
    database_url: String,
    env: Vec<(String, String)>,
    /// A shell prefix run before `exec` (such as `ulimit -f 4096; trap '' XFSZ;`).
    shell_prefix: Option<String>,
}

impl Launch {
    fn new(database_url: &str) -> Launch {
        Launch {
            database_url: database_url.into(),
            env: Vec::new(),
            shell_prefix: None,
        }
    }

    fn env(mut self, key: &str, value: &str) -> Launch {
        self.env.push((key.into(), value.into()));
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let bin = env!("CARGO_BIN_EXE_scim-server");
        let mut cmd = match &self.shell_prefix {
            Some(prefix) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("{prefix} exec \"$0\" \"$@\""))
                    .arg(bin)
                    .args(args);
                c
            }
            None => {
                let mut c = Command::new(bin);
                c.args(args);
                c
            }
        };
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SCIM_LISTEN", "127.0.0.1:0")
            .env("SCIM_DATABASE_URL", &self.database_url)
            .env("SCIM_TOKEN", TOKEN)
            .env("SCIM_LOG", "warn")
            .env("SCIM_SHUTDOWN_GRACE_SECONDS", "2")
            .env("SCIM_RATE_LIMIT__ENABLED", "false")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    /// Starts `serve` and waits for its address.
    fn start(&self) -> Proc {
        let mut child = self
            .command(&["serve"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning scim-server");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("scim-server listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let Ok(base) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "scim-server did not report its address within 60 s; stderr:\n{}",
                lines.lock().unwrap().join("\n")
            );
        };
        let root = base
            .split("/scim")
            .next()
            .unwrap_or(&base)
            .trim_end_matches('/')
            .to_string();
        Proc {
            child,
            base,
            root,
            stderr: lines,
            client: Client::builder()
                .timeout(Duration::from_secs(40))
                .build()
                .unwrap(),
        }
    }

    /// Runs another subcommand (such as `audit verify`) to completion: exit success and output.
    ///
    /// The test's own stores keep working meanwhile: a PostgreSQL store seals its change records
    /// in a task that holds the sealer's lock across awaits, and `audit verify` waits for that
    /// lock. Blocking the runtime's thread here once stopped that task inside its transaction and
    /// the child waited for ever, so on a multi-thread runtime the wait hands this thread's
    /// tasks to another (`block_in_place`); a test holding a PostgreSQL store must use one.
    fn run(&self, args: &[&str]) -> (bool, String) {
        let run = || self.command(args).output();
        let out = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(run)
            }
            _ => run(),
        }
        .expect("running scim-server");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

/// A response: status, headers, JSON body (`Null` when empty or not JSON).
struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Proc {
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, reqwest::Error> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .client
            .request(method, url)
            .header("authorization", format!("Bearer {TOKEN}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(body.to_vec());
        }
        let resp = req.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await?;
        Ok(Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.send(method.clone(), path, bytes.as_deref(), &[])
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Sends raw JSON text (for bodies `serde_json` would not write, such as huge integers).
    async fn raw(&self, method: Method, path: &str, text: &str) -> Reply {
        self.send(method.clone(), path, Some(text.as_bytes()), &[])
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    async fn readyz(&self) -> (StatusCode, Duration) {
        let start = std::time::Instant::now();
        let status = self
            .client
            .get(format!("{}/readyz", self.root))
            .send()
            .await
            .map(|r| r.status())
            .unwrap_or(StatusCode::BAD_GATEWAY);
        (status, start.elapsed())
    }

    fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// `kill -9`: no shutdown, no flush, no goodbye.
    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Both databases: a SQLite file in `dir`, and a fresh PostgreSQL database when one answers.
async fn databases(dir: &tempfile::TempDir) -> Vec<(String, String, Option<PgDatabase>)> {
    let mut out = vec![(
        "sqlite".to_string(),
        format!("sqlite://{}", dir.path().join("scim.db").display()),
        None,
    )];
    if let Some(pg) = PgDatabase::create().await {
        out.push(("postgres".into(), pg.url.clone(), Some(pg)));
    }
    out
}

fn user(name: &str) -> Value {
    serde_json::json!({"schemas": [USER_URN], "userName": name})
}
