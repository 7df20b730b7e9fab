//! csrgate-store: the store of record. One API ([`Store`]) over two backends: sled, embedded,
//! the default that needs nothing installed, and PostgreSQL, for several replicas of one CA.
//! It keeps one record per issued certificate with indexes by client hash and by expiry, the
//! CRL's revoked entries, the audit chain, the plugins' key-value namespaces and ACME's
//! accounts, orders and authorizations, and
//! acknowledges a write only once it is durable.

#![forbid(unsafe_code)]

mod acme;
mod audit;
mod copy;
mod crl;
mod error;
mod group_commit;
mod plugin_kv;
mod postgres;
mod record;
mod sled_store;
mod snapshot;
mod store;

pub use acme::AcmeKind;
pub use audit::{AuditAction, AuditEntry, AuditEvent, verify_chain};
pub use copy::{CopyProgress, CopyReport};
pub use crl::{CrlSigner, StoredCrl};
/// Serials and revocation reasons, typed (re-exported so callers need not name csrgate-types).
pub use csrgate_types::{RevocationReason, Serial};
pub use error::StoreError;
pub use group_commit::{FlushObserver, WriteIntent};
pub use plugin_kv::KvWrites;
pub use postgres::{POSTGRES_SCHEMA_VERSION, PostgresConfig};
pub use record::{
    CertificateRecord, CertificateStatus, Imported, ListPage, Predecessor, Restored, Revocation,
    RevocationStatus, RevokedEntry, StoreStats,
};
pub use sled_store::REOPEN_INTERVAL;
pub use snapshot::{RESTORED_CRL_NUMBER_GAP, SNAPSHOT_FORMAT, SnapshotSummary};
pub use store::Store;
