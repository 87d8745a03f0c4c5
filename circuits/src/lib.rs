//! Stablelane's proof system, native side: Poseidon over BN254 with circomlib's parameters,
//! the depth-32 sparse Merkle tree that holds the ledger state, and the leaf encoding.
//!
//! Everything here is bit-exact with circomlib/circomlibjs (checked against committed test
//! vectors in `vectors/circomlib.json`), so that roots and paths computed by the node are the
//! ones the Groth16 circuits prove membership in. The crate is pure computation: it does no I/O,
//! keeps no persistent state and knows nothing about accounts, balances rules or signatures. It
//! is not (yet) the prover: the R1CS gadgets will reuse the constants exposed by
//! [`poseidon::params`].
//!
//! - [`poseidon`]: the hash ([`poseidon::hash`], [`poseidon::hash2`]) and its parameters.
//! - [`tree`]: [`StateTree`], [`MerklePath`], [`SlotIndex`] and the empty-subtree hashes.
//! - [`leaf`]: [`leaf_hash`], the encoding of one account slot.
//! - [`field`]: conversions between [`Fr`] and bytes.

pub mod field;
pub mod leaf;
pub mod poseidon;
pub mod tree;

/// The BN254 scalar field, in which every hash, leaf and root of this crate lives.
pub use ark_bn254::Fr;
pub use leaf::leaf_hash;
pub use tree::{empty_root, MerklePath, SlotIndex, StateTree, TREE_DEPTH};

/// Errors of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
    /// The tree could not reserve memory to grow to this many slots.
    #[error("could not allocate a state tree of {slots} slots")]
    TreeAllocation {
        /// Number of slots the tree tried to grow to.
        slots: u64,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
