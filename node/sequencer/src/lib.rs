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
//! Not here: JSON-RPC, the chain watcher and the settler.

pub mod record;
pub mod state;
pub mod store;

use std::{
    collections::{BTreeSet, HashMap},
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
    signing::{sign_receipt, SignatureError},
    Receipt, SequenceNumber, Signed, SlotIndex, Transfer, TxHash, Withdrawal,
};
use stablelane_ledger::{Deposit, ForcedWithdrawal, LedgerConfig, Rejection};
use stablelane_storage::{Journal, JournalConfig, JournalMetrics};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{error, info, warn};

pub use record::JournalRecord;
pub use state::{Applied, ApplyError, State};
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
}

/// Something the sequencer accepted, published once it is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The transaction's receipt.
    pub receipt: Receipt,
    /// The other party it concerns (a transfer's recipient).
    pub counterparty: Option<Address>,
}

impl Event {
    /// Whether the event concerns `address` (as sender or recipient).
    pub fn concerns(&self, address: Address) -> bool {
        self.receipt.owner == address || self.counterparty == Some(address)
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
}

#[derive(Debug, Default)]
struct Counters {
    busy: AtomicU64,
    groups: AtomicU64,
    journal: Mutex<JournalMetrics>,
}

/// What the writer is asked to do.
#[derive(Debug)]
enum Submission {
    Transfer(Signed<Transfer>),
    Withdrawal(Signed<Withdrawal>),
    Deposit(Deposit),
    Forced(ForcedWithdrawal),
    RegisterViewingKey(Address, Signature),
}

type Reply = oneshot::Sender<Result<Option<Receipt>, SubmitError>>;

/// Handle to the running sequencer. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sequencer {
    intake: mpsc::Sender<(Submission, Reply)>,
    state: Arc<RwLock<State>>,
    store: Arc<Store>,
    events: broadcast::Sender<Event>,
    counters: Arc<Counters>,
    operator: Arc<PrivateKeySigner>,
    writer: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

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

/// Replays the whole journal into a fresh state, catching `store` up and checking it.
fn replay(
    journal: &Journal,
    store: &Store,
    config: &SequencerConfig,
) -> Result<State, ReplayFailure> {
    let started = Instant::now();
    let journal_last = journal.last_seq().map_or(0, |s| s.0);
    let applied = store.applied_seq()?;
    if applied > journal_last {
        return Err(ReplayFailure::Inconsistent(format!(
            "store covers record {applied}, the journal ends at {journal_last}"
        )));
    }
    let checkpoint = store.checkpoint()?;
    let mut state = State::new(config.ledger.clone(), config.domain.clone());
    let mut update = StoreUpdate::default();
    let mut changed = BTreeSet::new();
    let flush = |state: &State,
                 update: &mut StoreUpdate,
                 changed: &mut BTreeSet<SlotIndex>,
                 applied_seq: u64|
     -> Result<(), StoreError> {
        update.slots = changed
            .iter()
            .filter_map(|i| state.ledger().slot(*i).map(|s| (*i, s.clone())))
            .collect();
        update.applied_seq = applied_seq;
        store.write(update)?;
        *update = StoreUpdate::default();
        changed.clear();
        Ok(())
    };
    for record in journal.replay_from(stablelane_storage::SequenceNumber(1))? {
        let record = record?;
        let seq = record.seq.0;
        let decoded = JournalRecord::decode(&record.payload).map_err(|e| OpenError::Replay {
            seq,
            reason: e.to_string(),
        })?;
        let catch_up = seq > applied;
        let done = state
            .apply(&decoded, SequenceNumber(seq), catch_up)
            .map_err(|e| OpenError::Replay {
                seq,
                reason: e.to_string(),
            })?;
        if catch_up {
            update.receipts.extend(done.receipt);
            changed.extend(done.effects.changed.iter().copied());
            if update.receipts.len() + changed.len() >= CATCH_UP_WRITE_EVERY {
                flush(&state, &mut update, &mut changed, seq)?;
            }
        }
        if let Some(checkpoint) = checkpoint.filter(|c| c.seq.get() == seq) {
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
        }
        if seq % REPLAY_PROGRESS_EVERY == 0 {
            info!(target: "sequencer", seq, of = journal_last, elapsed_ms = started.elapsed().as_millis() as u64, "replaying journal");
        }
    }
    if journal_last > applied {
        flush(&state, &mut update, &mut changed, journal_last)?;
    }
    if let Some(difference) = store.diff_slots(state.ledger())? {
        return Err(ReplayFailure::Inconsistent(difference));
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
        caught_up = journal_last - applied,
        slots = state.ledger().slot_count(),
        %root,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "journal replayed, store verified"
    );
    Ok(state)
}

impl Sequencer {
    /// Opens the journal and the store, replays the journal into a fresh state, checks the
    /// store and supply against it, and starts the writer task on the current tokio runtime.
    pub fn open(config: SequencerConfig, operator: PrivateKeySigner) -> Result<Self, OpenError> {
        let (journal, report) = Journal::open(&config.journal_dir, config.journal.clone())?;
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
        let state = match replay(&journal, &store, &config) {
            Ok(state) => state,
            Err(ReplayFailure::Fatal(e)) => return Err(e),
            Err(ReplayFailure::Inconsistent(reason)) => {
                warn!(target: "sequencer", %reason, "store disagrees with the journal; rebuilding it from the journal");
                store.clear()?;
                store.set_deployment(configured)?;
                match replay(&journal, &store, &config) {
                    Ok(state) => state,
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
        let state = Arc::new(RwLock::new(state));
        let store = Arc::new(store);
        let counters = Arc::new(Counters::default());
        if let Ok(mut m) = counters.journal.lock() {
            *m = journal.metrics();
        }
        let handle = tokio::spawn(writer(Writer {
            journal,
            rx,
            state: state.clone(),
            store: store.clone(),
            events: events.clone(),
            counters: counters.clone(),
            group_max: config.group_max.max(1),
        }));
        Ok(Self {
            intake,
            state,
            store,
            events,
            counters,
            operator: Arc::new(operator),
            writer: Arc::new(Mutex::new(Some(handle))),
        })
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
        let (last_seq, slots) = self.read(|s| (s.last_seq().get(), s.ledger().slot_count()));
        SequencerMetrics {
            queue_depth: self.intake.max_capacity() - self.intake.capacity(),
            queue_capacity: self.intake.max_capacity(),
            busy: self.counters.busy.load(Ordering::Relaxed),
            groups: self.counters.groups.load(Ordering::Relaxed),
            last_seq,
            transactions: self.store.transaction_count(),
            slots,
            journal,
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
        let domain = self.read(|s| s.domain().clone());
        let signature = sign_receipt(&self.operator, &receipt, &domain)
            .map_err(|e: SignatureError| SubmitError::Stopped(e.to_string()))?;
        Ok(SignedReceipt { receipt, signature })
    }

    async fn submit(&self, submission: Submission) -> Result<Option<Receipt>, SubmitError> {
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
    counters: Arc<Counters>,
    group_max: usize,
}

/// One accepted submission waiting for its group's sync.
struct Pending {
    ticket: stablelane_storage::AppendTicket,
    reply: Reply,
    applied: Applied,
}

fn write_state(state: &Arc<RwLock<State>>) -> std::sync::RwLockWriteGuard<'_, State> {
    match state.write() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The single writer: apply a group, journal it, wait for one fsync, index it, answer.
async fn writer(mut w: Writer) {
    let mut failed: Option<String> = None;
    while let Some(first) = w.rx.recv().await {
        let mut group = vec![first];
        while group.len() < w.group_max {
            match w.rx.try_recv() {
                Ok(item) => group.push(item),
                Err(_) => break,
            }
        }
        if let Some(reason) = &failed {
            for (_, reply) in group {
                let _ = reply.send(Err(SubmitError::Stopped(reason.clone())));
            }
            continue;
        }
        let pending = apply_group(&mut w, group, &mut failed);
        // Answer only once the group is durable.
        let mut durable = Vec::with_capacity(pending.len());
        for p in pending {
            match p.ticket.await {
                Ok(_) => durable.push((p.reply, p.applied)),
                Err(e) => {
                    let reason = format!("journal sync failed: {e}");
                    error!(target: "sequencer", %reason, "sequencer stopping");
                    failed.get_or_insert_with(|| reason.clone());
                    let _ = p.reply.send(Err(SubmitError::Stopped(reason)));
                }
            }
        }
        w.counters.groups.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = w.counters.journal.lock() {
            *m = w.journal.metrics();
        }
        if durable.is_empty() {
            continue;
        }
        // Index before answering, so a repeat of an acknowledged transaction finds it.
        let update = {
            let st = match w.state.read() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            let changed: BTreeSet<SlotIndex> = durable
                .iter()
                .flat_map(|(_, a)| a.effects.changed.iter().copied())
                .collect();
            StoreUpdate {
                receipts: durable
                    .iter()
                    .filter_map(|(_, a)| a.receipt.clone())
                    .collect(),
                slots: changed
                    .into_iter()
                    .filter_map(|i| st.ledger().slot(i).map(|s| (i, s.clone())))
                    .collect(),
                applied_seq: st.last_seq().get(),
            }
        };
        if let Err(e) = w.store.write(&update) {
            // The journal has the group: acknowledge it, but stop; a restart catches the
            // store up from the journal.
            let reason = format!("store write failed: {e}");
            error!(target: "sequencer", %reason, "sequencer stopping");
            failed.get_or_insert(reason);
        }
        for (reply, applied) in durable {
            if let Some(receipt) = &applied.receipt {
                // No subscriber is fine.
                let _ = w.events.send(Event {
                    receipt: receipt.clone(),
                    counterparty: applied.counterparty,
                });
            }
            let _ = reply.send(Ok(applied.receipt));
        }
    }
    if failed.is_none() {
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

/// Applies a group under the state lock and submits the accepted records to the journal.
fn apply_group(
    w: &mut Writer,
    group: Vec<(Submission, Reply)>,
    failed: &mut Option<String>,
) -> Vec<Pending> {
    let mut pending = Vec::with_capacity(group.len());
    // Receipts of this group, not yet in the store, for repeats within the group.
    let mut in_group: HashMap<TxHash, Receipt> = HashMap::new();
    let mut st = write_state(&w.state);
    let now = now_s();
    for (submission, reply) in group {
        if let Some(reason) = failed.as_ref() {
            let _ = reply.send(Err(SubmitError::Stopped(reason.clone())));
            continue;
        }
        // Idempotency: the same signed message again returns the original receipt.
        let hash = match &submission {
            Submission::Transfer(tx) => Some(TxHash(stablelane::Message::signing_hash(
                &tx.message,
                st.domain(),
            ))),
            Submission::Withdrawal(tx) => Some(TxHash(stablelane::Message::signing_hash(
                &tx.message,
                st.domain(),
            ))),
            _ => None,
        };
        if let Some(hash) = hash {
            let known = match in_group.get(&hash) {
                Some(r) => Ok(Some(r.clone())),
                None => w.store.receipt(&hash),
            };
            match known {
                Ok(Some(receipt)) => {
                    let _ = reply.send(Ok(Some(receipt)));
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = reply.send(Err(SubmitError::Stopped(format!("store: {e}"))));
                    continue;
                }
            }
        }
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
                JournalRecord::RegisterViewingKey { owner, signature }
            }
        };
        let seq = st.last_seq().get() + 1;
        match st.apply(&record, SequenceNumber(seq), true) {
            Err(ApplyError::Rejected(rejection)) => {
                let _ = reply.send(Err(SubmitError::Rejected(rejection)));
            }
            Err(other) => {
                let _ = reply.send(Err(SubmitError::Stopped(other.to_string())));
            }
            Ok(applied) => match w.journal.submit(record.encode()) {
                Ok(ticket) if ticket.seq().0 == seq => {
                    if let (Some(hash), Some(receipt)) = (applied.tx_hash, &applied.receipt) {
                        in_group.insert(hash, receipt.clone());
                    }
                    pending.push(Pending {
                        ticket,
                        reply,
                        applied,
                    });
                }
                Ok(ticket) => {
                    // The state already holds the record under another number: stop, a
                    // restart rebuilds the state from the journal.
                    let reason = format!("journal sequence {} != {seq}", ticket.seq().0);
                    error!(target: "sequencer", %reason, "sequencer stopping");
                    *failed = Some(reason.clone());
                    let _ = reply.send(Err(SubmitError::Stopped(reason)));
                }
                Err(e) => {
                    // Applied in memory but not journaled: never acknowledge, stop accepting;
                    // a restart replays the durable journal.
                    let reason = format!("journal append failed: {e}");
                    error!(target: "sequencer", %reason, "sequencer stopping");
                    *failed = Some(reason.clone());
                    let _ = reply.send(Err(SubmitError::Stopped(reason)));
                }
            },
        }
    }
    pending
}
