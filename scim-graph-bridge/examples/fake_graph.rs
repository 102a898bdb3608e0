//! Runs the fake Microsoft Graph on 127.0.0.1 for demos, seeded with a small
//! catalog, and prints a matching `[graph]` section and rules file.
//!
//! `cargo run -p scim-graph-bridge --features fake-graph --example fake_graph` (stop with
//! Ctrl-C).

use scim_graph_bridge::fake_graph::{FakeConfig, FakeGraph};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let fake = FakeGraph::start(FakeConfig::default()).await?;
    let (all, eng, e5) = fake.with_directory(|d| {
        d.add_user(serde_json::json!({"userPrincipalName": "existing@contoso.example", "displayName": "Existing User", "usageLocation": "US"}));
        (d.add_group("all-staff"), d.add_group("eng"), d.add_sku("SPE_E5", 25))
    });
    let cfg = fake.config();
    println!("# [graph] section");
    println!("[graph]");
    println!("tenant_id = {:?}", cfg.tenant_id);
    println!("client_id = {:?}", cfg.client_id);
    println!(
        "client_secret = {:?}",
        cfg.client_secret.clone().unwrap_or_default()
    );
    println!("authority_url = {:?}", fake.authority_url());
    println!("graph_url = {:?}", fake.graph_url());
    println!("mode = \"apply\"");
    println!("rules = \"graph-rules.toml\"\n");
    println!("# graph-rules.toml");
    println!("[create]\nenabled = true\nusage_location = \"US\"");
    println!("[catalog.groups]\nall-staff = {all:?}\neng = {eng:?}");
    println!("[catalog.licenses]\ne5 = {{ sku_id = {e5:?} }}");
    println!("[defaults]\ngroups = [\"all-staff\"]");
    println!(
        "[[rule]]\nname = \"engineering\"\nwhen = {{ department = \"Engineering\" }}\ngroups = [\"eng\"]\nlicenses = [\"e5\"]\n"
    );
    println!(
        "# inspect: curl {}/_fake/state | curl {}/_fake/requests",
        fake.authority_url(),
        fake.authority_url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
