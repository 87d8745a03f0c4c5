//! Balance attestations end to end with the INSECURE dev keys: proving, verifying, the EVM
//! encoding, refusals of false statements and of mismatched keys, and key files.

use crate::common;

use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{AdditiveGroup, Field};
use common::{dev_keys, sample_witness, BALANCE};
use stablelane_circuits::field::fr_to_be_bytes;
use stablelane_circuits::keys::{
    proving_key_from_bytes, proving_key_to_bytes, read_proving_key, read_verifying_key,
    verifying_key_from_bytes, verifying_key_hash, verifying_key_to_bytes, write_proving_key,
    write_verifying_key, DEV_SETUP_SEED,
};
use stablelane_circuits::prover::{
    self, prepare_verifying_key, proof_from_evm, proof_to_evm, verify, verify_evm, verify_prepared,
    Proof,
};
use stablelane_circuits::{ChaCha20Rng, Error, Fr, PublicInputs, SeedableRng, SlotIndex};

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// A proof of "at least 1,000 units", bound to context 77, made once per test binary.
fn sample_proof() -> &'static (PublicInputs, Proof) {
    static PROOF: std::sync::OnceLock<(PublicInputs, Proof)> = std::sync::OnceLock::new();
    PROOF.get_or_init(|| {
        let witness = sample_witness(1_000_000_000, Fr::from(77u64));
        let proof = prover::prove(&dev_keys().0, &witness, &mut rng(1)).expect("prove");
        (witness.public_inputs(), proof)
    })
}

#[test]
fn a_true_statement_proves_and_verifies() {
    let (_, vk) = dev_keys();
    let (inputs, proof) = sample_proof();
    assert_eq!(verify(vk, inputs, proof), Ok(true));
    let pvk = prepare_verifying_key(vk).expect("prepared key");
    assert_eq!(verify_prepared(&pvk, inputs, proof), Ok(true));
    // Through the EVM encoding, as the Solidity verifier sees it.
    let words = proof_to_evm(proof);
    assert_eq!(proof_from_evm(&words).as_ref(), Ok(proof));
    assert_eq!(verify_evm(&pvk, &inputs.to_evm_words(), &words), Ok(true));
}

#[test]
fn the_threshold_may_equal_the_balance_or_be_zero() {
    let (pk, vk) = dev_keys();
    for threshold in [BALANCE, 0] {
        let witness = sample_witness(threshold, Fr::ZERO);
        let proof = prover::prove(pk, &witness, &mut rng(2)).expect("prove");
        assert_eq!(verify(vk, &witness.public_inputs(), &proof), Ok(true));
    }
}

#[test]
fn every_changed_public_input_is_rejected() {
    let (_, vk) = dev_keys();
    let (inputs, proof) = sample_proof();
    let mut changed = Vec::new();
    changed.push(PublicInputs {
        root: inputs.root + Fr::ONE,
        ..*inputs
    });
    let mut owner = inputs.owner;
    owner[19] ^= 1;
    changed.push(PublicInputs { owner, ..*inputs });
    let mut token = inputs.token;
    token[0] ^= 0x80;
    changed.push(PublicInputs { token, ..*inputs });
    // A lower threshold is also true of the slot, but it is not what was proven.
    changed.push(PublicInputs {
        threshold: inputs.threshold - 1,
        ..*inputs
    });
    changed.push(PublicInputs {
        context: inputs.context + Fr::ONE,
        ..*inputs
    });
    for other in &changed {
        assert_eq!(verify(vk, other, proof), Ok(false), "{other:?}");
    }
}

#[test]
fn a_tampered_proof_is_rejected() {
    let (_, vk) = dev_keys();
    let (inputs, proof) = sample_proof();
    let negated = Proof {
        a: (-proof.a.into_group()).into_affine(),
        ..proof.clone()
    };
    assert_eq!(verify(vk, inputs, &negated), Ok(false));
    let shifted = Proof {
        c: (proof.c + ark_bn254::G1Affine::generator()).into_affine(),
        ..proof.clone()
    };
    assert_eq!(verify(vk, inputs, &shifted), Ok(false));
    // A proof of another statement does not carry over.
    let other_witness = sample_witness(5, Fr::from(77u64));
    let other = prover::prove(&dev_keys().0, &other_witness, &mut rng(3)).expect("prove");
    assert_eq!(verify(vk, inputs, &other), Ok(false));
}

#[test]
fn proofs_are_randomised_and_both_verify() {
    let (pk, vk) = dev_keys();
    let witness = sample_witness(1, Fr::from(9u64));
    let first = prover::prove(pk, &witness, &mut rng(4)).expect("prove");
    let second = prover::prove(pk, &witness, &mut rng(5)).expect("prove");
    assert_ne!(first, second);
    let inputs = witness.public_inputs();
    assert_eq!(verify(vk, &inputs, &first), Ok(true));
    assert_eq!(verify(vk, &inputs, &second), Ok(true));
}

