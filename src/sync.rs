//! Chain sync: the state tree of leaf hashes rebuilt from the L2 alone.
//!
//! Every batch the operator commits carries, in its calldata, the slots it creates and the
//! leaf hashes it changes (see [`stablelane_contracts::batch_body`]). [`chain_sync`] reads
//! the settlement contract's `BatchCommitted` events from its deployment block to the head,
//! fetches each commit transaction, replays its body on a fresh [`StateTree`] and checks at
//! every step that the tree it rebuilds has the root the operator committed. Anyone can run
//! it with nothing but an L2 RPC endpoint: it is how users watch the operator, and the base
//! of the exit tool (a wallet finds its slot, its Merkle path and its last encrypted note in
//! the [`SyncedState`]).
//!
//! # What is checked, per batch `n` (in order from 1)
//!
//! - the commit's `commitBatch` call is found: the transaction's own input when it was sent
//!   *to* the settlement contract; otherwise (an operator that commits through a Safe, a
//!   multisig or a forwarder) the call frame into the settlement contract from the L2 node's
//!   call trace (`debug_traceTransaction` with the `callTracer`), or, where the node has no
//!   traces, a `commitBatch` call embedded verbatim in the transaction's input (as a Safe's
//!   `execTransaction` carries it). Whatever its source, a call counts only if its
//!   `keccak256(data)` is the event's `dataHash` and its header agrees with the event, so a
//!   look-alike cannot be taken for the commit. None found: [`SyncError::IndirectCommit`];
//! - header, event and the expected sequence agree on the batch number, and
//!   `keccak256(data)`, the header's `dataHash` and the event's `dataHash` are equal;
//! - the header's `prevRoot` is the root rebuilt so far;
//! - the event's other fields (new root, deposit and forced prefixes, withdrawal count and
//!   root) match the header and the withdrawals of the data;
//! - the body decodes; its new slots start at the slot count so far (contiguous), and none
//!   repeats an `(owner, token)` pair; every changed leaf is in a slot that exists after the
//!   batch's new slots and is a canonical BN254 field element;
//! - with the changed leaves applied, the tree's root is the header's `newRoot`.
//!
//! At the end the rebuilt root must be the contract's `stateRoot`, and every batch up to its
//! `lastBatchNumber` must have been found. Any difference is a [`SyncError`] naming the batch
//! and what differed.
//!
//! # Consistency and reorgs
//!
//! The head block is fixed when the sync starts: `lastBatchNumber` and `stateRoot` are read
//! at that block's hash and logs are scanned up to it, so commits that arrive meanwhile are
//! simply not seen. A log is counted only if its transaction's receipt is found *in the
//! log's block*: a log left over from a block that a reorg removed (its transaction not
//! mined, or mined in another block) is skipped, and the canonical log of the same batch is
//! taken instead. A reorg *during* the sync can still make a run fail (a batch missing, a
//! second canonical commit of a batch already replayed, or a final root that differs):
//! running it again resolves that.
//!
//! # Bounds
//!
//! Logs are read `max_block_range` blocks at a time; calldata is fetched one commit at a
//! time and dropped once replayed. What is kept grows with the state, not with the history's
//! bytes: the tree (about 64 bytes per slot), each slot's key and last note, and one
//! [`BatchSummary`] per batch. A transient RPC failure is retried a few times with
//! exponential backoff before it becomes [`SyncError::Rpc`].

use std::{collections::HashMap, fmt, future::Future, time::Duration};

use alloy::{
    consensus::Transaction as _,
    eips::BlockId,
    primitives::{keccak256, Address, Bytes, B256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{Filter, Log},
    sol_types::{SolCall, SolEvent},
    transports::{RpcError, TransportError},
};
use stablelane_circuits::{
    field::{fr_from_be_bytes, fr_to_be_bytes},
    Fr, MerklePath, SlotIndex, StateTree,
};
use stablelane_contracts::{
    batch_body::{BatchBody, BodyError, NOTE_BYTES},
    batch_data::{decode_batch_data, withdrawals_root, DataError},
    Settlement,
};
use tracing::{debug, info, warn};

/// Tracing target of this module.
const TARGET: &str = "chain-sync";

/// Attempts of one RPC request before a transient failure becomes an error.
pub const RPC_ATTEMPTS_MAX: u32 = 4;

/// Pause before the first retry of a failed RPC request; doubled before each next one.
pub const RPC_BACKOFF_FIRST: Duration = Duration::from_millis(250);

/// Settings of a chain sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSyncConfig {
    /// The L2's JSON-RPC URL.
    pub l2_rpc_url: String,
    /// The settlement contract.
    pub settlement: Address,
    /// First block scanned: the contract's deployment block (no commit can be older).
    pub from_block: u64,
    /// Most blocks per `eth_getLogs` request (0 is taken as 1).
    pub max_block_range: u64,
    /// Replay batches 1 to this one only, and check the result against the root the
    /// contract recorded for it (`batch(n).root`); `None`: up to `lastBatchNumber`, checked
    /// against `stateRoot`. An exit in exodus syncs up to `exodusBatchNumber`, the last batch
    /// nobody voided.
    pub up_to: Option<u64>,
}

