//! csrgate-store: the only crate that knows sled. It keeps one record per issued certificate with
//! indexes by client hash and by expiry, and acknowledges a write only once it is on disk.
//!
//! The API speaks plain Rust types (strings, integers, [`CertificateRecord`]), so a PostgreSQL
//! backend for several replicas can sit behind the same [`Store`] methods.

#![forbid(unsafe_code)]

mod audit;
mod error;
mod group_commit;
mod record;
mod store;

pub use audit::{AuditEntry, AuditEvent, verify_chain};
pub use error::StoreError;
pub use group_commit::{FlushObserver, WriteIntent};
pub use record::{
    CertificateRecord, CertificateStatus, Revocation, RevocationStatus, RevokedEntry,
};
pub use store::{Imported, ListPage, Predecessor, Store, StoreStats};
