//! The bridge's [`AccessOverrides`] over the governance tables: a user's active review
//! exceptions become [`OverrideAction::Suppress`] overrides, so the planner leaves the revoked
//! grant out and says "suppressed by review …" (time-bound grants add their
//! [`OverrideAction::Add`] overrides here too).

use super::store::GovStore;
use scim_graph_bridge::overrides::{AccessOverrides, Grant, GrantKind, Override, OverrideAction};
use time::OffsetDateTime;

/// Overrides read from the governance tables.
#[derive(Debug, Clone)]
pub struct GovernanceOverrides {
    store: GovStore,
}

impl GovernanceOverrides {
    /// Overrides over `store`.
    pub fn new(store: GovStore) -> Self {
        Self { store }
    }
}

#[async_trait::async_trait]
impl AccessOverrides for GovernanceOverrides {
    async fn for_user(
        &self,
        tenant: &str,
        user_id: &str,
        now: OffsetDateTime,
    ) -> scim_graph_bridge::Result<Vec<Override>> {
        // time-bound grants first: a review's suppression still wins (applied after adds)
        let mut out = super::jit::overrides(
            &super::jit::JitStore::new(self.store.clone()),
            tenant,
            user_id,
            now,
        )
        .await
        .map_err(|e| {
            scim_graph_bridge::Error::Directory(format!("time-bound grants: {}", e.detail()))
        })?;
        let exceptions = self
            .store
            .exceptions(tenant, Some(user_id), false)
            .await
            .map_err(|e| {
                scim_graph_bridge::Error::Directory(format!("governance exceptions: {e}"))
            })?;
        out.extend(exceptions.into_iter().filter_map(|x| {
            Some(Override {
                grant: Grant::new(GrantKind::parse(&x.grant_kind)?, x.grant_name),
                action: OverrideAction::Suppress {
                    reason: match &x.review_id {
                        Some(r) => format!("review {r} (exception {})", x.id),
                        None => format!("exception {}", x.id),
                    },
                },
            })
        }));
        Ok(out)
    }
}
