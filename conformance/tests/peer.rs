//! The runner tested against a third-party server: `scim2-server` (Python, PyPI),
//! installed in a virtual environment under the target directory on first use,
//! started on a free port of 127.0.0.1, and checked against the per-check outcomes
//! committed in `expectations/scim2-server.json`.
//!
//! The test is skipped (with a note) only when `python3` or `python3 -m venv` is not
//! available. Set `SCIM_CONFORMANCE_BLESS=1` to rewrite the expectations from the run
//! (existing reasons are kept; new failures get a `TODO` reason that fails the test
//! until it is written).

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The pinned version of the peer server; expectations are recorded for it.
const SCIM2_SERVER_VERSION: &str = "0.8.3";
const TOKEN: &str = "cf-peer-token";

/// Kills the server when the test ends, whatever happens.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Creates (once) the virtual environment with scim2-server; `Ok(None)` when python3
/// or venv creation is impossible on this machine.
fn venv() -> anyhow::Result<Option<PathBuf>> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("scim2-server-venv-{SCIM2_SERVER_VERSION}"));
    let bin = dir.join("bin").join("scim2-server");
    let marker = dir.join(".installed");
    if bin.exists() && marker.exists() {
        return Ok(Some(bin));
    }
    if Command::new(python())
        .arg("--version")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        eprintln!(
            "note: {} not found; skipping the scim2-server peer test",
            python()
        );
        return Ok(None);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let st = Command::new(python())
        .args(["-m", "venv"])
        .arg(&dir)
        .status()
        .context("running python3 -m venv")?;
    if !st.success() {
        eprintln!(
            "note: `{} -m venv` failed (is the venv module installed?); skipping the scim2-server peer test",
            python()
        );
        return Ok(None);
    }
    let pip = dir.join("bin").join("pip");
    let out = Command::new(&pip)
        .args([
            "install",
            "--disable-pip-version-check",
            "--quiet",
            &format!("scim2-server=={SCIM2_SERVER_VERSION}"),
        ])
        .output()
        .context("running pip install")?;
    if !out.status.success() {
        bail!(
            "pip install scim2-server=={SCIM2_SERVER_VERSION} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(&marker, SCIM2_SERVER_VERSION)?;
    Ok(Some(bin))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start(bin: &Path, port: u16, log: &Path) -> anyhow::Result<Server> {
    let child = Command::new(bin)
        .args([
            "--hostname",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--bearer-token",
            TOKEN,
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .context("starting scim2-server")?;
    let mut server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(server);
        }
        if let Some(st) = server.0.try_wait()? {
            bail!(
                "scim2-server exited early ({st}); log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("scim2-server did not listen on port {port} within 30 s")
}

/// Runs the binary with a time bound; returns (exit code, stdout).
fn run_runner(base: &str, json: &Path, junit: &Path) -> anyhow::Result<(i32, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scim-conformance"))
        .args([
            "--base-url",
            base,
            "--token",
            TOKEN,
            "--timeout",
            "10",
            "--json",
        ])
        .arg(json)
        .arg("--junit")
        .arg(junit)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("the runner did not finish within 300 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = reader.join().unwrap_or_default();
    Ok((status.code().unwrap_or(-1), out))
}

/// A small blocking HTTP helper for the safety checks around the run.
fn http(method: &str, url: &str, body: Option<Value>) -> anyhow::Result<(u16, Value)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let mut req = client
            .request(reqwest::Method::from_bytes(method.as_bytes())?, url)
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json");
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    })
}

fn expectations_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("expectations")
        .join("scim2-server.json")
}

#[test]
fn peer_scim2_server_matches_expectations() -> anyhow::Result<()> {
    let Some(bin) = venv()? else { return Ok(()) };
    let tmp = tempfile::tempdir()?;
    let port = free_port()?;
    let log = tmp.path().join("scim2-server.log");
    let _server = start(&bin, port, &log)?;
    // Objects the runner did not create must survive the run untouched.
    let base = format!("http://127.0.0.1:{port}/v2");
    let (st, sentinel_user) = http(
        "POST",
        &format!("{base}/Users"),
        Some(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "sentinel.user"}),
        ),
    )?;
    assert_eq!(st, 201, "creating the sentinel user");
    let su = sentinel_user["id"]
        .as_str()
        .context("sentinel user id")?
        .to_string();
    let (st, sentinel_group) = http(
        "POST",
        &format!("{base}/Groups"),
        Some(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sentinel Group", "members": [{"value": su}]}),
        ),
    )?;
    assert_eq!(st, 201, "creating the sentinel group");
    let sg = sentinel_group["id"]
        .as_str()
        .context("sentinel group id")?
        .to_string();

    let json_path = tmp.path().join("report.json");
    let junit_path = tmp.path().join("report.xml");
    // A trailing slash on the base URL must be accepted.
    let (code, stdout) = run_runner(
        &format!("http://127.0.0.1:{port}/v2/"),
        &json_path,
        &junit_path,
    )?;
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(&json_path).context("reading the JSON report")?,
    )?;
    let results = report["results"]
        .as_array()
        .context("results array")?
        .clone();

    // The printed summary is the last line and agrees with the JSON report.
    let (p, f, s) = (
        &report["summary"]["passed"],
        &report["summary"]["failed"],
        &report["summary"]["skipped"],
    );
    let mut want_last = format!("{p} passed, {f} failed");
    if s.as_u64().unwrap_or(0) > 0 {
        want_last.push_str(&format!(", {s} skipped"));
    }
    assert_eq!(
        stdout.lines().last().unwrap_or_default(),
        want_last,
        "last line of the output"
    );
    assert_eq!(
        code,
        if f.as_u64() == Some(0) { 0 } else { 1 },
        "exit status"
    );
    let junit = std::fs::read_to_string(&junit_path)?;
    assert_eq!(
        junit.matches("<testcase ").count(),
        results.len(),
        "one JUnit testcase per check"
    );
    assert!(
        results.len() >= 150,
        "at least 150 checks ran, got {}",
        results.len()
    );

    // Safety: the sentinels are intact and nothing the runner created is left behind.
    let (st, u) = http("GET", &format!("{base}/Users/{su}"), None)?;
    assert!(
        st == 200 && u["userName"] == "sentinel.user",
        "the sentinel user survived the run: {st} {u}"
    );
    let (st, g) = http("GET", &format!("{base}/Groups/{sg}"), None)?;
    assert!(
        st == 200
            && g["displayName"] == "Sentinel Group"
            && g["members"][0]["value"] == su.as_str(),
        "the sentinel group survived the run unchanged: {st} {g}"
    );
    let (_, users) = http("GET", &format!("{base}/Users?count=0"), None)?;
    let (_, groups) = http("GET", &format!("{base}/Groups?count=0"), None)?;
    assert_eq!(
        users["totalResults"], 1,
        "only the sentinel user is left after the run"
    );
    assert_eq!(
        groups["totalResults"], 1,
        "only the sentinel group is left after the run"
    );

    // Compare each outcome with the committed expectation.
    let exp_text = std::fs::read_to_string(expectations_path()).unwrap_or_else(|_| "{}".into());
    let exp: Value =
        serde_json::from_str(&exp_text).context("parsing expectations/scim2-server.json")?;
    let expected = exp["checks"].as_object().cloned().unwrap_or_default();
    let mut problems = Vec::new();
    let mut actual: BTreeMap<String, (String, Value)> = BTreeMap::new();
    for r in &results {
        let id = r["id"].as_str().unwrap_or_default().to_string();
        let outcome = r["outcome"].as_str().unwrap_or_default().to_string();
        actual.insert(id.clone(), (outcome.clone(), r.clone()));
        match expected.get(&id) {
            None => problems.push(format!("{id}: no expectation (outcome {outcome})")),
            Some(e) => {
                let want = e["outcome"].as_str().unwrap_or_default();
                if want != outcome {
                    problems.push(format!(
                        "{id}: expected {want}, got {outcome}\n    expected: {}\n    actual:   {}",
                        r["expected"].as_str().unwrap_or("-"),
                        r["actual"].as_str().or(r["reason"].as_str()).unwrap_or("-")
                    ));
                }
                if want == "fail"
                    && e["reason"]
                        .as_str()
                        .is_none_or(|s| s.trim().is_empty() || s.starts_with("TODO"))
                {
                    problems.push(format!("{id}: an expected failure needs a reason"));
                }
            }
        }
    }
    for id in expected.keys() {
        if !actual.contains_key(id) {
            problems.push(format!("{id}: expectation for a check that did not run"));
        }
    }

    if std::env::var("SCIM_CONFORMANCE_BLESS").is_ok_and(|v| v == "1") {
        let mut checks = serde_json::Map::new();
        for (id, (outcome, r)) in &actual {
            let mut e = json!({"outcome": outcome});
            if outcome != "pass" {
                let reason = expected
                    .get(id)
                    .and_then(|e| e["reason"].as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        format!(
                            "TODO: {}",
                            r["actual"]
                                .as_str()
                                .or(r["reason"].as_str())
                                .unwrap_or_default()
                        )
                    });
                e["reason"] = json!(reason);
            }
            checks.insert(id.clone(), e);
        }
        let doc =
            json!({"server": "scim2-server", "version": SCIM2_SERVER_VERSION, "checks": checks});
        std::fs::write(
            expectations_path(),
            serde_json::to_string_pretty(&doc)? + "\n",
        )?;
        eprintln!("wrote {}", expectations_path().display());
    }
    if !problems.is_empty() {
        bail!(
            "{} outcome(s) differ from expectations/scim2-server.json:\n{}\n\nrunner output:\n{stdout}",
            problems.len(),
            problems.join("\n")
        );
    }
    Ok(())
}
