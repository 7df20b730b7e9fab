//! The PostgreSQL schema, created and migrated by csrgate at start.
//!
//! Migrations are numbered from 1 and applied in order, each in its own transaction, under an
//! advisory lock so two replicas starting together do not both apply one. A database whose
//! version is newer than [`SCHEMA_VERSION`] was migrated by a newer csrgate: this build refuses
//! to start on it rather than write rows it does not understand.

use super::unavailable;
use crate::StoreError;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = 2;

/// The advisory lock key of migrations (`csrgate` + 1, an arbitrary constant of ours).
const MIGRATION_LOCK: i64 = 0x6373_7267_6174_6501;

/// Migration `n` is `MIGRATIONS[n - 1]`. Never edit one that has shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE certificates (
         serial      text PRIMARY KEY,
         seq         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
         client_hash text NOT NULL,
         not_after   bigint NOT NULL,
         record      text NOT NULL
     );
     CREATE INDEX certificates_by_client ON certificates (client_hash, seq);
     CREATE INDEX certificates_by_expiry ON certificates (not_after, serial);
     CREATE TABLE revoked (
         serial    text PRIMARY KEY,
         not_after bigint NOT NULL,
         entry     text NOT NULL
     );
     CREATE TABLE audit (
         seq   bigint PRIMARY KEY,
         entry text NOT NULL
     );
     CREATE TABLE audit_head (
         id   boolean PRIMARY KEY DEFAULT true CHECK (id),
         seq  bigint NOT NULL,
         hash text NOT NULL
     );
     INSERT INTO audit_head (seq, hash)
         VALUES (0, '0000000000000000000000000000000000000000000000000000000000000000');
     CREATE TABLE plugin_kv (
         plugin text NOT NULL,
         key    text NOT NULL,
         value  bytea NOT NULL,
         PRIMARY KEY (plugin, key)
     );
     CREATE SEQUENCE crl_number;
     CREATE TABLE crls (
         number      bigint PRIMARY KEY,
         this_update bigint NOT NULL,
         next_update bigint NOT NULL,
         entries     bigint NOT NULL,
         der         bytea NOT NULL,
         pem         text NOT NULL
     );",
    // 2: ACME's state (crate::AcmeKind numbers the kinds). Ids compare byte-wise (C), as
    // sled's keys do: prefix scans and time-ordered range removals use the primary key.
    "CREATE TABLE acme (
         kind  smallint NOT NULL,
         id    text COLLATE \"C\" NOT NULL,
         value bytea NOT NULL,
         PRIMARY KEY (kind, id)
     );",
];

const _: () = assert!(MIGRATIONS.len() == SCHEMA_VERSION as usize);

/// Creates or migrates the schema on a connection of its own (the pool's connections belong to
/// the runtimes that use them).
pub(super) async fn migrate(
    config: &tokio_postgres::Config,
    tls: postgres_openssl::MakeTlsConnector,
) -> Result<(), StoreError> {
    let (mut client, connection) = config.connect(tls).await.map_err(unavailable)?;
    let driver = tokio::spawn(connection);
    let outcome = apply(&mut client).await;
    drop(client);
    let _ = driver.await;
    outcome
}

async fn apply(client: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    // Waiting for another replica's migration, or migrating a large table, may take longer
    // than a request's limits; "already exists, skipping" notices are not news.
    client
        .batch_execute(
            "SET lock_timeout = 0; SET statement_timeout = 0; SET client_min_messages = warning",
        )
        .await
        .map_err(unavailable)?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(unavailable)?;
    let outcome = apply_locked(client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(unavailable)?;
    outcome
}

async fn apply_locked(client: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS csrgate_schema (
                 version    integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(unavailable)?;
    let found: i32 = client
        .query_one("SELECT coalesce(max(version), 0) FROM csrgate_schema", &[])
        .await
        .map_err(unavailable)?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaVersion {
            found: found.to_string(),
            supported: SCHEMA_VERSION as u32,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i32 + 1;
        let transaction = client.transaction().await.map_err(unavailable)?;
        transaction.batch_execute(sql).await.map_err(unavailable)?;
        transaction
            .execute(
                "INSERT INTO csrgate_schema (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(unavailable)?;
        transaction.commit().await.map_err(unavailable)?;
        tracing::info!(version, "PostgreSQL schema migrated");
    }
    Ok(())
}

/// Checks that the database holds this build's schema, without creating or migrating anything
/// (for commands that only read: they must not migrate a database older replicas still use).
pub(super) async fn check(
    config: &tokio_postgres::Config,
    tls: postgres_openssl::MakeTlsConnector,
) -> Result<(), StoreError> {
    let (client, connection) = config.connect(tls).await.map_err(unavailable)?;
    let driver = tokio::spawn(connection);
    let found = client
        .query_one(
            "SELECT CASE WHEN to_regclass('csrgate_schema') IS NULL THEN 0 \
             ELSE (SELECT coalesce(max(version), 0) FROM csrgate_schema) END",
            &[],
        )
        .await
        .map_err(unavailable);
    drop(client);
    let _ = driver.await;
    let found: i32 = found?.get(0);
    match found {
        0 => Err(StoreError::Open {
            path: "postgres_url".into(),
            reason: "no csrgate schema in this database (csrgate serve or store copy creates it)"
                .into(),
        }),
        version if version > SCHEMA_VERSION => Err(StoreError::SchemaVersion {
            found: version.to_string(),
            supported: SCHEMA_VERSION as u32,
        }),
        version if version < SCHEMA_VERSION => Err(StoreError::Open {
            path: "postgres_url".into(),
            reason: format!(
                "schema version {version} is older than this build's {SCHEMA_VERSION}: start \
                 csrgate serve of this version on it to migrate"
            ),
        }),
        _ => Ok(()),
    }
}
