//! What the server does with the bridge worker's news ([`BridgeEvents`]): a guard alert counts
//! on `/metrics` (`scim_bridge_guard_trips_total`, by tenant) and, like every settled plan, is
//! reported to the tenant's outcome callback when one is configured.

use crate::inbound::callback::Callbacks;
use scim_graph_bridge::guard::GuardAlert;
use scim_graph_bridge::notify::{BridgeEvents, Settled};
use std::sync::Arc;

/// The server's [`BridgeEvents`].
#[derive(Debug, Clone, Default)]
pub struct HostEvents {
    callbacks: Option<Arc<Callbacks>>,
}

impl HostEvents {
    /// Reporting to `callbacks` when given.
    pub fn new(callbacks: Option<Arc<Callbacks>>) -> Self {
        Self { callbacks }
    }
}

fn callback_error(e: crate::store::StoreError) -> scim_graph_bridge::Error {
    scim_graph_bridge::Error::Internal(format!("queueing an outcome callback: {e}"))
}

#[async_trait::async_trait]
impl BridgeEvents for HostEvents {
    async fn settled(&self, settled: &Settled) -> scim_graph_bridge::Result<()> {
        if let Some(callbacks) = &self.callbacks {
            callbacks
                .bridge_settled(settled)
                .await
                .map_err(callback_error)?;
        }
        Ok(())
    }

    async fn guard_tripped(&self, alert: &GuardAlert) -> scim_graph_bridge::Result<()> {
        metrics::counter!(crate::metrics::BRIDGE_GUARD_TRIPS, "tenant" => alert.tenant_id.clone())
            .increment(1);
        if let Some(callbacks) = &self.callbacks {
            callbacks
                .guard_tripped(alert)
                .await
                .map_err(callback_error)?;
        }
        Ok(())
    }
}
