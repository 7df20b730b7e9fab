//! Recording a new certificate (or a successor) and finishing one a crash cut short.
use sled::Transactional as _;
use sled::transaction::ConflictableTransactionError;

use super::keys::{IndexKeys, decode, encode, serial_key};
use super::lifecycle::{append_audit, audit_head, transaction_error};
use super::{Inner, SledStore};
use crate::audit::{AuditAction, AuditEntry, AuditEvent, AuditHead};
use crate::{
    CertificateRecord, CertificateStatus, Predecessor, Revocation, RevokedEntry, StoreError,
};

impl SledStore {
    /// Stores a new record with its index entries and an `issue` audit entry (actor `client`)
    /// atomically, and returns once it is on disk. A record whose serial exists already is refused
    /// and nothing is written.
    #[cfg(test)]
    pub async fn insert_certificate(&self, record: &CertificateRecord) -> Result<(), StoreError> {
        self.insert_certificate_as(record, AuditAction::Issue, "client")
            .await
    }

    /// Like [`SledStore::insert_certificate`] with another audit action and actor.
    pub async fn insert_certificate_as(
        &self,
        record: &CertificateRecord,
        action: AuditAction,
        actor: &str,
    ) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let written = match insert_in_memory(&inner, record, action, actor, None) {
            Ok(()) => inner.commit.durable().await,
            Err(error) => Err(error),
        };
        self.watch(written)
    }

    /// Stores `record` as the successor of `predecessor.serial`, atomically: the old record gets
    /// `replaced_by`, and with `revoke_as` it is revoked with that reason (rotation). Refused when
    /// the old certificate is missing, deleted, revoked, already has a successor, or was issued
    /// to another client hash.
    pub async fn insert_successor(
        &self,
        record: &CertificateRecord,
        predecessor: &Predecessor,
    ) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let written = match insert_in_memory(
            &inner,
            record,
            predecessor.action,
            &predecessor.actor,
            Some(predecessor),
        ) {
            Ok(()) => inner.commit.durable().await,
            Err(error) => Err(error),
        };
        self.watch(written)
    }
}

