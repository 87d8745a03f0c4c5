//! Stablelane's proof system: Poseidon over BN254 with circomlib's parameters, the depth-32
//! sparse Merkle tree that holds the ledger state, the leaf encoding, and the Groth16
//! balance-attestation circuit with its keys, prover, verifier and generated Solidity
//! verifier.
//!
//! Everything native is bit-exact with circomlib/circomlibjs (checked against committed test
//! vectors in `vectors/circomlib.json`), so that roots and paths computed by the node are the
//! ones the circuit proves membership in; the R1CS Poseidon gadget uses the very same
//! constants. The crate is pure computation apart from reading and writing key files: it
//! keeps no persistent state and knows nothing about accounts, ledger rules or signatures.
//!
//! - [`poseidon`]: the hash ([`poseidon::hash`], [`poseidon::hash2`]), its parameters and its
//!   R1CS gadget ([`poseidon::gadget`]).
//! - [`tree`]: [`StateTree`], [`MerklePath`], [`SlotIndex`] and the empty-subtree hashes.
//! - [`leaf`]: [`leaf_hash`], the encoding of one account slot.
//! - [`field`]: conversions between [`Fr`] and bytes.
//! - [`statement`]: what an attestation proves: [`PublicInputs`], [`AttestationWitness`].
//! - [`circuit`]: the statement as R1CS ([`circuit::AttestationCircuit`]).
//! - [`keys`]: proving and verifying keys, the INSECURE dev setup, key files and key hash.
//! - [`prover`]: [`prover::prove`], [`prover::verify`] and the EVM encoding of proofs.
//! - [`solidity`]: renders `contracts/src/Groth16Verifier.sol` from a verifying key.

pub mod circuit;
pub mod field;
pub mod keys;
pub mod leaf;
pub mod poseidon;
pub mod prover;
pub mod solidity;
pub mod statement;
pub mod tree;

use std::path::PathBuf;

/// The BN254 scalar field, in which every hash, leaf and root of this crate lives.
pub use ark_bn254::Fr;
/// Re-exported so callers can pass prover randomness without naming `rand 0.8` themselves:
/// seed it with 32 bytes from the operating system.
pub use ark_std::rand::SeedableRng;
pub use leaf::leaf_hash;
/// A cryptographically secure RNG usable as prover randomness once seeded from a secret.
pub use rand_chacha::ChaCha20Rng;
pub use statement::{Address, AttestationWitness, PublicInputs};
pub use tree::{empty_root, MerklePath, SlotIndex, StateTree, TREE_DEPTH};

/// Errors of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The INSECURE dev setup's verifying key on a chain other than anvil's, not explicitly
    /// allowed (see `keys::check_dev_keys_allowed`).
    #[error(
        "the verifying key is the INSECURE dev setup's (published seed: anyone can forge exits and \
         attestations with it) and chain {chain_id} is not anvil's ({devnet}); refusing unless \
         explicitly allowed",
        devnet = keys::DEVNET_CHAIN_ID
    )]
    InsecureDevKeys {
        /// The chain the keys were to be used on.
        chain_id: u64,
    },
    /// Poseidon was asked to hash an unsupported number of inputs.
    #[error("Poseidon takes 1 to {inputs_max} inputs, got {inputs}")]
    PoseidonInputCount {
        /// Number of inputs given.
        inputs: usize,
        /// Largest supported number of inputs.
        inputs_max: usize,
    },
    /// No Poseidon parameters exist for this state width.
    #[error("no Poseidon parameters for state width {width} (supported: 2 to {width_max})")]
    PoseidonWidth {
        /// Width asked for.
        width: usize,
        /// Largest supported width.
        width_max: usize,
    },
    /// Bytes that encode an integer at or above the BN254 scalar field modulus.
    #[error("value is not a canonical BN254 scalar field element (it is at or above the modulus)")]
    NonCanonicalFieldElement,
    /// More leaves than a depth-32 tree has slots.
    #[error("a state tree has at most 2^32 slots, got {slots}")]
    TooManySlots {
        /// Number of slots asked for.
        slots: u64,
    },
    /// Stored tree levels whose sizes do not fit one tree (see `StateTree::from_levels`).
    #[error("tree level {level} has {got} nodes, a tree of {slots} slots has {expected}")]
    TreeShape {
        /// The level (0: leaves).
        level: usize,
        /// Nodes found.
        got: u64,
        /// Nodes a tree with as many leaves as level 0 has at that level.
        expected: u64,
        /// Leaves (level 0's size).
        slots: u64,
    },
    /// Stored tree levels of another depth.
    #[error("a state tree has {expected} levels, got {got}")]
    TreeDepth {
        /// Levels found.
        got: usize,
        /// Levels of a depth-32 tree (33).
        expected: usize,
    },
    /// The tree could not reserve memory to grow to this many slots.
    #[error("could not allocate a state tree of {slots} slots")]
    TreeAllocation {
        /// Number of slots the tree tried to grow to.
        slots: u64,
    },
    /// Attestation refused: the slot's balance is below the threshold.
    #[error("the slot's balance is below the threshold {threshold}")]
    BalanceBelowThreshold {
        /// The threshold asked for.
        threshold: u128,
    },
    /// Attestation refused: the leaf and Merkle path given do not hash to the root.
    #[error("the leaf of slot {slot} and its Merkle path do not lead to the root")]
    PathDoesNotReachRoot {
        /// The slot whose opening was given.
        slot: SlotIndex,
    },
    /// A public input given as a 32-byte word is at or above the scalar field modulus `r`.
    #[error("public input `{name}` is not below the BN254 scalar field modulus")]
    PublicInputNotInField {
        /// Which input.
        name: &'static str,
    },
    /// A public input does not fit its type (an address in 160 bits, an amount in 128).
    #[error("public input `{name}` does not fit in {bits} bits")]
    PublicInputOutOfRange {
        /// Which input.
        name: &'static str,
        /// Its width.
        bits: u32,
    },
    /// A proof in EVM form is malformed.
    #[error("invalid proof encoding: {reason}")]
    InvalidProofEncoding {
        /// What is wrong.
        reason: String,
    },
    /// A verifying key with another number of public inputs than the attestation circuit's 5.
    #[error(
        "verifying key is not for the attestation circuit: it takes {inputs} public inputs, not 5"
    )]
    VerifyingKeyMismatch {
        /// Number of public inputs of the key.
        inputs: usize,
    },
    /// A proving key whose sizes do not match the attestation circuit.
    #[error("proving key was not made for the attestation circuit")]
    ProvingKeyMismatch,
    /// A fresh proof did not verify against the proving key's own verifying key: the key is
    /// corrupted or was not made for this circuit.
    #[error("the proof just made does not verify against the proving key's verifying key")]
    ProofSelfCheck,
    /// Constraint synthesis failed (a bug: the witness is checked natively first).
    #[error("constraint synthesis failed: {0}")]
    Synthesis(#[from] ark_relations::gr1cs::SynthesisError),
    /// A key could not be encoded or decoded.
    #[error("invalid key encoding: {reason}")]
    KeyEncoding {
        /// What went wrong.
        reason: String,
    },
    /// A key file could not be read or written, or holds no valid key.
    #[error("key file {}: {reason}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
