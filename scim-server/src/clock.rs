//! Time as a parameter: everything that reads the clock (timestamps, token expiry, rate limits)
//! goes through a [`Clock`], so tests can fix or advance time without sleeping.
//!
//! The crate has one clock trait; it is defined next to the authentication code that first
//! needed it and re-exported here for the rest of the server.

pub use crate::auth::clock::{Clock, ManualClock, SystemClock};
