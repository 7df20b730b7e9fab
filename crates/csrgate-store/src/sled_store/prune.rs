//! Retention: records expired for longer than the operator keeps them are removed in bounded
//! batches, each with a `prune` audit entry.

use sled::Transactional as _;
use sled::transaction::ConflictableTransactionError;

use super::SledStore;
use super::keys::{decode, order_preserving, time_key};
use super::lifecycle::{append_audit, event_for, transaction_error};
use crate::StoreError;
use crate::audit::AuditAction;

impl SledStore {
    /// See [`crate::Store::prune_expired`].
    pub fn prune_expired(
        &self,
        expired_before: i64,
        limit: usize,
        actor: &str,
        now: i64,
    ) -> Result<usize, StoreError> {
        let inner = self.inner()?;
        let end = order_preserving(expired_before).to_be_bytes();
        let mut doomed = Vec::new();
        for entry in inner.by_expiry.range(..end.to_vec()).take(limit) {
            let (key, _) = entry?;
            doomed.push(key[8..].to_vec());
        }
        let mut pruned = 0;
        for serial in doomed {
            let Some(bytes) = inner.certificates.get(&serial)? else {
                continue;
            };
            let record = decode(&String::from_utf8_lossy(&serial), &bytes)?;
            // The listing keys hold the insertion sequence, which the record does not: found in
            // the client's index, where the oldest (the ones retention removes) come first.
            let mut prefix = record.client_hash.as_bytes().to_vec();
            prefix.push(0);
            let mut client_key = None;
            for entry in inner.by_client.scan_prefix(&prefix) {
                let (key, _) = entry?;
                if key.ends_with(&serial) && key.len() == prefix.len() + 8 + serial.len() {
                    client_key = Some(key.to_vec());
                    break;
                }
            }
            let issued_key = client_key.as_ref().map(|key| key[prefix.len()..].to_vec());
            let expiry_key = time_key(record.not_after, &serial);
            let _audit = inner.lock_audit();
            let removed = inner
                .record_trees()
                .transaction(
                    |(certificates, by_client, by_expiry, by_issued, revoked, audit, meta)| {
                        if certificates.remove(serial.as_slice())?.is_none() {
                            return Ok(false);
                        }
                        if let Some(key) = &client_key {
                            by_client.remove(key.as_slice())?;
                        }
                        if let Some(key) = &issued_key {
                            by_issued.remove(key.as_slice())?;
                        }
                        by_expiry.remove(expiry_key.as_slice())?;
                        // Expired: no CRL lists it any more (RFC 5280 5.1.2.6 lists revoked
                        // certificates until their validity ends).
                        revoked.remove(serial.as_slice())?;
                        append_audit(
                            audit,
                            meta,
                            now,
                            &event_for(AuditAction::Prune, &record, actor),
                        )?;
                        Ok::<_, ConflictableTransactionError<StoreError>>(true)
                    },
                )
                .map_err(transaction_error);
            if self.watch(removed)? {
                pruned += 1;
            }
        }
        Ok(pruned)
    }
}
