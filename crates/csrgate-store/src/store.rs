//! The sled-backed store: trees, keys and the durable insert.
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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sled::Transactional as _;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::audit::{AuditEntry, AuditEvent, AuditHead, GENESIS, verify_chain};
use crate::group_commit::{FlushCounters, GroupCommit, WriteIntent};
use crate::{
    CertificateRecord, CertificateStatus, Revocation, RevocationStatus, RevokedEntry, StoreError,
};

const SCHEMA_VERSION: u32 = 1;

/// sled's page cache.
const STORE_CACHE_BYTES: u64 = 32 << 20;

/// What [`Store::import_certificate`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Imported {
    /// The record (and its revocation) was added.
    Added,
    /// A certificate with this serial was stored already; nothing was written.
    AlreadyPresent,
    /// It was stored already as valid, and is now recorded as revoked (with a `revoke` audit
    /// entry): the other CA revoked it since the last import.
    Revoked,
}

/// A page of [`Store::list_certificates`].
#[derive(Clone, Debug)]
pub struct ListPage {
    /// Records, newest first.
    pub records: Vec<CertificateRecord>,
    /// Pass it as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// How a new certificate relates to the one it replaces.
#[derive(Clone, Debug)]
pub struct Predecessor {
    /// The replaced certificate.
    pub serial: String,
    /// `Some(reason)` revokes it (rotation: `superseded`); `None` only links it (renewal).
    pub revoke_as: Option<String>,
    /// Audit action for the new certificate: `renew` or `rotate`.
    pub action: String,
    /// Who asked.
    pub actor: String,
}

/// Counts for operators and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreStats {
    /// Stored certificate records.
    pub certificates: usize,
    /// Entries in the client-hash index.
    pub client_index_entries: usize,
    /// Entries in the expiry index.
    pub expiry_index_entries: usize,
}

/// The certificate store. Cheap to clone; all clones share one database and one flusher.
///
/// sled's I/O errors are sticky: after a failed write (disk full, read-only), every later one
/// fails too, and only a reopen clears it. So a failure marks the store failed, writes and reads
/// answer [`StoreError::Unavailable`], and the next call at least [`REOPEN_INTERVAL`] later
/// reopens the database from disk, which then holds exactly what was flushed.
#[derive(Clone, Debug)]
pub struct Store {
    shared: Arc<Shared>,
}

/// How often a failed store tries to reopen.
pub const REOPEN_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    /// `None` only between closing a failed database and opening it again.
    current: RwLock<Option<Arc<Inner>>>,
    /// Set by a failed write or flush (also by the flusher thread).
    failed: Arc<AtomicBool>,
    last_reopen: Mutex<Option<Instant>>,
    /// Outlive reopens: write intents in flight and flush totals.
    intents: Arc<AtomicUsize>,
    flush_counters: Arc<FlushCounters>,
    /// Reopens after a failure so far (what was not flushed before one is gone).
    reopens: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct Inner {
    db: sled::Db,
    certificates: sled::Tree,
    by_client: sled::Tree,
    by_expiry: sled::Tree,
    by_issued: sled::Tree,
    plugin_kv: sled::Tree,
    revoked: sled::Tree,
    audit: sled::Tree,
    meta: sled::Tree,
    pending_inserts: sled::Tree,
    /// Held by every writer of the audit chain, from reading its head to writing it: the plain
    /// inserts of a new certificate are not a transaction, so nothing else may append meanwhile.
    audit_lock: Mutex<()>,
    commit: GroupCommit,
}

