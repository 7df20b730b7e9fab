//! Retention on PostgreSQL: one replica prunes at a time, in bounded batches.

use super::sql;
use super::{PostgresStore, append_audit_events, decode, unavailable};
use crate::audit::{AuditAction, AuditEvent};
use crate::{CertificateRecord, StoreError};

/// The advisory lock key held while pruning (`csrgate` + 3).
const PRUNE_LOCK: i64 = 0x6373_7267_6174_6503;

impl PostgresStore {
    /// See [`crate::Store::prune_expired`]. Returns 0 at once when another replica is pruning.
    pub async fn prune_expired(
        &self,
        expired_before: i64,
        limit: usize,
        actor: &str,
        now: i64,
    ) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let ours: bool = sql::query_one(
            &transaction,
            "SELECT pg_try_advisory_xact_lock($1)",
            &[&PRUNE_LOCK],
        )
        .await?
        .get(0);
        if !ours {
            return Ok(0);
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sql::query(
            &transaction,
            "DELETE FROM certificates WHERE serial IN (SELECT serial FROM certificates \
                         WHERE not_after < $1 ORDER BY not_after, serial LIMIT $2) \
                         RETURNING serial, record",
            &[&expired_before, &limit],
        )
        .await?;
        let mut records = rows
            .iter()
            .map(|row| decode::<CertificateRecord>(row.get(0), row.get(1)))
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING has no order: the audit entries follow the order the records were chosen in.
        records.sort_by(|a, b| (a.not_after, &a.serial).cmp(&(b.not_after, &b.serial)));
        let mut serials = Vec::with_capacity(records.len());
        let mut events = Vec::with_capacity(records.len());
        for record in records {
            events.push((
                now,
                AuditEvent {
                    action: AuditAction::Prune,
                    serial: record.serial.clone(),
                    client_hash: record.client_hash.clone(),
                    actor: actor.to_owned(),
                },
            ));
            serials.push(record.serial.to_string());
        }
        // Expired: no CRL lists them any more (RFC 5280 lists revoked certificates until their
        // validity ends).
        sql::execute(
            &transaction,
            "DELETE FROM revoked WHERE serial = ANY($1)",
            &[&serials],
        )
        .await?;
        append_audit_events(&transaction, events).await?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(rows.len())
    }
}
