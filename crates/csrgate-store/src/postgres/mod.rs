//! The PostgreSQL backend: one database shared by several csrgate replicas.
//!
//! Tables (migration 1, `migrations.rs`):
//! - `certificates`: serial (primary key: uniqueness needs no coordination, as serials start
//!   with the issuance time and end in 64 random bits), `seq` (identity: listing order),
//!   client hash, notAfter, the record as JSON (the same encoding as sled's)
//! - `revoked`: serial → the CRL's entry (kept after delete)
//! - `audit` + `audit_head`: one hash chain for all replicas; appends serialise on the head row
//! - `plugin_kv`: (plugin, key) → value, shared by all replicas
//! - `acme`: (kind, id) → value: ACME's accounts, orders, authorizations and nonces
//! - `crls`: every CRL built, by CRL Number; `crl_number`: a sequence, so a number is never
//!   handed out twice, even by two replicas or after a rollback
//!
//! Every connection runs with `synchronous_commit = on` and a write returns only after its
//! transaction committed. Any failure to reach or write the database is
//! [`StoreError::Unavailable`] (503 `store_unavailable`); the pool reconnects on the next call.

mod acme;
mod batch;
mod copy;
mod crl;
mod lifecycle;
mod listener;
mod migrations;
mod plugin_kv;
mod prune;
mod queries;
mod snapshot;
mod sql;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;

use crate::audit::{AuditEntry, AuditEvent, AuditHead};
use crate::{CertificateRecord, Serial, StoreError};

pub use listener::CrlNotices;
pub use migrations::SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION;

/// Where and how to reach the database.
#[derive(Clone)]
pub struct PostgresConfig {
    /// A libpq URL without a password, e.g. `postgres://csrgate@db.internal/csrgate` or, on a
    /// Unix socket, `postgres://csrgate@%2Frun%2Fpostgresql/csrgate`.
    pub url: String,
    /// The password, read from a file or a systemd credential (never from the command line).
    pub password: Option<String>,
    /// Connections this replica keeps at most (default 16).
    pub pool_size: usize,
    /// The CA certificates (PEM) that PostgreSQL's server certificate must chain to when the
    /// URL says `sslmode=require`; `None`: the system's trust store.
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("pool_size", &self.pool_size)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl PostgresConfig {
    /// The driver's configuration: the URL, the password, writable sessions only (a standby
    /// cannot record a certificate), `synchronous_commit = on` for every session, so a commit
    /// that returned is on disk (and on a synchronous standby, when configured), and time
    /// limits on locks (5 s), statements (15 s), idle transactions (15 s) and dead peers.
    ///
    /// Errors: [`StoreError::Open`] for a URL that does not parse or that holds a password.
    pub fn driver_config(&self) -> Result<tokio_postgres::Config, StoreError> {
        let refused = |reason: String| StoreError::Open {
            path: "postgres_url".into(),
            reason,
        };
        let mut config: tokio_postgres::Config = self
            .url
            .parse()
            .map_err(|e| refused(format!("{e} (expected postgres://user@host/database)")))?;
        if config.get_password().is_some() {
            return Err(refused(
                "the URL holds a password; put it in postgres_password_file or the systemd \
                 credential `postgres-password` instead"
                    .into(),
            ));
        }
        if let Some(password) = &self.password {
            config.password(password.as_bytes());
        }
        // TLS is used when asked for, and then verified: `sslmode=require` encrypts and checks
        // the server's certificate and host name (libpq's verify-full). libpq's default,
        // `prefer`, would encrypt without verifying anything; here it is `disable`.
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Prefer {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
        }
        if config.get_application_name().is_none() {
            config.application_name("csrgate");
        }
        // A 200 waits for the commit's WAL flush; and no request waits without bound: a lock
        // held by a replica that vanished, a statement or a transaction left open, a dead TCP
        // peer each end in an error (503) within seconds, not at the kernel's two hours.
        config.options(
            "-c synchronous_commit=on -c lock_timeout=5s -c statement_timeout=15s \
             -c idle_in_transaction_session_timeout=15s",
        );
        config.keepalives_idle(Duration::from_secs(10));
        config.tcp_user_timeout(Duration::from_secs(15));
        config.target_session_attrs(tokio_postgres::config::TargetSessionAttrs::ReadWrite);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        Ok(config)
    }
}

impl PostgresConfig {
    /// The TLS connector, used when the URL says `sslmode=require` (never on a Unix socket):
    /// the server's certificate must chain to `ca_file` (or the system's trust store) and name
    /// the host. Errors: [`StoreError::Open`] when `ca_file` cannot be read.
    pub fn tls(&self) -> Result<postgres_openssl::MakeTlsConnector, StoreError> {
        let refused = |reason: String| StoreError::Open {
            path: self
                .ca_file
                .clone()
                .unwrap_or_else(|| "postgres_ca_file".into()),
            reason,
        };
        let mut builder =
            openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client())
                .map_err(|e| refused(format!("TLS: {e}")))?;
        builder
            .set_min_proto_version(Some(openssl::ssl::SslVersion::TLS1_2))
            .map_err(|e| refused(format!("TLS: {e}")))?;
        if let Some(file) = &self.ca_file {
            builder
                .set_ca_file(file)
                .map_err(|e| refused(format!("not a PEM file of CA certificates: {e}")))?;
        }
        Ok(postgres_openssl::MakeTlsConnector::new(builder.build()))
    }
}

