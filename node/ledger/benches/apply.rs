//! The ledger state machine alone (no signatures, no journal, no tree): applying a transfer
//! to a ledger of 10,000 funded accounts, and a deposit that creates a slot.
//!
//! `cargo bench -p stablelane-ledger --bench apply`

#![allow(missing_docs)]

use std::hint::black_box;

use alloy::primitives::{Address, B256};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use stablelane::{Amount, Transfer};
use stablelane_ledger::{Deposit, Ledger, LedgerConfig};

const ACCOUNTS: u64 = 10_000;

fn address(i: u64) -> Address {
    let mut bytes = [0u8; 20];
    bytes[12..].copy_from_slice(&(i + 1).to_be_bytes());
    Address::from(bytes)
}

fn funded() -> (Ledger, Address) {
    let token = Address::repeat_byte(0xaa);
    let mut ledger = Ledger::new(LedgerConfig {
        tokens: [(token, Amount(1))].into_iter().collect(),
        fee_recipient: Address::repeat_byte(0xee),
        operator_secret: B256::repeat_byte(7),
        slots_max: 1_000_000,
    });
    for i in 0..ACCOUNTS {
        ledger
            .apply_deposit(&Deposit {
                queue_index: i,
                recipient: address(i),
                token,
                amount: Amount(1_000_000_000),
            })
            .expect("deposit");
    }
    (ledger, token)
}

fn bench_apply(c: &mut Criterion) {
    let (ledger, token) = funded();
    let mut group = c.benchmark_group("ledger");
    // Each iteration: one transfer between two existing accounts (nonces advance).
    let mut ledger_t = ledger.clone();
    let mut i = 0u64;
    group.bench_function("apply_transfer_10k_accounts", |b| {
        b.iter(|| {
            let from = i % ACCOUNTS;
            let t = Transfer {
                from: address(from),
                to: address((from + 1) % ACCOUNTS),
                token,
                amount: Amount(1),
                fee: Amount(1),
                nonce: ledger_t.nonce(address(from), token),
                valid_until: u64::MAX,
            };
            i += 1;
            ledger_t.apply_transfer(black_box(&t), 0).expect("transfer")
        })
    });
    group.bench_function("apply_deposit_new_slot", |b| {
        b.iter_batched(
            || ledger.clone(),
            |mut l| {
                l.apply_deposit(&Deposit {
                    queue_index: ACCOUNTS,
                    recipient: address(ACCOUNTS + 7),
                    token,
                    amount: Amount(5),
                })
                .expect("deposit")
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_apply);
criterion_main!(benches);
