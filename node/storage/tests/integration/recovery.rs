//! Recovery from damaged journals: torn tails at every byte offset are cut off, every other
//! kind of damage refuses to open and leaves the files untouched.

use crate::common;

use std::{fs, path::Path};

use common::{all_records, config, copy_dir, payload, segment_files};
use stablelane_storage::{
    journal::{RECORD_HEADER_LEN_BYTES, SEGMENT_HEADER_LEN_BYTES},
    Corruption, Error, Journal, SequenceNumber,
};

const SEGMENT_SIZE: u64 = 300;
/// Payload sizes of the fixture's records: empty, tiny and larger ones.
const SIZES: [usize; 12] = [0, 1, 30, 200, 7, 64, 0, 150, 3, 90, 40, 25];

/// A closed journal holding `SIZES.len()` records over several segments, and the expected
/// `(seq, payload)` list.
fn fixture() -> (tempfile::TempDir, Vec<(u64, Vec<u8>)>) {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), config(SEGMENT_SIZE)).unwrap();
    let mut expected = Vec::new();
    for (i, &len) in SIZES.iter().enumerate() {
        let data = payload(i as u64, len);
        let seq = journal.append(data.clone()).unwrap();
        expected.push((seq.get(), data));
    }
    journal.close().unwrap();
    assert!(
        segment_files(dir.path()).len() >= 3,
        "fixture must span several segments"
    );
    (dir, expected)
}

