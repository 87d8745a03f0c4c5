//! The statement a balance attestation proves, in plain Rust: its public inputs, its witness,
//! and the native check that a witness satisfies it.
//!
//! > The slot of `(owner, token)` under the state root `root` holds at least `threshold` base
//! > units, and the proof is bound to `context`.
//!
//! [`PublicInputs`] is what a verifier sees, in the circuit's order
//! `[root, owner, token, threshold, context]` ([`PublicInputs::to_field_elements`]), the same
//! order the Solidity verifier takes them in ([`PublicInputs::to_evm_words`]).
//! [`AttestationWitness`] adds what only the prover knows: the slot's balance, nonce, salt,
//! index and Merkle path. [`AttestationWitness::check`] decides the statement natively with
//! the same rules as [`crate::circuit`], so a false statement is refused with a precise error
//! before any proving work is done.

use std::fmt;

use ark_ff::{BigInteger, PrimeField};

use crate::field::{address_to_fr, fr_from_be_bytes, fr_to_be_bytes, EvmWord};
use crate::{leaf_hash, Error, Fr, MerklePath, Result, SlotIndex};

/// A 20-byte Ethereum address.
pub type Address = [u8; 20];

/// Number of public inputs of the attestation circuit.
pub const PUBLIC_INPUTS: usize = 5;

/// Names of the public inputs, in the circuit's order (used in error messages).
pub const PUBLIC_INPUT_NAMES: [&str; PUBLIC_INPUTS] =
    ["root", "owner", "token", "threshold", "context"];

/// The public inputs of a balance attestation, in the circuit's order.
///
/// `owner` and `token` enter the circuit as the 160-bit big-endian integers of the addresses,
/// `threshold` as an integer below 2^128, `root` and `context` as field elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicInputs {
    /// State root the slot is proven under.
    pub root: Fr,
    /// Owner of the slot.
    pub owner: Address,
    /// Token of the slot.
    pub token: Address,
    /// Lower bound on the balance, in the token's base units.
    pub threshold: u128,
    /// Verifier-chosen value the proof is bound to (a challenge, or the settlement contract's
    /// `exitContext(owner, recipient)` for exits); any field element.
    pub context: Fr,
}

impl PublicInputs {
    /// The five field elements `[root, owner, token, threshold, context]` the circuit and the
    /// verifiers take.
    pub fn to_field_elements(&self) -> [Fr; PUBLIC_INPUTS] {
        [
            self.root,
            address_to_fr(&self.owner),
            address_to_fr(&self.token),
            Fr::from(self.threshold),
            self.context,
        ]
    }

    /// Reads the five field elements back.
    ///
    /// # Errors
    ///
    /// [`Error::PublicInputOutOfRange`] if `owner` or `token` is not below 2^160 or
    /// `threshold` not below 2^128 (no proof exists for such inputs: the circuit range-checks
    /// them).
    pub fn from_field_elements(inputs: &[Fr; PUBLIC_INPUTS]) -> Result<Self> {
        let [root, owner, token, threshold, context] = *inputs;
        Ok(Self {
            root,
            owner: address_from_fr(&owner, "owner")?,
            token: address_from_fr(&token, "token")?,
            threshold: u128_from_fr(&threshold, "threshold")?,
            context,
        })
    }

    /// The public inputs as the `uint256[5]` the Solidity verifier takes, each a 32-byte
    /// big-endian word.
    pub fn to_evm_words(&self) -> [EvmWord; PUBLIC_INPUTS] {
        self.to_field_elements().map(|x| fr_to_be_bytes(&x))
    }

    /// Reads the `uint256[5]` of the Solidity verifier.
    ///
    /// Strict, like the Solidity verifier: a word at or above the field modulus `r` is
    /// rejected, never reduced (so `x` and `x + r` cannot both be accepted).
    ///
    /// # Errors
    ///
    /// [`Error::PublicInputNotInField`] for a word `>= r`, and the errors of
    /// [`from_field_elements`](Self::from_field_elements).
    pub fn from_evm_words(words: &[EvmWord; PUBLIC_INPUTS]) -> Result<Self> {
        let mut inputs = [Fr::from(0u64); PUBLIC_INPUTS];
        for ((input, word), name) in inputs.iter_mut().zip(words).zip(PUBLIC_INPUT_NAMES) {
            *input = fr_from_be_bytes(word).map_err(|_| Error::PublicInputNotInField { name })?;
        }
        Self::from_field_elements(&inputs)
    }
}

