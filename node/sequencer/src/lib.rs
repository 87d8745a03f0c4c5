//! Stablelane's sequencer: the single writer of the ledger.
//!
//! Transactions reach it already signature-checked (the RPC layer verifies signatures in
//! parallel before). The writer task takes them from a bounded intake queue in groups,
//! applies each to the [`State`] (ledger and state tree), appends the accepted ones to the
//! journal, waits for the group's `fdatasync`, indexes the receipts in the sled [`Store`],
//! and only then answers and publishes [`Event`]s: an acknowledged transaction is durable.
//!
//! On start-up [`Sequencer::open`] replays the journal to rebuild the state, catches the
//! store up with it, checks the store's slots and root checkpoint against the replay
//! (rebuilding the store when they disagree) and checks per-token supply, refusing to start
//! when the journal itself does not verify.
//!
//! Batches are sealed here too, as journal records ([`JournalRecord::SealBatch`]): the
//! writer seals on its own when the open batch reaches a [`BatchLimits`] limit, and on
//! request ([`Sequencer::seal_batch`], which the settler calls for the age limit and
//! `admin_sealBatch`). Sealed batches and their data are indexed in the store.
//!
//! Not here: JSON-RPC, the chain watcher and the settler.

pub mod batch;
pub mod priority;
pub mod record;
pub mod seal;
pub mod sealed;
pub mod snapshot;
pub mod state;
pub mod store;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, RwLock,
    },
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use alloy::{
    primitives::{Address, Signature, B256},
    signers::local::PrivateKeySigner,
    sol_types::Eip712Domain,
};
use stablelane::{
    rpc::{BatchNotification, BatchStatus},
    signing::{sign_receipt_in, SignatureError},
    Receipt, SequenceNumber, Signed, Transfer, TxHash, Withdrawal,
};
use stablelane_ledger::{Deposit, DepositRefusal, ForcedWithdrawal, LedgerConfig, Rejection};
use stablelane_storage::{Journal, JournalConfig, JournalMetrics};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{error, info, warn};

pub use batch::{
    BatchChainState, BatchLimits, InFlight, SealedBatch, SettlerMetrics, WatcherMetrics,
};
pub use record::JournalRecord;
pub use seal::SealHashes;
use seal::{SealJob, SharedTree};
pub use snapshot::SnapshotConfig;
pub use state::{Applied, ApplyError, OpenBatchInfo, RecipientState, State};
pub use store::{ChainCursor, Checkpoint, Store, StoreError, StoreUpdate};

/// Capacity of the event channel; a subscriber further behind loses events (and is told).
pub const EVENT_CHANNEL_CAPACITY: usize = 4_096;

/// Records between progress lines while replaying the journal.
const REPLAY_PROGRESS_EVERY: u64 = 1_000_000;

/// Receipts and slots collected before one store write while catching up.
const CATCH_UP_WRITE_EVERY: usize = 10_000;

/// Settings of a sequencer.
#[derive(Debug, Clone)]
pub struct SequencerConfig {
    /// Directory of the journal.
    pub journal_dir: PathBuf,
    /// Directory of the sled store.
    pub store_dir: PathBuf,
    /// Journal limits.
    pub journal: JournalConfig,
    /// Most transactions waiting for the writer; more are refused as busy.
    pub intake_queue_max: usize,
    /// Most transactions applied and journaled per group (one fsync).
    pub group_max: usize,
    /// Ledger settings.
    pub ledger: LedgerConfig,
    /// EIP-712 domain of the deployment.
    pub domain: Eip712Domain,
    /// When the writer seals a batch on its own.
    pub batch: BatchLimits,
    /// Sealed batches whose states stay readable for attestations (0: keep none; see
    /// [`sealed`]).
    pub sealed_history: usize,
    /// Restart snapshots (see [`snapshot`]).
    pub snapshot: SnapshotConfig,
}

pub use stablelane::rpc::SignedReceipt;

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The intake queue is full: retry later.
    #[error("sequencer busy")]
    Busy,
    /// The ledger refused the transaction; nothing was stored.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The sequencer stopped (journal failure or shutdown); restart the node.
    #[error("sequencer stopped: {0}")]
    Stopped(String),
}

/// Errors opening a sequencer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The journal could not be opened.
    #[error("journal: {0}")]
    Journal(#[from] stablelane_storage::Error),
    /// The sled store could not be opened or written.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The data directory belongs to another deployment (chain id or settlement contract).
    #[error("the data directory belongs to another deployment (domain separator {stored}, configured {configured})")]
    WrongDeployment {
        /// Domain separator recorded in the store.
        stored: B256,
        /// Domain separator of the configuration.
        configured: B256,
    },
    /// A journal record does not decode or does not apply: the stored state does not verify.
    #[error("journal record {seq} does not replay: {reason}")]
    Replay {
        /// Its sequence number.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// Balances do not add up to deposits minus withdrawals after replay.
    #[error("supply check failed after replay: {0}")]
    Supply(Rejection),
    /// The tree worker thread could not be started.
    #[error("starting the tree worker: {0}")]
    Thread(std::io::Error),
}

/// Something the sequencer accepted, published once it is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The transaction's receipt (the sender's resulting account).
    pub receipt: Receipt,
    /// The other party it concerns (a transfer's recipient).
    pub counterparty: Option<Address>,
    /// A transfer's recipient right after it.
    pub recipient: Option<RecipientState>,
}

/// How an address takes part in an [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It signed the transaction.
    Sender,
    /// It was paid by the transfer.
    Recipient,
}

impl Role {
    /// `"sender"` or `"recipient"`, as notifications say it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sender => "sender",
            Self::Recipient => "recipient",
        }
    }
}

impl Event {
    /// Whether the event concerns `address` (as sender or recipient).
    pub fn concerns(&self, address: Address) -> bool {
        self.receipt.owner == address || self.counterparty == Some(address)
    }

    /// What `address` may be told of this transaction: its role and its **own** resulting
    /// account, never the other party's (the sender's receipt for the sender, the
    /// recipient's state right after the transfer for the recipient); `None` when the
    /// event does not concern it.
    ///
    /// # Errors
    ///
    /// [`ApplyError::Tree`] if the recipient's salt is not a field element.
    pub fn receipt_for(&self, address: Address) -> Result<Option<(Role, Receipt)>, ApplyError> {
        if self.receipt.owner == address {
            return Ok(Some((Role::Sender, self.receipt.clone())));
        }
        match &self.recipient {
            Some(recipient) if recipient.state.owner == address => Ok(Some((
                Role::Recipient,
                recipient.receipt(self.receipt.tx_hash, self.receipt.sequence)?,
            ))),
            _ => Ok(None),
        }
    }
}

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
    /// The watcher's finality mode (see [`WatcherMetrics::finality_mode`]).
    pub watcher_finality_mode: u64,
    /// The watcher's finality head.
    pub watcher_finality_block: u64,
    /// 1 while the watcher stopped crediting on a rolling-hash mismatch.
    pub watcher_queue_mismatch: u64,
    /// Failed watcher steps.
    pub watcher_failures: u64,
}

