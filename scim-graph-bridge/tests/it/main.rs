//! Integration tests of the bridge against the loopback fake Graph and real databases.

mod db;
mod graph_client;
mod guard;
mod holders;
mod migrations;
mod reconcile;
#[allow(dead_code)]
mod support;
mod worker;