impl Store {
    /// Opens (or creates) the store in `dir`. Fails if another process holds it.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let shared = Shared {
            dir: dir.to_owned(),
            current: RwLock::new(None),
            failed: Arc::new(AtomicBool::new(false)),
            last_reopen: Mutex::new(None),
            intents: Arc::new(AtomicUsize::new(0)),
            flush_counters: Arc::new(FlushCounters::default()),
            reopens: std::sync::atomic::AtomicU64::new(0),
        };
        let inner = open_inner(&shared)?;
        if let Ok(mut current) = shared.current.write() {
            *current = Some(Arc::new(inner));
        }
        Ok(Store {
            shared: Arc::new(shared),
        })
    }

    /// The open database, reopening a failed one first when it is time to try.
    fn inner(&self) -> Result<Arc<Inner>, StoreError> {
        if self.shared.failed.load(Ordering::Acquire) {
            self.reopen()?;
        }
        let current = match self.shared.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        current.ok_or_else(|| StoreError::Unavailable("the store is being reopened".into()))
    }

    /// Marks the store failed when `result` is an I/O failure, and passes it on.
    fn watch<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Unavailable(reason)) = &result
            && !self.shared.failed.swap(true, Ordering::AcqRel)
        {
            tracing::error!(%reason, "store write failed; refusing writes until it reopens");
        }
        result
    }

    /// Closes the failed database and opens it again, at most once per [`REOPEN_INTERVAL`].
    /// Never waits: while requests still hold the old database, it tries again later.
    fn reopen(&self) -> Result<(), StoreError> {
        let unavailable = |why: &str| StoreError::Unavailable(format!("store failed: {why}"));
        {
            let mut last = self
                .shared
                .last_reopen
                .lock()
                .map_err(|_| unavailable("reopen lock poisoned"))?;
            if last.is_some_and(|at| at.elapsed() < REOPEN_INTERVAL) {
                return Err(unavailable("waiting to reopen"));
            }
            *last = Some(Instant::now());
        }
        let mut current = self
            .shared
            .current
            .write()
            .map_err(|_| unavailable("store lock poisoned"))?;
        if !self.shared.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Some(old) = current.take() {
            match Arc::try_unwrap(old) {
                // Dropping it stops its flusher and releases the directory lock.
                Ok(old) => drop(old),
                Err(still_used) => {
                    *current = Some(still_used);
                    return Err(unavailable("requests still hold the failed database"));
                }
            }
        }
        match open_inner(&self.shared) {
            Ok(inner) => {
                *current = Some(Arc::new(inner));
                self.shared.reopens.fetch_add(1, Ordering::AcqRel);
                self.shared.failed.store(false, Ordering::Release);
                tracing::warn!(dir = %self.shared.dir.display(), "store reopened after a failure");
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, "store reopen failed; retrying");
                Err(unavailable(&error.to_string()))
            }
        }
    }

    /// How many times the store reopened after a failure. Writes not flushed before a reopen
    /// are gone, so a cache of what the store holds is stale when this number changed.
    pub fn reopens(&self) -> u64 {
        self.shared.reopens.load(Ordering::Acquire)
    }

    /// Announces that the caller is about to write (an issuing request, from its start): while
    /// the returned guard lives, a flush in progress may wait up to 2 ms for this write to join
    /// it, so that concurrent requests share one flush. Purely a hint; dropping it is enough.
    pub fn write_intent(&self) -> WriteIntent {
        WriteIntent::new(&self.shared.intents)
    }

    /// Stores a new record with its index entries and an `issue` audit entry (actor `client`)
    /// atomically, and returns once it is on disk. A record whose serial exists already is refused
    /// and nothing is written.
    pub async fn insert_certificate(&self, record: &CertificateRecord) -> Result<(), StoreError> {
        self.insert_certificate_as(record, "issue", "client").await
    }

    /// Like [`Store::insert_certificate`] with another audit action and actor.
    pub async fn insert_certificate_as(
        &self,
        record: &CertificateRecord,
        action: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let written = match insert_in_memory(&inner, record, action, actor, None) {
            Ok(()) => inner.commit.durable().await,
            Err(error) => Err(error),
        };
        self.watch(written)
    }

    /// Records a certificate issued elsewhere (a hand-run OpenSSL CA being adopted), with its
    /// revocation when it has one, and an `import` audit entry by `actor` at `now` (Unix
    /// seconds), in one transaction. A serial already stored is left as it is and reported as
    /// [`Imported::AlreadyPresent`], so running an import again changes nothing, unless the
    /// import says revoked and the store says valid: then the revocation is applied
    /// ([`Imported::Revoked`]). Not durable
    /// until [`Store::flush`]: an import is idempotent, so an interrupted one is run again.
    pub fn import_certificate(
        &self,
        record: &CertificateRecord,
        actor: &str,
        now: i64,
    ) -> Result<Imported, StoreError> {
        let inner = self.inner()?;
        let value = encode(record)?;
        let sequence = inner.db.generate_id()?;
        let keys = IndexKeys::of(record, sequence);
        let revoked_entry = match &record.revocation {
            Some(revocation) => Some(encode(&RevokedEntry {
                serial: record.serial.clone(),
                revoked_at: revocation.revoked_at,
                reason: revocation.reason.clone(),
                invalidity_date: revocation.invalidity_date,
                not_after: record.not_after,
            })?),
            None => None,
        };
        let event = AuditEvent {
            action: "import".into(),
            serial: record.serial.clone(),
            client_hash: record.client_hash.clone(),
            actor: actor.to_owned(),
        };
        let _audit = inner.lock_audit();
        let outcome = (
            &inner.certificates,
            &inner.by_client,
            &inner.by_expiry,
            &inner.by_issued,
            &inner.revoked,
            &inner.audit,
            &inner.meta,
        )
            .transaction(
                |(certificates, by_client, by_expiry, by_issued, revoked, audit, meta)| {
                    let abort = ConflictableTransactionError::Abort;
                    if let Some(bytes) = certificates.get(record.serial.as_bytes())? {
                        let mut stored = decode(&record.serial, &bytes).map_err(abort)?;
                        // Revoked in the other CA since the last import: the revocation is
                        // news, and a CRL or OCSP answer without it would say good.
                        let (Some(entry), Some(revocation), None) =
                            (&revoked_entry, &record.revocation, &stored.revocation)
                        else {
                            return Ok(Imported::AlreadyPresent);
                        };
                        stored.status = CertificateStatus::Revoked;
                        stored.revocation = Some(revocation.clone());
                        certificates
                            .insert(record.serial.as_bytes(), encode(&stored).map_err(abort)?)?;
                        revoked.insert(record.serial.as_bytes(), entry.as_slice())?;
                        let revoke = AuditEvent {
                            action: "revoke".into(),
                            client_hash: stored.client_hash.clone(),
                            ..event.clone()
                        };
                        append_audit(audit, meta, now, &revoke)?;
                        return Ok(Imported::Revoked);
                    }
                    certificates.insert(record.serial.as_bytes(), value.as_slice())?;
                    by_client.insert(keys.by_client.as_slice(), &[])?;
                    by_expiry.insert(keys.by_expiry.as_slice(), &[])?;
                    by_issued.insert(keys.by_issued.as_slice(), &[])?;
                    if let Some(entry) = &revoked_entry {
                        revoked.insert(record.serial.as_bytes(), entry.as_slice())?;
                    }
                    append_audit(audit, meta, now, &event)?;
                    Ok(Imported::Added)
                },
            )
            .map_err(transaction_error);
        self.watch(outcome)
    }

    /// Makes the next CRL Number at least `next` (an adopted CA's `crlnumber` file holds the
    /// number its next CRL would have had), so numbers keep increasing across the adoption
    /// (RFC 5280 5.2.3). Never lowers it. Not durable until [`Store::flush`].
    pub fn continue_crl_numbers_from(&self, next: u64) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let floor = next.saturating_sub(1);
        let updated = inner.meta.update_and_fetch("crl_number", |old| {
            let current = old
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            Some(current.max(floor).to_be_bytes().to_vec())
        });
        self.watch(updated.map(drop).map_err(StoreError::from))
    }

    /// Stores `record` as the successor of `predecessor.serial`, atomically: the old record gets
    /// `replaced_by`, and with `revoke_as` it is revoked with that reason (rotation). Refused when
    /// the old certificate is missing, deleted, revoked, already has a successor, or was issued
    /// to another client hash.
    pub async fn insert_successor(
        &self,
        record: &CertificateRecord,
        predecessor: &Predecessor,
    ) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let written = match insert_in_memory(
            &inner,
            record,
            &predecessor.action,
            &predecessor.actor,
            Some(predecessor),
        ) {
            Ok(()) => inner.commit.durable().await,
            Err(error) => Err(error),
        };
        self.watch(written)
    }

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
            let serial = String::from_utf8_lossy(&key[prefix.len() + 8..]).into_owned();
            last_key = Some(key.to_vec());
            if let Some(record) = self.certificate(&serial)?
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

    /// Revokes `serial` with an RFC 5280 reason name, durably, and appends a `revoke` audit entry.
    /// Returns the updated record.
    pub async fn revoke(
        &self,
        serial: &str,
        reason: &str,
        invalidity_date: Option<i64>,
        actor: &str,
        now: i64,
    ) -> Result<CertificateRecord, StoreError> {
        let inner = self.inner()?;
        let audit_lock = inner.lock_audit();
        let updated = (
            &inner.certificates,
            &inner.revoked,
            &inner.audit,
            &inner.meta,
        )
            .transaction(|(certificates, revoked, audit, meta)| {
                let mut record = fetch(certificates, serial)?;
                if record.revocation.is_some() {
                    return Err(ConflictableTransactionError::Abort(
                        StoreError::AlreadyRevoked(serial.to_owned()),
                    ));
                }
                record.status = CertificateStatus::Revoked;
                record.revocation = Some(Revocation {
                    revoked_at: now,
                    reason: reason.to_owned(),
                    invalidity_date,
                    actor: actor.to_owned(),
                });
                let entry = RevokedEntry {
                    serial: serial.to_owned(),
                    revoked_at: now,
                    reason: reason.to_owned(),
                    invalidity_date,
                    not_after: record.not_after,
                };
                certificates.insert(
                    serial.as_bytes(),
                    encode(&record).map_err(ConflictableTransactionError::Abort)?,
                )?;
                revoked.insert(
                    serial.as_bytes(),
                    encode(&entry).map_err(ConflictableTransactionError::Abort)?,
                )?;
                append_audit(audit, meta, now, &event_for("revoke", &record, actor))?;
                Ok(record)
            })
            .map_err(transaction_error);
        drop(audit_lock);
        let updated = self.watch(updated)?;
        self.watch(inner.commit.durable().await)?;
        Ok(updated)
    }

    /// Hides `serial` from listings, durably, with a `delete` audit entry. A revoked certificate
    /// stays in the CRL until it expires: the `revoked` tree is not touched.
    pub async fn delete(
        &self,
        serial: &str,
        actor: &str,
        now: i64,
    ) -> Result<CertificateRecord, StoreError> {
        let inner = self.inner()?;
        let audit_lock = inner.lock_audit();
        let updated = (&inner.certificates, &inner.audit, &inner.meta)
            .transaction(|(certificates, audit, meta)| {
                let mut record = fetch(certificates, serial)?;
                if record.deleted {
                    return Err(ConflictableTransactionError::Abort(StoreError::NotFound(
                        serial.to_owned(),
                    )));
                }
                record.deleted = true;
                certificates.insert(
                    serial.as_bytes(),
                    encode(&record).map_err(ConflictableTransactionError::Abort)?,
                )?;
                append_audit(audit, meta, now, &event_for("delete", &record, actor))?;
                Ok(record)
            })
            .map_err(transaction_error);
        drop(audit_lock);
        let updated = self.watch(updated)?;
        self.watch(inner.commit.durable().await)?;
        Ok(updated)
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

    /// The next CRL number (1, 2, 3, ...), durably recorded before it is returned so a CRL number
    /// is never issued twice, even across a crash.
    pub async fn next_crl_number(&self) -> Result<u64, StoreError> {
        let inner = self.inner()?;
        let updated = inner.meta.update_and_fetch("crl_number", |old| {
            let current = old
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            Some((current + 1).to_be_bytes().to_vec())
        });
        let updated = self.watch(updated.map_err(StoreError::from))?;
        let number = updated
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map_or(1, u64::from_be_bytes);
        self.watch(inner.commit.durable().await)?;
        Ok(number)
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

    /// The record with this serial (lower-case hex without leading zeros), if stored.
    pub fn certificate(&self, serial: &str) -> Result<Option<CertificateRecord>, StoreError> {
        self.inner()?
            .certificates
            .get(serial.as_bytes())?
            .map(|bytes| decode(serial, &bytes))
            .transpose()
    }

    /// What an OCSP responder says of `serial` (lower-case hex without leading zeros): revoked
    /// (the CRL's entry, kept after delete and after expiry), good (a certificate with that
    /// serial is recorded) or unknown. Two point reads, no record decoded.
    pub fn revocation_status(&self, serial: &str) -> Result<RevocationStatus, StoreError> {
        let inner = self.inner()?;
        if let Some(value) = inner.revoked.get(serial.as_bytes())? {
            let entry = serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                key: serial.to_owned(),
                reason: e.to_string(),
            })?;
            return Ok(RevocationStatus::Revoked(entry));
        }
        Ok(if inner.certificates.contains_key(serial.as_bytes())? {
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
            let serial = String::from_utf8_lossy(&key[prefix.len() + 8..]).into_owned();
            if let Some(record) = self.certificate(&serial)? {
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
    ) -> Result<Vec<String>, StoreError> {
        let inner = self.inner()?;
        let start = order_preserving(from).to_be_bytes();
        let end = order_preserving(until).to_be_bytes();
        let mut serials = Vec::new();
        for entry in inner.by_expiry.range(start..end) {
            let (key, _) = entry?;
            serials.push(String::from_utf8_lossy(&key[8..]).into_owned());
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

    /// Reads `key` from `plugin`'s key-value namespace.
    pub fn plugin_kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .inner()?
            .plugin_kv
            .get(plugin_key(plugin, key))?
            .map(|v| v.to_vec()))
    }

    /// Writes `key` in `plugin`'s namespace. Not flushed on its own: it becomes durable with the
    /// next certificate's group commit, or at shutdown.
    pub fn plugin_kv_set(&self, plugin: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let written = inner.plugin_kv.insert(plugin_key(plugin, key), value);
        self.watch(written.map(drop).map_err(StoreError::from))
    }

    /// Removes `key` from `plugin`'s namespace.
    pub fn plugin_kv_delete(&self, plugin: &str, key: &str) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let removed = inner.plugin_kv.remove(plugin_key(plugin, key));
        self.watch(removed.map(drop).map_err(StoreError::from))
    }

    /// Applies one plugin call's writes to `plugin`'s namespace atomically (one sled batch):
    /// `Some(value)` sets, `None` deletes. Not flushed on its own, like
    /// [`Store::plugin_kv_set`].
    pub fn plugin_kv_apply(
        &self,
        plugin: &str,
        writes: &[(&str, Option<&[u8]>)],
    ) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let mut batch = sled::Batch::default();
        for (key, value) in writes {
            match value {
                Some(value) => batch.insert(plugin_key(plugin, key), *value),
                None => batch.remove(plugin_key(plugin, key)),
            }
        }
        let applied = inner.plugin_kv.apply_batch(batch);
        self.watch(applied.map_err(StoreError::from))
    }

    /// Bytes of `plugin`'s namespace: its keys (without the namespace prefix) and values.
    pub fn plugin_kv_usage(&self, plugin: &str) -> Result<u64, StoreError> {
        let inner = self.inner()?;
        let prefix = plugin_key(plugin, "");
        let mut bytes = 0u64;
        for entry in inner.plugin_kv.scan_prefix(&prefix) {
            let (key, value) = entry?;
            bytes += (key.len() - prefix.len() + value.len()) as u64;
        }
        Ok(bytes)
    }

    /// Every entry of `plugin`'s namespace, by key.
    pub fn plugin_kv_entries(&self, plugin: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let inner = self.inner()?;
        let prefix = plugin_key(plugin, "");
        let mut entries = Vec::new();
        for entry in inner.plugin_kv.scan_prefix(&prefix) {
            let (key, value) = entry?;
            entries.push((
                String::from_utf8_lossy(&key[prefix.len()..]).into_owned(),
                value.to_vec(),
            ));
        }
        Ok(entries)
    }

    /// Group-commit totals since start: (flushes, writes acknowledged, seconds spent flushing).
    pub fn flush_stats(&self) -> (u64, u64, f64) {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = &self.shared.flush_counters;
        (
            stats.flushes.load(Relaxed),
            stats.writes.load(Relaxed),
            stats.nanos.load(Relaxed) as f64 / 1e9,
        )
    }

    /// Tells `observer` of every group-commit flush from now on (writes acknowledged, time
    /// taken). Set once; a second observer is ignored.
    pub fn observe_flushes(&self, observer: crate::group_commit::FlushObserver) {
        let _ = self.shared.flush_counters.observer.set(observer);
    }

    /// Flushes everything to disk now (used at shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let flushed = inner.db.flush();
        self.watch(flushed.map(drop).map_err(StoreError::from))
    }
}