/// Everything a prover needs: the public inputs and the opening of the owner's slot.
///
/// Its `Debug` output shows the public inputs and the slot only: balance, nonce, salt and path
/// are secrets of the owner and stay out of logs.
#[derive(Clone, PartialEq, Eq)]
pub struct AttestationWitness {
    /// State root the slot is proven under (public).
    pub root: Fr,
    /// Owner of the slot (public).
    pub owner: Address,
    /// Token of the slot (public).
    pub token: Address,
    /// Lower bound on the balance, in base units (public).
    pub threshold: u128,
    /// Value the proof is bound to (public).
    pub context: Fr,
    /// The slot's balance, in base units (private).
    pub balance: u128,
    /// The slot's nonce (private).
    pub nonce: u64,
    /// The slot's salt (private).
    pub salt: Fr,
    /// The slot's index in the state tree (private).
    pub slot: SlotIndex,
    /// The slot's Merkle path to `root` (private).
    pub path: MerklePath,
}

impl fmt::Debug for AttestationWitness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttestationWitness")
            .field("public", &self.public_inputs())
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl AttestationWitness {
    /// The public part of the witness.
    pub fn public_inputs(&self) -> PublicInputs {
        PublicInputs {
            root: self.root,
            owner: self.owner,
            token: self.token,
            threshold: self.threshold,
            context: self.context,
        }
    }

    /// The slot's leaf, `Poseidon(owner, token, balance, nonce, salt)`.
    pub fn leaf(&self) -> Fr {
        leaf_hash(self.owner, self.token, self.balance, self.nonce, self.salt)
    }

    /// Decides the statement natively, with the circuit's rules: `balance >= threshold`, and
    /// the leaf with the path at `slot` hashes to `root`. (Every other range the circuit
    /// checks is guaranteed by the field types: addresses are 20 bytes, amounts `u128`, the
    /// nonce `u64`, the index `u32`.)
    ///
    /// # Errors
    ///
    /// [`Error::BalanceBelowThreshold`] or [`Error::PathDoesNotReachRoot`].
    pub fn check(&self) -> Result<()> {
        if self.balance < self.threshold {
            return Err(Error::BalanceBelowThreshold {
                threshold: self.threshold,
            });
        }
        if !self.path.verify(self.root, self.slot, self.leaf()) {
            return Err(Error::PathDoesNotReachRoot { slot: self.slot });
        }
        Ok(())
    }
}

/// The address whose big-endian integer is `x`.
fn address_from_fr(x: &Fr, name: &'static str) -> Result<Address> {
    let bytes = x.into_bigint().to_bytes_be();
    let (high, low) = bytes.split_at(bytes.len().saturating_sub(20));
    if high.iter().any(|&b| b != 0) {
        return Err(Error::PublicInputOutOfRange { name, bits: 160 });
    }
    let mut address = [0u8; 20];
    address.copy_from_slice(low);
    Ok(address)
}

