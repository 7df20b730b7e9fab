//! Reads: listing pages, point lookups, the CRL's entries, the audit chain, counts.

use super::sql;
use super::{PostgresStore, decode, unavailable};
use crate::audit::{AuditEntry, verify_chain};
use crate::record::stored_serial;
use crate::{
    CertificateRecord, ListPage, RevocationStatus, RevokedEntry, Serial, StoreError, StoreStats,
};

/// Rows read per round trip while filling a listing page.
const LIST_BATCH: i64 = 256;

impl PostgresStore {
    /// See [`crate::Store::list_certificates`]. The cursor is the `seq` of the last row looked
    /// at, in decimal, and the listing (`all`, or the client hash in hex); a certificate committed later with a lower `seq` (a concurrent insert on
    /// another replica) is not seen by a walk already past it, and none is seen twice.
    pub async fn list_certificates(
        &self,
        client_hash: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
        keep: &(dyn Fn(&CertificateRecord) -> bool + Sync),
    ) -> Result<ListPage, StoreError> {
        // A cursor names the listing it belongs to, as sled's (a key of its index) does: one
        // handed out for another client's listing is refused, not silently reused.
        let scope = client_hash.map_or_else(|| "all".to_owned(), hex::encode);
        let mut below = match cursor {
            Some(text) => text
                .split_once('.')
                .filter(|(_, listing)| *listing == scope)
                .and_then(|(seq, _)| {
                    seq.parse::<i64>()
                        .ok()
                        .filter(|s| *s > 0 && seq.len() <= 19)
                })
                .ok_or_else(|| StoreError::InvalidCursor(text.to_owned()))?,
            None => i64::MAX,
        };
        let client = self.client().await?;
        let budget = limit.saturating_mul(10).saturating_add(1000);
        let mut records = Vec::new();
        let mut scanned = 0usize;
        let mut last_seq = None;
        loop {
            let rows = sql::query(
                &client,
                "SELECT seq, serial, record FROM certificates \
                     WHERE seq < $1 AND ($2::text IS NULL OR client_hash = $2) \
                     ORDER BY seq DESC LIMIT $3",
                &[&below, &client_hash, &LIST_BATCH],
            )
            .await?;
            let full = rows.len() as i64 == LIST_BATCH;
            for row in &rows {
                if records.len() == limit || scanned == budget {
                    return Ok(ListPage {
                        records,
                        next_cursor: last_seq.map(|seq: i64| format!("{seq}.{scope}")),
                    });
                }
                scanned += 1;
                let seq: i64 = row.get(0);
                last_seq = Some(seq);
                below = seq;
                let record: CertificateRecord = decode(row.get(1), row.get(2))?;
                if !record.deleted && keep(&record) {
                    records.push(record);
                }
            }
            if !full {
                return Ok(ListPage {
                    records,
                    next_cursor: None,
                });
            }
        }
    }

    /// See [`crate::Store::revoked_entries`].
    pub async fn revoked_entries(&self, now: i64) -> Result<Vec<RevokedEntry>, StoreError> {
        let client = self.client().await?;
        let rows = sql::query(
            &client,
            "SELECT serial, entry FROM revoked WHERE not_after > $1 ORDER BY serial",
            &[&now],
        )
        .await?;
        rows.iter()
            .map(|row| decode(row.get(0), row.get(1)))
            .collect()
    }

    /// See [`crate::Store::audit_entries`].
    pub async fn audit_entries(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let client = self.client().await?;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sql::query(
            &client,
            "SELECT seq, entry FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &limit],
        )
        .await?;
        rows.iter()
            .map(|row| decode(&format!("audit {}", row.get::<_, i64>(0)), row.get(1)))
            .collect()
    }

