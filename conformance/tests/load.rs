//! `scim-conformance load` against a tiny in-test axum server: a bounded run through the CLI
//! (table and JSON), the Entra cycle's request order as the server saw it, and errors counted.

use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use scim_conformance::load::{self, LoadArgs, Workload};

const USER: &str =
    r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u1","userName":"a"}"#;
const EMPTY: &str = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"startIndex":1,"itemsPerPage":0,"Resources":[]}"#;

type Log = Arc<Mutex<Vec<String>>>;

/// Starts a server on 127.0.0.1 that logs `METHOD /path?query` and answers like an empty SCIM
/// server that accepts everything (or with `status` for every request when given).
async fn serve(status: Option<StatusCode>) -> (String, Log) {
    let log: Log = Arc::default();
    let l = log.clone();
    let app = Router::new().fallback(move |method: Method, uri: Uri| {
        let l = l.clone();
        async move {
            l.lock().unwrap().push(format!("{method} {uri}"));
            let r: Response = match (status, method) {
                (Some(s), _) => (s, "{}").into_response(),
                (None, Method::GET) if uri.query().is_some_and(|q| q.contains("filter=")) => {
                    EMPTY.into_response()
                }
                (None, Method::POST) => (StatusCode::CREATED, USER).into_response(),
                _ => USER.into_response(),
            };
            r
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/scim/v2"), log)
}

fn args(base_url: &str, workload: Workload) -> LoadArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        a: LoadArgs,
    }
    let mut a = Wrap::parse_from(["x", "--base-url", base_url, "--workload", "W1"]).a;
    a.workload = Some(workload);
    a.warmup = 0.0;
    a.concurrency = 4;
    a.seed_concurrency = 4;
    a
}

#[test]
fn cli_runs_a_bounded_load_and_writes_json() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (base, log) = rt.block_on(serve(None));
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("w1.json");
    let out = Command::new(env!("CARGO_BIN_EXE_scim-conformance"))
        .args([
            "load",
            "--base-url",
            &base,
            "--token",
            "t",
            "--workload",
            "W1",
        ])
        .args([
            "--users",
            "5",
            "--requests",
            "50",
            "--concurrency",
            "4",
            "--warmup",
            "0",
        ])
        .args(["--target", "test", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("target"), "{stdout}");
    assert!(stdout.contains("test    W1@5"), "{stdout}");
    let report: load::report::RunReport =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!((report.total.requests, report.total.errors), (50, 0));
    assert_eq!(report.total.latency.count, 50);
    assert!(report.total.rps > 0.0);
    // 5 seeding POSTs, then 50 GETs of a user and one to verify the answer.
    let log = log.lock().unwrap();
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("POST /scim/v2/Users"))
            .count(),
        5
    );
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("GET /scim/v2/Users/u1"))
            .count(),
        51
    );
    assert!(
        report.notes.iter().all(|n| !n.starts_with("VERIFY")),
        "{:?}",
        report.notes
    );

    // The summary reads the directory back.
    let out = Command::new(env!("CARGO_BIN_EXE_scim-conformance"))
        .args(["load", "--summarize"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("ratios of req/s"));
    assert!(dir.path().join("summary.txt").exists());

    // The conformance runner's own CLI is unchanged.
    let out = Command::new(env!("CARGO_BIN_EXE_scim-conformance"))
        .arg("--list")
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_cycle_sends_entras_request_order() {
    let (base, log) = serve(None).await;
    let mut a = args(&base, Workload::W7);
    a.concurrency = 1;
    a.users = 3;
    a.groups = 2;
    a.memberships = 5;
    a.tiers = vec![3];
    let report = load::run(&a).await.unwrap();
    assert_eq!(report.total.errors, 0);
    let phases: Vec<(&str, u64)> = report
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.requests))
        .collect();
    assert_eq!(
        phases,
        vec![("users", 6), ("groups", 4), ("memberships", 2)]
    );
    let log = log.lock().unwrap();
    let shape: Vec<String> = log
        .iter()
        .map(|l| {
            let (m, rest) = l.split_once(' ').unwrap();
            let path = rest.trim_start_matches("/scim/v2");
            let kind = if path.starts_with("/Users?filter=userName%20eq%20") {
                "/Users?filter=userName eq"
            } else if path
                .starts_with("/Groups?excludedAttributes=members&filter=displayName%20eq%20")
            {
                "/Groups?excludedAttributes=members&filter=displayName eq"
            } else {
                path.split('?').next().unwrap()
            };
            format!("{m} {kind}")
        })
        .collect();
    let expected = [
        "GET /Users?filter=userName eq",
        "POST /Users",
        "GET /Users?filter=userName eq",
        "POST /Users",
        "GET /Users?filter=userName eq",
        "POST /Users",
        "GET /Groups?excludedAttributes=members&filter=displayName eq",
        "POST /Groups",
        "GET /Groups?excludedAttributes=members&filter=displayName eq",
        "POST /Groups",
        "PATCH /Groups/u1",
        "PATCH /Groups/u1",
    ];
    assert_eq!(shape, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_2xx_answers_are_errors() {
    let (base, _) = serve(Some(StatusCode::SERVICE_UNAVAILABLE)).await;
    let mut a = args(&base, Workload::W3);
    a.requests = Some(20);
    let report = load::run(&a).await.unwrap();
    assert_eq!((report.total.requests, report.total.errors), (20, 20));
    assert_eq!(report.total.statuses.get("503"), Some(&20));
    assert!(report.error_samples[0].starts_with("503"));
    // Seeding against a failing server stops with an error instead of measuring nonsense.
    let mut a = args(&base, Workload::W1);
    a.requests = Some(5);
    assert!(matches!(load::run(&a).await, Err(load::LoadError::Seed(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_cycle_stops_at_its_time_limit() {
    let (base, log) = serve(None).await;
    let mut a = args(&base, Workload::W7);
    a.users = 50;
    a.groups = 2;
    a.memberships = 10;
    a.time_limit = Some(0.0);
    let report = load::run(&a).await.unwrap();
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("INCOMPLETE: time limit reached in the users phase")),
        "{:?}",
        report.notes
    );
    assert!(log.lock().unwrap().len() < 50);
    let text = load::report::format_table(&[report]);
    assert!(text.contains("WARNING: server W7@50: INCOMPLETE"), "{text}");
}
