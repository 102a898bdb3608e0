//! Time as a parameter: token expiry, JWT `exp`/`nbf` and the JWKS refresh cooldown read a
//! [`Clock`], so tests move time instead of sleeping. The clock is the workspace's one clock,
//! defined in `scim_graph_bridge::clock`.

pub use scim_graph_bridge::clock::{Clock, ManualClock, SystemClock};