/// Why a chain sync failed.
///
/// Variants carrying a `batch` mean the chain holds something for that batch that does not
/// add up: the operator (or whoever committed) published an inconsistent batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The L2 RPC failed (after retries, for transient failures), or its URL is invalid.
    #[error("L2 RPC: {0}")]
    Rpc(String),
    /// The RPC answered with something impossible (e.g. a block it just reported as the head
    /// is unknown, or a `BatchCommitted` log that does not decode).
    #[error("L2 RPC answer not understood: {0}")]
    BadAnswer(String),
    /// No canonical commit of this batch was found between `from_block` and the head,
    /// although the contract counts `last` batches (wrong `from_block`, or a reorg during
    /// the sync: run it again).
    #[error("batch {batch}: no canonical BatchCommitted event found (the contract has {last} batches; is from_block the deployment block?)")]
    MissingBatch {
        /// The batch.
        batch: u64,
        /// The contract's `lastBatchNumber`.
        last: u64,
    },
    /// Two canonical commits of one batch: the chain reorganised during the sync.
    #[error("batch {batch}: committed again by {tx} after {replayed} was replayed (the chain reorganised during the sync; run it again)")]
    Reorganised {
        /// The batch.
        batch: u64,
        /// The commit already replayed.
        replayed: B256,
        /// The other commit.
        tx: B256,
    },
    /// The transaction of a commit event is not known to the node.
    #[error("batch {batch}: transaction {tx} not found")]
    TxNotFound {
        /// The batch.
        batch: u64,
        /// Its transaction.
        tx: B256,
    },
    /// The batch was committed by a transaction to another contract (a multisig, a
    /// forwarder…), and no `commitBatch` call matching the event was found in its call trace
    /// (the L2 node may not serve `debug_traceTransaction`) or its input.
    #[error("batch {batch}: committed through another contract ({to:?}) in transaction {tx}, and no commitBatch call with the event's data hash was found in its call trace or input (use an L2 RPC that serves debug_traceTransaction)")]
    IndirectCommit {
        /// The batch.
        batch: u64,
        /// The transaction.
        tx: B256,
        /// Its recipient (`None`: a contract creation).
        to: Option<Address>,
    },
    /// The transaction that emitted the event was sent to the settlement contract, but its
    /// input is not a `commitBatch` call.
    #[error("batch {batch}: transaction {tx} is not a commitBatch call: {reason}")]
    NotACommit {
        /// The batch.
        batch: u64,
        /// The transaction.
        tx: B256,
        /// Why its input does not decode.
        reason: String,
    },
    /// Batch numbers of the header, the event and the sequence differ.
    #[error("batch {batch}: the header says batch {header}, the event batch {event}")]
    BatchNumber {
        /// The batch expected next.
        batch: u64,
        /// The header's `batchNumber`.
        header: u64,
        /// The event's `batchNumber`.
        event: u64,
    },
    /// `keccak256(data)`, the header's `dataHash` and the event's `dataHash` differ.
    #[error("batch {batch}: data hash differs: keccak256(data) = {computed}, header {header}, event {event}")]
    DataHash {
        /// The batch.
        batch: u64,
        /// `keccak256(data)`.
        computed: B256,
        /// The header's `dataHash`.
        header: B256,
        /// The event's `dataHash`.
        event: B256,
    },
    /// The header's `prevRoot` is not the root rebuilt from the batches before.
    #[error("batch {batch}: prevRoot {header} is not the rebuilt root {rebuilt}")]
    PrevRoot {
        /// The batch.
        batch: u64,
        /// Root rebuilt after the previous batch.
        rebuilt: B256,
        /// The header's `prevRoot`.
        header: B256,
    },
    /// A field of the event differs from the header or from the batch data.
    #[error("batch {batch}: the event's {field} differs from the committed batch")]
    EventMismatch {
        /// The batch.
        batch: u64,
        /// Which field.
        field: &'static str,
    },
    /// The withdrawal section of the data does not decode.
    #[error("batch {batch}: batch data: {source}")]
    Data {
        /// The batch.
        batch: u64,
        /// Why.
        #[source]
        source: DataError,
    },
    /// The body (new slots and changed leaves) does not decode.
    #[error("batch {batch}: batch body: {source}")]
    Body {
        /// The batch.
        batch: u64,
        /// Why.
        #[source]
        source: BodyError,
    },
    /// New slots do not continue the slot numbering.
    #[error("batch {batch}: new slots start at {first_slot}, but {slot_count} slots exist")]
    SlotGap {
        /// The batch.
        batch: u64,
        /// The body's `first_slot`.
        first_slot: u32,
        /// Slots before the batch.
        slot_count: u64,
    },
    /// A new slot repeats the `(owner, token)` of an existing one.
    #[error("batch {batch}: new slot {slot} repeats ({owner}, {token}) of slot {existing}")]
    DuplicateSlot {
        /// The batch.
        batch: u64,
        /// The new slot.
        slot: u32,
        /// The slot that already has this key.
        existing: u32,
        /// Owner.
        owner: Address,
        /// Token.
        token: Address,
    },
    /// A changed leaf is in a slot that does not exist.
    #[error("batch {batch}: leaf changed in slot {slot}, but only {slot_count} slots exist")]
    LeafSlotOutOfRange {
        /// The batch.
        batch: u64,
        /// The slot.
        slot: u32,
        /// Slots after the batch's new slots.
        slot_count: u64,
    },
    /// A changed leaf is not a canonical BN254 field element.
    #[error("batch {batch}: leaf {leaf} of slot {slot} is not a BN254 field element")]
    LeafNotInField {
        /// The batch.
        batch: u64,
        /// The slot.
        slot: u32,
        /// The leaf.
        leaf: B256,
    },
    /// The tree could not grow to the batch's slots.
    #[error("batch {batch}: state tree: {reason}")]
    Tree {
        /// The batch.
        batch: u64,
        /// Why.
        reason: String,
    },
    /// The body's leaves do not produce the committed root: the body lies about the state.
    #[error(
        "batch {batch}: the body's leaves give root {rebuilt}, the operator committed {committed}"
    )]
    RootMismatch {
        /// The batch.
        batch: u64,
        /// Root rebuilt from the body.
        rebuilt: B256,
        /// The header's `newRoot`.
        committed: B256,
    },
    /// After the last batch, the rebuilt root is not the contract's (`stateRoot`, or the
    /// root of batch [`ChainSyncConfig::up_to`]).
    #[error("after batch {last}: rebuilt root {rebuilt}, the contract's is {contract}")]
    FinalRoot {
        /// The last batch replayed.
        last: u64,
        /// Root rebuilt.
        rebuilt: B256,
        /// The contract's root for it.
        contract: B256,
    },
    /// [`ChainSyncConfig::up_to`] names a batch the contract does not have.
    #[error("batch {up_to} is not committed (the contract's last batch is {last})")]
    NotCommitted {
        /// The batch asked for.
        up_to: u64,
        /// The contract's `lastBatchNumber`.
        last: u64,
    },
}

