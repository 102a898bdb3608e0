//! The integration tests of scim-server (one binary, one module per area).

mod auth;
mod bridge;
mod callbacks;
mod console;
mod console_actions;
mod console_browser;
mod console_gov;
mod console_ops;
mod e2e;
mod ecosystem;
mod gov_access;
mod http;
mod inbound;
mod inbound_events;
mod inbound_import;
mod inbound_queue;
mod reliability;
mod store;
mod support;
