//! Property test: any sequence of appends, bursts, clean reopens and crashes that leave a torn
//! (or complete but unacknowledged) write at the end keeps exactly the acknowledged records,
//! in order, and appends continue with the next sequence number.
//!
//! Records written by the test itself are encoded from the documented format (not with the
//! crate's encoder), so this also checks the format description.

use crate::common;

use std::{fs, path::Path};

use common::{all_records, config, payload, segment_files};
use proptest::prelude::*;
use stablelane_storage::{Journal, JournalConfig, SequenceNumber};

#[derive(Debug, Clone)]
enum Op {
    /// One blocking append.
    Append { len: usize },
    /// `count` appends submitted at once, then awaited (one group commit, maybe a rollover).
    Burst { count: usize, len: usize },
    /// Clean close and reopen.
    Reopen,
    /// Crash while writing the next record: only its first `keep` bytes reached the disk
    /// (`keep` is a fraction of the record, never all of it), and/or a byte of it is wrong.
    TornWrite {
        len: usize,
        keep_per_mille: u16,
        flip: Option<u16>,
    },
    /// Crash after writing the next record but before its acknowledgement: it is complete,
    /// so recovery keeps it (keeping unacknowledged records is allowed).
    UnackedWrite { len: usize },
    /// Replay from a position (per mille of the current length) and compare.
    Replay { from_per_mille: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..300).prop_map(|len| Op::Append { len }),
        2 => (1usize..20, 0usize..120).prop_map(|(count, len)| Op::Burst { count, len }),
        1 => Just(Op::Reopen),
        2 => (0usize..200, 0u16..1000, proptest::option::of(0u16..1000))
            .prop_map(|(len, keep_per_mille, flip)| Op::TornWrite { len, keep_per_mille, flip }),
        1 => (0usize..200).prop_map(|len| Op::UnackedWrite { len }),
        1 => (0u16..=1000).prop_map(|from_per_mille| Op::Replay { from_per_mille }),
    ]
}

/// A record encoded as the module docs describe it.
fn encode(seq: u64, data: &[u8]) -> Vec<u8> {
    let len = data.len() as u32;
    let mut covered = Vec::new();
    covered.extend_from_slice(&len.to_le_bytes());
    covered.extend_from_slice(&seq.to_le_bytes());
    covered.extend_from_slice(data);
    let mut out = crc32fast::hash(&covered).to_le_bytes().to_vec();
    out.extend_from_slice(&covered);
    out
}

fn append_to_last_segment(dir: &Path, bytes: &[u8]) {
    let last = segment_files(dir).pop().unwrap();
    let mut content = fs::read(&last).unwrap();
    content.extend_from_slice(bytes);
    fs::write(&last, content).unwrap();
}

fn run(ops: Vec<Op>, segment_size: u64) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let cfg: JournalConfig = config(segment_size);
    let (mut journal, _) = Journal::open(dir.path(), cfg.clone()).unwrap();
    let mut model: Vec<Vec<u8>> = Vec::new();
    let mut counter = 0u64;
    let mut next_payload = |len: usize| {
        counter += 1;
        payload(counter, len)
    };

    for op in ops {
        match op {
            Op::Append { len } => {
                let data = next_payload(len);
                let seq = journal.append(data.clone()).unwrap();
                model.push(data);
                prop_assert_eq!(seq.get(), model.len() as u64);
            }
            Op::Burst { count, len } => {
                let batch: Vec<_> = (0..count).map(|_| next_payload(len)).collect();
                let tickets: Vec<_> = batch
                    .iter()
                    .map(|d| journal.submit(d.clone()).unwrap())
                    .collect();
                for (ticket, data) in tickets.into_iter().zip(batch) {
                    let seq = ticket.wait().unwrap();
                    model.push(data);
                    prop_assert_eq!(seq.get(), model.len() as u64);
                }
            }
            Op::Reopen => {
                journal.close().unwrap();
                let (reopened, report) = Journal::open(dir.path(), cfg.clone()).unwrap();
                prop_assert!(report.torn_tail.is_none());
                prop_assert_eq!(report.records, model.len() as u64);
                journal = reopened;
            }
            Op::TornWrite {
                len,
                keep_per_mille,
                flip,
            } => {
                journal.close().unwrap();
                let mut record = encode(model.len() as u64 + 1, &next_payload(len));
                let keep = (record.len() * keep_per_mille as usize / 1000).max(1);
                let keep = if flip.is_some() {
                    keep
                } else {
                    keep.min(record.len() - 1)
                };
                record.truncate(keep);
                if let Some(flip) = flip {
                    let at = record.len() * flip as usize / 1000;
                    record[at] ^= 0x5A;
                }
                append_to_last_segment(dir.path(), &record);
                let (reopened, report) = Journal::open(dir.path(), cfg.clone()).unwrap();
                let torn = report.torn_tail.clone();
                prop_assert!(torn.is_some(), "{:?}", report);
                prop_assert_eq!(torn.unwrap().discarded_bytes, record.len() as u64);
                prop_assert_eq!(report.records, model.len() as u64);
                journal = reopened;
            }
            Op::UnackedWrite { len } => {
                journal.close().unwrap();
                let data = next_payload(len);
                append_to_last_segment(dir.path(), &encode(model.len() as u64 + 1, &data));
                model.push(data);
                let (reopened, report) = Journal::open(dir.path(), cfg.clone()).unwrap();
                prop_assert!(report.torn_tail.is_none());
                prop_assert_eq!(report.records, model.len() as u64);
                journal = reopened;
            }
            Op::Replay { from_per_mille } => {
                let from = (model.len() as u64 * from_per_mille as u64 / 1000).max(1);
                let replayed: Vec<_> = journal
                    .replay_from(SequenceNumber(from))
                    .unwrap()
                    .map(|r| r.unwrap().payload)
                    .collect();
                prop_assert_eq!(
                    &replayed[..],
                    &model[(from as usize - 1).min(model.len())..]
                );
            }
        }
        prop_assert_eq!(
            journal.last_seq().map(SequenceNumber::get),
            Some(model.len() as u64).filter(|&n| n > 0)
        );
    }

    let replayed: Vec<_> = all_records(&journal).into_iter().map(|(_, p)| p).collect();
    prop_assert_eq!(replayed, model.clone());
    journal.close().unwrap();
    let (journal, report) = Journal::open(dir.path(), cfg).unwrap();
    prop_assert!(report.torn_tail.is_none());
    let replayed: Vec<_> = all_records(&journal).into_iter().map(|(_, p)| p).collect();
    prop_assert_eq!(replayed, model);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn acknowledged_records_survive_any_crash_sequence(
        ops in proptest::collection::vec(op(), 1..30),
        segment_size in 200u64..3000,
    ) {
        run(ops, segment_size)?;
    }
}