#[derive(Debug, Default)]
struct Counters {
    busy: AtomicU64,
    groups: AtomicU64,
    journal: Mutex<JournalMetrics>,
    seals: AtomicU64,
    seal_micros: AtomicU64,
    last_seal_micros: AtomicU64,
    seal_build_micros: AtomicU64,
    last_seal_build_micros: AtomicU64,
    snapshots: AtomicU64,
    snapshot_failures: AtomicU64,
    last_snapshot_seq: AtomicU64,
    last_snapshot_micros: AtomicU64,
}

impl Counters {
    /// A seal held the writer (and the state lock) for `took`.
    fn sealed(&self, took: std::time::Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.seals.fetch_add(1, Ordering::Relaxed);
        self.seal_micros.fetch_add(micros, Ordering::Relaxed);
        self.last_seal_micros.store(micros, Ordering::Relaxed);
    }

    /// The tree worker finished a seal job (tree, notes, batch data) in `took`.
    fn built(&self, took: std::time::Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.seal_build_micros.fetch_add(micros, Ordering::Relaxed);
        self.last_seal_build_micros.store(micros, Ordering::Relaxed);
    }
}

/// What the tree worker sends back for a seal job.
type SealResult = oneshot::Receiver<Result<SealedBatch, String>>;

/// A seal job and where its batch goes.
type SealOrder = (Box<SealJob>, oneshot::Sender<Result<SealedBatch, String>>);

/// Where the writer hands seal jobs to the tree worker.
type SealJobs = std::sync::mpsc::SyncSender<SealOrder>;

/// Niceness of the tree worker's threads: hashing a sealed batch's tree takes tens of
/// milliseconds of both cores, which would otherwise delay the transfers being answered
/// meanwhile; at a lower priority it takes what they leave.
pub const TREE_WORKER_NICE: i32 = 5;

/// Seal jobs waiting for the tree worker at most; beyond, the writer waits (so a worker
/// starved of CPU slows intake instead of growing a queue).
const TREE_WORKER_QUEUE: usize = 16;

