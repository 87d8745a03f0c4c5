//! Private balance attestations: what `lane_proveBalance` returns and how anyone checks it.
//!
//! An [`Attestation`] says "`owner` holds at least `threshold` base units of `token` in the
//! state root `root`, committed on-chain as batch `batch`", bound to a verifier's `challenge`.
//! It carries a Groth16 proof and reveals nothing else about the balance.
//!
//! # Checking one
//!
//! The proving key is public, so a proof alone proves nothing about the deployment: anyone can
//! build a tree of their own with any balance in it and prove against its root. What makes an
//! attestation worth something is that its `root` is the root the settlement contract
//! committed for batch `batch`, and that the batch is recent enough for the relying party (a
//! balance proven under an old root may have been spent since). So:
//!
//! - [`verify_attestation`] (and [`AttestationVerifier::verify`]) takes the committed roots
//!   (anything that answers batch → root: a map, a closure over an L2 client, one known
//!   `(batch, root)` pair) and the oldest batch the relying party accepts, and checks all
//!   three: the batch is at least that one, its committed root is the attestation's root, and
//!   the proof proves the statement under the deployment's verifying key
//!   ([`Attestation::verifying_key_hash`] must match it).
//! - [`verify_attestation_proof_only`] checks only the proof against the attestation's own
//!   statement; its name says what it leaves out. It is the building block, not an answer.
//!
//! A verifier then compares the statement with what it asked for
//! ([`Attestation::check_statement`]): the owner, the token, a threshold at least the one it
//! needs, and the challenge it issued. On-chain, the settlement contract's
//! `verifyAttestation(batch, minBatch, owner, token, threshold, context, proof)` checks the
//! minimum, the root and the proof in one call, and `stablelane verify-attestation --l2-rpc …`
//! uses it.
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

use std::collections::{BTreeMap, HashMap};

use crate::{Amount, BatchNumber};

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
    /// The batch is not one the committed roots know (not committed, or not yet seen).
    #[error("batch {batch} is not a committed batch")]
    UnknownBatch {
        /// The attestation's batch.
        batch: u64,
    },
    /// The attestation's root is not the root committed for its batch: it was proven in a
    /// tree that is not the deployment's.
    #[error("root {carried} is not batch {batch}'s committed root {committed}")]
    RootMismatch {
        /// The attestation's batch.
        batch: u64,
        /// The root the attestation carries.
        carried: B256,
        /// The root committed for that batch.
        committed: B256,
    },
    /// The batch is older than the relying party accepts.
    #[error("batch {batch} is older than the oldest accepted batch {min_batch}")]
    BatchTooOld {
        /// The attestation's batch.
        batch: u64,
        /// The oldest batch accepted.
        min_batch: u64,
    },
}

/// The state roots the settlement contract committed, by batch: what an attestation's root is
/// checked against. Implemented for maps and for closures (say, one that reads
/// `Settlement.batch(n).root` from an L2 client the caller trusts).
pub trait CommittedRoots {
    /// The root committed for `batch`, or `None` if the batch is not (known to be) committed.
    fn committed_root(&self, batch: BatchNumber) -> Option<B256>;
}

impl<F: Fn(BatchNumber) -> Option<B256>> CommittedRoots for F {
    fn committed_root(&self, batch: BatchNumber) -> Option<B256> {
        self(batch)
    }
}

impl CommittedRoots for BTreeMap<BatchNumber, B256> {
    fn committed_root(&self, batch: BatchNumber) -> Option<B256> {
        self.get(&batch).copied()
    }
}

impl CommittedRoots for HashMap<BatchNumber, B256> {
    fn committed_root(&self, batch: BatchNumber) -> Option<B256> {
        self.get(&batch).copied()
    }
}

/// One batch's committed root, for a relying party that learned it elsewhere (say from its
/// own L2 node): every other batch is unknown.
impl CommittedRoots for (BatchNumber, B256) {
    fn committed_root(&self, batch: BatchNumber) -> Option<B256> {
        (batch == self.0).then_some(self.1)
    }
}