/// Writes a new record with its index entries and audit entry, in memory: durable only after the
/// group commit that follows. A new certificate goes through a [`PendingInsert`] and plain
/// inserts (see the module docs); a successor, which also updates its predecessor, through a
/// sled transaction.
pub(super) fn insert_in_memory(
    inner: &Inner,
    record: &CertificateRecord,
    action: AuditAction,
    actor: &str,
    predecessor: Option<&Predecessor>,
) -> Result<(), StoreError> {
    let mut record = record.clone();
    if let Some(old) = predecessor {
        record.replaces = Some(old.serial.clone());
    }
    let value = encode(&record)?;
    let sequence = inner.db.generate_id()?;
    let event = AuditEvent {
        action,
        serial: record.serial.clone(),
        client_hash: record.client_hash.clone(),
        actor: actor.to_owned(),
    };
    let _audit = inner.lock_audit();
    if predecessor.is_none() {
        let key = serial_key(&record.serial);
        if inner.certificates.get(&key)?.is_some() {
            return Err(StoreError::DuplicateSerial(record.serial.clone()));
        }
        let head = audit_head(&inner.meta.get("audit_head")?)?;
        let pending = PendingInsert {
            sequence,
            audit: AuditEntry::new(head.seq + 1, record.issued_at, event, head.hash),
        };
        inner
            .pending_inserts
            .insert(key.as_slice(), encode(&pending)?)?;
        for (tree, key, value) in pending.writes(&record, value, &inner.insert_trees())? {
            tree.insert(key, value)?;
        }
        inner.pending_inserts.remove(key)?;
        return Ok(());
    }
    let keys = IndexKeys::of(&record, sequence);
    inner
        .record_trees()
        .transaction(
            |(certificates, by_client, by_expiry, by_issued, revoked, audit, meta)| {
                let abort = ConflictableTransactionError::Abort;
                if certificates.get(keys.serial.as_slice())?.is_some() {
                    return Err(abort(StoreError::DuplicateSerial(record.serial.clone())));
                }
                if let Some(old) = predecessor {
                    let Some(bytes) = certificates.get(serial_key(&old.serial))? else {
                        return Err(abort(StoreError::NotFound(old.serial.clone())));
                    };
                    let mut previous = decode(&old.serial, &bytes).map_err(abort)?;
                    if previous.deleted {
                        return Err(abort(StoreError::NotFound(old.serial.clone())));
                    }
                    if previous.client_hash != record.client_hash {
                        return Err(abort(StoreError::ClientMismatch(old.serial.clone())));
                    }
                    if previous.revocation.is_some() {
                        return Err(abort(StoreError::AlreadyRevoked(old.serial.clone())));
                    }
                    if previous.replaced_by.is_some() {
                        return Err(abort(StoreError::AlreadyReplaced(old.serial.clone())));
                    }
                    previous.replaced_by = Some(record.serial.clone());
                    if let Some(reason) = &old.revoke_as {
                        previous.status = CertificateStatus::Revoked;
                        previous.revocation = Some(Revocation {
                            revoked_at: record.issued_at,
                            reason: *reason,
                            invalidity_date: None,
                            actor: actor.to_owned(),
                        });
                        let entry = RevokedEntry {
                            serial: previous.serial.clone(),
                            revoked_at: record.issued_at,
                            reason: *reason,
                            invalidity_date: None,
                            not_after: previous.not_after,
                        };
                        revoked
                            .insert(serial_key(&previous.serial), encode(&entry).map_err(abort)?)?;
                        let revoke_event = AuditEvent {
                            action: AuditAction::Revoke,
                            serial: previous.serial.clone(),
                            client_hash: previous.client_hash.clone(),
                            actor: actor.to_owned(),
                        };
                        append_audit(audit, meta, record.issued_at, &revoke_event)?;
                    }
                    certificates.insert(
                        serial_key(&previous.serial),
                        encode(&previous).map_err(abort)?,
                    )?;
                }
                certificates.insert(keys.serial.as_slice(), value.as_slice())?;
                by_client.insert(keys.by_client.as_slice(), &[])?;
                by_expiry.insert(keys.by_expiry.as_slice(), &[])?;
                by_issued.insert(keys.by_issued.as_slice(), &[])?;
                append_audit(audit, meta, record.issued_at, &event)?;
                Ok(())
            },
        )
        .map_err(transaction_error)
}

/// Settles every insert a crash cut short (see the module docs), durably, before the store is
/// used: finished from its record, or discarded if the record was never written. At rest there
/// is none.
pub(super) fn finish_pending_inserts(inner: &Inner) -> Result<(), StoreError> {
    let mut settled = false;
    for item in inner.pending_inserts.iter() {
        let (serial, bytes) = item?;
        let serial = String::from_utf8_lossy(&serial).into_owned();
        let corrupt = |e: serde_json::Error| StoreError::Corrupt {
            key: format!("pending insert {serial}"),
            reason: e.to_string(),
        };
        let pending: PendingInsert = serde_json::from_slice(&bytes).map_err(corrupt)?;
        settled = true;
        let Some(value) = inner.certificates.get(serial.as_bytes())? else {
            // Cut before its first write: nothing of it is in any other tree.
            inner.pending_inserts.remove(serial.as_bytes())?;
            tracing::warn!(%serial, "discarded a certificate that a crash interrupted before it was recorded");
            continue;
        };
        let record = decode(&serial, &value)?;
        let head = audit_head(&inner.meta.get("audit_head")?)?;
        if head.seq > pending.audit.seq
            || (head.seq == pending.audit.seq && head.hash != pending.audit.hash)
        {
            // Another entry took this place in the chain: not a state a crash can leave.
            return Err(StoreError::AuditBroken(format!(
                "the pending insert of {serial} expected audit entry {}, the chain is at {}",
                pending.audit.seq, head.seq
            )));
        }
        for (tree, key, value) in pending.writes(&record, value.to_vec(), &inner.insert_trees())? {
            tree.insert(key, value)?;
        }
        inner.pending_inserts.remove(serial.as_bytes())?;
        tracing::warn!(%serial, "finished recording a certificate that a crash interrupted");
    }
    if settled {
        inner.db.flush()?;
    }
    Ok(())
}