/// Writes a new record with its index entries and audit entry, in memory: durable only after the
/// group commit that follows. A new certificate goes through a [`PendingInsert`] and plain
/// inserts (see the module docs); a successor, which also updates its predecessor, through a
/// sled transaction.
fn insert_in_memory(
    inner: &Inner,
    record: &CertificateRecord,
    action: &str,
    actor: &str,
    predecessor: Option<&Predecessor>,
) -> Result<(), StoreError> {
    let mut record = record.clone();
    if let Some(old) = predecessor {
        record.replaces = Some(old.serial.clone());
    }
    let value = encode(&record)?;
    let sequence = inner.db.generate_id()?;
    let event = AuditEvent {
        action: action.to_owned(),
        serial: record.serial.clone(),
        client_hash: record.client_hash.clone(),
        actor: actor.to_owned(),
    };
    let _audit = inner.lock_audit();
    if predecessor.is_none() {
        if inner.certificates.get(record.serial.as_bytes())?.is_some() {
            return Err(StoreError::DuplicateSerial(record.serial.clone()));
        }
        let head = audit_head(&inner.meta.get("audit_head")?)?;
        let pending = PendingInsert {
            sequence,
            audit: AuditEntry::new(head.seq + 1, record.issued_at, event, head.hash),
        };
        inner
            .pending_inserts
            .insert(record.serial.as_bytes(), encode(&pending)?)?;
        for (tree, key, value) in pending.writes(&record, value, &inner.insert_trees())? {
            tree.insert(key, value)?;
        }
        inner.pending_inserts.remove(record.serial.as_bytes())?;
        return Ok(());
    }
    let keys = IndexKeys::of(&record, sequence);
    (
        &inner.certificates,
        &inner.by_client,
        &inner.by_expiry,
        &inner.by_issued,
        &inner.revoked,
        &inner.audit,
        &inner.meta,
    )
        .transaction(
            |(certificates, by_client, by_expiry, by_issued, revoked, audit, meta)| {
                let abort = ConflictableTransactionError::Abort;
                if certificates.get(record.serial.as_bytes())?.is_some() {
                    return Err(abort(StoreError::DuplicateSerial(record.serial.clone())));
                }
                if let Some(old) = predecessor {
                    let Some(bytes) = certificates.get(old.serial.as_bytes())? else {
                        return Err(abort(StoreError::NotFound(old.serial.clone())));
                    };
                    let mut previous = decode(&old.serial, &bytes).map_err(abort)?;
                    if previous.deleted {
                        return Err(abort(StoreError::NotFound(old.serial.clone())));
                    }
                    if previous.client_hash != record.client_hash {
                        return Err(abort(StoreError::ClientMismatch(old.serial.clone())));
                    }
                    if previous.revocation.is_some() {
                        return Err(abort(StoreError::AlreadyRevoked(old.serial.clone())));
                    }
                    if previous.replaced_by.is_some() {
                        return Err(abort(StoreError::AlreadyReplaced(old.serial.clone())));
                    }
                    previous.replaced_by = Some(record.serial.clone());
                    if let Some(reason) = &old.revoke_as {
                        previous.status = CertificateStatus::Revoked;
                        previous.revocation = Some(Revocation {
                            revoked_at: record.issued_at,
                            reason: reason.clone(),
                            invalidity_date: None,
                            actor: actor.to_owned(),
                        });
                        let entry = RevokedEntry {
                            serial: previous.serial.clone(),
                            revoked_at: record.issued_at,
                            reason: reason.clone(),
                            invalidity_date: None,
                            not_after: previous.not_after,
                        };
                        revoked
                            .insert(previous.serial.as_bytes(), encode(&entry).map_err(abort)?)?;
                        let revoke_event = AuditEvent {
                            action: "revoke".into(),
                            serial: previous.serial.clone(),
                            client_hash: previous.client_hash.clone(),
                            actor: actor.to_owned(),
                        };
                        append_audit(audit, meta, record.issued_at, &revoke_event)?;
                    }
                    certificates.insert(
                        previous.serial.as_bytes(),
                        encode(&previous).map_err(abort)?,
                    )?;
                }
                certificates.insert(record.serial.as_bytes(), value.as_slice())?;
                by_client.insert(keys.by_client.as_slice(), &[])?;
                by_expiry.insert(keys.by_expiry.as_slice(), &[])?;
                by_issued.insert(keys.by_issued.as_slice(), &[])?;
                append_audit(audit, meta, record.issued_at, &event)?;
                Ok(())
            },
        )
        .map_err(transaction_error)
}

