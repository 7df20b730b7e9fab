//! One call per statement: the SQL text goes through the connection's prepared-statement cache
//! (deadpool keeps one per connection, so a statement is parsed once per connection, not per
//! call), and driver failures become [`StoreError::Unavailable`] with the server's SQLSTATE.
//! Every function takes a pooled client or a transaction alike.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::unavailable;
use crate::StoreError;

/// Runs `sql`, returning how many rows it changed.
pub(crate) async fn execute(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
    client
        .execute(&statement, params)
        .await
        .map_err(unavailable)
}

/// Runs `sql`, returning every row.
pub(crate) async fn query(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
    client.query(&statement, params).await.map_err(unavailable)
}

/// Runs `sql`, which returns exactly one row.
pub(crate) async fn query_one(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Row, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
    client
        .query_one(&statement, params)
        .await
        .map_err(unavailable)
}

/// Runs `sql`, which returns at most one row.
pub(crate) async fn query_opt(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
    client
        .query_opt(&statement, params)
        .await
        .map_err(unavailable)
}

/// A read-only REPEATABLE READ transaction: one consistent view of the store while the
/// replicas go on writing (audit verification, snapshots).
pub(crate) async fn consistent_view(
    client: &mut deadpool_postgres::Client,
) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(unavailable)
}
