//! The scim-server integration tests: one binary, one module per area.

mod store;
mod support;
