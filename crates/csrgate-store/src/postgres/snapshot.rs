//! A consistent snapshot of the PostgreSQL store: one REPEATABLE READ transaction, so the
//! replicas go on writing meanwhile.

use super::sql;
use super::{PostgresStore, decode, unavailable};
use crate::audit::AuditEntry;
use crate::snapshot::{Line, LineWriter, SNAPSHOT_FORMAT, SnapshotSummary};
use crate::{CertificateRecord, RevokedEntry, StoreError};

impl PostgresStore {
    /// See [`crate::Store::write_snapshot`].
    pub(crate) async fn snapshot_into(
        &self,
        mut out: LineWriter<'_>,
    ) -> Result<SnapshotSummary, StoreError> {
        let mut client = self.client().await?;
        let transaction = sql::consistent_view(&mut client).await?;
        // A whole store takes longer than a request's statement limit.
        transaction
            .batch_execute("SET LOCAL statement_timeout = 0")
            .await
            .map_err(unavailable)?;
        let count = |table: &'static str| {
            let transaction = &transaction;
            async move {
                let row = transaction
                    .query_one(format!("SELECT count(*) FROM {table}").as_str(), &[])
                    .await
                    .map_err(unavailable)?;
                Ok::<u64, StoreError>(row.get::<_, i64>(0) as u64)
            }
        };
        let certificates = count("certificates").await?;
        let audit_entries = count("audit").await?;
        out.write(&Line::Header {
            format: SNAPSHOT_FORMAT,
            certificates,
            audit_entries,
        })?;
        for row in transaction
            .query("SELECT seq, entry FROM audit ORDER BY seq", &[])
            .await
            .map_err(unavailable)?
        {
            let entry: AuditEntry = decode(&format!("audit {}", row.get::<_, i64>(0)), row.get(1))?;
            out.write(&Line::Audit(entry))?;
        }
        for row in transaction
            .query("SELECT serial, record FROM certificates ORDER BY seq", &[])
            .await
            .map_err(unavailable)?
        {
            let record: CertificateRecord = decode(row.get(0), row.get(1))?;
            out.write(&Line::Certificate(record))?;
        }
        for row in transaction
            .query("SELECT serial, entry FROM revoked ORDER BY serial", &[])
            .await
            .map_err(unavailable)?
        {
            let entry: RevokedEntry = decode(row.get(0), row.get(1))?;
            out.write(&Line::Revoked(entry))?;
        }
        for row in transaction
            .query(
                "SELECT plugin, key, value FROM plugin_kv ORDER BY plugin, key",
                &[],
            )
            .await
            .map_err(unavailable)?
        {
            out.write(&Line::PluginKv {
                plugin: row.get(0),
                key: row.get(1),
                value: row.get(2),
            })?;
        }
        for row in transaction
            .query(
                "SELECT kind, id, value FROM acme ORDER BY kind, id COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(unavailable)?
        {
            out.write(&Line::Acme {
                kind: super::acme::kind_of(row.get(0))?,
                id: row.get(1),
                value: row.get(2),
            })?;
        }
        transaction.commit().await.map_err(unavailable)?;
        out.write(&Line::CrlNumber(self.crl_number_issued().await?))?;
        out.finish(certificates, audit_entries)
    }
}
