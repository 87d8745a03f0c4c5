//! Batches: what the sequencer seals (a journaled, deterministic boundary in the record
//! sequence) and what the settler records about their life on-chain.
//!
//! A batch covers the records after the previous seal up to its own seal record. Sealing is
//! a journal record, so replaying the journal yields the same batches with the same data
//! byte for byte; the settler can always rebuild what it has to commit.

use alloy::primitives::{keccak256, Bytes, B256};
use serde::{Deserialize, Serialize};
use stablelane::rpc::{BatchInfo, BatchStatus, BatchWithdrawal};
use stablelane_contracts::batch_data::{Withdrawal, MAX_WITHDRAWALS_PER_BATCH};

/// Deposits one batch may consume (the contract's `MAX_DEPOSITS_PER_BATCH`).
pub const MAX_DEPOSITS_PER_BATCH: usize = 1024;
/// Default bound on a batch's data: leaves room under a 128 KiB transaction for the header,
/// ABI encoding and signature.
pub const DEFAULT_MAX_DATA_BYTES: usize = 100_000;
/// Largest data bound accepted.
pub const MAX_DATA_BYTES: usize = 120_000;
/// Smallest data bound accepted (a few records must fit).
pub const MIN_DATA_BYTES: usize = 4_096;
/// Most bytes one record can add to the batch data: a withdrawal (56) plus a few changed
/// and new slots; registering a viewing key re-salts one slot per token.
pub const RECORD_DATA_HEADROOM: usize = 1_024;

/// When the writer seals a batch on its own (the settler adds the age limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Seal once this many leaves changed (bounds calldata and commit gas: about 50 bytes
    /// per changed leaf).
    pub max_changed_slots: usize,
    /// Seal once this many withdrawals are waiting (at most the contract's 1,024).
    pub max_withdrawals: usize,
    /// Seal once this many deposits were consumed (at most the contract's 1,024).
    pub max_deposits: usize,
    /// Seal once the batch data would exceed this many bytes: L2 nodes refuse transactions
    /// above 128 KiB (geth's default), and a sealed batch cannot be split.
    pub max_data_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_changed_slots: 2_048,
            max_withdrawals: MAX_WITHDRAWALS_PER_BATCH,
            max_deposits: MAX_DEPOSITS_PER_BATCH,
            max_data_bytes: DEFAULT_MAX_DATA_BYTES,
        }
    }
}

impl BatchLimits {
    /// These limits clamped to what the contract accepts.
    pub fn clamped(self) -> Self {
        Self {
            max_changed_slots: self.max_changed_slots.max(1),
            max_withdrawals: self.max_withdrawals.clamp(1, MAX_WITHDRAWALS_PER_BATCH),
            max_deposits: self.max_deposits.clamp(1, MAX_DEPOSITS_PER_BATCH),
            max_data_bytes: self.max_data_bytes.clamp(MIN_DATA_BYTES, MAX_DATA_BYTES),
        }
    }
}

/// A sealed batch: the header fields the contract checks, its data, and the node's index
/// of what it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedBatch {
    /// Batch number.
    pub number: u64,
    /// Root before.
    pub prev_root: B256,
    /// Root after.
    pub new_root: B256,
    /// Deposits consumed after it.
    pub deposits_consumed: u64,
    /// Rolling deposit hash at `deposits_consumed`.
    pub deposits_hash: B256,
    /// Forced requests consumed after it.
    pub forced_consumed: u64,
    /// Rolling forced-request hash at `forced_consumed`.
    pub forced_hash: B256,
    /// First journal record it covers.
    pub first_sequence: u64,
    /// Its seal record.
    pub last_sequence: u64,
    /// Signed transactions in it.
    pub transaction_count: u64,
    /// Leaves changed.
    pub changed_slots: u32,
    /// Slots created.
    pub new_slots: u32,
    /// Withdrawals it pays out, in data order.
    pub withdrawals: Vec<BatchWithdrawal>,
    /// The batch data posted with the commit.
    pub data: Bytes,
}

impl SealedBatch {
    /// `keccak256(data)`.
    pub fn data_hash(&self) -> B256 {
        keccak256(&self.data)
    }

