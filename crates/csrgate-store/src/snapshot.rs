//! Snapshots (`store backup`, `store restore`): everything a store holds as one JSON line per
//! item, taken consistently (sled: with writes paused; PostgreSQL: one REPEATABLE READ
//! transaction), and replayed into an empty store with the same idempotent writes `store copy`
//! uses, then verified.
//!
//! Layout: a header (format version, counts), the audit chain oldest first, the certificate
//! records in issuance order, the CRL's entries, the plugins' key-value entries, ACME's
//! objects, the last CRL
//! Number handed out, and an end line counting the lines before it (a truncated file is
//! refused). The chain comes first so that a destination with a history of its own is refused
//! before any record is written.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::audit::AuditEntry;
use crate::{CertificateRecord, RevokedEntry};
use crate::{CopyProgress, CopyReport, Restored, Store, StoreError};

/// How far past a snapshot's last CRL Number a restored store's numbers continue: more CRLs
/// than a CA publishes between a backup and its restore (one per revocation and per half
/// period), so none is numbered twice.
pub const RESTORED_CRL_NUMBER_GAP: u64 = 1_000_000;

/// The snapshot format this build writes and reads.
pub const SNAPSHOT_FORMAT: u32 = 2;

/// The oldest snapshot format this build reads: format 1 is format 2 without ACME lines.
const OLDEST_SNAPSHOT_FORMAT: u32 = 1;

/// One line of a snapshot.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Line {
    /// First line.
    Header {
        /// [`SNAPSHOT_FORMAT`].
        format: u32,
        /// Certificates in the snapshot.
        certificates: u64,
        /// Audit entries in the snapshot.
        audit_entries: u64,
    },
    Audit(AuditEntry),
    Certificate(CertificateRecord),
    Revoked(RevokedEntry),
    PluginKv {
        plugin: String,
        key: String,
        #[serde(with = "crate::record::base64_bytes")]
        value: Vec<u8>,
    },
    /// An ACME object (format 2 on).
    Acme {
        kind: crate::AcmeKind,
        id: String,
        #[serde(with = "crate::record::base64_bytes")]
        value: Vec<u8>,
    },
    /// The last CRL Number handed out.
    CrlNumber(u64),
    /// Last line: how many lines came before it.
    End {
        lines: u64,
    },
}

/// What a snapshot holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotSummary {
    /// Certificate records.
    pub certificates: u64,
    /// Audit entries.
    pub audit_entries: u64,
    /// Lines written, the end line included.
    pub lines: u64,
}

/// Writes lines to `out`, counting them.
pub(crate) struct LineWriter<'a> {
    out: &'a mut (dyn Write + Send),
    lines: u64,
}

impl<'a> LineWriter<'a> {
    pub(crate) fn new(out: &'a mut (dyn Write + Send)) -> Self {
        LineWriter { out, lines: 0 }
    }

    pub(crate) fn write(&mut self, line: &Line) -> Result<(), StoreError> {
        let io = |e: std::io::Error| StoreError::Unavailable(format!("snapshot: {e}"));
        serde_json::to_writer(&mut *self.out, line)
            .map_err(|e| StoreError::Unavailable(format!("snapshot: {e}")))?;
        self.out.write_all(b"\n").map_err(io)?;
        self.lines += 1;
        Ok(())
    }

    /// The end line; the summary of what was written.
    pub(crate) fn finish(
        mut self,
        certificates: u64,
        audit_entries: u64,
    ) -> Result<SnapshotSummary, StoreError> {
        let lines = self.lines;
        self.write(&Line::End { lines })?;
        self.out
            .flush()
            .map_err(|e| StoreError::Unavailable(format!("snapshot: {e}")))?;
        Ok(SnapshotSummary {
            certificates,
            audit_entries,
            lines: lines + 1,
        })
    }
}

impl Store {
    /// Writes a consistent snapshot of everything this store holds to `out` (see the module
    /// docs). sled: writes wait meanwhile (issuance pauses for the length of one pass over the
    /// store); PostgreSQL: one REPEATABLE READ transaction, replicas keep writing.
    pub async fn write_snapshot(
        &self,
        out: &mut (dyn Write + Send),
    ) -> Result<SnapshotSummary, StoreError> {
        self.snapshot_into(LineWriter::new(out)).await
    }

