//! Opening the sled store, reopening it after an I/O failure, and flushing.
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::insert::finish_pending_inserts;
use super::{Inner, SCHEMA_VERSION, STORE_CACHE_BYTES, Shared, SledStore};
use crate::StoreError;
use crate::group_commit::{FlushCounters, GroupCommit, WriteIntent};

/// How often a failed store tries to reopen.
pub const REOPEN_INTERVAL: Duration = Duration::from_secs(1);

impl SledStore {
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
            kv_usage: Mutex::new((0, std::collections::HashMap::new())),
        };
        let inner = open_inner(&shared)?;
        if let Ok(mut current) = shared.current.write() {
            *current = Some(Arc::new(inner));
        }
        Ok(SledStore {
            shared: Arc::new(shared),
        })
    }

    /// The open database, reopening a failed one first when it is time to try.
    pub(super) fn inner(&self) -> Result<Arc<Inner>, StoreError> {
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
    pub(super) fn watch<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Unavailable(reason)) = &result
            && !self.shared.failed.swap(true, Ordering::AcqRel)
        {
            tracing::error!(%reason, "store write failed; refusing writes until it reopens");
        }
        result
    }

    /// Closes the failed database and opens it again, at most once per [`REOPEN_INTERVAL`].
    /// Never waits: while requests still hold the old database, it tries again later.
    pub(super) fn reopen(&self) -> Result<(), StoreError> {
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

/// Opens (or creates) the database in `shared.dir` and starts its flusher, which sets
/// `shared.failed` when a flush fails.
pub(super) fn open_inner(shared: &Shared) -> Result<Inner, StoreError> {
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
        acme: db.open_tree("acme")?,
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

/// sled's I/O threads release the directory lock a moment after the last handle is dropped, so a
/// store reopened right after it was closed (a restart, a test) may find it still held. Retry for up
/// to a second before concluding that another process owns the directory.
pub(super) fn open_with_lock_retry(config: &sled::Config) -> sled::Result<sled::Db> {
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
