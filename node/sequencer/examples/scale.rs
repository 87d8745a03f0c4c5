//! Scale check of the sequencer core (no RPC): fills a ledger with many funded slots through
//! real journaled transfers, reports resident memory, then restarts it (journal replay + store
//! check) and reports the restart time.
//!
//! ```text
//! cargo run --release -p stablelane-sequencer --example scale -- <dir> <slots> [<extra transfers>]
//! ```
//!
//! If `<dir>` exists, the example only reopens it (a fresh process: its resident memory is the
//! node core's after a restart), reporting whether a snapshot was loaded and how many records
//! were replayed after it; with `<extra transfers>`, whales then pay each other that many
//! times (a snapshot is taken at the first seal past the interval) and it reports the
//! snapshot write. Otherwise (put it on a real disk): Funding: 1,000 deposits to "whale"
//! accounts, then each whale pays `slots / 1000` new accounts (1,000 whales in parallel, so
//! the writer's groups are large). `<extra transfers>` more transfers then circulate between
//! the funded accounts. Every record is fsynced as in production; batches seal at the default
//! limits (1,024 changed slots), each with its state-root update.

use std::{sync::Arc, time::Instant};

use alloy::{
    primitives::{keccak256, Address, B256},
    signers::local::PrivateKeySigner,
};
use stablelane::{domain, sign, Amount, Nonce, Transfer};
use stablelane_ledger::{Deposit, LedgerConfig};
use stablelane_sequencer::{Sequencer, SequencerConfig};
use stablelane_storage::JournalConfig;

/// The node's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOKEN: Address = Address::repeat_byte(0xaa);
const WHALES: usize = 1_000;

fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn key(i: u64) -> PrivateKeySigner {
    let mut seed = b"stablelane scale ".to_vec();
    seed.extend_from_slice(&i.to_be_bytes());
    PrivateKeySigner::from_bytes(&keccak256(&seed)).expect("a valid key")
}

fn config(dir: &std::path::Path) -> SequencerConfig {
    SequencerConfig {
        journal_dir: dir.join("journal"),
        store_dir: dir.join("state.sled"),
        journal: JournalConfig::default(),
        intake_queue_max: 65_536,
        group_max: 4_096,
        ledger: LedgerConfig {
            tokens: [(TOKEN, Amount(1))].into_iter().collect(),
            fee_recipient: Address::repeat_byte(0xee),
            operator_secret: B256::repeat_byte(7),
            slots_max: 10_000_000,
        },
        domain: domain(31337, Address::repeat_byte(0x11)),
        batch: Default::default(),
        sealed_history: 0,
        snapshot: stablelane_sequencer::SnapshotConfig::new(dir.join("snapshots")),
    }
}

