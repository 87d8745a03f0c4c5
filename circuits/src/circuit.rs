//! The balance-attestation circuit: R1CS over BN254 for the statement of
//! [`crate::statement`].
//!
//! Public inputs, in order: `root, owner, token, threshold, context`. Private: `balance`,
//! `nonce`, `salt`, the slot index and its 32 Merkle siblings. Constraints:
//!
//! 1. **Ranges.** `owner` and `token` are decomposed into 160 bits, `threshold` into 128 (each
//!    packing enforced equal to the public input); `balance` is *defined* as the packing of
//!    128 bits, `nonce` of 64, the index as 32 bits. No value can wrap around the field.
//! 2. **Leaf.** `leaf = Poseidon(owner, token, balance, nonce, salt)`, circomlib's Poseidon
//!    ([`crate::poseidon::gadget`]).
//! 3. **Path.** From the leaf up, at level `i`: bit `i` of the index `0` means the current node
//!    is the left child (`Poseidon(node, sibling)`), `1` the right child
//!    (`Poseidon(sibling, node)`), exactly as [`MerklePath::compute_root`](crate::MerklePath::compute_root).
//!    The node after level 31 equals `root`.
//! 4. **Comparison.** `balance - threshold` equals the packing of 128 more bits. With both
//!    operands below 2^128 the difference is in `(-2^128, 2^128)`, far from wrapping modulo
//!    `r`, so it is a 128-bit number exactly when `balance >= threshold`.
//! 5. **Context.** `context^2` is computed, so `context` appears in a constraint. A public
//!    input in no constraint would not be bound by the proof. (arkworks' QAP reduction also
//!    adds an `input * 1 = input` row per input; this does not rely on it.)
//!
//! 8,839 constraints: 33 Poseidon hashes (32 x 240 + 321 = 8,001), 800 booleans, 32 selections
//! on the path, 5 equalities and 1 square. [`CONSTRAINTS_MAX`] bounds the count (a test checks
//! it and the exact breakdown).

use std::sync::OnceLock;

use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::boolean::Boolean;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::FieldVar;
use ark_r1cs_std::select::CondSelectGadget;
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, ConstraintSystemRef, OptimizationGoal, SynthesisError,
    SynthesisMode,
};

use crate::field::address_to_fr;
use crate::poseidon::gadget::{self, FrVar};
use crate::statement::{AttestationWitness, PUBLIC_INPUTS};
use crate::{Error, Fr, Result, TREE_DEPTH};

/// Bits of an address (`owner`, `token`).
pub const ADDRESS_BITS: usize = 160;
/// Bits of an amount (`balance`, `threshold`, `balance - threshold`).
pub const AMOUNT_BITS: usize = 128;
/// Bits of a nonce.
pub const NONCE_BITS: usize = 64;
/// Bits of a slot index (= the depth of the state tree).
pub const INDEX_BITS: usize = TREE_DEPTH;

/// Upper bound on the circuit's constraint count. It keeps the QAP domain at 2^14 (the domain
/// must hold the constraints plus one row per instance variable), which the proving time
/// depends on; a test fails if the circuit outgrows it.
pub const CONSTRAINTS_MAX: usize = 10_000;

/// The balance-attestation circuit, with or without a witness.
///
/// Without a witness ([`AttestationCircuit::blank`]) it only describes the constraints, which
/// is what a setup needs; proving needs [`AttestationCircuit::new`].
#[derive(Clone, Debug, Default)]
pub struct AttestationCircuit {
    witness: Option<AttestationWitness>,
}

impl AttestationCircuit {
    /// The circuit for setups: constraints only, no assignment.
    pub fn blank() -> Self {
        Self { witness: None }
    }

    /// The circuit assigned with `witness`. The witness is not checked here: an assignment of
    /// a false statement yields an unsatisfied system (see [`AttestationWitness::check`]).
    pub fn new(witness: AttestationWitness) -> Self {
        Self {
            witness: Some(witness),
        }
    }
}

/// Sizes of the constraint system, as a setup sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitShape {
    /// Number of constraints.
    pub constraints: usize,
    /// Number of instance variables, including the constant `1` (so [`PUBLIC_INPUTS`] + 1).
    pub instance_variables: usize,
    /// Number of witness variables.
    pub witness_variables: usize,
}

impl CircuitShape {
    /// Size of the QAP evaluation domain: the next power of two at or above constraints plus
    /// instance variables.
    pub fn domain_size(&self) -> usize {
        (self.constraints + self.instance_variables).next_power_of_two()
    }
}

