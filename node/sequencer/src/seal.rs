//! Sealing a batch in two steps, so that the single writer is not held while the tree is
//! hashed.
//!
//! [`State`](crate::state::State) closes the open batch at once and takes a [`SealJob`]: the
//! batch's counters, its withdrawals and new slots, and a copy of what every changed leaf is
//! made of (a few hundred bytes per changed slot). Running the job brings the state tree up
//! to date, hashes the changed leaves and the nodes above them, encrypts the owners' notes
//! and builds the batch data. On the live path the sequencer's tree worker runs it on its
//! own thread while the writer goes on applying transfers; the start-up replay hands its
//! jobs to a thread of its own the same way (and writes the store only once the jobs before
//! the write are done); a `State` that does not hand out seals runs the job at once. Jobs
//! run strictly in batch order against the [`SharedTree`], and everything
//! that reads the tree (the root, the sealed states) first waits for the jobs handed out
//! before it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use alloy::primitives::{Address, Bytes, B256};
use rayon::prelude::*;
use stablelane::rpc::BatchWithdrawal;
use stablelane_circuits::{
    field::fr_to_be_bytes,
    leaf::leaf_hash,
    tree::{SlotIndex as TreeIndex, StateTree},
    Fr,
};
use stablelane_contracts::{
    batch_body::{seal_note, BatchBody, LeafUpdate, NewSlot},
    batch_data::encode_batch_data,
};

use stablelane_ledger::LedgerImage;

use crate::{
    batch::SealedBatch,
    sealed::{SealedStates, SlotSecrets},
    snapshot::Snapshot,
    state::ApplyError,
};

// The ledger keeps every slot within what a batch note encodes, so sealing a note never
// fails for a slot the ledger accepted.
const _: () =
    assert!(stablelane_ledger::BALANCE_MAX == stablelane_contracts::batch_body::NOTE_BALANCE_MAX);
const _: () =
    assert!(stablelane_ledger::NONCE_MAX == stablelane_contracts::batch_body::NOTE_NONCE_MAX);

/// The state tree as of the last seal job that ran, with what depends on it.
#[derive(Debug)]
pub struct TreeSide {
    /// The state tree (every leaf of the slots changed up to the last job, or later if the
    /// writer caught it up since).
    pub(crate) tree: StateTree,
    /// The states of the last sealed batches, for attestations (off unless enabled).
    pub(crate) sealed: Option<SealedStates>,
    /// Root of the last sealed batch.
    pub(crate) root: B256,
    /// Number of the last sealed batch (0 before any).
    pub(crate) done: u64,
    /// Why a seal job failed, once one did: nothing runs after it.
    pub(crate) failed: Option<String>,
    /// Poseidon hashes the seal jobs have computed so far.
    pub(crate) hashes: SealHashes,
}

/// Poseidon hashes computed by seal jobs since start-up (replayed batches included): the
/// tree's share of the node's CPU, reported on `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealHashes {
    /// Changed leaves hashed (5 inputs each): every slot the batch changed, once.
    pub leaves: u64,
    /// Inner nodes of the state tree rehashed (2 inputs each).
    pub inner: u64,
}

impl TreeSide {
    /// The states of the last sealed batches, if kept.
    pub fn sealed(&self) -> Option<&SealedStates> {
        self.sealed.as_ref()
    }
}

/// The [`TreeSide`] behind a lock, with a signal for each job done.
#[derive(Debug)]
pub struct SharedTree {
    side: Mutex<TreeSide>,
    ready: Condvar,
    /// `side.hashes` as of the last job, readable without waiting for the one running.
    leaf_hashes: AtomicU64,
    inner_hashes: AtomicU64,
}

impl SharedTree {
    /// An empty tree, before batch 1.
    pub(crate) fn new(sealed: Option<SealedStates>) -> Self {
        let tree = StateTree::new();
        let root = B256::from(fr_to_be_bytes(&tree.root()));
        Self {
            side: Mutex::new(TreeSide {
                tree,
                sealed,
                root,
                done: 0,
                failed: None,
                hashes: SealHashes::default(),
            }),
            ready: Condvar::new(),
            leaf_hashes: AtomicU64::new(0),
            inner_hashes: AtomicU64::new(0),
        }
    }

