//! scim-core integration tests: one binary, one module per engine area.

mod model;
mod patch;
