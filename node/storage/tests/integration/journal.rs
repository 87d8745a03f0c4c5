//! The journal through its public API: rollover, replay across segments, concurrency, the
//! busy error under load and async appends.

use crate::common;

use std::{
    collections::BTreeMap,
    fs,
    sync::{Arc, Barrier},
    thread,
};

use common::{all_records, config, payload, segment_files};
use stablelane_storage::{journal::segment_file_name, Error, Journal, SequenceNumber};

#[test]
fn segments_roll_over_and_replay_crosses_them() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), config(1024)).unwrap();
    let mut expected = Vec::new();
    for i in 0..300u64 {
        let data = payload(i, (i as usize * 7) % 120);
        assert_eq!(journal.append(data.clone()).unwrap().get(), i + 1);
        expected.push((i + 1, data));
    }
    // One record bigger than a whole segment gets a segment of its own.
    let big = payload(1000, 3000);
    assert_eq!(journal.append(big.clone()).unwrap().get(), 301);
    expected.push((301, big));
    assert_eq!(journal.append(b"after big".to_vec()).unwrap().get(), 302);
    expected.push((302, b"after big".to_vec()));

    let files = segment_files(dir.path());
    assert!(files.len() > 20, "{} segments", files.len());
    assert_eq!(
        files[0].file_name().unwrap().to_str().unwrap(),
        segment_file_name(1)
    );
    for file in &files {
        let len = fs::metadata(file).unwrap().len();
        assert!(
            len <= 1024 || len == 32 + 16 + 3000,
            "{} is {len} bytes",
            file.display()
        );
    }
    assert_eq!(journal.metrics().segments_created as usize, files.len() - 1);

    assert_eq!(all_records(&journal), expected);
    for from in [1u64, 2, 50, 77, 150, 299, 300, 301, 302, 303] {
        let replayed: Vec<_> = journal
            .replay_from(SequenceNumber(from))
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                (r.seq.get(), r.payload)
            })
            .collect();
        assert_eq!(replayed, expected[(from - 1) as usize..], "from {from}");
    }
    journal.close().unwrap();

    let (journal, report) = Journal::open(dir.path(), config(1024)).unwrap();
    assert_eq!(report.records, 302);
    assert_eq!(report.segments, files.len());
    assert_eq!(report.last_seq, Some(SequenceNumber(302)));
    assert!(report.torn_tail.is_none());
    assert_eq!(all_records(&journal), expected);
    assert_eq!(journal.append(b"more".to_vec()).unwrap().get(), 303);
}