/// Opens (or creates) the database in `shared.dir` and starts its flusher, which sets
/// `shared.failed` when a flush fails.
fn open_inner(shared: &Shared) -> Result<Inner, StoreError> {
    let dir = shared.dir.as_path();
    let open_error = |reason: String| StoreError::Open {
        path: dir.to_owned(),
        reason,
    };
    // 0700: the store holds every certificate and the plugins' private data. An existing
    // directory keeps the mode its owner gave it.
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| open_error(e.to_string()))?;
    }
    let config = sled::Config::new()
        .path(dir.join("sled"))
        .mode(sled::Mode::HighThroughput)
        // sled caches up to 1 GiB of pages by default, which the daemon's memory would grow
        // into (docs/decisions/0007-sled-cache-32mib.md). A small cache costs little as long as
        // issuing touches few leaves: every insert reads the leaf its key lands in, so the
        // serials csrgate-pki generates start with the issuance time and new records gather at
        // the tree's right edge (random serials made the whole tree the working set:
        // docs/decisions/0012-time-first-serials.md).
        .cache_capacity(STORE_CACHE_BYTES)
        // Durability is ours (group commit; the vendored sled ends a flush with `fdatasync`);
        // sled's own timer thread would also keep the file lock alive for a moment after the
        // store is dropped.
        .flush_every_ms(None);
    let db = open_with_lock_retry(&config).map_err(|e| {
        let text = e.to_string();
        if text.contains("could not acquire lock") {
            open_error(
                "another process holds it (is a csrgate serve, or a store command, already \
                 running on this data directory?)"
                    .into(),
            )
        } else {
            open_error(text)
        }
    })?;
    let meta = db.open_tree("meta")?;
    match meta.get("schema_version")? {
        None => {
            meta.insert("schema_version", SCHEMA_VERSION.to_string().as_bytes())?;
            db.flush()?;
        }
        Some(found) if found.as_ref() == SCHEMA_VERSION.to_string().as_bytes() => {}
        Some(found) => {
            return Err(StoreError::SchemaVersion {
                found: String::from_utf8_lossy(&found).into_owned(),
                supported: SCHEMA_VERSION,
            });
        }
    }
    let inner = Inner {
        certificates: db.open_tree("certificates")?,
        by_client: db.open_tree("by_client")?,
        by_expiry: db.open_tree("by_expiry")?,
        by_issued: db.open_tree("by_issued")?,
        plugin_kv: db.open_tree("plugin_kv")?,
        revoked: db.open_tree("revoked")?,
        audit: db.open_tree("audit")?,
        meta,
        pending_inserts: db.open_tree("pending_inserts")?,
        audit_lock: Mutex::new(()),
        commit: GroupCommit::start(
            db.clone(),
            Arc::clone(&shared.failed),
            Arc::clone(&shared.intents),
            Arc::clone(&shared.flush_counters),
        )?,
        db,
    };
    finish_pending_inserts(&inner)?;
    Ok(inner)
}