/// The circuit's shape, synthesised once (in setup mode, about 50 ms) and cached.
///
/// # Errors
///
/// [`Error::Synthesis`] if the blank circuit cannot be synthesised (a bug).
pub fn shape() -> Result<CircuitShape> {
    static SHAPE: OnceLock<Result<CircuitShape, SynthesisError>> = OnceLock::new();
    let shape = SHAPE.get_or_init(|| {
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Setup);
        AttestationCircuit::blank().generate_constraints(cs.clone())?;
        cs.finalize();
        Ok(CircuitShape {
            constraints: cs.num_constraints(),
            instance_variables: cs.num_instance_variables(),
            witness_variables: cs.num_witness_variables(),
        })
    });
    (*shape).map_err(Error::Synthesis)
}

impl ConstraintSynthesizer<Fr> for AttestationCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let w = self.witness.as_ref();
        let value = |f: &dyn Fn(&AttestationWitness) -> Fr| {
            w.map(f).ok_or(SynthesisError::AssignmentMissing)
        };

        // Public inputs, in the verifier's order.
        let root = FrVar::new_input(cs.clone(), || value(&|w| w.root))?;
        let owner = FrVar::new_input(cs.clone(), || value(&|w| address_to_fr(&w.owner)))?;
        let token = FrVar::new_input(cs.clone(), || value(&|w| address_to_fr(&w.token)))?;
        let threshold = FrVar::new_input(cs.clone(), || value(&|w| Fr::from(w.threshold)))?;
        let context = FrVar::new_input(cs.clone(), || value(&|w| w.context))?;

        // 5. Bind `context` by one constraint.
        let _context_squared = context.square()?;

        // 1. Ranges.
        let owner_bits = new_bits(&cs, w.map(|w| le_bits(&w.owner)), ADDRESS_BITS)?;
        Boolean::le_bits_to_fp(&owner_bits)?.enforce_equal(&owner)?;
        let token_bits = new_bits(&cs, w.map(|w| le_bits(&w.token)), ADDRESS_BITS)?;
        Boolean::le_bits_to_fp(&token_bits)?.enforce_equal(&token)?;
        let threshold_bits = new_bits(
            &cs,
            w.map(|w| le_bits(&w.threshold.to_be_bytes())),
            AMOUNT_BITS,
        )?;
        Boolean::le_bits_to_fp(&threshold_bits)?.enforce_equal(&threshold)?;
        let balance_bits = new_bits(
            &cs,
            w.map(|w| le_bits(&w.balance.to_be_bytes())),
            AMOUNT_BITS,
        )?;
        let balance = Boolean::le_bits_to_fp(&balance_bits)?;
        let nonce_bits = new_bits(&cs, w.map(|w| le_bits(&w.nonce.to_be_bytes())), NONCE_BITS)?;
        let nonce = Boolean::le_bits_to_fp(&nonce_bits)?;
        let index_bits = new_bits(
            &cs,
            w.map(|w| le_bits(&w.slot.get().to_be_bytes())),
            INDEX_BITS,
        )?;
        let salt = FrVar::new_witness(cs.clone(), || value(&|w| w.salt))?;

        // 4. Comparison. A false statement gets the wrapped difference's low bits, which
        // cannot satisfy the packing equality.
        let difference_bits = new_bits(
            &cs,
            w.map(|w| le_bits(&w.balance.wrapping_sub(w.threshold).to_be_bytes())),
            AMOUNT_BITS,
        )?;
        Boolean::le_bits_to_fp(&difference_bits)?.enforce_equal(&(&balance - &threshold))?;

        // 2. Leaf.
        let mut node = gadget::hash(&[owner, token, balance, nonce, salt])?;

        // 3. Path.
        for (level, bit) in index_bits.iter().enumerate() {
            let sibling = FrVar::new_witness(cs.clone(), || {
                w.and_then(|w| w.path.siblings().get(level).copied())
                    .ok_or(SynthesisError::AssignmentMissing)
            })?;
            // bit = 1: the node is the right child, its sibling on the left.
            let left = FrVar::conditionally_select(bit, &sibling, &node)?;
            let right = &node + &sibling - &left;
            node = gadget::hash2(&left, &right)?;
        }
        node.enforce_equal(&root)?;

        debug_assert_eq!(cs.num_instance_variables(), PUBLIC_INPUTS + 1);
        Ok(())
    }
}

