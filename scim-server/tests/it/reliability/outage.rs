//! Issue 13 defect 3: a PostgreSQL outage, made by a TCP proxy on loopback in front of the
//! shared cluster (the cluster itself is never stopped): clients get 503 with `Retry-After`, never
//! 500; `/readyz` answers within a second and turns 503 within a few; service resumes when the
//! database is back; and a create whose commit's reply is lost is reported as an unknown outcome
//! and answered with the stored resource when retried with the same `X-Request-Id`.

use super::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does.
#[derive(Default)]
struct Control {
    /// Refuse new connections (accept and close them at once).
    refusing: AtomicBool,
    /// For the next message from the server to the database carrying these bytes: pass it on,
    /// then drop the database's reply and close both sides. (A resource write is one statement
    /// that commits on its own, so the message carrying the new resource's `userName` is its
    /// commit.)
    lose_reply_to: std::sync::Mutex<Option<Vec<u8>>>,
}

struct Proxy {
    addr: std::net::SocketAddr,
    control: Arc<Control>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let control = Arc::new(Control::default());
        let (cut, cut_rx) = tokio::sync::watch::channel(0u64);
        let ctl = control.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if ctl.refusing.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(pipe(client, server, ctl.clone(), cut_rx.clone()));
            }
        });
        Proxy { addr, control, cut }
    }

    /// Closes every connection and refuses new ones: the database is unreachable.
    fn cut(&self) {
        self.control.refusing.store(true, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.control.refusing.store(false, Ordering::SeqCst);
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    control: Arc<Control>,
    mut cut: tokio::sync::watch::Receiver<u64>,
) {
    // Only cuts after this connection opened count.
    cut.borrow_and_update();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let muted = Arc::new(AtomicBool::new(false));
    let mute = muted.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let commit = {
                let mut marker = control.lose_reply_to.lock().unwrap();
                let hit = marker
                    .as_deref()
                    .is_some_and(|m| buf[..n].windows(m.len()).any(|w| w == m));
                if hit {
                    *marker = None;
                }
                hit
            };
            if commit {
                mute.store(true, Ordering::SeqCst);
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
            if commit {
                // Give the server time to commit, then vanish without its answer.
                tokio::time::sleep(Duration::from_millis(500)).await;
                return;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if muted.load(Ordering::SeqCst) {
                continue;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = cut.changed() => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_is_503_with_retry_after_and_readyz_stays_fast() {
    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    let url = url::Url::parse(&pg.url).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = Proxy::start(upstream).await;
    let mut via_proxy = url.clone();
    via_proxy.set_host(Some("127.0.0.1")).unwrap();
    via_proxy.set_port(Some(proxy.addr.port())).unwrap();
    let s = Launch::new(via_proxy.as_str()).start();
    let created = s.call(Method::POST, "/Users", Some(user("before"))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(s.readyz().await.0, StatusCode::OK);

    // The database goes away.
    proxy.cut();
    let start = Instant::now();
    loop {
        let (status, took) = s.readyz().await;
        assert!(took < Duration::from_secs(1), "/readyz took {took:?}");
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "/readyz still {status} after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let during = s
        .send(
            Method::POST,
            "/Users",
            Some(&serde_json::to_vec(&user("during")).unwrap()),
            &[("x-request-id", "outage-write-1")],
        )
        .await
        .unwrap();
    assert_eq!(
        during.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        during.body
    );
    assert!(during.headers.contains_key("retry-after"));
    assert_eq!(during.body["status"], "503");
    assert!(
        during.body["detail"]
            .as_str()
            .unwrap()
            .contains("database is unavailable"),
        "{}",
        during.body
    );

    // It comes back.
    proxy.restore();
    let start = Instant::now();
    while s.readyz().await.0 != StatusCode::OK {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "/readyz not 200 15 s after restore"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = s.call(Method::POST, "/Users", Some(user("during"))).await;
    assert_eq!(after.status, StatusCode::CREATED, "{}", after.body);

    // The write reaches the database and commits, but its answer is lost: outcome unknown, then
    // a retry with the same request id returns what the first attempt stored.
    *proxy.control.lose_reply_to.lock().unwrap() = Some(b"lost-reply".to_vec());
    let body = serde_json::to_vec(&user("lost-reply")).unwrap();
    let rid = [("x-request-id", "lost-commit-reply-1")];
    let lost = s
        .send(Method::POST, "/Users", Some(&body), &rid)
        .await
        .unwrap();
    assert_eq!(
        lost.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        lost.body
    );
    assert!(lost.headers.contains_key("retry-after"));
    assert!(
        lost.body["detail"]
            .as_str()
            .unwrap()
            .contains("may or may not have been stored"),
        "{}",
        lost.body
    );
    let mut retried = None;
    for _ in 0..50 {
        let r = s
            .send(Method::POST, "/Users", Some(&body), &rid)
            .await
            .unwrap();
        if r.status != StatusCode::SERVICE_UNAVAILABLE {
            retried = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let retried = retried.expect("the retry kept answering 503");
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.body);
    let found = s
        .call(
            Method::GET,
            "/Users?filter=userName%20eq%20%22lost-reply%22",
            None,
        )
        .await;
    assert_eq!(found.body["totalResults"], 1, "{}", found.body);
    assert_eq!(found.body["Resources"][0]["id"], retried.body["id"]);

    // The failures were logged once each, with their request ids, at SCIM_LOG=warn.
    let log = s.stderr_text();
    for rid in ["outage-write-1", "lost-commit-reply-1"] {
        assert!(
            log.lines()
                .any(|l| l.contains(rid) && l.contains("request failed")),
            "no error line with request id {rid}:\n{log}"
        );
    }
    assert!(!log.contains("status=500"), "{log}");
    drop(s);
    let (ok, out) = Launch::new(&pg.url).run(&["audit", "verify"]);
    assert!(ok, "{out}");
    let _ = json!({});
}