    /// Replays a snapshot into this store, which must be empty or hold an earlier, interrupted
    /// restore of the same snapshot (run it again to finish one), then verifies the counts and
    /// the audit chain. Errors: [`StoreError::Corrupt`] for a line that does not read or a
    /// truncated file, [`StoreError::AuditBroken`] when this store has a history of its own.
    pub async fn restore_snapshot(
        &self,
        input: &mut dyn BufRead,
        progress: &dyn CopyProgress,
    ) -> Result<CopyReport, StoreError> {
        let corrupt = |line: u64, reason: String| StoreError::Corrupt {
            key: format!("snapshot line {line}"),
            reason,
        };
        let mut report = CopyReport::default();
        let mut number = 0u64;
        let mut expected = None;
        let mut ended = false;
        let mut text = String::new();
        let mut stage = "";
        loop {
            text.clear();
            let read = input
                .read_line(&mut text)
                .map_err(|e| corrupt(number + 1, e.to_string()))?;
            if read == 0 {
                break;
            }
            if ended {
                return Err(corrupt(number + 1, "lines after the end line".into()));
            }
            number += 1;
            let line: Line =
                serde_json::from_str(&text).map_err(|e| corrupt(number, e.to_string()))?;
            let name = match &line {
                Line::Header { .. } | Line::End { .. } | Line::CrlNumber(_) => stage,
                Line::Audit(_) => "audit entries",
                Line::Certificate(_) => "certificates",
                Line::Revoked(_) => "revocations",
                Line::PluginKv { .. } => "plugin entries",
                Line::Acme { .. } => "ACME objects",
            };
            if name != stage {
                let total = match (name, expected) {
                    ("audit entries", Some((_, audit))) => Some(audit),
                    ("certificates", Some((certificates, _))) => Some(certificates),
                    _ => None,
                };
                progress.stage(name, total);
                stage = name;
            }
            match line {
                Line::Header {
                    format,
                    certificates,
                    audit_entries,
                } => {
                    if number != 1 {
                        return Err(corrupt(number, "a second header".into()));
                    }
                    if !(OLDEST_SNAPSHOT_FORMAT..=SNAPSHOT_FORMAT).contains(&format) {
                        return Err(corrupt(
                            number,
                            format!(
                                "format {format}; this build reads {OLDEST_SNAPSHOT_FORMAT} to \
                                 {SNAPSHOT_FORMAT}"
                            ),
                        ));
                    }
                    expected = Some((certificates, audit_entries));
                    if let Some(last) = self.last_audit_entry().await?
                        && last.seq > audit_entries
                    {
                        return Err(StoreError::AuditBroken(
                            "the destination has a longer audit chain than the snapshot: \
                             restore into an empty store"
                                .into(),
                        ));
                    }
                    continue;
                }
                _ if expected.is_none() => {
                    return Err(corrupt(number, "not a csrgate snapshot (no header)".into()));
                }
                Line::Audit(entry) => {
                    if self.restore_audit(&entry).await? == Restored::Added {
                        report.audit_written += 1;
                    }
                    report.audit_entries += 1;
                }
                Line::Certificate(record) => {
                    if self.restore_record(&record).await? != Restored::Present {
                        report.certificates_written += 1;
                    }
                    report.certificates += 1;
                }
                Line::Revoked(entry) => {
                    self.restore_revoked(&entry).await?;
                    report.revocations += 1;
                }
                Line::PluginKv { plugin, key, value } => {
                    self.plugin_kv_apply(
                        &plugin,
                        &[(key.as_str(), Some(value.as_slice()))],
                        u64::MAX,
                    )
                    .await?;
                    report.plugin_entries += 1;
                }
                Line::Acme { kind, id, value } => {
                    self.acme_restore(kind, &id, &value).await?;
                    report.acme_objects += 1;
                }
                Line::CrlNumber(issued) => {
                    // CRLs published after the snapshot was taken had higher numbers than it
                    // holds: the restored store continues well past them (RFC 5280 5.2.3 asks
                    // for increasing numbers, not consecutive ones).
                    self.continue_crl_numbers_from(issued + 1 + RESTORED_CRL_NUMBER_GAP)
                        .await?;
                    report.crl_number = issued;
                }
                Line::End { lines } => {
                    if lines != number - 1 {
                        return Err(corrupt(
                            number,
                            format!(
                                "the end line counts {lines} lines, {} came before it",
                                number - 1
                            ),
                        ));
                    }
                    ended = true;
                    continue;
                }
            }
            progress.advance(1);
            if number.is_multiple_of(1000) {
                self.flush().await?;
            }
        }
        if !ended {
            return Err(corrupt(
                number,
                "the file ends before its end line: it is truncated (what was read is restored; \
                 run the restore again with the whole file)"
                    .into(),
            ));
        }
        self.flush().await?;
        let Some((certificates, audit_entries)) = expected else {
            return Err(corrupt(0, "empty file".into()));
        };
        let stats = self.stats().await?;
        let chain = self.verify_audit().await?;
        if stats.certificates as u64 != certificates || chain != audit_entries {
            return Err(StoreError::AuditBroken(format!(
                "after the restore the store holds {} certificates and {chain} audit entries; \
                 the snapshot {certificates} and {audit_entries}: it held others before",
                stats.certificates
            )));
        }
        Ok(report)
    }
}
