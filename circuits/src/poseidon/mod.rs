//! Poseidon over BN254 with circomlib's parameters and output.
//!
//! `hash(x_1..x_n)` permutes the state `[0, x_1, ..., x_n]` (width `t = n + 1`) and returns
//! `state[0]`, exactly as circomlib's `Poseidon(n)` template and circomlibjs' `poseidon`
//! do. (The arkworks sponge returns `state[1]` and is therefore *not* compatible.)
//!
//! The constants live in [`PoseidonParams`], one set per width, built once on first use
//! ([`params`]); the R1CS gadget uses the very same ones. The native permutation runs an
//! optimised but bit-exact form of it (see the `optimized` module) without heap allocation.
//! The R1CS form, [`gadget`], runs the plain permutation on the same [`PoseidonParams`].

pub mod gadget;
mod optimized;
mod params;

use ark_ff::{AdditiveGroup, Field};

pub use params::{params, PoseidonParams, ALPHA, FULL_ROUNDS, INPUTS_MAX, WIDTH_MAX};

use crate::{Error, Fr, Result};

/// Poseidon hash of `N` field elements (`1 <= N <= INPUTS_MAX`, checked at compile time).
///
/// # Panics
///
/// Only if the compiled-in constants for width `N + 1` were missing or malformed, which the
/// crate's tests rule out for every supported width; never because of the inputs.
///
/// ```
/// use stablelane_circuits::{poseidon, Fr};
///
/// let h = poseidon::hash([Fr::from(1u64), Fr::from(2u64)]);
/// assert_eq!(
///     h.to_string(),
///     "7853200120776062878684798364095072458815029376092732009249414926327459813530"
/// );
/// ```
pub fn hash<const N: usize>(inputs: [Fr; N]) -> Fr {
    const {
        assert!(
            N >= 1 && N <= INPUTS_MAX,
            "Poseidon takes 1 to INPUTS_MAX inputs"
        );
    }
    // Invariant: parameters exist for every width 2..=WIDTH_MAX (compiled-in constants; the
    // test vectors exercise each width).
    let params = params(N + 1).expect("circomlib Poseidon parameters for every supported width");
    permute_inputs(params, &inputs)
}

/// Poseidon hash of two field elements: the internal node of the state tree.
pub fn hash2(left: Fr, right: Fr) -> Fr {
    hash([left, right])
}

/// Poseidon hash of a slice of `1..=INPUTS_MAX` field elements.
///
/// # Errors
///
/// [`Error::PoseidonInputCount`] for an empty slice or more than [`INPUTS_MAX`] inputs.
pub fn hash_slice(inputs: &[Fr]) -> Result<Fr> {
    let count_error = || Error::PoseidonInputCount {
        inputs: inputs.len(),
        inputs_max: INPUTS_MAX,
    };
    if inputs.is_empty() || inputs.len() > INPUTS_MAX {
        return Err(count_error());
    }
    let params = params(inputs.len() + 1).map_err(|_| count_error())?;
    Ok(permute_inputs(params, inputs))
}

/// Runs the permutation on `[0, inputs..]` and returns `state[0]`.
/// `inputs.len()` must be `params.inputs()`.
#[inline]
fn permute_inputs(params: &PoseidonParams, inputs: &[Fr]) -> Fr {
    let mut buffer = [Fr::ZERO; WIDTH_MAX];
    let state = &mut buffer[..params.width()];
    for (x, input) in state.iter_mut().skip(1).zip(inputs) {
        *x = *input;
    }
    let done = params
        .optimized
        .as_ref()
        .is_some_and(|optimized| optimized.permute(state));
    if !done {
        params::permute_reference(params, state);
    }
    state[0]
}

/// The S-box `x -> x^5`.
#[inline(always)]
fn sbox(x: &mut Fr) {
    let x2 = x.square();
    let x4 = x2.square();
    *x *= x4;
}

