//! Rebuilding the state on start-up: from the newest usable restart snapshot and the
//! journal after it, catching the sled store up and checking it on the way.

use std::time::Instant;

use alloy::signers::local::PrivateKeySigner;
use stablelane::{Receipt, SequenceNumber};
use stablelane_storage::Journal;
use tracing::{info, warn};

use crate::{
    batch::SealedBatch,
    error::OpenError,
    record::JournalRecord,
    seal::SealJob,
    snapshot,
    state::{ApplyError, State},
    store::{Checkpoint, Store, StoreError, StoreUpdate},
    workers::TREE_WORKER_QUEUE,
    writer::GroupSigner,
    Opened, SequencerConfig,
};

/// Records between progress lines while replaying the journal.
pub(crate) const REPLAY_PROGRESS_EVERY: u64 = 1_000_000;

/// Receipts collected before one store write (and one receipt group) while catching up.
pub(crate) const CATCH_UP_WRITE_EVERY: usize = 10_000;

/// A seal job handed out by the replay: its record, whether the store is being caught up
/// there, and the job.
pub(crate) type ReplaySeal = (u64, bool, Box<SealJob>);

/// What the replay's seal thread returns for a [`ReplaySeal`].
pub(crate) type ReplaySealed = (u64, bool, Result<SealedBatch, ApplyError>);

/// Whether the store disagrees with the journal (rebuild it) or the journal is bad (refuse).
pub(crate) enum ReplayFailure {
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
pub(crate) fn replay(
    journal: &Journal,
    store: &Store,
    config: &SequencerConfig,
    receipt_key: &std::sync::Arc<PrivateKeySigner>,
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
    // Records caught up are signed in groups of their own (one per store write): their
    // receipts may have gone out before in other groups, with the same contents.
    let mut receipts: Vec<Receipt> = Vec::new();
    let mut signer = GroupSigner {
        key: receipt_key.clone(),
        separator: config.domain.separator(),
        next: store.last_group_number()? + 1,
    };
    let mut flush = |update: &mut StoreUpdate,
                     receipts: &mut Vec<Receipt>,
                     applied_seq: u64|
     -> Result<(), ReplayFailure> {
        let group = signer
            .sign(std::mem::take(receipts))
            .map_err(|reason| OpenError::Replay {
                seq: applied_seq,
                reason,
            })?;
        update.groups.extend(group);
        update.applied_seq = applied_seq;
        store.write(update)?;
        *update = StoreUpdate::default();
        Ok(())
    };
    // Seals that rebuild their batch hand their job to a second thread, as the live node's
    // tree worker does, so the records after a seal are applied (and their receipts built)
    // while the seal's tree is updated. The store is only written once every job
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
                    receipts.extend(done.receipts);
                    if receipts.len() >= CATCH_UP_WRITE_EVERY {
                        settle(&mut update, &mut in_flight)?;
                        flush(&mut update, &mut receipts, seq)?;
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
        flush(&mut update, &mut receipts, journal_last)?;
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
pub(crate) fn restore(
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
pub(crate) fn load_snapshot(
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
