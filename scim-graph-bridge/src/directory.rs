//! Where the bridge reads SCIM users from: implemented by the server over its store.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::Result;

/// Read access to the SCIM users of a tenant.
#[async_trait::async_trait]
pub trait UserDirectory: Send + Sync {
    /// The user's SCIM JSON representation (enterprise extension under its URN),
    /// or `None` when it does not exist (deleted). Errors use [`crate::Error::Directory`].
    async fn get_user(&self, tenant: &str, id: &str) -> Result<Option<Value>>;
    /// Up to `limit` user ids in ascending order, strictly after `after`.
    async fn list_user_ids(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>>;
    /// How many users of the tenant are active (`active` true), for the mass-change guard's
    /// share limit; `None` when the directory cannot tell (then only the count limit applies).
    async fn count_active_users(&self, tenant: &str) -> Result<Option<u64>> {
        let _ = tenant;
        Ok(None)
    }
}

/// An in-memory directory, for tests and demos.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    users: Mutex<BTreeMap<(String, String), Value>>,
}

impl MemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }
    /// Inserts or replaces a user.
    pub fn put(&self, tenant: &str, id: &str, user: Value) {
        self.users
            .lock()
            .expect("directory")
            .insert((tenant.into(), id.into()), user);
    }
    /// Deletes a user.
    pub fn remove(&self, tenant: &str, id: &str) {
        self.users
            .lock()
            .expect("directory")
            .remove(&(tenant.into(), id.into()));
    }
}

#[async_trait::async_trait]
impl UserDirectory for MemoryDirectory {
    async fn get_user(&self, tenant: &str, id: &str) -> Result<Option<Value>> {
        Ok(self
            .users
            .lock()
            .expect("directory")
            .get(&(tenant.into(), id.into()))
            .cloned())
    }
    async fn list_user_ids(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let g = self.users.lock().expect("directory");
        Ok(g.keys()
            .filter(|(t, id)| t == tenant && after.is_none_or(|a| id.as_str() > a))
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect())
    }
    async fn count_active_users(&self, tenant: &str) -> Result<Option<u64>> {
        let g = self.users.lock().expect("directory");
        Ok(Some(
            g.iter()
                .filter(|((t, _), u)| t == tenant && u["active"] != Value::Bool(false))
                .count() as u64,
        ))
    }
}
