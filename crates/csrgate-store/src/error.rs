//! The one error type of csrgate-store.

use crate::Serial;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be opened (missing permissions, locked by another process,
    /// damaged files).
    #[error("cannot open the store in {path}: {reason}")]
    Open {
        /// The data directory.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The store was written by a newer csrgate, or is not a csrgate store.
    #[error("store schema version {found} is not supported (this build reads version {supported})")]
    SchemaVersion {
        /// Version found on disk.
        found: String,
        /// Version this build writes.
        supported: u32,
    },
    /// A record with this serial exists already (a CSPRNG collision, or a replayed write).
    #[error("a certificate with serial {0} is already stored")]
    DuplicateSerial(Serial),
    /// No certificate with this serial (or it was deleted).
    #[error("no certificate with serial {0}")]
    NotFound(Serial),
    /// The certificate was revoked already.
    #[error("certificate {0} is already revoked")]
    AlreadyRevoked(Serial),
    /// The certificate was renewed or rotated already: it has a successor, and a second one
    /// would fork its history.
    #[error("certificate {0} was already renewed or rotated")]
    AlreadyReplaced(Serial),
    /// The certificate to replace was issued to another client hash.
    #[error("certificate {0} belongs to another client")]
    ClientMismatch(Serial),
    /// A listing cursor that this store did not hand out.
    #[error("invalid cursor {0:?}")]
    InvalidCursor(String),
    /// The audit chain does not verify.
    #[error("audit chain broken: {0}")]
    AuditBroken(String),
    /// Reading, writing or flushing failed: the disk is full, read-only or failing.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A plugin's writes would grow its key-value namespace past its quota; nothing was written.
    #[error("the key-value quota of {quota} bytes would be exceeded")]
    QuotaExceeded {
        /// The namespace's quota, bytes.
        quota: u64,
    },
    /// The caller's step inside a store operation failed (signing a CRL); nothing was stored.
    #[error("{0}")]
    Build(String),
    /// A stored record did not decode.
    #[error("stored record {key} is damaged: {reason}")]
    Corrupt {
        /// The key of the damaged record.
        key: String,
        /// The decoder's complaint.
        reason: String,
    },
}

impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}