/// Starts the tree worker: a thread that runs seal jobs in the order given (see
/// [`seal`](crate::seal)), so the writer goes on applying transfers meanwhile, with its own
/// hashing threads at [`TREE_WORKER_NICE`]. It ends when the sender is dropped.
fn spawn_tree_worker(
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
struct SnapshotWriter {
    config: SnapshotConfig,
    domain_separator: B256,
    /// The buffer the writer copies slots into; prepared here, returned after each write.
    spare_slots: state::SpareSlots,
    /// Slots at start: the prepared buffer holds this many plus room to grow.
    slots: usize,
}

/// Makes `spare` hold a buffer with room for `slots` slots and one in eight more, every
/// page of it touched (so resident), unless it already has that room.
fn prepare_spare_slots(spare: &state::SpareSlots, slots: usize) {
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
const SNAPSHOT_WRITER_NICE: i32 = 10;

/// Starts the thread that writes snapshots the tree worker completes, one at a time.
fn spawn_snapshot_writer(
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

/// What the writer is asked to do.
#[derive(Debug)]
enum Submission {
    Transfer(Signed<Transfer>),
    Withdrawal(Signed<Withdrawal>),
    Deposit(Deposit),
    Forced(ForcedWithdrawal),
    RegisterViewingKey(Address, Signature),
    Seal,
}

/// What the writer did with a submission.
#[derive(Debug, Default)]
struct Done {
    receipt: Option<Receipt>,
    sealed: Option<u64>,
}

type Reply = oneshot::Sender<Result<Done, SubmitError>>;

/// Handle to the running sequencer. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sequencer {
    intake: mpsc::Sender<(Submission, Reply)>,
    state: Arc<RwLock<State>>,
    store: Arc<Store>,
    events: broadcast::Sender<Event>,
    batch_events: broadcast::Sender<BatchNotification>,
    counters: Arc<Counters>,
    settler: Arc<SettlerMetrics>,
    watcher: Arc<WatcherMetrics>,
    operator: Arc<PrivateKeySigner>,
    /// The deployment's EIP-712 domain separator (receipts are signed without the state
    /// lock).
    separator: B256,
    writer: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    stored: watch::Receiver<Stored>,
    opened: Opened,
}

/// The last batch in the store, and why the sequencer stopped, once it did.
type Stored = (u64, Option<String>);

/// A seal job handed out by the replay: its record, whether the store is being caught up
/// there, and the job.
type ReplaySeal = (u64, bool, Box<SealJob>);

/// What the replay's seal thread returns for a [`ReplaySeal`].
type ReplaySealed = (u64, bool, Result<SealedBatch, ApplyError>);

/// Whether the store disagrees with the journal (rebuild it) or the journal is bad (refuse).
enum ReplayFailure {
    Inconsistent(String),
    Fatal(OpenError),
}

impl From<OpenError> for ReplayFailure {
    fn from(e: OpenError) -> Self {
        Self::Fatal(e)
    }
}

impl From<StoreError> for ReplayFailure {
    fn from(e: StoreError) -> Self {
        Self::Fatal(e.into())
    }
}

impl From<stablelane_storage::Error> for ReplayFailure {
    fn from(e: stablelane_storage::Error) -> Self {
        Self::Fatal(e.into())
    }
}

/// Rebuilds the state: from the newest usable snapshot (if any) and the journal after it,
/// catching `store` up and checking it. The state returned hands out its seal jobs (see
/// [`State::hand_out_seals`]).
fn replay(
    journal: &Journal,
    store: &Store,
    config: &SequencerConfig,
) -> Result<(State, Opened), ReplayFailure> {
    let started = Instant::now();
    let journal_last = journal.last_seq().map_or(0, |s| s.0);
    let applied = store.applied_seq()?;
    if applied > journal_last {
        return Err(ReplayFailure::Inconsistent(format!(
            "store covers record {applied}, the journal ends at {journal_last}"
        )));
    }
    let checkpoint = store.checkpoint()?;
    let (mut state, snapshot) = restore(journal, store, config, journal_last, applied)?;
    let from = snapshot.map_or(0, |(seq, _)| seq);
    let check_checkpoint = |state: &mut State, seq: u64| -> Result<(), ReplayFailure> {
        let Some(checkpoint) = checkpoint.filter(|c| c.seq.get() == seq) else {
            return Ok(());
        };
        let root = state.root().map_err(|e| OpenError::Replay {
            seq,
            reason: e.to_string(),
        })?;
        if root != checkpoint.root {
            return Err(ReplayFailure::Inconsistent(format!(
                "root checkpoint at record {seq} is {}, the journal implies {root}",
                checkpoint.root
            )));
        }
        Ok(())
    };
    // A checkpoint at the snapshot's own record is checked before the tail.
    if from > 0 {
        check_checkpoint(&mut state, from)?;
    }
    // Batches the store holds need not be rebuilt: their seals only close the open batch, and
    // the tree catches up once. The last of them before the kept history (or the last one)
    // is checked against the stored root; the kept history is sealed in full.
    let stored_batches = store.last_batch_number()?;
    let checked_batch = stored_batches.saturating_sub(state.sealed_history() as u64);
    let mut update = StoreUpdate::default();
    let flush = |update: &mut StoreUpdate, applied_seq: u64| -> Result<(), StoreError> {
        update.applied_seq = applied_seq;
        store.write(update)?;
        *update = StoreUpdate::default();
        Ok(())
    };
    // Seals that rebuild their batch hand their job to a second thread, as the live node's
    // tree worker does, so the records after a seal are applied (and their receipts' leaves
    // hashed) while the seal's tree is updated. The store is only written once every job
    // handed out before has finished, so what it covers is as complete as before.
    state.hand_out_seals();
    let tree = state.tree().clone();
    std::thread::scope(|scope| -> Result<(), ReplayFailure> {
        let (jobs, job_rx) = std::sync::mpsc::sync_channel::<ReplaySeal>(TREE_WORKER_QUEUE);
        let (done_tx, done) = std::sync::mpsc::channel::<ReplaySealed>();
        std::thread::Builder::new()
            .name("stablelane-replay-seal".into())
            .spawn_scoped(scope, move || {
                for (seq, catch_up, job) in job_rx {
                    let result = tree.run(*job).map(|(batch, _)| batch);
                    if done_tx.send((seq, catch_up, result)).is_err() {
                        break;
                    }
                }
            })
            .map_err(OpenError::Thread)?;
        let mut in_flight = 0usize;
        // Waits for every job handed out; adds the batches to write to `update`.
        let settle =
            |update: &mut StoreUpdate, in_flight: &mut usize| -> Result<(), ReplayFailure> {
                while *in_flight > 0 {
                    let (seq, catch_up, result) = done.recv().map_err(|_| OpenError::Replay {
                        seq: journal_last,
                        reason: "the replay's seal thread stopped".into(),
                    })?;
                    *in_flight -= 1;
                    let batch = result.map_err(|e| OpenError::Replay {
                        seq,
                        reason: e.to_string(),
                    })?;
                    // Catching up, every batch is written; otherwise only one the store lacks
                    // (the tree worker had not finished, or its batch not been written, when the
                    // node stopped).
                    if catch_up || batch.number > stored_batches {
                        update.batches.push(batch);
                    }
                }
                Ok(())
            };
        for record in journal.replay_from(stablelane_storage::SequenceNumber(from + 1))? {
            let record = record?;
            let seq = record.seq.0;
            let decoded =
                JournalRecord::decode(&record.payload).map_err(|e| OpenError::Replay {
                    seq,
                    reason: e.to_string(),
                })?;
            let catch_up = seq > applied;
            let stored_seal = match decoded {
                JournalRecord::SealBatch { number } if !catch_up && number <= checked_batch => {
                    Some(number)
                }
                _ => None,
            };
            if let Some(number) = stored_seal {
                let stored = store.batch(number)?.ok_or_else(|| {
                    ReplayFailure::Inconsistent(format!("the store lacks batch {number}"))
                })?;
                state
                    .replay_stored_seal(
                        number,
                        SequenceNumber(seq),
                        stored.new_root,
                        number == checked_batch,
                    )
                    .map_err(|e| match e {
                        ApplyError::Batch(reason) => ReplayFailure::Inconsistent(reason),
                        other => ReplayFailure::Fatal(OpenError::Replay {
                            seq,
                            reason: other.to_string(),
                        }),
                    })?;
            } else {
                let done = state
                    .apply(&decoded, SequenceNumber(seq), catch_up)
                    .map_err(|e| OpenError::Replay {
                        seq,
                        reason: e.to_string(),
                    })?;
                if let Some(job) = done.seal_job {
                    jobs.send((seq, catch_up, job))
                        .map_err(|_| OpenError::Replay {
                            seq,
                            reason: "the replay's seal thread stopped".into(),
                        })?;
                    in_flight += 1;
                }
                if catch_up {
                    update.receipts.extend(done.receipt);
                    if update.receipts.len() >= CATCH_UP_WRITE_EVERY {
                        settle(&mut update, &mut in_flight)?;
                        flush(&mut update, seq)?;
                    }
                }
            }
            check_checkpoint(&mut state, seq)?;
            if seq % REPLAY_PROGRESS_EVERY == 0 {
                info!(target: "sequencer", seq, of = journal_last, elapsed_ms = started.elapsed().as_millis() as u64, "replaying journal");
            }
        }
        drop(jobs);
        settle(&mut update, &mut in_flight)
    })?;
    if journal_last > applied || !update.batches.is_empty() {
        flush(&mut update, journal_last)?;
    }
    info!(target: "sequencer", records = journal_last - from, took_ms = started.elapsed().as_millis() as u64, "journal records applied");
    let stored_batches = store.last_batch_number()?;
    if stored_batches != state.last_batch() {
        return Err(ReplayFailure::Inconsistent(format!(
            "store has {stored_batches} batches, the journal seals {}",
            state.last_batch()
        )));
    }
    state.ledger().check_supply().map_err(OpenError::Supply)?;
    let root = state.root().map_err(|e| OpenError::Replay {
        seq: journal_last,
        reason: e.to_string(),
    })?;
    store.set_checkpoint(Checkpoint {
        seq: SequenceNumber(journal_last),
        root,
    })?;
    store.flush()?;
    info!(
        target: "sequencer",
        records = journal_last,
        snapshot = from,
        replayed = journal_last - from,
        caught_up = journal_last - applied,
        slots = state.ledger().slot_count(),
        %root,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "journal replayed, store verified"
    );
    Ok((
        state,
        Opened {
            snapshot,
            records_replayed: journal_last - from,
            took: started.elapsed(),
        },
    ))
}

/// The state of the newest usable snapshot with its record and batch, or a fresh state (see
/// [`snapshot`] for what makes one usable). Unusable snapshots are logged and passed over.
fn restore(
    journal: &Journal,
    store: &Store,
    config: &SequencerConfig,
    journal_last: u64,
    applied: u64,
) -> Result<(State, Option<(u64, u64)>), ReplayFailure> {
    let fresh = || {
        State::new(config.ledger.clone(), config.domain.clone())
            .with_sealed_history(config.sealed_history)
    };
    if !config.snapshot.enabled() {
        return Ok((fresh(), None));
    }
    let found = match snapshot::list(&config.snapshot.dir) {
        Ok(found) => found,
        Err(e) => {
            warn!(target: "sequencer", error = %e, "cannot list snapshots; replaying the whole journal");
            return Ok((fresh(), None));
        }
    };
    for (seq, path) in found {
        if seq > journal_last {
            // Of a seal record that never became durable (the node stopped before its group's
            // fsync): it can never be used, and once records are appended past the journal's
            // end again it would name a different record. Delete it.
            warn!(target: "sequencer", path = %path.display(), seq, journal_last, "deleting a snapshot of a record the journal does not have");
            if let Err(e) = std::fs::remove_file(&path) {
                warn!(target: "sequencer", path = %path.display(), error = %e, "cannot delete the snapshot");
            }
            continue;
        }
        let started = Instant::now();
        match load_snapshot(&path, seq, journal, store, config, applied) {
            Ok((state, batch)) => {
                info!(target: "sequencer", seq, batch, path = %path.display(), took_ms = started.elapsed().as_millis() as u64, "snapshot loaded");
                return Ok((state, Some((seq, batch))));
            }
            Err(reason) => {
                warn!(target: "sequencer", path = %path.display(), %reason, "snapshot not used");
            }
        }
    }
    Ok((fresh(), None))
}

/// The state of the snapshot at `path` (of record `seq`) and its batch, if it agrees with the
/// journal and the store; why not otherwise.
fn load_snapshot(
    path: &std::path::Path,
    seq: u64,
    journal: &Journal,
    store: &Store,
    config: &SequencerConfig,
    applied: u64,
) -> Result<(State, u64), String> {
    if seq > applied {
        return Err(format!(
            "it is of record {seq}, the store covers records up to {applied} only"
        ));
    }
    let snap = snapshot::read(path, config.domain.separator()).map_err(|e| e.to_string())?;
    if snap.seq != seq {
        return Err(format!(
            "its file name says record {seq}, it holds {}",
            snap.seq
        ));
    }
    let record = journal
        .replay_from(stablelane_storage::SequenceNumber(seq))
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("the journal has no record {seq}"))?
        .map_err(|e| e.to_string())?;
    match JournalRecord::decode(&record.payload) {
        Ok(JournalRecord::SealBatch { number }) if number == snap.batch => {}
        Ok(_) => {
            return Err(format!(
                "journal record {seq} is not the seal of batch {}",
                snap.batch
            ))
        }
        Err(e) => return Err(format!("journal record {seq}: {e}")),
    }
    let stored = store
        .batch(snap.batch)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the store lacks its batch {}", snap.batch))?;
    if stored.new_root != snap.root || stored.last_sequence != seq {
        return Err(format!(
            "batch {} has root {} sealed by record {} in the store, root {} by record {seq} in the snapshot",
            snap.batch, stored.new_root, stored.last_sequence, snap.root
        ));
    }
    let batch = snap.batch;
    let state = State::from_snapshot(
        config.ledger.clone(),
        config.domain.clone(),
        config.sealed_history,
        snap,
    )
    .map_err(|e| e.to_string())?;
    Ok((state, batch))
}

/// How [`Sequencer::open`] rebuilt the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// The snapshot it started from: its record and batch (none: the whole journal).
    pub snapshot: Option<(u64, u64)>,
    /// Journal records replayed after it.
    pub records_replayed: u64,
    /// How long opening took (snapshot, replay, store check).
    pub took: std::time::Duration,
}

