//! Writes: a new certificate, a successor, an import, revoke and delete, each one transaction
//! that ends with its audit entry.

use super::sql;
use super::{
    PostgresStore, append_audit, encode, is_unique_violation, record_for_update, unavailable,
};
use crate::audit::{AuditAction, AuditEvent};
use crate::{
    CertificateRecord, CertificateStatus, Imported, Predecessor, Revocation, RevocationReason,
    RevokedEntry, Serial, StoreError,
};

impl PostgresStore {
    /// See [`crate::Store::insert_certificate_as`]: written with whatever other new
    /// certificates are waiting, in one transaction (`batch.rs`).
    pub async fn insert_certificate_as(
        &self,
        record: &CertificateRecord,
        action: AuditAction,
        actor: &str,
    ) -> Result<(), StoreError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let pending = super::batch::Pending {
            record: record.clone(),
            action,
            actor: actor.to_owned(),
            done,
        };
        self.batches
            .send(pending)
            .map_err(|_| StoreError::Unavailable("the batch writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the batch writer has stopped".into()))?
    }

    /// See [`crate::Store::insert_successor`].
    pub async fn insert_successor(
        &self,
        record: &CertificateRecord,
        predecessor: &Predecessor,
    ) -> Result<(), StoreError> {
        let mut record = record.clone();
        record.replaces = Some(predecessor.serial.clone());
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let mut previous = locked(&transaction, &predecessor.serial).await?;
        let old = &predecessor.serial;
        if previous.deleted {
            return Err(StoreError::NotFound(old.clone()));
        }
        if previous.client_hash != record.client_hash {
            return Err(StoreError::ClientMismatch(old.clone()));
        }
        if previous.revocation.is_some() {
            return Err(StoreError::AlreadyRevoked(old.clone()));
        }
        if previous.replaced_by.is_some() {
            return Err(StoreError::AlreadyReplaced(old.clone()));
        }
        previous.replaced_by = Some(record.serial.clone());
        insert_record(&transaction, &record).await?;
        if let Some(reason) = &predecessor.revoke_as {
            previous.status = CertificateStatus::Revoked;
            previous.revocation = Some(Revocation {
                revoked_at: record.issued_at,
                reason: *reason,
                invalidity_date: None,
                actor: predecessor.actor.clone(),
            });
            write_revoked(&transaction, &previous).await?;
        }
        update_record(&transaction, &previous).await?;
        if predecessor.revoke_as.is_some() {
            let revoke = event(AuditAction::Revoke, &previous, &predecessor.actor);
            append_audit(&transaction, record.issued_at, revoke).await?;
        }
        let issued = event(predecessor.action, &record, &predecessor.actor);
        append_audit(&transaction, record.issued_at, issued).await?;
        transaction.commit().await.map_err(unavailable)
    }

    /// See [`crate::Store::import_certificate`].
    pub async fn import_certificate(
        &self,
        record: &CertificateRecord,
        actor: &str,
        now: i64,
    ) -> Result<Imported, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let stored = record_for_update(&transaction, &record.serial).await?;
        let outcome = match stored {
            Some(mut stored) => {
                let (Some(revocation), None) = (&record.revocation, &stored.revocation) else {
                    return Ok(Imported::AlreadyPresent);
                };
                stored.status = CertificateStatus::Revoked;
                stored.revocation = Some(revocation.clone());
                update_record(&transaction, &stored).await?;
                write_revoked(&transaction, &stored).await?;
                append_audit(
                    &transaction,
                    now,
                    event(AuditAction::Revoke, &stored, actor),
                )
                .await?;
                Imported::Revoked
            }
            None => {
                insert_record(&transaction, record).await?;
                write_revoked(&transaction, record).await?;
                append_audit(&transaction, now, event(AuditAction::Import, record, actor)).await?;
                Imported::Added
            }
        };
        transaction.commit().await.map_err(unavailable)?;
        Ok(outcome)
    }

    /// See [`crate::Store::revoke`].
    pub async fn revoke(
        &self,
        serial: &Serial,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
        actor: &str,
        now: i64,
    ) -> Result<CertificateRecord, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let mut record = locked(&transaction, serial).await?;
        if record.revocation.is_some() {
            return Err(StoreError::AlreadyRevoked(serial.clone()));
        }
        record.status = CertificateStatus::Revoked;
        record.revocation = Some(Revocation {
            revoked_at: now,
            reason,
            invalidity_date,
            actor: actor.to_owned(),
        });
        update_record(&transaction, &record).await?;
        write_revoked(&transaction, &record).await?;
        append_audit(
            &transaction,
            now,
            event(AuditAction::Revoke, &record, actor),
        )
        .await?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(record)
    }

    /// See [`crate::Store::delete`].
    pub async fn delete(
        &self,
        serial: &Serial,
        actor: &str,
        now: i64,
    ) -> Result<CertificateRecord, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let mut record = locked(&transaction, serial).await?;
        if record.deleted {
            return Err(StoreError::NotFound(serial.clone()));
        }
        record.deleted = true;
        update_record(&transaction, &record).await?;
        append_audit(
            &transaction,
            now,
            event(AuditAction::Delete, &record, actor),
        )
        .await?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(record)
    }
}