/// Signs `plan` (sender index, sender key, recipient, nonce) on every core.
fn sign_all(
    plan: Vec<(usize, Arc<PrivateKeySigner>, Address, u64)>,
) -> Vec<(usize, stablelane::Signed<Transfer>)> {
    let domain = domain(31337, Address::repeat_byte(0x11));
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let plan = Arc::new(plan);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (plan, domain) = (plan.clone(), domain.clone());
            std::thread::spawn(move || {
                (t..plan.len())
                    .step_by(threads)
                    .map(|i| {
                        let (lane, key, to, nonce) = &plan[i];
                        let transfer = Transfer {
                            from: key.address(),
                            to: *to,
                            token: TOKEN,
                            amount: Amount(1),
                            fee: Amount(1),
                            nonce: Nonce(*nonce),
                            valid_until: u64::MAX,
                        };
                        (*lane, sign(key, transfer, &domain).expect("sign"))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("signer thread"))
        .collect()
}

/// Submits each lane's transfers in order, all lanes concurrently.
async fn submit_lanes(
    seq: &Sequencer,
    signed: Vec<(usize, stablelane::Signed<Transfer>)>,
    lanes: usize,
) {
    let mut per_lane: Vec<Vec<stablelane::Signed<Transfer>>> = vec![Vec::new(); lanes];
    for (lane, tx) in signed {
        per_lane[lane].push(tx);
    }
    let mut tasks = Vec::new();
    for mut txs in per_lane {
        txs.sort_by_key(|t| t.message.nonce.get());
        let seq = seq.clone();
        tasks.push(tokio::spawn(async move {
            for tx in txs {
                seq.submit_transfer(tx).await.expect("transfer accepted");
            }
        }));
    }
    for task in tasks {
        task.await.expect("lane");
    }
}

#[tokio::main]
async fn main() -> eyre::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "sequencer=info".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(
        args.get(1)
            .ok_or_else(|| eyre::eyre!("usage: scale <dir> <slots> [<extra transfers>]"))?,
    );
    let slots: usize = args.get(2).map_or(Ok(1_000_000), |s| s.parse())?;
    let extra: usize = args.get(3).map_or(Ok(0), |s| s.parse())?;
    let operator = PrivateKeySigner::from_bytes(&B256::repeat_byte(3))?;
    if dir.exists() {
        let started = Instant::now();
        let seq = Sequencer::open(config(&dir), operator)?;
        let took = started.elapsed().as_secs_f64();
        let opened = seq.opened();
        let (records, slots, tree) = seq.read(|s| {
            (
                s.last_seq().get(),
                s.ledger().slot_count(),
                s.tree_heap_bytes(),
            )
        });
        let root = seq.root()?;
        // Let the allocator return what the replay freed.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        println!(
            "reopened: {records} records, {slots} slots, in {took:.1} s: {} and {} records replayed; rss {:.0} MiB (anonymous {:.0} MiB, file {:.0} MiB; peak {:.0} MiB; tree {:.0} MiB); root {root}",
            opened.snapshot.map_or("no snapshot".to_string(), |(s, b)| format!("snapshot of record {s} (batch {b})")),
            opened.records_replayed,
            rss_mib(),
            status_mib("RssAnon:"),
            status_mib("RssFile:"),
            status_mib("VmHWM:"),
            tree as f64 / (1 << 20) as f64
        );
        let copy = seq.read(|s| {
            let started = Instant::now();
            let image = s.ledger().image();
            (started.elapsed().as_secs_f64() * 1e3, image.slots.len())
        });
        // What the writer does: copy into the spare buffer the snapshot writer prepared
        // (resident) after start.
        let (prepared_ms, capacity) = seq.read(|s| {
            let spare = s
                .spare_slots()
                .lock()
                .map(|mut b| std::mem::take(&mut *b))
                .unwrap_or_default();
            let capacity = spare.capacity();
            let started = Instant::now();
            let image = s.ledger().image_into(spare);
            let took = started.elapsed().as_secs_f64() * 1e3;
            drop(image);
            (took, capacity)
        });
        println!(
            "the writer's copy into the prepared buffer (capacity {capacity} slots): {prepared_ms:.1} ms"
        );
        println!(
            "the writer's copy of the ledger for a snapshot: {:.1} ms for {} slots",
            copy.0, copy.1
        );
        if extra > 0 {
            // Whales pay each other on (so a snapshot is taken at the first seal past the
            // interval), then the writer waits for it.
            let whales: Vec<Arc<PrivateKeySigner>> =
                (0..WHALES as u64).map(|i| Arc::new(key(i))).collect();
            let nonces: Vec<u64> = seq.read(|s| {
                whales
                    .iter()
                    .map(|w| s.ledger().nonce(w.address(), TOKEN).get())
                    .collect()
            });
            let written = seq.metrics().snapshots_written;
            let started = Instant::now();
            let rounds = extra.div_ceil(WHALES) as u64;
            let mut plan = Vec::with_capacity(extra);
            for r in 0..rounds {
                for (w, whale) in whales.iter().enumerate() {
                    let to = whales[(w + 1 + r as usize) % WHALES].address();
                    plan.push((w, whale.clone(), to, nonces[w] + r));
                }
            }
            let signed = sign_all(plan);
            let n = signed.len();
            submit_lanes(&seq, signed, WHALES).await;
            seq.seal_batch().await?;
            println!(
                "{n} more transfers in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            for _ in 0..6000 {
                if seq.metrics().snapshots_written > written {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            let m = seq.metrics();
            println!(
                "snapshots written: {} (failures {}), the last of record {} in {:.2} s; peak rss {:.0} MiB",
                m.snapshots_written,
                m.snapshot_failures,
                m.last_snapshot_seq,
                m.last_snapshot_seconds,
                status_mib("VmHWM:")
            );
        }
        seq.shutdown().await;
        return Ok(());
    }
    let per_whale = slots.div_ceil(WHALES);
    println!("rss at start: {:.0} MiB", rss_mib());

    let seq = Sequencer::open(config(&dir), operator.clone())?;
    let started = Instant::now();
    let whales: Vec<Arc<PrivateKeySigner>> = (0..WHALES as u64).map(|i| Arc::new(key(i))).collect();
    for (i, whale) in whales.iter().enumerate() {
        seq.submit_deposit(Deposit {
            queue_index: i as u64,
            recipient: whale.address(),
            token: TOKEN,
            amount: Amount(1_000_000_000_000),
        })
        .await?;
    }
    println!(
        "{WHALES} deposits in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let mut plan = Vec::with_capacity(per_whale * WHALES);
    for n in 0..per_whale as u64 {
        for (w, whale) in whales.iter().enumerate() {
            let recipient = key(1_000_000_000 + n * WHALES as u64 + w as u64).address();
            plan.push((w, whale.clone(), recipient, n));
        }
    }
    let signed = sign_all(plan);
    println!(
        "{} funding transfers signed in {:.1} s",
        signed.len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    submit_lanes(&seq, signed, WHALES).await;
    let took = started.elapsed().as_secs_f64();
    let (slot_count, tree_bytes) = seq.read(|s| (s.ledger().slot_count(), s.tree_heap_bytes()));
    println!(
        "funded: {slot_count} slots in {took:.1} s ({:.0} transfers/s); rss {:.0} MiB (tree {:.0} MiB)",
        (per_whale * WHALES) as f64 / took,
        rss_mib(),
        tree_bytes as f64 / (1 << 20) as f64
    );

    if extra > 0 {
        // Whales pay on; their nonces continue after the funding round. Signed and sent in
        // rounds of at most `CHUNK_ROUNDS` × 1,000 transfers, so that memory stays bounded.
        const CHUNK_ROUNDS: u64 = 500;
        let started = Instant::now();
        let rounds = extra.div_ceil(WHALES) as u64;
        let funded: Vec<Address> = {
            use rayon::prelude::*;
            (0..slots as u64)
                .into_par_iter()
                .map(|i| key(1_000_000_000 + i).address())
                .collect()
        };
        let mut sent = 0;
        for first in (0..rounds).step_by(CHUNK_ROUNDS as usize) {
            let mut plan = Vec::with_capacity(CHUNK_ROUNDS as usize * WHALES);
            for r in first..rounds.min(first + CHUNK_ROUNDS) {
                for (w, whale) in whales.iter().enumerate() {
                    let recipient = funded[((r * 7 + w as u64) % slots as u64) as usize];
                    plan.push((w, whale.clone(), recipient, per_whale as u64 + r));
                }
            }
            let signed = sign_all(plan);
            sent += signed.len();
            submit_lanes(&seq, signed, WHALES).await;
            println!(
                "{sent} of {} more transfers in {:.1} s; rss {:.0} MiB",
                rounds as usize * WHALES,
                started.elapsed().as_secs_f64(),
                rss_mib()
            );
        }
    }
    let records = seq.read(|s| s.last_seq().get());
    let root = seq.root()?;
    seq.shutdown().await;
    println!("{records} journal records; root {root}");

    let started = Instant::now();
    let seq = Sequencer::open(config(&dir), operator)?;
    let took = started.elapsed().as_secs_f64();
    let reopened = seq.root()?;
    println!(
        "restart (replay {records} records, store check): {took:.1} s ({:.0} µs/record); rss {:.0} MiB; root {}",
        took * 1e6 / records as f64,
        rss_mib(),
        if reopened == root { "identical" } else { "DIFFERENT" }
    );
    seq.shutdown().await;
    Ok(())
}
