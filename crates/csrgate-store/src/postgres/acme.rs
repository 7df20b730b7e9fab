//! ACME's state in the `acme` table, shared by every replica: (kind, id) → value.

use super::PostgresStore;
use super::sql;
use crate::{AcmeKind, StoreError};

impl PostgresStore {
    /// See [`crate::Store::acme_get`].
    pub async fn acme_get(&self, kind: AcmeKind, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row = sql::query_opt(
            &client,
            "SELECT value FROM acme WHERE kind = $1 AND id = $2",
            &[&i16::from(kind.code()), &id],
        )
        .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// See [`crate::Store::acme_insert`].
    pub async fn acme_insert(
        &self,
        kind: AcmeKind,
        id: &str,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let inserted = sql::execute(
            &client,
            "INSERT INTO acme (kind, id, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&i16::from(kind.code()), &id, &value],
        )
        .await?;
        Ok(inserted == 1)
    }

    /// See [`crate::Store::acme_replace`].
    pub async fn acme_replace(
        &self,
        kind: AcmeKind,
        id: &str,
        expected: &[u8],
        value: &[u8],
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let replaced = sql::execute(
            &client,
            "UPDATE acme SET value = $4 WHERE kind = $1 AND id = $2 AND value = $3",
            &[&i16::from(kind.code()), &id, &expected, &value],
        )
        .await?;
        Ok(replaced == 1)
    }

    /// See [`crate::Store::acme_scan`].
    pub async fn acme_scan(
        &self,
        kind: AcmeKind,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let client = self.client().await?;
        let rows = sql::query(
            &client,
            "SELECT id, value FROM acme WHERE kind = $1 AND starts_with(id, $2) \
                 ORDER BY id COLLATE \"C\"",
            &[&i16::from(kind.code()), &prefix],
        )
        .await?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// See [`crate::Store::acme_remove_below`].
    pub async fn acme_remove_below(&self, kind: AcmeKind, bound: &str) -> Result<u64, StoreError> {
        let client = self.client().await?;
        sql::execute(
            &client,
            "DELETE FROM acme WHERE kind = $1 AND id COLLATE \"C\" < $2",
            &[&i16::from(kind.code()), &bound],
        )
        .await
    }

    /// Every ACME entry, by kind and id (copy and snapshots).
    pub(crate) async fn acme_entries(
        &self,
    ) -> Result<Vec<(AcmeKind, String, Vec<u8>)>, StoreError> {
        let client = self.client().await?;
        let rows = sql::query(
            &client,
            "SELECT kind, id, value FROM acme ORDER BY kind, id COLLATE \"C\"",
            &[],
        )
        .await?;
        rows.iter()
            .map(|row| Ok((kind_of(row.get(0))?, row.get(1), row.get(2))))
            .collect()
    }
}

/// The kind a stored `kind` column names.
pub(super) fn kind_of(code: i16) -> Result<AcmeKind, StoreError> {
    u8::try_from(code)
        .ok()
        .and_then(AcmeKind::from_code)
        .ok_or_else(|| StoreError::Corrupt {
            key: format!("acme kind {code}"),
            reason: "no ACME kind has this number".into(),
        })
}
