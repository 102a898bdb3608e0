//! The scim-server integration tests (one binary; one module per area).

mod e2e;
mod http;
