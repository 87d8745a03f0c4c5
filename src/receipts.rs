//! Receipts: the operator's signed evidence of every slot state it acknowledged.
//!
//! Every record that changes a slot yields one [`Receipt`] per changed account (a transfer
//! two: the sender's and the recipient's resulting state; a withdrawal, a credited deposit
//! and a served forced request one). The node signs the receipts of each group commit at
//! once: one EIP-712 signature by the **receipt key** over a [`ReceiptGroup`], whose `root`
//! is the keccak Merkle root ([`stablelane_contracts::merkle`]) over the receipts'
//! EIP-712 struct hashes, in journal order. Each wallet gets its own receipts with their
//! index and sibling path ([`SignedReceipt`]); [`SignedReceipt::verify`] checks one
//! against the receipt signer in the lane's domain, as the contract's `Receipts.verify` does.
//!
//! ```text
//! ReceiptEntry(uint64 sequence,bytes32 txHash,uint8 kind,address owner,address token,uint32 slot,uint128 balance,uint64 nonce,uint64 depositsConsumed,uint64 forcedConsumed)
//! ReceiptGroup(bytes32 root,uint64 firstSequence,uint64 lastSequence,uint32 count)
//! ```
//!
//! `depositsConsumed` and `forcedConsumed` are the numbers of deposit-queue and
//! forced-queue entries the ledger had consumed right after the record: what the contract
//! needs to place the receipt against its own queues.

use alloy::{
    primitives::{Address, Signature, B256},
    signers::local::PrivateKeySigner,
    sol_types::Eip712Domain,
};
use serde::{Deserialize, Serialize};
use stablelane_contracts::merkle::{self, MerkleTree};

use crate::{
    messages::{cached_type_hash, struct_hash, typed_data_hash},
    signing::{recover, sign_hash_fast, SignatureError},
    Amount, Nonce, SequenceNumber, SlotIndex, TxHash,
};

/// The `sol!` definitions that fix the receipts' EIP-712 type strings.
pub mod sol {
    #![allow(missing_docs)]
    alloy::sol! {
        struct ReceiptEntry {
            uint64 sequence;
            bytes32 txHash;
            uint8 kind;
            address owner;
            address token;
            uint32 slot;
            uint128 balance;
            uint64 nonce;
            uint64 depositsConsumed;
            uint64 forcedConsumed;
        }

        struct ReceiptGroup {
            bytes32 root;
            uint64 firstSequence;
            uint64 lastSequence;
            uint32 count;
        }
    }
}

/// Which change of a slot a receipt records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReceiptKind {
    /// The signer of a transfer or withdrawal (its slot after paying).
    Sender,
    /// The payee of a transfer (its slot after being paid).
    Recipient,
    /// The recipient of a credited deposit.
    Deposit,
    /// The owner of a served forced-withdrawal request (its slot after the payout).
    Forced,
}

impl ReceiptKind {
    /// The `uint8` the signed entry carries.
    pub const fn code(self) -> u8 {
        match self {
            Self::Sender => 0,
            Self::Recipient => 1,
            Self::Deposit => 2,
            Self::Forced => 3,
        }
    }

    /// The kind of a code, `None` for an unknown one.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Sender),
            1 => Some(Self::Recipient),
            2 => Some(Self::Deposit),
            3 => Some(Self::Forced),
            _ => None,
        }
    }

    /// `"sender"`, `"recipient"`, `"deposit"` or `"forced"`, as the JSON says it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sender => "sender",
            Self::Recipient => "recipient",
            Self::Deposit => "deposit",
            Self::Forced => "forced",
        }
    }
}

/// One acknowledged slot state: a leaf of its group's receipt tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Receipt {
    /// The journal record that produced this state.
    pub sequence: SequenceNumber,
    /// The signed transaction (transfer or withdrawal); zero for a deposit or forced request.
    pub tx_hash: TxHash,
    /// What changed the slot.
    pub kind: ReceiptKind,
    /// The slot's owner.
    pub owner: Address,
    /// The slot's token.
    pub token: Address,
    /// The slot's index in the state tree.
    pub slot: SlotIndex,
    /// Its balance right after the record.
    pub balance: Amount,
    /// Its nonce right after the record.
    pub nonce: Nonce,
    /// Deposit-queue entries the ledger had consumed right after the record.
    pub deposits_consumed: u64,
    /// Forced-queue entries the ledger had consumed right after the record.
    pub forced_consumed: u64,
}

