//! The sled backend: the embedded store of record (trees, keys and the durable insert).
//!
//! Trees (one per concern):
//! - `certificates`: serial (hex) → JSON [`CertificateRecord`]
//! - `by_client`: client hash, 0x00, insertion sequence (BE), serial → ()   (newest last)
//! - `by_expiry`: not_after (order-preserving BE), serial → ()
//! - `by_issued`: insertion sequence (BE), serial → ()   (listing, newest first)
//!
//! The listing indexes are ordered by a monotonic insertion sequence (sled's `generate_id`), not
//! by issue time: certificates issued in the same second would otherwise sort by their random
//! serials, and one issued while a client pages could land behind its cursor and be seen twice.
//! - `plugin_kv`: plugin name, 0x00, key → value   (the plugins' private key-value stores)
//! - `acme`: ACME kind (one byte), id → value   (accounts, orders, authorizations, nonces)
//! - `revoked`: serial → JSON [`RevokedEntry`]   (what the CRL lists, kept even after delete)
//! - `audit`: seq (BE u64) → JSON [`AuditEntry`]
//! - `meta`: `schema_version` → decimal text, `audit_head` → JSON, `crl_number` → BE u64
//! - `pending_inserts`: serial → JSON [`PendingInsert`]   (an insert under way; empty at rest)
//!
//! A new certificate is recorded without a sled transaction: sled's transactions (and batches)
//! write and sync its log twice each (`PageCache::pin_log`), which cost more than everything
//! else the store does (docs/decisions/0010-issue-without-sled-transaction.md). Instead, under the audit lock, a small `pending_inserts`
//! entry (the insertion sequence and the audit entry: what the record does not determine) is
//! written first, then the record, then its five other keys with plain inserts, then the entry
//! is removed. sled recovers a prefix of its log, so after a crash either the entry is gone with
//! nothing of the change (or all of it), or it is there and [`open_inner`] settles the change
//! before anything else reads the store: it finishes it from the record, or discards the entry
//! if the record never reached the log (the client got no answer either way, as its 200 waits
//! for the removal to be durable). Changes to existing records (revoke, delete, renew, rotate)
//! keep sled's transactions; they are rare.

mod acme;
mod copy;
mod handle;
mod insert;
mod keys;
mod lifecycle;
mod plugin_kv;
mod prune;
mod queries;
mod snapshot;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crate::group_commit::{FlushCounters, GroupCommit};

pub use handle::REOPEN_INTERVAL;

/// The version of the tree layout above, kept in `meta`.
const SCHEMA_VERSION: u32 = 1;

/// sled's page cache.
const STORE_CACHE_BYTES: u64 = 32 << 20;

/// The certificate store. Cheap to clone; all clones share one database and one flusher.
///
/// sled's I/O errors are sticky: after a failed write (disk full, read-only), every later one
/// fails too, and only a reopen clears it. So a failure marks the store failed, writes and reads
/// answer [`StoreError::Unavailable`], and the next call at least [`REOPEN_INTERVAL`] later
/// reopens the database from disk, which then holds exactly what was flushed.
#[derive(Clone, Debug)]
pub struct SledStore {
    pub(crate) shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    /// `None` only between closing a failed database and opening it again.
    pub(crate) current: RwLock<Option<Arc<Inner>>>,
    /// Set by a failed write or flush (also by the flusher thread).
    pub(crate) failed: Arc<AtomicBool>,
    pub(crate) last_reopen: Mutex<Option<Instant>>,
    /// Outlive reopens: write intents in flight and flush totals.
    pub(crate) intents: Arc<AtomicUsize>,
    pub(crate) flush_counters: Arc<FlushCounters>,
    /// Reopens after a failure so far (what was not flushed before one is gone).
    pub(crate) reopens: std::sync::atomic::AtomicU64,
    /// Bytes per plugin namespace, counted once and kept up to date, as of a number of
    /// reopens (a reopen loses unflushed writes, so they are counted again). The lock also
    /// serialises applies, so concurrent calls cannot overshoot a quota together.
    pub(crate) kv_usage: Mutex<(u64, std::collections::HashMap<String, u64>)>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) db: sled::Db,
    pub(crate) certificates: sled::Tree,
    pub(crate) by_client: sled::Tree,
    pub(crate) by_expiry: sled::Tree,
    pub(crate) by_issued: sled::Tree,
    pub(crate) plugin_kv: sled::Tree,
    pub(crate) acme: sled::Tree,
    pub(crate) revoked: sled::Tree,
    pub(crate) audit: sled::Tree,
    pub(crate) meta: sled::Tree,
    pub(crate) pending_inserts: sled::Tree,
    /// Held by every writer of the audit chain, from reading its head to writing it: the plain
    /// inserts of a new certificate are not a transaction, so nothing else may append meanwhile.
    pub(crate) audit_lock: Mutex<()>,
    pub(crate) commit: GroupCommit,
}
