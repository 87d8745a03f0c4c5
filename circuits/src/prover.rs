//! Proving and verifying balance attestations (Groth16 over BN254), and the EVM encoding of
//! proofs.
//!
//! - [`prove`] checks the witness natively first ([`AttestationWitness::check`]), so a false
//!   statement is refused with a precise error and no proving work; it then checks the proving
//!   key's shape, proves, and verifies its own proof against the key's verifying key (a few
//!   milliseconds), so a key of another circuit is caught instead of yielding a useless proof.
//! - [`verify`] / [`verify_prepared`] check a proof against [`PublicInputs`].
//! - [`proof_to_evm`] / [`proof_from_evm`] convert to and from the `uint256[8]` of the Solidity
//!   verifier: `[a.x, a.y, b.x.c1, b.x.c0, b.y.c1, b.y.c0, c.x, c.y]`, G2 coordinates in the
//!   EVM precompile's order (imaginary part first). [`verify_evm`] verifies that form
//!   directly, with the Solidity verifier's strictness (inputs below `r`, coordinates below
//!   `q`), reporting what is malformed as an error where the contract returns `false`.
//!
//! Prover randomness must be secret and uniform: it is what hides the balance. Any
//! `rand 0.8` `CryptoRng` works, such as [`ChaCha20Rng`](crate::ChaCha20Rng) seeded from the
//! operating system.

use std::time::Instant;

