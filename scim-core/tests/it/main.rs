//! Integration tests of scim-core: one binary, a module per engine.

mod filter;
mod model;
mod patch;