#[test]
fn concurrent_appenders_get_distinct_consecutive_sequence_numbers() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 150;
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), config(16 * 1024)).unwrap();
    let journal = Arc::new(journal);
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let journal = Arc::clone(&journal);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                (0..PER_THREAD)
                    .map(|i| {
                        let data = payload(t * 1_000 + i, 200);
                        let seq = loop {
                            match journal.append(data.clone()) {
                                Ok(seq) => break seq.get(),
                                Err(Error::Busy { .. }) => thread::yield_now(),
                                Err(e) => panic!("{e}"),
                            }
                        };
                        (seq, data)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let acked: BTreeMap<u64, Vec<u8>> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(acked.len() as u64, THREADS * PER_THREAD);
    assert_eq!(
        acked.keys().copied().collect::<Vec<_>>(),
        (1..=THREADS * PER_THREAD).collect::<Vec<_>>()
    );
    let replayed: BTreeMap<u64, Vec<u8>> = all_records(&journal).into_iter().collect();
    assert_eq!(replayed, acked);
    let metrics = journal.metrics();
    assert_eq!(metrics.records_appended, THREADS * PER_THREAD);
    assert!(
        metrics.syncs < metrics.records_appended,
        "group commit batched nothing: {metrics:?}"
    );
}

#[test]
fn a_flood_gets_busy_errors_and_every_acknowledged_record_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(64 * 1024);
    cfg.queue_depth_max = 8;
    let (journal, _) = Journal::open(dir.path(), cfg.clone()).unwrap();
    let journal = Arc::new(journal);
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let journal = Arc::clone(&journal);
            thread::spawn(move || {
                let mut tickets = Vec::new();
                let mut busy = 0u64;
                for i in 0..2_000u64 {
                    let data = payload(t * 10_000 + i, 100);
                    match journal.submit(data.clone()) {
                        Ok(ticket) => tickets.push((ticket, data)),
                        Err(Error::Busy { queued_records, .. }) => {
                            assert!(queued_records <= 8);
                            busy += 1;
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                let acked: Vec<_> = tickets
                    .into_iter()
                    .map(|(t, data)| (t.wait().unwrap().get(), data))
                    .collect();
                (acked, busy)
            })
        })
        .collect();
    let mut acked = BTreeMap::new();
    let mut busy = 0;
    for handle in handles {
        let (records, b) = handle.join().unwrap();
        acked.extend(records);
        busy += b;
    }
    // Submitting is microseconds, a sync is not: a queue of 8 must overflow.
    assert!(busy > 0, "no Busy error in 8000 unthrottled submissions");
    assert_eq!(journal.metrics().busy_rejections, busy);
    assert_eq!(acked.len() as u64 + busy, 8_000);
    // Refused appends used no sequence number: the acknowledged ones are exactly 1..=n.
    assert_eq!(
        acked.keys().copied().collect::<Vec<_>>(),
        (1..=acked.len() as u64).collect::<Vec<_>>()
    );
    drop(journal);
    let (journal, _) = Journal::open(dir.path(), cfg).unwrap();
    assert_eq!(
        all_records(&journal)
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        acked
    );
}

#[test]
fn async_tasks_append_through_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), config(8 * 1024)).unwrap();
    let journal = Arc::new(journal);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let acked: Vec<(u64, Vec<u8>)> = runtime.block_on(async {
        let tasks: Vec<_> = (0..8u64)
            .map(|t| {
                let journal = Arc::clone(&journal);
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    for i in 0..50u64 {
                        let data = payload(t * 100 + i, 64);
                        let ticket = journal.submit(data.clone()).unwrap();
                        let seq = ticket.seq();
                        assert_eq!(ticket.await.unwrap(), seq);
                        out.push((seq.get(), data));
                    }
                    out
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });
    let acked: BTreeMap<_, _> = acked.into_iter().collect();
    assert_eq!(acked.len(), 400);
    assert_eq!(
        all_records(&journal)
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        acked
    );
}

#[test]
fn replay_sees_only_what_was_durable_when_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), config(2048)).unwrap();
    for i in 0..100u64 {
        journal.append(payload(i, 50)).unwrap();
    }
    let mut replay = journal.replay_from(SequenceNumber(90)).unwrap();
    let first = replay.next().unwrap().unwrap();
    assert_eq!(first.seq, SequenceNumber(90));
    for i in 100..200u64 {
        journal.append(payload(i, 50)).unwrap();
    }
    let rest: Vec<_> = replay.map(|r| r.unwrap().seq.get()).collect();
    assert_eq!(rest, (91..=100).collect::<Vec<_>>());
    assert_eq!(journal.replay_from(SequenceNumber(1)).unwrap().count(), 200);
}

#[test]
fn a_damaged_record_found_during_replay_is_an_error_not_a_skip() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), config(1 << 20)).unwrap();
    for i in 0..10u64 {
        journal.append(payload(i, 40)).unwrap();
    }
    // Damage record 5 behind the open journal's back (as a failing disk would).
    let segment = segment_files(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&segment).unwrap();
    let record_5 = 32 + 4 * (16 + 40);
    bytes[record_5 + 20] ^= 1;
    fs::write(&segment, &bytes).unwrap();
    let results: Vec<_> = journal.replay_from(SequenceNumber(1)).unwrap().collect();
    assert_eq!(results.len(), 5);
    assert!(results[..4].iter().all(Result::is_ok));
    assert!(matches!(results[4], Err(Error::CorruptRecord { .. })));
}
