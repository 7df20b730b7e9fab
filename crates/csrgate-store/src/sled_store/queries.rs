//! Reads: listing pages, point lookups, the CRL's entries, the audit chain, counts.
use super::SledStore;
use super::keys::{decode, hex_decode, order_preserving, serial_key, serial_of_key};
use crate::audit::{AuditEntry, AuditHead, verify_chain};
use crate::{
    CertificateRecord, ListPage, RevocationStatus, RevokedEntry, Serial, StoreError, StoreStats,
};

impl SledStore {
    /// One page of certificates, newest first. `cursor` is the `next_cursor` of the previous
    /// page; certificates issued after the first page was read never appear in later pages, and
    /// every older one appears exactly once. `keep` filters records (status, expiry); at most
    /// `limit` are returned, scanning at most `10 * limit + 1000` index entries per page.
    pub fn list_certificates(
        &self,
        client_hash: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&CertificateRecord) -> bool,
    ) -> Result<ListPage, StoreError> {
        let inner = self.inner()?;
        let (tree, prefix) = match client_hash {
            Some(hash) => {
                let mut prefix = hash.as_bytes().to_vec();
                prefix.push(0);
                (&inner.by_client, prefix)
            }
            None => (&inner.by_issued, Vec::new()),
        };
        let upper = match cursor {
            Some(text) => {
                let key =
                    hex_decode(text).ok_or_else(|| StoreError::InvalidCursor(text.to_owned()))?;
                if !key.starts_with(&prefix) {
                    return Err(StoreError::InvalidCursor(text.to_owned()));
                }
                std::ops::Bound::Excluded(key)
            }
            None => std::ops::Bound::Unbounded,
        };
        let range = (std::ops::Bound::Included(prefix.clone()), upper);
        let budget = limit.saturating_mul(10).saturating_add(1000);
        let mut records = Vec::new();
        let mut last_key = None;
        let mut exhausted = true;
        for (scanned, item) in tree.range::<Vec<u8>, _>(range).rev().enumerate() {
            let (key, _) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            if records.len() == limit || scanned == budget {
                exhausted = false;
                break;
            }
            let serial = &key[prefix.len() + 8..];
            last_key = Some(key.to_vec());
            if let Some(record) = self.certificate_at(serial)?
                && !record.deleted
                && keep(&record)
            {
                records.push(record);
            }
        }
        Ok(ListPage {
            records,
            next_cursor: if exhausted {
                None
            } else {
                last_key.map(|k| hex::encode(&k))
            },
        })
    }

    /// Every revoked certificate whose not-after is later than `now`: the CRL's entries.
    pub fn revoked_entries(&self, now: i64) -> Result<Vec<RevokedEntry>, StoreError> {
        let inner = self.inner()?;
        let mut entries = Vec::new();
        for item in inner.revoked.iter() {
            let (key, value) = item?;
            let entry: RevokedEntry =
                serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    reason: e.to_string(),
                })?;
            if entry.not_after > now {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// Audit entries with `seq > after`, oldest first, at most `limit`.
    pub fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let inner = self.inner()?;
        let start = (after.saturating_add(1)).to_be_bytes();
        let mut entries = Vec::new();
        for item in inner.audit.range(start..).take(limit) {
            let (key, value) = item?;
            entries.push(
                serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                    key: format!(
                        "audit {}",
                        u64::from_be_bytes(<[u8; 8]>::try_from(key.as_ref()).unwrap_or_default())
                    ),
                    reason: e.to_string(),
                })?,
            );
        }
        Ok(entries)
    }

    /// Walks the whole audit chain; `Ok(count)` when intact, else where it breaks.
    pub fn verify_audit(&self) -> Result<u64, StoreError> {
        let inner = self.inner()?;
        let entries = self.audit_entries(0, usize::MAX)?;
        let count = verify_chain(&entries).map_err(StoreError::AuditBroken)?;
        let head = inner.meta.get("audit_head")?;
        let head: Option<AuditHead> = head.and_then(|b| serde_json::from_slice(&b).ok());
        match (head, entries.last()) {
            (None, None) => Ok(count),
            (Some(head), Some(last)) if head.seq == last.seq && head.hash == last.hash => Ok(count),
            _ => Err(StoreError::AuditBroken(
                "the newest entries were removed (the chain head does not match)".into(),
            )),
        }
    }

    /// The record with this serial, if stored.
    pub fn certificate(&self, serial: &Serial) -> Result<Option<CertificateRecord>, StoreError> {
        self.certificate_at(&serial_key(serial))
    }

    /// The record under `key` (a [`serial_key`], as the index keys end), if stored: listings
    /// read the key they found without parsing and printing the serial again.
    pub(super) fn certificate_at(
        &self,
        key: &[u8],
    ) -> Result<Option<CertificateRecord>, StoreError> {
        self.inner()?
            .certificates
            .get(key)?
            .map(|bytes| decode(&String::from_utf8_lossy(key), &bytes))
            .transpose()
    }

    /// What an OCSP responder says of `serial`: revoked (the CRL's entry, kept after delete and
    /// after expiry), good (a certificate with that serial is recorded) or unknown. Two point
    /// reads, no record decoded.
    pub fn revocation_status(&self, serial: &Serial) -> Result<RevocationStatus, StoreError> {
        let inner = self.inner()?;
        let key = serial_key(serial);
        if let Some(value) = inner.revoked.get(&key)? {
            let entry = serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                key: serial.to_string(),
                reason: e.to_string(),
            })?;
            return Ok(RevocationStatus::Revoked(entry));
        }
        Ok(if inner.certificates.contains_key(&key)? {
            RevocationStatus::Good
        } else {
            RevocationStatus::Unknown
        })
    }

    /// Every record issued to `client_hash`, oldest first.
    pub fn certificates_for_client(
        &self,
        client_hash: &str,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let inner = self.inner()?;
        let mut prefix = client_hash.as_bytes().to_vec();
        prefix.push(0);
        let mut records = Vec::new();
        for entry in inner.by_client.scan_prefix(&prefix) {
            let (key, _) = entry?;
            let serial = &key[prefix.len() + 8..];
            if let Some(record) = self.certificate_at(serial)? {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// Serials whose not-after falls in `[from, until)` (Unix seconds), soonest first.
    pub fn serials_expiring_between(
        &self,
        from: i64,
        until: i64,
    ) -> Result<Vec<Serial>, StoreError> {
        let inner = self.inner()?;
        let start = order_preserving(from).to_be_bytes();
        let end = order_preserving(until).to_be_bytes();
        let mut serials = Vec::new();
        for entry in inner.by_expiry.range(start..end) {
            let (key, _) = entry?;
            serials.push(serial_of_key(&key[8..])?);
        }
        Ok(serials)
    }

    /// Record and index counts.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let inner = self.inner()?;
        Ok(StoreStats {
            certificates: inner.certificates.len(),
            client_index_entries: inner.by_client.len(),
            expiry_index_entries: inner.by_expiry.len(),
        })
    }

    /// See [`crate::Store::last_audit_entry`].
    pub fn last_audit_entry(&self) -> Result<Option<AuditEntry>, StoreError> {
        let inner = self.inner()?;
        let Some((_, value)) = inner.audit.last()? else {
            return Ok(None);
        };
        serde_json::from_slice(&value)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                key: "audit (newest)".into(),
                reason: e.to_string(),
            })
    }
}
