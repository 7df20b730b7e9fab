//! What `store copy` needs of PostgreSQL: records in insertion order, and writes that restore
//! a record, a revocation or an audit entry exactly as another store holds it.

use super::lifecycle::{insert_record, update_record, write_revoked, write_revoked_entry};
use super::sql;
use super::{PostgresStore, decode, lock_audit_head, record_for_update, unavailable, write_audit};
use crate::audit::{AuditEntry, already_there, check_next_link};
use crate::{CertificateRecord, Restored, RevokedEntry, StoreError};

impl PostgresStore {
    /// See [`crate::Store::records_in_order`]: positions are `seq`.
    pub async fn records_in_order(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, CertificateRecord)>, StoreError> {
        let client = self.client().await?;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sql::query(
            &client,
            "SELECT seq, serial, record FROM certificates WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &limit],
        )
        .await?;
        rows.iter()
            .map(|row| Ok((row.get::<_, i64>(0) as u64, decode(row.get(1), row.get(2))?)))
            .collect()
    }

    /// See [`crate::Store::restore_record`].
    pub async fn restore_record(&self, record: &CertificateRecord) -> Result<Restored, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let stored = record_for_update(&transaction, &record.serial).await?;
        let outcome = match stored {
            Some(stored) if stored == *record => {
                return Ok(Restored::Present);
            }
            Some(_) => {
                update_record(&transaction, record).await?;
                Restored::Updated
            }
            None => {
                insert_record(&transaction, record).await?;
                Restored::Added
            }
        };
        write_revoked(&transaction, record).await?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(outcome)
    }

    /// See [`crate::Store::restore_revoked`].
    pub async fn restore_revoked(&self, entry: &RevokedEntry) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        write_revoked_entry(&transaction, entry).await?;
        transaction.commit().await.map_err(unavailable)
    }

    /// See [`crate::Store::restore_audit`].
    pub async fn restore_audit(&self, entry: &AuditEntry) -> Result<Restored, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let head = lock_audit_head(&transaction).await?;
        if entry.seq <= head.seq {
            let stored = sql::query_opt(
                &transaction,
                "SELECT entry FROM audit WHERE seq = $1",
                &[&(entry.seq as i64)],
            )
            .await?;
            let stored = stored
                .map(|row| decode::<AuditEntry>("audit", row.get(0)))
                .transpose()?;
            return already_there(stored.as_ref(), entry);
        }
        check_next_link(&head, entry)?;
        write_audit(&transaction, entry).await?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(Restored::Added)
    }

    /// See [`crate::Store::plugin_kv_namespaces`].
    pub async fn plugin_kv_namespaces(&self) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let rows = sql::query(
            &client,
            "SELECT DISTINCT plugin FROM plugin_kv ORDER BY plugin",
            &[],
        )
        .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// See [`crate::Store::crl_number_issued`].
    pub async fn crl_number_issued(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row =
            sql::query_one(&client, "SELECT last_value, is_called FROM crl_number", &[]).await?;
        let (last, called): (i64, bool) = (row.get(0), row.get(1));
        Ok(if called { last as u64 } else { 0 })
    }
}
