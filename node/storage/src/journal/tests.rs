//! Unit tests of the journal's queue, writer and lifecycle. Recovery from damaged files, crash
//! and property tests live in `tests/`.

use std::{
    fs,
    sync::{Arc, Mutex},
};

use super::*;

fn small_config() -> JournalConfig {
    JournalConfig {
        segment_size_max_bytes: 4096,
        ..JournalConfig::default()
    }
}

fn payloads(journal: &Journal) -> Vec<(u64, Vec<u8>)> {
    journal
        .replay_from(SequenceNumber::FIRST)
        .unwrap()
        .map(|r| r.map(|r| (r.seq.get(), r.payload)).unwrap())
        .collect()
}

#[test]
fn appends_get_consecutive_sequence_numbers_from_one() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, report) = Journal::open(dir.path(), small_config()).unwrap();
    assert!(report.created);
    assert_eq!(report.last_seq, None);
    assert_eq!(journal.last_seq(), None);
    for i in 1..=10u64 {
        assert_eq!(
            journal.append(vec![i as u8; i as usize]).unwrap(),
            SequenceNumber(i)
        );
    }
    assert_eq!(journal.last_seq(), Some(SequenceNumber(10)));
    let records = payloads(&journal);
    assert_eq!(records.len(), 10);
    assert_eq!(records[3], (4, vec![4u8; 4]));
    let metrics = journal.metrics();
    assert_eq!(metrics.records_appended, 10);
    assert!(metrics.syncs >= 1 && metrics.syncs <= 10);
    assert_eq!(
        metrics.bytes_appended,
        (1..=10u64).map(|i| 16 + i).sum::<u64>()
    );
    assert!(metrics.sync_latency_last > std::time::Duration::ZERO);
    journal.close().unwrap();
}

#[test]
fn busy_when_the_queue_is_full_and_no_sequence_number_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        queue_depth_max: 4,
        ..small_config()
    };
    let (journal, _) = Journal::open(dir.path(), config).unwrap();
    journal.pause_writer(true);
    let tickets: Vec<_> = (0..4u8).map(|i| journal.submit(vec![i]).unwrap()).collect();
    let seqs: Vec<u64> = tickets.iter().map(|t| t.seq().get()).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    for _ in 0..3 {
        match journal.submit(vec![9]) {
            Err(Error::Busy {
                queued_records: 4,
                queued_bytes: 4,
            }) => {}
            other => panic!("expected Busy, got {other:?}"),
        }
    }
    assert_eq!(journal.metrics().busy_rejections, 3);
    assert_eq!(journal.metrics().queue_depth, 4);
    journal.pause_writer(false);
    for (i, ticket) in tickets.into_iter().enumerate() {
        assert_eq!(ticket.wait().unwrap(), SequenceNumber(i as u64 + 1));
    }
    // The refused appends left no hole: the next one is 5.
    assert_eq!(journal.append(vec![5]).unwrap(), SequenceNumber(5));
    assert_eq!(payloads(&journal).len(), 5);
}

#[test]
fn busy_when_queued_bytes_reach_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        record_size_max_bytes: 100,
        queue_bytes_max: 250,
        ..small_config()
    };
    let (journal, _) = Journal::open(dir.path(), config).unwrap();
    journal.pause_writer(true);
    let a = journal.submit(vec![0; 100]).unwrap();
    let b = journal.submit(vec![0; 100]).unwrap();
    assert!(matches!(
        journal.submit(vec![0; 51]),
        Err(Error::Busy {
            queued_bytes: 200,
            ..
        })
    ));
    let c = journal.submit(vec![0; 50]).unwrap();
    journal.pause_writer(false);
    assert_eq!(
        [a.wait(), b.wait(), c.wait()].map(|r| r.unwrap().get()),
        [1, 2, 3]
    );
}

#[test]
fn group_commit_syncs_many_records_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), small_config()).unwrap();
    journal.pause_writer(true);
    let tickets: Vec<_> = (0..100u8)
        .map(|i| journal.submit(vec![i; 40]).unwrap())
        .collect();
    journal.pause_writer(false);
    for ticket in tickets {
        ticket.wait().unwrap();
    }
    let metrics = journal.metrics();
    assert_eq!(metrics.records_appended, 100);
    // 100 records of 56 bytes in 4 KiB segments: one group, one rollover, two syncs.
    assert_eq!(metrics.segments_created, 1);
    assert_eq!(metrics.syncs, metrics.segments_created + 1);
    assert!(metrics.records_per_sync() > 10.0);
}

#[test]
fn oversized_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        record_size_max_bytes: 10,
        queue_bytes_max: 10,
        ..small_config()
    };
    let (journal, _) = Journal::open(dir.path(), config).unwrap();
    assert!(matches!(
        journal.append(vec![0; 11]),
        Err(Error::RecordTooLarge {
            len_bytes: 11,
            max_bytes: 10
        })
    ));
    assert_eq!(journal.append(vec![0; 10]).unwrap(), SequenceNumber(1));
}

