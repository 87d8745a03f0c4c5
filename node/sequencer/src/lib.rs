//! Stablelane's sequencer: the single writer of the ledger.
//!
//! Transactions reach it already signature-checked (the RPC layer verifies signatures in
//! parallel before). The writer task takes them from a bounded intake queue in groups,
//! applies each to the [`State`] (ledger and state tree), appends the accepted ones to the
//! journal, signs the group's receipts once (one signature over their Merkle root, see
//! [`stablelane::receipts`]), waits for the group's `fdatasync`, indexes the receipts in the
//! sled [`Store`], and only then answers and publishes an [`Event`]: an acknowledged
//! transaction is durable.
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
//! This file is the face: configuration, the [`Sequencer`] handle and its [`Event`]s. Behind
//! it: `writer` (the applier and completer stages of the single writer), `replay` (start-up
//! from a snapshot and the journal, store catch-up and check), `workers` (the tree worker and
//! the snapshot writer threads), `metrics` and `error`.
//!
//! Not here: JSON-RPC, the chain watcher and the settler.

pub mod batch;
mod error;
mod metrics;
pub mod priority;
pub mod record;
mod replay;
pub mod seal;
pub mod sealed;
pub mod snapshot;
pub mod state;
pub mod store;
mod workers;
mod writer;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{atomic::Ordering, Arc, Mutex, RwLock},
};

use alloy::{
    primitives::{Address, Signature, B256},
    signers::local::PrivateKeySigner,
    sol_types::Eip712Domain,
};
use stablelane::{
    rpc::BatchNotification, Receipt, Signed, SignedGroup, Transfer, TxHash, Withdrawal,
};
use stablelane_ledger::{Deposit, ForcedWithdrawal, LedgerConfig};
use stablelane_storage::{Journal, JournalConfig};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::warn;

pub use batch::{
    BatchChainState, BatchLimits, InFlight, SealedBatch, SettlerMetrics, WatcherMetrics,
};
pub use error::{OpenError, SubmitError};
use metrics::Counters;
pub use metrics::SequencerMetrics;
pub use record::JournalRecord;
use replay::{replay, ReplayFailure};
pub use seal::SealHashes;
pub use snapshot::SnapshotConfig;
pub use state::{Applied, ApplyError, OpenBatchInfo, State};
pub use store::{
    ChainCursor, Checkpoint, NumberedGroup, ReceiptPlace, Store, StoreError, StoreUpdate,
};
pub use workers::TREE_WORKER_NICE;
use workers::{spawn_tree_worker, SnapshotWriter};
use writer::{write_state, writer, Done, Reply, Submission, Writer};

/// Capacity of the event channels (receipt events are one per group commit); a subscriber
/// further behind loses events (and is told).
pub const EVENT_CHANNEL_CAPACITY: usize = 4_096;

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

/// One group commit's receipts, published once the group is durable.
#[derive(Debug)]
pub struct Event {
    /// The group's signed receipts.
    pub group: Arc<SignedGroup>,
    /// For each receipt, the other party of its transfer: the payee for the sender, the
    /// payer for the recipient (none for withdrawals and chain inputs).
    pub counterparties: Vec<Option<Address>>,
    /// Each owner's receipts in the group, by index.
    owners: HashMap<Address, Vec<u32>>,
}

impl Event {
    /// The event of `group`, with each receipt's counterparty.
    pub fn new(group: Arc<SignedGroup>, counterparties: Vec<Option<Address>>) -> Self {
        let mut owners: HashMap<Address, Vec<u32>> = HashMap::new();
        for (index, receipt) in (0u32..).zip(&group.receipts) {
            owners.entry(receipt.owner).or_default().push(index);
        }
        Self {
            group,
            counterparties,
            owners,
        }
    }

    /// What `address` may be told of this group: its **own** receipts (each with its path
    /// and the group signature) and their counterparties, never another account's.
    pub fn receipts_for(
        &self,
        address: Address,
    ) -> impl Iterator<Item = (SignedReceipt, Option<Address>)> + '_ {
        self.owners
            .get(&address)
            .into_iter()
            .flatten()
            .filter_map(move |&index| {
                let counterparty = self.counterparties.get(index as usize).copied().flatten();
                self.group.receipt(index).map(|r| (r, counterparty))
            })
    }
}

/// Handle to the running sequencer. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sequencer {
    intake: mpsc::Sender<(Submission, Reply)>,
    state: Arc<RwLock<State>>,
    store: Arc<Store>,
    events: broadcast::Sender<Arc<Event>>,
    batch_events: broadcast::Sender<BatchNotification>,
    counters: Arc<Counters>,
    settler: Arc<SettlerMetrics>,
    watcher: Arc<WatcherMetrics>,
    receipt_signer: Address,
    writer: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    stored: watch::Receiver<Stored>,
    opened: Opened,
}

/// The last batch in the store, and why the sequencer stopped, once it did.
type Stored = (u64, Option<String>);

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
    /// `receipt_key` signs every group's receipts.
    pub fn open(config: SequencerConfig, receipt_key: PrivateKeySigner) -> Result<Self, OpenError> {
        let receipt_key = Arc::new(receipt_key);
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
        let (state, opened) = match replay(&journal, &store, &config, &receipt_key) {
            Ok(done) => done,
            Err(ReplayFailure::Fatal(e)) => return Err(e),
            Err(ReplayFailure::Inconsistent(reason)) => {
                warn!(target: "sequencer", %reason, "store disagrees with the journal; rebuilding it from the journal");
                store.clear()?;
                store.set_deployment(configured)?;
                match replay(&journal, &store, &config, &receipt_key) {
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
            receipt_key: receipt_key.clone(),
            separator: configured,
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
            receipt_signer: receipt_key.address(),
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
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// The address whose key signs the receipt groups.
    pub fn receipt_signer(&self) -> Address {
        self.receipt_signer
    }

    /// The sender's receipt of an accepted transaction, from the store.
    pub fn receipt(&self, hash: &TxHash) -> Result<Option<Receipt>, StoreError> {
        Ok(self.store.receipt(hash)?.map(|(receipt, _)| receipt))
    }

    /// The sender's signed receipt of an accepted transaction, with its path in its group.
    pub fn signed_receipt(&self, hash: &TxHash) -> Result<Option<SignedReceipt>, SubmitError> {
        self.store
            .signed_receipt(hash)
            .map_err(|e| SubmitError::Stopped(format!("store: {e}")))
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
        self.submit(Submission::Transfer(tx))
            .await?
            .receipt
            .ok_or_else(|| SubmitError::Stopped("no receipt".into()))
    }

    /// Submits a withdrawal whose signature the caller verified (idempotent like transfers).
    pub async fn submit_withdrawal(
        &self,
        tx: Signed<Withdrawal>,
    ) -> Result<SignedReceipt, SubmitError> {
        self.submit(Submission::Withdrawal(tx))
            .await?
            .receipt
            .ok_or_else(|| SubmitError::Stopped("no receipt".into()))
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

    /// Receives every batch status change from now on (sealed, committed, finalized).
    pub fn subscribe_batches(&self) -> broadcast::Receiver<BatchNotification> {
        self.batch_events.subscribe()
    }
}