impl Sequencer {
    /// Opens the journal and the store, replays the journal into a fresh state, checks the
    /// store and supply against it, and starts the writer task on the current tokio runtime.
    pub fn open(config: SequencerConfig, operator: PrivateKeySigner) -> Result<Self, OpenError> {
        // With a snapshot to start from, recovery need not read the records before it (a
        // fallback to an older snapshot or a full replay checks each record it reads).
        let mut journal_config = config.journal.clone();
        if config.snapshot.enabled() {
            if let Some((newest, _)) = snapshot::list(&config.snapshot.dir)
                .ok()
                .and_then(|found| found.into_iter().next())
            {
                journal_config.verify_from = journal_config.verify_from.max(newest);
            }
        }
        let (journal, report) = Journal::open(&config.journal_dir, journal_config)?;
        if let Some(torn) = &report.torn_tail {
            warn!(target: "sequencer", ?torn, "journal had a torn tail (never acknowledged); truncated");
        }
        let store = Store::open(&config.store_dir)?;
        let configured = config.domain.separator();
        match store.deployment()? {
            Some(stored) if stored != configured => {
                return Err(OpenError::WrongDeployment { stored, configured })
            }
            Some(_) => {}
            None => store.set_deployment(configured)?,
        }
        let (state, opened) = match replay(&journal, &store, &config) {
            Ok(done) => done,
            Err(ReplayFailure::Fatal(e)) => return Err(e),
            Err(ReplayFailure::Inconsistent(reason)) => {
                warn!(target: "sequencer", %reason, "store disagrees with the journal; rebuilding it from the journal");
                store.clear()?;
                store.set_deployment(configured)?;
                match replay(&journal, &store, &config) {
                    Ok(done) => done,
                    Err(ReplayFailure::Fatal(e)) => return Err(e),
                    Err(ReplayFailure::Inconsistent(reason)) => {
                        return Err(OpenError::Store(StoreError::Corrupt {
                            key: "(rebuilt store)".into(),
                            reason,
                        }))
                    }
                }
            }
        };

        let (intake, rx) = mpsc::channel(config.intake_queue_max.max(1));
        let (events, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        let (batch_events, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        // The replayed state already hands its seal jobs out (to the tree worker from here on).
        let mut state = state;
        let since = opened.snapshot.map_or(0, |(seq, _)| seq);
        if config.snapshot.enabled() {
            state.take_snapshots(config.snapshot.every_records, since);
        }
        let counters = Arc::new(Counters::default());
        counters.last_snapshot_seq.store(since, Ordering::Relaxed);
        let snapshots = config.snapshot.enabled().then(|| SnapshotWriter {
            config: config.snapshot.clone(),
            domain_separator: configured,
            spare_slots: state.spare_slots().clone(),
            slots: state.ledger().slot_count() as usize,
        });
        let seal_jobs = spawn_tree_worker(state.tree().clone(), counters.clone(), snapshots)
            .map_err(OpenError::Thread)?;
        let (stored_tx, stored) = watch::channel((state.last_batch(), None));
        let state = Arc::new(RwLock::new(state));
        let store = Arc::new(store);
        if let Ok(mut m) = counters.journal.lock() {
            *m = journal.metrics();
        }
        let handle = tokio::spawn(writer(Writer {
            journal,
            rx,
            state: state.clone(),
            store: store.clone(),
            events: events.clone(),
            batch_events: batch_events.clone(),
            counters: counters.clone(),
            group_max: config.group_max.max(1),
            limits: config.batch.clamped(),
            seal_jobs,
            stored: stored_tx,
        }));
        Ok(Self {
            intake,
            state,
            store,
            events,
            batch_events,
            counters,
            settler: Arc::new(SettlerMetrics::default()),
            watcher: Arc::new(WatcherMetrics::default()),
            operator: Arc::new(operator),
            separator: config.domain.separator(),
            writer: Arc::new(Mutex::new(Some(handle))),
            stored,
            opened,
        })
    }

    /// How the state was rebuilt at start (snapshot, records replayed, time).
    pub fn opened(&self) -> Opened {
        self.opened
    }

    /// Stops accepting, lets the writer finish what it holds, records a root checkpoint and
    /// closes the journal. Waits until every other clone of this handle is dropped too.
    pub async fn shutdown(self) {
        let handle = match self.writer.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        drop(self);
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }

    /// Read access to the state.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        match self.state.read() {
            Ok(guard) => f(&guard),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// The sled store (receipts and slots as of the last acknowledged group).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The state root, bringing the tree up to date.
    pub fn root(&self) -> Result<B256, ApplyError> {
        write_state(&self.state).root()
    }

    /// Receives every acknowledged transaction from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

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
            watcher_failures: self.watcher.step_failures.load(Ordering::Relaxed),
        }
    }

