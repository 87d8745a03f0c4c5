//! The byte layouts and hashes the settlement contract checks, mirrored in Rust.
//!
//! - deposit queue rolling hash: `keccak256(prev ‖ recipient ‖ token ‖ amount_u128)`
//! - forced-request rolling hash: `keccak256(prev ‖ owner ‖ token ‖ recipient)`
//! - batch data, version 3: `version u8 ‖ n u32 BE ‖ n × (recipient ‖ token ‖ amount u128 BE)
//!   ‖ m u32 BE ‖ m × refused deposit queue index u64 BE ‖ rest`, where `rest` is the
//!   node-defined body of [`crate::batch_body`] (the contract reads the withdrawal and
//!   refused-deposit sections and hashes the whole data; version 3 added the refused section)
//! - withdrawal leaf: `keccak256(index_u32 ‖ recipient ‖ token ‖ amount_u128)`, tree where a
//!   node without a right sibling pairs with zero, depth `ceil(log2 n)`.

use alloy::primitives::{keccak256, Address, B256};

use crate::merkle::MerkleTree;

/// Version byte of the batch data layout (the contract's `DATA_VERSION`). Version 2 had no
/// refused-deposit section, version 1 a fixed-width body (4-byte slots, 24-byte notes);
/// neither is read or written any more.
pub const DATA_VERSION: u8 = 3;
/// Bytes of one encoded withdrawal.
pub const WITHDRAWAL_BYTES: usize = 56;
/// Largest number of withdrawals the contract accepts in one batch.
pub const MAX_WITHDRAWALS_PER_BATCH: usize = 1024;
/// Bytes of one refused-deposit queue index.
pub const REFUSED_BYTES: usize = 8;
/// Largest number of deposits (hence of refused deposits) one batch may consume.
pub const MAX_DEPOSITS_PER_BATCH: usize = 1024;
/// Bytes of the fixed part of the sections the contract reads: version, withdrawal count and
/// refused-deposit count.
pub const CONTRACT_SECTIONS_HEADER_BYTES: usize = 1 + 4 + 4;

/// Batch data split into its sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchData<'a> {
    /// The withdrawals, in claim-index order.
    pub withdrawals: Vec<Withdrawal>,
    /// Queue indices of the deposits the batch consumed as refused, strictly increasing.
    pub refused: Vec<u64>,
    /// The node-defined body.
    pub rest: &'a [u8],
}

/// One withdrawal of a batch, as the contract pays it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Withdrawal {
    /// Who receives the tokens on-chain.
    pub recipient: Address,
    /// ERC-20 token address.
    pub token: Address,
    /// Amount in the token's base units.
    pub amount_base_units: u128,
}

/// Rolling hash of the deposit queue after appending one deposit.
pub fn deposit_hash(prev: B256, recipient: Address, token: Address, amount: u128) -> B256 {
    let mut buf = [0u8; 32 + 20 + 20 + 16];
    buf[..32].copy_from_slice(prev.as_slice());
    buf[32..52].copy_from_slice(recipient.as_slice());
    buf[52..72].copy_from_slice(token.as_slice());
    buf[72..].copy_from_slice(&amount.to_be_bytes());
    keccak256(buf)
}

/// Rolling hash of the forced-withdrawal queue after appending one request: `owner`'s
/// balance of `token`, paid to `recipient`.
pub fn forced_hash(prev: B256, owner: Address, token: Address, recipient: Address) -> B256 {
    let mut buf = [0u8; 32 + 20 + 20 + 20];
    buf[..32].copy_from_slice(prev.as_slice());
    buf[32..52].copy_from_slice(owner.as_slice());
    buf[52..72].copy_from_slice(token.as_slice());
    buf[72..].copy_from_slice(recipient.as_slice());
    keccak256(buf)
}

/// Leaf of a batch's withdrawal tree.
pub fn withdrawal_leaf(index: u32, w: &Withdrawal) -> B256 {
    let mut buf = [0u8; 4 + 20 + 20 + 16];
    buf[..4].copy_from_slice(&index.to_be_bytes());
    buf[4..24].copy_from_slice(w.recipient.as_slice());
    buf[24..44].copy_from_slice(w.token.as_slice());
    buf[44..].copy_from_slice(&w.amount_base_units.to_be_bytes());
    keccak256(buf)
}

fn tree(withdrawals: &[Withdrawal]) -> MerkleTree {
    MerkleTree::new(
        withdrawals
            .iter()
            .zip(0u32..)
            .map(|(w, i)| withdrawal_leaf(i, w))
            .collect(),
    )
}

/// Root of the withdrawal tree ([`crate::merkle`]); zero for an empty list (as the contract
/// records it).
pub fn withdrawals_root(withdrawals: &[Withdrawal]) -> B256 {
    tree(withdrawals).root()
}

/// Sibling path proving withdrawal `index` against [`withdrawals_root`], or `None` when
/// `index` is out of range.
pub fn withdrawal_proof(withdrawals: &[Withdrawal], index: usize) -> Option<Vec<B256>> {
    tree(withdrawals).path(index)
}