/// Settles every insert a crash cut short (see the module docs), durably, before the store is
/// used: finished from its record, or discarded if the record was never written. At rest there
/// is none.
fn finish_pending_inserts(inner: &Inner) -> Result<(), StoreError> {
    let mut settled = false;
    for item in inner.pending_inserts.iter() {
        let (serial, bytes) = item?;
        let serial = String::from_utf8_lossy(&serial).into_owned();
        let corrupt = |e: serde_json::Error| StoreError::Corrupt {
            key: format!("pending insert {serial}"),
            reason: e.to_string(),
        };
        let pending: PendingInsert = serde_json::from_slice(&bytes).map_err(corrupt)?;
        settled = true;
        let Some(value) = inner.certificates.get(serial.as_bytes())? else {
            // Cut before its first write: nothing of it is in any other tree.
            inner.pending_inserts.remove(serial.as_bytes())?;
            tracing::warn!(%serial, "discarded a certificate that a crash interrupted before it was recorded");
            continue;
        };
        let record = decode(&serial, &value)?;
        let head = audit_head(&inner.meta.get("audit_head")?)?;
        if head.seq > pending.audit.seq
            || (head.seq == pending.audit.seq && head.hash != pending.audit.hash)
        {
            // Another entry took this place in the chain: not a state a crash can leave.
            return Err(StoreError::AuditBroken(format!(
                "the pending insert of {serial} expected audit entry {}, the chain is at {}",
                pending.audit.seq, head.seq
            )));
        }
        for (tree, key, value) in pending.writes(&record, value.to_vec(), &inner.insert_trees())? {
            tree.insert(key, value)?;
        }
        inner.pending_inserts.remove(serial.as_bytes())?;
        tracing::warn!(%serial, "finished recording a certificate that a crash interrupted");
    }
    if settled {
        inner.db.flush()?;
    }
    Ok(())
}

/// sled's I/O threads release the directory lock a moment after the last handle is dropped, so a
/// store reopened right after it was closed (a restart, a test) may find it still held. Retry for up
/// to a second before concluding that another process owns the directory.
fn open_with_lock_retry(config: &sled::Config) -> sled::Result<sled::Db> {
    let mut attempts = 0;
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && attempts < 20 =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Unavailable(format!("cannot encode: {e}")))
}

fn transaction_error(error: TransactionError<StoreError>) -> StoreError {
    match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => StoreError::from(error),
    }
}

/// Reads and decodes `serial` inside a transaction, or aborts it with `NotFound`.
fn fetch(
    certificates: &sled::transaction::TransactionalTree,
    serial: &str,
) -> Result<CertificateRecord, ConflictableTransactionError<StoreError>> {
    let Some(bytes) = certificates.get(serial.as_bytes())? else {
        return Err(ConflictableTransactionError::Abort(StoreError::NotFound(
            serial.to_owned(),
        )));
    };
    decode(serial, &bytes).map_err(ConflictableTransactionError::Abort)
}

/// The audit event of `action` on `record` by `actor`.
fn event_for(action: &str, record: &CertificateRecord, actor: &str) -> AuditEvent {
    AuditEvent {
        action: action.to_owned(),
        serial: record.serial.clone(),
        client_hash: record.client_hash.clone(),
        actor: actor.to_owned(),
    }
}

