//! Examples of embedding and extending the SCIM crates: see the files beside this one
//! (`cargo run -p scim-examples --example <name>`).