/// Errors decoding batch data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataError {
    /// Shorter than its header or its withdrawal list says.
    Truncated,
    /// A version byte other than [`DATA_VERSION`].
    UnsupportedVersion(u8),
    /// More withdrawals than one batch may carry.
    TooManyWithdrawals(usize),
    /// More refused deposits than one batch may consume.
    TooManyRefused(usize),
    /// Refused-deposit indices not strictly increasing.
    RefusedNotIncreasing,
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => write!(f, "batch data truncated"),
            Self::UnsupportedVersion(v) => write!(
                f,
                "unsupported batch data version {v} (this build reads version {DATA_VERSION})"
            ),
            Self::TooManyWithdrawals(n) => write!(f, "{n} withdrawals exceed the per-batch limit"),
            Self::TooManyRefused(n) => {
                write!(f, "{n} refused deposits exceed the per-batch limit")
            }
            Self::RefusedNotIncreasing => {
                write!(f, "refused deposit indices are not strictly increasing")
            }
        }
    }
}

impl std::error::Error for DataError {}

/// Encodes batch data: the withdrawal and refused-deposit sections the contract reads, then
/// `rest`. `refused` must be strictly increasing (the contract also checks that each index is
/// one the batch consumes).
pub fn encode_batch_data(
    withdrawals: &[Withdrawal],
    refused: &[u64],
    rest: &[u8],
) -> Result<Vec<u8>, DataError> {
    if withdrawals.len() > MAX_WITHDRAWALS_PER_BATCH {
        return Err(DataError::TooManyWithdrawals(withdrawals.len()));
    }
    if refused.len() > MAX_DEPOSITS_PER_BATCH {
        return Err(DataError::TooManyRefused(refused.len()));
    }
    if refused.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(DataError::RefusedNotIncreasing);
    }
    let count = u32::try_from(withdrawals.len())
        .map_err(|_| DataError::TooManyWithdrawals(withdrawals.len()))?;
    let refused_count =
        u32::try_from(refused.len()).map_err(|_| DataError::TooManyRefused(refused.len()))?;
    let mut out = Vec::with_capacity(
        CONTRACT_SECTIONS_HEADER_BYTES
            + withdrawals.len() * WITHDRAWAL_BYTES
            + refused.len() * REFUSED_BYTES
            + rest.len(),
    );
    out.push(DATA_VERSION);
    out.extend_from_slice(&count.to_be_bytes());
    for w in withdrawals {
        out.extend_from_slice(w.recipient.as_slice());
        out.extend_from_slice(w.token.as_slice());
        out.extend_from_slice(&w.amount_base_units.to_be_bytes());
    }
    out.extend_from_slice(&refused_count.to_be_bytes());
    for index in refused {
        out.extend_from_slice(&index.to_be_bytes());
    }
    out.extend_from_slice(rest);
    Ok(out)
}

