//! [`Store`]: the store of record's one API, dispatched to the backend it was opened on.

use std::path::Path;

use crate::crl::{CrlSigner, StoredCrl};
use crate::group_commit::{FlushObserver, WriteIntent};
use crate::plugin_kv::KvWrites;
use crate::postgres::{PostgresConfig, PostgresStore};
use crate::sled_store::SledStore;
use crate::{
    AcmeKind, AuditAction, AuditEntry, CertificateRecord, Imported, ListPage, Predecessor,
    Restored, RevocationReason, RevocationStatus, RevokedEntry, Serial, StoreError, StoreStats,
};

/// The certificate store. Cheap to clone; clones share one database (and, for sled, one
/// flusher). Every method that reads or writes is `async`: the PostgreSQL backend waits on the
/// network, the sled backend answers at once (reads) or after its group commit (writes).
///
/// Errors: [`StoreError::Unavailable`] when the backend cannot be reached or written (the
/// server answers 503 `store_unavailable`); the backend recovers by itself.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

/// The backends. An enum, not a trait object: there are two, known at compile time, and a
/// `match` makes every operation exist in both (see ARCHITECTURE.md, csrgate-store).
#[derive(Clone, Debug)]
enum Backend {
    Sled(SledStore),
    Postgres(PostgresStore),
}

/// `$sled` or `$postgres`, with `$store` bound to the backend.
macro_rules! dispatch {
    ($self:ident, $store:ident => $sled:expr, $postgres:expr) => {
        match &$self.backend {
            Backend::Sled($store) => $sled,
            Backend::Postgres($store) => $postgres,
        }
    };
}

