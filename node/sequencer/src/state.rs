//! The node's state: the ledger and the Poseidon state tree over its slots' leaf hashes, as a
//! deterministic function of the journal's records.
//!
//! Leaf hashes are computed lazily: applying a record marks the slots it changed, and the
//! tree catches up (each changed leaf hashed once, in parallel) when the root is asked for;
//! the writer never hashes a leaf. Receipts are not kept here; the sequencer's
//! [`Store`](crate::store::Store) indexes them.

use std::{collections::BTreeSet, sync::Arc, time::Instant};

use alloy::{
    primitives::{Address, B256},
    sol_types::Eip712Domain,
};
use rayon::prelude::*;
use stablelane::{
    rpc::BatchWithdrawal, signing::viewing_key_from_signature, Message, Receipt, ReceiptKind,
    SequenceNumber, SlotIndex, TxHash,
};
use stablelane_circuits::{
    field::{fr_from_be_bytes, fr_to_be_bytes},
    leaf::leaf_hash,
    tree::{SlotIndex as TreeIndex, StateTree},
    Fr,
};
use stablelane_contracts::{
    batch_body::NewSlot,
    batch_data::{deposit_hash, forced_hash},
};
use stablelane_ledger::{Effects, Ledger, LedgerConfig, Rejection};

use crate::{
    batch::{BatchLimits, SealedBatch},
    record::JournalRecord,
    seal::{ChangedSlot, NewLeaf, SealJob, SharedTree, SnapshotParts},
    sealed::{slot_secrets, SealedStates},
    snapshot::Snapshot,
};

/// Why a record could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The ledger refused it.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// A salt or leaf was not a field element, or the tree refused an index.
    #[error("state tree: {0}")]
    Tree(String),
    /// A seal record out of order, or of an empty batch.
    #[error("batch: {0}")]
    Batch(String),
}

/// The result of applying one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// What the ledger changed.
    pub effects: Effects,
    /// The transaction hash of a signed transaction (transfer or withdrawal).
    pub tx_hash: Option<TxHash>,
    /// The receipts of the slot states it produced, when asked for: a transfer's sender and
    /// recipient, a withdrawal's sender, a credited deposit's recipient, a served forced
    /// request's owner (see [`stablelane::receipts`]).
    pub receipts: Vec<Receipt>,
    /// The other party a transaction concerns: a transfer's recipient.
    pub counterparty: Option<Address>,
    /// The batch a seal record sealed (seals run at once unless handed out, see
    /// [`State::hand_out_seals`]).
    pub sealed: Option<Box<SealedBatch>>,
    /// The rest of a seal record's work, when seals are handed out.
    pub seal_job: Option<Box<SealJob>>,
}

/// The leaf hash of `slot`: Poseidon(owner, token, balance, nonce, salt).
fn leaf_of(slot: &stablelane_ledger::Slot) -> Result<Fr, ApplyError> {
    let salt = fr_from_be_bytes(&slot.salt.0).map_err(|e| ApplyError::Tree(e.to_string()))?;
    Ok(leaf_hash(
        slot.owner.0 .0,
        slot.token.0 .0,
        slot.balance.base_units(),
        slot.nonce.get(),
        salt,
    ))
}

/// The batch being filled: everything applied since the last seal.
#[derive(Debug, Clone)]
struct OpenBatch {
    first_seq: u64,
    first_slot: u32,
    changed: BTreeSet<u32>,
    withdrawals: Vec<BatchWithdrawal>,
    transactions: u64,
    records: u64,
    deposits: usize,
    /// Queue indices of the deposits consumed as refused, in queue order.
    refused_deposits: Vec<u64>,
    forced: bool,
    since: Option<Instant>,
}

impl OpenBatch {
    fn new(first_seq: u64, first_slot: u32) -> Self {
        Self {
            first_seq,
            first_slot,
            changed: BTreeSet::new(),
            withdrawals: Vec::new(),
            transactions: 0,
            records: 0,
            deposits: 0,
            refused_deposits: Vec::new(),
            forced: false,
            since: None,
        }
    }
}

