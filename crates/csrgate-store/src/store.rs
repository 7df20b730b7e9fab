//! The sled-backed store: trees, keys and the durable insert.
//!
//! Trees (one per concern):
//! - `certificates`: serial (hex) → JSON [`CertificateRecord`]
//! - `by_client`: client hash, 0x00, issued_at (BE), serial → ()   (newest last)
//! - `by_expiry`: not_after (order-preserving BE), serial → ()
//! - `plugin_kv`: plugin name, 0x00, key → value   (the plugins' private key-value stores)
//! - `meta`: `schema_version` → decimal text

use std::path::Path;
use std::sync::Arc;

use sled::Transactional as _;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::group_commit::GroupCommit;
use crate::{CertificateRecord, StoreError};

const SCHEMA_VERSION: u32 = 1;

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
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: sled::Db,
    certificates: sled::Tree,
    by_client: sled::Tree,
    by_expiry: sled::Tree,
    plugin_kv: sled::Tree,
    commit: GroupCommit,
}

impl Store {
    /// Opens (or creates) the store in `dir`. Fails if another process holds it.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let open_error = |reason: String| StoreError::Open {
            path: dir.to_owned(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_error(e.to_string()))?;
        let config = sled::Config::new()
            .path(dir.join("sled"))
            .mode(sled::Mode::HighThroughput)
            // Durability is ours (group commit); sled's own timer thread would also keep the file
            // lock alive for a moment after the store is dropped.
            .flush_every_ms(None);
        let db = open_with_lock_retry(&config).map_err(|e| open_error(e.to_string()))?;
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
            plugin_kv: db.open_tree("plugin_kv")?,
            commit: GroupCommit::start(db.clone())?,
            db,
        };
        Ok(Store {
            inner: Arc::new(inner),
        })
    }

    /// Stores a new record with its index entries atomically and returns once it is on disk.
    /// A record whose serial exists already is refused and nothing is written.
    pub async fn insert_certificate(&self, record: &CertificateRecord) -> Result<(), StoreError> {
        self.insert_in_memory(record)?;
        self.inner.commit.durable().await
    }

    fn insert_in_memory(&self, record: &CertificateRecord) -> Result<(), StoreError> {
        let value = serde_json::to_vec(record)
            .map_err(|e| StoreError::Unavailable(format!("cannot encode record: {e}")))?;
        let client_key = client_key(&record.client_hash, record.issued_at, &record.serial);
        let expiry_key = expiry_key(record.not_after, &record.serial);
        let inner = &self.inner;
        (&inner.certificates, &inner.by_client, &inner.by_expiry)
            .transaction(|(certificates, by_client, by_expiry)| {
                if certificates.get(record.serial.as_bytes())?.is_some() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
                certificates.insert(record.serial.as_bytes(), value.as_slice())?;
                by_client.insert(client_key.as_slice(), &[])?;
                by_expiry.insert(expiry_key.as_slice(), &[])?;
                Ok(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(()) => StoreError::DuplicateSerial(record.serial.clone()),
                TransactionError::Storage(e) => StoreError::from(e),
            })
    }

    /// The record with this serial (lower-case hex without leading zeros), if stored.
    pub fn certificate(&self, serial: &str) -> Result<Option<CertificateRecord>, StoreError> {
        self.inner
            .certificates
            .get(serial.as_bytes())?
            .map(|bytes| decode(serial, &bytes))
            .transpose()
    }

    /// Every record issued to `client_hash`, oldest first.
    pub fn certificates_for_client(
        &self,
        client_hash: &str,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let mut prefix = client_hash.as_bytes().to_vec();
        prefix.push(0);
        let mut records = Vec::new();
        for entry in self.inner.by_client.scan_prefix(&prefix) {
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
        let start = order_preserving(from).to_be_bytes();
        let end = order_preserving(until).to_be_bytes();
        let mut serials = Vec::new();
        for entry in self.inner.by_expiry.range(start..end) {
            let (key, _) = entry?;
            serials.push(String::from_utf8_lossy(&key[8..]).into_owned());
        }
        Ok(serials)
    }

    /// Record and index counts.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            certificates: self.inner.certificates.len(),
            client_index_entries: self.inner.by_client.len(),
            expiry_index_entries: self.inner.by_expiry.len(),
        }
    }

    /// Reads `key` from `plugin`'s key-value namespace.
    pub fn plugin_kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .inner
            .plugin_kv
            .get(plugin_key(plugin, key))?
            .map(|v| v.to_vec()))
    }

    /// Writes `key` in `plugin`'s namespace. Not flushed on its own: it becomes durable with the
    /// next certificate's group commit, or at shutdown.
    pub fn plugin_kv_set(&self, plugin: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner
            .plugin_kv
            .insert(plugin_key(plugin, key), value)?;
        Ok(())
    }

    /// Removes `key` from `plugin`'s namespace.
    pub fn plugin_kv_delete(&self, plugin: &str, key: &str) -> Result<(), StoreError> {
        self.inner.plugin_kv.remove(plugin_key(plugin, key))?;
        Ok(())
    }

    /// Every entry of `plugin`'s namespace, by key.
    pub fn plugin_kv_entries(&self, plugin: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let prefix = plugin_key(plugin, "");
        let mut entries = Vec::new();
        for entry in self.inner.plugin_kv.scan_prefix(&prefix) {
            let (key, value) = entry?;
            entries.push((
                String::from_utf8_lossy(&key[prefix.len()..]).into_owned(),
                value.to_vec(),
            ));
        }
        Ok(entries)
    }

    /// Flushes everything to disk now (used at shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner.db.flush()?;
        Ok(())
    }
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

fn client_key(client_hash: &str, issued_at: i64, serial: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(client_hash.len() + 9 + serial.len());
    key.extend_from_slice(client_hash.as_bytes());
    key.push(0);
    key.extend_from_slice(&order_preserving(issued_at).to_be_bytes());
    key.extend_from_slice(serial.as_bytes());
    key
}

fn expiry_key(not_after: i64, serial: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + serial.len());
    key.extend_from_slice(&order_preserving(not_after).to_be_bytes());
    key.extend_from_slice(serial.as_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CertificateStatus;

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
        }
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
        let for_abc: Vec<String> = store
            .certificates_for_client("abc")
            .expect("scan")
            .into_iter()
            .map(|r| r.serial)
            .collect();
        assert_eq!(for_abc, ["0a", "0b"]);
        assert_eq!(
            store.serials_expiring_between(-10, 600).expect("range"),
            ["0c", "0b"]
        );
        assert_eq!(
            store.stats(),
            StoreStats {
                certificates: 3,
                client_index_entries: 3,
                expiry_index_entries: 3
            }
        );
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
        assert_eq!(store.stats().client_index_entries, 1);
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
        assert_eq!(store.stats().certificates, 200);
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
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Open { .. })
        ));
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