#[test]
fn false_statements_are_refused_before_proving() {
    let pk = &dev_keys().0;
    let above = sample_witness(BALANCE + 1, Fr::ZERO);
    assert_eq!(
        prover::prove(pk, &above, &mut rng(6)),
        Err(Error::BalanceBelowThreshold {
            threshold: BALANCE + 1
        })
    );
    let mut inflated = sample_witness(BALANCE, Fr::ZERO);
    inflated.balance = BALANCE * 2;
    inflated.threshold = BALANCE * 2;
    assert_eq!(
        prover::prove(pk, &inflated, &mut rng(6)),
        Err(Error::PathDoesNotReachRoot {
            slot: SlotIndex::new(5)
        })
    );
    let mut elsewhere = sample_witness(1, Fr::ZERO);
    elsewhere.slot = SlotIndex::new(4);
    assert!(matches!(
        prover::prove(pk, &elsewhere, &mut rng(6)),
        Err(Error::PathDoesNotReachRoot { .. })
    ));
}

#[test]
fn inputs_at_or_above_r_are_rejected_not_reduced() {
    let (_, vk) = dev_keys();
    let pvk = prepare_verifying_key(vk).expect("prepared key");
    let (inputs, proof) = sample_proof();
    let words = proof_to_evm(proof);
    // context + r (= the same residue) must not verify.
    let mut aliased = inputs.to_evm_words();
    let modulus_minus_one = fr_to_be_bytes(&-Fr::ONE);
    let mut carry = 1u16; // r = (r - 1) + 1
    for (byte, m) in aliased[4].iter_mut().zip(modulus_minus_one).rev() {
        let sum = u16::from(*byte) + u16::from(m) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(
        verify_evm(&pvk, &aliased, &words),
        Err(Error::PublicInputNotInField { name: "context" })
    );
    // An owner that is not an address.
    let mut wide = inputs.to_evm_words();
    wide[1][0] = 1;
    assert_eq!(
        verify_evm(&pvk, &wide, &words),
        Err(Error::PublicInputOutOfRange {
            name: "owner",
            bits: 160
        })
    );
}

#[test]
fn mismatched_keys_are_refused() {
    let (pk, vk) = dev_keys();
    let witness = sample_witness(1, Fr::ZERO);

    let mut short_vk = vk.clone();
    short_vk.gamma_abc_g1.pop();
    assert_eq!(
        verify(&short_vk, &witness.public_inputs(), &sample_proof().1),
        Err(Error::VerifyingKeyMismatch { inputs: 4 })
    );

    let mut short_pk = pk.clone();
    short_pk.l_query.pop();
    assert_eq!(
        prover::prove(&short_pk, &witness, &mut rng(7)),
        Err(Error::ProvingKeyMismatch)
    );

    // Right sizes, wrong values: caught by the self-check.
    let mut corrupted = pk.clone();
    corrupted.delta_g1 = (corrupted.delta_g1 + ark_bn254::G1Affine::generator()).into_affine();
    assert_eq!(
        prover::prove(&corrupted, &witness, &mut rng(7)),
        Err(Error::ProofSelfCheck)
    );
}

#[test]
fn keys_round_trip_through_bytes_and_files() {
    let (pk, vk) = dev_keys();
    let vk_bytes = verifying_key_to_bytes(vk).expect("encode");
    assert_eq!(verifying_key_from_bytes(&vk_bytes).as_ref(), Ok(vk));
    let hash = verifying_key_hash(vk).expect("hash");
    assert_eq!(verifying_key_hash(&pk.vk).expect("hash"), hash);

    let pk_bytes = proving_key_to_bytes(pk).expect("encode");
    assert_eq!(proving_key_from_bytes(&pk_bytes).as_ref(), Ok(pk));
    let mut trailing = vk_bytes.clone();
    trailing.push(0);
    assert!(matches!(
        verifying_key_from_bytes(&trailing),
        Err(Error::KeyEncoding { .. })
    ));
    // Bytes 32..96 hold beta (G2): a changed x is off the twist or, almost surely, outside
    // the subgroup; either way validation refuses it. (A changed G1 x is often just another
    // valid point: G1 has cofactor 1.)
    let mut corrupted = vk_bytes.clone();
    corrupted[40] ^= 0x55;
    assert!(matches!(
        verifying_key_from_bytes(&corrupted),
        Err(Error::KeyEncoding { .. })
    ));

    let dir = std::env::temp_dir().join(format!("stablelane-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (pk_path, vk_path) = (dir.join("attestation.pk"), dir.join("attestation.vk"));
    write_proving_key(&pk_path, pk).expect("write pk");
    write_verifying_key(&vk_path, vk).expect("write vk");
    assert_eq!(read_proving_key(&pk_path).as_ref(), Ok(pk));
    assert_eq!(read_verifying_key(&vk_path).as_ref(), Ok(vk));
    assert!(matches!(
        read_verifying_key(&dir.join("missing.vk")),
        Err(Error::KeyFile { .. })
    ));
    assert!(matches!(
        read_verifying_key(&pk_path),
        Err(Error::KeyFile { .. })
    ));
    std::fs::remove_dir_all(&dir).expect("clean up");

    // The seed is published, which is what makes the setup insecure.
    assert_eq!(&DEV_SETUP_SEED, b"stablelane INSECURE dev setup v1");
}
