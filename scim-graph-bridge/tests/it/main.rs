//! Integration tests of the bridge against the loopback fake Graph.

mod graph_client;
mod reconcile;
#[allow(dead_code)]
mod support;