/// The PostgreSQL store. Cheap to clone: clones share the pool and the CRL listener.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: Pool,
    pub(crate) notices: Arc<CrlNotices>,
    /// New certificates go to the batch writer (`batch.rs`).
    batches: tokio::sync::mpsc::UnboundedSender<batch::Pending>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects, creates or migrates the schema (refused when the database is newer than this
    /// build: [`StoreError::SchemaVersion`]), and starts listening for CRLs published by other
    /// replicas.
    pub async fn connect(config: &PostgresConfig) -> Result<Self, StoreError> {
        let driver = config.driver_config()?;
        migrations::migrate(&driver, config.tls()?).await?;
        Self::with_pool(config, driver)
    }

    /// Connects to a database that holds this build's schema already, creating and migrating
    /// nothing (the read-only store commands); [`StoreError::Open`] or
    /// [`StoreError::SchemaVersion`] otherwise.
    pub async fn connect_as_found(config: &PostgresConfig) -> Result<Self, StoreError> {
        let driver = config.driver_config()?;
        migrations::check(&driver, config.tls()?).await?;
        Self::with_pool(config, driver)
    }

    fn with_pool(
        config: &PostgresConfig,
        driver: tokio_postgres::Config,
    ) -> Result<Self, StoreError> {
        let tls = config.tls()?;
        let manager = Manager::from_config(
            driver.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(2)))
            .build()
            .map_err(|e| StoreError::Unavailable(format!("connection pool: {e}")))?;
        let notices = CrlNotices::start(driver, tls);
        let batches = batch::start(pool.clone());
        Ok(PostgresStore {
            pool,
            notices,
            batches,
        })
    }

    /// A pooled connection, or [`StoreError::Unavailable`].
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("postgres: {e}")))
    }
}

/// A driver error as a store error: the database's answer when it is one the store expects
/// (a duplicate serial), else unavailable.
pub(crate) fn unavailable(error: tokio_postgres::Error) -> StoreError {
    let detail = match error.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            // The driver's own text is general ("error performing TLS handshake"); the cause
            // (a certificate that does not verify, a refused connection) is in its sources.
            let mut text = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    };
    StoreError::Unavailable(format!("postgres: {detail}"))
}

