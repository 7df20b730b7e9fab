//! Group commit: one flusher thread makes the database durable for every writer waiting at that
//! moment, so concurrent requests share one fsync instead of queueing for one each.
//!
//! A writer inserts (in memory), then waits for a ticket. The flusher takes all pending tickets,
//! flushes once and answers them all; tickets that arrive during a flush ride on the next one.
//! Every insert that happened before its ticket was taken is covered by the flush that answers it.
//!
//! A flush costs the same for one write as for thirty: sled seals its buffer, hands it to an I/O
//! thread, and the kernel writes and syncs. Answering only whatever was pending made batches too
//! small for the flushes' cost (docs/decisions/0006-group-commit-delay.md). So when requests that
//! will write are under way ([`WriteIntent`]s outlive their tickets),
//! the flusher waits up to [`COMMIT_DELAY`] for them to join, as PostgreSQL's `commit_delay` with
//! `commit_siblings` does. A lone writer is flushed at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::StoreError;

type Ticket = oneshot::Sender<Result<(), String>>;

/// The longest a flush waits for writers that are under way to join it.
pub(crate) const COMMIT_DELAY: Duration = Duration::from_millis(2);

/// A request that is going to write: while it lives, flushes wait (briefly) for its ticket.
/// Dropping it without writing is fine; the flusher just stops waiting at [`COMMIT_DELAY`].
#[derive(Debug)]
pub struct WriteIntent {
    /// The counter it holds one of; `None` for a backend without group commit.
    intents: Option<Arc<AtomicUsize>>,
}

impl WriteIntent {
    pub(crate) fn new(intents: &Arc<AtomicUsize>) -> Self {
        intents.fetch_add(1, Ordering::Relaxed);
        WriteIntent {
            intents: Some(Arc::clone(intents)),
        }
    }

    /// An intent no flusher waits for (a backend without group commit): no allocation, no
    /// counter.
    pub(crate) fn none() -> Self {
        WriteIntent { intents: None }
    }
}

impl Drop for WriteIntent {
    fn drop(&mut self) {
        if let Some(intents) = &self.intents {
            intents.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Handle to the flusher thread. Dropping it stops the thread and waits for it, so the database
/// is closed (and its file lock released) when the store is dropped.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    tickets: Option<mpsc::Sender<Ticket>>,
    flusher: Option<thread::JoinHandle<()>>,
}

/// Told of every flush: how many writes it acknowledged and how long it took (the daemon's
/// metrics histogram).
pub type FlushObserver = Arc<dyn Fn(u64, std::time::Duration) + Send + Sync>;

/// What the flusher has done, for metrics.
#[derive(Default)]
pub(crate) struct FlushCounters {
    pub(crate) flushes: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) nanos: AtomicU64,
    pub(crate) observer: std::sync::OnceLock<FlushObserver>,
}

impl std::fmt::Debug for FlushCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlushCounters")
            .field("flushes", &self.flushes)
            .field("writes", &self.writes)
            .finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the flusher of `db`. It sets `failed` when a flush fails, waits for `intents`
    /// (see [`WriteIntent`]) and adds to `counters`.
    pub(crate) fn start(
        db: sled::Db,
        failed: Arc<AtomicBool>,
        intents: Arc<AtomicUsize>,
        counters: Arc<FlushCounters>,
    ) -> Result<Self, StoreError> {
        let (tickets, pending) = mpsc::channel::<Ticket>();
        let flusher = thread::Builder::new()
            .name("csrgate-store-flush".into())
            .spawn(move || flush_loop(&db, &pending, &counters, &intents, &failed))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the flusher: {e}")))?;
        Ok(GroupCommit {
            tickets: Some(tickets),
            flusher: Some(flusher),
        })
    }

