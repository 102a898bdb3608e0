//! The integration tests of scim-server (one binary, one module per area).

mod auth;