/// Appends one audit entry inside a transaction; the head key in `meta` serialises appends.
fn append_audit(
    audit: &sled::transaction::TransactionalTree,
    meta: &sled::transaction::TransactionalTree,
    time: i64,
    event: &AuditEvent,
) -> Result<(), ConflictableTransactionError<StoreError>> {
    let head = audit_head(&meta.get("audit_head")?).map_err(ConflictableTransactionError::Abort)?;
    let entry = AuditEntry::new(head.seq + 1, time, event.clone(), head.hash);
    audit.insert(
        &entry.seq.to_be_bytes(),
        encode(&entry).map_err(ConflictableTransactionError::Abort)?,
    )?;
    let new_head = AuditHead {
        seq: entry.seq,
        hash: entry.hash,
    };
    meta.insert(
        "audit_head",
        encode(&new_head).map_err(ConflictableTransactionError::Abort)?,
    )?;
    Ok(())
}

/// The audit chain's head as stored in `meta` (the genesis when the chain is empty).
fn audit_head(stored: &Option<sled::IVec>) -> Result<AuditHead, StoreError> {
    match stored {
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            key: "audit_head".into(),
            reason: e.to_string(),
        }),
        None => Ok(AuditHead {
            seq: 0,
            hash: GENESIS.to_owned(),
        }),
    }
}

/// The trees a new certificate is written to.
struct InsertTrees<'a> {
    certificates: &'a sled::Tree,
    by_client: &'a sled::Tree,
    by_expiry: &'a sled::Tree,
    by_issued: &'a sled::Tree,
    audit: &'a sled::Tree,
    meta: &'a sled::Tree,
}

/// A record's keys in the three index trees (see the module docs for their layout).
struct IndexKeys {
    by_client: Vec<u8>,
    by_expiry: Vec<u8>,
    by_issued: Vec<u8>,
}

impl IndexKeys {
    fn of(record: &CertificateRecord, sequence: u64) -> Self {
        let mut by_issued = sequence.to_be_bytes().to_vec();
        by_issued.extend_from_slice(record.serial.as_bytes());
        IndexKeys {
            by_client: client_key(&record.client_hash, sequence, &record.serial),
            by_expiry: time_key(record.not_after, &record.serial),
            by_issued,
        }
    }
}

/// One key written to one tree: (tree, key, value).
type Write<'t> = (&'t sled::Tree, Vec<u8>, Vec<u8>);

/// What a new certificate's change needs beyond its record, stored in `pending_inserts` before
/// any of its keys is written and removed after the last: with the record, what [`open_inner`]
/// needs to finish the change after a crash. The record is not copied here: it is the first
/// write, so a crash that kept any of the change kept it (a copy made the entry ~1.5 KiB, and
/// sled rewrites the entry's leaf every few inserts).
#[derive(serde::Serialize, serde::Deserialize)]
struct PendingInsert {
    /// Its insertion sequence, part of the listing index keys.
    sequence: u64,
    /// Its audit entry, chained to the head read under the audit lock.
    audit: AuditEntry,
}

impl PendingInsert {
    /// The record (`value`, its stored form), its three index keys, its audit entry and the new
    /// audit head, in the order they are written. Writing them again is harmless (same keys,
    /// same values), which is what makes finishing at open safe whatever part a crash kept.
    fn writes<'t>(
        &self,
        record: &CertificateRecord,
        value: Vec<u8>,
        trees: &InsertTrees<'t>,
    ) -> Result<Vec<Write<'t>>, StoreError> {
        let keys = IndexKeys::of(record, self.sequence);
        let new_head = AuditHead {
            seq: self.audit.seq,
            hash: self.audit.hash.clone(),
        };
        Ok(vec![
            (trees.certificates, record.serial.as_bytes().to_vec(), value),
            (trees.by_client, keys.by_client, Vec::new()),
            (trees.by_expiry, keys.by_expiry, Vec::new()),
            (trees.by_issued, keys.by_issued, Vec::new()),
            (
                trees.audit,
                self.audit.seq.to_be_bytes().to_vec(),
                encode(&self.audit)?,
            ),
            (trees.meta, b"audit_head".to_vec(), encode(&new_head)?),
        ])
    }
}

impl Inner {
    fn insert_trees(&self) -> InsertTrees<'_> {
        InsertTrees {
            certificates: &self.certificates,
            by_client: &self.by_client,
            by_expiry: &self.by_expiry,
            by_issued: &self.by_issued,
            audit: &self.audit,
            meta: &self.meta,
        }
    }

    /// The audit lock. It guards no data, so a panic while it was held poisons nothing.
    fn lock_audit(&self) -> std::sync::MutexGuard<'_, ()> {
        self.audit_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn decode(key: &str, bytes: &[u8]) -> Result<CertificateRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// Maps i64 onto u64 so that big-endian byte order is numeric order (negative times included).
fn order_preserving(value: i64) -> u64 {
    (value as u64) ^ (1 << 63)
}

fn plugin_key(plugin: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(plugin.len() + 1 + key.len());
    out.extend_from_slice(plugin.as_bytes());
    out.push(0);
    out.extend_from_slice(key.as_bytes());
    out
}

/// A cursor's bytes; cursors are short, so longer text is refused before decoding.
fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() > 1024 {
        return None;
    }
    hex::decode(text).ok()
}

fn client_key(client_hash: &str, sequence: u64, serial: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(client_hash.len() + 9 + serial.len());
    key.extend_from_slice(client_hash.as_bytes());
    key.push(0);
    key.extend_from_slice(&sequence.to_be_bytes());
    key.extend_from_slice(serial.as_bytes());
    key
}