use ark_bn254::{Bn254, Fq, Fq2, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_ff::{AdditiveGroup, BigInt, PrimeField};
use ark_groth16::Groth16;
use ark_std::rand::{CryptoRng, RngCore};

use crate::circuit::{self, AttestationCircuit};
use crate::field::EvmWord;
use crate::keys::{check_verifying_key, PreparedVerifyingKey, ProvingKey, VerifyingKey};
use crate::statement::PUBLIC_INPUTS;
pub use crate::statement::{AttestationWitness, PublicInputs};
use crate::{Error, Result};

/// A Groth16 proof over BN254 (two G1 points and one G2 point).
pub type Proof = ark_groth16::Proof<Bn254>;

/// Number of 32-byte words of a proof in EVM form.
pub const PROOF_WORDS: usize = 8;

/// Proves `witness`'s statement with `pk`.
///
/// # Errors
///
/// - [`Error::BalanceBelowThreshold`] or [`Error::PathDoesNotReachRoot`] for a false
///   statement (nothing is proven);
/// - [`Error::ProvingKeyMismatch`] or [`Error::VerifyingKeyMismatch`] for a key of another
///   circuit, [`Error::ProofSelfCheck`] if the proof does not verify against `pk`'s own
///   verifying key (a corrupted key);
/// - [`Error::Synthesis`] if synthesis fails (a bug).
pub fn prove<R: RngCore + CryptoRng>(
    pk: &ProvingKey,
    witness: &AttestationWitness,
    rng: &mut R,
) -> Result<Proof> {
    witness.check()?;
    check_proving_key(pk)?;
    let started = Instant::now();
    let proof = Groth16::<Bn254>::create_random_proof_with_reduction(
        AttestationCircuit::new(witness.clone()),
        pk,
        rng,
    )?;
    let proving_ms = started.elapsed().as_millis();
    if !verify(&pk.vk, &witness.public_inputs(), &proof)? {
        return Err(Error::ProofSelfCheck);
    }
    tracing::debug!(
        target: "circuits::prover",
        proving_ms,
        slot = %witness.slot,
        "attestation proven"
    );
    Ok(proof)
}

/// Checks that `pk` was made for the attestation circuit: its queries have the sizes a setup
/// of this circuit produces.
///
/// # Errors
///
/// [`Error::ProvingKeyMismatch`] or [`Error::VerifyingKeyMismatch`] otherwise;
/// [`Error::Synthesis`] if the circuit's shape cannot be computed (a bug).
pub fn check_proving_key(pk: &ProvingKey) -> Result<()> {
    check_verifying_key(&pk.vk)?;
    let shape = circuit::shape()?;
    let variables = shape.instance_variables + shape.witness_variables;
    let matches = pk.a_query.len() == variables
        && pk.b_g1_query.len() == variables
        && pk.b_g2_query.len() == variables
        && pk.l_query.len() == shape.witness_variables
        && pk.h_query.len() + 1 == shape.domain_size();
    if !matches {
        return Err(Error::ProvingKeyMismatch);
    }
    Ok(())
}

/// Prepares `vk` for [`verify_prepared`] (one pairing; worth it from the second proof on).
///
/// # Errors
///
/// [`Error::VerifyingKeyMismatch`] for a key with another number of public inputs.
pub fn prepare_verifying_key(vk: &VerifyingKey) -> Result<PreparedVerifyingKey> {
    check_verifying_key(vk)?;
    Ok(ark_groth16::prepare_verifying_key(vk))
}

/// Whether `proof` proves the statement with `inputs` under `vk`.
///
/// # Errors
///
/// [`Error::VerifyingKeyMismatch`] for a key with another number of public inputs.
pub fn verify(vk: &VerifyingKey, inputs: &PublicInputs, proof: &Proof) -> Result<bool> {
    verify_prepared(&prepare_verifying_key(vk)?, inputs, proof)
}

/// [`verify`] with a prepared key.
///
/// # Errors
///
/// [`Error::VerifyingKeyMismatch`] for a key with another number of public inputs.
pub fn verify_prepared(
    pvk: &PreparedVerifyingKey,
    inputs: &PublicInputs,
    proof: &Proof,
) -> Result<bool> {
    check_verifying_key(&pvk.vk)?;
    let inputs = inputs.to_field_elements();
    Ok(Groth16::<Bn254>::verify_proof(pvk, proof, &inputs)?)
}

/// Verifies a proof given as the Solidity verifier takes it: `uint256[8]` proof and
/// `uint256[5]` inputs, 32-byte big-endian words.
///
/// `Ok(false)` means well-formed but not a valid proof. Where the Solidity verifier returns
/// `false` for malformed data, this returns an error saying what is malformed.
///
/// # Errors
///
/// The errors of [`PublicInputs::from_evm_words`] (input `>= r` or out of range),
/// [`proof_from_evm`] (coordinate `>= q`, point not on the curve or not in the subgroup) and
/// [`verify_prepared`].
pub fn verify_evm(
    pvk: &PreparedVerifyingKey,
    inputs: &[EvmWord; PUBLIC_INPUTS],
    proof: &[EvmWord; PROOF_WORDS],
) -> Result<bool> {
    let inputs = PublicInputs::from_evm_words(inputs)?;
    let proof = proof_from_evm(proof)?;
    verify_prepared(pvk, &inputs, &proof)
}

/// The proof as the Solidity verifier's `uint256[8]`:
/// `[a.x, a.y, b.x.c1, b.x.c0, b.y.c1, b.y.c0, c.x, c.y]`, big-endian words. A point at
/// infinity is `(0, 0)`, as the precompiles encode it.
pub fn proof_to_evm(proof: &Proof) -> [EvmWord; PROOF_WORDS] {
    let (a_x, a_y) = g1_coordinates(&proof.a);
    let (c_x, c_y) = g1_coordinates(&proof.c);
    let (b_x, b_y) = proof.b.xy().unwrap_or((Fq2::ZERO, Fq2::ZERO));
    [a_x, a_y, b_x.c1, b_x.c0, b_y.c1, b_y.c0, c_x, c_y].map(|x| fq_to_word(&x))
}

/// Reads a proof in the Solidity verifier's `uint256[8]` form (see [`proof_to_evm`]).
///
/// # Errors
///
/// [`Error::InvalidProofEncoding`] if a coordinate is not below the base field modulus `q`,
/// or a point is not on its curve or not in the prime-order subgroup.
pub fn proof_from_evm(words: &[EvmWord; PROOF_WORDS]) -> Result<Proof> {
    let mut coordinates = [Fq::ZERO; PROOF_WORDS];
    for (index, (x, word)) in coordinates.iter_mut().zip(words).enumerate() {
        *x = fq_from_word(word).ok_or(Error::InvalidProofEncoding {
            reason: format!("word {index} is not below the base field modulus"),
        })?;
    }
    let [a_x, a_y, b_x1, b_x0, b_y1, b_y0, c_x, c_y] = coordinates;
    Ok(Proof {
        a: g1_point(a_x, a_y, "a")?,
        b: g2_point(Fq2::new(b_x0, b_x1), Fq2::new(b_y0, b_y1))?,
        c: g1_point(c_x, c_y, "c")?,
    })
}

fn g1_coordinates(p: &G1Affine) -> (Fq, Fq) {
    p.xy().unwrap_or((Fq::ZERO, Fq::ZERO))
}

fn g1_point(x: Fq, y: Fq, name: &str) -> Result<G1Affine> {
    if x == Fq::ZERO && y == Fq::ZERO {
        return Ok(G1Affine::zero());
    }
    let p = G1Affine::new_unchecked(x, y);
    if !p.is_on_curve() || !p.is_in_correct_subgroup_assuming_on_curve() {
        return Err(Error::InvalidProofEncoding {
            reason: format!("{name} is not a point of G1"),
        });
    }
    Ok(p)
}

fn g2_point(x: Fq2, y: Fq2) -> Result<G2Affine> {
    if x == Fq2::ZERO && y == Fq2::ZERO {
        return Ok(G2Affine::zero());
    }
    let p = G2Affine::new_unchecked(x, y);
    if !p.is_on_curve() || !p.is_in_correct_subgroup_assuming_on_curve() {
        return Err(Error::InvalidProofEncoding {
            reason: "b is not a point of G2".to_owned(),
        });
    }
    Ok(p)
}

/// A base-field element as a big-endian word.
pub(crate) fn fq_to_word(x: &Fq) -> EvmWord {
    let limbs = x.into_bigint().0;
    let mut out = [0u8; 32];
    for (chunk, limb) in out.chunks_exact_mut(8).zip(limbs.iter().rev()) {
        chunk.copy_from_slice(&limb.to_be_bytes());
    }
    out
}

/// A big-endian word as a base-field element, `None` at or above `q`.
fn fq_from_word(word: &EvmWord) -> Option<Fq> {
    let mut limbs = [0u64; 4];
    for (limb, chunk) in limbs.iter_mut().rev().zip(word.chunks_exact(8)) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        *limb = u64::from_be_bytes(bytes);
    }
    Fq::from_bigint(BigInt::new(limbs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::short_weierstrass::SWCurveConfig;
    use ark_ec::CurveGroup;
    use ark_ff::{Field, UniformRand};

    fn random_proof() -> Proof {
        let mut rng = ark_std::test_rng();
        Proof {
            a: ark_bn254::G1Projective::rand(&mut rng).into_affine(),
            b: ark_bn254::G2Projective::rand(&mut rng).into_affine(),
            c: ark_bn254::G1Projective::rand(&mut rng).into_affine(),
        }
    }

    #[test]
    fn evm_form_round_trips_in_precompile_order() {
        let proof = random_proof();
        let words = proof_to_evm(&proof);
        let (b_x, b_y) = proof.b.xy().expect("finite");
        assert_eq!(words[2], fq_to_word(&b_x.c1));
        assert_eq!(words[3], fq_to_word(&b_x.c0));
        assert_eq!(words[4], fq_to_word(&b_y.c1));
        assert_eq!(words[5], fq_to_word(&b_y.c0));
        assert_eq!(proof_from_evm(&words), Ok(proof));
        let infinity = Proof {
            a: G1Affine::zero(),
            b: G2Affine::zero(),
            c: G1Affine::zero(),
        };
        assert_eq!(proof_to_evm(&infinity), [[0u8; 32]; PROOF_WORDS]);
        assert_eq!(proof_from_evm(&[[0u8; 32]; PROOF_WORDS]), Ok(infinity));
    }

    #[test]
    fn malformed_evm_proofs_are_rejected() {
        let words = proof_to_evm(&random_proof());
        // A coordinate at or above q.
        let mut bad = words;
        bad[6] = fq_to_word(&(-Fq::ONE));
        bad[6][31] = bad[6][31].wrapping_add(1); // q itself
        assert!(fq_from_word(&bad[6]).is_none());
        assert!(matches!(
            proof_from_evm(&bad),
            Err(Error::InvalidProofEncoding { .. })
        ));
        // Off the curve, in G1 and in G2; swapped G2 halves (the non-EVM order).
        for index in [0, 3, 7] {
            let mut bad = words;
            bad[index][31] ^= 1;
            assert!(proof_from_evm(&bad).is_err(), "word {index}");
        }
        let mut swapped = words;
        swapped.swap(2, 3);
        swapped.swap(4, 5);
        assert!(proof_from_evm(&swapped).is_err());
    }

    #[test]
    fn a_g2_point_outside_the_subgroup_is_rejected() {
        // Find a point on the twist that is not in the r-order subgroup: x = i, 1 + i, ...
        let mut x = Fq2::new(Fq::ZERO, Fq::ONE);
        let p = loop {
            let rhs = x.square() * x + ark_bn254::g2::Config::COEFF_B;
            if let Some(y) = rhs.sqrt() {
                let p = G2Affine::new_unchecked(x, y);
                if p.is_on_curve() && !p.is_in_correct_subgroup_assuming_on_curve() {
                    break p;
                }
            }
            x += Fq2::ONE;
        };
        let mut words = proof_to_evm(&random_proof());
        let (x, y) = p.xy().expect("finite");
        words[2] = fq_to_word(&x.c1);
        words[3] = fq_to_word(&x.c0);
        words[4] = fq_to_word(&y.c1);
        words[5] = fq_to_word(&y.c0);
        assert_eq!(
            proof_from_evm(&words),
            Err(Error::InvalidProofEncoding {
                reason: "b is not a point of G2".to_owned()
            })
        );
    }
}