    /// The receipt of an accepted transaction, from the store.
    pub fn receipt(&self, hash: &TxHash) -> Result<Option<Receipt>, StoreError> {
        self.store.receipt(hash)
    }

    /// The operator's signed receipt for an accepted transaction.
    pub fn signed_receipt(&self, hash: &TxHash) -> Result<Option<SignedReceipt>, SubmitError> {
        match self.store.receipt(hash) {
            Ok(Some(receipt)) => self.sign(receipt).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(SubmitError::Stopped(format!("store: {e}"))),
        }
    }

    /// Signs `receipt` with the operator key.
    pub fn sign(&self, receipt: Receipt) -> Result<SignedReceipt, SubmitError> {
        let signature = sign_receipt_in(&self.operator, &receipt, &self.separator)
            .map_err(|e: SignatureError| SubmitError::Stopped(e.to_string()))?;
        Ok(SignedReceipt { receipt, signature })
    }

    async fn submit(&self, submission: Submission) -> Result<Done, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.intake
            .try_send((submission, reply))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    self.counters.busy.fetch_add(1, Ordering::Relaxed);
                    SubmitError::Busy
                }
                mpsc::error::TrySendError::Closed(_) => SubmitError::Stopped("writer ended".into()),
            })?;
        answer
            .await
            .map_err(|_| SubmitError::Stopped("writer ended".into()))?
    }

    /// Submits a transfer whose signature the caller verified. A transfer already accepted
    /// returns its original receipt and changes nothing (idempotency).
    pub async fn submit_transfer(
        &self,
        tx: Signed<Transfer>,
    ) -> Result<SignedReceipt, SubmitError> {
        let receipt = self
            .submit(Submission::Transfer(tx))
            .await?
            .receipt
            .ok_or_else(|| SubmitError::Stopped("no receipt".into()))?;
        self.sign(receipt)
    }

    /// Submits a withdrawal whose signature the caller verified (idempotent like transfers).
    pub async fn submit_withdrawal(
        &self,
        tx: Signed<Withdrawal>,
    ) -> Result<SignedReceipt, SubmitError> {
        let receipt = self
            .submit(Submission::Withdrawal(tx))
            .await?
            .receipt
            .ok_or_else(|| SubmitError::Stopped("no receipt".into()))?;
        self.sign(receipt)
    }

    /// Credits a confirmed deposit.
    pub async fn submit_deposit(&self, deposit: Deposit) -> Result<(), SubmitError> {
        self.submit(Submission::Deposit(deposit)).await.map(|_| ())
    }

    /// Serves a forced-withdrawal request.
    pub async fn submit_forced(&self, request: ForcedWithdrawal) -> Result<(), SubmitError> {
        self.submit(Submission::Forced(request)).await.map(|_| ())
    }

    /// Registers a viewing key from a verified viewing-key signature.
    pub async fn register_viewing_key(
        &self,
        owner: Address,
        signature: Signature,
    ) -> Result<(), SubmitError> {
        self.submit(Submission::RegisterViewingKey(owner, signature))
            .await
            .map(|_| ())
    }

    /// Seals the open batch now; its number, or `None` when it was empty. When this
    /// returns, the seal record is durable and this batch and every earlier one is built
    /// and stored.
    pub async fn seal_batch(&self) -> Result<Option<u64>, SubmitError> {
        let sealed = self.submit(Submission::Seal).await?.sealed;
        if sealed.is_none() {
            // Nothing open; batches sealed on their own may still be being built.
            self.wait_for_batch(self.read(State::last_batch)).await?;
        }
        Ok(sealed)
    }

    /// Waits until batch `number` is built and stored (batches sealed at the size limits
    /// are finished by the tree worker a little after their seal record).
    ///
    /// # Errors
    ///
    /// [`SubmitError::Stopped`] if the sequencer stopped first.
    pub async fn wait_for_batch(&self, number: u64) -> Result<(), SubmitError> {
        let mut stored = self.stored.clone();
        let outcome = stored
            .wait_for(|(last, failed)| *last >= number || failed.is_some())
            .await
            .map(|s| s.clone());
        match outcome {
            Ok((last, _)) if last >= number => Ok(()),
            Ok((_, failed)) => Err(SubmitError::Stopped(failed.unwrap_or_default())),
            Err(_) => Err(SubmitError::Stopped("the sequencer stopped".into())),
        }
    }

    /// A summary of the open batch.
    pub fn open_batch(&self) -> OpenBatchInfo {
        self.read(State::open_batch)
    }

    /// Sealed batch `number` and what the settler knows of it on-chain.
    pub fn batch(&self, number: u64) -> Result<Option<(SealedBatch, BatchChainState)>, StoreError> {
        match self.store.batch(number)? {
            None => Ok(None),
            Some(batch) => Ok(Some((batch, self.store.batch_chain_state(number)?))),
        }
    }

    /// The batch carrying journal record `seq` and its on-chain state, once sealed.
    pub fn batch_of_sequence(
        &self,
        seq: u64,
    ) -> Result<Option<(u64, BatchChainState)>, StoreError> {
        match self.store.batch_of_sequence(seq)? {
            None => Ok(None),
            Some(number) => Ok(Some((number, self.store.batch_chain_state(number)?))),
        }
    }

    /// Records what the settler learnt about batch `number` and tells batch subscribers
    /// when its status changed.
    pub fn set_batch_chain_state(
        &self,
        number: u64,
        state: &BatchChainState,
    ) -> Result<(), StoreError> {
        let before = self.store.batch_chain_state(number)?;
        self.store.set_batch_chain_state(number, state)?;
        if before.status != state.status {
            if let Some(batch) = self.store.batch(number)? {
                let _ = self.batch_events.send(BatchNotification {
                    number,
                    status: state.status,
                    new_root: batch.new_root,
                    l2_tx_hash: state.l2_tx_hash,
                });
            }
        }
        Ok(())
    }

    /// The settler's counters.
    pub fn settler_metrics(&self) -> &SettlerMetrics {
        &self.settler
    }

    /// The chain watcher's gauges.
    pub fn watcher_metrics(&self) -> &WatcherMetrics {
        &self.watcher
    }

    /// The operator key's address.
    pub fn operator_address(&self) -> Address {
        self.operator.address()
    }

    /// Receives every batch status change from now on (sealed, committed, finalized).
    pub fn subscribe_batches(&self) -> broadcast::Receiver<BatchNotification> {
        self.batch_events.subscribe()
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Everything the writer task owns or shares.
struct Writer {
    journal: Journal,
    rx: mpsc::Receiver<(Submission, Reply)>,
    state: Arc<RwLock<State>>,
    store: Arc<Store>,
    events: broadcast::Sender<Event>,
    batch_events: broadcast::Sender<BatchNotification>,
    counters: Arc<Counters>,
    group_max: usize,
    limits: BatchLimits,
    seal_jobs: SealJobs,
    stored: watch::Sender<Stored>,
}

/// Groups applied and submitted to the journal but not yet answered, at most: the applier
/// runs this far ahead of the journal's fsync (pipelining), then waits.
const PIPELINE_DEPTH: usize = 4;

/// One accepted record waiting for its group's sync (a seal the writer decided on its own
/// has no one to answer).
struct Pending {
    ticket: stablelane_storage::AppendTicket,
    reply: Option<Reply>,
    applied: Applied,
    /// A seal's batch, coming from the tree worker.
    seal: Option<SealResult>,
}

/// A group on its way from the applier to the completer.
struct Committing {
    pending: Vec<Pending>,
    /// Repeats of transactions still in flight: answered with the original receipt once
    /// this group (and so every earlier one) is durable.
    followers: Vec<(Reply, Receipt)>,
    /// The store update of this group, with slots as they were right after it.
    update: StoreUpdate,
}

/// What the applier and the completer share.
struct Shared {
    /// Receipts applied but not yet in the store (for idempotent repeats).
    in_flight: Mutex<HashMap<TxHash, Receipt>>,
    /// Why the sequencer stopped, once it did.
    failed: Mutex<Option<String>>,
    /// The last stored batch and the failure, for [`Sequencer::wait_for_batch`].
    stored: watch::Sender<Stored>,
}

impl Shared {
    fn failed(&self) -> Option<String> {
        self.failed.lock().ok().and_then(|f| f.clone())
    }

    fn fail(&self, reason: String) {
        error!(target: "sequencer", %reason, "sequencer stopping");
        if let Ok(mut f) = self.failed.lock() {
            f.get_or_insert(reason.clone());
        }
        self.stored.send_modify(|s| {
            s.1.get_or_insert(reason);
        });
    }
}

fn write_state(state: &Arc<RwLock<State>>) -> std::sync::RwLockWriteGuard<'_, State> {
    match state.write() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The single writer, in two pipelined stages. The applier takes a group, applies it under
/// the state lock, submits its records to the journal and hands it to the completer, then
/// goes on with the next group while the journal syncs. The completer, in group order,
/// waits for the group's fsync, indexes it in the store, and only then answers and
/// publishes: nothing is acknowledged before it is durable.
async fn writer(mut w: Writer) {
    let shared = Arc::new(Shared {
        in_flight: Mutex::new(HashMap::new()),
        failed: Mutex::new(None),
        stored: w.stored.clone(),
    });
    let (to_completer, from_applier) = mpsc::channel::<Committing>(PIPELINE_DEPTH);
    let completer = tokio::spawn(complete(
        from_applier,
        w.store.clone(),
        w.events.clone(),
        w.batch_events.clone(),
        w.counters.clone(),
        shared.clone(),
    ));
    while let Some(first) = w.rx.recv().await {
        let mut group = vec![first];
        while group.len() < w.group_max {
            match w.rx.try_recv() {
                Ok(item) => group.push(item),
                Err(_) => break,
            }
        }
        if let Some(reason) = shared.failed() {
            for (_, reply) in group {
                let _ = reply.send(Err(SubmitError::Stopped(reason.clone())));
            }
            continue;
        }
        let committing = apply_group(&mut w, group, &shared);
        if let Ok(mut m) = w.counters.journal.lock() {
            *m = w.journal.metrics();
        }
        if committing.pending.is_empty() && committing.followers.is_empty() {
            continue;
        }
        if to_completer.send(committing).await.is_err() {
            shared.fail("the completer ended".into());
        }
    }
    drop(to_completer);
    let _ = completer.await;
    if let Ok(mut m) = w.counters.journal.lock() {
        *m = w.journal.metrics();
    }
    if shared.failed().is_none() {
        let checkpoint = {
            let mut st = write_state(&w.state);
            st.root().map(|root| Checkpoint {
                seq: st.last_seq(),
                root,
            })
        };
        match checkpoint {
            Ok(c) => {
                if let Err(e) = w.store.set_checkpoint(c).and_then(|()| w.store.flush()) {
                    warn!(target: "sequencer", error = %e, "recording the root checkpoint");
                }
            }
            Err(e) => warn!(target: "sequencer", error = %e, "computing the root at shutdown"),
        }
    }
    if let Err(e) = w.journal.close() {
        warn!(target: "sequencer", error = %e, "closing journal");
    }
}

/// The completer: per group, in order, wait for durability, index, answer, publish.
async fn complete(
    mut rx: mpsc::Receiver<Committing>,
    store: Arc<Store>,
    events: broadcast::Sender<Event>,
    batch_events: broadcast::Sender<BatchNotification>,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
) {
    let (to_finisher, from_completer) = mpsc::unbounded_channel();
    let finisher = tokio::spawn(finish_seals(
        from_completer,
        store.clone(),
        batch_events.clone(),
        shared.clone(),
    ));
    while let Some(group) = rx.recv().await {
        let mut durable = Vec::with_capacity(group.pending.len());
        let mut lost = false;
        for p in group.pending {
            match p.ticket.await {
                Ok(_) => durable.push((p.reply, p.applied, p.seal)),
                Err(e) => {
                    let reason = format!("journal sync failed: {e}");
                    shared.fail(reason.clone());
                    lost = true;
                    if let Some(reply) = p.reply {
                        let _ = reply.send(Err(SubmitError::Stopped(reason)));
                    }
                }
            }
        }
        counters.groups.fetch_add(1, Ordering::Relaxed);
        if lost {
            // Some records of the group are not durable: the store must not claim them,
            // and repeats cannot be answered. A restart replays the durable journal.
            let reason = shared.failed().unwrap_or_default();
            for (reply, _, _) in durable {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(SubmitError::Stopped(reason.clone())));
                }
            }
            for (reply, _) in group.followers {
                let _ = reply.send(Err(SubmitError::Stopped(reason.clone())));
            }
            continue;
        }
        // Index before answering, so a repeat of an acknowledged transaction finds it.
        if let Err(e) = store.write(&group.update) {
            // The journal has the group: acknowledge it, but stop; a restart catches the
            // store up from the journal.
            shared.fail(format!("store write failed: {e}"));
        }
        if let Ok(mut in_flight) = shared.in_flight.lock() {
            for receipt in &group.update.receipts {
                in_flight.remove(&receipt.tx_hash);
            }
        }
        for batch in &group.update.batches {
            announce(batch, &batch_events, None);
        }
        for (reply, applied, seal) in durable {
            if let Some(receipt) = &applied.receipt {
                // No subscriber is fine.
                let _ = events.send(Event {
                    receipt: receipt.clone(),
                    counterparty: applied.counterparty,
                    recipient: applied.recipient.clone(),
                });
            }
            if let Some(seal) = seal {
                // The seal record is durable; its batch is stored, announced and answered
                // once the tree worker has built it, without holding up later groups.
                if to_finisher.send((seal, reply)).is_err() {
                    shared.fail("the seal finisher ended".into());
                }
                continue;
            }
            if let Some(reply) = reply {
                let _ = reply.send(Ok(Done {
                    sealed: applied.sealed.as_ref().map(|b| b.number),
                    receipt: applied.receipt,
                }));
            }
        }
        for (reply, receipt) in group.followers {
            let _ = reply.send(Ok(Done {
                receipt: Some(receipt),
                sealed: None,
            }));
        }
    }
    drop(to_finisher);
    let _ = finisher.await;
}

