//! The leaf of one account slot.
//!
//! `leaf = Poseidon(owner, token, balance, nonce, salt)` (five inputs, circomlib's Poseidon),
//! with `owner` and `token` the 20-byte addresses read as big-endian integers, `balance` in
//! the token's base units and `salt` the slot's secret that keeps balances from being brute
//! forced out of published leaf hashes.

use crate::field::address_to_fr;
use crate::{poseidon, Fr};

/// Leaf hash of an account slot: `Poseidon(owner, token, balance, nonce, salt)`.
///
/// `balance` is in the token's base units; the addresses are big-endian integers.
pub fn leaf_hash(owner: [u8; 20], token: [u8; 20], balance: u128, nonce: u64, salt: Fr) -> Fr {
    poseidon::hash([
        address_to_fr(&owner),
        address_to_fr(&token),
        Fr::from(balance),
        Fr::from(nonce),
        salt,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_is_poseidon_of_the_five_fields() {
        let mut owner = [0u8; 20];
        owner[19] = 7;
        let mut token = [0u8; 20];
        token[0] = 1;
        let salt = Fr::from(99u64);
        let expected = poseidon::hash([
            Fr::from(7u64),
            address_to_fr(&token),
            Fr::from(u128::MAX),
            Fr::from(u64::MAX),
            salt,
        ]);
        assert_eq!(leaf_hash(owner, token, u128::MAX, u64::MAX, salt), expected);
        assert_ne!(
            leaf_hash(owner, token, 1, 0, salt),
            leaf_hash(owner, token, 0, 1, salt)
        );
    }
}
