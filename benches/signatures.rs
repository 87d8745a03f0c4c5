//! The per-transaction signature work of a node: recovering a transfer's signer (the
//! bound on accepted transfers per second) and signing its receipt, on libsecp256k1 (what
//! the node uses) and on k256 (alloy's default), plus the EIP-712 hash both start from.
//!
//! `cargo bench -p stablelane --bench signatures`

#![allow(missing_docs)]

use std::hint::black_box;

use alloy::{
    primitives::Address,
    signers::{local::PrivateKeySigner, SignerSync},
};
use criterion::{criterion_group, criterion_main, Criterion};
use stablelane::{
    domain,
    signing::{recover, recover_k256, sign_hash_fast},
    Amount, Message, Nonce, Transfer,
};

fn bench_signatures(c: &mut Criterion) {
    let key = PrivateKeySigner::random();
    let domain = domain(31337, Address::repeat_byte(0x11));
    let transfer = Transfer {
        from: key.address(),
        to: Address::repeat_byte(2),
        token: Address::repeat_byte(3),
        amount: Amount(1_000_000),
        fee: Amount(10_000),
        nonce: Nonce(7),
        valid_until: u64::MAX,
    };
    let hash = transfer.signing_hash(&domain);
    let signature = key.sign_hash_sync(&hash).expect("sign");

    c.bench_function("eip712_transfer_hash", |b| {
        b.iter(|| black_box(&transfer).signing_hash(black_box(&domain)))
    });
    // What the node computes per transfer: the separator is computed once per deployment.
    let separator = domain.separator();
    c.bench_function("eip712_transfer_hash_cached_separator", |b| {
        b.iter(|| black_box(&transfer).signing_hash_in(black_box(&separator)))
    });
    c.bench_function("eip712_transfer_hash_alloy", |b| {
        b.iter(|| {
            alloy::sol_types::SolStruct::eip712_signing_hash(
                &black_box(&transfer).to_sol(),
                black_box(&domain),
            )
        })
    });
    let mut group = c.benchmark_group("recover_signer");
    group.bench_function("libsecp256k1", |b| {
        b.iter(|| recover(black_box(&signature), black_box(&hash)).expect("recover"))
    });
    group.bench_function("k256", |b| {
        b.iter(|| recover_k256(black_box(&signature), black_box(&hash)).expect("recover"))
    });
    group.finish();
    let mut group = c.benchmark_group("sign_receipt_hash");
    group.bench_function("libsecp256k1", |b| {
        b.iter(|| sign_hash_fast(black_box(&key), black_box(&hash)).expect("sign"))
    });
    group.bench_function("k256", |b| {
        b.iter(|| key.sign_hash_sync(black_box(&hash)).expect("sign"))
    });
    group.finish();
}

criterion_group!(benches, bench_signatures);
criterion_main!(benches);
