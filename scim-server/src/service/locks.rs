//! Per-resource write locks within one process.
//!
//! Updates are compare-and-swap on the version read, so correctness never depends on these
//! locks: across replicas the store's CAS decides, and a lost race is retried. Within one
//! replica, though, a burst of PATCHes to one group (Entra sends member adds for a group in
//! parallel) would otherwise race each other through every retry; queueing them here turns that
//! contention into a short wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Entries kept before dead ones are swept (amortised clean-up).
const SWEEP_AT: usize = 1024;

/// Named async locks, created on first use and forgotten when nobody holds them.
#[derive(Debug, Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    /// Waits for the lock named `key`; it is released when the guard drops.
    pub async fn lock(&self, key: String) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if locks.len() >= SWEEP_AT {
                locks.retain(|_, weak| weak.strong_count() > 0);
            }
            match locks.get(&key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(key, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    /// How many names are remembered (held or not yet swept).
    pub fn len(&self) -> usize {
        self.locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Whether no name is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_per_key_and_dead_entries_are_swept() {
        let locks = Arc::new(KeyedLocks::default());
        let held = locks.lock("a".into()).await;
        // Another key is free while "a" is held.
        drop(locks.lock("b".into()).await);
        let waiter = {
            let locks = locks.clone();
            tokio::spawn(async move { drop(locks.lock("a".into()).await) })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "a second holder of \"a\" waits");
        drop(held);
        waiter.await.unwrap();
        for i in 0..SWEEP_AT + 1 {
            drop(locks.lock(format!("k{i}")).await);
        }
        assert!(
            locks.len() <= SWEEP_AT,
            "unused entries are swept: {}",
            locks.len()
        );
    }
}
