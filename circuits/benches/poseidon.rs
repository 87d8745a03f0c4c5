//! Poseidon over BN254: ours against light-poseidon (same circomlib parameters and output).

#![allow(missing_docs)]

use std::hint::black_box;

use ark_ff::UniformRand;
use criterion::{criterion_group, criterion_main, Criterion};
use light_poseidon::{Poseidon, PoseidonHasher};
use stablelane_circuits::{poseidon, Fr};

fn bench_poseidon(c: &mut Criterion) {
    let mut rng = ark_std::test_rng();
    let xs: [Fr; 5] = std::array::from_fn(|_| Fr::rand(&mut rng));

    let mut group = c.benchmark_group("poseidon_2_inputs");
    group.bench_function("stablelane", |b| {
        b.iter(|| poseidon::hash2(black_box(xs[0]), black_box(xs[1])))
    });
    let mut light = Poseidon::<Fr>::new_circom(2).expect("width 3");
    group.bench_function("light_poseidon", |b| {
        b.iter(|| light.hash(black_box(&xs[..2])).expect("hash"))
    });
    group.finish();

    let mut group = c.benchmark_group("poseidon_5_inputs");
    group.bench_function("stablelane", |b| b.iter(|| poseidon::hash(black_box(xs))));
    let mut light = Poseidon::<Fr>::new_circom(5).expect("width 6");
    group.bench_function("light_poseidon", |b| {
        b.iter(|| light.hash(black_box(&xs)).expect("hash"))
    });
    group.finish();

    // What one hash is made of: BN254 scalar-field multiplications (Montgomery form).
    let mut group = c.benchmark_group("bn254_fr");
    group.bench_function("mul", |b| b.iter(|| black_box(xs[0]) * black_box(xs[1])));
    group.bench_function("square", |b| {
        b.iter(|| ark_ff::Field::square(&black_box(xs[0])))
    });
    let row = [xs[0], xs[1], xs[2]];
    let state = [xs[3], xs[4], xs[0]];
    group.bench_function("sum_of_products_3", |b| {
        b.iter(|| <Fr as ark_ff::Field>::sum_of_products(black_box(&row), black_box(&state)))
    });
    group.finish();
}

criterion_group!(benches, bench_poseidon);
criterion_main!(benches);
