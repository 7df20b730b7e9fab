//! What `store copy` needs of sled: records in insertion order, and writes that restore a
//! record, a revocation or an audit entry exactly as another store holds it.

use sled::Transactional as _;
use sled::transaction::ConflictableTransactionError;

use super::SledStore;
use super::keys::{IndexKeys, decode, encode, serial_key, serial_of_key};
use super::lifecycle::{audit_head, transaction_error};
use crate::audit::{AuditEntry, AuditHead, already_there, check_next_link};
use crate::{CertificateRecord, Restored, RevokedEntry, StoreError};

impl SledStore {
    /// Up to `limit` records after insertion position `after`, in insertion order, with their
    /// positions.
    pub fn records_in_order(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, CertificateRecord)>, StoreError> {
        let inner = self.inner()?;
        // Positions are sequences + 1 (sled's first sequence is 0), so 0 means "from the start".
        let start = after.to_be_bytes();
        let mut out = Vec::new();
        for item in inner.by_issued.range(start..).take(limit) {
            let (key, _) = item?;
            let sequence = u64::from_be_bytes(<[u8; 8]>::try_from(&key[..8]).map_err(|_| {
                StoreError::Corrupt {
                    key: "by_issued".into(),
                    reason: "short key".into(),
                }
            })?);
            let serial = serial_of_key(&key[8..])?;
            if let Some(record) = self.certificate(&serial)? {
                out.push((sequence + 1, record));
            }
        }
        Ok(out)
    }

    /// Writes `record` as another store holds it, with its index entries and its CRL entry,
    /// and no audit entry (the chain is copied on its own).
    pub fn restore_record(&self, record: &CertificateRecord) -> Result<Restored, StoreError> {
        let inner = self.inner()?;
        let value = encode(record)?;
        let sequence = inner.db.generate_id()?;
        let keys = IndexKeys::of(record, sequence);
        let entry = record.revoked_entry().map(|e| encode(&e)).transpose()?;
        let restored = (
            &inner.certificates,
            &inner.by_client,
            &inner.by_expiry,
            &inner.by_issued,
            &inner.revoked,
        )
            .transaction(|(certificates, by_client, by_expiry, by_issued, revoked)| {
                let abort = ConflictableTransactionError::Abort;
                let outcome = match certificates.get(keys.serial.as_slice())? {
                    Some(stored) if decode(&record.serial, &stored).map_err(abort)? == *record => {
                        return Ok(Restored::Present);
                    }
                    Some(_) => Restored::Updated,
                    None => {
                        by_client.insert(keys.by_client.as_slice(), &[])?;
                        by_expiry.insert(keys.by_expiry.as_slice(), &[])?;
                        by_issued.insert(keys.by_issued.as_slice(), &[])?;
                        Restored::Added
                    }
                };
                certificates.insert(keys.serial.as_slice(), value.as_slice())?;
                if let Some(entry) = &entry {
                    revoked.insert(keys.serial.as_slice(), entry.as_slice())?;
                }
                Ok(outcome)
            })
            .map_err(transaction_error);
        self.watch(restored)
    }

    /// Writes a CRL entry as another store holds it (one whose record is gone too).
    pub fn restore_revoked(&self, entry: &RevokedEntry) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let written = inner
            .revoked
            .insert(serial_key(&entry.serial), encode(entry)?);
        self.watch(written.map(drop).map_err(StoreError::from))
    }

    /// Appends `entry` as it is (same seq, same hashes) when it is the next link, or confirms
    /// it is there already. Anything else is [`StoreError::AuditBroken`]: this chain and the
    /// source's differ.
    pub fn restore_audit(&self, entry: &AuditEntry) -> Result<Restored, StoreError> {
        let inner = self.inner()?;
        let _audit = inner.lock_audit();
        let head = audit_head(&inner.meta.get("audit_head")?)?;
        if entry.seq <= head.seq {
            let stored = inner.audit.get(entry.seq.to_be_bytes())?;
            let stored = stored
                .map(|bytes| serde_json::from_slice::<AuditEntry>(&bytes))
                .transpose()
                .map_err(|e| StoreError::Corrupt {
                    key: format!("audit {}", entry.seq),
                    reason: e.to_string(),
                })?;
            return already_there(stored.as_ref(), entry);
        }
        check_next_link(&head, entry)?;
        let new_head = encode(&AuditHead {
            seq: entry.seq,
            hash: entry.hash.clone(),
        })?;
        let value = encode(entry)?;
        let written = (&inner.audit, &inner.meta)
            .transaction(|(audit, meta)| {
                audit.insert(&entry.seq.to_be_bytes(), value.as_slice())?;
                meta.insert("audit_head", new_head.as_slice())?;
                Ok(())
            })
            .map_err(transaction_error);
        self.watch(written).map(|()| Restored::Added)
    }

    /// The plugins that have a key-value namespace, by name.
    pub fn plugin_kv_namespaces(&self) -> Result<Vec<String>, StoreError> {
        let inner = self.inner()?;
        let mut names: Vec<String> = Vec::new();
        for item in inner.plugin_kv.iter() {
            let (key, _) = item?;
            let name = key.split(|b| *b == 0).next().unwrap_or_default();
            let name = String::from_utf8_lossy(name).into_owned();
            if names.last() != Some(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// The last CRL Number handed out (0 before the first).
    pub fn crl_number_issued(&self) -> Result<u64, StoreError> {
        let inner = self.inner()?;
        Ok(inner
            .meta
            .get("crl_number")?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }
}