/// Decodes batch data into its withdrawals, refused deposits and the node-defined rest.
pub fn decode_batch_data(data: &[u8]) -> Result<BatchData<'_>, DataError> {
    let version = *data.first().ok_or(DataError::Truncated)?;
    if version != DATA_VERSION {
        return Err(DataError::UnsupportedVersion(version));
    }
    let count_bytes: [u8; 4] = data
        .get(1..5)
        .and_then(|b| b.try_into().ok())
        .ok_or(DataError::Truncated)?;
    let count = u32::from_be_bytes(count_bytes) as usize;
    if count > MAX_WITHDRAWALS_PER_BATCH {
        return Err(DataError::TooManyWithdrawals(count));
    }
    let end = 5 + count * WITHDRAWAL_BYTES;
    let section = data.get(5..end).ok_or(DataError::Truncated)?;
    let withdrawals = section
        .chunks_exact(WITHDRAWAL_BYTES)
        .map(|c| {
            let mut amount = [0u8; 16];
            amount.copy_from_slice(&c[40..56]);
            Withdrawal {
                recipient: Address::from_slice(&c[..20]),
                token: Address::from_slice(&c[20..40]),
                amount_base_units: u128::from_be_bytes(amount),
            }
        })
        .collect();
    let refused_count_bytes: [u8; 4] = data
        .get(end..end + 4)
        .and_then(|b| b.try_into().ok())
        .ok_or(DataError::Truncated)?;
    let refused_count = u32::from_be_bytes(refused_count_bytes) as usize;
    if refused_count > MAX_DEPOSITS_PER_BATCH {
        return Err(DataError::TooManyRefused(refused_count));
    }
    let refused_start = end + 4;
    let refused_end = refused_start + refused_count * REFUSED_BYTES;
    let refused: Vec<u64> = data
        .get(refused_start..refused_end)
        .ok_or(DataError::Truncated)?
        .chunks_exact(REFUSED_BYTES)
        .map(|c| {
            let mut index = [0u8; REFUSED_BYTES];
            index.copy_from_slice(c);
            u64::from_be_bytes(index)
        })
        .collect();
    if refused.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(DataError::RefusedNotIncreasing);
    }
    Ok(BatchData {
        withdrawals,
        refused,
        rest: data.get(refused_end..).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(i: u8) -> Withdrawal {
        Withdrawal {
            recipient: Address::repeat_byte(i + 1),
            token: Address::repeat_byte(0xee),
            amount_base_units: u128::from(i) * 1_000 + 1,
        }
    }

    fn verify(root: B256, index: usize, leaf: B256, proof: &[B256]) -> bool {
        crate::merkle::root_from_path(leaf, index, proof) == root
    }

    #[test]
    fn forced_hash_matches_the_contract_vector_and_binds_the_recipient() {
        let (r, t, o) = (
            Address::repeat_byte(0x11),
            Address::repeat_byte(0x22),
            Address::repeat_byte(0x33),
        );
        // The vector of the forge suite's test_hashLayouts_matchExternalVectors:
        // `cast keccak` of 0x00…00 ‖ owner ‖ token ‖ recipient.
        assert_eq!(
            forced_hash(B256::ZERO, o, t, r),
            alloy::primitives::b256!(
                "1f8152d0ed0767f1b281b94b1b871429a3795a7467438ad7f59571336177e60c"
            )
        );
        assert_ne!(
            forced_hash(B256::ZERO, o, t, r),
            forced_hash(B256::ZERO, o, t, o)
        );
    }

    #[test]
    fn data_round_trips() {
        let ws: Vec<_> = (0..7).map(w).collect();
        let data = encode_batch_data(&ws, &[3, 9], b"rest").unwrap();
        assert_eq!(
            data.len(),
            5 + 7 * WITHDRAWAL_BYTES + 4 + 2 * REFUSED_BYTES + 4
        );
        let back = decode_batch_data(&data).unwrap();
        assert_eq!(back.withdrawals, ws);
        assert_eq!(back.refused, vec![3, 9]);
        assert_eq!(back.rest, b"rest");
        // The refused section sits between the withdrawals and the rest.
        let section = &data[5 + 7 * WITHDRAWAL_BYTES..];
        assert_eq!(&section[..4], &[0, 0, 0, 2]);
        assert_eq!(&section[4..12], &3u64.to_be_bytes());
    }

    #[test]
    fn refused_indices_must_increase_and_fit() {
        assert_eq!(
            encode_batch_data(&[], &[2, 2], &[]),
            Err(DataError::RefusedNotIncreasing)
        );
        assert_eq!(
            encode_batch_data(&[], &[3, 1], &[]),
            Err(DataError::RefusedNotIncreasing)
        );
        let many: Vec<u64> = (0..=MAX_DEPOSITS_PER_BATCH as u64).collect();
        assert_eq!(
            encode_batch_data(&[], &many, &[]),
            Err(DataError::TooManyRefused(MAX_DEPOSITS_PER_BATCH + 1))
        );
        let mut unordered = encode_batch_data(&[], &[1, 2], &[]).unwrap();
        unordered[9..17].copy_from_slice(&5u64.to_be_bytes());
        assert_eq!(
            decode_batch_data(&unordered),
            Err(DataError::RefusedNotIncreasing)
        );
        let mut too_many = encode_batch_data(&[], &[], &[]).unwrap();
        too_many[5..9].copy_from_slice(&1025u32.to_be_bytes());
        assert_eq!(
            decode_batch_data(&too_many),
            Err(DataError::TooManyRefused(1025))
        );
    }

    #[test]
    fn truncated_and_bad_version_are_rejected() {
        let ws: Vec<_> = (0..2).map(w).collect();
        let data = encode_batch_data(&ws, &[], &[]).unwrap();
        assert_eq!(
            decode_batch_data(&data[..data.len() - 1]),
            Err(DataError::Truncated)
        );
        let refused = encode_batch_data(&ws, &[4], &[]).unwrap();
        assert_eq!(
            decode_batch_data(&refused[..refused.len() - 1]),
            Err(DataError::Truncated)
        );
        assert_eq!(data[0], 3);
        for version in [0, 1, 2, 4, 9] {
            let mut bad = data.clone();
            bad[0] = version;
            assert_eq!(
                decode_batch_data(&bad),
                Err(DataError::UnsupportedVersion(version))
            );
        }
        assert_eq!(
            DataError::UnsupportedVersion(1).to_string(),
            "unsupported batch data version 1 (this build reads version 3)"
        );
        assert_eq!(decode_batch_data(&[]), Err(DataError::Truncated));
    }

    #[test]
    fn every_proof_verifies_for_every_size() {
        for n in 1..=17u8 {
            let ws: Vec<_> = (0..n).map(w).collect();
            let root = withdrawals_root(&ws);
            let depth = (n as usize).next_power_of_two().trailing_zeros() as usize;
            for (i, item) in ws.iter().enumerate() {
                let proof = withdrawal_proof(&ws, i).unwrap();
                assert_eq!(proof.len(), depth, "n={n}");
                assert!(verify(root, i, withdrawal_leaf(i as u32, item), &proof));
                assert!(!verify(root, i ^ 1, withdrawal_leaf(i as u32, item), &proof) || n == 1);
            }
            assert!(withdrawal_proof(&ws, n as usize).is_none());
        }
    }
}
