//! A consistent snapshot of the sled store: written while writes wait.

use super::SledStore;
use super::keys::decode;
use crate::audit::AuditEntry;
use crate::snapshot::{Line, LineWriter, SNAPSHOT_FORMAT, SnapshotSummary};
use crate::{RevokedEntry, StoreError};

impl SledStore {
    /// See [`crate::Store::write_snapshot`]. sled has no snapshots of its own: new
    /// certificates and every lifecycle change wait on the audit lock, plugin key-value writes
    /// on the usage lock, for the length of the pass.
    pub(crate) fn snapshot_into(
        &self,
        mut out: LineWriter<'_>,
    ) -> Result<SnapshotSummary, StoreError> {
        let inner = self.inner()?;
        let _audit = inner.lock_audit();
        let _kv = self
            .shared
            .kv_usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let corrupt = |key: String, e: serde_json::Error| StoreError::Corrupt {
            key,
            reason: e.to_string(),
        };
        let certificates = inner.certificates.len() as u64;
        let audit_entries = inner.audit.len() as u64;
        out.write(&Line::Header {
            format: SNAPSHOT_FORMAT,
            certificates,
            audit_entries,
        })?;
        for item in inner.audit.iter() {
            let (key, value) = item?;
            let entry: AuditEntry = serde_json::from_slice(&value)
                .map_err(|e| corrupt(format!("audit {}", hex::encode(&key)), e))?;
            out.write(&Line::Audit(entry))?;
        }
        for item in inner.by_issued.iter() {
            let (key, _) = item?;
            let serial = String::from_utf8_lossy(&key[8.min(key.len())..]).into_owned();
            if let Some(bytes) = inner.certificates.get(serial.as_bytes())? {
                out.write(&Line::Certificate(decode(&serial, &bytes)?))?;
            }
        }
        for item in inner.revoked.iter() {
            let (key, value) = item?;
            let entry: RevokedEntry = serde_json::from_slice(&value)
                .map_err(|e| corrupt(String::from_utf8_lossy(&key).into_owned(), e))?;
            out.write(&Line::Revoked(entry))?;
        }
        for item in inner.plugin_kv.iter() {
            let (key, value) = item?;
            let mut parts = key.splitn(2, |b| *b == 0);
            let plugin = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let key = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            out.write(&Line::PluginKv {
                plugin,
                key,
                value: value.to_vec(),
            })?;
        }
        for (kind, id, value) in self.acme_entries()? {
            out.write(&Line::Acme { kind, id, value })?;
        }
        out.write(&Line::CrlNumber(self.crl_number_issued()?))?;
        out.finish(certificates, audit_entries)
    }
}