/// An index key ordered by a time, then by serial.
fn time_key(time: i64, serial: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + serial.len());
    key.extend_from_slice(&order_preserving(time).to_be_bytes());
    key.extend_from_slice(serial.as_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(serial: &str, client: &str, issued_at: i64, not_after: i64) -> CertificateRecord {
        CertificateRecord {
            serial: serial.into(),
            client_hash: client.into(),
            subject: "CN=test".into(),
            subject_alt_names: vec!["DNS:test".into()],
            public_key_sha1: "00".repeat(20),
            sha256_fingerprint: "11".repeat(32),
            not_before: issued_at,
            not_after,
            issued_at,
            status: CertificateStatus::Valid,
            der: vec![0x30, 0x00, 0xff],
            revocation: None,
            deleted: false,
            replaces: None,
            replaced_by: None,
        }
    }

    /// The serials the client index lists for `client`, oldest first.
    fn serials_for_client(store: &Store, client: &str) -> Vec<String> {
        store
            .certificates_for_client(client)
            .expect("scan")
            .into_iter()
            .map(|r| r.serial)
            .collect()
    }

    #[tokio::test]
    async fn records_survive_reopen_with_indexes() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let store = Store::open(dir.path()).expect("open");
            store
                .insert_certificate(&record("0a", "abc", 100, 1_000))
                .await
                .expect("insert");
            store
                .insert_certificate(&record("0b", "abc", 200, 500))
                .await
                .expect("insert");
            store
                .insert_certificate(&record("0c", "abd", 300, -5))
                .await
                .expect("insert");
        }
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(
            store.certificate("0a").expect("get"),
            Some(record("0a", "abc", 100, 1_000))
        );
        assert_eq!(serials_for_client(&store, "abc"), ["0a", "0b"]);
        assert_eq!(
            store.serials_expiring_between(-10, 600).expect("range"),
            ["0c", "0b"]
        );
        assert_eq!(
            store.stats().expect("stats"),
            StoreStats {
                certificates: 3,
                client_index_entries: 3,
                expiry_index_entries: 3
            }
        );
    }

    /// A crash can stop a new certificate's insert after any of its writes, and sled keeps a
    /// prefix of them. For every prefix that kept the record, the reopened store holds the whole
    /// certificate, its index entries and its audit entry; for the one that did not (the pending
    /// entry alone), none of it. Either way no pending entry is left and the chain goes on.
    #[tokio::test]
    async fn an_insert_cut_short_after_any_write_is_finished_at_open() {
        let new = record("0b", "abc", 200, 2_000);
        for kept in 0..=6 {
            let dir = tempfile::tempdir().expect("tmp");
            {
                let store = Store::open(dir.path()).expect("open");
                store
                    .insert_certificate(&record("0a", "abc", 100, 1_000))
                    .await
                    .expect("insert");
                let inner = store.inner().expect("inner");
                let head = audit_head(&inner.meta.get("audit_head").expect("get")).expect("head");
                let pending = PendingInsert {
                    sequence: inner.db.generate_id().expect("id"),
                    audit: AuditEntry::new(
                        head.seq + 1,
                        200,
                        event_for("issue", &new, "client"),
                        head.hash,
                    ),
                };
                inner
                    .pending_inserts
                    .insert("0b", encode(&pending).expect("encode"))
                    .expect("pending");
                let value = encode(&new).expect("encode");
                let writes = pending
                    .writes(&new, value, &inner.insert_trees())
                    .expect("writes");
                assert_eq!(writes.len(), 6);
                for (tree, key, value) in writes.into_iter().take(kept) {
                    tree.insert(key, value).expect("write");
                }
                inner.db.flush().expect("flush");
            }
            let store = Store::open(dir.path()).expect("reopen settles the insert");
            let finished = kept > 0;
            let count = if finished { 2 } else { 1 };
            assert_eq!(
                store.certificate("0b").expect("get"),
                finished.then(|| new.clone()),
                "kept {kept}"
            );
            assert_eq!(
                serials_for_client(&store, "abc"),
                ["0a", "0b"][..count],
                "kept {kept}"
            );
            assert_eq!(
                store.stats().expect("stats"),
                StoreStats {
                    certificates: count,
                    client_index_entries: count,
                    expiry_index_entries: count
                },
                "kept {kept}"
            );
            assert_eq!(
                store.verify_audit().expect("chain"),
                count as u64,
                "kept {kept}"
            );
            assert!(store.inner().expect("inner").pending_inserts.is_empty());
            store
                .insert_certificate(&record("0c", "abd", 300, 3_000))
                .await
                .expect("insert after recovery");
            assert_eq!(
                store.verify_audit().expect("chain"),
                count as u64 + 1,
                "kept {kept}"
            );
        }
    }

    #[tokio::test]
    async fn duplicate_serial_writes_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("open");
        store
            .insert_certificate(&record("0a", "abc", 1, 2))
            .await
            .expect("insert");
        let again = store.insert_certificate(&record("0a", "other", 5, 9)).await;
        assert!(matches!(again, Err(StoreError::DuplicateSerial(_))));
        assert_eq!(store.stats().expect("stats").client_index_entries, 1);
        assert_eq!(
            store
                .certificate("0a")
                .expect("get")
                .expect("some")
                .client_hash,
            "abc"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_inserts_all_land() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("open");
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .insert_certificate(&record(&format!("{i:x}"), "c", i, i))
                    .await
            }));
        }
        for task in tasks {
            task.await.expect("join").expect("insert");
        }
        assert_eq!(store.stats().expect("stats").certificates, 200);
    }

    #[tokio::test]
    async fn revoke_delete_crl_numbers_and_audit() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let store = Store::open(dir.path()).expect("open");
            store
                .insert_certificate(&record("0a", "abc", 100, 1_000))
                .await
                .expect("insert");
            store
                .insert_certificate(&record("0b", "abc", 100, 50))
                .await
                .expect("insert");
            let revoked = store
                .revoke("0a", "keyCompromise", Some(90), "ops", 200)
                .await
                .expect("revoke");
            assert_eq!(revoked.status, CertificateStatus::Revoked);
            assert!(matches!(
                store.revoke("0a", "superseded", None, "ops", 201).await,
                Err(StoreError::AlreadyRevoked(_))
            ));
            assert!(matches!(
                store.revoke("ff", "superseded", None, "ops", 201).await,
                Err(StoreError::NotFound(_))
            ));
            store
                .revoke("0b", "superseded", None, "ops", 202)
                .await
                .expect("revoke");
            // Deleting keeps the CRL entry.
            store.delete("0a", "ops", 203).await.expect("delete");
            assert!(matches!(
                store.delete("0a", "ops", 204).await,
                Err(StoreError::NotFound(_))
            ));
            let entries = store.revoked_entries(60).expect("entries");
            assert_eq!(
                entries.len(),
                1,
                "0b expired at 50, 0a stays though deleted"
            );
            assert_eq!(entries[0].serial, "0a");
            assert_eq!(entries[0].reason, "keyCompromise");
            assert_eq!(entries[0].invalidity_date, Some(90));
            assert_eq!(store.next_crl_number().await.expect("n"), 1);
            assert_eq!(store.next_crl_number().await.expect("n"), 2);
        }
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(
            store.next_crl_number().await.expect("n"),
            3,
            "CRL numbers survive restarts"
        );
        assert_eq!(store.verify_audit().expect("intact"), 5);
        let actions: Vec<String> = store
            .audit_entries(0, 100)
            .expect("audit")
            .into_iter()
            .map(|e| e.event.action)
            .collect();
        assert_eq!(actions, ["issue", "issue", "revoke", "revoke", "delete"]);
        assert_eq!(store.audit_entries(3, 100).expect("after").len(), 2);

        // Edit one entry: verification names it.
        let key = 2u64.to_be_bytes();
        let mut entry: AuditEntry = serde_json::from_slice(
            &store
                .inner()
                .expect("open")
                .audit
                .get(key)
                .expect("get")
                .expect("some"),
        )
        .expect("json");
        entry.event.actor = "someone else".into();
        store
            .inner()
            .expect("open")
            .audit
            .insert(key, serde_json::to_vec(&entry).expect("json"))
            .expect("insert");
        let error = store.verify_audit().expect_err("tampered");
        assert!(error.to_string().contains("entry 2"), "{error}");
    }

    #[tokio::test]
    async fn removing_the_newest_audit_entry_is_detected() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("open");
        store
            .insert_certificate(&record("0a", "abc", 1, 2))
            .await
            .expect("insert");
        store
            .insert_certificate(&record("0b", "abc", 1, 2))
            .await
            .expect("insert");
        store
            .inner()
            .expect("open")
            .audit
            .remove(2u64.to_be_bytes())
            .expect("remove");
        assert!(store.verify_audit().is_err());
    }

    #[tokio::test]
    async fn pages_visit_every_certificate_once_while_new_ones_arrive() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("open");
        for i in 0..25 {
            store
                .insert_certificate(&record(
                    // Serials scrambled against insertion order, as random serials are.
                    &format!("{:02x}", 0x40 + (i * 7) % 25),
                    if i % 2 == 0 { "even" } else { "odd" },
                    // All in the same second: order must not depend on the random serials.
                    7,
                    1_000,
                ))
                .await
                .expect("insert");
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        // Certificates issued while paging get serials below every existing one.
        let mut next = 1;
        loop {
            let page = store
                .list_certificates(None, cursor.as_deref(), 7, &|_| true)
                .expect("page");
            seen.extend(page.records.iter().map(|r| r.serial.clone()));
            // Issue newer certificates between pages: they must not show up in later pages.
            store
                .insert_certificate(&record(&format!("{next:x}"), "even", 7, 1_000))
                .await
                .expect("insert");
            next += 1;
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let expected: Vec<String> = (0..25)
            .rev()
            .map(|i| format!("{:02x}", 0x40 + (i * 7) % 25))
            .collect();
        assert_eq!(seen, expected, "newest first, each exactly once");

        let odd = store
            .list_certificates(Some("odd"), None, 100, &|_| true)
            .expect("odd");
        assert_eq!(odd.records.len(), 12);
        assert!(odd.next_cursor.is_none());
        let filtered = store
            .list_certificates(None, None, 100, &|r| {
                ("40".."43").contains(&r.serial.as_str())
            })
            .expect("filtered");
        assert_eq!(filtered.records.len(), 3);
        assert!(
            store
                .list_certificates(None, Some("zz"), 5, &|_| true)
                .is_err()
        );
    }

    #[tokio::test]
    async fn rotation_revokes_the_old_one_for_the_same_client_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("open");
        store
            .insert_certificate(&record("0a", "abc", 1, 1_000))
            .await
            .expect("insert");
        let rotate = |old: &str| Predecessor {
            serial: old.into(),
            revoke_as: Some("superseded".into()),
            action: "rotate".into(),
            actor: "client".into(),
        };
        let foreign = store
            .insert_successor(&record("0b", "other", 2, 1_000), &rotate("0a"))
            .await;
        assert!(matches!(foreign, Err(StoreError::ClientMismatch(_))));
        assert!(
            store.certificate("0b").expect("get").is_none(),
            "nothing written"
        );
        store
            .insert_successor(&record("0c", "abc", 3, 1_000), &rotate("0a"))
            .await
            .expect("rotate");
        let old = store.certificate("0a").expect("get").expect("some");
        assert_eq!(old.status, CertificateStatus::Revoked);
        assert_eq!(old.replaced_by.as_deref(), Some("0c"));
        assert_eq!(old.revocation.expect("revoked").reason, "superseded");
        let new = store.certificate("0c").expect("get").expect("some");
        assert_eq!(new.replaces.as_deref(), Some("0a"));
        assert_eq!(store.revoked_entries(0).expect("crl").len(), 1);
        let again = store
            .insert_successor(&record("0d", "abc", 4, 1_000), &rotate("0a"))
            .await;
        assert!(matches!(again, Err(StoreError::AlreadyRevoked(_))));
        assert_eq!(store.verify_audit().expect("audit"), 3);
    }

    #[test]
    fn plugin_namespaces_are_separate() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("open");
        store.plugin_kv_set("a", "k", b"1").expect("set");
        store.plugin_kv_set("ab", "k", b"2").expect("set");
        assert_eq!(
            store.plugin_kv_get("a", "k").expect("get"),
            Some(b"1".to_vec())
        );
        assert_eq!(
            store.plugin_kv_entries("a").expect("scan"),
            vec![("k".to_owned(), b"1".to_vec())]
        );
        store.plugin_kv_delete("a", "k").expect("delete");
        assert_eq!(store.plugin_kv_get("a", "k").expect("get"), None);
        assert_eq!(
            store.plugin_kv_get("ab", "k").expect("get"),
            Some(b"2".to_vec())
        );
    }

    #[test]
    fn a_second_opener_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let _first = Store::open(dir.path()).expect("open");
        // sled takes an exclusive file lock; a second daemon on the same data dir must not start.
        let second = Store::open(dir.path());
        assert!(
            matches!(&second, Err(StoreError::Open { reason, .. }) if reason.contains("already running")),
            "{second:?}"
        );
    }

    #[test]
    fn a_new_data_directory_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let parent = tempfile::tempdir().expect("tmp");
        let dir = parent.path().join("data");
        let _store = Store::open(&dir).expect("open");
        let mode = std::fs::metadata(&dir).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    }

    #[test]
    fn order_preserving_keys_sort_numerically() {
        let values = [i64::MIN, -5, -1, 0, 1, 5, i64::MAX];
        for pair in values.windows(2) {
            assert!(
                order_preserving(pair[0]).to_be_bytes() < order_preserving(pair[1]).to_be_bytes()
            );
        }
    }
}
