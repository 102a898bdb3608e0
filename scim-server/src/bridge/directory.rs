//! The bridge's view of the SCIM users: [`UserDirectory`] over the server's [`Store`].

use crate::store::{Load, Store};
use scim_core::query::{ListQuery, QueryLimits, QueryParams};
use scim_core::schema::{ResourceType, SchemaRegistry};
use scim_graph_bridge::directory::UserDirectory;
use serde_json::Value;
use std::sync::Arc;

/// SCIM users read through the server's [`Store`], in the representation the API returns
/// ([`scim_core::resource::Resource::to_json`]: core attributes at the top level, the enterprise
/// extension under its URN, `returned: never` attributes such as `password` dropped).
pub struct StoreDirectory {
    store: Arc<dyn Store>,
    registry: Arc<SchemaRegistry>,
}

impl std::fmt::Debug for StoreDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreDirectory").finish_non_exhaustive()
    }
}

fn directory_error(e: impl std::fmt::Display) -> scim_graph_bridge::Error {
    scim_graph_bridge::Error::Directory(e.to_string())
}

impl StoreDirectory {
    /// A directory over `store`, rendering users with `registry`'s schemas.
    pub fn new(store: Arc<dyn Store>, registry: Arc<SchemaRegistry>) -> Self {
        Self { store, registry }
    }

    fn user_type(&self) -> scim_graph_bridge::Result<&ResourceType> {
        self.registry
            .resource_type("User")
            .ok_or_else(|| directory_error("the schema registry has no User resource type"))
    }
}

#[async_trait::async_trait]
impl UserDirectory for StoreDirectory {
    async fn get_user(&self, tenant: &str, id: &str) -> scim_graph_bridge::Result<Option<Value>> {
        let rt = self.user_type()?;
        let user = self
            .store
            .get(tenant, rt, id, Load::default())
            .await
            .map_err(directory_error)?;
        Ok(user.map(|u| u.to_json(&self.registry, None)))
    }

    /// Pages with the filter `id gt "<after>"` in the store's default order (by id, RFC 7644
    /// list semantics with no `sortBy`); the page is re-checked here so that the contract
    /// (ascending, strictly after `after`) holds whatever the backend.
    async fn list_user_ids(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> scim_graph_bridge::Result<Vec<String>> {
        let rt = self.user_type()?;
        let limit = limit.max(1) as u64;
        let params = QueryParams {
            // a JSON string literal is a valid SCIM filter string (quotes and backslashes escaped)
            filter: after
                .map(|a| serde_json::to_string(a).map(|lit| format!("id gt {lit}")))
                .transpose()
                .map_err(directory_error)?,
            count: Some(limit.to_string()),
            attributes: Some("id".into()),
            ..QueryParams::default()
        };
        let query = ListQuery::from_params(
            &self.registry,
            rt,
            &params,
            QueryLimits {
                default_page_size: limit,
                max_page_size: limit,
            },
        )
        .map_err(directory_error)?;
        let page = self
            .store
            .list(tenant, rt, &query, Load::default())
            .await
            .map_err(directory_error)?;
        let mut ids: Vec<String> = page
            .resources
            .into_iter()
            .map(|r| r.id)
            .filter(|id| after.is_none_or(|a| id.as_str() > a))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// `active eq true`, counted by the store (a page of one, `totalResults` read).
    async fn count_active_users(&self, tenant: &str) -> scim_graph_bridge::Result<Option<u64>> {
        let rt = self.user_type()?;
        let params = QueryParams {
            filter: Some("active eq true".into()),
            count: Some("1".into()),
            attributes: Some("id".into()),
            ..QueryParams::default()
        };
        let query = ListQuery::from_params(
            &self.registry,
            rt,
            &params,
            QueryLimits {
                default_page_size: 1,
                max_page_size: 1,
            },
        )
        .map_err(directory_error)?;
        let page = self
            .store
            .list(tenant, rt, &query, Load::default())
            .await
            .map_err(directory_error)?;
        Ok(Some(page.total))
    }
}