impl Receipt {
    /// The `sol!` form.
    pub fn to_sol(&self) -> sol::ReceiptEntry {
        sol::ReceiptEntry {
            sequence: self.sequence.get(),
            txHash: self.tx_hash.0,
            kind: self.kind.code(),
            owner: self.owner,
            token: self.token,
            slot: self.slot.get(),
            balance: self.balance.base_units(),
            nonce: self.nonce.get(),
            depositsConsumed: self.deposits_consumed,
            forcedConsumed: self.forced_consumed,
        }
    }

    /// Its leaf in the group tree: the EIP-712 struct hash of `ReceiptEntry`.
    pub fn leaf(&self) -> B256 {
        struct_hash(cached_type_hash!(sol::ReceiptEntry), &self.to_sol())
    }
}

/// What the receipt key signs per group commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiptGroup {
    /// Merkle root over the group's receipt leaves.
    pub root: B256,
    /// The first receipt's journal record.
    pub first_sequence: SequenceNumber,
    /// The last receipt's journal record.
    pub last_sequence: SequenceNumber,
    /// Receipts in the group (≥ 1).
    pub count: u32,
}

impl ReceiptGroup {
    /// The `sol!` form.
    pub fn to_sol(&self) -> sol::ReceiptGroup {
        sol::ReceiptGroup {
            root: self.root,
            firstSequence: self.first_sequence.get(),
            lastSequence: self.last_sequence.get(),
            count: self.count,
        }
    }

    /// The EIP-712 digest the receipt key signs, in the domain whose separator is given.
    pub fn signing_hash_in(&self, separator: &B256) -> B256 {
        typed_data_hash(
            separator,
            cached_type_hash!(sol::ReceiptGroup),
            &self.to_sol(),
        )
    }

    /// The EIP-712 digest in `domain`.
    pub fn signing_hash(&self, domain: &Eip712Domain) -> B256 {
        self.signing_hash_in(&domain.separator())
    }
}

/// A receipt as a wallet holds it: the entry, where it sits in its group, and the group's
/// signature. Enough for the contract to check it (`Receipts.verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedReceipt {
    /// The receipt.
    pub receipt: Receipt,
    /// Its leaf index in the group.
    pub index: u32,
    /// Sibling hashes from its leaf up to the group root.
    pub path: Vec<B256>,
    /// The signed group.
    pub group: ReceiptGroup,
    /// The receipt key's EIP-712 signature over `group`.
    #[serde(with = "crate::messages::signature_hex")]
    pub signature: Signature,
}

/// Why a receipt does not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The index is not below the group's count.
    #[error("receipt index {index} is outside a group of {count}")]
    IndexOutOfRange {
        /// The receipt's index.
        index: u32,
        /// The group's count.
        count: u32,
    },
    /// The path is not as long as the group's tree is deep.
    #[error("receipt path has {got} hashes, a group of {count} needs {expected}")]
    PathLength {
        /// The depth of the group's tree.
        expected: usize,
        /// The path's length.
        got: usize,
        /// The group's count.
        count: u32,
    },
    /// The entry and path do not lead to the signed root.
    #[error("receipt does not lead to the group's root")]
    RootMismatch,
    /// The entry's sequence is outside the group's range.
    #[error("receipt sequence {sequence} is outside its group's {first}..={last}")]
    SequenceOutside {
        /// The entry's sequence.
        sequence: u64,
        /// The group's first sequence.
        first: u64,
        /// The group's last sequence.
        last: u64,
    },
    /// The group signature is not the receipt signer's.
    #[error("group signature: {0}")]
    Signature(#[from] SignatureError),
}

impl SignedReceipt {
    /// Checks that `signer` (the deployment's receipt signer) signed a group in `domain`
    /// that holds this receipt at its index.
    ///
    /// # Errors
    ///
    /// The first check that fails, as [`ReceiptError`].
    pub fn verify(&self, signer: Address, domain: &Eip712Domain) -> Result<(), ReceiptError> {
        self.verify_in(signer, &domain.separator())
    }