/// Logs and publishes a sealed batch.
fn announce(
    batch: &SealedBatch,
    batch_events: &broadcast::Sender<BatchNotification>,
    built: Option<std::time::Duration>,
) {
    let build_ms = built.map(|d| d.as_secs_f64() * 1e3);
    info!(target: "sequencer", batch = batch.number, transactions = batch.transaction_count, changed_slots = batch.changed_slots, withdrawals = batch.withdrawals.len(), data_bytes = batch.data.len(), root = %batch.new_root, build_ms, "batch sealed");
    // No subscriber is fine.
    let _ = batch_events.send(BatchNotification {
        number: batch.number,
        status: BatchStatus::Sealed,
        new_root: batch.new_root,
        l2_tx_hash: None,
    });
}

/// Stores, announces and answers sealed batches in order, as the tree worker finishes them
/// (each one's seal record is durable already).
async fn finish_seals(
    mut rx: mpsc::UnboundedReceiver<(SealResult, Option<Reply>)>,
    store: Arc<Store>,
    batch_events: broadcast::Sender<BatchNotification>,
    shared: Arc<Shared>,
) {
    while let Some((seal, reply)) = rx.recv().await {
        let waited = Instant::now();
        let outcome = match seal.await {
            // A batch is up to ~100 kB of data: written off the runtime's worker threads,
            // which answer transfers meanwhile.
            Ok(Ok(batch)) => {
                let store = store.clone();
                match tokio::task::spawn_blocking(move || store.write_batch(&batch).map(|()| batch))
                    .await
                {
                    Ok(written) => written.map_err(|e| format!("store write failed: {e}")),
                    Err(e) => Err(format!("store write failed: {e}")),
                }
            }
            Ok(Err(e)) => Err(format!("sealing failed: {e}")),
            Err(_) => Err("the tree worker ended".to_string()),
        };
        match outcome {
            Ok(batch) => {
                shared.stored.send_modify(|s| s.0 = batch.number);
                announce(&batch, &batch_events, Some(waited.elapsed()));
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(Done {
                        receipt: None,
                        sealed: Some(batch.number),
                    }));
                }
            }
            Err(reason) => {
                // The journal holds the seal: a restart builds and stores the batch.
                shared.fail(reason.clone());
                if let Some(reply) = reply {
                    let _ = reply.send(Err(SubmitError::Stopped(reason)));
                }
            }
        }
    }
}

