//! The single writer: the applier and completer stages that apply submissions to the
//! state, journal them, wait for the fsync, index them in the store and only then answer
//! and publish.

use std::{
    collections::HashMap,
    sync::{atomic::Ordering, Arc, Mutex, RwLock},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use alloy::primitives::{Address, Signature};
use stablelane::{
    rpc::{BatchNotification, BatchStatus},
    Receipt, SequenceNumber, Signed, Transfer, TxHash, Withdrawal,
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
    store::{Checkpoint, Store, StoreError, StoreUpdate},
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
    pub(crate) receipt: Option<Receipt>,
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
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) batch_events: broadcast::Sender<BatchNotification>,
    pub(crate) counters: Arc<Counters>,
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
    /// A seal's batch, coming from the tree worker.
    seal: Option<SealResult>,
}

/// A group on its way from the applier to the completer.
pub(crate) struct Committing {
    pending: Vec<Pending>,
    /// Repeats of transactions still in flight: answered with the original receipt once
    /// this group (and so every earlier one) is durable.
    followers: Vec<(Reply, Receipt)>,
    /// The store update of this group, with slots as they were right after it.
    update: StoreUpdate,
}

/// What the applier and the completer share.
pub(crate) struct Shared {
    /// Receipts applied but not yet in the store (for idempotent repeats).
    pub(crate) in_flight: Mutex<HashMap<TxHash, Receipt>>,
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
pub(crate) async fn complete(
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
    InFlight(Receipt),
    /// Accepted and indexed.
    Stored(Receipt),
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
