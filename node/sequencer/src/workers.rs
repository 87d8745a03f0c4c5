//! The background threads: the tree worker, which finishes seals (tree, notes, batch data)
//! off the writer, and the snapshot writer, which writes restart snapshots it completes.

use std::{
    sync::{atomic::Ordering, Arc},
    time::Instant,
};

use alloy::primitives::{Address, B256};
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::{
    batch::SealedBatch,
    metrics::Counters,
    priority,
    seal::{SealJob, SharedTree},
    snapshot::{self, SnapshotConfig},
    state,
};

/// What the tree worker sends back for a seal job.
pub(crate) type SealResult = oneshot::Receiver<Result<SealedBatch, String>>;

/// A seal job and where its batch goes.
pub(crate) type SealOrder = (Box<SealJob>, oneshot::Sender<Result<SealedBatch, String>>);

/// Where the writer hands seal jobs to the tree worker.
pub(crate) type SealJobs = std::sync::mpsc::SyncSender<SealOrder>;

/// Niceness of the tree worker's threads: hashing a sealed batch's tree takes tens of
/// milliseconds of both cores, which would otherwise delay the transfers being answered
/// meanwhile; at a lower priority it takes what they leave.
pub const TREE_WORKER_NICE: i32 = 5;

/// Seal jobs waiting for the tree worker at most; beyond, the writer waits (so a worker
/// starved of CPU slows intake instead of growing a queue).
pub(crate) const TREE_WORKER_QUEUE: usize = 16;

/// Starts the tree worker: a thread that runs seal jobs in the order given (see
/// [`seal`](crate::seal)), so the writer goes on applying transfers meanwhile, with its own
/// hashing threads at [`TREE_WORKER_NICE`]. It ends when the sender is dropped.
pub(crate) fn spawn_tree_worker(
    tree: Arc<SharedTree>,
    counters: Arc<Counters>,
    snapshots: Option<SnapshotWriter>,
) -> std::io::Result<SealJobs> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("tree-hash-{i}"))
        .start_handler(|_| priority::lower_thread_priority(TREE_WORKER_NICE))
        .build()
        .map_err(std::io::Error::other)?;
    let snapshots = snapshots
        .map(|w| spawn_snapshot_writer(w, counters.clone()))
        .transpose()?;
    let (jobs, rx) = std::sync::mpsc::sync_channel::<SealOrder>(TREE_WORKER_QUEUE);
    std::thread::Builder::new()
        .name("stablelane-seal".into())
        .spawn(move || {
            for (job, reply) in rx {
                let started = Instant::now();
                let result = pool.install(|| tree.run(*job)).map_err(|e| e.to_string());
                counters.built(started.elapsed());
                let result = result.map(|(batch, snapshot)| {
                    if let (Some(snapshot), Some(to)) = (snapshot, &snapshots) {
                        // One at a time: if the last is still being written, skip this one
                        // (the next seal past the interval takes another).
                        if to.try_send(snapshot).is_err() {
                            counters.snapshot_failures.fetch_add(1, Ordering::Relaxed);
                            warn!(target: "sequencer", batch = batch.number, "snapshot skipped: the previous one is still being written");
                        }
                    }
                    batch
                });
                // The writer may have stopped; the batch is rebuilt from the journal then.
                let _ = reply.send(result);
            }
        })?;
    Ok(jobs)
}

/// Where and for which deployment the snapshot writer writes.
pub(crate) struct SnapshotWriter {
    pub(crate) config: SnapshotConfig,
    pub(crate) domain_separator: B256,
    /// The buffer the writer copies slots into; prepared here, returned after each write.
    pub(crate) spare_slots: state::SpareSlots,
    /// Slots at start: the prepared buffer holds this many plus room to grow.
    pub(crate) slots: usize,
}

/// Makes `spare` hold a buffer with room for `slots` slots and one in eight more, every
/// page of it touched (so resident), unless it already has that room.
pub(crate) fn prepare_spare_slots(spare: &state::SpareSlots, slots: usize) {
    let want = slots.saturating_add(slots / 8).saturating_add(1024);
    if spare.lock().map_or(true, |b| b.capacity() >= want) {
        return;
    }
    let template = stablelane_ledger::Slot {
        owner: Address::ZERO,
        token: Address::ZERO,
        balance: stablelane::Amount(0),
        nonce: stablelane::Nonce(0),
        salt: B256::ZERO,
    };
    let mut buffer = Vec::with_capacity(want);
    buffer.resize(want, template);
    buffer.clear();
    if let Ok(mut b) = spare.lock() {
        if b.capacity() < buffer.capacity() {
            *b = buffer;
        }
    }
}

/// Niceness of the snapshot writer (it encodes and writes a few hundred megabytes at 1M
/// slots, which transfers should not wait behind).
pub(crate) const SNAPSHOT_WRITER_NICE: i32 = 10;

/// Starts the thread that writes snapshots the tree worker completes, one at a time.
pub(crate) fn spawn_snapshot_writer(
    w: SnapshotWriter,
    counters: Arc<Counters>,
) -> std::io::Result<std::sync::mpsc::SyncSender<Box<snapshot::Snapshot>>> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Box<snapshot::Snapshot>>(0);
    std::thread::Builder::new()
        .name("stablelane-snapshot".into())
        .spawn(move || {
            priority::lower_thread_priority(SNAPSHOT_WRITER_NICE);
            prepare_spare_slots(&w.spare_slots, w.slots);
            for mut s in rx {
                let started = Instant::now();
                match snapshot::write(&w.config.dir, w.domain_separator, &s, w.config.keep) {
                    Ok((path, bytes)) => {
                        let took = started.elapsed();
                        counters.snapshots.fetch_add(1, Ordering::Relaxed);
                        counters.last_snapshot_seq.store(s.seq, Ordering::Relaxed);
                        counters.last_snapshot_micros.store(
                            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
                            Ordering::Relaxed,
                        );
                        info!(target: "sequencer", seq = s.seq, batch = s.batch, slots = s.ledger.slots.len(), bytes, path = %path.display(), took_ms = took.as_millis() as u64, "snapshot written");
                    }
                    Err(e) => {
                        counters.snapshot_failures.fetch_add(1, Ordering::Relaxed);
                        warn!(target: "sequencer", seq = s.seq, error = %e, "snapshot not written; restarts replay more of the journal until one is");
                    }
                }
                // The copy's buffer serves the next snapshot (still resident).
                let slots = std::mem::take(&mut s.ledger.slots);
                let count = slots.len();
                if let Ok(mut spare) = w.spare_slots.lock() {
                    if spare.capacity() < slots.capacity() {
                        *spare = slots;
                    }
                }
                prepare_spare_slots(&w.spare_slots, count);
            }
        })?;
    Ok(tx)
}
