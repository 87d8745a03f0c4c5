//! The single writer: the applier and completer stages that apply submissions to the
//! state, journal them, wait for the fsync, index them in the store and only then answer
//! and publish.

use std::{
    collections::HashSet,
    sync::{atomic::Ordering, Arc, Mutex, RwLock},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use alloy::{
    primitives::{Address, Signature, B256},
    signers::local::PrivateKeySigner,
};
use stablelane::{
    rpc::{BatchNotification, BatchStatus},
    Receipt, SequenceNumber, Signed, SignedGroup, SignedReceipt, Transfer, TxHash, Withdrawal,
};
use stablelane_ledger::{Deposit, DepositRefusal, ForcedWithdrawal, Rejection};
use stablelane_storage::Journal;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{error, info, warn};

use crate::{
    batch::{BatchLimits, SealedBatch},
    error::SubmitError,
    metrics::Counters,
    record::JournalRecord,
    state::{Applied, ApplyError, State},
    store::{Checkpoint, NumberedGroup, Store, StoreError, StoreUpdate},
    workers::{SealJobs, SealResult},
    Event, Stored,
};

/// What the writer is asked to do.
#[derive(Debug)]
pub(crate) enum Submission {
    Transfer(Signed<Transfer>),
    Withdrawal(Signed<Withdrawal>),
    Deposit(Deposit),
    Forced(ForcedWithdrawal),
    RegisterViewingKey(Address, Signature),
    Seal,
}

/// What the writer did with a submission.
#[derive(Debug, Default)]
pub(crate) struct Done {
    pub(crate) receipt: Option<SignedReceipt>,
    pub(crate) sealed: Option<u64>,
}

pub(crate) type Reply = oneshot::Sender<Result<Done, SubmitError>>;

pub(crate) fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Everything the writer task owns or shares.
pub(crate) struct Writer {
    pub(crate) journal: Journal,
    pub(crate) rx: mpsc::Receiver<(Submission, Reply)>,
    pub(crate) state: Arc<RwLock<State>>,
    pub(crate) store: Arc<Store>,
    pub(crate) events: broadcast::Sender<Arc<Event>>,
    pub(crate) batch_events: broadcast::Sender<BatchNotification>,
    pub(crate) counters: Arc<Counters>,
    /// Signs each group's receipts.
    pub(crate) receipt_key: Arc<PrivateKeySigner>,
    /// The deployment's EIP-712 domain separator.
    pub(crate) separator: B256,
    pub(crate) group_max: usize,
    pub(crate) limits: BatchLimits,
    pub(crate) seal_jobs: SealJobs,
    pub(crate) stored: watch::Sender<Stored>,
}

/// Groups applied and submitted to the journal but not yet answered, at most: the applier
/// runs this far ahead of the journal's fsync (pipelining), then waits.
pub(crate) const PIPELINE_DEPTH: usize = 4;

/// One accepted record waiting for its group's sync (a seal the writer decided on its own
/// has no one to answer).
pub(crate) struct Pending {
    ticket: stablelane_storage::AppendTicket,
    reply: Option<Reply>,
    applied: Applied,
    /// Where its first receipt (a signed transaction's sender receipt) is in the group.
    receipt_at: Option<u32>,
    /// A seal's batch, coming from the tree worker.
    seal: Option<SealResult>,
}

/// A group on its way from the applier to the completer.
pub(crate) struct Committing {
    pending: Vec<Pending>,
    /// Repeats of transactions still in flight: answered with the original receipt once
    /// this group (and so every earlier one) is durable and stored.
    followers: Vec<(Reply, TxHash)>,
    /// The group's receipts, in journal order, and each one's counterparty.
    receipts: Vec<Receipt>,
    counterparties: Vec<Option<Address>>,
    /// The store update of this group (its receipt group is added once signed).
    update: StoreUpdate,
}

/// What the applier and the completer share.
pub(crate) struct Shared {
    /// Transactions applied but not yet in the store (for idempotent repeats).
    pub(crate) in_flight: Mutex<HashSet<TxHash>>,
    /// Why the sequencer stopped, once it did.
    pub(crate) failed: Mutex<Option<String>>,
    /// The last stored batch and the failure, for [`Sequencer::wait_for_batch`].
    pub(crate) stored: watch::Sender<Stored>,
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

pub(crate) fn write_state(state: &Arc<RwLock<State>>) -> std::sync::RwLockWriteGuard<'_, State> {
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
pub(crate) async fn writer(mut w: Writer) {
    let shared = Arc::new(Shared {
        in_flight: Mutex::new(HashSet::new()),
        failed: Mutex::new(None),
        stored: w.stored.clone(),
    });
    let (to_completer, from_applier) = mpsc::channel::<Committing>(PIPELINE_DEPTH);
    let signer = GroupSigner {
        key: w.receipt_key.clone(),
        separator: w.separator,
        next: match w.store.last_group_number() {
            Ok(last) => last + 1,
            Err(e) => {
                shared.fail(format!("store: {e}"));
                1
            }
        },
    };
    let completer = tokio::spawn(complete(
        from_applier,
        w.store.clone(),
        w.events.clone(),
        w.batch_events.clone(),
        w.counters.clone(),
        shared.clone(),
        signer,
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

/// Signs the completer's receipt groups and numbers them.
pub(crate) struct GroupSigner {
    pub(crate) key: Arc<PrivateKeySigner>,
    pub(crate) separator: B256,
    /// The next group's number.
    pub(crate) next: u64,
}

impl GroupSigner {
    /// Signs `receipts` as the next group (none: no group).
    pub(crate) fn sign(&mut self, receipts: Vec<Receipt>) -> Result<Option<NumberedGroup>, String> {
        if receipts.is_empty() {
            return Ok(None);
        }
        let signed = SignedGroup::sign(receipts, &self.key, &self.separator)
            .map_err(|e| format!("signing receipts: {e}"))?;
        let number = self.next;
        self.next += 1;
        Ok(Some(NumberedGroup {
            number,
            signed: Arc::new(signed),
        }))
    }
}

/// The completer: per group, in order, sign its receipts (while the journal syncs), wait
/// for durability, index, answer, publish.
pub(crate) async fn complete(
    mut rx: mpsc::Receiver<Committing>,
    store: Arc<Store>,
    events: broadcast::Sender<Arc<Event>>,
    batch_events: broadcast::Sender<BatchNotification>,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
    mut signer: GroupSigner,
) {
    let (to_finisher, from_completer) = mpsc::unbounded_channel();
    let finisher = tokio::spawn(finish_seals(
        from_completer,
        store.clone(),
        batch_events.clone(),
        shared.clone(),
    ));
    while let Some(mut group) = rx.recv().await {
        // One signature for the whole group, made before its fsync ends (nothing signed is
        // handed out before it is durable).
        // A group whose receipts cannot be signed cannot be answered: as if lost.
        let (signed, mut lost) = match signer.sign(std::mem::take(&mut group.receipts)) {
            Ok(signed) => (signed, false),
            Err(reason) => {
                shared.fail(reason);
                (None, true)
            }
        };
        let mut durable = Vec::with_capacity(group.pending.len());
        for p in group.pending {
            match p.ticket.await {
                Ok(_) => durable.push((p.reply, p.applied, p.seal, p.receipt_at)),
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
            for (reply, _, _, _) in durable {
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
        let mut update = group.update;
        update.groups.extend(signed.clone());
        if let Err(e) = store.write(&update) {
            // The journal has the group: acknowledge it, but stop; a restart catches the
            // store up from the journal.
            shared.fail(format!("store write failed: {e}"));
        }
        if let Ok(mut in_flight) = shared.in_flight.lock() {
            for (_, applied, _, _) in &durable {
                if let Some(hash) = &applied.tx_hash {
                    in_flight.remove(hash);
                }
            }
        }
        for batch in &update.batches {
            announce(batch, &batch_events, None);
        }
        if let Some(signed) = &signed {
            // No subscriber is fine.
            let _ = events.send(Arc::new(Event::new(
                signed.signed.clone(),
                group.counterparties,
            )));
        }
        for (reply, applied, seal, receipt_at) in durable {
            if let Some(seal) = seal {
                // The seal record is durable; its batch is stored, announced and answered
                // once the tree worker has built it, without holding up later groups.
                if to_finisher.send((seal, reply)).is_err() {
                    shared.fail("the seal finisher ended".into());
                }
                continue;
            }
            if let Some(reply) = reply {
                let receipt = receipt_at
                    .zip(signed.as_ref())
                    .and_then(|(index, group)| group.signed.receipt(index));
                let _ = reply.send(Ok(Done {
                    sealed: applied.sealed.as_ref().map(|b| b.number),
                    receipt,
                }));
            }
        }
        for (reply, hash) in group.followers {
            let answer = match store.signed_receipt(&hash) {
                Ok(Some(receipt)) => Ok(Done {
                    receipt: Some(receipt),
                    sealed: None,
                }),
                Ok(None) => Err(SubmitError::Stopped(format!(
                    "transaction {hash} was accepted but is not in the store"
                ))),
                Err(e) => Err(SubmitError::Stopped(format!("store: {e}"))),
            };
            let _ = reply.send(answer);
        }
    }
    drop(to_finisher);
    let _ = finisher.await;
}

/// Logs and publishes a sealed batch.
pub(crate) fn announce(
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
pub(crate) async fn finish_seals(
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
pub(crate) fn apply_group(
    w: &mut Writer,
    group: Vec<(Submission, Reply)>,
    shared: &Shared,
) -> Committing {
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
                    Some(Repeat::InFlight(hash)) => followers.push((reply, hash)),
                    Some(Repeat::Stored(receipt)) => {
                        let _ = reply.send(Ok(Done {
                            receipt: Some(*receipt),
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
        if let Some(hash) = pending.last().and_then(|p| p.applied.tx_hash) {
            if let Ok(mut in_flight) = shared.in_flight.lock() {
                in_flight.insert(hash);
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
    // The group's receipts in journal order, each with its counterparty (a transfer's
    // sender receipt names the payee, its recipient receipt the payer).
    let mut receipts = Vec::with_capacity(pending.len() * 2);
    let mut counterparties = Vec::with_capacity(pending.len() * 2);
    for p in &mut pending {
        let first = std::mem::take(&mut p.applied.receipts);
        if first.is_empty() {
            continue;
        }
        p.receipt_at = u32::try_from(receipts.len()).ok();
        let payer = first[0].owner;
        for (i, receipt) in first.into_iter().enumerate() {
            counterparties.push(if i == 0 {
                p.applied.counterparty
            } else {
                Some(payer)
            });
            receipts.push(receipt);
        }
    }
    // The store update as of right after this group.
    let update = StoreUpdate {
        groups: Vec::new(),
        batches: pending
            .iter()
            .filter_map(|p| p.applied.sealed.as_deref().cloned())
            .collect(),
        applied_seq: st.last_seq().get(),
    };
    Committing {
        pending,
        followers,
        receipts,
        counterparties,
        update,
    }
}

/// Answers `reply`, if anyone waits for it, with `e`.
pub(crate) fn refuse(reply: Option<Reply>, e: SubmitError) {
    if let Some(reply) = reply {
        let _ = reply.send(Err(e));
    }
}

/// Stops the sequencer for `reason`: logs it, records it in `failed` and answers `reply`
/// with it. Returns `false` (nothing accepted).
pub(crate) fn stop(failed: &mut Option<String>, reply: Option<Reply>, reason: String) -> bool {
    error!(target: "sequencer", %reason, "sequencer stopping");
    *failed = Some(reason.clone());
    refuse(reply, SubmitError::Stopped(reason));
    false
}

/// Applies `record`, hands a seal's remaining work to the tree worker, and submits the
/// record to the journal; whether it was accepted. Answers `reply` at once only when
/// refused.
pub(crate) fn journal_record(
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
                receipt_at: None,
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
pub(crate) enum Journaled {
    /// Applied and submitted to the journal; its reply waits in `pending`.
    Accepted,
    /// Not accepted, and the reply (if any) answered.
    Refused,
    /// The ledger refused it; the reply is not answered yet (it may be a repeat).
    Rejected(Reply, Box<JournalRecord>, Rejection),
}

/// Whether a transaction the ledger refused was accepted before.
pub(crate) enum Repeat {
    /// Accepted in a group not yet durable: answer once it is.
    InFlight(TxHash),
    /// Accepted and indexed.
    Stored(Box<SignedReceipt>),
    /// The store could not be read.
    StoreFailed(StoreError),
    /// Never accepted: the refusal stands.
    New,
}

pub(crate) fn repeat_of(hash: &TxHash, shared: &Shared, store: &Store) -> Repeat {
    let in_flight = shared
        .in_flight
        .lock()
        .ok()
        .is_some_and(|m| m.contains(hash));
    if in_flight {
        return Repeat::InFlight(*hash);
    }
    match store.signed_receipt(hash) {
        Ok(Some(receipt)) => Repeat::Stored(Box::new(receipt)),
        Ok(None) => Repeat::New,
        Err(e) => Repeat::StoreFailed(e),
    }
}
