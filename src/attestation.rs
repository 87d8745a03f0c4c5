//! Private balance attestations: what `lane_proveBalance` returns and how anyone checks it.
//!
//! An [`Attestation`] says "`owner` holds at least `threshold` base units of `token` in the
//! state root `root`, committed on-chain as batch `batch`", bound to a verifier's `challenge`.
//! It carries a Groth16 proof and reveals nothing else about the balance.
//!
//! # Checking one
//!
//! [`verify_attestation`] checks the proof against the attestation's own statement with the
//! verifying key of the deployment (the one its Groth16 verifier contract was generated from;
//! [`Attestation::verifying_key_hash`] must match it). A verifier then compares the statement
//! with what it asked for ([`Attestation::check_statement`]): the owner, the token, a
//! threshold at least the one it needs, and the challenge it issued. Whether `root` is really
//! the root of batch `batch` is a fact of the chain: the settlement contract's
//! `verifyAttestation(batch, owner, token, threshold, context, proof)` checks root and proof
//! in one call, and `stablelane verify-attestation --l2-rpc …` reads the root from there.
//!
//! # The context
//!
//! The circuit binds every proof to a field element, the *context*. Verifiers choose any
//! 32-byte challenge; the context is [`attestation_context`]: `keccak256("Stablelane.attestation.v1"
//! ‖ challenge) mod r`. The domain tag keeps an attestation's context apart from the settlement
//! contract's `exitContext(owner, recipient)` (keccak of an ABI encoding with its own tag), so no
//! challenge can turn an attestation into an exit proof.

use alloy::primitives::{keccak256, uint, Address, B256, U256};
use serde::{Deserialize, Serialize};
use stablelane_circuits::{
    keys::{verifying_key_hash, PreparedVerifyingKey, VerifyingKey},
    prover::{prepare_verifying_key, proof_from_evm, verify_prepared, PROOF_WORDS},
    PublicInputs,
};

use crate::Amount;

/// Domain tag hashed in front of a verifier's challenge (see [`attestation_context`]).
pub const ATTESTATION_CONTEXT_DOMAIN: &[u8] = b"Stablelane.attestation.v1";

/// The order `r` of BN254's scalar field: public inputs are integers below it.
pub const SNARK_SCALAR_FIELD: U256 =
    uint!(0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001_U256);

/// The circuit's context for a verifier's `challenge`:
/// `keccak256("Stablelane.attestation.v1" ‖ challenge) mod r`, as the settlement contract's
/// `attestationContext(challenge)` computes it.
pub fn attestation_context(challenge: &B256) -> U256 {
    let mut preimage = Vec::with_capacity(ATTESTATION_CONTEXT_DOMAIN.len() + 32);
    preimage.extend_from_slice(ATTESTATION_CONTEXT_DOMAIN);
    preimage.extend_from_slice(challenge.as_slice());
    U256::from_be_bytes(keccak256(&preimage).0) % SNARK_SCALAR_FIELD
}

/// A balance attestation, as `lane_proveBalance` returns it (JSON, camelCase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Attestation {
    /// The committed batch whose root the balance is proven under.
    pub batch: u64,
    /// That batch's state root.
    pub root: B256,
    /// The account.
    pub owner: Address,
    /// The token.
    pub token: Address,
    /// The proven lower bound, in base units.
    pub threshold: Amount,
    /// The verifier's challenge.
    pub challenge: B256,
    /// [`attestation_context`] of `challenge`: the circuit's fifth public input.
    pub context: U256,
    /// The Groth16 proof as the Solidity verifier takes it (`uint256[8]`: A, B with G2
    /// coordinates in EVM order, C).
    pub proof: [U256; PROOF_WORDS],
    /// keccak256 of the verifying key the proof was made for (the verifier contract's
    /// `VERIFYING_KEY_HASH`).
    pub verifying_key_hash: B256,
}

/// Why an attestation does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationError {
    /// `context` is not the context of `challenge`.
    #[error("context {context} is not the attestation context of challenge {challenge}")]
    ContextMismatch {
        /// The challenge.
        challenge: B256,
        /// The context carried.
        context: U256,
    },
    /// Made for another verifying key than the one given.
    #[error("made for verifying key {carried}, checked with {given}")]
    KeyMismatch {
        /// The hash the attestation carries.
        carried: B256,
        /// The hash of the key it was checked with.
        given: B256,
    },
    /// The proof or a public input is not well formed (a coordinate or input out of range,
    /// a point not on the curve).
    #[error("malformed: {0}")]
    Malformed(String),
    /// Well formed, but the proof does not prove this statement.
    #[error("the proof does not prove this statement")]
    InvalidProof,
    /// The statement is not the one the verifier asked for.
    #[error("{0}")]
    Unexpected(String),
}