/// Whether `error` is a unique-key violation (a serial recorded already).
pub(crate) fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// The record's stored form: the JSON sled stores too, so a copy between backends is exact.
pub(crate) fn encode(record: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(record)
        .map_err(|e| StoreError::Unavailable(format!("cannot encode: {e}")))
}

/// A stored JSON value back, or [`StoreError::Corrupt`] naming `key`.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    key: &str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// Appends one audit entry in `transaction`: locks the head row (every replica's appends wait
/// here, which keeps one chain), writes the entry and moves the head. Call it last in a
/// transaction, so the lock is held only until the commit.
pub(crate) async fn append_audit(
    transaction: &deadpool_postgres::Transaction<'_>,
    time: i64,
    event: AuditEvent,
) -> Result<AuditEntry, StoreError> {
    let head = lock_audit_head(transaction).await?;
    let entry = AuditEntry::new(head.seq + 1, time, event, head.hash);
    write_audit(transaction, &entry).await?;
    Ok(entry)
}

/// Appends `events` (time, event) to the chain in order, in `transaction`: one lock of the
/// head row, one multi-row insert, one move of the head.
pub(crate) async fn append_audit_events(
    transaction: &deadpool_postgres::Transaction<'_>,
    events: Vec<(i64, AuditEvent)>,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut head = lock_audit_head(transaction).await?;
    let mut seqs = Vec::with_capacity(events.len());
    let mut entries = Vec::with_capacity(events.len());
    for (time, event) in events {
        let entry = AuditEntry::new(head.seq + 1, time, event, head.hash);
        head = AuditHead {
            seq: entry.seq,
            hash: entry.hash.clone(),
        };
        seqs.push(entry.seq as i64);
        entries.push(encode(&entry)?);
    }
    let insert = transaction
        .prepare_cached(
            "INSERT INTO audit (seq, entry) SELECT * FROM unnest($1::bigint[], $2::text[])",
        )
        .await
        .map_err(unavailable)?;
    transaction
        .execute(&insert, &[&seqs, &entries])
        .await
        .map_err(unavailable)?;
    let move_head = transaction
        .prepare_cached("UPDATE audit_head SET seq = $1, hash = $2 WHERE id")
        .await
        .map_err(unavailable)?;
    transaction
        .execute(&move_head, &[&(head.seq as i64), &head.hash])
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// The audit chain's head, its row locked until `transaction` ends.
pub(crate) async fn lock_audit_head(
    transaction: &deadpool_postgres::Transaction<'_>,
) -> Result<AuditHead, StoreError> {
    let row = sql::query_one(
        transaction,
        "SELECT seq, hash FROM audit_head WHERE id FOR UPDATE",
        &[],
    )
    .await?;
    Ok(AuditHead {
        seq: row.get::<_, i64>(0) as u64,
        hash: row.get(1),
    })
}

/// Writes `entry` and makes it the head (the head row locked by [`lock_audit_head`]).
pub(crate) async fn write_audit(
    transaction: &deadpool_postgres::Transaction<'_>,
    entry: &AuditEntry,
) -> Result<(), StoreError> {
    sql::execute(
        transaction,
        "INSERT INTO audit (seq, entry) VALUES ($1, $2)",
        &[&(entry.seq as i64), &encode(entry)?],
    )
    .await?;
    sql::execute(
        transaction,
        "UPDATE audit_head SET seq = $1, hash = $2 WHERE id",
        &[&(entry.seq as i64), &entry.hash],
    )
    .await?;
    Ok(())
}

/// The stored record of `serial`, its row locked until `transaction` ends.
pub(crate) async fn record_for_update(
    transaction: &deadpool_postgres::Transaction<'_>,
    serial: &Serial,
) -> Result<Option<CertificateRecord>, StoreError> {
    let serial = serial.to_string();
    let row = sql::query_opt(
        transaction,
        "SELECT record FROM certificates WHERE serial = $1 FOR UPDATE",
        &[&serial],
    )
    .await?;
    row.map(|row| decode(&serial, row.get(0))).transpose()
}