    /// [`verify`](Self::verify) with the domain's separator computed by the caller.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify).
    pub fn verify_in(&self, signer: Address, separator: &B256) -> Result<(), ReceiptError> {
        let group = &self.group;
        if self.index >= group.count {
            return Err(ReceiptError::IndexOutOfRange {
                index: self.index,
                count: group.count,
            });
        }
        let expected = merkle::depth(group.count as usize);
        if self.path.len() != expected {
            return Err(ReceiptError::PathLength {
                expected,
                got: self.path.len(),
                count: group.count,
            });
        }
        let sequence = self.receipt.sequence;
        if sequence < group.first_sequence || sequence > group.last_sequence {
            return Err(ReceiptError::SequenceOutside {
                sequence: sequence.get(),
                first: group.first_sequence.get(),
                last: group.last_sequence.get(),
            });
        }
        if merkle::root_from_path(self.receipt.leaf(), self.index as usize, &self.path)
            != group.root
        {
            return Err(ReceiptError::RootMismatch);
        }
        let recovered = recover(&self.signature, &group.signing_hash_in(separator))?;
        if recovered != signer {
            return Err(SignatureError::WrongSigner {
                expected: signer,
                recovered,
            }
            .into());
        }
        Ok(())
    }
}

/// The receipts of one group commit, signed: hands out each one with its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedGroup {
    /// The signed header.
    pub group: ReceiptGroup,
    /// The receipt key's signature over it.
    pub signature: Signature,
    /// The receipts, in leaf order.
    pub receipts: Vec<Receipt>,
    tree: MerkleTree,
}

/// Why a group could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// No receipts.
    #[error("a receipt group needs at least one receipt")]
    Empty,
    /// More receipts than a `uint32` counts.
    #[error("{0} receipts do not fit one group")]
    TooLarge(usize),
    /// The receipts are not in journal order.
    #[error("receipts out of journal order at index {0}")]
    OutOfOrder(usize),
    /// Signing failed.
    #[error(transparent)]
    Signing(#[from] SignatureError),
}

impl SignedGroup {
    /// Builds the tree over `receipts` (in journal order) and signs its group with `key` in
    /// the domain whose separator is given.
    ///
    /// # Errors
    ///
    /// [`GroupError`] for an empty, oversized or unordered list, or a failed signature.
    pub fn sign(
        receipts: Vec<Receipt>,
        key: &PrivateKeySigner,
        separator: &B256,
    ) -> Result<Self, GroupError> {
        let (first, last) = match (receipts.first(), receipts.last()) {
            (Some(first), Some(last)) => (first.sequence, last.sequence),
            _ => return Err(GroupError::Empty),
        };
        let count =
            u32::try_from(receipts.len()).map_err(|_| GroupError::TooLarge(receipts.len()))?;
        if let Some(i) = receipts
            .windows(2)
            .position(|pair| pair[1].sequence < pair[0].sequence)
        {
            return Err(GroupError::OutOfOrder(i + 1));
        }
        let tree = MerkleTree::new(receipts.iter().map(Receipt::leaf).collect());
        let group = ReceiptGroup {
            root: tree.root(),
            first_sequence: first,
            last_sequence: last,
            count,
        };
        let signature = sign_hash_fast(key, &group.signing_hash_in(separator))?;
        Ok(Self {
            group,
            signature,
            receipts,
            tree,
        })
    }

    /// A group whose header and signature were stored, rebuilt from its receipts' leaves
    /// (the receipts themselves are not needed to hand out paths). `None` if the leaves do
    /// not lead to the stored root.
    pub fn from_leaves(
        group: ReceiptGroup,
        signature: Signature,
        leaves: Vec<B256>,
    ) -> Option<Self> {
        let tree = MerkleTree::new(leaves);
        (tree.root() == group.root && tree.leaves().len() == group.count as usize).then_some(Self {
            group,
            signature,
            receipts: Vec::new(),
            tree,
        })
    }

    /// The leaves, in order.
    pub fn leaves(&self) -> &[B256] {
        self.tree.leaves()
    }