    /// A tree loaded from a snapshot of batch `done` with root `root`.
    pub(crate) fn restored(
        tree: StateTree,
        sealed: Option<SealedStates>,
        root: B256,
        done: u64,
    ) -> Self {
        Self {
            side: Mutex::new(TreeSide {
                tree,
                sealed,
                root,
                done,
                failed: None,
                hashes: SealHashes::default(),
            }),
            ready: Condvar::new(),
            leaf_hashes: AtomicU64::new(0),
            inner_hashes: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TreeSide> {
        match self.side.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The tree once every job up to batch `through` has run.
    ///
    /// # Errors
    ///
    /// [`ApplyError::Tree`] if a seal job failed (the tree stays as it was before it).
    pub(crate) fn wait_for(&self, through: u64) -> Result<MutexGuard<'_, TreeSide>, ApplyError> {
        let mut side = self.lock();
        loop {
            if let Some(reason) = &side.failed {
                return Err(ApplyError::Tree(format!("a seal failed: {reason}")));
            }
            if side.done >= through {
                return Ok(side);
            }
            side = match self.ready.wait(side) {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
    }

    /// Runs `job`, which must be the next batch's; with the snapshot it was asked to
    /// complete, if any.
    ///
    /// # Errors
    ///
    /// [`ApplyError`] if an earlier job failed, the job is out of order, or the tree refuses
    /// it; every later job then fails too.
    pub fn run(&self, job: SealJob) -> Result<(SealedBatch, Option<Box<Snapshot>>), ApplyError> {
        let mut side = self.lock();
        let result = match &side.failed {
            Some(reason) => Err(ApplyError::Tree(format!(
                "an earlier seal failed: {reason}"
            ))),
            None if job.number != side.done + 1 => Err(ApplyError::Batch(format!(
                "seal job for batch {}, expected {}",
                job.number,
                side.done + 1
            ))),
            None => job.run(&mut side),
        };
        if let Err(e) = &result {
            side.failed.get_or_insert_with(|| e.to_string());
        }
        self.leaf_hashes
            .store(side.hashes.leaves, Ordering::Relaxed);
        self.inner_hashes
            .store(side.hashes.inner, Ordering::Relaxed);
        drop(side);
        self.ready.notify_all();
        result
    }

    /// Poseidon hashes the seal jobs computed, as of the last job that finished.
    pub fn hashes(&self) -> SealHashes {
        SealHashes {
            leaves: self.leaf_hashes.load(Ordering::Relaxed),
            inner: self.inner_hashes.load(Ordering::Relaxed),
        }
    }

    /// Stops every job after now and wakes anyone waiting (the worker is gone).
    pub fn fail(&self, reason: String) {
        self.lock().failed.get_or_insert(reason);
        self.ready.notify_all();
    }

    /// Marks batch `number` sealed with root `root` without a job (replay of a batch the
    /// store holds; the tree catches up later).
    pub(crate) fn skip(&self, number: u64, root: B256) -> Result<(), ApplyError> {
        let mut side = self.wait_for(number - 1)?;
        side.done = number;
        side.root = root;
        Ok(())
    }

    /// The tree side as it is now, without waiting for jobs in flight (for reads that only
    /// want sealed batches, which a job publishes when done).
    pub fn now(&self) -> MutexGuard<'_, TreeSide> {
        self.lock()
    }
}

/// Where a changed slot's new leaf hash comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum NewLeaf {
    /// The tree has it already (it caught up after the slot's last change).
    InTree,
    /// To hash from the slot's opening.
    ToHash,
}

/// One slot the batch changed: who owns it, the key its note is encrypted under, what
/// opens its leaf, and where its new leaf comes from.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ChangedSlot {
    pub(crate) index: u32,
    pub(crate) owner: Address,
    pub(crate) token: Address,
    pub(crate) note_key: B256,
    pub(crate) secrets: SlotSecrets,
    pub(crate) leaf: NewLeaf,
}

impl ChangedSlot {
    /// The tree update this slot needs, if any.
    fn tree_change(&self) -> Option<(TreeIndex, Fr)> {
        let leaf = match self.leaf {
            NewLeaf::InTree => return None,
            NewLeaf::ToHash => leaf_hash(
                self.owner.0 .0,
                self.token.0 .0,
                self.secrets.balance,
                self.secrets.nonce,
                self.secrets.salt,
            ),
        };
        Some((TreeIndex::new(self.index), leaf))
    }
}

/// Everything needed to finish sealing a batch, taken from the state when its seal record
/// was applied (see the [module docs](self)).
#[derive(Clone, PartialEq, Eq)]
pub struct SealJob {
    pub(crate) number: u64,
    pub(crate) deposits_consumed: u64,
    pub(crate) deposits_hash: B256,
    pub(crate) forced_consumed: u64,
    pub(crate) forced_hash: B256,
    pub(crate) first_sequence: u64,
    pub(crate) last_sequence: u64,
    pub(crate) transaction_count: u64,
    pub(crate) first_slot: u32,
    pub(crate) new_slots: Vec<NewSlot>,
    /// The batch's changed slots, in slot order.
    pub(crate) changed: Vec<ChangedSlot>,
    pub(crate) withdrawals: Vec<BatchWithdrawal>,
    /// Queue indices of the deposits the batch consumed as refused, in increasing order.
    pub(crate) refused_deposits: Vec<u64>,
    /// Take a snapshot as of this seal: the ledger copied when the seal record was applied.
    pub(crate) snapshot: Option<Box<SnapshotParts>>,
}

/// The writer's part of a snapshot: the ledger as of the seal record `seq`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SnapshotParts {
    pub(crate) seq: u64,
    pub(crate) ledger: LedgerImage,
}