impl SyncError {
    /// The batch the error is about, if it is about one.
    pub fn batch(&self) -> Option<u64> {
        match self {
            Self::MissingBatch { batch, .. }
            | Self::Reorganised { batch, .. }
            | Self::TxNotFound { batch, .. }
            | Self::IndirectCommit { batch, .. }
            | Self::NotACommit { batch, .. }
            | Self::BatchNumber { batch, .. }
            | Self::DataHash { batch, .. }
            | Self::PrevRoot { batch, .. }
            | Self::EventMismatch { batch, .. }
            | Self::Data { batch, .. }
            | Self::Body { batch, .. }
            | Self::SlotGap { batch, .. }
            | Self::DuplicateSlot { batch, .. }
            | Self::LeafSlotOutOfRange { batch, .. }
            | Self::LeafNotInField { batch, .. }
            | Self::Tree { batch, .. }
            | Self::RootMismatch { batch, .. } => Some(*batch),
            Self::Rpc(_)
            | Self::BadAnswer(_)
            | Self::FinalRoot { .. }
            | Self::NotCommitted { .. } => None,
        }
    }
}

/// Progress of a sync, reported after each batch replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncProgress {
    /// Batches replayed so far (the last one is batch `batches_done`).
    pub batches_done: u64,
    /// Batches the contract had when the sync started.
    pub batches_total: u64,
    /// L2 block of the last batch replayed.
    pub l2_block: u64,
}

/// Where a commit was found on the L2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitOrigin {
    /// The commit transaction.
    pub l2_tx_hash: B256,
    /// Its block.
    pub l2_block: u64,
}

