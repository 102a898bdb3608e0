//! Time as a parameter: everything that reads the clock (timestamps, token expiry, rate limits)
//! or waits (write-retry backoff) goes through a [`Clock`], so tests can fix or advance time
//! without sleeping.
//!
//! The workspace has one clock trait, `scim_graph_bridge::clock::Clock` (the lowest crate with
//! an async runtime); it is re-exported here for the rest of the server.

pub use scim_graph_bridge::clock::{Clock, ManualClock, SystemClock};
