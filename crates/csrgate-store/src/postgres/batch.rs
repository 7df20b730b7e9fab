//! New certificates are recorded in batches: whatever requests are waiting when a batch starts
//! are written in one transaction, so their commits share one WAL flush and one turn on the
//! audit chain's head row (PostgreSQL's counterpart of sled's group commit). Every request is
//! answered only after the commit; a batch one of whose serials is taken is written again one
//! by one, so only that request is refused.

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};

use super::{append_audit_events, encode, is_unique_violation, unavailable};
use crate::audit::{AuditAction, AuditEvent};
use crate::{CertificateRecord, StoreError};

/// Most certificates in one transaction.
const MAX_BATCH: usize = 256;

/// One new certificate waiting for its batch.
pub(super) struct Pending {
    pub(super) record: CertificateRecord,
    pub(super) action: AuditAction,
    pub(super) actor: String,
    pub(super) done: oneshot::Sender<Result<(), StoreError>>,
}

/// Starts the batch writer on a thread of its own (it outlives whichever runtime opened the
/// store); it ends when the store is dropped.
pub(super) fn start(pool: Pool) -> mpsc::UnboundedSender<Pending> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("csrgate-pg-batch".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(run(pool, receiver)),
                Err(error) => tracing::error!(%error, "cannot start the PostgreSQL batch writer"),
            }
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the PostgreSQL batch writer thread");
    }
    sender
}

async fn run(pool: Pool, mut receiver: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        match bounded(write(&pool, &batch)).await {
            Err(StoreError::DuplicateSerial(_)) if batch.len() > 1 => {
                for pending in batch {
                    let outcome = bounded(write(&pool, std::slice::from_ref(&pending))).await;
                    let _ = pending.done.send(outcome);
                }
            }
            Ok(()) => {
                for pending in batch {
                    let _ = pending.done.send(Ok(()));
                }
            }
            Err(error) => {
                let text = error.to_string();
                let mut error = Some(error);
                for pending in batch {
                    let own = error
                        .take()
                        .unwrap_or_else(|| StoreError::Unavailable(text.clone()));
                    let _ = pending.done.send(Err(own));
                }
            }
        }
    }
}

/// `write`, or [`StoreError::Unavailable`] after 20 s: a stalled database stalls no request
/// longer (the session's own limits should end it first).
async fn bounded(
    write: impl std::future::Future<Output = Result<(), StoreError>>,
) -> Result<(), StoreError> {
    tokio::time::timeout(std::time::Duration::from_secs(20), write)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "postgres: no answer within 20 s".into(),
            ))
        })
}

/// One transaction: the records, their audit entries chained after the head, the new head.
async fn write(pool: &Pool, batch: &[Pending]) -> Result<(), StoreError> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| StoreError::Unavailable(format!("postgres: {e}")))?;
    let transaction = client.transaction().await.map_err(unavailable)?;
    let mut serials = Vec::with_capacity(batch.len());
    let mut clients = Vec::with_capacity(batch.len());
    let mut not_afters = Vec::with_capacity(batch.len());
    let mut records = Vec::with_capacity(batch.len());
    for pending in batch {
        serials.push(pending.record.serial.to_string());
        clients.push(pending.record.client_hash.as_str());
        not_afters.push(pending.record.not_after);
        records.push(encode(&pending.record)?);
    }
    // unnest keeps the arrays' order, so the batch's listing order is its arrival order.
    let insert = transaction
        .prepare_cached(
            "INSERT INTO certificates (serial, client_hash, not_after, record) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])",
        )
        .await
        .map_err(unavailable)?;
    transaction
        .execute(&insert, &[&serials, &clients, &not_afters, &records])
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::DuplicateSerial(batch[0].record.serial.clone())
            } else {
                unavailable(e)
            }
        })?;
    let events = batch
        .iter()
        .map(|pending| {
            let event = AuditEvent {
                action: pending.action,
                serial: pending.record.serial.clone(),
                client_hash: pending.record.client_hash.clone(),
                actor: pending.actor.clone(),
            };
            (pending.record.issued_at, event)
        })
        .collect();
    append_audit_events(&transaction, events).await?;
    transaction.commit().await.map_err(unavailable)
}