impl Store {
    /// Opens (or creates) the sled store in `dir`. Fails if another process holds it.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(Store {
            backend: Backend::Sled(SledStore::open(dir)?),
        })
    }

    /// Connects to the PostgreSQL store, creating or migrating its schema
    /// ([`StoreError::SchemaVersion`] when the database was migrated by a newer csrgate).
    pub async fn connect_postgres(config: &PostgresConfig) -> Result<Self, StoreError> {
        Ok(Store {
            backend: Backend::Postgres(PostgresStore::connect(config).await?),
        })
    }

    /// Connects to a PostgreSQL store as it is: refused unless it holds this build's schema;
    /// nothing is created or migrated (for commands that only read a live database).
    pub async fn connect_postgres_as_found(config: &PostgresConfig) -> Result<Self, StoreError> {
        Ok(Store {
            backend: Backend::Postgres(PostgresStore::connect_as_found(config).await?),
        })
    }

    /// The backend's name: `sled` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        dispatch!(self, store => { let _ = store; "sled" }, { let _ = store; "postgres" })
    }

    /// Whether other processes write to this store too (PostgreSQL): then CRLs are shared
    /// through the store ([`Store::issue_crl`], [`Store::latest_crl`], [`Store::crl_notices`])
    /// and nothing read from it may be cached as if this process were its only writer.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Builds a CRL: reads the revoked entries still unexpired at `now` (Unix seconds), takes
    /// the next CRL Number and calls `sign` with both. On PostgreSQL one replica builds at a
    /// time (an advisory lock), the CRL is stored and announced to the other replicas, and the
    /// newest stored CRL is returned instead when its thisUpdate is at or after `fresh_since`
    /// (so replicas refreshing together build one CRL, not one each). sled ignores
    /// `fresh_since` and keeps nothing: the process serves what it built.
    ///
    /// Errors: `sign`'s, as [`StoreError::Build`]; the store's.
    pub async fn issue_crl(
        &self,
        now: i64,
        fresh_since: Option<i64>,
        sign: CrlSigner<'_>,
    ) -> Result<StoredCrl, StoreError> {
        match &self.backend {
            Backend::Sled(store) => {
                let entries = store.revoked_entries(now)?;
                let number = store.next_crl_number().await?;
                sign(&entries, number).map_err(StoreError::Build)
            }
            Backend::Postgres(store) => store.issue_crl(now, fresh_since, sign).await,
        }
    }

    /// The newest CRL another replica stored (PostgreSQL); `None` on sled.
    pub async fn latest_crl(&self) -> Result<Option<StoredCrl>, StoreError> {
        dispatch!(self, store => { let _ = store; Ok(None) }, store.latest_crl().await)
    }

    /// A receiver that changes whenever a replica published a CRL (PostgreSQL LISTEN/NOTIFY,
    /// and after the listener reconnected); `None` on sled.
    pub fn crl_notices(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        dispatch!(self, store => { let _ = store; None }, Some(store.notices.subscribe()))
    }

    /// How many times the store reopened after a failure (sled; always 0 for PostgreSQL, whose
    /// writes are durable when acknowledged). Writes not flushed before a reopen are gone, so a
    /// cache of what the store holds is stale when this number changed.
    pub fn reopens(&self) -> u64 {
        dispatch!(self, store => store.reopens(), { let _ = store; 0 })
    }

    /// Announces that the caller is about to write (an issuing request, from its start), so a
    /// group commit in progress may wait for it. A hint; dropping the guard is enough.
    pub fn write_intent(&self) -> WriteIntent {
        dispatch!(self, store => store.write_intent(), { let _ = store; WriteIntent::none() })
    }

    /// Stores a new record with its index entries and an `issue` audit entry (actor `client`),
    /// atomically and durably. A record whose serial exists already is refused
    /// ([`StoreError::DuplicateSerial`]) and nothing is written.
    pub async fn insert_certificate(&self, record: &CertificateRecord) -> Result<(), StoreError> {
        self.insert_certificate_as(record, AuditAction::Issue, "client")
            .await
    }

    /// Like [`Store::insert_certificate`] with another audit action and actor.
    pub async fn insert_certificate_as(
        &self,
        record: &CertificateRecord,
        action: AuditAction,
        actor: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self, store => store.insert_certificate_as(record, action, actor).await, store.insert_certificate_as(record, action, actor).await)
    }

    /// Records a certificate issued elsewhere (an OpenSSL CA being adopted) with its revocation
    /// and an `import` audit entry by `actor` at `now` (Unix seconds). Idempotent: a serial
    /// stored already is [`Imported::AlreadyPresent`], unless the import says revoked and the
    /// store says valid ([`Imported::Revoked`]). sled: durable after [`Store::flush`].
    pub async fn import_certificate(
        &self,
        record: &CertificateRecord,
        actor: &str,
        now: i64,
    ) -> Result<Imported, StoreError> {
        dispatch!(self, store => store.import_certificate(record, actor, now), store.import_certificate(record, actor, now).await)
    }

    /// Makes the next CRL Number at least `next`, so numbers keep increasing across an adoption
    /// (RFC 5280 5.2.3). Never lowers it.
    pub async fn continue_crl_numbers_from(&self, next: u64) -> Result<(), StoreError> {
        dispatch!(self, store => store.continue_crl_numbers_from(next), store.continue_crl_numbers_from(next).await)
    }

    /// Stores `record` as the successor of `predecessor.serial`, atomically: the old record gets
    /// `replaced_by`, and with `revoke_as` it is revoked (rotation). Refused when the old one is
    /// missing, deleted, revoked, already replaced, or another client's.
    pub async fn insert_successor(
        &self,
        record: &CertificateRecord,
        predecessor: &Predecessor,
    ) -> Result<(), StoreError> {
        dispatch!(self, store => store.insert_successor(record, predecessor).await, store.insert_successor(record, predecessor).await)
    }

    /// One page of certificates, newest first (all, or one client's). `cursor` is the previous
    /// page's `next_cursor` ([`StoreError::InvalidCursor`] for any other text); every older
    /// certificate appears exactly once. `keep` filters records; at most `limit` are returned.
    pub async fn list_certificates(
        &self,
        client_hash: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
        keep: &(dyn Fn(&CertificateRecord) -> bool + Sync),
    ) -> Result<ListPage, StoreError> {
        dispatch!(self, store => store.list_certificates(client_hash, cursor, limit, keep), store.list_certificates(client_hash, cursor, limit, keep).await)
    }

    /// Revokes `serial` for `reason` (RFC 5280 5.3.1), durably, with a `revoke` audit entry.
    /// Returns the updated record; [`StoreError::NotFound`] or [`StoreError::AlreadyRevoked`]
    /// otherwise.
    pub async fn revoke(
        &self,
        serial: &Serial,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
        actor: &str,
        now: i64,
    ) -> Result<CertificateRecord, StoreError> {
        dispatch!(self, store => store.revoke(serial, reason, invalidity_date, actor, now).await, store.revoke(serial, reason, invalidity_date, actor, now).await)
    }

    /// Hides `serial` from listings, durably, with a `delete` audit entry. A revoked certificate
    /// stays in the CRL until it expires.
    pub async fn delete(
        &self,
        serial: &Serial,
        actor: &str,
        now: i64,
    ) -> Result<CertificateRecord, StoreError> {
        dispatch!(self, store => store.delete(serial, actor, now).await, store.delete(serial, actor, now).await)
    }

    /// Every revoked certificate whose notAfter is later than `now` (Unix seconds): the CRL's
    /// entries.
    pub async fn revoked_entries(&self, now: i64) -> Result<Vec<RevokedEntry>, StoreError> {
        dispatch!(self, store => store.revoked_entries(now), store.revoked_entries(now).await)
    }

    /// The next CRL Number (RFC 5280 5.2.3), durably taken before it is returned: never issued
    /// twice, even across a crash.
    pub async fn next_crl_number(&self) -> Result<u64, StoreError> {
        dispatch!(self, store => store.next_crl_number().await, store.next_crl_number().await)
    }

    /// Audit entries with `seq > after`, oldest first, at most `limit`.
    pub async fn audit_entries(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        dispatch!(self, store => store.audit_entries(after, limit), store.audit_entries(after, limit).await)
    }

    /// Walks the whole audit chain; `Ok(count)` when intact, else
    /// [`StoreError::AuditBroken`] saying where it breaks.
    pub async fn verify_audit(&self) -> Result<u64, StoreError> {
        dispatch!(self, store => store.verify_audit(), store.verify_audit().await)
    }

    /// The record with this serial, if stored.
    pub async fn certificate(
        &self,
        serial: &Serial,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        dispatch!(self, store => store.certificate(serial), store.certificate(serial).await)
    }

    /// What an OCSP responder says of `serial` (RFC 6960 4.2.1 `CertStatus`): revoked (kept
    /// after delete and expiry), good (recorded) or unknown.
    pub async fn revocation_status(&self, serial: &Serial) -> Result<RevocationStatus, StoreError> {
        dispatch!(self, store => store.revocation_status(serial), store.revocation_status(serial).await)
    }

    /// Every record issued to `client_hash`, oldest first.
    pub async fn certificates_for_client(
        &self,
        client_hash: &str,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        dispatch!(self, store => store.certificates_for_client(client_hash), store.certificates_for_client(client_hash).await)
    }

    /// Serials whose notAfter falls in `[from, until)` (Unix seconds), soonest first.
    pub async fn serials_expiring_between(
        &self,
        from: i64,
        until: i64,
    ) -> Result<Vec<Serial>, StoreError> {
        dispatch!(self, store => store.serials_expiring_between(from, until), store.serials_expiring_between(from, until).await)
    }

    /// Record and index counts.
    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        dispatch!(self, store => store.stats(), store.stats().await)
    }

    /// Reads `key` from `plugin`'s key-value namespace.
    pub async fn plugin_kv_get(
        &self,
        plugin: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self, store => store.plugin_kv_get(plugin, key), store.plugin_kv_get(plugin, key).await)
    }

    /// Applies one plugin call's writes to `plugin`'s namespace atomically: `Some(value)` sets,
    /// `None` deletes. Refused as a whole ([`StoreError::QuotaExceeded`]) when the namespace
    /// (keys and values) would grow past `quota` bytes; the check and the write are one step,
    /// across replicas too. sled: durable with the next group commit or at shutdown.
    pub async fn plugin_kv_apply(
        &self,
        plugin: &str,
        writes: KvWrites<'_>,
        quota: u64,
    ) -> Result<(), StoreError> {
        dispatch!(self, store => store.plugin_kv_apply(plugin, writes, quota), store.plugin_kv_apply(plugin, writes, quota).await)
    }

    /// Bytes of `plugin`'s namespace (what the quota counts): its keys (without the namespace prefix) and values.
    pub async fn plugin_kv_usage(&self, plugin: &str) -> Result<u64, StoreError> {
        dispatch!(self, store => store.plugin_kv_usage(plugin), store.plugin_kv_usage(plugin).await)
    }

    /// Every entry of `plugin`'s namespace, by key.
    pub async fn plugin_kv_entries(
        &self,
        plugin: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        dispatch!(self, store => store.plugin_kv_entries(plugin), store.plugin_kv_entries(plugin).await)
    }

    /// The ACME object `id` of `kind`, as stored.
    pub async fn acme_get(&self, kind: AcmeKind, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self, store => store.acme_get(kind, id), store.acme_get(kind, id).await)
    }

    /// Stores `value` as `id` of `kind` unless that id exists: `true` when this call created
    /// it, `false` when it was there (its value untouched). One winner across replicas, so it
    /// redeems a nonce once and binds a key to one account. Durable before it answers, but for
    /// [`AcmeKind::RedeemedNonce`] on sled (with the next group commit: a crash forgets at most
    /// the last moment's redemptions of nonces that expire within the hour).
    pub async fn acme_insert(
        &self,
        kind: AcmeKind,
        id: &str,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        dispatch!(self, store => store.acme_insert(kind, id, value).await, store.acme_insert(kind, id, value).await)
    }

    /// Replaces `id` of `kind` with `value` if it still holds `expected` (compare-and-swap):
    /// `false` when it changed since it was read (another request, another replica) or is gone.
    /// Durable before it answers.
    pub async fn acme_replace(
        &self,
        kind: AcmeKind,
        id: &str,
        expected: &[u8],
        value: &[u8],
    ) -> Result<bool, StoreError> {
        dispatch!(self, store => store.acme_replace(kind, id, expected, value).await, store.acme_replace(kind, id, expected, value).await)
    }

    /// Every object of `kind` whose id starts with `prefix`, by id (byte order).
    pub async fn acme_scan(
        &self,
        kind: AcmeKind,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        dispatch!(self, store => store.acme_scan(kind, prefix), store.acme_scan(kind, prefix).await)
    }

    /// Removes every object of `kind` whose id sorts (byte order) below `bound`; returns how
    /// many. For ids that start with a time, as redeemed nonces do.
    pub async fn acme_remove_below(&self, kind: AcmeKind, bound: &str) -> Result<u64, StoreError> {
        dispatch!(self, store => store.acme_remove_below(kind, bound), store.acme_remove_below(kind, bound).await)
    }

    /// Every ACME object, by kind and id (copy).
    pub(crate) async fn acme_entries(
        &self,
    ) -> Result<Vec<(AcmeKind, String, Vec<u8>)>, StoreError> {
        dispatch!(self, store => store.acme_entries(), store.acme_entries().await)
    }

    /// Group-commit totals since start: (flushes, writes acknowledged, seconds spent flushing).
    /// Zeros for PostgreSQL, whose commits are its own.
    pub fn flush_stats(&self) -> (u64, u64, f64) {
        dispatch!(self, store => store.flush_stats(), { let _ = store; (0, 0, 0.0) })
    }

    /// Tells `observer` of every group-commit flush from now on (sled). Set once.
    pub fn observe_flushes(&self, observer: FlushObserver) {
        dispatch!(self, store => store.observe_flushes(observer), { let _ = (store, observer); })
    }

    /// Makes everything written so far durable (sled: flushes; PostgreSQL: every write is
    /// durable when it returns). Used at shutdown and after an import.
    pub async fn flush(&self) -> Result<(), StoreError> {
        dispatch!(self, store => store.flush(), { let _ = store; Ok(()) })
    }

    /// Up to `limit` records after insertion position `after` (0: from the first), oldest
    /// first, each with its position: how `store copy` walks a store. Positions are the
    /// backend's own and only ever compared within one store.
    pub async fn records_in_order(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, CertificateRecord)>, StoreError> {
        dispatch!(self, store => store.records_in_order(after, limit), store.records_in_order(after, limit).await)
    }

    /// Writes `record` as another store holds it, with its indexes and CRL entry and without an
    /// audit entry (`store copy` copies the chain itself). Idempotent.
    pub async fn restore_record(&self, record: &CertificateRecord) -> Result<Restored, StoreError> {
        dispatch!(self, store => store.restore_record(record), store.restore_record(record).await)
    }

    /// Writes a CRL entry as another store holds it. Idempotent.
    pub async fn restore_revoked(&self, entry: &RevokedEntry) -> Result<(), StoreError> {
        dispatch!(self, store => store.restore_revoked(entry), store.restore_revoked(entry).await)
    }

    /// Appends another store's audit entry as it is, when it is this chain's next link, or
    /// confirms it is there already; [`StoreError::AuditBroken`] when the chains differ.
    pub async fn restore_audit(&self, entry: &AuditEntry) -> Result<Restored, StoreError> {
        dispatch!(self, store => store.restore_audit(entry), store.restore_audit(entry).await)
    }

    /// The plugins that have a key-value namespace, by name.
    pub async fn plugin_kv_namespaces(&self) -> Result<Vec<String>, StoreError> {
        dispatch!(self, store => store.plugin_kv_namespaces(), store.plugin_kv_namespaces().await)
    }

    /// The last CRL Number handed out (0 before the first).
    pub async fn crl_number_issued(&self) -> Result<u64, StoreError> {
        dispatch!(self, store => store.crl_number_issued(), store.crl_number_issued().await)
    }

    /// Retention: removes up to `limit` certificates whose notAfter is before
    /// `expired_before` (Unix seconds; the caller passes now minus the retention period),
    /// oldest first, each with a `prune` audit entry by `actor` at `now`, with its index entries
    /// and its CRL entry (an expired certificate is on no CRL, RFC 5280 5.1.2.6). Returns how
    /// many were removed; fewer than `limit` means none is left to remove. On PostgreSQL one
    /// replica prunes at a time: the others get 0 meanwhile.
    pub async fn prune_expired(
        &self,
        expired_before: i64,
        limit: usize,
        actor: &str,
        now: i64,
    ) -> Result<usize, StoreError> {
        dispatch!(self, store => store.prune_expired(expired_before, limit, actor, now), store.prune_expired(expired_before, limit, actor, now).await)
    }

    /// The newest audit entry, if any.
    pub async fn last_audit_entry(&self) -> Result<Option<AuditEntry>, StoreError> {
        dispatch!(self, store => store.last_audit_entry(), store.last_audit_entry().await)
    }

    /// The backend's consistent pass over everything (see [`Store::write_snapshot`]).
    pub(crate) async fn snapshot_into(
        &self,
        out: crate::snapshot::LineWriter<'_>,
    ) -> Result<crate::SnapshotSummary, StoreError> {
        dispatch!(self, store => store.snapshot_into(out), store.snapshot_into(out).await)
    }
}
