//! Restart snapshots: a restart loads the newest usable snapshot and replays only the journal
//! after it, to exactly the state a full replay gives; damaged snapshots, and snapshots the
//! store cannot back, are passed over.

use std::{path::Path, time::Duration};

use alloy::{
    primitives::{Address, B256},
    signers::local::PrivateKeySigner,
};
use common::TOKEN;
use stablelane::{sign, Amount, Nonce, Transfer, Withdrawal};
use stablelane_ledger::{Deposit, Ledger};
use stablelane_sequencer::{
    snapshot, OpenBatchInfo, Sequencer, SequencerConfig, SnapshotConfig, Store,
};

use crate::common;

const ACCOUNTS: usize = 8;

fn config(dir: &Path, every_records: u64) -> SequencerConfig {
    SequencerConfig {
        sealed_history: 3,
        snapshot: SnapshotConfig {
            dir: dir.join("snapshots"),
            every_records,
            keep: 2,
        },
        ..common::config(dir)
    }
}

fn keys() -> Vec<PrivateKeySigner> {
    (1..=ACCOUNTS as u8)
        .map(|i| PrivateKeySigner::from_bytes(&B256::repeat_byte(i)).unwrap())
        .collect()
}

/// Deposits, `rounds` sealed rounds of payments around a ring (with a withdrawal among
/// them), then two payments and a withdrawal left in the open batch.
async fn history(seq: &Sequencer, cfg: &SequencerConfig, rounds: u64) {
    let keys = keys();
    for (i, key) in keys.iter().enumerate() {
        seq.submit_deposit(Deposit {
            queue_index: i as u64,
            recipient: key.address(),
            token: TOKEN,
            amount: Amount(100_000),
        })
        .await
        .unwrap();
    }
    let pay = |key: &PrivateKeySigner, to: Address, amount: u128, nonce: u64| {
        sign(
            key,
            Transfer {
                from: key.address(),
                to,
                token: TOKEN,
                amount: Amount(amount),
                fee: Amount(10),
                nonce: Nonce(nonce),
                valid_until: u64::MAX,
            },
            &cfg.domain,
        )
        .unwrap()
    };
    let withdraw = |key: &PrivateKeySigner, recipient: u8, amount: u128, nonce: u64| {
        sign(
            key,
            Withdrawal {
                from: key.address(),
                recipient: Address::repeat_byte(recipient),
                token: TOKEN,
                amount: Amount(amount),
                fee: Amount(10),
                nonce: Nonce(nonce),
                valid_until: u64::MAX,
            },
            &cfg.domain,
        )
        .unwrap()
    };
    let mut nonces = [0u64; ACCOUNTS];
    for round in 0..rounds {
        for (i, key) in keys.iter().enumerate() {
            let to = keys[(i + 1) % keys.len()].address();
            seq.submit_transfer(pay(key, to, 100 + u128::from(round as u8), nonces[i]))
                .await
                .unwrap();
            nonces[i] += 1;
        }
        if round == 1 {
            seq.submit_withdrawal(withdraw(&keys[0], 0x77, 5, nonces[0]))
                .await
                .unwrap();
            nonces[0] += 1;
        }
        seq.seal_batch().await.unwrap().unwrap();
    }
    // Left open: two payments and a withdrawal.
    for i in 1..3 {
        seq.submit_transfer(pay(&keys[i], keys[0].address(), 3, nonces[i]))
            .await
            .unwrap();
        nonces[i] += 1;
    }
    seq.submit_withdrawal(withdraw(&keys[3], 0x78, 9, nonces[3]))
        .await
        .unwrap();
}

/// Waits until at least `n` snapshots have been written.
async fn snapshots_written(seq: &Sequencer, n: u64) {
    for _ in 0..500 {
        if seq.metrics().snapshots_written >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} snapshots not written: {:?}", seq.metrics());
}

/// What a restart must give back exactly.
#[derive(Debug, PartialEq)]
struct Seen {
    ledger: Ledger,
    root: B256,
    last_seq: u64,
    last_batch: u64,
    open: (u64, u64, usize, usize),
    pay_outs: usize,
}

