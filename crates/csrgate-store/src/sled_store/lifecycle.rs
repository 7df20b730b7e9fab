//! Changes to recorded certificates: revoke, delete, import, CRL Numbers, and the audit appends they make.
use sled::Transactional as _;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::SledStore;
use super::keys::{IndexKeys, decode, encode, serial_key};
use crate::audit::{AuditAction, AuditEntry, AuditEvent, AuditHead, GENESIS};
use crate::{
    CertificateRecord, CertificateStatus, Imported, Revocation, RevocationReason, RevokedEntry,
    Serial, StoreError,
};

impl SledStore {
    /// Records a certificate issued elsewhere (a hand-run OpenSSL CA being adopted), with its
    /// revocation when it has one, and an `import` audit entry by `actor` at `now` (Unix
    /// seconds), in one transaction. A serial already stored is left as it is and reported as
    /// [`Imported::AlreadyPresent`], so running an import again changes nothing, unless the
    /// import says revoked and the store says valid: then the revocation is applied
    /// ([`Imported::Revoked`]). Not durable
    /// until [`SledStore::flush`]: an import is idempotent, so an interrupted one is run again.
    pub fn import_certificate(
        &self,
        record: &CertificateRecord,
        actor: &str,
        now: i64,
    ) -> Result<Imported, StoreError> {
        let inner = self.inner()?;
        let value = encode(record)?;
        let sequence = inner.db.generate_id()?;
        let keys = IndexKeys::of(record, sequence);
        let revoked_entry = match &record.revocation {
            Some(revocation) => Some(encode(&RevokedEntry {
                serial: record.serial.clone(),
                revoked_at: revocation.revoked_at,
                reason: revocation.reason,
                invalidity_date: revocation.invalidity_date,
                not_after: record.not_after,
            })?),
            None => None,
        };
        let event = AuditEvent {
            action: AuditAction::Import,
            serial: record.serial.clone(),
            client_hash: record.client_hash.clone(),
            actor: actor.to_owned(),
        };
        let _audit = inner.lock_audit();
        let outcome = inner
            .record_trees()
            .transaction(
                |(certificates, by_client, by_expiry, by_issued, revoked, audit, meta)| {
                    let abort = ConflictableTransactionError::Abort;
                    if let Some(bytes) = certificates.get(keys.serial.as_slice())? {
                        let mut stored = decode(&record.serial, &bytes).map_err(abort)?;
                        // Revoked in the other CA since the last import: the revocation is
                        // news, and a CRL or OCSP answer without it would say good.
                        let (Some(entry), Some(revocation), None) =
                            (&revoked_entry, &record.revocation, &stored.revocation)
                        else {
                            return Ok(Imported::AlreadyPresent);
                        };
                        stored.status = CertificateStatus::Revoked;
                        stored.revocation = Some(revocation.clone());
                        certificates
                            .insert(keys.serial.as_slice(), encode(&stored).map_err(abort)?)?;
                        revoked.insert(keys.serial.as_slice(), entry.as_slice())?;
                        let revoke = AuditEvent {
                            action: AuditAction::Revoke,
                            client_hash: stored.client_hash.clone(),
                            ..event.clone()
                        };
                        append_audit(audit, meta, now, &revoke)?;
                        return Ok(Imported::Revoked);
                    }
                    certificates.insert(keys.serial.as_slice(), value.as_slice())?;
                    by_client.insert(keys.by_client.as_slice(), &[])?;
                    by_expiry.insert(keys.by_expiry.as_slice(), &[])?;
                    by_issued.insert(keys.by_issued.as_slice(), &[])?;
                    if let Some(entry) = &revoked_entry {
                        revoked.insert(keys.serial.as_slice(), entry.as_slice())?;
                    }
                    append_audit(audit, meta, now, &event)?;
                    Ok(Imported::Added)
                },
            )
            .map_err(transaction_error);
        self.watch(outcome)
    }

