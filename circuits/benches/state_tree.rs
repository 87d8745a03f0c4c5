//! `StateTree::update_batch` on populated trees, on all cores and on one thread.
//!
//! Filter with e.g. `cargo bench -p stablelane-circuits --bench state_tree -- 1000000`.

#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use stablelane_circuits::{Fr, SlotIndex, StateTree};

/// `changed` distinct slots spread pseudo-randomly over `0..slots` (Knuth's multiplicative
/// hash; the multiplier is coprime with 10^5 and 10^6, so `i -> i * K mod slots` is a
/// permutation).
fn changes(slots: u32, changed: u32, salt: u64) -> Vec<(SlotIndex, Fr)> {
    (0..changed)
        .map(|i| {
            let index = (u64::from(i) * 2_654_435_761 % u64::from(slots)) as u32;
            (
                SlotIndex::new(index),
                Fr::from(salt * 1_000_003 + u64::from(i)),
            )
        })
        .collect()
}

fn bench_update_batch(c: &mut Criterion) {
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("1-thread pool");
    let cases: &[(u32, &[u32])] = &[
        // `stablelane bench --accounts 10000`: the node's seals at 1,024 changed leaves (the
        // default `max_changed_slots`) and at about 1,950 (100,000 bytes of batch data).
        (10_000, &[1_024, 1_950]),
        (100_000, &[1_000, 10_000]),
        (1_000_000, &[1_000, 10_000, 100_000]),
    ];
    let mut group = c.benchmark_group("update_batch");
    group.sample_size(10);
    for &(slots, changed_counts) in cases {
        let leaves: Vec<Fr> = (0..u64::from(slots)).map(Fr::from).collect();
        let mut tree = StateTree::from_leaves(leaves).expect("tree");
        for &changed in changed_counts {
            let batch = changes(slots, changed, 7);
            group.throughput(Throughput::Elements(u64::from(changed)));
            let label = format!("{slots}_slots/{changed}_changed");
            group.bench_function(BenchmarkId::new("parallel", &label), |b| {
                b.iter(|| tree.update_batch(&batch).expect("update"))
            });
            group.bench_function(BenchmarkId::new("one_thread", &label), |b| {
                b.iter(|| single.install(|| tree.update_batch(&batch).expect("update")))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = bench_update_batch
}
criterion_main!(benches);
