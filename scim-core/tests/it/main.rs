//! The one integration-test binary of `scim-core`; each engine adds a module.

mod filter;