impl Attestation {
    /// The circuit's public inputs `[root, owner, token, threshold, context]`.
    ///
    /// # Errors
    ///
    /// [`AttestationError::Malformed`] if `root` or `context` is not below `r`.
    pub fn public_inputs(&self) -> Result<PublicInputs, AttestationError> {
        let field = |name: &str, word: [u8; 32]| {
            stablelane_circuits::field::fr_from_be_bytes(&word)
                .map_err(|_| AttestationError::Malformed(format!("{name} is not below r")))
        };
        Ok(PublicInputs {
            root: field("root", self.root.0)?,
            owner: self.owner.0 .0,
            token: self.token.0 .0,
            threshold: self.threshold.0,
            context: field("context", self.context.to_be_bytes())?,
        })
    }

    /// Checks the statement against what a verifier asked for: this owner and token, a
    /// threshold of at least `min_threshold`, and this challenge. It does not check the proof
    /// ([`verify_attestation`] does).
    ///
    /// # Errors
    ///
    /// [`AttestationError::Unexpected`] naming the first field that differs.
    pub fn check_statement(
        &self,
        owner: Address,
        token: Address,
        min_threshold: Amount,
        challenge: &B256,
    ) -> Result<(), AttestationError> {
        let unexpected = |what: String| Err(AttestationError::Unexpected(what));
        if self.owner != owner {
            return unexpected(format!("attests {}, not {owner}", self.owner));
        }
        if self.token != token {
            return unexpected(format!("is about token {}, not {token}", self.token));
        }
        if self.threshold < min_threshold {
            return unexpected(format!(
                "threshold {} is below the required {}",
                self.threshold.0, min_threshold.0
            ));
        }
        if &self.challenge != challenge {
            return unexpected(format!(
                "answers challenge {}, not {challenge}",
                self.challenge
            ));
        }
        Ok(())
    }
}

/// A verifying key ready for repeated checks, with its hash.
#[derive(Debug, Clone)]
pub struct AttestationVerifier {
    prepared: PreparedVerifyingKey,
    hash: B256,
}

impl AttestationVerifier {
    /// Prepares `vk` (pairing precomputations, once).
    ///
    /// # Errors
    ///
    /// [`AttestationError::Malformed`] for a key of another circuit.
    pub fn new(vk: &VerifyingKey) -> Result<Self, AttestationError> {
        let malformed = |e: stablelane_circuits::Error| AttestationError::Malformed(e.to_string());
        Ok(Self {
            prepared: prepare_verifying_key(vk).map_err(malformed)?,
            hash: B256::from(verifying_key_hash(vk).map_err(malformed)?),
        })
    }

    /// keccak256 of the key (the verifier contract's `VERIFYING_KEY_HASH`).
    pub fn key_hash(&self) -> B256 {
        self.hash
    }

    /// Checks that `attestation`'s proof proves its statement under this key. See
    /// [`verify_attestation`].
    ///
    /// # Errors
    ///
    /// See [`verify_attestation`].
    pub fn verify(&self, attestation: &Attestation) -> Result<(), AttestationError> {
        let expected = attestation_context(&attestation.challenge);
        if attestation.context != expected {
            return Err(AttestationError::ContextMismatch {
                challenge: attestation.challenge,
                context: attestation.context,
            });
        }
        if attestation.verifying_key_hash != self.hash {
            return Err(AttestationError::KeyMismatch {
                carried: attestation.verifying_key_hash,
                given: self.hash,
            });
        }
        let inputs = attestation.public_inputs()?;
        let words = attestation.proof.map(|w| w.to_be_bytes::<32>());
        let proof =
            proof_from_evm(&words).map_err(|e| AttestationError::Malformed(e.to_string()))?;
        match verify_prepared(&self.prepared, &inputs, &proof) {
            Ok(true) => Ok(()),
            Ok(false) => Err(AttestationError::InvalidProof),
            Err(e) => Err(AttestationError::Malformed(e.to_string())),
        }
    }
}

/// Checks that `attestation`'s Groth16 proof proves its own statement under `vk`, and that its
/// context is the context of its challenge. Changing the root, owner, token, threshold or
/// challenge of a valid attestation makes it fail.
///
/// Verifying takes a few milliseconds; use [`AttestationVerifier`] to check many with one key.
///
/// # Errors
///
/// [`AttestationError::ContextMismatch`], [`AttestationError::KeyMismatch`],
/// [`AttestationError::Malformed`] or [`AttestationError::InvalidProof`].
pub fn verify_attestation(
    vk: &VerifyingKey,
    attestation: &Attestation,
) -> Result<(), AttestationError> {
    AttestationVerifier::new(vk)?.verify(attestation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_reduced_below_r_and_depends_on_the_challenge() {
        let a = attestation_context(&B256::ZERO);
        let b = attestation_context(&B256::repeat_byte(1));
        assert!(a < SNARK_SCALAR_FIELD && b < SNARK_SCALAR_FIELD);
        assert_ne!(a, b);
        // keccak256("Stablelane.attestation.v1" ‖ 0x00…00) is 0xdcb1d8cb…4590b310 (`cast
        // keccak`), above r; reduced with Python's integers:
        assert_eq!(
            a,
            uint!(0x1b209f005935716525b70b5f12b01c88031ef86bd4e8dd1203d0db9f8590b30c_U256)
        );
    }
}