    /// `receipt` (the one at `index`) with its path and the group's signature; `None` when
    /// `index` is out of range.
    pub fn signed(&self, receipt: Receipt, index: u32) -> Option<SignedReceipt> {
        Some(SignedReceipt {
            receipt,
            index,
            path: self.tree.path(index as usize)?,
            group: self.group,
            signature: self.signature,
        })
    }

    /// The receipt at `index` of a group built by [`sign`](Self::sign), signed.
    pub fn receipt(&self, index: u32) -> Option<SignedReceipt> {
        let receipt = self.receipts.get(index as usize)?.clone();
        self.signed(receipt, index)
    }
}

#[cfg(test)]
mod tests {
    use alloy::sol_types::SolStruct;

    use super::*;

    fn receipt(sequence: u64, kind: ReceiptKind, owner: u8) -> Receipt {
        Receipt {
            sequence: SequenceNumber(sequence),
            tx_hash: TxHash(B256::repeat_byte(sequence as u8)),
            kind,
            owner: Address::repeat_byte(owner),
            token: Address::repeat_byte(0xee),
            slot: SlotIndex(u32::from(owner)),
            balance: Amount(1_000 + u128::from(owner)),
            nonce: Nonce(sequence),
            deposits_consumed: 3,
            forced_consumed: 1,
        }
    }

    fn key() -> PrivateKeySigner {
        PrivateKeySigner::from_bytes(&B256::repeat_byte(0x42)).unwrap()
    }

    #[test]
    fn hashes_are_the_eip712_ones() {
        let d = crate::domain(31337, Address::repeat_byte(9));
        let r = receipt(4, ReceiptKind::Recipient, 7);
        assert_eq!(r.leaf(), r.to_sol().eip712_hash_struct());
        let g = ReceiptGroup {
            root: B256::repeat_byte(3),
            first_sequence: SequenceNumber(2),
            last_sequence: SequenceNumber(9),
            count: 5,
        };
        assert_eq!(g.signing_hash(&d), g.to_sol().eip712_signing_hash(&d));
        assert_eq!(
            sol::ReceiptEntry::eip712_encode_type(),
            "ReceiptEntry(uint64 sequence,bytes32 txHash,uint8 kind,address owner,address token,uint32 slot,uint128 balance,uint64 nonce,uint64 depositsConsumed,uint64 forcedConsumed)"
        );
        assert_eq!(
            sol::ReceiptGroup::eip712_encode_type(),
            "ReceiptGroup(bytes32 root,uint64 firstSequence,uint64 lastSequence,uint32 count)"
        );
        for code in 0..=4u8 {
            assert_eq!(
                ReceiptKind::from_code(code).map(ReceiptKind::code),
                (code < 4).then_some(code)
            );
        }
    }

    #[test]
    fn every_receipt_of_a_group_verifies_and_a_changed_one_does_not() {
        let d = crate::domain(31337, Address::repeat_byte(9));
        let sep = d.separator();
        let key = key();
        for n in 1..=9u64 {
            let receipts: Vec<Receipt> = (0..n)
                .map(|i| {
                    receipt(
                        10 + i / 2,
                        if i % 2 == 0 {
                            ReceiptKind::Sender
                        } else {
                            ReceiptKind::Recipient
                        },
                        i as u8,
                    )
                })
                .collect();
            let group = SignedGroup::sign(receipts, &key, &sep).unwrap();
            for i in 0..n as u32 {
                let signed = group.receipt(i).unwrap();
                signed.verify(key.address(), &d).unwrap();
                // Through JSON, as a wallet gets it.
                let json = serde_json::to_string(&signed).unwrap();
                let back: SignedReceipt = serde_json::from_str(&json).unwrap();
                back.verify(key.address(), &d).unwrap();

                let mut changed = signed.clone();
                changed.receipt.balance = Amount(changed.receipt.balance.base_units() + 1);
                assert_eq!(
                    changed.verify(key.address(), &d),
                    Err(ReceiptError::RootMismatch)
                );
                let mut moved = signed.clone();
                moved.index = (i + 1) % n as u32;
                if n > 1 {
                    assert!(moved.verify(key.address(), &d).is_err());
                }
                let mut outside = signed.clone();
                outside.index = n as u32;
                assert!(matches!(
                    outside.verify(key.address(), &d),
                    Err(ReceiptError::IndexOutOfRange { .. })
                ));
                let mut short = signed.clone();
                short.path.push(B256::ZERO);
                assert!(matches!(
                    short.verify(key.address(), &d),
                    Err(ReceiptError::PathLength { .. })
                ));
                assert!(matches!(
                    signed.verify(Address::repeat_byte(1), &d),
                    Err(ReceiptError::Signature(SignatureError::WrongSigner { .. }))
                ));
                let other = crate::domain(1, Address::repeat_byte(9));
                assert!(signed.verify(key.address(), &other).is_err());
            }
            let rebuilt =
                SignedGroup::from_leaves(group.group, group.signature, group.leaves().to_vec())
                    .unwrap();
            let r = group.receipts[0].clone();
            assert_eq!(rebuilt.signed(r, 0), group.receipt(0));
        }
    }