/// `(seq, offset, encoded length)` of every record of a segment file, read with the format.
fn record_offsets(path: &Path) -> Vec<(u64, u64, u64)> {
    let bytes = fs::read(path).unwrap();
    let mut at = SEGMENT_HEADER_LEN_BYTES as usize;
    let mut out = Vec::new();
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as u64;
        let seq = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
        out.push((seq, at as u64, RECORD_HEADER_LEN_BYTES + len));
        at += (RECORD_HEADER_LEN_BYTES + len) as usize;
    }
    out
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with("LOCK"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Opens the damaged copy, expects recovery to keep exactly `keep` records, then appends one
/// more and checks it gets the next sequence number and survives a reopen.
/// `torn_at`: where the torn tail must have been cut, `None` if there must be none.
fn assert_recovers_to(dir: &Path, expected: &[(u64, Vec<u8>)], keep: usize, torn_at: Option<u64>) {
    let (journal, report) = Journal::open(dir, config(SEGMENT_SIZE)).unwrap();
    assert_eq!(report.records, keep as u64);
    assert_eq!(
        report.last_seq,
        (keep > 0).then_some(SequenceNumber(keep as u64))
    );
    assert_eq!(
        report.torn_tail.as_ref().map(|t| t.offset_bytes),
        torn_at,
        "{report:?}"
    );
    if let Some(torn) = &report.torn_tail {
        let len = fs::metadata(&torn.segment).unwrap().len();
        assert_eq!(len, torn.offset_bytes, "the torn tail is cut off on disk");
    }
    assert_eq!(all_records(&journal), expected[..keep]);
    let next = journal.append(b"after recovery".to_vec()).unwrap();
    assert_eq!(next, SequenceNumber(keep as u64 + 1));
    journal.close().unwrap();

    let (journal, report) = Journal::open(dir, config(SEGMENT_SIZE)).unwrap();
    assert!(report.torn_tail.is_none());
    let records = all_records(&journal);
    assert_eq!(records.len(), keep + 1);
    assert_eq!(records[..keep], expected[..keep]);
    assert_eq!(records[keep].1, b"after recovery");
}

#[test]
fn truncating_the_last_three_records_at_every_byte_keeps_exactly_the_complete_ones() {
    let (pristine, expected) = fixture();
    let last_segment = segment_files(pristine.path()).pop().unwrap();
    let records = record_offsets(&last_segment);
    assert!(records.len() >= 3);
    let first_in_last = records[0].0 as usize - 1; // records before the last segment
    let file_len = fs::metadata(&last_segment).unwrap().len();
    let cut_from = records[records.len() - 3].1; // start of the third-to-last record

    let mut cases = 0;
    for cut in cut_from..=file_len {
        let dir = copy_dir(pristine.path());
        let segment = dir.path().join(last_segment.file_name().unwrap());
        fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let complete: Vec<_> = records
            .iter()
            .filter(|&&(_, at, len)| at + len <= cut)
            .collect();
        let kept_end = complete
            .last()
            .map_or(SEGMENT_HEADER_LEN_BYTES, |&&(_, at, len)| at + len);
        let torn_at = (kept_end != cut).then_some(kept_end);
        assert_recovers_to(
            dir.path(),
            &expected,
            first_in_last + complete.len(),
            torn_at,
        );
        cases += 1;
    }
    assert!(cases > 150, "{cases}");
}

#[test]
fn truncating_inside_every_segment_but_the_last_refuses_to_open() {
    let (pristine, _) = fixture();
    let segments = segment_files(pristine.path());
    for segment in &segments[..segments.len() - 1] {
        let len = fs::metadata(segment).unwrap().len();
        for cut in [len - 1, len - 10, SEGMENT_HEADER_LEN_BYTES + 1] {
            let dir = copy_dir(pristine.path());
            let path = dir.path().join(segment.file_name().unwrap());
            fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(cut)
                .unwrap();
            let before = snapshot(dir.path());
            let err = Journal::open(dir.path(), config(SEGMENT_SIZE)).unwrap_err();
            assert!(matches!(err, Error::CorruptRecord { .. }), "{err}");
            assert_eq!(
                snapshot(dir.path()),
                before,
                "a refused open must not modify files"
            );
        }
    }
}

#[test]
fn flipping_any_byte_of_the_last_record_drops_only_that_record() {
    let (pristine, expected) = fixture();
    let last_segment = segment_files(pristine.path()).pop().unwrap();
    let &(seq, at, len) = record_offsets(&last_segment).last().unwrap();
    for offset in at..at + len {
        for mask in [0x01u8, 0x80, 0xFF] {
            let dir = copy_dir(pristine.path());
            let path = dir.path().join(last_segment.file_name().unwrap());
            let mut bytes = fs::read(&path).unwrap();
            bytes[offset as usize] ^= mask;
            fs::write(&path, &bytes).unwrap();
            assert_recovers_to(dir.path(), &expected, seq as usize - 1, Some(at));
        }
    }
}

#[test]
fn flipping_any_byte_of_an_earlier_record_refuses_to_open() {
    let (pristine, _) = fixture();
    let segments = segment_files(pristine.path());
    let mut cases = 0;
    for (index, segment) in segments.iter().enumerate() {
        let records = record_offsets(segment);
        let is_last = index == segments.len() - 1;
        // In the last segment the final record is a torn tail; every other record is not.
        let candidates = if is_last {
            &records[..records.len() - 1]
        } else {
            &records[..]
        };
        for &(_, at, len) in candidates {
            for offset in at..at + len {
                let dir = copy_dir(pristine.path());
                let path = dir.path().join(segment.file_name().unwrap());
                let mut bytes = fs::read(&path).unwrap();
                bytes[offset as usize] ^= 0x10;
                fs::write(&path, &bytes).unwrap();
                let before = snapshot(dir.path());
                match Journal::open(dir.path(), config(SEGMENT_SIZE)) {
                    Err(Error::CorruptRecord { offset_bytes, .. }) => assert_eq!(offset_bytes, at),
                    other => panic!("byte {offset} of {}: {other:?}", path.display()),
                }
                assert_eq!(
                    snapshot(dir.path()),
                    before,
                    "a refused open must not modify files"
                );
                cases += 1;
            }
        }
    }
    assert!(cases > 500, "{cases}");
}

#[test]
fn damaged_segment_headers_are_refused_clearly() {
    let (pristine, _) = fixture();
    let segments = segment_files(pristine.path());
    for segment in [&segments[0], segments.last().unwrap()] {
        let name = segment.file_name().unwrap();
        let patch = |f: &dyn Fn(&mut Vec<u8>)| {
            let dir = copy_dir(pristine.path());
            let path = dir.path().join(name);
            let mut bytes = fs::read(&path).unwrap();
            f(&mut bytes);
            fs::write(&path, &bytes).unwrap();
            Journal::open(dir.path(), config(SEGMENT_SIZE)).unwrap_err()
        };
        let err = patch(&|b| b[8..12].copy_from_slice(&2u32.to_le_bytes()));
        assert!(
            matches!(
                err,
                Error::UnsupportedFormatVersion {
                    version: 2,
                    supported: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("format version 2"), "{err}");
        let err = patch(&|b| b[0] = b'X');
        assert!(matches!(err, Error::NotASegment { .. }), "{err}");
        for offset in 12..32 {
            let err = patch(&|b| b[offset] ^= 1);
            assert!(matches!(err, Error::CorruptHeader { .. }), "{err}");
        }
        let err = patch(&|b| b.truncate(20));
        assert!(matches!(err, Error::CorruptHeader { .. }), "{err}");
    }
}

#[test]
fn sequence_gaps_refuse_to_open() {
    let (pristine, _) = fixture();
    let segments = segment_files(pristine.path());
    // A missing middle segment.
    let dir = copy_dir(pristine.path());
    fs::remove_file(dir.path().join(segments[1].file_name().unwrap())).unwrap();
    let err = Journal::open(dir.path(), config(SEGMENT_SIZE)).unwrap_err();
    assert!(matches!(err, Error::SequenceGap { .. }), "{err}");
    // A missing first segment: the journal must start at 1.
    let dir = copy_dir(pristine.path());
    fs::remove_file(dir.path().join(segments[0].file_name().unwrap())).unwrap();
    let err = Journal::open(dir.path(), config(SEGMENT_SIZE)).unwrap_err();
    assert!(
        matches!(err, Error::SequenceGap { expected: 1, .. }),
        "{err}"
    );
    // A record removed from the middle of a segment (the rest intact, checksums valid).
    let dir = copy_dir(pristine.path());
    let last = dir
        .path()
        .join(segments.last().unwrap().file_name().unwrap());
    let records = record_offsets(&last);
    assert!(records.len() >= 3);
    let mut bytes = fs::read(&last).unwrap();
    let (_, at, len) = records[1];
    bytes.drain(at as usize..(at + len) as usize);
    fs::write(&last, &bytes).unwrap();
    let err = Journal::open(dir.path(), config(SEGMENT_SIZE)).unwrap_err();
    assert!(matches!(err, Error::SequenceGap { .. }), "{err}");
    // A duplicated record.
    let dir = copy_dir(pristine.path());
    let last = dir
        .path()
        .join(segments.last().unwrap().file_name().unwrap());
    let mut bytes = fs::read(&last).unwrap();
    let (_, at, len) = records[0];
    let copy = bytes[at as usize..(at + len) as usize].to_vec();
    bytes.extend_from_slice(&copy);
    fs::write(&last, &bytes).unwrap();
    let err = Journal::open(dir.path(), config(SEGMENT_SIZE)).unwrap_err();
    assert!(matches!(err, Error::SequenceGap { .. }), "{err}");
}

#[test]
fn zeroes_or_garbage_after_the_last_record_are_a_torn_tail() {
    let (pristine, expected) = fixture();
    let last_segment = segment_files(pristine.path()).pop().unwrap();
    for tail in [
        vec![0u8; 1],
        vec![0u8; 4096],
        payload(99, 300),
        vec![0xFF; 17],
    ] {
        let dir = copy_dir(pristine.path());
        let path = dir.path().join(last_segment.file_name().unwrap());
        let mut bytes = fs::read(&path).unwrap();
        let len = bytes.len() as u64;
        bytes.extend_from_slice(&tail);
        fs::write(&path, &bytes).unwrap();
        let (journal, report) = Journal::open(dir.path(), config(SEGMENT_SIZE)).unwrap();
        let torn = report.torn_tail.clone().unwrap();
        assert_eq!(torn.offset_bytes, len);
        assert_eq!(torn.discarded_bytes, tail.len() as u64);
        assert!(matches!(
            torn.corruption,
            Corruption::Incomplete
                | Corruption::ChecksumMismatch
                | Corruption::LengthOverMax { .. }
        ));
        assert_eq!(all_records(&journal), expected);
        assert_eq!(fs::metadata(&path).unwrap().len(), len);
    }
}

#[test]
fn a_crash_during_rollover_leaves_a_usable_journal() {
    let (pristine, expected) = fixture();
    let last = segment_files(pristine.path()).pop().unwrap();
    let next_seq = expected.len() as u64 + 1;
    let next_name = format!("journal-{next_seq:020}.log");

    // Crash before the rename: only the temporary file exists; it is removed.
    let dir = copy_dir(pristine.path());
    fs::write(
        dir.path().join(format!("{next_name}.tmp")),
        b"SLJOURNL partial",
    )
    .unwrap();
    let (journal, report) = Journal::open(dir.path(), config(SEGMENT_SIZE)).unwrap();
    assert_eq!(report.temp_files_removed, 1);
    assert_eq!(all_records(&journal), expected);
    drop(journal);
    assert!(!dir.path().join(format!("{next_name}.tmp")).exists());

    // Crash after the rename, before the first record: an empty last segment is fine.
    let dir = copy_dir(pristine.path());
    let header = fs::read(&last).unwrap()[..SEGMENT_HEADER_LEN_BYTES as usize].to_vec();
    let mut new_header = header.clone();
    new_header[16..24].copy_from_slice(&next_seq.to_le_bytes());
    let crc = crc32fast::hash(&new_header[..28]);
    new_header[28..32].copy_from_slice(&crc.to_le_bytes());
    fs::write(dir.path().join(&next_name), &new_header).unwrap();
    let (journal, report) = Journal::open(dir.path(), config(SEGMENT_SIZE)).unwrap();
    assert_eq!(report.last_seq, Some(SequenceNumber(next_seq - 1)));
    assert_eq!(
        journal.append(b"x".to_vec()).unwrap(),
        SequenceNumber(next_seq)
    );
    assert_eq!(all_records(&journal).len(), expected.len() + 1);
}
