//! CRL Numbers from a sequence, and CRLs built by one replica at a time and shared.

use super::{PostgresStore, decode, unavailable};
use crate::crl::{CrlSigner, StoredCrl};
use crate::{RevokedEntry, StoreError};

/// The advisory lock key held while a CRL is built (`csrgate` + 2).
const CRL_LOCK: i64 = 0x6373_7267_6174_6502;

/// The channel replicas LISTEN on; the payload is the new CRL Number.
pub(crate) const CRL_CHANNEL: &str = "csrgate_crl";

impl PostgresStore {
    /// See [`crate::Store::next_crl_number`]: `nextval`, which no rollback returns.
    pub async fn next_crl_number(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let number: i64 = client
            .query_one(
                &client
                    .prepare_cached("SELECT nextval('crl_number')")
                    .await
                    .map_err(unavailable)?,
                &[],
            )
            .await
            .map_err(unavailable)?
            .get(0);
        Ok(number as u64)
    }

    /// See [`crate::Store::continue_crl_numbers_from`].
    pub async fn continue_crl_numbers_from(&self, next: u64) -> Result<(), StoreError> {
        let floor = i64::try_from(next.saturating_sub(1)).unwrap_or(i64::MAX);
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        transaction
            .execute(
                &transaction
                    .prepare_cached("SELECT pg_advisory_xact_lock($1)")
                    .await
                    .map_err(unavailable)?,
                &[&CRL_LOCK],
            )
            .await
            .map_err(unavailable)?;
        let row = transaction
            .query_one(
                &transaction
                    .prepare_cached("SELECT last_value, is_called FROM crl_number")
                    .await
                    .map_err(unavailable)?,
                &[],
            )
            .await
            .map_err(unavailable)?;
        let (last, called): (i64, bool) = (row.get(0), row.get(1));
        let current = if called { last } else { last - 1 };
        if floor > current {
            transaction
                .execute(
                    &transaction
                        .prepare_cached("SELECT setval('crl_number', $1, true)")
                        .await
                        .map_err(unavailable)?,
                    &[&floor],
                )
                .await
                .map_err(unavailable)?;
        }
        transaction.commit().await.map_err(unavailable)
    }

    /// See [`crate::Store::issue_crl`]. Under a transaction-scoped advisory lock: the newest
    /// stored CRL is reused when it is at least as new as `fresh_since` and no revocation was
    /// recorded in or after its thisUpdate second (a replica whose rebuild after a revocation
    /// failed must not leave that revocation out for another period), else the entries are
    /// read, a number taken, `sign` called, the CRL stored and announced (NOTIFY), and the lock
    /// released by the commit.
    pub async fn issue_crl(
        &self,
        now: i64,
        fresh_since: Option<i64>,
        sign: CrlSigner<'_>,
    ) -> Result<StoredCrl, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        transaction
            .execute(
                &transaction
                    .prepare_cached("SELECT pg_advisory_xact_lock($1)")
                    .await
                    .map_err(unavailable)?,
                &[&CRL_LOCK],
            )
            .await
            .map_err(unavailable)?;
        if let Some(since) = fresh_since
            && let Some(latest) = latest(&transaction).await?
            && latest.this_update >= since
            && !revoked_since(&transaction, latest.this_update).await?
        {
            transaction.commit().await.map_err(unavailable)?;
            return Ok(latest);
        }
        let rows = transaction
            .query(
                &transaction
                    .prepare_cached(
                        "SELECT serial, entry FROM revoked WHERE not_after > $1 ORDER BY serial",
                    )
                    .await
                    .map_err(unavailable)?,
                &[&now],
            )
            .await
            .map_err(unavailable)?;
        let entries = rows
            .iter()
            .map(|row| decode(row.get(0), row.get(1)))
            .collect::<Result<Vec<RevokedEntry>, StoreError>>()?;
        let number: i64 = transaction
            .query_one(
                &transaction
                    .prepare_cached("SELECT nextval('crl_number')")
                    .await
                    .map_err(unavailable)?,
                &[],
            )
            .await
            .map_err(unavailable)?
            .get(0);
        let crl = sign(&entries, number as u64).map_err(StoreError::Build)?;
        transaction
            .execute(
                &transaction
                    .prepare_cached(
                        "INSERT INTO crls (number, this_update, next_update, entries, der, pem) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .await
                    .map_err(unavailable)?,
                &[
                    &number,
                    &crl.this_update,
                    &crl.next_update,
                    &(crl.entries as i64),
                    &crl.der,
                    &crl.pem,
                ],
            )
            .await
            .map_err(unavailable)?;
        // Older CRLs are superseded; the newest few stay for whoever asks for one by number.
        transaction
            .execute(
                &transaction
                    .prepare_cached("DELETE FROM crls WHERE number < $1::bigint - 16")
                    .await
                    .map_err(unavailable)?,
                &[&number],
            )
            .await
            .map_err(unavailable)?;
        transaction
            .execute(
                &transaction
                    .prepare_cached("SELECT pg_notify($1, $2)")
                    .await
                    .map_err(unavailable)?,
                &[&CRL_CHANNEL, &number.to_string()],
            )
            .await
            .map_err(unavailable)?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(crl)
    }

    /// See [`crate::Store::latest_crl`].
    pub async fn latest_crl(&self) -> Result<Option<StoredCrl>, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let latest = latest(&transaction).await?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(latest)
    }
}

/// Whether a revocation dated `since` (Unix seconds) or later is recorded.
async fn revoked_since(
    transaction: &deadpool_postgres::Transaction<'_>,
    since: i64,
) -> Result<bool, StoreError> {
    let statement = transaction
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM revoked WHERE (entry::json->>'revoked_at')::bigint >= $1)",
        )
        .await
        .map_err(unavailable)?;
    Ok(transaction
        .query_one(&statement, &[&since])
        .await
        .map_err(unavailable)?
        .get(0))
}

/// The CRL with the highest number, if any was built.
async fn latest(
    transaction: &deadpool_postgres::Transaction<'_>,
) -> Result<Option<StoredCrl>, StoreError> {
    let row = transaction
        .query_opt(
            &transaction
                .prepare_cached(
                    "SELECT number, this_update, next_update, entries, der, pem FROM crls \
             ORDER BY number DESC LIMIT 1",
                )
                .await
                .map_err(unavailable)?,
            &[],
        )
        .await
        .map_err(unavailable)?;
    Ok(row.map(|row| StoredCrl {
        number: row.get::<_, i64>(0) as u64,
        this_update: row.get(1),
        next_update: row.get(2),
        entries: row.get::<_, i64>(3) as usize,
        der: row.get(4),
        pem: row.get(5),
    }))
}
