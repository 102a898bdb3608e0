//! Running the server: open and migrate the store, make sure the default tenant and a credential
//! exist, bind, serve HTTP or HTTPS, and drain in-flight requests on SIGTERM or Ctrl-C.

use crate::auth::AuthService;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, LogFormat};
use crate::state::AppState;
use crate::store::{Store, Tenant};
use anyhow::Context;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Installs the global `tracing` subscriber: logs go to standard error (standard output carries
/// only the bound address and a first-start token), as text or JSON.
pub fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.filter).with_context(|| {
        format!(
            "`log.filter` (SCIM_LOG) {:?} is not a valid filter",
            config.log.filter
        )
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // Already installed (tests, embedding): keep the existing subscriber.
    let _ = result;
    Ok(())
}

/// Opens the store named by the database URL.
pub async fn open_store(database_url: &str) -> anyhow::Result<Arc<dyn Store>> {
    crate::store::open_store(database_url)
        .await
        .with_context(|| {
            format!(
                "opening the database (`database_url` / SCIM_DATABASE_URL) {}",
                redact_url(database_url)
            )
        })
}

/// Opens the store the configuration names (`database_url`), with its pool settings
/// (`[database]`).
pub async fn open_configured_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    crate::store::open_store_with(&config.database_url, config.database.pool_settings())
        .await
        .with_context(|| {
            format!(
                "opening the database (`database_url` / SCIM_DATABASE_URL) {}",
                redact_url(&config.database_url)
            )
        })
}

/// A database URL with its password replaced, for messages.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Creates the default tenant if it does not exist.
pub async fn ensure_tenant(store: &dyn Store, id: &str, clock: &dyn Clock) -> anyhow::Result<()> {
    if store.tenant(id).await?.is_none() {
        let tenant = Tenant {
            id: id.to_string(),
            name: id.to_string(),
            bulk_upsert_by_external_id: false,
            created: clock.now(),
        };
        match store.create_tenant(&tenant).await {
            Ok(()) | Err(crate::store::StoreError::Uniqueness { .. }) => {}
            Err(e) => return Err(e).context("creating the default tenant"),
        }
    }
    Ok(())
}

/// Refuses to start when a configured credential names a tenant that does not exist: its
/// clients would get tokens and write into a tenant no `tenant list` shows. The error names the
/// configuration key.
pub async fn check_credential_tenants(config: &Config, store: &dyn Store) -> anyhow::Result<()> {
    let auth = config.auth_config()?;
    let mut named: Vec<(String, &str)> = Vec::new();
    for (i, c) in auth.oauth_clients.iter().enumerate() {
        named.push((format!("auth.oauth_clients[{i}].tenant"), &c.tenant));
    }
    for (i, c) in auth.federated.iter().enumerate() {
        named.push((format!("auth.federated[{i}].tenant"), &c.tenant));
    }
    if let Some(entra) = &auth.entra_jwt {
        for (guid, tenant) in &entra.tenants {
            named.push((format!("auth.entra_jwt.tenants.{guid:?}"), tenant));
        }
    }
    for (key, tenant) in named {
        if store.tenant(tenant).await?.is_none() {
            anyhow::bail!(
                "`{key}`: tenant {tenant:?} does not exist; create it first with \
                 `scim-server tenant create {tenant}`"
            );
        }
    }
    Ok(())
}