    /// The withdrawals as the contract sees them.
    pub fn contract_withdrawals(&self) -> Vec<Withdrawal> {
        self.withdrawals
            .iter()
            .map(BatchWithdrawal::on_chain)
            .collect()
    }

    /// The batch as `lane_getBatch` shows it, with what the settler knows.
    pub fn info(&self, chain: &BatchChainState) -> BatchInfo {
        BatchInfo {
            number: self.number,
            status: chain.status,
            prev_root: self.prev_root,
            new_root: self.new_root,
            deposits_consumed: self.deposits_consumed,
            forced_consumed: self.forced_consumed,
            data_hash: self.data_hash(),
            data_bytes: self.data.len() as u64,
            first_sequence: self.first_sequence,
            last_sequence: self.last_sequence,
            transaction_count: self.transaction_count,
            changed_slots: self.changed_slots,
            new_slots: self.new_slots,
            withdrawals: self.withdrawals.clone(),
            l2_tx_hash: chain.l2_tx_hash,
            l2_block: chain.l2_block,
            claimable_at: chain.claimable_at,
        }
    }
}

/// A commit transaction sent and not yet seen included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlight {
    /// The operator account's nonce it uses.
    pub nonce: u64,
    /// Every transaction sent with that nonce (replacements append), oldest first.
    pub tx_hashes: Vec<B256>,
    /// Fee cap of the latest.
    pub max_fee_per_gas: u128,
    /// Priority fee of the latest.
    pub max_priority_fee_per_gas: u128,
    /// Gas limit.
    pub gas_limit: u64,
    /// Unix time the latest was sent.
    pub sent_at_s: u64,
}

/// What the settler knows about a batch on-chain (kept in the store, reconciled with the
/// contract after every restart).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchChainState {
    /// Status.
    pub status: BatchStatus,
    /// The commit transaction once included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2_tx_hash: Option<B256>,
    /// Its block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2_block: Option<u64>,
    /// Unix time its withdrawals become claimable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimable_at: Option<u64>,
    /// A commit sent and not yet included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<InFlight>,
}

/// The settler's counters (shared through the [`Sequencer`](crate::Sequencer) handle so
/// `/metrics` can show them).
#[derive(Debug, Default)]
pub struct SettlerMetrics {
    /// Last batch the contract has committed, as last seen.
    pub last_committed: std::sync::atomic::AtomicU64,
    /// Last batch seen finalized.
    pub last_finalized: std::sync::atomic::AtomicU64,
    /// Commit transactions sent (replacements included).
    pub commits_sent: std::sync::atomic::AtomicU64,
    /// Replacements of a stuck commit with a higher fee.
    pub replacements: std::sync::atomic::AtomicU64,
    /// Commits refused by the contract (in simulation or mined and reverted).
    pub commit_refusals: std::sync::atomic::AtomicU64,
    /// Failed settler steps (L2 RPC errors and the like).
    pub step_failures: std::sync::atomic::AtomicU64,
}

/// The chain watcher's gauges (shared through the [`Sequencer`](crate::Sequencer) handle so
/// `/metrics` can show them).
#[derive(Debug, Default)]
pub struct WatcherMetrics {
    /// The finality mode the last step used: 0 none yet, 1 `finalized`, 2 `safe`,
    /// 3 `confirmations` (configured, or the fallback for an L2 without block tags).
    pub finality_mode: std::sync::atomic::AtomicU64,
    /// The finality head of the last step (the highest block acted on).
    pub finality_block: std::sync::atomic::AtomicU64,
    /// 1 while crediting is stopped because the contract's rolling hash at the ledger's
    /// consumed count differs from the ledger's own (deposits or forced requests), else 0.
    pub queue_mismatch: std::sync::atomic::AtomicU64,
    /// 1 while crediting is stopped because the second L2 RPC (`[chain]
    /// cross_check_rpc_url`) has another block at the finality head, else 0.
    pub cross_check_mismatch: std::sync::atomic::AtomicU64,
    /// Failed watcher steps (L2 RPC errors, mismatches, refusals).
    pub step_failures: std::sync::atomic::AtomicU64,
}
