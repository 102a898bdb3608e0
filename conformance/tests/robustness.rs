//! The runner against a misbehaving server: non-JSON bodies, wrong shapes, odd
//! statuses. Every check must end in FAIL or SKIP (or a coincidental PASS), never in
//! a panic, and the run must stay bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use scim_conformance::{Outcome, Profile, RunConfig, run, run_async};

const ANSWERS: &[(&str, &str, &str)] = &[
    ("200 OK", "text/html", "<html>not scim</html>"),
    (
        "200 OK",
        "application/scim+json",
        "{\"totalResults\": \"many\", \"Resources\": {}}",
    ),
    ("201 Created", "application/scim+json", "[]"),
    ("500 Internal Server Error", "text/plain", ""),
    ("200 OK", "application/scim+json", "null"),
    ("404 Not Found", "application/json", "{\"status\": 404}"),
    (
        "200 OK",
        "application/scim+json",
        "{\"id\": 12, \"meta\": \"x\", \"members\": \"y\", \"emails\": 3}",
    ),
    (
        "200 OK",
        "application/scim+json",
        "{\"Operations\": [{\"status\": {}, \"location\": 5}]}",
    ),
];

/// Serves garbage in rotation; returns the base URL.
fn garbage_server() -> String {
    serve(|_, n| ANSWERS[n % ANSWERS.len()])
}

const SPC_NOTHING: &str = "{\"schemas\": [\"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig\"], \"patch\": {\"supported\": false}, \"bulk\": {\"supported\": false, \"maxOperations\": 0, \"maxPayloadSize\": 0}, \"filter\": {\"supported\": false, \"maxResults\": 0}, \"changePassword\": {\"supported\": false}, \"sort\": {\"supported\": false}, \"etag\": {\"supported\": false}, \"authenticationSchemes\": []}";

/// A server declaring every optional feature unsupported and answering 404 otherwise.
fn minimal_server() -> String {
    serve(|path, _| {
        if path.ends_with("/ServiceProviderConfig") {
            ("200 OK", "application/scim+json", SPC_NOTHING)
        } else {
            (
                "404 Not Found",
                "application/scim+json",
                "{\"schemas\": [\"urn:ietf:params:scim:api:messages:2.0:Error\"], \"status\": \"404\"}",
            )
        }
    })
}

type Answer = (&'static str, &'static str, &'static str);

/// Serves `answer(path, request number)` on a free port; returns the base URL.
fn serve(answer: impl Fn(&str, usize) -> Answer + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let path = first
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .split('?')
                .next()
                .unwrap_or_default()
                .to_string();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let (status, ct, text) = answer(&path, n.fetch_add(1, Ordering::Relaxed));
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = stream.write_all(resp.as_bytes());
        }
    });
    format!("http://127.0.0.1:{port}/scim/v2/")
}

#[test]
fn garbage_answers_fail_without_panicking() {
    let mut config = RunConfig::new(garbage_server(), "t").profile(Profile::All);
    config.timeout = Duration::from_secs(5);
    let report = run(&config);
    assert!(report.results.len() >= 150);
    for r in &report.results {
        if let Outcome::Fail(f) = &r.outcome {
            assert!(
                !f.actual.contains("runner bug"),
                "{} panicked: {}",
                r.id,
                f.actual
            );
        }
    }
    assert!(report.failed() > 100, "{}", report.summary_line());
}

#[test]
fn unreachable_server_fails_every_check() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = RunConfig::new(format!("http://127.0.0.1:{port}"), "t")
        .only(["discovery.spc", "users.get"]);
    let report = run(&config);
    assert!(!report.results.is_empty());
    assert_eq!(
        report.failed(),
        report.results.len(),
        "{}",
        report.to_text()
    );
}

#[test]
fn invalid_base_url_is_reported() {
    let report = run(&RunConfig::new("not a url", "t"));
    assert_eq!(report.failed(), 1);
    assert_eq!(report.results[0].id, "runner.setup");
}

#[tokio::test]
async fn run_async_works_inside_a_runtime() {
    let config = RunConfig::new(garbage_server(), "t").only(["discovery.spc.valid"]);
    let report = run_async(config).await;
    assert_eq!(report.results.len(), 1);
    assert_eq!(report.failed(), 1);
}

#[test]
fn features_declared_unsupported_are_skipped_except_in_client_profiles() {
    let report = run(&RunConfig::new(minimal_server(), "t"));
    for id in [
        "bulk.post.user",
        "patch.add.single-valued",
        "sort.descending",
        "etag.get.header",
        "filter.eq.username",
        "discovery.consistency.bulk",
    ] {
        let r = report.get(id).unwrap_or_else(|| panic!("{id} did not run"));
        match &r.outcome {
            Outcome::Skip(reason) => assert!(reason.contains(".supported=false"), "{id}: {reason}"),
            other => panic!("{id} should be skipped, got {other:?}"),
        }
    }
    for id in [
        "entra.group.legacy-member-remove",
        "okta.user.deactivate",
        "users.get.by-id",
    ] {
        assert_eq!(
            report.get(id).map(|r| r.outcome.label()),
            Some("fail"),
            "{id} must fail, not skip"
        );
    }
    assert!(report.summary_line().contains("skipped"));
}

#[test]
fn a_hanging_server_fails_the_run_quickly() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream); // accept, never answer
        }
    });
    let mut config = RunConfig::new(format!("http://127.0.0.1:{port}"), "t");
    config.timeout = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let report = run(&config);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(report.failed() + report.skipped(), report.results.len());
    assert!(report.to_text().contains("the server stopped answering"));
}
