//! # scim-server
//!
//! The SCIM 2.0 service provider: an axum router and services over a [`store::Store`], used by
//! the `scim-server` binary and embeddable in other axum applications.
//!
//! - [`http`]: routes, extractors, error mapping, discovery and the OpenAPI document;
//! - [`service`]: the protocol logic each endpoint calls (no HTTP types);
//! - [`state`]: the [`state::AppState`] handlers receive;
//! - [`config`]: TOML plus `SCIM_` environment configuration;
//! - [`server`] and [`cli`]: the binary's subcommands;
//! - [`store`] and [`auth`]: storage and authentication behind traits;
//! - [`inbound`]: the HR intake (Entra-format bulkUpload) and its durable queue;
//! - [`governance`]: access reviews and the other governance features (`/governance/v1`).
//!
//! Embedding:
//!
//! ```no_run
//! # async fn example(store: std::sync::Arc<dyn scim_server::store::Store>) {
//! use scim_server::auth::{AuthConfig, AuthService, SystemClock, token_store};
//! use scim_server::{config::Config, state::AppState};
//! use std::sync::Arc;
//!
//! let config = Config::default();
//! let auth = AuthService::from_config(&AuthConfig::default(), token_store(store.clone()), Arc::new(SystemClock))
//!     .unwrap()
//!     .with_env_token("default", "a-long-random-secret-token");
//! let app: axum::Router = scim_server::http::router(AppState::new(&config, store, Arc::new(auth)));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```

pub mod auth;
pub mod bridge;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod fault;
pub mod governance;
pub mod http;
pub mod inbound;
pub mod metrics;
pub mod ratelimit;
pub mod server;
pub mod service;
pub mod state;
pub mod store;
#[cfg(feature = "test-support")]
pub mod test_support;