    /// The vector `contracts/test/ReceiptVector.t.sol` wrote from the Solidity side
    /// (`Receipts.sol`): the same leaves, root, digest, signature and paths here.
    #[test]
    fn the_solidity_receipt_vector_is_reproduced() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/contracts/test/fixtures/receipt_vector.json"
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let b256 = |x: &serde_json::Value| x.as_str().unwrap().parse::<B256>().unwrap();
        let domain = crate::domain(
            v["domain"]["chainId"].as_u64().unwrap(),
            v["domain"]["verifyingContract"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        );
        assert_eq!(domain.separator(), b256(&v["domainSeparator"]));
        let receipts: Vec<Receipt> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| Receipt {
                sequence: SequenceNumber(e["sequence"].as_u64().unwrap()),
                tx_hash: TxHash(b256(&e["txHash"])),
                kind: ReceiptKind::from_code(e["kind"].as_u64().unwrap() as u8).unwrap(),
                owner: e["owner"].as_str().unwrap().parse().unwrap(),
                token: e["token"].as_str().unwrap().parse().unwrap(),
                slot: SlotIndex(e["slot"].as_u64().unwrap() as u32),
                balance: Amount(e["balance"].as_str().unwrap().parse().unwrap()),
                nonce: Nonce(e["nonce"].as_u64().unwrap()),
                deposits_consumed: e["depositsConsumed"].as_u64().unwrap(),
                forced_consumed: e["forcedConsumed"].as_u64().unwrap(),
            })
            .collect();
        let leaves: Vec<B256> = v["leaves"].as_array().unwrap().iter().map(b256).collect();
        assert_eq!(
            receipts.iter().map(Receipt::leaf).collect::<Vec<_>>(),
            leaves
        );
        let key: PrivateKeySigner = v["signerPrivateKey"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            key.address(),
            v["signer"].as_str().unwrap().parse::<Address>().unwrap()
        );
        let group = SignedGroup::sign(receipts, &key, &domain.separator()).unwrap();
        assert_eq!(group.group.root, b256(&v["group"]["root"]));
        assert_eq!(
            group.group.count as u64,
            v["group"]["count"].as_u64().unwrap()
        );
        assert_eq!(group.group.signing_hash(&domain), b256(&v["digest"]));
        assert_eq!(
            alloy::primitives::hex::encode_prefixed(group.signature.as_bytes()),
            v["signature"].as_str().unwrap().to_lowercase()
        );
        for (i, path) in v["paths"].as_array().unwrap().iter().enumerate() {
            let signed = group.receipt(i as u32).unwrap();
            assert_eq!(
                signed.path,
                path.as_array()
                    .unwrap()
                    .iter()
                    .map(b256)
                    .collect::<Vec<_>>()
            );
            signed.verify(key.address(), &domain).unwrap();
        }
    }

    #[test]
    fn groups_refuse_empty_and_unordered_lists() {
        let sep = B256::ZERO;
        assert_eq!(
            SignedGroup::sign(Vec::new(), &key(), &sep),
            Err(GroupError::Empty)
        );
        let unordered = vec![
            receipt(5, ReceiptKind::Sender, 1),
            receipt(4, ReceiptKind::Sender, 2),
        ];
        assert_eq!(
            SignedGroup::sign(unordered, &key(), &sep),
            Err(GroupError::OutOfOrder(1))
        );
    }
}
