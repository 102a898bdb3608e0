//! The `scim-server` binary (placeholder until the CLI lands).
fn main() {}