    /// Makes the next CRL Number at least `next` (an adopted CA's `crlnumber` file holds the
    /// number its next CRL would have had), so numbers keep increasing across the adoption
    /// (RFC 5280 5.2.3). Never lowers it. Not durable until [`SledStore::flush`].
    pub fn continue_crl_numbers_from(&self, next: u64) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let floor = next.saturating_sub(1);
        let updated = inner.meta.update_and_fetch("crl_number", |old| {
            let current = old
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            Some(current.max(floor).to_be_bytes().to_vec())
        });
        self.watch(updated.map(drop).map_err(StoreError::from))
    }

    /// Revokes `serial` for `reason`, durably, and appends a `revoke` audit entry.
    /// Returns the updated record.
    pub async fn revoke(
        &self,
        serial: &Serial,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
        actor: &str,
        now: i64,
    ) -> Result<CertificateRecord, StoreError> {
        let inner = self.inner()?;
        let key = serial_key(serial);
        let audit_lock = inner.lock_audit();
        let updated = (
            &inner.certificates,
            &inner.revoked,
            &inner.audit,
            &inner.meta,
        )
            .transaction(|(certificates, revoked, audit, meta)| {
                let mut record = fetch(certificates, serial)?;
                if record.revocation.is_some() {
                    return Err(ConflictableTransactionError::Abort(
                        StoreError::AlreadyRevoked(serial.clone()),
                    ));
                }
                record.status = CertificateStatus::Revoked;
                record.revocation = Some(Revocation {
                    revoked_at: now,
                    reason,
                    invalidity_date,
                    actor: actor.to_owned(),
                });
                let entry = RevokedEntry {
                    serial: serial.clone(),
                    revoked_at: now,
                    reason,
                    invalidity_date,
                    not_after: record.not_after,
                };
                certificates.insert(
                    key.as_slice(),
                    encode(&record).map_err(ConflictableTransactionError::Abort)?,
                )?;
                revoked.insert(
                    key.as_slice(),
                    encode(&entry).map_err(ConflictableTransactionError::Abort)?,
                )?;
                append_audit(
                    audit,
                    meta,
                    now,
                    &event_for(AuditAction::Revoke, &record, actor),
                )?;
                Ok(record)
            })
            .map_err(transaction_error);
        drop(audit_lock);
        let updated = self.watch(updated)?;
        self.watch(inner.commit.durable().await)?;
        Ok(updated)
    }

    /// Hides `serial` from listings, durably, with a `delete` audit entry. A revoked certificate
    /// stays in the CRL until it expires: the `revoked` tree is not touched.
    pub async fn delete(
        &self,
        serial: &Serial,
        actor: &str,
        now: i64,
    ) -> Result<CertificateRecord, StoreError> {
        let inner = self.inner()?;
        let key = serial_key(serial);
        let audit_lock = inner.lock_audit();
        let updated = (&inner.certificates, &inner.audit, &inner.meta)
            .transaction(|(certificates, audit, meta)| {
                let mut record = fetch(certificates, serial)?;
                if record.deleted {
                    return Err(ConflictableTransactionError::Abort(StoreError::NotFound(
                        serial.clone(),
                    )));
                }
                record.deleted = true;
                certificates.insert(
                    key.as_slice(),
                    encode(&record).map_err(ConflictableTransactionError::Abort)?,
                )?;
                append_audit(
                    audit,
                    meta,
                    now,
                    &event_for(AuditAction::Delete, &record, actor),
                )?;
                Ok(record)
            })
            .map_err(transaction_error);
        drop(audit_lock);
        let updated = self.watch(updated)?;
        self.watch(inner.commit.durable().await)?;
        Ok(updated)
    }

    /// The next CRL number (1, 2, 3, ...), durably recorded before it is returned so a CRL number
    /// is never issued twice, even across a crash.
    pub async fn next_crl_number(&self) -> Result<u64, StoreError> {
        let inner = self.inner()?;
        let updated = inner.meta.update_and_fetch("crl_number", |old| {
            let current = old
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            Some((current + 1).to_be_bytes().to_vec())
        });
        let updated = self.watch(updated.map_err(StoreError::from))?;
        let number = updated
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map_or(1, u64::from_be_bytes);
        self.watch(inner.commit.durable().await)?;
        Ok(number)
    }
}

pub(super) fn transaction_error(error: TransactionError<StoreError>) -> StoreError {
    match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => StoreError::from(error),
    }
}

/// Reads and decodes `serial` inside a transaction, or aborts it with `NotFound`.
pub(super) fn fetch(
    certificates: &sled::transaction::TransactionalTree,
    serial: &Serial,
) -> Result<CertificateRecord, ConflictableTransactionError<StoreError>> {
    let Some(bytes) = certificates.get(serial_key(serial))? else {
        return Err(ConflictableTransactionError::Abort(StoreError::NotFound(
            serial.clone(),
        )));
    };
    decode(serial, &bytes).map_err(ConflictableTransactionError::Abort)
}

/// The audit event of `action` on `record` by `actor`.
pub(super) fn event_for(
    action: AuditAction,
    record: &CertificateRecord,
    actor: &str,
) -> AuditEvent {
    AuditEvent {
        action,
        serial: record.serial.clone(),
        client_hash: record.client_hash.clone(),
        actor: actor.to_owned(),
    }
}

/// Appends one audit entry inside a transaction; the head key in `meta` serialises appends.
pub(super) fn append_audit(
    audit: &sled::transaction::TransactionalTree,
    meta: &sled::transaction::TransactionalTree,
    time: i64,
    event: &AuditEvent,
) -> Result<(), ConflictableTransactionError<StoreError>> {
    let head = audit_head(&meta.get("audit_head")?).map_err(ConflictableTransactionError::Abort)?;
    let entry = AuditEntry::new(head.seq + 1, time, event.clone(), head.hash);
    audit.insert(
        &entry.seq.to_be_bytes(),
        encode(&entry).map_err(ConflictableTransactionError::Abort)?,
    )?;
    let new_head = AuditHead {
        seq: entry.seq,
        hash: entry.hash,
    };
    meta.insert(
        "audit_head",
        encode(&new_head).map_err(ConflictableTransactionError::Abort)?,
    )?;
    Ok(())
}

/// The audit chain's head as stored in `meta` (the genesis when the chain is empty).
pub(super) fn audit_head(stored: &Option<sled::IVec>) -> Result<AuditHead, StoreError> {
    match stored {
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            key: "audit_head".into(),
            reason: e.to_string(),
        }),
        None => Ok(AuditHead {
            seq: 0,
            hash: GENESIS.to_owned(),
        }),
    }
}