/// One replayed batch, as kept by [`SyncedState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSummary {
    /// Batch number.
    pub number: u64,
    /// State root after the batch.
    pub new_root: B256,
    /// The commit transaction.
    pub l2_tx_hash: B256,
    /// Its block.
    pub l2_block: u64,
    /// Number of leaves the batch changed.
    pub leaves_changed: u32,
    /// Number of slots the batch created.
    pub new_slots: u32,
    /// Number of withdrawals the batch paid out.
    pub withdrawals: u32,
    /// Number of deposits the batch consumed as refused (refundable on-chain).
    pub refused_deposits: u32,
}

/// The last encrypted note published for a slot: open it with
/// [`stablelane_contracts::batch_body::open_note`]`(key, batch, slot, &note)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotNote {
    /// The batch that published it.
    pub batch: u64,
    /// The note: `(balance, nonce)` encrypted to the owner's viewing key (or, before one was
    /// registered, the operator's secret).
    pub note: [u8; NOTE_BYTES],
}

/// The state rebuilt from the chain: the tree of leaf hashes, the slots and their last
/// notes, and a summary of each batch.
///
/// [`SyncedState::genesis`] is the state before batch 1; [`SyncedState::apply_commit`]
/// replays one commit (what [`chain_sync`] does for each batch found on the chain).
#[derive(Clone, Default)]
pub struct SyncedState {
    tree: StateTree,
    /// `(owner, token)` of each slot, by index.
    slots: Vec<(Address, Address)>,
    /// Slot index by `(owner, token)`.
    slot_by_key: HashMap<(Address, Address), u32>,
    /// Last note of each slot, by index (`None` until a batch changes its leaf).
    notes: Vec<Option<SlotNote>>,
    batches: Vec<BatchSummary>,
}