/// A summary of the open batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenBatchInfo {
    /// The number it will get.
    pub number: u64,
    /// Records in it.
    pub records: u64,
    /// Leaves changed so far.
    pub changed_slots: usize,
    /// Withdrawals waiting.
    pub withdrawals: usize,
    /// Whether it serves a forced-withdrawal request (the settler seals those at once).
    pub forced: bool,
    /// When its first record was applied (in this process).
    pub since: Option<Instant>,
}

/// Ledger + tree.
#[derive(Debug)]
pub struct State {
    ledger: Ledger,
    domain: Eip712Domain,
    /// `domain.separator()`, computed once.
    separator: B256,
    /// The tree, the last sealed root and the kept sealed states: brought up to date by seal
    /// jobs, in order (see [`seal`](crate::seal)).
    tree: Arc<SharedTree>,
    /// Seal records return a [`SealJob`] for someone else to run instead of running it.
    hand_out_seals: bool,
    /// Slots changed since the tree was last brought up to date.
    pending: BTreeSet<u32>,
    last_seq: SequenceNumber,
    open: OpenBatch,
    last_batch: u64,
    deposits_hash: B256,
    forced_hash: B256,
    /// Records between snapshots (0: none are taken).
    snapshot_every: u64,
    /// The first seal record at or after this one also takes a snapshot.
    next_snapshot_at: u64,
    /// A resident buffer for the next snapshot's copy of the slots (see [`SpareSlots`]).
    spare_slots: SpareSlots,
}

/// A buffer the writer copies the slots into when it takes a snapshot, kept resident
/// between snapshots: the snapshot writer prepares it ahead (touching every page, off the
/// writer) and hands each snapshot's buffer back once the file is written. Without it the
/// copy allocates afresh, and faulting in ~100 MB of pages for a million slots held the
/// writer 0.3–0.4 s on a process's first snapshot.
pub type SpareSlots = Arc<std::sync::Mutex<Vec<stablelane_ledger::Slot>>>;

impl State {
    /// An empty state.
    pub fn new(config: LedgerConfig, domain: Eip712Domain) -> Self {
        Self {
            ledger: Ledger::new(config),
            separator: domain.separator(),
            domain,
            tree: Arc::new(SharedTree::new(None)),
            hand_out_seals: false,
            pending: BTreeSet::new(),
            last_seq: SequenceNumber(0),
            open: OpenBatch::new(1, 0),
            last_batch: 0,
            deposits_hash: B256::ZERO,
            forced_hash: B256::ZERO,
            snapshot_every: 0,
            next_snapshot_at: 0,
            spare_slots: SpareSlots::default(),
        }
    }

    /// The state a snapshot was taken of (as of its seal record), keeping the states of the
    /// last `history` sealed batches from the snapshot's batch on.
    ///
    /// # Errors
    ///
    /// [`ApplyError::Batch`] if the ledger image does not make a ledger (duplicate slots, a
    /// supply that does not add up) or the tree does not fit the slots.
    pub fn from_snapshot(
        config: LedgerConfig,
        domain: Eip712Domain,
        history: usize,
        snapshot: Snapshot,
    ) -> Result<Self, ApplyError> {
        let ledger = Ledger::from_image(config, snapshot.ledger)
            .map_err(|e| ApplyError::Batch(format!("snapshot ledger: {e}")))?;
        if snapshot.tree.len() > u64::from(ledger.slot_count()) {
            return Err(ApplyError::Batch(format!(
                "snapshot tree has {} leaves for {} slots",
                snapshot.tree.len(),
                ledger.slot_count()
            )));
        }
        let sealed = if history > 0 {
            let secrets = (0..ledger.slot_count())
                .filter_map(|i| ledger.slot(SlotIndex(i)))
                .map(|slot| slot_secrets(slot).map_err(ApplyError::Tree))
                .collect::<Result<Vec<_>, ApplyError>>()?;
            let mut sealed = SealedStates::new(history);
            sealed.restart_from(snapshot.batch, &snapshot.tree, secrets);
            Some(sealed)
        } else {
            None
        };
        let slot_count = ledger.slot_count();
        Ok(Self {
            ledger,
            separator: domain.separator(),
            domain,
            tree: Arc::new(SharedTree::restored(
                snapshot.tree,
                sealed,
                snapshot.root,
                snapshot.batch,
            )),
            hand_out_seals: false,
            pending: BTreeSet::new(),
            last_seq: SequenceNumber(snapshot.seq),
            open: OpenBatch::new(snapshot.seq + 1, slot_count),
            last_batch: snapshot.batch,
            deposits_hash: snapshot.deposits_hash,
            forced_hash: snapshot.forced_hash,
            snapshot_every: 0,
            next_snapshot_at: 0,
            spare_slots: SpareSlots::default(),
        })
    }

