//! CRL Numbers from a sequence, and CRLs built by one replica at a time and shared.

use super::sql;
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
        let number: i64 = sql::query_one(&client, "SELECT nextval('crl_number')", &[])
            .await?
            .get(0);
        Ok(number as u64)
    }

    /// See [`crate::Store::continue_crl_numbers_from`].
    pub async fn continue_crl_numbers_from(&self, next: u64) -> Result<(), StoreError> {
        let floor = i64::try_from(next.saturating_sub(1)).unwrap_or(i64::MAX);
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        sql::execute(
            &transaction,
            "SELECT pg_advisory_xact_lock($1)",
            &[&CRL_LOCK],
        )
        .await?;
        let row = sql::query_one(
            &transaction,
            "SELECT last_value, is_called FROM crl_number",
            &[],
        )
        .await?;
        let (last, called): (i64, bool) = (row.get(0), row.get(1));
        let current = if called { last } else { last - 1 };
        if floor > current {
            sql::execute(
                &transaction,
                "SELECT setval('crl_number', $1, true)",
                &[&floor],
            )
            .await?;
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
        sql::execute(
            &transaction,
            "SELECT pg_advisory_xact_lock($1)",
            &[&CRL_LOCK],
        )
        .await?;
        if let Some(since) = fresh_since
            && let Some(latest) = latest(&transaction).await?
            && latest.this_update >= since
            && !revoked_since(&transaction, latest.this_update).await?
        {
            transaction.commit().await.map_err(unavailable)?;
            return Ok(latest);
        }
        let rows = sql::query(
            &transaction,
            "SELECT serial, entry FROM revoked WHERE not_after > $1 ORDER BY serial",
            &[&now],
        )
        .await?;
        let entries = rows
            .iter()
            .map(|row| decode(row.get(0), row.get(1)))
            .collect::<Result<Vec<RevokedEntry>, StoreError>>()?;
        let number: i64 = sql::query_one(&transaction, "SELECT nextval('crl_number')", &[])
            .await?
            .get(0);
        let crl = sign(&entries, number as u64).map_err(StoreError::Build)?;
        sql::execute(
            &transaction,
            "INSERT INTO crls (number, this_update, next_update, entries, der, pem) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &number,
                &crl.this_update,
                &crl.next_update,
                &(crl.entries as i64),
                &crl.der,
                &crl.pem,
            ],
        )
        .await?;
        // Older CRLs are superseded; the newest few stay for whoever asks for one by number.
        sql::execute(
            &transaction,
            "DELETE FROM crls WHERE number < $1::bigint - 16",
            &[&number],
        )
        .await?;
        sql::execute(
            &transaction,
            "SELECT pg_notify($1, $2)",
            &[&CRL_CHANNEL, &number.to_string()],
        )
        .await?;
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
    let row = sql::query_opt(
        transaction,
        "SELECT number, this_update, next_update, entries, der, pem FROM crls \
             ORDER BY number DESC LIMIT 1",
        &[],
    )
    .await?;
    Ok(row.map(|row| StoredCrl {
        number: row.get::<_, i64>(0) as u64,
        this_update: row.get(1),
        next_update: row.get(2),
        entries: row.get::<_, i64>(3) as usize,
        der: row.get(4),
        pem: row.get(5),
    }))
}
