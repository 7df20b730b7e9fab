//! `store copy`: everything one store holds, into another (sled to PostgreSQL and back), then
//! verified. Every step is idempotent, so an interrupted copy is finished by running it again.

use crate::{Restored, Store, StoreError};

/// Records read per batch (and, on sled, written between flushes).
const BATCH: usize = 500;

/// Told how a copy advances, to show it (the CLI draws a progress bar).
pub trait CopyProgress {
    /// A stage starts: `certificates`, `revocations`, `audit entries` or `plugin entries`, with
    /// how many items it has when known.
    fn stage(&self, name: &'static str, total: Option<u64>);
    /// `items` more items of the current stage are done.
    fn advance(&self, items: u64);
}

/// What a copy did and found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Certificates in the source (and, verified, in the destination).
    pub certificates: u64,
    /// Of those, written now (the rest were there from an earlier run).
    pub certificates_written: u64,
    /// CRL entries copied (revocations are also part of their records).
    pub revocations: u64,
    /// Audit entries in the chain, verified in the destination.
    pub audit_entries: u64,
    /// Of those, appended now.
    pub audit_written: u64,
    /// Plugin key-value entries copied.
    pub plugin_entries: u64,
    /// ACME objects copied (accounts, orders, authorizations, nonce state).
    pub acme_objects: u64,
    /// The last CRL Number handed out by the source; the destination's next one is higher.
    pub crl_number: u64,
}

impl Store {
    /// Copies every certificate record (in issuance order, so listings keep their order), the
    /// CRL's entries, the audit chain (entry by entry, same hashes), the plugins' key-value
    /// entries, ACME's objects and the CRL Number from `self` into `to`, then verifies: the same number of
    /// certificates, and the destination's chain intact with the source's head.
    ///
    /// The source must not change meanwhile (stop the daemon; sled refuses a second opener
    /// anyway). A destination with a history of its own is refused
    /// ([`StoreError::AuditBroken`]) before its chain is touched.
    pub async fn copy_to(
        &self,
        to: &Store,
        progress: &dyn CopyProgress,
    ) -> Result<CopyReport, StoreError> {
        let mut report = CopyReport::default();
        let source_stats = self.stats().await?;
        // A destination whose chain is not a prefix of the source's (it went live since an
        // earlier copy, or holds another CA's history) stops the copy before anything is
        // written: records copied over it would roll its revocations back.
        if let Some(last) = to.last_audit_entry().await? {
            let at_source = self.audit_entries(last.seq.saturating_sub(1), 1).await?;
            if at_source.first() != Some(&last) {
                return Err(StoreError::AuditBroken(format!(
                    "the destination's audit entry {} is not the source's: it has a history of \
                     its own (it went live, or is another CA's store); copy into an empty store",
                    last.seq
                )));
            }
        }

        progress.stage("certificates", Some(source_stats.certificates as u64));
        let mut after = 0;
        loop {
            let batch = self.records_in_order(after, BATCH).await?;
            let Some((last, _)) = batch.last() else { break };
            after = *last;
            for (_, record) in &batch {
                if to.restore_record(record).await? != Restored::Present {
                    report.certificates_written += 1;
                }
            }
            to.flush().await?;
            progress.advance(batch.len() as u64);
        }

        // Entries whose records are gone (kept until the CRL no longer needs them).
        let revoked = self.revoked_entries(i64::MIN).await?;
        progress.stage("revocations", Some(revoked.len() as u64));
        for entry in &revoked {
            to.restore_revoked(entry).await?;
            progress.advance(1);
        }
        report.revocations = revoked.len() as u64;

        progress.stage("audit entries", None);
        let mut after = 0;
        loop {
            let batch = self.audit_entries(after, BATCH).await?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for entry in &batch {
                if to.restore_audit(entry).await? == Restored::Added {
                    report.audit_written += 1;
                }
            }
            to.flush().await?;
            progress.advance(batch.len() as u64);
        }

        let namespaces = self.plugin_kv_namespaces().await?;
        progress.stage("plugin entries", None);
        for plugin in &namespaces {
            let entries = self.plugin_kv_entries(plugin).await?;
            for chunk in entries.chunks(BATCH) {
                let writes: Vec<(&str, Option<&[u8]>)> = chunk
                    .iter()
                    .map(|(key, value)| (key.as_str(), Some(value.as_slice())))
                    .collect();
                to.plugin_kv_apply(plugin, &writes, u64::MAX).await?;
                progress.advance(chunk.len() as u64);
            }
            report.plugin_entries += entries.len() as u64;
        }

        let acme = self.acme_entries().await?;
        progress.stage("ACME objects", Some(acme.len() as u64));
        for (kind, id, value) in &acme {
            to.acme_restore(*kind, id, value).await?;
            progress.advance(1);
        }
        report.acme_objects = acme.len() as u64;
        to.flush().await?;

        report.crl_number = self.crl_number_issued().await?;
        to.continue_crl_numbers_from(report.crl_number + 1).await?;
        to.flush().await?;

        // Verified: the same certificates, and one chain with the same head.
        let copied = to.stats().await?;
        report.certificates = source_stats.certificates as u64;
        if copied.certificates != source_stats.certificates {
            return Err(StoreError::AuditBroken(format!(
                "the destination holds {} certificates, the source {}: it had certificates of \
                 its own",
                copied.certificates, source_stats.certificates
            )));
        }
        let source_chain = self.verify_audit().await?;
        let copied_chain = to.verify_audit().await?;
        let source_head = self
            .audit_entries(source_chain.saturating_sub(1), 1)
            .await?;
        let copied_head = to.audit_entries(copied_chain.saturating_sub(1), 1).await?;
        if source_chain != copied_chain || source_head != copied_head {
            return Err(StoreError::AuditBroken(format!(
                "the destination's chain has {copied_chain} entries, the source's {source_chain}"
            )));
        }
        report.audit_entries = copied_chain;
        Ok(report)
    }
}

impl Store {
    /// Writes an ACME object as a copy or restore brings it: the source's value wins (an order
    /// a rerun finds in an older state takes the source's).
    pub(crate) async fn acme_restore(
        &self,
        kind: crate::AcmeKind,
        id: &str,
        value: &[u8],
    ) -> Result<(), StoreError> {
        if self.acme_insert(kind, id, value).await? {
            return Ok(());
        }
        match self.acme_get(kind, id).await? {
            Some(found) if found != value => {
                self.acme_replace(kind, id, &found, value).await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