/// `state <- M * state` for the matrix given by its rows (each as long as the state).
#[inline(always)]
fn mat_mul<'a>(rows: impl Iterator<Item = &'a [Fr]>, state: &mut [Fr]) {
    let mut out = [Fr::ZERO; WIDTH_MAX];
    for (o, row) in out.iter_mut().zip(rows) {
        *o = dot(row, state);
    }
    for (x, o) in state.iter_mut().zip(out) {
        *x = o;
    }
}

/// `sum_i a[i] * b[i]` over the common length.
#[inline(always)]
fn dot(a: &[Fr], b: &[Fr]) -> Fr {
    let mut acc = Fr::ZERO;
    for (x, y) in a.iter().zip(b) {
        acc += *x * y;
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::UniformRand;
    use light_poseidon::{Poseidon, PoseidonHasher};

    fn reference_hash(inputs: &[Fr]) -> Fr {
        let params = params(inputs.len() + 1).expect("supported width");
        let mut state = vec![Fr::ZERO];
        state.extend_from_slice(inputs);
        params::permute_reference(params, &mut state);
        state[0]
    }

    #[test]
    fn known_vector_one_two() {
        let expected =
            "7853200120776062878684798364095072458815029376092732009249414926327459813530";
        assert_eq!(hash2(Fr::from(1u64), Fr::from(2u64)).to_string(), expected);
    }

    #[test]
    fn optimised_equals_reference_and_light_poseidon_for_every_width() {
        let mut rng = ark_std::test_rng();
        for n in 1..=INPUTS_MAX {
            let p = params(n + 1).expect("supported width");
            assert!(
                p.optimized.is_some(),
                "width {} has optimised constants",
                n + 1
            );
            let mut light = Poseidon::<Fr>::new_circom(n).expect("light-poseidon width");
            for _ in 0..3 {
                let inputs: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
                let ours = hash_slice(&inputs).expect("valid count");
                assert_eq!(ours, reference_hash(&inputs), "{n} inputs");
                assert_eq!(
                    ours,
                    light.hash(&inputs).expect("light-poseidon hash"),
                    "{n} inputs"
                );
            }
        }
    }

    #[test]
    fn fixed_and_slice_forms_agree() {
        let xs: Vec<Fr> = (1..=5u64).map(Fr::from).collect();
        assert_eq!(hash([xs[0]]), hash_slice(&xs[..1]).expect("1 input"));
        assert_eq!(hash2(xs[0], xs[1]), hash_slice(&xs[..2]).expect("2 inputs"));
        assert_eq!(
            hash([xs[0], xs[1], xs[2], xs[3], xs[4]]),
            hash_slice(&xs).expect("5 inputs")
        );
    }

    #[test]
    fn rejects_bad_input_counts_and_widths() {
        assert_eq!(
            hash_slice(&[]),
            Err(Error::PoseidonInputCount {
                inputs: 0,
                inputs_max: INPUTS_MAX
            })
        );
        let many = vec![Fr::ONE; INPUTS_MAX + 1];
        assert!(matches!(
            hash_slice(&many),
            Err(Error::PoseidonInputCount { .. })
        ));
        for width in [0, 1, WIDTH_MAX + 1, usize::MAX] {
            assert!(
                matches!(params(width), Err(Error::PoseidonWidth { .. })),
                "width {width}"
            );
        }
    }

    #[test]
    fn params_have_circomlib_shape() {
        let p = params(3).expect("width 3");
        assert_eq!(
            (p.width(), p.inputs(), p.full_rounds(), p.partial_rounds()),
            (3, 2, 8, 57)
        );
        assert_eq!((p.rounds(), p.alpha()), (65, 5));
        assert_eq!(p.ark().len(), 65 * 3);
        assert_eq!(p.mds().len(), 3);
        assert!(p.round_constants(64).is_some() && p.round_constants(65).is_none());
        assert!(p.is_full_round(3) && !p.is_full_round(4) && !p.is_full_round(60));
        assert!(p.is_full_round(61));
        assert_eq!(params(6).expect("width 6").partial_rounds(), 60);
    }
}
