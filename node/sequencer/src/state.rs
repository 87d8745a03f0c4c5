//! The node's state: the ledger and the Poseidon state tree over its slots' leaf hashes, as a
//! deterministic function of the journal's records.
//!
//! Leaf hashes are computed lazily: applying a record marks the slots it changed, and the
//! tree catches up (each changed leaf hashed once, in parallel) when the root is asked for.
//! Only the live path hashes a leaf at once, for the sender's receipt. Receipts are not kept
//! here; the sequencer's [`Store`](crate::store::Store) indexes them.

use std::collections::BTreeMap;

use alloy::{
    primitives::{Address, B256},
    sol_types::Eip712Domain,
};
use rayon::prelude::*;
use stablelane::{
    signing::viewing_key_from_signature, Message, Receipt, SequenceNumber, SlotIndex, TxHash,
};
use stablelane_circuits::{
    field::{fr_from_be_bytes, fr_to_be_bytes},
    leaf::leaf_hash,
    tree::{SlotIndex as TreeIndex, StateTree},
    Fr,
};
use stablelane_ledger::{Effects, Ledger, LedgerConfig, PayOut, Rejection};

use crate::record::JournalRecord;

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
}

/// The result of applying one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// What the ledger changed.
    pub effects: Effects,
    /// The transaction hash of a signed transaction (transfer or withdrawal).
    pub tx_hash: Option<TxHash>,
    /// The receipt of a signed transaction, when asked for.
    pub receipt: Option<Receipt>,
    /// The other party a transaction concerns: a transfer's recipient.
    pub counterparty: Option<Address>,
}

/// Ledger + tree.
#[derive(Debug)]
pub struct State {
    ledger: Ledger,
    domain: Eip712Domain,
    tree: StateTree,
    /// Slots changed since the tree was last brought up to date, with their new leaf when
    /// it was already hashed (for a receipt).
    pending: BTreeMap<u32, Option<Fr>>,
    pay_outs: Vec<PayOut>,
    last_seq: SequenceNumber,
}

