//! Group-commit throughput and per-append latency of the journal, with real `fdatasync`, for
//! ~200-byte payloads and 1, 8 and 64 concurrent appenders.
//!
//! Each iteration, every appender thread makes one blocking append (waits for its sync), so:
//! criterion's time per iteration is the mean latency of one append as its appender sees it,
//! and its throughput (elements = appenders) is records per second. After each case a line
//! gives latency percentiles over every append of the case (warm-up included) and the group
//! commit batching from the journal's metrics.
//!
//! The journal lives in a temporary directory (under `STABLELANE_BENCH_DIR` if set, so that a
//! particular disk can be measured). Short run:
//! `cargo bench -p stablelane-storage --bench group_commit -- --warm-up-time 1 --measurement-time 3`

use std::{
    hint::black_box,
    sync::{Arc, Barrier, Mutex},
    thread,
    time::{Duration, Instant},
};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use stablelane_storage::{Error, Journal, JournalConfig};

const PAYLOAD_BYTES: usize = 200;

fn temp_dir() -> tempfile::TempDir {
    match std::env::var_os("STABLELANE_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).expect("STABLELANE_BENCH_DIR is writable"),
        None => tempfile::tempdir().expect("temporary directory"),
    }
}

fn append(journal: &Journal, payload: &[u8]) {
    loop {
        match journal.append(payload.to_vec()) {
            Ok(seq) => {
                black_box(seq);
                return;
            }
            Err(Error::Busy { .. }) => thread::yield_now(),
            Err(e) => panic!("append failed: {e}"),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn group_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("journal_append_200B");
    for appenders in [1usize, 8, 64] {
        let dir = temp_dir();
        let (journal, _) = Journal::open(dir.path(), JournalConfig::default()).unwrap();
        let journal = Arc::new(journal);
        let latencies = Arc::new(Mutex::new(Vec::<Duration>::new()));
        let payload: Vec<u8> = (0..PAYLOAD_BYTES).map(|i| i as u8).collect();

        group.throughput(Throughput::Elements(appenders as u64));
        group.bench_function(BenchmarkId::new("appenders", appenders), |b| {
            b.iter_custom(|iters| {
                let barrier = Barrier::new(appenders + 1);
                thread::scope(|scope| {
                    let handles: Vec<_> = (0..appenders)
                        .map(|_| {
                            scope.spawn(|| {
                                let mut own = Vec::with_capacity(iters as usize);
                                barrier.wait();
                                for _ in 0..iters {
                                    let started = Instant::now();
                                    append(&journal, &payload);
                                    own.push(started.elapsed());
                                }
                                own
                            })
                        })
                        .collect();
                    barrier.wait();
                    let started = Instant::now();
                    let mut all = Vec::new();
                    for handle in handles {
                        all.extend(handle.join().unwrap());
                    }
                    let elapsed = started.elapsed();
                    latencies.lock().unwrap().extend(all);
                    elapsed
                })
            })
        });

        let mut sorted = std::mem::take(&mut *latencies.lock().unwrap());
        sorted.sort();
        let metrics = journal.metrics();
        let mean_sync = Duration::from_nanos(
            (metrics.sync_latency_sum.as_nanos() / u128::from(metrics.syncs.max(1))) as u64,
        );
        println!(
            "journal_append_200B/appenders/{appenders}: {} appends, latency p50 {:?} p99 {:?} max {:?}; \
             {:.1} records per sync, {} syncs, mean fdatasync {:?}, max {:?}",
            sorted.len(),
            percentile(&sorted, 0.50),
            percentile(&sorted, 0.99),
            sorted.last().copied().unwrap_or_default(),
            metrics.records_per_sync(),
            metrics.syncs,
            mean_sync,
            metrics.sync_latency_max,
        );
    }
    group.finish();
}

criterion_group!(benches, group_commit);
criterion_main!(benches);