/// The server's background upkeep: probes the database for `/readyz` every
/// [`DbHealth::PROBE_INTERVAL`](crate::http::ops::DbHealth::PROBE_INTERVAL), every second
/// gives the planner statistics where they are missing or stale (PostgreSQL; see
/// `Store::refresh_statistics`), every second seals change records a crash or a caller's own
/// transaction left unsealed (PostgreSQL; see `store::seal`), and every ten minutes deletes OAuth access tokens expired for
/// over an hour and assertion `jti`s past their expiry, and the HR intake's finished jobs and
/// event ids older than `inbound.job_retention_days`.
pub fn spawn_upkeep(state: &AppState) -> tokio::task::JoinHandle<()> {
    let store = state.store.clone();
    let intake = state.inbound.clone();
    let health = state.db_health.clone();
    let clock = state.clock.clone();
    tokio::spawn(async move {
        let mut probe = tokio::time::interval(crate::http::ops::DbHealth::PROBE_INTERVAL);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut purge = tokio::time::interval(Duration::from_secs(600));
        purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Every second: the check is one catalogue read, and an initial sync must not run
        // its lookups for long without statistics. Until a table has some, PostgreSQL's
        // planner may take an index that matches only the tenant for a `userName` lookup
        // and read the tenant's users one by one: at 5 s, Entra's cycle at 5,000 users ran
        // its whole users phase that way (issue 14, `docs/benchmarks.md`, "Writes without a
        // ping").
        let mut statistics = tokio::time::interval(Duration::from_secs(1));
        statistics.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seal = tokio::time::interval(Duration::from_secs(1));
        seal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = seal.tick() => {
                    match store.seal().await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(records = n, "change records sealed by the sweep"),
                        Err(e) => tracing::warn!(error = %e, "sealing the change log failed"),
                    }
                }
                _ = statistics.tick() => {
                    match store.refresh_statistics().await {
                        Ok(tables) if tables.is_empty() => {}
                        Ok(tables) => tracing::info!(?tables, "planner statistics refreshed"),
                        Err(e) => tracing::warn!(error = %e, "refreshing planner statistics failed"),
                    }
                }
                _ = probe.tick() => {
                    health.probe(store.as_ref()).await;
                }
                _ = purge.tick() => {
                    let before = clock.now() - time::Duration::hours(1);
                    match store.purge_expired(before).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(tokens = n, "expired access tokens purged"),
                        Err(e) => tracing::warn!(error = %e, "purging expired access tokens failed"),
                    }
                    if let Some(intake) = &intake {
                        match intake.purge(clock.now()).await {
                            Ok(p) if p.jobs + p.events == 0 => {}
                            Ok(p) => tracing::info!(jobs = p.jobs, events = p.events, "finished HR intake jobs purged"),
                            Err(e) => tracing::warn!(error = %e, "purging finished HR intake jobs failed"),
                        }
                    }
                }
            }
        }
    })
}

/// On first start with no credential at all, creates a token for the default tenant and prints it
/// once on standard output.
async fn first_start_token(
    config: &Config,
    store: &dyn Store,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let auth = config.auth_config()?;
    let other_credentials =
        auth.entra_jwt.is_some() || !auth.oauth_clients.is_empty() || !auth.federated.is_empty();
    if config.token.is_some() || other_credentials {
        return Ok(());
    }
    if !store.list_tokens(None).await?.is_empty() {
        return Ok(());
    }
    let (record, secret) = crate::auth::create_token(
        store,
        &config.default_tenant,
        "first start",
        false,
        clock.now(),
    )
    .await
    .context("creating the first-start token")?;
    let secret = secret.expose();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "No credential was configured, so a bearer token was created for tenant {:?} (id {}).\n\
         It is shown only this once; paste it as the Secret Token in Entra ID or Okta:\n\n    {secret}\n",
        record.tenant, record.id
    )?;
    out.flush()?;
    Ok(())
}

/// Loads the PEM certificate chain and key for rustls.
async fn load_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<axum_server::tls_rustls::RustlsConfig> {
    let what = || {
        format!(
            "loading `tls.cert` {} and `tls.key` {}",
            cert.display(),
            key.display()
        )
    };
    // rustls needs one process-wide crypto provider: both `ring` (through reqwest) and
    // `aws-lc-rs` (through axum-server) are compiled in, so it cannot pick one by itself. A
    // second install (a test, an embedding application) is harmless, hence the ignored result.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // Any panic inside rustls while building the config is still reported as an error rather
    // than taking the process down mid-start.
    let (cert, key) = (cert.to_path_buf(), key.to_path_buf());
    let loaded = tokio::spawn(async move {
        axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await
    })
    .await;
    match loaded {
        Ok(result) => result.with_context(what),
        Err(e) if e.is_panic() => Err(anyhow::anyhow!(
            "HTTPS could not be set up (terminate TLS in a reverse proxy instead)"
        ))
        .with_context(what),
        Err(e) => Err(e).with_context(what),
    }
}

/// Waits for SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested; draining in-flight requests");
}