    /// Returns once everything written before this call is on disk.
    pub(crate) async fn durable(&self) -> Result<(), StoreError> {
        let (ticket, answer) = oneshot::channel();
        self.tickets
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("the flusher has stopped".into()))?
            .send(ticket)
            .map_err(|_| StoreError::Unavailable("the flusher has stopped".into()))?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(StoreError::Unavailable(reason)),
            Err(_) => Err(StoreError::Unavailable("the flusher has stopped".into())),
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        drop(self.tickets.take());
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

fn flush_loop(
    db: &sled::Db,
    pending: &mpsc::Receiver<Ticket>,
    counters: &FlushCounters,
    intents: &AtomicUsize,
    failed: &AtomicBool,
) {
    while let Ok(first) = pending.recv() {
        let mut batch = vec![first];
        batch.extend(pending.try_iter());
        // Writers whose intent is alive but whose ticket is not here yet are coming; a batch's
        // own writers hold intents too, hence the comparison with the batch size.
        let deadline = Instant::now() + COMMIT_DELAY;
        while intents.load(Ordering::Relaxed) > batch.len() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            match pending.recv_timeout(left) {
                Ok(ticket) => {
                    batch.push(ticket);
                    batch.extend(pending.try_iter());
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let outcome = db.flush().map(drop).map_err(|e| e.to_string());
        let elapsed = started.elapsed();
        counters.flushes.fetch_add(1, Ordering::Relaxed);
        counters
            .writes
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        counters
            .nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        if let Some(observe) = counters.observer.get() {
            observe(batch.len() as u64, elapsed);
        }
        if let Err(reason) = &outcome {
            failed.store(true, Ordering::Release);
            tracing::error!(%reason, batch = batch.len(), "store flush failed");
        } else {
            tracing::trace!(batch = batch.len(), "store flushed");
        }
        for ticket in batch {
            // A writer that stopped waiting (client gone) is not an error.
            let _ = ticket.send(outcome.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(dir: &std::path::Path) -> (GroupCommit, Arc<AtomicUsize>, Arc<FlushCounters>) {
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(None)
            .open()
            .expect("open");
        let intents = Arc::new(AtomicUsize::new(0));
        let counters = Arc::new(FlushCounters::default());
        let commit = GroupCommit::start(
            db,
            Arc::new(AtomicBool::new(false)),
            Arc::clone(&intents),
            Arc::clone(&counters),
        )
        .expect("start");
        (commit, intents, counters)
    }

    /// Nobody wakes the flusher for a writer that announced itself and never came: the batch
    /// goes out at the delay. (A flusher that waited for it would hang here.)
    #[tokio::test]
    async fn a_batch_goes_out_at_the_delay_when_an_announced_writer_never_comes() {
        let dir = tempfile::tempdir().expect("tmp");
        let (commit, intents, counters) = start(dir.path());
        let _absent = WriteIntent::new(&intents);
        let _present = WriteIntent::new(&intents);
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), commit.durable())
            .await
            .expect("answered")
            .expect("durable");
        assert!(started.elapsed() >= COMMIT_DELAY);
        assert_eq!(counters.flushes.load(Ordering::Relaxed), 1);
    }

    /// Writers that announced themselves share flushes, and every one of them is answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn announced_writers_share_flushes() {
        let dir = tempfile::tempdir().expect("tmp");
        let (commit, intents, counters) = start(dir.path());
        let commit = Arc::new(commit);
        let writers: Vec<_> = (0..16)
            .map(|_| {
                let intent = WriteIntent::new(&intents);
                let commit = Arc::clone(&commit);
                tokio::spawn(async move {
                    let answered = commit.durable().await;
                    drop(intent);
                    answered
                })
            })
            .collect();
        for writer in writers {
            tokio::time::timeout(Duration::from_secs(5), writer)
                .await
                .expect("answered")
                .expect("join")
                .expect("durable");
        }
        assert_eq!(counters.writes.load(Ordering::Relaxed), 16);
        let flushes = counters.flushes.load(Ordering::Relaxed);
        assert!(
            (1..16).contains(&flushes),
            "{flushes} flushes for 16 writers"
        );
    }

    /// Dropping the handle stops its thread (the drop waits for it) and the database it held.
    #[test]
    fn dropping_the_handle_stops_the_flusher() {
        let dir = tempfile::tempdir().expect("tmp");
        let (commit, _, _) = start(dir.path());
        let (dropped, done) = std::sync::mpsc::channel();
        thread::spawn(move || {
            drop(commit);
            let _ = dropped.send(());
        });
        done.recv_timeout(Duration::from_secs(5))
            .expect("the drop returned: the flusher stopped");
        // sled releases the lock when its last handle is dropped; the flusher held one.
        let mut reopened = None;
        for _ in 0..40 {
            match sled::Config::new().path(dir.path()).open() {
                Ok(db) => {
                    reopened = Some(db);
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        assert!(reopened.is_some(), "the flusher kept the database open");
    }
}