    /// From now on, the first seal record after `every` records since record `since` (the
    /// last snapshot's, 0 if none) hands its job a copy of the ledger, for the tree worker to
    /// complete into a [`Snapshot`]; and so on every `every` records. 0 takes none. Only
    /// seals handed out (see [`hand_out_seals`](Self::hand_out_seals)) take snapshots.
    pub fn take_snapshots(&mut self, every: u64, since: u64) {
        self.snapshot_every = every;
        self.next_snapshot_at = since.saturating_add(every);
    }

    /// The buffer snapshots copy the slots into (shared with the snapshot writer).
    pub fn spare_slots(&self) -> &SpareSlots {
        &self.spare_slots
    }

    /// Also keeps the states of the last `history` sealed batches (0: none), so that slots
    /// can be opened as of a committed root (in [`tree`](Self::tree)). Call before
    /// applying any record.
    pub fn with_sealed_history(mut self, history: usize) -> Self {
        self.tree = Arc::new(SharedTree::new(
            (history > 0).then(|| SealedStates::new(history)),
        ));
        self
    }

    /// From now on, a seal record closes the open batch and returns the rest of the work as
    /// [`Applied::seal_job`], to be run in order on [`tree`](Self::tree) (by the sequencer's
    /// tree worker), instead of running it at once.
    pub fn hand_out_seals(&mut self) {
        self.hand_out_seals = true;
    }

