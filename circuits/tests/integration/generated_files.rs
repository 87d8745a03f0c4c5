//! Freshness of the files generated from the INSECURE dev keys and committed:
//!
//! - `contracts/src/Groth16Verifier.sol`, the Solidity verifier of the dev verifying key;
//! - `contracts/test/fixtures/groth16.json`, a valid proof with its public inputs for the
//!   forge tests (made with a fixed prover seed, so it is deterministic too), plus a point on
//!   the G2 twist outside the subgroup for the verifier's failure path.
//!
//! Each test renders its file and fails if the committed one differs by a byte. To rewrite
//! them after a deliberate change (circuit, keys, template), run
//! `STABLELANE_BLESS=1 cargo test -p stablelane-circuits --test integration generated_files` and commit
//! the result.

use crate::common;

use std::path::{Path, PathBuf};

use ark_bn254::{Fq, Fq2, G2Affine};
use ark_ec::short_weierstrass::SWCurveConfig;
use ark_ff::{AdditiveGroup, BigInteger, Field, PrimeField};
use common::{dev_keys, sample_witness};
use stablelane_circuits::field::{fr_to_be_bytes, EvmWord};
use stablelane_circuits::keys::{
    check_dev_keys_allowed, verifying_key_hash, DEVNET_CHAIN_ID, INSECURE_DEV_VERIFYING_KEY_HASH,
};
use stablelane_circuits::prover::{self, proof_to_evm, verify_evm, PROOF_WORDS};
use stablelane_circuits::solidity::{dev_setup_description, render_verifier};
use stablelane_circuits::{ChaCha20Rng, Fr, SeedableRng};

/// Prover seed of the fixture proof (public: the fixture is test data, not a secret).
const FIXTURE_PROVER_SEED: [u8; 32] = *b"stablelane groth16 fixture proof";

/// Threshold of the fixture statement: 1,000 units of a 6-decimal token.
const FIXTURE_THRESHOLD: u128 = 1_000_000_000;

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// Fails unless `path` holds exactly `fresh`; with `STABLELANE_BLESS=1`, writes it instead.
fn check_or_bless(relative: &str, fresh: &str) {
    let path = repo_path(relative);
    if std::env::var("STABLELANE_BLESS").as_deref() == Ok("1") {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create directory");
        }
        std::fs::write(&path, fresh).expect("write generated file");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let line = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()))
            + 1;
        panic!(
            "{relative} is stale (first difference at line {line}): regenerate it with \
             `STABLELANE_BLESS=1 cargo test -p stablelane-circuits --test integration generated_files` \
             and commit the result"
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    let digits: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("0x{digits}")
}

/// The first point on the G2 twist, scanning x = i, 1 + i, 2 + i, ..., that is not in the
/// prime-order subgroup, as `[x.c1, x.c0, y.c1, y.c0]`: a `B` that passes the verifier's
/// curve check and makes the pairing precompile fail.
fn g2_point_outside_subgroup() -> [EvmWord; 4] {
    let mut x = Fq2::new(Fq::ZERO, Fq::ONE);
    loop {
        let rhs = x.square() * x + ark_bn254::g2::Config::COEFF_B;
        if let Some(y) = rhs.sqrt() {
            let p = G2Affine::new_unchecked(x, y);
            if p.is_on_curve() && !p.is_in_correct_subgroup_assuming_on_curve() {
                return [x.c1, x.c0, y.c1, y.c0].map(|c| fq_word(&c));
            }
        }
        x += Fq2::ONE;
    }
}

fn fq_word(x: &Fq) -> EvmWord {
    let bytes = x.into_bigint().to_bytes_be();
    let mut word = [0u8; 32];
    word[32 - bytes.len()..].copy_from_slice(&bytes);
    word
}

#[test]
fn the_dev_key_hash_constant_is_the_dev_setups_and_is_refused_off_anvil() {
    let (_, vk) = dev_keys();
    let hash = verifying_key_hash(vk).expect("hash");
    assert_eq!(hash, INSECURE_DEV_VERIFYING_KEY_HASH);
    assert!(check_dev_keys_allowed(DEVNET_CHAIN_ID, &hash, false).is_ok());
    let refused = check_dev_keys_allowed(10, &hash, false).expect_err("refused on chain 10");
    assert!(refused.to_string().contains("INSECURE"), "{refused}");
    assert!(
        check_dev_keys_allowed(10, &hash, true).is_ok(),
        "explicitly allowed"
    );
    assert!(
        check_dev_keys_allowed(10, &[7; 32], false).is_ok(),
        "another key"
    );
}

#[test]
fn solidity_verifier_is_fresh() {
    let (_, vk) = dev_keys();
    let source = render_verifier(vk, &dev_setup_description()).expect("render");
    let hash = hex(&verifying_key_hash(vk).expect("hash"));
    assert!(source.contains(&format!("VERIFYING_KEY_HASH = {hash};")));
    assert!(source.contains("INSECURE"));
    check_or_bless("contracts/src/Groth16Verifier.sol", &source);
}

#[test]
fn forge_fixture_is_fresh() {
    let (pk, vk) = dev_keys();
    // The context of an exit or of a verifier's challenge is any field element.
    let context = Fr::from(0x00c0_ffee_u64) * Fr::from(u64::MAX);
    let witness = sample_witness(FIXTURE_THRESHOLD, context);
    let mut rng = ChaCha20Rng::from_seed(FIXTURE_PROVER_SEED);
    let proof = prover::prove(pk, &witness, &mut rng).expect("prove");
    let inputs = witness.public_inputs().to_evm_words();
    let words = proof_to_evm(&proof);
    let pvk = prover::prepare_verifying_key(vk).expect("prepared key");
    assert_eq!(verify_evm(&pvk, &inputs, &words), Ok(true));

    let fixture = serde_json::json!({
        "g2NotInSubgroup": g2_point_outside_subgroup().iter().map(|w| hex(w)).collect::<Vec<_>>(),
        "_generated": "by circuits/tests/integration/generated_files.rs from the INSECURE dev setup; do not edit",
        "verifyingKeyHash": hex(&verifying_key_hash(vk).expect("hash")),
        "input": inputs.iter().map(|w| hex(w)).collect::<Vec<_>>(),
        "proof": words.iter().map(|w| hex(w)).collect::<Vec<_>>(),
        "statement": {
            "root": hex(&fr_to_be_bytes(&witness.root)),
            "owner": hex(&witness.owner),
            "token": hex(&witness.token),
            "threshold": witness.threshold.to_string(),
            "context": hex(&fr_to_be_bytes(&witness.context)),
        },
    });
    assert_eq!(words.len(), PROOF_WORDS);
    let json = serde_json::to_string_pretty(&fixture).expect("json") + "\n";
    check_or_bless("contracts/test/fixtures/groth16.json", &json);
}
