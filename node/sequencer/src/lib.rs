//! Stablelane's sequencer: the single writer of the ledger.
//!
//! Transactions reach it already signature-checked (the RPC layer verifies signatures in
//! parallel before). The writer task takes them from a bounded intake queue in groups,
//! applies each to the [`State`] (ledger, leaves, receipts), appends the accepted ones to the
//! journal, waits for the group's `fdatasync` and only then answers: an acknowledged
//! transaction is durable. On start-up [`Sequencer::open`] replays the journal to rebuild the
//! state and checks per-token supply, refusing to start when it does not verify.
//!
//! Not here: JSON-RPC, the chain watcher and settler, sled indexes (the receipts index lives
//! in memory and is rebuilt from the journal).

pub mod record;
pub mod state;

use std::{
    path::PathBuf,
    sync::{Arc, RwLock},
    time::{SystemTime, UNIX_EPOCH},
};

use alloy::{
    primitives::{Address, Signature},
    signers::local::PrivateKeySigner,
    sol_types::Eip712Domain,
};
use stablelane::{
    signing::{sign_receipt, SignatureError},
    Receipt, SequenceNumber, Signed, Transfer, TxHash, Withdrawal,
};
use stablelane_ledger::{Deposit, ForcedWithdrawal, LedgerConfig, Rejection};
use stablelane_storage::{Journal, JournalConfig};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

pub use record::JournalRecord;
pub use state::{Applied, ApplyError, State};

/// Settings of a sequencer.
#[derive(Debug, Clone)]
pub struct SequencerConfig {
    /// Directory of the journal.
    pub journal_dir: PathBuf,
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

/// A receipt with the operator's signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedReceipt {
    /// The receipt.
    pub receipt: Receipt,
    /// The operator's EIP-712 signature over it.
    #[serde(with = "stablelane::messages::signature_hex")]
    pub signature: Signature,
}

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
    operator: Arc<PrivateKeySigner>,
    writer: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Sequencer {
    /// Opens the journal, replays it into a fresh state, checks supply, and starts the
    /// writer task on the current tokio runtime.
    pub fn open(config: SequencerConfig, operator: PrivateKeySigner) -> Result<Self, OpenError> {
        let (journal, report) = Journal::open(&config.journal_dir, config.journal.clone())?;
        let mut state = State::new(config.ledger.clone(), config.domain.clone());
        let mut replayed = 0u64;
        for record in journal.replay_from(stablelane_storage::SequenceNumber(1))? {
            let record = record?;
            let seq = record.seq.0;
            let decoded =
                JournalRecord::decode(&record.payload).map_err(|e| OpenError::Replay {
                    seq,
                    reason: e.to_string(),
                })?;
            state
                .apply(&decoded, SequenceNumber(seq))
                .map_err(|e| OpenError::Replay {
                    seq,
                    reason: e.to_string(),
                })?;
            replayed += 1;
        }
        state.ledger().check_supply().map_err(OpenError::Supply)?;
        info!(target: "sequencer", records = replayed, torn_tail = report.torn_tail.is_some(), "journal replayed");

        let (intake, rx) = mpsc::channel(config.intake_queue_max.max(1));
        let state = Arc::new(RwLock::new(state));
        let handle = tokio::spawn(writer(journal, rx, state.clone(), config.group_max.max(1)));
        Ok(Self {
            intake,
            state,
            operator: Arc::new(operator),
            writer: Arc::new(std::sync::Mutex::new(Some(handle))),
        })
    }

    /// Stops accepting, lets the writer finish what it holds and closes the journal. Waits
    /// until every other clone of this handle is dropped too.
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

    /// The state root, bringing the tree up to date.
    pub fn root(&self) -> Result<alloy::primitives::B256, ApplyError> {
        let mut guard = match self.state.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard.root()
    }

    /// The operator's signed receipt for an accepted transaction.
    pub fn signed_receipt(&self, hash: &TxHash) -> Option<SignedReceipt> {
        let receipt = self.read(|s| s.receipt(hash).cloned())?;
        self.sign(receipt).ok()
    }

    fn sign(&self, receipt: Receipt) -> Result<SignedReceipt, SubmitError> {
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
                mpsc::error::TrySendError::Full(_) => SubmitError::Busy,
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

/// The single writer: apply a group, journal it, wait for one fsync, answer.
async fn writer(
    journal: Journal,
    mut rx: mpsc::Receiver<(Submission, Reply)>,
    state: Arc<RwLock<State>>,
    group_max: usize,
) {
    let mut failed: Option<String> = None;
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < group_max {
            match rx.try_recv() {
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
        let mut pending = Vec::with_capacity(group.len());
        {
            let mut st = match state.write() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            let now = now_s();
            for (submission, reply) in group {
                if failed.is_some() {
                    let _ = reply.send(Err(SubmitError::Stopped(
                        failed.clone().unwrap_or_default(),
                    )));
                    continue;
                }
                // Idempotency: the same signed message again returns the original receipt.
                let known = match &submission {
                    Submission::Transfer(tx) => st
                        .receipt(&TxHash(stablelane::Message::signing_hash(
                            &tx.message,
                            st.domain(),
                        )))
                        .cloned(),
                    Submission::Withdrawal(tx) => st
                        .receipt(&TxHash(stablelane::Message::signing_hash(
                            &tx.message,
                            st.domain(),
                        )))
                        .cloned(),
                    _ => None,
                };
                if let Some(receipt) = known {
                    let _ = reply.send(Ok(Some(receipt)));
                    continue;
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
                match st.apply(&record, SequenceNumber(seq)) {
                    Err(ApplyError::Rejected(rejection)) => {
                        let _ = reply.send(Err(SubmitError::Rejected(rejection)));
                    }
                    Err(other) => {
                        let _ = reply.send(Err(SubmitError::Stopped(other.to_string())));
                    }
                    Ok(applied) => match journal.submit(record.encode()) {
                        Ok(ticket) if ticket.seq().0 == seq => {
                            pending.push((ticket, reply, applied.receipt));
                        }
                        Ok(ticket) => {
                            // The state already holds the record under another number: stop,
                            // a restart rebuilds the state from the journal.
                            let reason = format!("journal sequence {} != {seq}", ticket.seq().0);
                            warn!(target: "sequencer", %reason, "sequencer stopping");
                            failed = Some(reason.clone());
                            let _ = reply.send(Err(SubmitError::Stopped(reason)));
                        }
                        Err(e) => {
                            // Applied in memory but not journaled: never acknowledge, stop
                            // accepting; a restart replays the durable journal.
                            let reason = format!("journal append failed: {e}");
                            warn!(target: "sequencer", %reason, "sequencer stopping");
                            failed = Some(reason.clone());
                            let _ = reply.send(Err(SubmitError::Stopped(reason)));
                        }
                    },
                }
            }
        }
        // Answer only once the group is durable.
        for (ticket, reply, receipt) in pending {
            match ticket.await {
                Ok(_) => {
                    let _ = reply.send(Ok(receipt));
                }
                Err(e) => {
                    let reason = format!("journal sync failed: {e}");
                    failed.get_or_insert_with(|| reason.clone());
                    let _ = reply.send(Err(SubmitError::Stopped(reason)));
                }
            }
        }
    }
    if let Err(e) = journal.close() {
        warn!(target: "sequencer", error = %e, "closing journal");
    }
}