/// The audit event of `action` on `record` by `actor`.
fn event(action: AuditAction, record: &CertificateRecord, actor: &str) -> AuditEvent {
    AuditEvent {
        action,
        serial: record.serial.clone(),
        client_hash: record.client_hash.clone(),
        actor: actor.to_owned(),
    }
}

/// Inserts a new record; [`StoreError::DuplicateSerial`] when the serial is taken.
pub(super) async fn insert_record(
    transaction: &deadpool_postgres::Transaction<'_>,
    record: &CertificateRecord,
) -> Result<(), StoreError> {
    transaction
        .execute(
            &transaction
                .prepare_cached(
                    "INSERT INTO certificates (serial, client_hash, not_after, record) \
             VALUES ($1, $2, $3, $4)",
                )
                .await
                .map_err(unavailable)?,
            &[
                &record.serial.to_string(),
                &record.client_hash,
                &record.not_after,
                &encode(record)?,
            ],
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::DuplicateSerial(record.serial.clone())
            } else {
                unavailable(e)
            }
        })?;
    Ok(())
}

/// Rewrites a stored record (its serial, client hash and notAfter never change).
pub(super) async fn update_record(
    transaction: &deadpool_postgres::Transaction<'_>,
    record: &CertificateRecord,
) -> Result<(), StoreError> {
    sql::execute(
        transaction,
        "UPDATE certificates SET record = $2 WHERE serial = $1",
        &[&record.serial.to_string(), &encode(record)?],
    )
    .await?;
    Ok(())
}

/// Writes the CRL entry of a revoked record (nothing for a valid one).
pub(super) async fn write_revoked(
    transaction: &deadpool_postgres::Transaction<'_>,
    record: &CertificateRecord,
) -> Result<(), StoreError> {
    match record.revoked_entry() {
        Some(entry) => write_revoked_entry(transaction, &entry).await,
        None => Ok(()),
    }
}

/// Writes (or replaces) one CRL entry.
pub(super) async fn write_revoked_entry(
    transaction: &deadpool_postgres::Transaction<'_>,
    entry: &RevokedEntry,
) -> Result<(), StoreError> {
    sql::execute(
        transaction,
        "INSERT INTO revoked (serial, not_after, entry) VALUES ($1, $2, $3) \
             ON CONFLICT (serial) DO UPDATE SET entry = EXCLUDED.entry",
        &[&entry.serial.to_string(), &entry.not_after, &encode(entry)?],
    )
    .await?;
    Ok(())
}

/// Reads `serial` and locks its row until the transaction ends; [`StoreError::NotFound`] when
/// it is not stored.
async fn locked(
    transaction: &deadpool_postgres::Transaction<'_>,
    serial: &Serial,
) -> Result<CertificateRecord, StoreError> {
    record_for_update(transaction, serial)
        .await?
        .ok_or_else(|| StoreError::NotFound(serial.clone()))
}
