//! The sequencer's counters: the live atomics ([`Counters`]) and the snapshot of them the
//! RPC layer exports ([`SequencerMetrics`]).

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex,
};

use stablelane_storage::JournalMetrics;

use crate::{seal::SealHashes, Sequencer};

/// A snapshot of the sequencer's counters.
#[derive(Debug, Clone, Default)]
pub struct SequencerMetrics {
    /// Submissions waiting in the intake queue.
    pub queue_depth: usize,
    /// Capacity of the intake queue.
    pub queue_capacity: usize,
    /// Submissions refused because the queue was full.
    pub busy: u64,
    /// Groups written (one journal sync each).
    pub groups: u64,
    /// Sequence number of the last journaled record.
    pub last_seq: u64,
    /// Indexed transactions.
    pub transactions: u64,
    /// Ledger slots.
    pub slots: u32,
    /// The journal's counters as of the last group.
    pub journal: JournalMetrics,
    /// Last batch sealed.
    pub batches_sealed: u64,
    /// Seals applied since start (each holds the writer only while it closes the batch and
    /// copies what the tree worker needs).
    pub seals: u64,
    /// Time the writer spent sealing since start.
    pub seal_seconds_total: f64,
    /// How long the last seal held the writer.
    pub last_seal_seconds: f64,
    /// Time the tree worker spent finishing seals (tree, notes, batch data) since start;
    /// transfers do not wait for it.
    pub seal_build_seconds_total: f64,
    /// How long the tree worker took for the last seal.
    pub last_seal_build_seconds: f64,
    /// Poseidon hashes the tree worker computed since start: changed leaves and inner nodes.
    pub seal_hashes: SealHashes,
    /// Restart snapshots written since start.
    pub snapshots_written: u64,
    /// Snapshots that could not be written (or were skipped because one was being written).
    pub snapshot_failures: u64,
    /// Journal record of the newest snapshot (written since start or loaded at start; 0 if
    /// none).
    pub last_snapshot_seq: u64,
    /// How long writing the last snapshot took (file and `fsync`).
    pub last_snapshot_seconds: f64,
    /// Records in the open batch.
    pub open_batch_records: u64,
    /// Leaves changed in the open batch.
    pub open_batch_changed_slots: usize,
    /// Last batch committed on-chain, as the settler last saw it.
    pub batches_committed: u64,
    /// Last batch seen finalized.
    pub batches_finalized: u64,
    /// Commit transactions sent.
    pub commits_sent: u64,
    /// Stuck commits replaced with higher fees.
    pub commit_replacements: u64,
    /// Commits the contract refused.
    pub commit_refusals: u64,
    /// Failed settler steps.
    pub settler_failures: u64,
    /// The watcher's finality mode (see [`crate::WatcherMetrics::finality_mode`]).
    pub watcher_finality_mode: u64,
    /// The watcher's finality head.
    pub watcher_finality_block: u64,
    /// 1 while the watcher stopped crediting on a rolling-hash mismatch.
    pub watcher_queue_mismatch: u64,
    /// 1 while the watcher stopped crediting because the second L2 RPC disagrees.
    pub watcher_cross_check_mismatch: u64,
    /// Failed watcher steps.
    pub watcher_failures: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) busy: AtomicU64,
    pub(crate) groups: AtomicU64,
    pub(crate) journal: Mutex<JournalMetrics>,
    pub(crate) seals: AtomicU64,
    pub(crate) seal_micros: AtomicU64,
    pub(crate) last_seal_micros: AtomicU64,
    pub(crate) seal_build_micros: AtomicU64,
    pub(crate) last_seal_build_micros: AtomicU64,
    pub(crate) snapshots: AtomicU64,
    pub(crate) snapshot_failures: AtomicU64,
    pub(crate) last_snapshot_seq: AtomicU64,
    pub(crate) last_snapshot_micros: AtomicU64,
}

impl Counters {
    /// A seal held the writer (and the state lock) for `took`.
    pub(crate) fn sealed(&self, took: std::time::Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.seals.fetch_add(1, Ordering::Relaxed);
        self.seal_micros.fetch_add(micros, Ordering::Relaxed);
        self.last_seal_micros.store(micros, Ordering::Relaxed);
    }

    /// The tree worker finished a seal job (tree, notes, batch data) in `took`.
    pub(crate) fn built(&self, took: std::time::Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.seal_build_micros.fetch_add(micros, Ordering::Relaxed);
        self.last_seal_build_micros.store(micros, Ordering::Relaxed);
    }
}

impl Sequencer {
    /// The sequencer's counters.
    pub fn metrics(&self) -> SequencerMetrics {
        let journal = self
            .counters
            .journal
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        let (last_seq, slots, sealed, open, seal_hashes) = self.read(|s| {
            (
                s.last_seq().get(),
                s.ledger().slot_count(),
                s.last_batch(),
                s.open_batch(),
                s.tree().hashes(),
            )
        });
        let settler = &self.settler;
        SequencerMetrics {
            queue_depth: self.intake.max_capacity() - self.intake.capacity(),
            queue_capacity: self.intake.max_capacity(),
            busy: self.counters.busy.load(Ordering::Relaxed),
            groups: self.counters.groups.load(Ordering::Relaxed),
            last_seq,
            transactions: self.store.transaction_count(),
            slots,
            journal,
            batches_sealed: sealed,
            seals: self.counters.seals.load(Ordering::Relaxed),
            seal_seconds_total: self.counters.seal_micros.load(Ordering::Relaxed) as f64 / 1e6,
            last_seal_seconds: self.counters.last_seal_micros.load(Ordering::Relaxed) as f64 / 1e6,
            seal_build_seconds_total: self.counters.seal_build_micros.load(Ordering::Relaxed)
                as f64
                / 1e6,
            last_seal_build_seconds: self.counters.last_seal_build_micros.load(Ordering::Relaxed)
                as f64
                / 1e6,
            seal_hashes,
            snapshots_written: self.counters.snapshots.load(Ordering::Relaxed),
            snapshot_failures: self.counters.snapshot_failures.load(Ordering::Relaxed),
            last_snapshot_seq: self.counters.last_snapshot_seq.load(Ordering::Relaxed),
            last_snapshot_seconds: self.counters.last_snapshot_micros.load(Ordering::Relaxed)
                as f64
                / 1e6,
            open_batch_records: open.records,
            open_batch_changed_slots: open.changed_slots,
            batches_committed: settler.last_committed.load(Ordering::Relaxed),
            batches_finalized: settler.last_finalized.load(Ordering::Relaxed),
            commits_sent: settler.commits_sent.load(Ordering::Relaxed),
            commit_replacements: settler.replacements.load(Ordering::Relaxed),
            commit_refusals: settler.commit_refusals.load(Ordering::Relaxed),
            settler_failures: settler.step_failures.load(Ordering::Relaxed),
            watcher_finality_mode: self.watcher.finality_mode.load(Ordering::Relaxed),
            watcher_finality_block: self.watcher.finality_block.load(Ordering::Relaxed),
            watcher_queue_mismatch: self.watcher.queue_mismatch.load(Ordering::Relaxed),
            watcher_cross_check_mismatch: self.watcher.cross_check_mismatch.load(Ordering::Relaxed),
            watcher_failures: self.watcher.step_failures.load(Ordering::Relaxed),
        }
    }
}