/// The integer `x`, if below 2^128.
fn u128_from_fr(x: &Fr, name: &'static str) -> Result<u128> {
    let bytes = x.into_bigint().to_bytes_be();
    let (high, low) = bytes.split_at(bytes.len().saturating_sub(16));
    if high.iter().any(|&b| b != 0) {
        return Err(Error::PublicInputOutOfRange { name, bits: 128 });
    }
    let mut word = [0u8; 16];
    word.copy_from_slice(low);
    Ok(u128::from_be_bytes(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StateTree;
    use ark_ff::Field;

    fn witness() -> AttestationWitness {
        let owner = [0x11; 20];
        let token = [0x22; 20];
        let salt = Fr::from(5u64);
        let mut tree = StateTree::new();
        tree.set(SlotIndex::new(0), Fr::from(77u64)).expect("set");
        let slot = SlotIndex::new(3);
        tree.set(slot, leaf_hash(owner, token, 1_000, 4, salt))
            .expect("set");
        AttestationWitness {
            root: tree.root(),
            owner,
            token,
            threshold: 1_000,
            context: Fr::from(9u64),
            balance: 1_000,
            nonce: 4,
            salt,
            slot,
            path: tree.path(slot),
        }
    }

    #[test]
    fn an_honest_witness_checks_and_a_false_one_says_why() {
        let w = witness();
        assert_eq!(w.check(), Ok(()));
        let above = AttestationWitness {
            threshold: 1_001,
            ..w.clone()
        };
        assert_eq!(
            above.check(),
            Err(Error::BalanceBelowThreshold { threshold: 1_001 })
        );
        // Claiming more balance than the leaf holds breaks the path, not the comparison.
        let inflated = AttestationWitness {
            balance: 5_000,
            ..w.clone()
        };
        assert_eq!(
            inflated.check(),
            Err(Error::PathDoesNotReachRoot { slot: w.slot })
        );
        let elsewhere = AttestationWitness {
            slot: SlotIndex::new(2),
            ..w.clone()
        };
        assert!(matches!(
            elsewhere.check(),
            Err(Error::PathDoesNotReachRoot { .. })
        ));
        let other_root = AttestationWitness {
            root: w.root + Fr::ONE,
            ..w
        };
        assert!(other_root.check().is_err());
    }

    #[test]
    fn debug_output_keeps_the_secrets_out() {
        let w = witness();
        let shown = format!("{w:?}");
        assert!(shown.contains("threshold: 1000") && shown.contains("slot: SlotIndex(3)"));
        assert!(!shown.contains("balance") && !shown.contains("salt"));
        assert!(!shown.contains("nonce") && !shown.contains("siblings"));
    }

    #[test]
    fn public_inputs_round_trip_through_field_elements_and_words() {
        let public = PublicInputs {
            root: -Fr::ONE,
            owner: [0xff; 20],
            token: [0x01; 20],
            threshold: u128::MAX,
            context: Fr::from(3u64),
        };
        let fields = public.to_field_elements();
        assert_eq!(fields[3], Fr::from(u128::MAX));
        assert_eq!(fields[1], Fr::from(2u64).pow([160]) - Fr::ONE);
        assert_eq!(PublicInputs::from_field_elements(&fields), Ok(public));
        let words = public.to_evm_words();
        assert_eq!(words[3][..16], [0u8; 16]);
        assert_eq!(words[3][16..], [0xff; 16]);
        assert_eq!(PublicInputs::from_evm_words(&words), Ok(public));
    }

    #[test]
    fn out_of_range_inputs_are_rejected_not_reduced() {
        let public = witness().public_inputs();
        let mut fields = public.to_field_elements();
        fields[1] = Fr::from(2u64).pow([160]);
        assert_eq!(
            PublicInputs::from_field_elements(&fields),
            Err(Error::PublicInputOutOfRange {
                name: "owner",
                bits: 160
            })
        );
        let mut fields = public.to_field_elements();
        fields[3] = Fr::from(u128::MAX) + Fr::ONE;
        assert_eq!(
            PublicInputs::from_field_elements(&fields),
            Err(Error::PublicInputOutOfRange {
                name: "threshold",
                bits: 128
            })
        );
        // context + r: same residue, different word, rejected.
        let mut words = public.to_evm_words();
        let mut carry = 0u16;
        let modulus = Fr::MODULUS.to_bytes_be();
        for (byte, m) in words[4].iter_mut().zip(modulus).rev() {
            let sum = u16::from(*byte) + u16::from(m) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        assert_eq!(
            PublicInputs::from_evm_words(&words),
            Err(Error::PublicInputNotInField { name: "context" })
        );
        assert_eq!(
            PublicInputs::from_evm_words(&[[0xff; 32]; PUBLIC_INPUTS]),
            Err(Error::PublicInputNotInField { name: "root" })
        );
    }
}