/// `scim-server serve`.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Store calls record their latency themselves (`metrics::timed`, in the shared implementation).
    let store: Arc<dyn Store> = open_configured_store(&config).await?;
    store.migrate().await.context("applying migrations")?;
    ensure_tenant(store.as_ref(), &config.default_tenant, clock.as_ref()).await?;
    check_credential_tenants(&config, store.as_ref()).await?;
    first_start_token(&config, store.as_ref(), clock.as_ref()).await?;
    let auth = AuthService::from_config(
        &config.auth_config()?,
        crate::auth::token_store(store.clone()),
        clock.clone(),
    )
    .context("`[auth]`")?;
    let auth = match &config.token {
        Some(token) => auth.with_env_token(config.default_tenant.clone(), token.expose()),
        None => auth,
    };
    let oauth = auth.oauth_server();
    let mut state = AppState::with_clock(&config, store, Arc::new(auth), clock).with_oauth(oauth);
    if let Some(intake) = crate::inbound::open_intake(&config).await? {
        state = state.with_inbound(intake);
    }
    let follow_bridge = crate::bridge::graph_config(&config)?.is_some();
    let callbacks =
        crate::inbound::callback::Callbacks::open(&config, follow_bridge, state.clock.clone())
            .await?;
    if let Some(callbacks) = &callbacks {
        state = state.with_callbacks(callbacks.clone());
    }
    let bridge = crate::bridge::BackgroundWorker::start(
        &config,
        state.store.clone(),
        state.registry.clone(),
        callbacks.clone(),
    )
    .await?;
    let governance_bridge = match crate::bridge::graph_config(&config)? {
        Some(graph) => Some(
            crate::bridge::BridgeContext::open(
                &graph,
                &config.database_url,
                state.store.clone(),
                state.registry.clone(),
                state.clock.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let governance = crate::governance::open_governance(
        &config,
        state.store.clone(),
        state.registry.clone(),
        governance_bridge,
        state.clock.clone(),
    )
    .await?;
    if let Some(g) = &governance {
        state = state.with_governance(g.clone());
    }
    // The metrics recorder before any background work: a gauge set before it exists goes to
    // the `metrics` facade's no-op recorder and is lost. The router would install it, but only
    // after the console's start-up (on PostgreSQL, pools and the bridge's migrations), which can
    // outlast the governance worker's first hygiene report, whose gauges are then set again
    // only an interval (an hour) later.
    let _ = crate::metrics::handle();
    let governance_worker = crate::governance::schedule::Background::start(governance);
    let callback_delivery = crate::inbound::callback::Background::start(callbacks);
    let upkeep = spawn_upkeep(&state);
    let intake_worker = crate::inbound::worker::Background::start(&state);
    let console = crate::console::mount(&config, &state).await?;
    let served = run(&config, crate::http::router_with(state, console)).await;
    upkeep.abort();
    intake_worker
        .shutdown(Duration::from_secs(config.shutdown_grace_seconds))
        .await;
    governance_worker
        .shutdown(Duration::from_secs(config.shutdown_grace_seconds))
        .await;
    bridge.shutdown().await;
    callback_delivery
        .shutdown(Duration::from_secs(config.shutdown_grace_seconds))
        .await;
    served
}

/// Serves `app` on the configured address (HTTP, or HTTPS with `[tls]`) until SIGTERM or
/// Ctrl-C, then drains in-flight requests for up to `shutdown_grace_seconds`. Used by `serve` and
/// by embedding applications that built their own router.
pub async fn run(config: &Config, app: axum::Router) -> anyhow::Result<()> {
    let addr: SocketAddr = config.listen.parse().context("`listen`")?;
    // Load the certificate before binding, so a bad `[tls]` fails before the address is printed.
    let tls_config = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => Some(load_tls(cert, key).await?),
        _ => None,
    };
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("binding {addr} (`listen` / SCIM_LISTEN)"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let tls = tls_config.is_some();
    let scheme = if tls { "https" } else { "http" };
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "scim-server listening on {scheme}://{bound}{}",
            config.base_path
        )?;
        out.flush()?;
    }
    tracing::info!(%bound, tls, "listening");
    let grace = Duration::from_secs(config.shutdown_grace_seconds);
    let handle = axum_server::Handle::new();
    let shutdown = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        shutdown.graceful_shutdown(Some(grace));
    });
    // A client that opens a connection and sends its headers slowly (or never) is disconnected
    // after this, rather than holding a connection for as long as it likes.
    let header_timeout = Duration::from_secs(config.limits.header_read_timeout_seconds);
    if let Some(tls_config) = tls_config {
        let mut server = axum_server::from_tcp_rustls(listener, tls_config).handle(handle);
        server
            .http_builder()
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout);
        server
            .serve(app.into_make_service_with_connect_info::<SocketAddr>())
            .await?;
    } else {
        let mut server = axum_server::from_tcp(listener).handle(handle);
        server
            .http_builder()
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout);
        server
            .serve(app.into_make_service_with_connect_info::<SocketAddr>())
            .await?;
    }
    tracing::info!("stopped");
    Ok(())
}