/// The trees a new certificate is written to.
pub(super) struct InsertTrees<'a> {
    certificates: &'a sled::Tree,
    by_client: &'a sled::Tree,
    by_expiry: &'a sled::Tree,
    by_issued: &'a sled::Tree,
    audit: &'a sled::Tree,
    meta: &'a sled::Tree,
}

/// One key written to one tree: (tree, key, value).
pub(super) type Write<'t> = (&'t sled::Tree, Vec<u8>, Vec<u8>);

/// What a new certificate's change needs beyond its record, stored in `pending_inserts` before
/// any of its keys is written and removed after the last: with the record, what [`open_inner`]
/// needs to finish the change after a crash. The record is not copied here: it is the first
/// write, so a crash that kept any of the change kept it (a copy made the entry ~1.5 KiB, and
/// sled rewrites the entry's leaf every few inserts).
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct PendingInsert {
    /// Its insertion sequence, part of the listing index keys.
    pub(super) sequence: u64,
    /// Its audit entry, chained to the head read under the audit lock.
    pub(super) audit: AuditEntry,
}

impl PendingInsert {
    /// The record (`value`, its stored form), its three index keys, its audit entry and the new
    /// audit head, in the order they are written. Writing them again is harmless (same keys,
    /// same values), which is what makes finishing at open safe whatever part a crash kept.
    pub(super) fn writes<'t>(
        &self,
        record: &CertificateRecord,
        value: Vec<u8>,
        trees: &InsertTrees<'t>,
    ) -> Result<Vec<Write<'t>>, StoreError> {
        let keys = IndexKeys::of(record, self.sequence);
        let new_head = AuditHead {
            seq: self.audit.seq,
            hash: self.audit.hash.clone(),
        };
        Ok(vec![
            (trees.certificates, keys.serial, value),
            (trees.by_client, keys.by_client, Vec::new()),
            (trees.by_expiry, keys.by_expiry, Vec::new()),
            (trees.by_issued, keys.by_issued, Vec::new()),
            (
                trees.audit,
                self.audit.seq.to_be_bytes().to_vec(),
                encode(&self.audit)?,
            ),
            (trees.meta, b"audit_head".to_vec(), encode(&new_head)?),
        ])
    }
}

/// Every tree a certificate's record reaches, as the tuple sled transactions take:
/// `(certificates, by_client, by_expiry, by_issued, revoked, audit, meta)`.
pub(super) type RecordTrees<'t> = (
    &'t sled::Tree,
    &'t sled::Tree,
    &'t sled::Tree,
    &'t sled::Tree,
    &'t sled::Tree,
    &'t sled::Tree,
    &'t sled::Tree,
);

impl Inner {
    /// [`RecordTrees`]: for the transactions that write a record with its indexes, its CRL
    /// entry and an audit entry at once (a successor, an import, a prune).
    pub(super) fn record_trees(&self) -> RecordTrees<'_> {
        (
            &self.certificates,
            &self.by_client,
            &self.by_expiry,
            &self.by_issued,
            &self.revoked,
            &self.audit,
            &self.meta,
        )
    }

    pub(super) fn insert_trees(&self) -> InsertTrees<'_> {
        InsertTrees {
            certificates: &self.certificates,
            by_client: &self.by_client,
            by_expiry: &self.by_expiry,
            by_issued: &self.by_issued,
            audit: &self.audit,
            meta: &self.meta,
        }
    }

    /// The audit lock. It guards no data, so a panic while it was held poisons nothing.
    pub(super) fn lock_audit(&self) -> std::sync::MutexGuard<'_, ()> {
        self.audit_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