/// Checks that `attestation` is against a batch at least `min_batch`, that its root is the
/// root `roots` says was committed for that batch, and nothing else (not the proof).
///
/// # Errors
///
/// [`AttestationError::BatchTooOld`], [`AttestationError::UnknownBatch`] or
/// [`AttestationError::RootMismatch`].
pub fn check_committed_root(
    attestation: &Attestation,
    roots: &impl CommittedRoots,
    min_batch: BatchNumber,
) -> Result<(), AttestationError> {
    let batch = attestation.batch;
    if batch < min_batch.0 {
        return Err(AttestationError::BatchTooOld {
            batch,
            min_batch: min_batch.0,
        });
    }
    let committed = roots
        .committed_root(BatchNumber(batch))
        .ok_or(AttestationError::UnknownBatch { batch })?;
    if committed != attestation.root {
        return Err(AttestationError::RootMismatch {
            batch,
            carried: attestation.root,
            committed,
        });
    }
    Ok(())
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

    /// Checks the whole attestation: its batch is at least `min_batch`, its root is the one
    /// `roots` says was committed for that batch, and its proof proves its statement under
    /// this key. See [`verify_attestation`].
    ///
    /// # Errors
    ///
    /// See [`verify_attestation`].
    pub fn verify(
        &self,
        attestation: &Attestation,
        roots: &impl CommittedRoots,
        min_batch: BatchNumber,
    ) -> Result<(), AttestationError> {
        check_committed_root(attestation, roots, min_batch)?;
        self.verify_proof_only(attestation)
    }

    /// Checks only that `attestation`'s proof proves its own statement under this key: NOT
    /// that its root was ever committed. See [`verify_attestation_proof_only`].
    ///
    /// # Errors
    ///
    /// See [`verify_attestation_proof_only`].
    pub fn verify_proof_only(&self, attestation: &Attestation) -> Result<(), AttestationError> {
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

/// Checks an attestation as a relying party must: it is against a batch at least
/// `min_batch`, its root is the root `roots` says the settlement contract committed for that
/// batch, its context is the context of its challenge, and its Groth16 proof proves its
/// statement under `vk`. Changing the batch, root, owner, token, threshold or challenge of a
/// valid attestation makes it fail.
///
/// Verifying takes a few milliseconds; use [`AttestationVerifier`] to check many with one key.
///
/// # Errors
///
/// [`AttestationError::BatchTooOld`], [`AttestationError::UnknownBatch`],
/// [`AttestationError::RootMismatch`], [`AttestationError::ContextMismatch`],
/// [`AttestationError::KeyMismatch`], [`AttestationError::Malformed`] or
/// [`AttestationError::InvalidProof`].
pub fn verify_attestation(
    vk: &VerifyingKey,
    attestation: &Attestation,
    roots: &impl CommittedRoots,
    min_batch: BatchNumber,
) -> Result<(), AttestationError> {
    check_committed_root(attestation, roots, min_batch)?;
    AttestationVerifier::new(vk)?.verify_proof_only(attestation)
}

/// Checks only that `attestation`'s Groth16 proof proves its own statement under `vk` and
/// that its context is the context of its challenge. It does **not** check that the root was
/// committed: since the proving key is public, anyone can prove any balance in a tree they
/// built themselves, so a pass here alone proves nothing about the deployment. Use
/// [`verify_attestation`].
///
/// # Errors
///
/// [`AttestationError::ContextMismatch`], [`AttestationError::KeyMismatch`],
/// [`AttestationError::Malformed`] or [`AttestationError::InvalidProof`].
pub fn verify_attestation_proof_only(
    vk: &VerifyingKey,
    attestation: &Attestation,
) -> Result<(), AttestationError> {
    AttestationVerifier::new(vk)?.verify_proof_only(attestation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attestation(batch: u64, root: B256) -> Attestation {
        Attestation {
            batch,
            root,
            owner: Address::repeat_byte(1),
            token: Address::repeat_byte(2),
            threshold: Amount(5),
            challenge: B256::ZERO,
            context: attestation_context(&B256::ZERO),
            proof: [U256::ZERO; PROOF_WORDS],
            verifying_key_hash: B256::ZERO,
        }
    }

    #[test]
    fn the_root_must_be_the_committed_one_of_a_recent_enough_batch() {
        let committed = B256::repeat_byte(7);
        let roots: BTreeMap<BatchNumber, B256> = [
            (BatchNumber(3), committed),
            (BatchNumber(4), B256::repeat_byte(8)),
        ]
        .into();
        let ok = attestation(3, committed);
        assert_eq!(check_committed_root(&ok, &roots, BatchNumber(0)), Ok(()));
        assert_eq!(check_committed_root(&ok, &roots, BatchNumber(3)), Ok(()));
        assert_eq!(
            check_committed_root(&ok, &roots, BatchNumber(4)),
            Err(AttestationError::BatchTooOld {
                batch: 3,
                min_batch: 4
            })
        );
        // An invented root, proven in a tree of the prover's own.
        let invented = attestation(3, B256::repeat_byte(9));
        assert_eq!(
            check_committed_root(&invented, &roots, BatchNumber(0)),
            Err(AttestationError::RootMismatch {
                batch: 3,
                carried: B256::repeat_byte(9),
                committed
            })
        );
        assert_eq!(
            check_committed_root(&attestation(5, committed), &roots, BatchNumber(0)),
            Err(AttestationError::UnknownBatch { batch: 5 })
        );
        // One known pair and a closure answer the same.
        let pair = (BatchNumber(3), committed);
        assert_eq!(check_committed_root(&ok, &pair, BatchNumber(1)), Ok(()));
        let closure = |b: BatchNumber| roots.get(&b).copied();
        assert_eq!(check_committed_root(&ok, &closure, BatchNumber(1)), Ok(()));
        assert!(check_committed_root(&invented, &closure, BatchNumber(1)).is_err());
    }

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