impl std::fmt::Debug for SealJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealJob")
            .field("number", &self.number)
            .field("changed", &self.changed.len())
            .finish_non_exhaustive()
    }
}

impl SealJob {
    fn run(self, side: &mut TreeSide) -> Result<(SealedBatch, Option<Box<Snapshot>>), ApplyError> {
        let changes: Vec<(TreeIndex, Fr)> = self
            .changed
            .par_iter()
            .filter_map(ChangedSlot::tree_change)
            .collect();
        let inner = side
            .tree
            .update_batch(&changes)
            .map_err(|e| ApplyError::Tree(e.to_string()))?;
        side.hashes.leaves += self
            .changed
            .iter()
            .filter(|c| c.leaf == NewLeaf::ToHash)
            .count() as u64;
        side.hashes.inner += inner as u64;
        let new_root = B256::from(fr_to_be_bytes(&side.tree.root()));
        let number = self.number;
        let leaves = self
            .changed
            .par_iter()
            .map(|c| {
                Ok(LeafUpdate {
                    slot: c.index,
                    leaf: B256::from(fr_to_be_bytes(&side.tree.leaf(TreeIndex::new(c.index)))),
                    note: seal_note(
                        &c.note_key,
                        number,
                        c.index,
                        c.secrets.balance,
                        c.secrets.nonce,
                    )
                    .map_err(|e| ApplyError::Batch(e.to_string()))?,
                })
            })
            .collect::<Result<Vec<_>, ApplyError>>()?;
        if let Some(sealed) = &mut side.sealed {
            let changed: Vec<(u32, SlotSecrets)> =
                self.changed.iter().map(|c| (c.index, c.secrets)).collect();
            sealed
                .record_seal(number, &side.tree, &changed)
                .map_err(ApplyError::Tree)?;
        }
        let body = BatchBody {
            first_slot: self.first_slot,
            new_slots: self.new_slots,
            leaves,
        };
        let contract_withdrawals: Vec<_> = self
            .withdrawals
            .iter()
            .map(BatchWithdrawal::on_chain)
            .collect();
        let body_bytes = body
            .encode()
            .map_err(|e| ApplyError::Batch(e.to_string()))?;
        let data = encode_batch_data(&contract_withdrawals, &self.refused_deposits, &body_bytes)
            .map_err(|e| ApplyError::Batch(e.to_string()))?;
        let batch = SealedBatch {
            number,
            prev_root: side.root,
            new_root,
            deposits_consumed: self.deposits_consumed,
            deposits_hash: self.deposits_hash,
            forced_consumed: self.forced_consumed,
            forced_hash: self.forced_hash,
            first_sequence: self.first_sequence,
            last_sequence: self.last_sequence,
            transaction_count: self.transaction_count,
            changed_slots: body.leaves.len() as u32,
            new_slots: body.new_slots.len() as u32,
            withdrawals: self.withdrawals,
            data: Bytes::from(data),
        };
        // The tree is exactly as of the seal record now: copy it before anything moves it
        // on (the writer may catch it up with later records once this job is done).
        let snapshot = self.snapshot.map(|parts| {
            Box::new(Snapshot {
                seq: parts.seq,
                batch: number,
                root: new_root,
                deposits_hash: self.deposits_hash,
                forced_hash: self.forced_hash,
                ledger: parts.ledger,
                tree: side.tree.clone(),
            })
        });
        side.root = new_root;
        side.done = number;
        Ok((batch, snapshot))
    }
}
