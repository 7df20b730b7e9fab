//! The plugins' key-value namespaces, shared by every replica.

use super::sql;
use super::{PostgresStore, unavailable};
use crate::StoreError;
use crate::plugin_kv::{KvWrites, size_delta};

impl PostgresStore {
    /// See [`crate::Store::plugin_kv_get`].
    pub async fn plugin_kv_get(
        &self,
        plugin: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row = sql::query_opt(
            &client,
            "SELECT value FROM plugin_kv WHERE plugin = $1 AND key = $2",
            &[&plugin, &key],
        )
        .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// See [`crate::Store::plugin_kv_apply`]. The namespace is locked (a transaction-scoped
    /// advisory lock on its name) from measuring it to the commit, so two replicas cannot
    /// overshoot the quota together.
    pub async fn plugin_kv_apply(
        &self,
        plugin: &str,
        writes: KvWrites<'_>,
        quota: u64,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        sql::execute(
            &transaction,
            "SELECT pg_advisory_xact_lock(hashtextextended('csrgate.plugin_kv.' || $1, 0))",
            &[&plugin],
        )
        .await?;
        let keys: Vec<&str> = writes.iter().map(|(key, _)| *key).collect();
        let rows = sql::query(
            &transaction,
            "SELECT key, octet_length(value) FROM plugin_kv \
                 WHERE plugin = $1 AND key = ANY($2)",
            &[&plugin, &keys],
        )
        .await?;
        let old: std::collections::HashMap<String, usize> = rows
            .iter()
            .map(|row| (row.get(0), row.get::<_, i32>(1) as usize))
            .collect();
        let delta = size_delta(writes, |key| old.get(key).copied());
        // Only growth is measured against the quota: a write that shrinks or keeps the
        // namespace's size needs no scan of it.
        if delta > 0
            && usage(&transaction, plugin)
                .await?
                .saturating_add_signed(delta)
                > quota
        {
            return Err(StoreError::QuotaExceeded { quota });
        }
        for (key, value) in writes {
            let written = match value {
                Some(value) => transaction
                    .execute(
                        &transaction
                            .prepare_cached(
                                "INSERT INTO plugin_kv (plugin, key, value) VALUES ($1, $2, $3) \
                             ON CONFLICT (plugin, key) DO UPDATE SET value = EXCLUDED.value",
                            )
                            .await
                            .map_err(unavailable)?,
                        &[&plugin, key, value],
                    )
                    .await,
                None => {
                    transaction
                        .execute(
                            &transaction
                                .prepare_cached(
                                    "DELETE FROM plugin_kv WHERE plugin = $1 AND key = $2",
                                )
                                .await
                                .map_err(unavailable)?,
                            &[&plugin, key],
                        )
                        .await
                }
            };
            written.map_err(unavailable)?;
        }
        transaction.commit().await.map_err(unavailable)
    }

    /// See [`crate::Store::plugin_kv_usage`].
    pub async fn plugin_kv_usage(&self, plugin: &str) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let used = usage(&transaction, plugin).await?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(used)
    }

    /// See [`crate::Store::plugin_kv_entries`].
    pub async fn plugin_kv_entries(
        &self,
        plugin: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let client = self.client().await?;
        let rows = sql::query(
            &client,
            "SELECT key, value FROM plugin_kv WHERE plugin = $1 ORDER BY key",
            &[&plugin],
        )
        .await?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }
}

/// Bytes of `plugin`'s keys and values.
async fn usage(
    transaction: &deadpool_postgres::Transaction<'_>,
    plugin: &str,
) -> Result<u64, StoreError> {
    let bytes: i64 = sql::query_one(
        transaction,
        "SELECT coalesce(sum(octet_length(key) + octet_length(value)), 0)::bigint \
             FROM plugin_kv WHERE plugin = $1",
        &[&plugin],
    )
    .await?
    .get(0);
    Ok(bytes as u64)
}