/// Applies a group under the state lock and submits the accepted records to the journal.
fn apply_group(w: &mut Writer, group: Vec<(Submission, Reply)>, shared: &Shared) -> Committing {
    let mut pending = Vec::with_capacity(group.len());
    let mut followers = Vec::new();
    let mut failed = shared.failed();
    let mut st = write_state(&w.state);
    let now = now_s();
    for (submission, reply) in group {
        if let Some(reason) = failed.as_ref() {
            let _ = reply.send(Err(SubmitError::Stopped(reason.clone())));
            continue;
        }
        // Idempotency: the same signed message again returns the original receipt. A repeat
        // of an accepted transfer or withdrawal cannot apply again (its nonce is spent), so
        // the in-flight map and the store are only consulted when the ledger refuses one:
        // the hot path reads neither.
        let record = match submission {
            Submission::Transfer(tx) => JournalRecord::Transfer {
                tx,
                accepted_at_s: now,
            },
            Submission::Withdrawal(tx) => JournalRecord::Withdrawal {
                tx,
                accepted_at_s: now,
            },
            Submission::Deposit(deposit) => JournalRecord::Deposit { deposit },
            Submission::Forced(request) => JournalRecord::ForcedWithdrawal { request },
            Submission::RegisterViewingKey(owner, signature) => {
                let key = stablelane::signing::viewing_key_from_signature(&signature);
                if st.ledger().viewing_key(owner) == Some(key) {
                    // Already registered: nothing to journal.
                    let _ = reply.send(Ok(Done::default()));
                    continue;
                }
                JournalRecord::RegisterViewingKey { owner, signature }
            }
            Submission::Seal => {
                let open = st.open_batch();
                if open.records == 0 {
                    let _ = reply.send(Ok(Done::default()));
                    continue;
                }
                JournalRecord::SealBatch {
                    number: open.number,
                }
            }
        };
        let sealing = matches!(record, JournalRecord::SealBatch { .. });
        let started = Instant::now();
        let accepted = match journal_record(
            &mut w.journal,
            &w.seal_jobs,
            &mut st,
            record,
            Some(reply),
            &mut pending,
            &mut failed,
        ) {
            Journaled::Accepted => true,
            Journaled::Refused => false,
            Journaled::Rejected(reply, record, rejection) => {
                match record
                    .tx_hash(st.separator())
                    .map(|h| repeat_of(&h, shared, &w.store))
                {
                    Some(Repeat::InFlight(receipt)) => followers.push((reply, receipt)),
                    Some(Repeat::Stored(receipt)) => {
                        let _ = reply.send(Ok(Done {
                            receipt: Some(receipt),
                            sealed: None,
                        }));
                    }
                    Some(Repeat::StoreFailed(e)) => {
                        let _ = reply.send(Err(SubmitError::Stopped(format!("store: {e}"))));
                    }
                    Some(Repeat::New) | None => {
                        let _ = reply.send(Err(SubmitError::Rejected(rejection)));
                    }
                }
                false
            }
        };
        if sealing && accepted {
            w.counters.sealed(started.elapsed());
        }
        if !accepted {
            continue;
        }
        if let Some(p) = pending.last() {
            if let (Some(hash), Some(receipt)) = (p.applied.tx_hash, &p.applied.receipt) {
                if let Ok(mut in_flight) = shared.in_flight.lock() {
                    in_flight.insert(hash, receipt.clone());
                }
            }
        }
        if !sealing && st.open_batch_full(&w.limits) {
            let number = st.open_batch().number;
            let started = Instant::now();
            if let Journaled::Accepted = journal_record(
                &mut w.journal,
                &w.seal_jobs,
                &mut st,
                JournalRecord::SealBatch { number },
                None,
                &mut pending,
                &mut failed,
            ) {
                w.counters.sealed(started.elapsed());
            }
        }
    }
    if let Some(reason) = failed {
        shared.fail(reason);
    }
    // The store update as of right after this group.
    let update = StoreUpdate {
        receipts: pending
            .iter()
            .filter_map(|p| p.applied.receipt.clone())
            .collect(),
        batches: pending
            .iter()
            .filter_map(|p| p.applied.sealed.as_deref().cloned())
            .collect(),
        applied_seq: st.last_seq().get(),
    };
    Committing {
        pending,
        followers,
        update,
    }
}