/// Allocates `count` boolean witnesses (one constraint each), little-endian, from `bits` (bits
/// past its end are 0).
fn new_bits(
    cs: &ConstraintSystemRef<Fr>,
    bits: Option<Vec<bool>>,
    count: usize,
) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    (0..count)
        .map(|i| {
            Boolean::new_witness(cs.clone(), || {
                bits.as_ref()
                    .map(|bits| bits.get(i).copied().unwrap_or(false))
                    .ok_or(SynthesisError::AssignmentMissing)
            })
        })
        .collect()
}

/// The bits of a big-endian integer, least significant first.
fn le_bits(be_bytes: &[u8]) -> Vec<bool> {
    be_bytes
        .iter()
        .rev()
        .flat_map(|byte| (0..8).map(move |i| (byte >> i) & 1 == 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::empty_subtree_roots;
    use crate::{leaf_hash, MerklePath, SlotIndex, StateTree};
    use ark_ff::{AdditiveGroup, Field};

    fn witness(balance: u128, threshold: u128) -> AttestationWitness {
        let owner = [0xa1; 20];
        let token = [0xb2; 20];
        let salt = Fr::from(0x5a17u64);
        let slot = SlotIndex::new(0b1011);
        let mut tree = StateTree::new();
        tree.set(SlotIndex::new(2), Fr::from(42u64)).expect("set");
        tree.set(slot, leaf_hash(owner, token, balance, 7, salt))
            .expect("set");
        AttestationWitness {
            root: tree.root(),
            owner,
            token,
            threshold,
            context: Fr::from(123u64),
            balance,
            nonce: 7,
            salt,
            slot,
            path: tree.path(slot),
        }
    }

    /// Synthesises `witness` and says whether the system is satisfied.
    fn satisfied(witness: AttestationWitness) -> bool {
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        AttestationCircuit::new(witness)
            .generate_constraints(cs.clone())
            .expect("synthesis");
        cs.finalize();
        cs.is_satisfied().expect("satisfiability check")
    }

    #[test]
    fn constraint_count_stays_under_the_limit() {
        let shape = shape().expect("shape");
        assert!(
            shape.constraints <= CONSTRAINTS_MAX,
            "{} constraints",
            shape.constraints
        );
        // 33 Poseidon hashes, 800 bits, 32 selections, 5 equalities, 1 square.
        assert_eq!(shape.constraints, 32 * 240 + 321 + 800 + 32 + 5 + 1);
        assert_eq!(shape.instance_variables, PUBLIC_INPUTS + 1);
        assert_eq!(shape.domain_size(), 1 << 14);
    }

    #[test]
    fn honest_witnesses_satisfy_the_circuit() {
        assert!(satisfied(witness(1_000, 1_000)));
        assert!(satisfied(witness(1_000, 0)));
        assert!(satisfied(witness(u128::MAX, u128::MAX - 1)));
        // The last slot of an otherwise empty tree: every index bit is 1.
        let mut w = witness(5, 5);
        let mut siblings = [Fr::ZERO; TREE_DEPTH];
        siblings.copy_from_slice(&empty_subtree_roots()[..TREE_DEPTH]);
        w.slot = SlotIndex::MAX;
        w.path = MerklePath::new(siblings);
        w.root = w.path.compute_root(w.slot, w.leaf());
        assert!(satisfied(w));
    }

    #[test]
    fn false_statements_do_not_satisfy_the_circuit() {
        // Balance below the threshold (the path is honest).
        assert!(!satisfied(witness(999, 1_000)));
        assert!(!satisfied(witness(0, u128::MAX)));
        // Balance inflated past the leaf.
        let mut w = witness(1_000, 1_000);
        w.balance = 2_000;
        assert!(!satisfied(w));
        // Index of another slot.
        let mut w = witness(1_000, 1_000);
        w.slot = SlotIndex::new(0b1010);
        assert!(!satisfied(w));
        // Another root, salt, nonce, owner or token.
        let mut w = witness(1_000, 1_000);
        w.root += Fr::ONE;
        assert!(!satisfied(w));
        let mut w = witness(1_000, 1_000);
        w.salt += Fr::ONE;
        assert!(!satisfied(w));
        let mut w = witness(1_000, 1_000);
        w.nonce += 1;
        assert!(!satisfied(w));
        let mut w = witness(1_000, 1_000);
        w.owner[19] ^= 1;
        assert!(!satisfied(w));
        let mut w = witness(1_000, 1_000);
        w.token[0] ^= 1;
        assert!(!satisfied(w));
    }

    #[test]
    fn little_endian_bits() {
        assert_eq!(
            le_bits(&[0x01, 0x80]),
            [
                false, false, false, false, false, false, false, true, true, false, false, false,
                false, false, false, false
            ]
        );
    }
}