    /// The tree side seal jobs run against (the kept sealed states are in it).
    pub fn tree(&self) -> &Arc<SharedTree> {
        &self.tree
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The EIP-712 domain transactions are signed in.
    pub fn domain(&self) -> &Eip712Domain {
        &self.domain
    }

    /// The domain's separator.
    pub fn separator(&self) -> &B256 {
        &self.separator
    }

    /// Sequence number of the last applied record.
    pub fn last_seq(&self) -> SequenceNumber {
        self.last_seq
    }

    /// Withdrawals of the open batch (accepted, not yet in a sealed batch), in order.
    pub fn pay_outs(&self) -> &[BatchWithdrawal] {
        &self.open.withdrawals
    }

    /// The rolling hash of the deposits the ledger consumed (the contract's
    /// `depositHashAt(deposits_consumed)` on the same chain).
    pub fn deposits_hash(&self) -> B256 {
        self.deposits_hash
    }

    /// The rolling hash of the forced-withdrawal requests the ledger consumed (the
    /// contract's `forcedHashAt(forced_consumed)` on the same chain).
    pub fn forced_hash(&self) -> B256 {
        self.forced_hash
    }

    /// The number of the last sealed batch (0 before any); its root may still be being
    /// computed (see [`seal`](crate::seal)).
    pub fn last_batch(&self) -> u64 {
        self.last_batch
    }

    /// A summary of the open batch.
    pub fn open_batch(&self) -> OpenBatchInfo {
        OpenBatchInfo {
            number: self.last_batch + 1,
            records: self.open.records,
            changed_slots: self.open.changed.len(),
            withdrawals: self.open.withdrawals.len(),
            forced: self.open.forced,
            since: self.open.since,
        }
    }

    /// Whether the open batch reached one of `limits` (the next record could exceed it).
    pub fn open_batch_full(&self, limits: &BatchLimits) -> bool {
        self.open.changed.len() >= limits.max_changed_slots
            || self.open.withdrawals.len() >= limits.max_withdrawals
            || self.open.deposits >= limits.max_deposits
            || self.open_batch_data_bytes() + crate::batch::RECORD_DATA_HEADROOM
                > limits.max_data_bytes
    }

    /// Bytes of batch data the open batch would have if sealed now.
    pub fn open_batch_data_bytes(&self) -> usize {
        let new_slots = self
            .ledger
            .slot_count()
            .saturating_sub(self.open.first_slot) as usize;
        stablelane_contracts::batch_data::CONTRACT_SECTIONS_HEADER_BYTES
            + self.open.withdrawals.len() * stablelane_contracts::batch_data::WITHDRAWAL_BYTES
            + self.open.refused_deposits.len() * stablelane_contracts::batch_data::REFUSED_BYTES
            + 8
            + new_slots * stablelane_contracts::batch_body::NEW_SLOT_BYTES
            + 4
            + self.open.changed.len() * stablelane_contracts::batch_body::LEAF_UPDATE_BYTES
    }

    /// The current leaf hash of a slot, hashed now (the tree may be behind while a seal
    /// job runs).
    pub fn leaf(&self, slot: SlotIndex) -> Option<B256> {
        if slot.get() >= self.ledger.slot_count() {
            return None;
        }
        let leaf = self.slot_leaf(slot).ok()?;
        Some(B256::from(fr_to_be_bytes(&leaf)))
    }

    /// Heap bytes held by the tree (for memory reports).
    pub fn tree_heap_bytes(&self) -> usize {
        self.tree.now().tree.heap_bytes()
    }

    /// The state root, bringing the tree up to date with every applied record: each changed
    /// leaf is hashed once (in parallel) and each node above the changes rehashed once.
    pub fn root(&mut self) -> Result<B256, ApplyError> {
        let shared = self.tree.clone();
        let mut side = shared.wait_for(self.last_batch)?;
        // In slices, so that catching up after a replay (every slot pending) holds a bounded
        // amount of intermediate hashes; the nodes above a slice are rehashed once per slice,
        // a few dozen per slice.
        const SLICE: usize = 1 << 16;
        while !self.pending.is_empty() {
            let pending: Vec<u32> = if self.pending.len() <= SLICE {
                std::mem::take(&mut self.pending).into_iter().collect()
            } else {
                let split = self.pending.iter().nth(SLICE).copied().unwrap_or(u32::MAX);
                let rest = self.pending.split_off(&split);
                std::mem::replace(&mut self.pending, rest)
                    .into_iter()
                    .collect()
            };
            let changes = pending
                .into_par_iter()
                .map(|i| Ok((TreeIndex::new(i), self.slot_leaf(SlotIndex(i))?)))
                .collect::<Result<Vec<_>, ApplyError>>()?;
            side.tree
                .update_batch(&changes)
                .map_err(|e| ApplyError::Tree(e.to_string()))?;
        }
        Ok(B256::from(fr_to_be_bytes(&side.tree.root())))
    }

    /// Applies `record`, journaled (or about to be) at `seq`. A refused record changes
    /// nothing. With `with_receipt`, the receipts of the slot states it produced are built;
    /// replay of records whose receipts are already indexed skips them.
    pub fn apply(
        &mut self,
        record: &JournalRecord,
        seq: SequenceNumber,
        with_receipt: bool,
    ) -> Result<Applied, ApplyError> {
        let mut forced_index = None;
        let (effects, signed, counterparty) = match record {
            JournalRecord::SealBatch { number } => {
                let mut job = self.seal_job(*number, seq)?;
                let (sealed, seal_job) = if self.hand_out_seals {
                    if self.snapshot_every > 0 && seq.get() >= self.next_snapshot_at {
                        job.snapshot = Some(Box::new(SnapshotParts {
                            seq: seq.get(),
                            ledger: {
                                let spare = self
                                    .spare_slots
                                    .lock()
                                    .map(|mut b| std::mem::take(&mut *b))
                                    .unwrap_or_default();
                                self.ledger.image_into(spare)
                            },
                        }));
                        self.next_snapshot_at = seq.get().saturating_add(self.snapshot_every);
                    }
                    (None, Some(Box::new(job)))
                } else {
                    (Some(Box::new(self.tree.run(job)?.0)), None)
                };
                self.last_seq = seq;
                return Ok(Applied {
                    effects: Effects::default(),
                    tx_hash: None,
                    receipts: Vec::new(),
                    counterparty: None,
                    sealed,
                    seal_job,
                });
            }
            JournalRecord::Deposit { deposit } => {
                let effects = self.ledger.apply_deposit(deposit)?;
                self.deposits_hash = deposit_hash(
                    self.deposits_hash,
                    deposit.recipient,
                    deposit.token,
                    deposit.amount.base_units(),
                );
                self.open.deposits += 1;
                (effects, None, None)
            }
            JournalRecord::RefusedDeposit { deposit, .. } => {
                self.ledger.refuse_deposit(deposit)?;
                self.deposits_hash = deposit_hash(
                    self.deposits_hash,
                    deposit.recipient,
                    deposit.token,
                    deposit.amount.base_units(),
                );
                self.open.deposits += 1;
                self.open.refused_deposits.push(deposit.queue_index);
                (Effects::default(), None, None)
            }
            JournalRecord::Transfer { tx, accepted_at_s } => {
                let effects = self.ledger.apply_transfer(&tx.message, *accepted_at_s)?;
                let hash = TxHash(tx.message.signing_hash_in(&self.separator));
                (
                    effects,
                    Some((hash, tx.message.from, tx.message.token)),
                    Some(tx.message.to),
                )
            }
            JournalRecord::Withdrawal { tx, accepted_at_s } => {
                let effects = self.ledger.apply_withdrawal(&tx.message, *accepted_at_s)?;
                let hash = TxHash(tx.message.signing_hash_in(&self.separator));
                (
                    effects,
                    Some((hash, tx.message.from, tx.message.token)),
                    None,
                )
            }
            JournalRecord::ForcedWithdrawal { request } => {
                let effects = self.ledger.apply_forced_withdrawal(request)?;
                self.forced_hash = forced_hash(
                    self.forced_hash,
                    request.owner,
                    request.token,
                    request.recipient,
                );
                self.open.forced = true;
                forced_index = Some(request.queue_index);
                (effects, None, None)
            }
            JournalRecord::RegisterViewingKey { owner, signature } => (
                self.ledger
                    .register_viewing_key(*owner, viewing_key_from_signature(signature))?,
                None,
                None,
            ),
        };
        self.last_seq = seq;
        for slot in &effects.changed {
            self.pending.insert(slot.get());
            self.open.changed.insert(slot.get());
        }
        if let Some(pay_out) = &effects.pay_out {
            self.open.withdrawals.push(BatchWithdrawal {
                index: self.open.withdrawals.len() as u32,
                recipient: pay_out.recipient,
                token: pay_out.token,
                amount: pay_out.amount,
                tx_hash: signed.map(|(hash, _, _)| hash),
                forced_index,
            });
        }
        self.open.records += 1;
        if signed.is_some() {
            self.open.transactions += 1;
        }
        self.open.since.get_or_insert_with(Instant::now);
        let receipts = if with_receipt {
            self.receipts_of(record, seq, signed.map(|(hash, _, _)| hash))?
        } else {
            Vec::new()
        };
        Ok(Applied {
            effects,
            tx_hash: signed.map(|(hash, _, _)| hash),
            receipts,
            counterparty,
            sealed: None,
            seal_job: None,
        })
    }

    /// The receipts of the slot states `record` (just applied at `seq`) produced.
    fn receipts_of(
        &self,
        record: &JournalRecord,
        seq: SequenceNumber,
        tx_hash: Option<TxHash>,
    ) -> Result<Vec<Receipt>, ApplyError> {
        let tx_hash = tx_hash.unwrap_or_default();
        let accounts: [Option<(ReceiptKind, Address, Address)>; 2] = match record {
            JournalRecord::Transfer { tx, .. } => [
                Some((ReceiptKind::Sender, tx.message.from, tx.message.token)),
                Some((ReceiptKind::Recipient, tx.message.to, tx.message.token)),
            ],
            JournalRecord::Withdrawal { tx, .. } => [
                Some((ReceiptKind::Sender, tx.message.from, tx.message.token)),
                None,
            ],
            JournalRecord::Deposit { deposit } => [
                Some((ReceiptKind::Deposit, deposit.recipient, deposit.token)),
                None,
            ],
            JournalRecord::ForcedWithdrawal { request } => [
                Some((ReceiptKind::Forced, request.owner, request.token)),
                None,
            ],
            // No slot changes (a refused deposit, a viewing key) or none of its own (a seal).
            _ => [None, None],
        };
        let mut receipts = Vec::with_capacity(2);
        for (kind, owner, token) in accounts.into_iter().flatten() {
            let Some((slot, state)) = self
                .ledger
                .slot_index(owner, token)
                .and_then(|i| self.ledger.slot(i).map(|s| (i, s)))
            else {
                // A forced request for an account the ledger does not hold pays nothing
                // and changes no slot: no receipt.
                if kind == ReceiptKind::Forced {
                    continue;
                }
                return Err(ApplyError::Rejected(Rejection::UnknownAccount));
            };
            receipts.push(Receipt {
                sequence: seq,
                tx_hash,
                kind,
                owner,
                token,
                slot,
                balance: state.balance,
                nonce: state.nonce,
                deposits_consumed: self.ledger.deposits_consumed(),
                forced_consumed: self.ledger.forced_consumed(),
            });
        }
        Ok(receipts)
    }

    /// Replays the seal of batch `number` (record `seq`) whose batch the store already holds
    /// with root `stored_root`, without rebuilding its data: the open batch closes, and the
    /// tree is left to catch up later, so a replay hashes each leaf once instead of once per
    /// batch. With `check`, the tree catches up now and its root must equal `stored_root`,
    /// and the kept sealed states (if any) restart from this batch.
    ///
    /// # Errors
    ///
    /// [`ApplyError::Batch`] for a seal out of order, of an empty batch, or (with `check`) a
    /// root that differs from the stored one.
    pub fn replay_stored_seal(
        &mut self,
        number: u64,
        seq: SequenceNumber,
        stored_root: B256,
        check: bool,
    ) -> Result<(), ApplyError> {
        if number != self.last_batch + 1 {
            return Err(ApplyError::Batch(format!(
                "seal of batch {number}, expected {}",
                self.last_batch + 1
            )));
        }
        if self.open.records == 0 {
            return Err(ApplyError::Batch(format!("batch {number} is empty")));
        }
        if check {
            let root = self.root()?;
            if root != stored_root {
                return Err(ApplyError::Batch(format!(
                    "batch {number}: the journal implies root {root}, the store holds {stored_root}"
                )));
            }
            if self.sealed_history() > 0 {
                let secrets = (0..self.ledger.slot_count())
                    .map(|i| {
                        let slot = self
                            .ledger
                            .slot(SlotIndex(i))
                            .ok_or_else(|| ApplyError::Tree(format!("slot {i} missing")))?;
                        slot_secrets(slot).map_err(ApplyError::Tree)
                    })
                    .collect::<Result<Vec<_>, ApplyError>>()?;
                let mut side = self.tree.wait_for(self.last_batch)?;
                let side = &mut *side;
                if let Some(sealed) = &mut side.sealed {
                    sealed.restart_from(number, &side.tree, secrets);
                }
            }
        }
        self.tree.skip(number, stored_root)?;
        self.last_batch = number;
        self.last_seq = seq;
        self.open = OpenBatch::new(seq.get() + 1, self.ledger.slot_count());
        Ok(())
    }

    /// Sealed states kept, 0 if none.
    pub fn sealed_history(&self) -> usize {
        self.tree
            .now()
            .sealed
            .as_ref()
            .map_or(0, SealedStates::history)
    }

    /// Closes the open batch as batch `number` (sealed by record `seq`) and takes what the
    /// rest of the seal needs: each changed slot's opening and where its new leaf comes from.
    fn seal_job(&mut self, number: u64, seq: SequenceNumber) -> Result<SealJob, ApplyError> {
        if number != self.last_batch + 1 {
            return Err(ApplyError::Batch(format!(
                "seal of batch {number}, expected {}",
                self.last_batch + 1
            )));
        }
        if self.open.records == 0 {
            return Err(ApplyError::Batch(format!("batch {number} is empty")));
        }
        // After a replay that skipped stored batches the tree is behind on slots this batch
        // did not change: catch it up here (hashing from the ledger in slices), so that the
        // job needs only the batch's own slots.
        if !self
            .pending
            .iter()
            .all(|slot| self.open.changed.contains(slot))
        {
            self.root()?;
        }
        let slot = |i: u32| {
            self.ledger
                .slot(SlotIndex(i))
                .ok_or_else(|| ApplyError::Tree(format!("slot {i} missing")))
        };
        let slot_count = self.ledger.slot_count();
        let operator_key = self.ledger.config().operator_secret;
        let new_slots = (self.open.first_slot..slot_count)
            .map(|i| {
                slot(i).map(|s| NewSlot {
                    owner: s.owner,
                    token: s.token,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let changed = self
            .open
            .changed
            .iter()
            .map(|&i| {
                let s = slot(i)?;
                Ok(ChangedSlot {
                    index: i,
                    owner: s.owner,
                    token: s.token,
                    note_key: self.ledger.viewing_key(s.owner).unwrap_or(operator_key),
                    secrets: slot_secrets(s).map_err(ApplyError::Tree)?,
                    leaf: if self.pending.contains(&i) {
                        NewLeaf::ToHash
                    } else {
                        NewLeaf::InTree
                    },
                })
            })
            .collect::<Result<Vec<_>, ApplyError>>()?;
        let job = SealJob {
            number,
            deposits_consumed: self.ledger.deposits_consumed(),
            deposits_hash: self.deposits_hash,
            forced_consumed: self.ledger.forced_consumed(),
            forced_hash: self.forced_hash,
            first_sequence: self.open.first_seq,
            last_sequence: seq.get(),
            transaction_count: self.open.transactions,
            first_slot: self.open.first_slot,
            new_slots,
            changed,
            withdrawals: std::mem::take(&mut self.open.withdrawals),
            refused_deposits: std::mem::take(&mut self.open.refused_deposits),
            snapshot: None,
        };
        self.pending.clear();
        self.last_batch = number;
        self.open = OpenBatch::new(seq.get() + 1, slot_count);
        Ok(job)
    }

    /// The leaf hash of ledger slot `slot`: Poseidon(owner, token, balance, nonce, salt).
    fn slot_leaf(&self, slot: SlotIndex) -> Result<Fr, ApplyError> {
        let state = self
            .ledger
            .slot(slot)
            .ok_or(ApplyError::Rejected(Rejection::UnknownAccount))?;
        leaf_of(state)
    }

    /// Recomputes the root from scratch from the ledger's slots, ignoring the tree: the
    /// cross-check of the incremental tree in tests and in `stablelane journal verify`.
    pub fn recompute_root(&self) -> Result<B256, ApplyError> {
        let leaves = (0..self.ledger.slot_count())
            .into_par_iter()
            .map(|i| self.slot_leaf(SlotIndex(i)))
            .collect::<Result<Vec<Fr>, _>>()?;
        let tree = StateTree::from_leaves(leaves).map_err(|e| ApplyError::Tree(e.to_string()))?;
        Ok(B256::from(fr_to_be_bytes(&tree.root())))
    }
}
