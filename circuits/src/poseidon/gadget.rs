//! Poseidon as an R1CS gadget: the same permutation as the native [`super::hash`], over
//! [`FpVar`]s, with the very same constants ([`super::params`]).
//!
//! The gadget evaluates the plain form of the permutation documented on [`PoseidonParams`]
//! (round constants, S-box, full MDS matrix), not the native side's sparse-matrix form: in R1CS
//! only the S-boxes cost constraints, and additions and multiplications by constants are free
//! linear combinations either way. Each S-box `x^5` costs three constraints (`x^2`, `x^4`,
//! `x^5`); an S-box whose input is a constant (the capacity element in the first round) costs
//! none. `Poseidon(2)` is therefore 80 S-boxes, 240 constraints, and `Poseidon(5)` 107 S-boxes,
//! 321 constraints.
//!
//! Tests below check gadget and native hash agree on random inputs and that the constraint
//! system is satisfied by exactly the honest output.

use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::fields::FieldVar;
use ark_relations::gr1cs::SynthesisError;

use super::params::{params, PoseidonParams, INPUTS_MAX};
use crate::Fr;

/// A BN254 scalar-field element inside the constraint system.
pub type FrVar = FpVar<Fr>;

/// Poseidon hash of `N` in-circuit field elements (`1 <= N <= INPUTS_MAX`, checked at compile
/// time): the gadget form of [`super::hash`], with the same output for the same inputs.
///
/// # Errors
///
/// A [`SynthesisError`] from the constraint system (for example a missing assignment while
/// proving). The parameters for width `N + 1` always exist; if they did not, the error would
/// be [`SynthesisError::Unsatisfiable`].
pub fn hash<const N: usize>(inputs: &[FrVar; N]) -> Result<FrVar, SynthesisError> {
    const {
        assert!(
            N >= 1 && N <= INPUTS_MAX,
            "Poseidon takes 1 to INPUTS_MAX inputs"
        );
    }
    let params = params(N + 1).map_err(|_| SynthesisError::Unsatisfiable)?;
    let mut state = Vec::with_capacity(N + 1);
    state.push(FrVar::zero());
    state.extend(inputs.iter().cloned());
    permute(params, &mut state)?;
    state
        .into_iter()
        .next()
        .ok_or(SynthesisError::Unsatisfiable)
}

/// Poseidon hash of two in-circuit field elements: an internal node of the state tree.
///
/// # Errors
///
/// As [`hash`].
pub fn hash2(left: &FrVar, right: &FrVar) -> Result<FrVar, SynthesisError> {
    hash(&[left.clone(), right.clone()])
}

/// The permutation on `state` (`state.len() == params.width()`), round by round exactly as
/// documented on [`PoseidonParams`].
fn permute(params: &PoseidonParams, state: &mut [FrVar]) -> Result<(), SynthesisError> {
    let width = params.width();
    if state.len() != width {
        return Err(SynthesisError::Unsatisfiable);
    }
    for (round, constants) in params.ark().chunks_exact(width).enumerate() {
        for (x, c) in state.iter_mut().zip(constants) {
            *x += *c;
        }
        if params.is_full_round(round) {
            for x in state.iter_mut() {
                *x = sbox(x)?;
            }
        } else if let Some(first) = state.first_mut() {
            *first = sbox(first)?;
        }
        let mixed: Vec<FrVar> = params
            .mds()
            .iter()
            .map(|row| row.iter().zip(state.iter()).map(|(m, x)| x * *m).sum())
            .collect();
        for (x, y) in state.iter_mut().zip(mixed) {
            *x = y;
        }
    }
    Ok(())
}

/// `x^5` in three constraints (none for a constant).
fn sbox(x: &FrVar) -> Result<FrVar, SynthesisError> {
    let x2 = x.square()?;
    let x4 = x2.square()?;
    Ok(x4 * x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poseidon;
    use ark_ff::UniformRand;
    use ark_r1cs_std::alloc::AllocVar;
    use ark_r1cs_std::eq::EqGadget;
    use ark_r1cs_std::GR1CSVar;
    use ark_relations::gr1cs::{ConstraintSystem, ConstraintSystemRef};

    fn witnesses<const N: usize>(cs: &ConstraintSystemRef<Fr>, values: [Fr; N]) -> [FrVar; N] {
        values.map(|v| FrVar::new_witness(cs.clone(), || Ok(v)).expect("witness"))
    }

    /// Gadget output, satisfied system and constraint count for `N` random inputs.
    fn check_random<const N: usize>(constraints_expected: usize) {
        let mut rng = ark_std::test_rng();
        for _ in 0..4 {
            let values: [Fr; N] = std::array::from_fn(|_| Fr::rand(&mut rng));
            let cs = ConstraintSystem::<Fr>::new_ref();
            let inputs = witnesses(&cs, values);
            let out = hash(&inputs).expect("gadget");
            let native = poseidon::hash(values);
            assert_eq!(out.value().expect("value"), native, "{N} inputs");
            let expected = FrVar::new_input(cs.clone(), || Ok(native)).expect("input");
            out.enforce_equal(&expected).expect("enforce");
            assert!(cs.is_satisfied().expect("satisfiable check"));
            // One constraint for the equality check above.
            assert_eq!(cs.num_constraints(), constraints_expected + 1, "{N} inputs");
        }
    }

    #[test]
    fn gadget_matches_native_for_two_inputs() {
        check_random::<2>(240);
    }

    #[test]
    fn gadget_matches_native_for_five_inputs() {
        check_random::<5>(321);
    }

    #[test]
    fn gadget_matches_native_for_every_width_and_constant_inputs() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let one = FrVar::new_witness(cs.clone(), || Ok(Fr::from(1u64))).expect("witness");
        let out = hash(&[one.clone(), FrVar::constant(Fr::from(2u64))]).expect("gadget");
        assert_eq!(
            out.value().expect("value"),
            poseidon::hash2(Fr::from(1u64), Fr::from(2u64))
        );
        let constant = hash(&[FrVar::constant(Fr::from(3u64))]).expect("gadget");
        assert!(constant.is_constant());
        assert_eq!(
            constant.value().expect("value"),
            poseidon::hash([Fr::from(3u64)])
        );
        let twelve: [FrVar; INPUTS_MAX] = std::array::from_fn(|i| {
            FrVar::new_witness(cs.clone(), || Ok(Fr::from(i as u64 + 7))).expect("witness")
        });
        let values: [Fr; INPUTS_MAX] = std::array::from_fn(|i| Fr::from(i as u64 + 7));
        assert_eq!(
            hash(&twelve).expect("gadget").value().expect("value"),
            poseidon::hash(values)
        );
        assert!(cs.is_satisfied().expect("satisfiable check"));
    }

    #[test]
    fn a_wrong_output_is_unsatisfiable() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let inputs = witnesses(&cs, [Fr::from(1u64), Fr::from(2u64)]);
        let out = hash(&inputs).expect("gadget");
        let wrong = poseidon::hash2(Fr::from(1u64), Fr::from(3u64));
        let claimed = FrVar::new_input(cs.clone(), || Ok(wrong)).expect("input");
        out.enforce_equal(&claimed).expect("enforce");
        assert!(!cs.is_satisfied().expect("satisfiable check"));
    }
}
