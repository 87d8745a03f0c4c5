//! The node's state: the ledger, the leaf hash of every slot, the Poseidon state tree and
//! the receipts index, as a deterministic function of the journal's records.

use std::collections::{BTreeMap, HashMap};

use alloy::{
    primitives::{Address, B256},
    sol_types::Eip712Domain,
};
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
    /// The receipt of a signed transaction (transfer or withdrawal).
    pub receipt: Option<Receipt>,
}

/// Ledger + leaves + tree + receipts.
#[derive(Debug)]
pub struct State {
    ledger: Ledger,
    domain: Eip712Domain,
    leaves: Vec<Fr>,
    tree: StateTree,
    /// Leaves changed since the tree was last brought up to date.
    dirty: BTreeMap<u32, Fr>,
    receipts: HashMap<TxHash, Receipt>,
    pay_outs: Vec<PayOut>,
    last_seq: SequenceNumber,
}

impl State {
    /// An empty state.
    pub fn new(config: LedgerConfig, domain: Eip712Domain) -> Self {
        Self {
            ledger: Ledger::new(config),
            domain,
            leaves: Vec::new(),
            tree: StateTree::new(),
            dirty: BTreeMap::new(),
            receipts: HashMap::new(),
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

    /// The receipt of an accepted transaction.
    pub fn receipt(&self, hash: &TxHash) -> Option<&Receipt> {
        self.receipts.get(hash)
    }

    /// Number of accepted signed transactions.
    pub fn transaction_count(&self) -> usize {
        self.receipts.len()
    }

    /// Withdrawals accepted so far that a batch must pay out, in order.
    pub fn pay_outs(&self) -> &[PayOut] {
        &self.pay_outs
    }

    /// The leaf hash of a slot.
    pub fn leaf(&self, slot: SlotIndex) -> Option<B256> {
        self.leaves
            .get(slot.get() as usize)
            .map(|f| B256::from(fr_to_be_bytes(f)))
    }

    /// The state root, bringing the tree up to date with every applied record (each changed
    /// leaf's path rehashed once).
    pub fn root(&mut self) -> Result<B256, ApplyError> {
        if !self.dirty.is_empty() {
            let changes: Vec<(TreeIndex, Fr)> = std::mem::take(&mut self.dirty)
                .into_iter()
                .map(|(i, f)| (TreeIndex::new(i), f))
                .collect();
            self.tree
                .update_batch(&changes)
                .map_err(|e| ApplyError::Tree(e.to_string()))?;
        }
        Ok(B256::from(fr_to_be_bytes(&self.tree.root())))
    }

    /// Applies `record`, journaled (or about to be) at `seq`. A refused record changes
    /// nothing.
    pub fn apply(
        &mut self,
        record: &JournalRecord,
        seq: SequenceNumber,
    ) -> Result<Applied, ApplyError> {
        let (effects, signed) = match record {
            JournalRecord::Deposit { deposit } => (self.ledger.apply_deposit(deposit)?, None),
            JournalRecord::Transfer { tx, accepted_at_s } => {
                let effects = self.ledger.apply_transfer(&tx.message, *accepted_at_s)?;
                let hash = TxHash(tx.message.signing_hash(&self.domain));
                (effects, Some((hash, tx.message.from, tx.message.token)))
            }
            JournalRecord::Withdrawal { tx, accepted_at_s } => {
                let effects = self.ledger.apply_withdrawal(&tx.message, *accepted_at_s)?;
                let hash = TxHash(tx.message.signing_hash(&self.domain));
                (effects, Some((hash, tx.message.from, tx.message.token)))
            }
            JournalRecord::ForcedWithdrawal { request } => {
                (self.ledger.apply_forced_withdrawal(request)?, None)
            }
            JournalRecord::RegisterViewingKey { owner, signature } => (
                self.ledger
                    .register_viewing_key(*owner, viewing_key_from_signature(signature))?,
                None,
            ),
        };
        self.last_seq = seq;
        for slot in &effects.changed {
            self.refresh_leaf(*slot)?;
        }
        if let Some(pay_out) = effects.pay_out {
            self.pay_outs.push(pay_out);
        }
        let receipt = match signed {
            Some((hash, owner, token)) => {
                let receipt = self.receipt_for(hash, seq, owner, token)?;
                self.receipts.insert(hash, receipt.clone());
                Some(receipt)
            }
            None => None,
        };
        Ok(Applied { effects, receipt })
    }

    fn receipt_for(
        &self,
        hash: TxHash,
        seq: SequenceNumber,
        owner: Address,
        token: Address,
    ) -> Result<Receipt, ApplyError> {
        let slot = self
            .ledger
            .slot_index(owner, token)
            .ok_or(ApplyError::Rejected(Rejection::UnknownAccount))?;
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
            leaf: self.leaf(slot).unwrap_or_default(),
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

    fn refresh_leaf(&mut self, slot: SlotIndex) -> Result<(), ApplyError> {
        let leaf = self.slot_leaf(slot)?;
        let index = slot.get() as usize;
        match index.cmp(&self.leaves.len()) {
            std::cmp::Ordering::Less => {
                if let Some(l) = self.leaves.get_mut(index) {
                    *l = leaf;
                }
            }
            std::cmp::Ordering::Equal => self.leaves.push(leaf),
            std::cmp::Ordering::Greater => {
                return Err(ApplyError::Tree(format!(
                    "slot {index} created out of order"
                )))
            }
        }
        self.dirty.insert(slot.get(), leaf);
        Ok(())
    }

    /// Recomputes the root from scratch from the ledger's slots, ignoring the cached leaves
    /// and tree: a cross-check for tests (and, once sled holds materialised state, for
    /// checking it against the journal at start-up).
    pub fn recompute_root(&self) -> Result<B256, ApplyError> {
        let leaves = (0..self.ledger.slot_count())
            .map(|i| self.slot_leaf(SlotIndex(i)))
            .collect::<Result<Vec<Fr>, _>>()?;
        let tree = StateTree::from_leaves(leaves).map_err(|e| ApplyError::Tree(e.to_string()))?;
        Ok(B256::from(fr_to_be_bytes(&tree.root())))
    }
}