fn seen(seq: &Sequencer) -> Seen {
    let root = seq.root().unwrap();
    seq.read(|s| {
        let OpenBatchInfo {
            number,
            records,
            changed_slots,
            withdrawals,
            ..
        } = s.open_batch();
        Seen {
            ledger: s.ledger().clone(),
            root,
            last_seq: s.last_seq().get(),
            last_batch: s.last_batch(),
            open: (number, records, changed_slots, withdrawals),
            pay_outs: s.pay_outs().len(),
        }
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_loads_the_newest_snapshot_replays_the_tail_and_matches_a_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let operator = PrivateKeySigner::random();
    let cfg = config(dir.path(), 20);
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    assert_eq!(seq.opened().snapshot, None);
    history(&seq, &cfg, 7).await;
    snapshots_written(&seq, 2).await;
    let newest = seq.metrics().last_snapshot_seq;
    let before = seen(&seq);
    let batches: Vec<_> = (1..=before.last_batch)
        .map(|n| seq.batch(n).unwrap().unwrap().0)
        .collect();
    seq.shutdown().await;
    let listed = snapshot::list(&cfg.snapshot.dir).unwrap();
    assert_eq!(listed.len(), 2, "two kept: {listed:?}");
    assert_eq!(listed[0].0, newest);

    // The same data with snapshots off: a full replay.
    let full_dir = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), full_dir.path());
    let full_cfg = SequencerConfig {
        snapshot: SnapshotConfig::off(),
        ..config(full_dir.path(), 20)
    };
    let full = Sequencer::open(full_cfg, operator.clone()).unwrap();
    assert_eq!(full.opened().snapshot, None);
    assert_eq!(full.opened().records_replayed, before.last_seq);
    assert_eq!(seen(&full), before);

    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    let opened = seq.opened();
    let (snap_seq, snap_batch) = opened.snapshot.expect("a snapshot was loaded");
    assert_eq!(snap_seq, newest);
    assert!(snap_batch >= 1 && snap_batch <= before.last_batch);
    assert_eq!(opened.records_replayed, before.last_seq - snap_seq);
    assert!(opened.records_replayed < before.last_seq);
    assert_eq!(seen(&seq), before);
    assert_eq!(seq.metrics().last_snapshot_seq, newest);
    for b in &batches {
        assert_eq!(&seq.batch(b.number).unwrap().unwrap().0, b);
    }
    // Sealed states are kept from the snapshot's batch on, and open against the batch roots.
    seq.read(|s| {
        let side = s.tree().now();
        let sealed = side.sealed().expect("kept");
        assert_eq!(sealed.head(), before.last_batch);
        let oldest = sealed.oldest();
        assert!(oldest >= snap_batch.min(before.last_batch.saturating_sub(2)));
        for batch in oldest..=before.last_batch {
            let o = sealed.opening(batch, 1).unwrap();
            assert_eq!(
                stablelane_sequencer::sealed::root_word(&o.root),
                batches[batch as usize - 1].new_root
            );
        }
    });

    // Both go on identically: the open batch seals to the same batch.
    let a = seq.seal_batch().await.unwrap().unwrap();
    let b = full.seal_batch().await.unwrap().unwrap();
    assert_eq!(a, b);
    assert_eq!(
        seq.batch(a).unwrap().unwrap().0,
        full.batch(b).unwrap().unwrap().0
    );
    seq.shutdown().await;
    full.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_or_unbacked_snapshots_are_passed_over() {
    let dir = tempfile::tempdir().unwrap();
    let operator = PrivateKeySigner::random();
    let cfg = config(dir.path(), 20);
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    history(&seq, &cfg, 7).await;
    snapshots_written(&seq, 2).await;
    let before = seen(&seq);
    seq.shutdown().await;
    let listed = snapshot::list(&cfg.snapshot.dir).unwrap();
    let [(newest, newest_path), (older, older_path)] = &listed[..] else {
        panic!("two snapshots expected: {listed:?}")
    };

    // A snapshot of a record past the journal's end (its seal never became durable) is
    // deleted, never used.
    let ahead = cfg
        .snapshot
        .dir
        .join(format!("snapshot-{:020}.bin", before.last_seq + 5));
    std::fs::copy(newest_path, &ahead).unwrap();
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    assert_eq!(seq.opened().snapshot.map(|s| s.0), Some(*newest));
    assert!(!ahead.exists());
    assert_eq!(seen(&seq), before);
    seq.shutdown().await;

    // A flipped byte in the newest: the older one serves.
    let mut bytes = std::fs::read(newest_path).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 1;
    std::fs::write(newest_path, &bytes).unwrap();
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    assert_eq!(seq.opened().snapshot.map(|s| s.0), Some(*older));
    assert_eq!(seen(&seq), before);
    seq.shutdown().await;
    std::fs::remove_file(newest_path).unwrap();

    // The store lacks the older snapshot's batch (the node stopped before the tree worker's
    // batch was stored): not used; the whole journal replays and the batches are rebuilt.
    let older_batch = snapshot::read(older_path, cfg.domain.separator())
        .unwrap()
        .batch;
    {
        let store = Store::open(&cfg.store_dir).unwrap();
        store.forget_batches_from(older_batch).unwrap();
        store.flush().unwrap();
    }
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    assert_eq!(seq.opened().snapshot, None);
    assert_eq!(seq.opened().records_replayed, before.last_seq);
    assert_eq!(seen(&seq), before);
    assert!(seq.batch(older_batch).unwrap().is_some());
    seq.shutdown().await;
    assert!(*newest > *older);

    // A truncated snapshot (a torn write that was somehow renamed): passed over too.
    let bytes = std::fs::read(older_path).unwrap();
    std::fs::write(older_path, &bytes[..bytes.len() - 100]).unwrap();
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    assert_eq!(seq.opened().snapshot, None);
    assert_eq!(seen(&seq), before);
    seq.shutdown().await;
}