/// Answers `reply`, if anyone waits for it, with `e`.
fn refuse(reply: Option<Reply>, e: SubmitError) {
    if let Some(reply) = reply {
        let _ = reply.send(Err(e));
    }
}

/// Stops the sequencer for `reason`: logs it, records it in `failed` and answers `reply`
/// with it. Returns `false` (nothing accepted).
fn stop(failed: &mut Option<String>, reply: Option<Reply>, reason: String) -> bool {
    error!(target: "sequencer", %reason, "sequencer stopping");
    *failed = Some(reason.clone());
    refuse(reply, SubmitError::Stopped(reason));
    false
}

/// Applies `record`, hands a seal's remaining work to the tree worker, and submits the
/// record to the journal; whether it was accepted. Answers `reply` at once only when
/// refused.
fn journal_record(
    journal: &mut Journal,
    seal_jobs: &SealJobs,
    st: &mut State,
    record: JournalRecord,
    reply: Option<Reply>,
    pending: &mut Vec<Pending>,
    failed: &mut Option<String>,
) -> Journaled {
    let seq = st.last_seq().get() + 1;
    let mut record = record;
    let mut result = st.apply(&record, SequenceNumber(seq), true);
    // A deposit the ledger can never credit is consumed as refused instead of stopping the
    // queue: journaled as such, so a replay refuses it too whatever the configuration says.
    let refusal = match (&result, &record) {
        (Err(ApplyError::Rejected(rejection)), JournalRecord::Deposit { deposit }) => {
            DepositRefusal::of(*rejection).map(|reason| (deposit.clone(), reason))
        }
        _ => None,
    };
    if let Some((deposit, reason)) = refusal {
        warn!(
            target: "sequencer",
            queue_index = deposit.queue_index,
            recipient = %deposit.recipient,
            token = %deposit.token,
            amount = %deposit.amount.base_units(),
            %reason,
            "deposit refused: consumed without credit, refundable on-chain once its batch is committed"
        );
        record = JournalRecord::RefusedDeposit { deposit, reason };
        result = st.apply(&record, SequenceNumber(seq), true);
    }
    let mut applied = match result {
        Ok(applied) => applied,
        Err(ApplyError::Rejected(rejection)) => {
            return match reply {
                Some(reply) => Journaled::Rejected(reply, Box::new(record), rejection),
                None => Journaled::Refused,
            };
        }
        Err(other) => {
            refuse(reply, SubmitError::Stopped(other.to_string()));
            return Journaled::Refused;
        }
    };
    let seal = match applied.seal_job.take() {
        Some(job) => {
            let (done, seal) = oneshot::channel();
            if seal_jobs.send((job, done)).is_err() {
                let reason = "the tree worker ended".to_string();
                st.tree().fail(reason.clone());
                stop(failed, reply, reason);
                return Journaled::Refused;
            }
            Some(seal)
        }
        None => None,
    };
    let accepted = match journal.submit(record.encode()) {
        Ok(ticket) if ticket.seq().0 == seq => {
            pending.push(Pending {
                ticket,
                reply,
                applied,
                seal,
            });
            true
        }
        // The state already holds the record under another number: stop, a restart
        // rebuilds the state from the journal.
        Ok(ticket) => stop(
            failed,
            reply,
            format!("journal sequence {} != {seq}", ticket.seq().0),
        ),
        // Applied in memory but not journaled: never acknowledge, stop accepting; a
        // restart replays the durable journal.
        Err(e) => stop(failed, reply, format!("journal append failed: {e}")),
    };
    if accepted {
        Journaled::Accepted
    } else {
        Journaled::Refused
    }
}

/// What [`journal_record`] did with a record.
enum Journaled {
    /// Applied and submitted to the journal; its reply waits in `pending`.
    Accepted,
    /// Not accepted, and the reply (if any) answered.
    Refused,
    /// The ledger refused it; the reply is not answered yet (it may be a repeat).
    Rejected(Reply, Box<JournalRecord>, Rejection),
}

/// Whether a transaction the ledger refused was accepted before.
enum Repeat {
    /// Accepted in a group not yet durable: answer once it is.
    InFlight(Receipt),
    /// Accepted and indexed.
    Stored(Receipt),
    /// The store could not be read.
    StoreFailed(StoreError),
    /// Never accepted: the refusal stands.
    New,
}

fn repeat_of(hash: &TxHash, shared: &Shared, store: &Store) -> Repeat {
    let in_flight = shared
        .in_flight
        .lock()
        .ok()
        .and_then(|m| m.get(hash).cloned());
    if let Some(receipt) = in_flight {
        return Repeat::InFlight(receipt);
    }
    match store.receipt(hash) {
        Ok(Some(receipt)) => Repeat::Stored(receipt),
        Ok(None) => Repeat::New,
        Err(e) => Repeat::StoreFailed(e),
    }
}