    /// See [`crate::Store::verify_audit`]: the chain, then its head row, in one snapshot.
    pub async fn verify_audit(&self) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let transaction = sql::consistent_view(&mut client).await?;
        let rows = sql::query(
            &transaction,
            "SELECT seq, entry FROM audit ORDER BY seq",
            &[],
        )
        .await?;
        let entries = rows
            .iter()
            .map(|row| decode(&format!("audit {}", row.get::<_, i64>(0)), row.get(1)))
            .collect::<Result<Vec<AuditEntry>, StoreError>>()?;
        let head = sql::query_one(
            &transaction,
            "SELECT seq, hash FROM audit_head WHERE id",
            &[],
        )
        .await?;
        transaction.commit().await.map_err(unavailable)?;
        let count = verify_chain(&entries).map_err(StoreError::AuditBroken)?;
        let (head_seq, head_hash): (i64, String) = (head.get(0), head.get(1));
        match entries.last() {
            None if head_seq == 0 => Ok(count),
            Some(last) if last.seq as i64 == head_seq && last.hash == head_hash => Ok(count),
            _ => Err(StoreError::AuditBroken(
                "the newest entries were removed (the chain head does not match)".into(),
            )),
        }
    }

    /// See [`crate::Store::certificate`].
    pub async fn certificate(
        &self,
        serial: &Serial,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        let serial = serial.to_string();
        let client = self.client().await?;
        let row = sql::query_opt(
            &client,
            "SELECT record FROM certificates WHERE serial = $1",
            &[&serial],
        )
        .await?;
        row.map(|row| decode(&serial, row.get(0))).transpose()
    }

    /// See [`crate::Store::revocation_status`]: one round trip.
    pub async fn revocation_status(&self, serial: &Serial) -> Result<RevocationStatus, StoreError> {
        let serial = serial.to_string();
        let client = self.client().await?;
        let row = sql::query_one(
            &client,
            "SELECT (SELECT entry FROM revoked WHERE serial = $1), \
                        EXISTS (SELECT 1 FROM certificates WHERE serial = $1)",
            &[&serial],
        )
        .await?;
        let entry: Option<&str> = row.get(0);
        Ok(match entry {
            Some(text) => RevocationStatus::Revoked(decode(&serial, text)?),
            None if row.get::<_, bool>(1) => RevocationStatus::Good,
            None => RevocationStatus::Unknown,
        })
    }

    /// See [`crate::Store::certificates_for_client`].
    pub async fn certificates_for_client(
        &self,
        client_hash: &str,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let client = self.client().await?;
        let rows = sql::query(
            &client,
            "SELECT serial, record FROM certificates WHERE client_hash = $1 ORDER BY seq",
            &[&client_hash],
        )
        .await?;
        rows.iter()
            .map(|row| decode(row.get(0), row.get(1)))
            .collect()
    }

    /// See [`crate::Store::serials_expiring_between`].
    pub async fn serials_expiring_between(
        &self,
        from: i64,
        until: i64,
    ) -> Result<Vec<Serial>, StoreError> {
        let client = self.client().await?;
        let rows = sql::query(
            &client,
            "SELECT serial FROM certificates WHERE not_after >= $1 AND not_after < $2 \
                 ORDER BY not_after, serial",
            &[&from, &until],
        )
        .await?;
        rows.iter().map(|row| stored_serial(row.get(0))).collect()
    }

    /// See [`crate::Store::stats`]: the indexes are the table's, so all three counts agree.
    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        let client = self.client().await?;
        let count: i64 = sql::query_one(&client, "SELECT count(*) FROM certificates", &[])
            .await?
            .get(0);
        let count = count as usize;
        Ok(StoreStats {
            certificates: count,
            client_index_entries: count,
            expiry_index_entries: count,
        })
    }

    /// See [`crate::Store::last_audit_entry`].
    pub async fn last_audit_entry(&self) -> Result<Option<AuditEntry>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT seq, entry FROM audit ORDER BY seq DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(unavailable)?;
        row.map(|row| decode(&format!("audit {}", row.get::<_, i64>(0)), row.get(1)))
            .transpose()
    }
}