#[test]
fn a_directory_is_opened_by_one_journal_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), small_config()).unwrap();
    assert!(matches!(
        Journal::open(dir.path(), small_config()),
        Err(Error::Locked { .. })
    ));
    drop(journal);
    let (journal, report) = Journal::open(dir.path(), small_config()).unwrap();
    assert!(!report.created);
    journal.close().unwrap();
}

#[test]
fn close_writes_what_is_queued_and_refuses_later_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), small_config()).unwrap();
    journal.pause_writer(true);
    let tickets: Vec<_> = (0..5u8).map(|i| journal.submit(vec![i]).unwrap()).collect();
    {
        let mut queue = journal.shared.lock_queue();
        queue.state = WriterState::Closing;
    }
    journal.shared.wake.notify_all();
    assert!(matches!(journal.submit(vec![1]), Err(Error::Closed)));
    for ticket in tickets {
        ticket.wait().unwrap();
    }
    journal.close().unwrap();
    let (journal, report) = Journal::open(dir.path(), small_config()).unwrap();
    assert_eq!(report.records, 5);
    assert_eq!(journal.last_seq(), Some(SequenceNumber(5)));
}

#[test]
fn a_failed_sync_fails_pending_and_later_appends_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), small_config()).unwrap();
    for i in 0..3u8 {
        journal.append(vec![i]).unwrap();
    }
    journal.pause_writer(true);
    let tickets: Vec<_> = (3..5u8).map(|i| journal.submit(vec![i]).unwrap()).collect();
    journal
        .shared
        .fail_syncs
        .store(true, std::sync::atomic::Ordering::Relaxed);
    journal.pause_writer(false);
    for ticket in tickets {
        let err = ticket.wait().unwrap_err();
        assert!(matches!(err, Error::WriterFailed { .. }), "{err}");
        assert!(err.to_string().contains("injected sync failure"), "{err}");
    }
    assert!(matches!(
        journal.submit(vec![9]),
        Err(Error::WriterFailed { .. })
    ));
    assert_eq!(journal.last_seq(), Some(SequenceNumber(3)));
    assert!(matches!(journal.close(), Err(Error::WriterFailed { .. })));

    // The two unacknowledged records did reach the file: recovery may keep them.
    let (journal, report) = Journal::open(dir.path(), small_config()).unwrap();
    assert_eq!(report.records, 5);
    assert_eq!(journal.append(vec![5]).unwrap(), SequenceNumber(6));
}

#[test]
fn replay_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), small_config()).unwrap();
    assert_eq!(journal.replay_from(SequenceNumber(1)).unwrap().count(), 0);
    assert!(matches!(
        journal.replay_from(SequenceNumber(2)),
        Err(Error::ReplayOutOfRange {
            from: 2,
            first: 1,
            last: 0
        })
    ));
    for i in 0..3u8 {
        journal.append(vec![i]).unwrap();
    }
    assert_eq!(journal.replay_from(SequenceNumber(0)).unwrap().count(), 3);
    assert_eq!(journal.replay_from(SequenceNumber(3)).unwrap().count(), 1);
    assert_eq!(journal.replay_from(SequenceNumber(4)).unwrap().count(), 0);
    assert!(journal.replay_from(SequenceNumber(5)).is_err());
}

#[test]
fn tickets_complete_in_async_code() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), small_config()).unwrap();
    let journal = Arc::new(journal);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let seqs = runtime.block_on(async {
        let mut handles = Vec::new();
        for i in 0..16u8 {
            let ticket = journal.submit(vec![i]).unwrap();
            handles.push(ticket);
        }
        let mut seqs = Vec::new();
        for ticket in handles {
            seqs.push(ticket.await.unwrap().get());
        }
        seqs
    });
    assert_eq!(seqs, (1..=16).collect::<Vec<_>>());
}

#[test]
fn a_larger_configured_record_size_gets_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let small = JournalConfig {
        record_size_max_bytes: 16,
        queue_bytes_max: 16,
        ..small_config()
    };
    let (journal, _) = Journal::open(dir.path(), small.clone()).unwrap();
    journal.append(vec![1; 16]).unwrap();
    journal.close().unwrap();

    // Non-empty active segment with a smaller maximum: a new segment starts at the next seq.
    let big = JournalConfig {
        record_size_max_bytes: 64,
        queue_bytes_max: 64,
        ..small_config()
    };
    let (journal, report) = Journal::open(dir.path(), big.clone()).unwrap();
    assert_eq!(report.segments, 2);
    assert_eq!(journal.append(vec![2; 64]).unwrap(), SequenceNumber(2));
    journal.close().unwrap();

    // Reopening with the small limit again still reads the big record (limits are per segment)
    // and an empty active segment is replaced in place.
    let (journal, report) = Journal::open(dir.path(), small).unwrap();
    assert_eq!(report.records, 2);
    assert_eq!(payloads(&journal)[1].1, vec![2; 64]);
    journal.close().unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(fresh.path(), small_config()).unwrap();
    journal.close().unwrap();
    let (journal, report) = Journal::open(fresh.path(), big).unwrap();
    assert_eq!(report.segments, 1);
    assert_eq!(journal.append(vec![3; 64]).unwrap(), SequenceNumber(1));
}

