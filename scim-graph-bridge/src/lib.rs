//! Microsoft Graph joiner/mover/leaver bridge for the SCIM toolkit.
//!
//! The bridge turns accepted SCIM changes into Microsoft Graph operations by
//! *desired-state reconciliation*: for every user touched by a change it
//! evaluates the [`rules`] on the current SCIM user, reads the user's actual
//! state in Graph restricted to the rules' catalog, computes a [`plan`] of the
//! difference and applies it through the [`graph`] client ([`reconcile`]).
//! Work is taken from the server's `scim_changes` outbox by a [`worker`] with
//! leases, backoff and dead letters kept in the [`store`].
//!
//! Invariants:
//! - Nothing outside the catalog (groups, licenses, roles named by the rules
//!   file) is ever added or removed, so manual grants survive.
//! - In [`config::Mode::Plan`] (the default until credentials are configured)
//!   no Graph call is made at all.
//! - Re-running a reconcile converges: "already done" answers count as success.
//! - Leaver actions beyond the [`guard`]'s limit wait for an operator instead of being applied.
//! - Time is a parameter ([`clock::Clock`]); no code reads the wall clock directly.
//!
//! With the `fake-graph` feature, `fake_graph` is a loopback HTTP emulation of
//! the Graph endpoints the bridge uses, for tests and demos; the default build
//! has no HTTP server (and no axum) in it.

pub mod clock;
pub mod config;
pub mod directory;
pub mod error;
#[cfg(feature = "fake-graph")]
pub mod fake_graph;
pub mod graph;
pub mod guard;
pub mod holders;
pub mod notify;
pub mod outbox;
pub mod overrides;
pub mod plan;
pub mod pool;
pub mod reconcile;
pub mod rules;
pub mod secret;
pub mod store;
pub mod worker;
pub mod write_gate;

pub use error::{Error, Result};