impl fmt::Debug for SyncedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncedState")
            .field("last_batch", &self.last_batch())
            .field("root", &self.root())
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl SyncedState {
    /// The state before batch 1: no slots, the empty tree (its root is the genesis root).
    pub fn genesis() -> Self {
        Self::default()
    }

    /// The state tree of leaf hashes.
    pub fn tree(&self) -> &StateTree {
        &self.tree
    }

    /// The state root, as the contract holds it.
    pub fn root(&self) -> B256 {
        fr_b256(&self.tree.root())
    }

    /// `(owner, token)` of every slot, slot `i` at `[i]`.
    pub fn slots(&self) -> &[(Address, Address)] {
        &self.slots
    }

    /// The slot of `(owner, token)`, if a batch created it.
    pub fn slot_index(&self, owner: Address, token: Address) -> Option<SlotIndex> {
        self.slot_by_key
            .get(&(owner, token))
            .copied()
            .map(SlotIndex::new)
    }

    /// The leaf hash of `slot` (zero until a batch sets it), or `None` for a slot that does
    /// not exist.
    pub fn leaf(&self, slot: SlotIndex) -> Option<B256> {
        self.exists(slot).then(|| fr_b256(&self.tree.leaf(slot)))
    }

    /// The Merkle path of `slot` against [`root`](Self::root), or `None` for a slot that does
    /// not exist.
    pub fn path(&self, slot: SlotIndex) -> Option<MerklePath> {
        self.exists(slot).then(|| self.tree.path(slot))
    }

    /// The last note published for `slot`, or `None` if no batch changed its leaf (or it
    /// does not exist).
    pub fn note(&self, slot: SlotIndex) -> Option<SlotNote> {
        self.notes
            .get(usize::try_from(slot.get()).ok()?)
            .copied()
            .flatten()
    }

    /// Summaries of the batches replayed, batch `i + 1` at `[i]`.
    pub fn batches(&self) -> &[BatchSummary] {
        &self.batches
    }

    /// Number of the last batch replayed (0: none).
    pub fn last_batch(&self) -> u64 {
        self.batches.last().map_or(0, |b| b.number)
    }

    fn exists(&self, slot: SlotIndex) -> bool {
        u64::from(slot) < self.slot_count()
    }

    fn slot_count(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Replays the commit of the next batch: checks it (see the [module docs](self)) and
    /// applies its new slots and changed leaves.
    ///
    /// `call` is the decoded input of the commit transaction and `event` the
    /// `BatchCommitted` event it emitted. On error the state is unchanged.
    pub fn apply_commit(
        &mut self,
        call: &Settlement::commitBatchCall,
        event: &Settlement::BatchCommitted,
        origin: CommitOrigin,
    ) -> Result<BatchSummary, SyncError> {
        let batch = self.last_batch() + 1;
        let header = &call.header;
        if header.batchNumber != batch || event.batchNumber != batch {
            return Err(SyncError::BatchNumber {
                batch,
                header: header.batchNumber,
                event: event.batchNumber,
            });
        }
        let data: &[u8] = &call.data;
        let computed = keccak256(data);
        if computed != header.dataHash || computed != event.dataHash {
            return Err(SyncError::DataHash {
                batch,
                computed,
                header: header.dataHash,
                event: event.dataHash,
            });
        }
        let rebuilt = self.root();
        if header.prevRoot != rebuilt {
            return Err(SyncError::PrevRoot {
                batch,
                rebuilt,
                header: header.prevRoot,
            });
        }
        let decoded =
            decode_batch_data(data).map_err(|source| SyncError::Data { batch, source })?;
        let (withdrawals, rest) = (decoded.withdrawals, decoded.rest);
        let refused_deposits = u32::try_from(decoded.refused.len()).unwrap_or(u32::MAX);
        let withdrawal_count = u32::try_from(withdrawals.len()).unwrap_or(u32::MAX);
        let event_fields = [
            ("newRoot", event.newRoot == header.newRoot),
            (
                "depositsConsumed",
                event.depositsConsumed == header.depositsConsumed,
            ),
            (
                "forcedConsumed",
                event.forcedConsumed == header.forcedConsumed,
            ),
            ("withdrawalCount", event.withdrawalCount == withdrawal_count),
            (
                "withdrawalsRoot",
                event.withdrawalsRoot == withdrawals_root(&withdrawals),
            ),
        ];
        if let Some((field, _)) = event_fields.into_iter().find(|&(_, same)| !same) {
            return Err(SyncError::EventMismatch { batch, field });
        }
        drop(withdrawals);

        let body = BatchBody::decode(rest).map_err(|source| SyncError::Body { batch, source })?;
        let slot_count = self.slot_count();
        if u64::from(body.first_slot) != slot_count {
            return Err(SyncError::SlotGap {
                batch,
                first_slot: body.first_slot,
                slot_count,
            });
        }
        // New keys must be fresh, also among themselves.
        let mut fresh: HashMap<(Address, Address), u32> =
            HashMap::with_capacity(body.new_slots.len());
        for (slot, new) in (body.first_slot..).zip(&body.new_slots) {
            let key = (new.owner, new.token);
            if let Some(&existing) = self.slot_by_key.get(&key).or_else(|| fresh.get(&key)) {
                return Err(SyncError::DuplicateSlot {
                    batch,
                    slot,
                    existing,
                    owner: new.owner,
                    token: new.token,
                });
            }
            fresh.insert(key, slot);
        }
        // `decode` checked that `first_slot + new slots` fits a u32.
        let slot_count_after = slot_count + body.new_slots.len() as u64;
        let mut changes = Vec::with_capacity(body.leaves.len());
        for update in &body.leaves {
            if u64::from(update.slot) >= slot_count_after {
                return Err(SyncError::LeafSlotOutOfRange {
                    batch,
                    slot: update.slot,
                    slot_count: slot_count_after,
                });
            }
            let leaf = fr_from_be_bytes(&update.leaf.0).map_err(|_| SyncError::LeafNotInField {
                batch,
                slot: update.slot,
                leaf: update.leaf,
            })?;
            changes.push((SlotIndex::new(update.slot), leaf));
        }

        // Apply, and undo if the root is not the committed one.
        let previous: Vec<(SlotIndex, Fr)> = changes
            .iter()
            .map(|&(slot, _)| (slot, self.tree.leaf(slot)))
            .collect();
        let tree_error = |e: stablelane_circuits::Error| SyncError::Tree {
            batch,
            reason: e.to_string(),
        };
        self.tree.update_batch(&changes).map_err(tree_error)?;
        let new_root = self.root();
        if new_root != header.newRoot {
            self.tree.update_batch(&previous).map_err(tree_error)?;
            debug_assert_eq!(self.root(), rebuilt, "undo restores the root");
            return Err(SyncError::RootMismatch {
                batch,
                rebuilt: new_root,
                committed: header.newRoot,
            });
        }

        // Checked: commit the slots, notes and summary.
        for new in &body.new_slots {
            self.slots.push((new.owner, new.token));
            self.notes.push(None);
        }
        self.slot_by_key.extend(fresh);
        for update in &body.leaves {
            if let Some(note) = self.notes.get_mut(update.slot as usize) {
                *note = Some(SlotNote {
                    batch,
                    note: update.note,
                });
            }
        }
        let summary = BatchSummary {
            number: batch,
            new_root,
            l2_tx_hash: origin.l2_tx_hash,
            l2_block: origin.l2_block,
            leaves_changed: u32::try_from(body.leaves.len()).unwrap_or(u32::MAX),
            new_slots: u32::try_from(body.new_slots.len()).unwrap_or(u32::MAX),
            withdrawals: withdrawal_count,
            refused_deposits,
        };
        self.batches.push(summary);
        debug_assert_eq!(self.slots.len(), self.notes.len());
        debug_assert_eq!(self.slots.len(), self.slot_by_key.len());
        Ok(summary)
    }
}

fn fr_b256(value: &Fr) -> B256 {
    B256::from(fr_to_be_bytes(value))
}

/// Rebuilds the state from the L2: replays every batch committed to `config.settlement`
/// (or those up to [`ChainSyncConfig::up_to`]), checking each against its commit (see the
/// [module docs](self)), and the result against the contract's root for the last one.
///
/// `progress` is called after each batch replayed. The sync stops at the first
/// inconsistency, with a [`SyncError`] naming the batch.
pub async fn chain_sync(
    config: &ChainSyncConfig,
    mut progress: impl FnMut(SyncProgress),
) -> Result<SyncedState, SyncError> {
    let url = config
        .l2_rpc_url
        .parse()
        .map_err(|e| SyncError::Rpc(format!("bad L2 RPC URL {}: {e}", config.l2_rpc_url)))?;
    let provider = ProviderBuilder::new().connect_http(url).erased();
    let settlement = config.settlement;
    let max_block_range = config.max_block_range.max(1);

    // Pin the head: the contract is read at its hash, logs are scanned up to it.
    let head = retry("eth_blockNumber", || provider.get_block_number()).await?;
    let head_hash = retry("eth_getBlockByNumber", || async {
        provider.get_block_by_number(head.into()).await
    })
    .await?
    .map(|b| b.header.hash)
    .ok_or_else(|| SyncError::BadAnswer(format!("head block {head} not found")))?;
    let contract = Settlement::new(settlement, &provider);
    let at = BlockId::hash(head_hash);
    let committed = retry("lastBatchNumber", || async {
        contract.lastBatchNumber().block(at).call().await
    })
    .await?;
    let (last, state_root) = match config.up_to {
        None => (
            committed,
            retry("stateRoot", || async {
                contract.stateRoot().block(at).call().await
            })
            .await?,
        ),
        Some(up_to) if up_to > committed => {
            return Err(SyncError::NotCommitted {
                up_to,
                last: committed,
            })
        }
        Some(up_to) => (
            up_to,
            retry("batch", || async {
                contract.batch(up_to).block(at).call().await
            })
            .await?
            .root,
        ),
    };
    info!(target: TARGET, %settlement, from_block = config.from_block, head, last_batch = last, "chain sync started");

    let mut state = SyncedState::genesis();
    let mut from = config.from_block;
    while from <= head && state.last_batch() < last {
        let to = head.min(from.saturating_add(max_block_range - 1));
        let filter = Filter::new()
            .address(settlement)
            .event_signature(Settlement::BatchCommitted::SIGNATURE_HASH)
            .from_block(from)
            .to_block(to);
        let logs = retry("eth_getLogs", || provider.get_logs(&filter)).await?;
        debug!(target: TARGET, from, to, logs = logs.len(), "scanned");
        for log in logs {
            if state.last_batch() >= last {
                break;
            }
            if let Some(done) = replay_log(&provider, settlement, &mut state, &log, last).await? {
                progress(SyncProgress {
                    batches_done: done.number,
                    batches_total: last,
                    l2_block: done.l2_block,
                });
            }
        }
        from = to.saturating_add(1);
    }

    if state.last_batch() < last {
        return Err(SyncError::MissingBatch {
            batch: state.last_batch() + 1,
            last,
        });
    }
    let rebuilt = state.root();
    if rebuilt != state_root {
        return Err(SyncError::FinalRoot {
            last,
            rebuilt,
            contract: state_root,
        });
    }
    info!(target: TARGET, batches = last, slots = state.slots.len(), root = %rebuilt, head, "chain sync done: the rebuilt root is the contract's");
    Ok(state)
}

/// Replays the commit behind one `BatchCommitted` log if it is the next batch and canonical.
/// Returns its summary, or `None` for a log skipped (not canonical, or a batch beyond the
/// pinned head's count).
async fn replay_log(
    provider: &DynProvider,
    settlement: Address,
    state: &mut SyncedState,
    log: &Log,
    last: u64,
) -> Result<Option<BatchSummary>, SyncError> {
    if log.removed {
        return Ok(None);
    }
    let event = log
        .log_decode::<Settlement::BatchCommitted>()
        .map_err(|e| SyncError::BadAnswer(format!("BatchCommitted log: {e}")))?
        .inner
        .data;
    let number = event.batchNumber;
    let (Some(tx), Some(block_hash)) = (log.transaction_hash, log.block_hash) else {
        return Err(SyncError::BadAnswer(format!(
            "BatchCommitted log of batch {number} without transaction or block"
        )));
    };
    let expected = state.last_batch() + 1;
    if number > last {
        return Ok(None);
    }
    // Only logs whose transaction is mined in the log's block are canonical.
    let receipt = retry("eth_getTransactionReceipt", || {
        provider.get_transaction_receipt(tx)
    })
    .await?;
    let Some(receipt) = receipt.filter(|r| r.block_hash == Some(block_hash) && r.status()) else {
        warn!(target: TARGET, batch = number, %tx, "BatchCommitted log not on the canonical chain: skipped");
        return Ok(None);
    };
    if number < expected {
        let replayed = state
            .batches()
            .get(usize::try_from(number.saturating_sub(1)).unwrap_or(usize::MAX))
            .map_or(B256::ZERO, |b| b.l2_tx_hash);
        if replayed == tx {
            return Ok(None);
        }
        return Err(SyncError::Reorganised {
            batch: number,
            replayed,
            tx,
        });
    }
    if number > expected {
        return Err(SyncError::MissingBatch {
            batch: expected,
            last,
        });
    }
    let l2_block = receipt
        .block_number
        .or(log.block_number)
        .unwrap_or_default();

    let transaction = retry("eth_getTransactionByHash", || {
        provider.get_transaction_by_hash(tx)
    })
    .await?
    .ok_or(SyncError::TxNotFound { batch: number, tx })?;
    let to = transaction.to();
    let call = if to == Some(settlement) {
        Settlement::commitBatchCall::abi_decode(transaction.input()).map_err(|e| {
            SyncError::NotACommit {
                batch: number,
                tx,
                reason: e.to_string(),
            }
        })?
    } else {
        let traced = traced_commit(provider, tx, settlement, &event).await;
        let found = traced.or_else(|| embedded_commit(transaction.input(), &event));
        found.ok_or(SyncError::IndirectCommit {
            batch: number,
            tx,
            to,
        })?
    };
    drop(transaction);
    let summary = state.apply_commit(
        &call,
        &event,
        CommitOrigin {
            l2_tx_hash: tx,
            l2_block,
        },
    )?;
    debug!(target: TARGET, batch = number, l2_tx = %tx, l2_block, leaves = summary.leaves_changed, new_slots = summary.new_slots, "batch replayed");
    Ok(Some(summary))
}

/// An RPC failure, and whether trying again may help.
struct Failure {
    transient: bool,
    message: String,
}

impl From<TransportError> for Failure {
    fn from(e: TransportError) -> Self {
        let transient = match &e {
            // Connection refused or reset, timeouts, HTTP 429/5xx…
            RpcError::Transport(_) | RpcError::NullResp | RpcError::DeserError { .. } => true,
            RpcError::ErrorResp(payload) => payload.is_retry_err(),
            _ => false,
        };
        Self {
            transient,
            message: e.to_string(),
        }
    }
}

impl From<alloy::contract::Error> for Failure {
    fn from(e: alloy::contract::Error) -> Self {
        match e {
            alloy::contract::Error::TransportError(e) => e.into(),
            other => Self {
                transient: false,
                message: other.to_string(),
            },
        }
    }
}

/// Runs `request` until it succeeds, a failure is not transient, or [`RPC_ATTEMPTS_MAX`]
/// attempts failed, pausing [`RPC_BACKOFF_FIRST`], then twice as long, between attempts.
/// Whether `call` is the commit `event` reports: the data hashes to the event's `dataHash`
/// and the header names the same batch, root and hash.
fn matches_event(call: &Settlement::commitBatchCall, event: &Settlement::BatchCommitted) -> bool {
    let h = &call.header;
    h.batchNumber == event.batchNumber
        && h.newRoot == event.newRoot
        && h.dataHash == event.dataHash
        && keccak256(&call.data) == event.dataHash
}

/// Most call frames of one trace looked at (a bound on what a hostile trace can make us do).
const TRACE_FRAMES_MAX: usize = 10_000;

/// The successful `commitBatch` call into `settlement` that `event` reports, from the L2
/// node's call trace of `tx`; `None` if the node serves no traces or none matches.
async fn traced_commit(
    provider: &DynProvider,
    tx: B256,
    settlement: Address,
    event: &Settlement::BatchCommitted,
) -> Option<Settlement::commitBatchCall> {
    let tracer = serde_json::json!({ "tracer": "callTracer" });
    let trace: serde_json::Value = match provider
        .raw_request("debug_traceTransaction".into(), (tx, tracer))
        .await
    {
        Ok(trace) => trace,
        Err(e) => {
            debug!(target: TARGET, %tx, error = %e, "no call trace; looking for the commit in the input");
            return None;
        }
    };
    let mut stack = vec![&trace];
    let mut seen = 0usize;
    while let Some(frame) = stack.pop() {
        seen += 1;
        if seen > TRACE_FRAMES_MAX {
            return None;
        }
        let to = frame
            .get("to")
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse::<Address>().ok());
        let call_type = frame.get("type").and_then(|v| v.as_str()).unwrap_or("CALL");
        if to == Some(settlement)
            && call_type.eq_ignore_ascii_case("CALL")
            && frame.get("error").is_none()
        {
            let input = frame
                .get("input")
                .and_then(|v| v.as_str())
                .and_then(|v| v.parse::<Bytes>().ok());
            if let Some(call) = input
                .and_then(|i| Settlement::commitBatchCall::abi_decode(&i).ok())
                .filter(|call| matches_event(call, event))
            {
                return Some(call);
            }
        }
        if let Some(calls) = frame.get("calls").and_then(|v| v.as_array()) {
            stack.extend(calls.iter().rev());
        }
    }
    None
}

