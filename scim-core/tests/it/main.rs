//! scim-core integration tests: one module per engine.

mod patch;