impl State {
    /// An empty state.
    pub fn new(config: LedgerConfig, domain: Eip712Domain) -> Self {
        Self {
            ledger: Ledger::new(config),
            domain,
            tree: StateTree::new(),
            pending: BTreeMap::new(),
            pay_outs: Vec::new(),
            last_seq: SequenceNumber(0),
        }
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The EIP-712 domain transactions are signed in.
    pub fn domain(&self) -> &Eip712Domain {
        &self.domain
    }

    /// Sequence number of the last applied record.
    pub fn last_seq(&self) -> SequenceNumber {
        self.last_seq
    }

    /// Withdrawals accepted so far that a batch must pay out, in order.
    pub fn pay_outs(&self) -> &[PayOut] {
        &self.pay_outs
    }

    /// The current leaf hash of a slot (hashed now if the tree has not caught up with it).
    pub fn leaf(&self, slot: SlotIndex) -> Option<B256> {
        if slot.get() >= self.ledger.slot_count() {
            return None;
        }
        let leaf = match self.pending.get(&slot.get()) {
            Some(Some(leaf)) => *leaf,
            Some(None) => self.slot_leaf(slot).ok()?,
            None => self.tree.leaf(TreeIndex::new(slot.get())),
        };
        Some(B256::from(fr_to_be_bytes(&leaf)))
    }

    /// Heap bytes held by the tree (for memory reports).
    pub fn tree_heap_bytes(&self) -> usize {
        self.tree.heap_bytes()
    }

    /// The state root, bringing the tree up to date with every applied record: each changed
    /// leaf is hashed once (in parallel) and each node above the changes rehashed once.
    pub fn root(&mut self) -> Result<B256, ApplyError> {
        if !self.pending.is_empty() {
            let pending: Vec<(u32, Option<Fr>)> =
                std::mem::take(&mut self.pending).into_iter().collect();
            let changes = pending
                .into_par_iter()
                .map(|(i, known)| {
                    let leaf = match known {
                        Some(leaf) => leaf,
                        None => self.slot_leaf(SlotIndex(i))?,
                    };
                    Ok((TreeIndex::new(i), leaf))
                })
                .collect::<Result<Vec<_>, ApplyError>>()?;
            self.tree
                .update_batch(&changes)
                .map_err(|e| ApplyError::Tree(e.to_string()))?;
        }
        Ok(B256::from(fr_to_be_bytes(&self.tree.root())))
    }

    /// Applies `record`, journaled (or about to be) at `seq`. A refused record changes
    /// nothing. With `with_receipt`, a signed transaction's receipt is built (hashing the
    /// sender's new leaf); replay of records whose receipts are already indexed skips it.
    pub fn apply(
        &mut self,
        record: &JournalRecord,
        seq: SequenceNumber,
        with_receipt: bool,
    ) -> Result<Applied, ApplyError> {
        let (effects, signed, counterparty) = match record {
            JournalRecord::Deposit { deposit } => (self.ledger.apply_deposit(deposit)?, None, None),
            JournalRecord::Transfer { tx, accepted_at_s } => {
                let effects = self.ledger.apply_transfer(&tx.message, *accepted_at_s)?;
                let hash = TxHash(tx.message.signing_hash(&self.domain));
                (
                    effects,
                    Some((hash, tx.message.from, tx.message.token)),
                    Some(tx.message.to),
                )
            }
            JournalRecord::Withdrawal { tx, accepted_at_s } => {
                let effects = self.ledger.apply_withdrawal(&tx.message, *accepted_at_s)?;
                let hash = TxHash(tx.message.signing_hash(&self.domain));
                (
                    effects,
                    Some((hash, tx.message.from, tx.message.token)),
                    None,
                )
            }
            JournalRecord::ForcedWithdrawal { request } => {
                (self.ledger.apply_forced_withdrawal(request)?, None, None)
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
            self.pending.insert(slot.get(), None);
        }
        if let Some(pay_out) = effects.pay_out {
            self.pay_outs.push(pay_out);
        }
        let (tx_hash, receipt) = match signed {
            Some((hash, owner, token)) if with_receipt => {
                (Some(hash), Some(self.receipt_for(hash, seq, owner, token)?))
            }
            Some((hash, _, _)) => (Some(hash), None),
            None => (None, None),
        };
        Ok(Applied {
            effects,
            tx_hash,
            receipt,
            counterparty,
        })
    }

    fn receipt_for(
        &mut self,
        hash: TxHash,
        seq: SequenceNumber,
        owner: Address,
        token: Address,
    ) -> Result<Receipt, ApplyError> {
        let slot = self
            .ledger
            .slot_index(owner, token)
            .ok_or(ApplyError::Rejected(Rejection::UnknownAccount))?;
        let leaf = self.slot_leaf(slot)?;
        self.pending.insert(slot.get(), Some(leaf));
        let state = self
            .ledger
            .slot(slot)
            .ok_or(ApplyError::Rejected(Rejection::UnknownAccount))?;
        Ok(Receipt {
            tx_hash: hash,
            sequence: seq,
            owner,
            token,
            slot,
            balance: state.balance,
            nonce: state.nonce,
            leaf: B256::from(fr_to_be_bytes(&leaf)),
        })
    }

    /// The leaf hash of ledger slot `slot`: Poseidon(owner, token, balance, nonce, salt).
    fn slot_leaf(&self, slot: SlotIndex) -> Result<Fr, ApplyError> {
        let state = self
            .ledger
            .slot(slot)
            .ok_or(ApplyError::Rejected(Rejection::UnknownAccount))?;
        let salt = fr_from_be_bytes(&state.salt.0).map_err(|e| ApplyError::Tree(e.to_string()))?;
        Ok(leaf_hash(
            state.owner.0 .0,
            state.token.0 .0,
            state.balance.base_units(),
            state.nonce.get(),
            salt,
        ))
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