/// A `commitBatch` call embedded verbatim in `input` (a multisig's or forwarder's calldata
/// carries the inner call as a `bytes` argument) that matches `event`.
fn embedded_commit(
    input: &[u8],
    event: &Settlement::BatchCommitted,
) -> Option<Settlement::commitBatchCall> {
    let selector = Settlement::commitBatchCall::SELECTOR;
    (0..input.len().saturating_sub(3))
        .filter(|&at| input.get(at..at + 4) == Some(&selector[..]))
        .filter_map(|at| Settlement::commitBatchCall::abi_decode(input.get(at..)?).ok())
        .find(|call| matches_event(call, event))
}

async fn retry<T, E, F, Fut>(what: &'static str, mut request: F) -> Result<T, SyncError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Into<Failure>,
{
    let mut pause = RPC_BACKOFF_FIRST;
    let mut attempt = 1;
    loop {
        let failure: Failure = match request().await {
            Ok(value) => return Ok(value),
            Err(e) => e.into(),
        };
        if !failure.transient || attempt >= RPC_ATTEMPTS_MAX {
            return Err(SyncError::Rpc(format!(
                "{what} (attempt {attempt} of {RPC_ATTEMPTS_MAX}): {}",
                failure.message
            )));
        }
        warn!(target: TARGET, request = what, attempt, retry_in_ms = pause.as_millis() as u64, error = %failure.message, "L2 RPC failed; retrying");
        tokio::time::sleep(pause).await;
        pause = pause.saturating_mul(2);
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stablelane_contracts::CallForwarder;

    fn commit(batch: u64, data: &[u8]) -> Settlement::commitBatchCall {
        Settlement::commitBatchCall {
            header: Settlement::BatchHeader {
                batchNumber: batch,
                prevRoot: B256::repeat_byte(1),
                newRoot: B256::repeat_byte(2),
                depositsConsumed: 0,
                depositsHash: B256::ZERO,
                forcedConsumed: 0,
                forcedHash: B256::ZERO,
                dataHash: keccak256(data),
            },
            data: Bytes::copy_from_slice(data),
        }
    }

    fn event_of(call: &Settlement::commitBatchCall) -> Settlement::BatchCommitted {
        Settlement::BatchCommitted {
            batchNumber: call.header.batchNumber,
            newRoot: call.header.newRoot,
            dataHash: call.header.dataHash,
            depositsConsumed: 0,
            forcedConsumed: 0,
            withdrawalCount: 0,
            withdrawalsRoot: B256::ZERO,
        }
    }

    #[test]
    fn a_commit_embedded_in_a_forwarders_input_is_found_only_if_it_matches_the_event() {
        let call = commit(7, &[2, 0, 0, 0, 0, 9, 9, 9]);
        let outer = CallForwarder::forwardCall {
            target: Address::repeat_byte(0x5e),
            data: call.abi_encode().into(),
        }
        .abi_encode();
        let event = event_of(&call);
        fn found(input: &[u8], event: &Settlement::BatchCommitted) -> Option<Vec<u8>> {
            embedded_commit(input, event).map(|c| c.abi_encode())
        }
        assert_eq!(found(&outer, &event), Some(call.abi_encode()));
        // Directly sent, the input is the call itself.
        assert_eq!(found(&call.abi_encode(), &event), Some(call.abi_encode()));

        // A look-alike: the same header but other data (its hash is not the event's).
        let mut other = call.clone();
        other.data = Bytes::from_static(&[2, 0, 0, 0, 0, 1]);
        let outer = CallForwarder::forwardCall {
            target: Address::repeat_byte(0x5e),
            data: other.abi_encode().into(),
        }
        .abi_encode();
        assert_eq!(found(&outer, &event), None);
        // Another batch's event.
        assert_eq!(found(&call.abi_encode(), &event_of(&commit(8, &[1]))), None);
        // Nothing to find.
        assert_eq!(found(&[], &event), None);
        assert_eq!(found(&Settlement::commitBatchCall::SELECTOR, &event), None);
    }
}
