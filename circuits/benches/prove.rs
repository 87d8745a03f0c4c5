//! Balance attestations with the INSECURE dev keys: proof generation (the whole
//! `prover::prove`, including its native check and self-verification), constraint synthesis
//! alone, decoding a proving key, and native verification.

#![allow(missing_docs)]

use std::hint::black_box;

use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, OptimizationGoal, SynthesisMode,
};
use criterion::{criterion_group, criterion_main, Criterion};
use stablelane_circuits::circuit::AttestationCircuit;
use stablelane_circuits::keys::{insecure_dev_setup, proving_key_from_bytes, proving_key_to_bytes};
use stablelane_circuits::prover::{self, prepare_verifying_key};
use stablelane_circuits::{
    leaf_hash, AttestationWitness, ChaCha20Rng, Fr, SeedableRng, SlotIndex, StateTree,
};

fn witness() -> AttestationWitness {
    let (owner, token, salt) = ([0x70; 20], [0x5f; 20], Fr::from(0x5a17u64));
    let slot = SlotIndex::new(1_000);
    let mut tree = StateTree::from_leaves((0..2_000u64).map(Fr::from).collect()).expect("tree");
    tree.set(slot, leaf_hash(owner, token, 1_234_500_000, 3, salt))
        .expect("set");
    AttestationWitness {
        root: tree.root(),
        owner,
        token,
        threshold: 1_000_000_000,
        context: Fr::from(42u64),
        balance: 1_234_500_000,
        nonce: 3,
        salt,
        slot,
        path: tree.path(slot),
    }
}

fn bench_attestation(c: &mut Criterion) {
    let (pk, vk) = insecure_dev_setup().expect("dev setup");
    let pvk = prepare_verifying_key(&vk).expect("prepared key");
    let witness = witness();
    let inputs = witness.public_inputs();
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let proof = prover::prove(&pk, &witness, &mut rng).expect("prove");

    let mut group = c.benchmark_group("attestation");
    group.sample_size(10);
    group.bench_function("prove", |b| {
        b.iter(|| prover::prove(&pk, black_box(&witness), &mut rng).expect("prove"))
    });
    group.bench_function("synthesize_witness", |b| {
        b.iter(|| {
            let cs = ConstraintSystem::<Fr>::new_ref();
            cs.set_optimization_goal(OptimizationGoal::Constraints);
            cs.set_mode(SynthesisMode::Prove {
                construct_matrices: true,
                generate_lc_assignments: false,
            });
            AttestationCircuit::new(black_box(witness.clone()))
                .generate_constraints(cs.clone())
                .expect("synthesis");
            cs.finalize();
            cs.num_constraints()
        })
    });
    group.finish();

    let pk_bytes = proving_key_to_bytes(&pk).expect("encode");
    let mut group = c.benchmark_group("attestation_keys");
    group.sample_size(10);
    group.bench_function("proving_key_from_bytes_validated", |b| {
        b.iter(|| proving_key_from_bytes(black_box(&pk_bytes)).expect("decode"))
    });
    group.finish();

    let mut group = c.benchmark_group("attestation_verify");
    group.bench_function("prepared_key", |b| {
        b.iter(|| prover::verify_prepared(&pvk, black_box(&inputs), black_box(&proof)))
    });
    group.bench_function("verifying_key", |b| {
        b.iter(|| prover::verify(&vk, black_box(&inputs), black_box(&proof)))
    });
    group.finish();
}

criterion_group!(benches, bench_attestation);
criterion_main!(benches);
