//! # scim-server
//!
//! The SCIM 2.0 service provider: an axum router and services over a [`store::Store`], used by
//! the `scim-server` binary and embeddable in other axum applications.

pub mod auth;
pub mod store;