#[test]
fn invalid_configs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bad = [
        JournalConfig {
            record_size_max_bytes: 0,
            ..JournalConfig::default()
        },
        JournalConfig {
            record_size_max_bytes: RECORD_SIZE_LIMIT_BYTES + 1,
            ..JournalConfig::default()
        },
        JournalConfig {
            segment_size_max_bytes: 48,
            ..JournalConfig::default()
        },
        JournalConfig {
            queue_depth_max: 0,
            ..JournalConfig::default()
        },
        JournalConfig {
            queue_bytes_max: 1024,
            ..JournalConfig::default()
        },
    ];
    for config in bad {
        assert!(matches!(
            Journal::open(dir.path(), config),
            Err(Error::InvalidConfig { .. })
        ));
    }
    JournalConfig::default().validate().unwrap();
}

/// Collects `(target, level, message)` of events, to check what recovery logs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<(String, tracing::Level, String)>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{v:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((meta.target().to_owned(), *meta.level(), message.0));
    }
}

#[test]
fn torn_tail_truncation_is_logged_and_reported() {
    use tracing_subscriber::layer::SubscriberExt;

    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), small_config()).unwrap();
    journal.append(b"kept".to_vec()).unwrap();
    journal.append(b"torn".to_vec()).unwrap();
    journal.close().unwrap();
    let segment = dir.path().join(segment_file_name(1));
    let len = fs::metadata(&segment).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - 3)
        .unwrap();

    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(captured.clone());
    let (journal, report) = tracing::subscriber::with_default(subscriber, || {
        Journal::open(dir.path(), small_config()).unwrap()
    });
    let torn = report.torn_tail.expect("torn tail reported");
    assert_eq!(torn.offset_bytes, 32 + 20);
    assert_eq!(torn.discarded_bytes, 17);
    assert_eq!(torn.corruption, Corruption::Incomplete);
    assert_eq!(report.last_seq, Some(SequenceNumber(1)));
    let events = captured.0.lock().unwrap();
    assert!(
        events
            .iter()
            .any(|(target, level, message)| target == "storage::journal"
                && *level == tracing::Level::WARN
                && message.contains("torn tail")),
        "{events:?}"
    );
    assert_eq!(journal.append(b"next".to_vec()).unwrap(), SequenceNumber(2));
}

#[test]
fn recovery_reads_records_from_verify_from_on_and_replay_still_checks_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), small_config()).unwrap();
    for i in 0..200u64 {
        journal.append(vec![(i % 251) as u8; 100]).unwrap();
    }
    journal.close().unwrap();
    let (segments, _) = segment::list_segments(dir.path()).unwrap();
    assert!(segments.len() >= 4, "several segments: {}", segments.len());
    // Damage a payload byte of the first segment's second record.
    let first = &segments[0].path;
    let mut bytes = fs::read(first).unwrap();
    let at = SEGMENT_HEADER_LEN_BYTES as usize + RECORD_HEADER_LEN_BYTES as usize + 100 + 20;
    bytes[at] ^= 0xff;
    fs::write(first, &bytes).unwrap();

    // Every record checked: the damage is found at open.
    assert!(matches!(
        Journal::open(dir.path(), small_config()),
        Err(Error::CorruptRecord { .. })
    ));
    // From the third segment on: it opens, counts every record, and a replay from the start
    // finds the damage when it reads it.
    let from = segments[2].first_seq;
    let config = JournalConfig {
        verify_from: from,
        ..small_config()
    };
    let (journal, report) = Journal::open(dir.path(), config).unwrap();
    assert_eq!(report.records, 200);
    assert_eq!(journal.last_seq(), Some(SequenceNumber(200)));
    let replayed: Vec<_> = journal
        .replay_from(SequenceNumber(from))
        .unwrap()
        .collect::<Result<Vec<_>>>()
        .unwrap();
    assert_eq!(replayed.len() as u64, 200 - from + 1);
    let from_start: Vec<_> = journal
        .replay_from(SequenceNumber::FIRST)
        .unwrap()
        .collect();
    assert!(
        matches!(from_start.get(1), Some(Err(_))),
        "damage found on replay"
    );
    assert_eq!(journal.append(vec![1]).unwrap(), SequenceNumber(201));
    journal.close().unwrap();
    // Damage after `verify_from` is still found at open.
    let last = &segments[segments.len() - 2].path;
    let mut bytes = fs::read(last).unwrap();
    let at = SEGMENT_HEADER_LEN_BYTES as usize + RECORD_HEADER_LEN_BYTES as usize + 50;
    bytes[at] ^= 0xff;
    fs::write(last, &bytes).unwrap();
    let config = JournalConfig {
        verify_from: from,
        ..small_config()
    };
    assert!(matches!(
        Journal::open(dir.path(), config),
        Err(Error::CorruptRecord { .. })
    ));
}
