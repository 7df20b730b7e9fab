//! The plugins' key-value namespaces in the `plugin_kv` tree.
use super::SledStore;
use super::keys::plugin_key;
use crate::StoreError;
use crate::plugin_kv::{KvWrites, size_delta};

impl SledStore {
    /// Reads `key` from `plugin`'s key-value namespace.
    pub fn plugin_kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .inner()?
            .plugin_kv
            .get(plugin_key(plugin, key))?
            .map(|v| v.to_vec()))
    }

    /// Applies one plugin call's writes to `plugin`'s namespace atomically (one sled batch),
    /// or refuses them all ([`StoreError::QuotaExceeded`]) when they would grow it past `quota`
    /// bytes. Not flushed on its own: durable with the next certificate's group commit, or at
    /// shutdown.
    pub fn plugin_kv_apply(
        &self,
        plugin: &str,
        writes: KvWrites<'_>,
        quota: u64,
    ) -> Result<(), StoreError> {
        let mut usage = self
            .shared
            .kv_usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let used = self.usage_in(&mut usage, plugin)?;
        let inner = self.inner()?;
        let mut old = Vec::with_capacity(writes.len());
        for (key, _) in writes {
            old.push(
                inner
                    .plugin_kv
                    .get(plugin_key(plugin, key))?
                    .map(|v| v.len()),
            );
        }
        let mut sizes = old.into_iter();
        let delta = size_delta(writes, |_| sizes.next().flatten());
        let after = used.saturating_add_signed(delta);
        if delta > 0 && after > quota {
            return Err(StoreError::QuotaExceeded { quota });
        }
        let mut batch = sled::Batch::default();
        for (key, value) in writes {
            match value {
                Some(value) => batch.insert(plugin_key(plugin, key), *value),
                None => batch.remove(plugin_key(plugin, key)),
            }
        }
        let applied = inner.plugin_kv.apply_batch(batch);
        self.watch(applied.map_err(StoreError::from))?;
        usage.1.insert(plugin.to_owned(), after);
        Ok(())
    }

    /// Bytes of `plugin`'s namespace, from the count kept since the last reopen.
    pub fn plugin_kv_usage(&self, plugin: &str) -> Result<u64, StoreError> {
        let mut usage = self
            .shared
            .kv_usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.usage_in(&mut usage, plugin)
    }

    fn usage_in(
        &self,
        (reopens, usage): &mut (u64, std::collections::HashMap<String, u64>),
        plugin: &str,
    ) -> Result<u64, StoreError> {
        let now = self.reopens();
        if *reopens != now {
            usage.clear();
            *reopens = now;
        }
        if let Some(bytes) = usage.get(plugin) {
            return Ok(*bytes);
        }
        let bytes = self.count_plugin_kv(plugin)?;
        usage.insert(plugin.to_owned(), bytes);
        Ok(bytes)
    }

    /// Bytes of `plugin`'s namespace, counted: its keys (without the namespace prefix) and
    /// values.
    fn count_plugin_kv(&self, plugin: &str) -> Result<u64, StoreError> {
        let inner = self.inner()?;
        let prefix = plugin_key(plugin, "");
        let mut bytes = 0u64;
        for entry in inner.plugin_kv.scan_prefix(&prefix) {
            let (key, value) = entry?;
            bytes += (key.len() - prefix.len() + value.len()) as u64;
        }
        Ok(bytes)
    }

    /// Every entry of `plugin`'s namespace, by key.
    pub fn plugin_kv_entries(&self, plugin: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let inner = self.inner()?;
        let prefix = plugin_key(plugin, "");
        let mut entries = Vec::new();
        for entry in inner.plugin_kv.scan_prefix(&prefix) {
            let (key, value) = entry?;
            entries.push((
                String::from_utf8_lossy(&key[prefix.len()..]).into_owned(),
                value.to_vec(),
            ));
        }
        Ok(entries)
    }
}
