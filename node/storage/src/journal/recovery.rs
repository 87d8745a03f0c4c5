//! Start-up recovery: verify every segment, truncate a torn tail, refuse anything else.

use std::{
    fs::{File, OpenOptions},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

use tracing::{info, warn};

use super::{
    format::{Corruption, RecordHeader, RECORD_HEADER_LEN, RECORD_HEADER_LEN_BYTES},
    segment::{create_segment, list_segments, sync_dir, RecordReader, SegmentMeta, Step},
    JournalConfig, SEGMENT_HEADER_LEN_BYTES,
};
use crate::{Error, Result, SequenceNumber};

/// What [`Journal::open`](super::Journal::open) found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// The directory held no segment: a new, empty journal was created.
    pub created: bool,
    /// Segment files after recovery.
    pub segments: usize,
    /// Records in the journal after recovery (all verified).
    pub records: u64,
    /// Sequence number of the last record, `None` if the journal is empty.
    pub last_seq: Option<SequenceNumber>,
    /// The torn tail that was cut off the last segment, if there was one.
    pub torn_tail: Option<TornTail>,
    /// Temporary files of an interrupted segment creation that were removed.
    pub temp_files_removed: usize,
}

/// A torn tail found at start-up: an incomplete or damaged record at the very end of the last
/// segment, with no valid record after it. It was never acknowledged (acknowledgement follows
/// the sync of every byte of a record), so it was cut off and the truncation synced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TornTail {
    /// The segment that was truncated.
    pub segment: PathBuf,
    /// Its new length: the offset of the first damaged byte range.
    pub offset_bytes: u64,
    /// Bytes cut off.
    pub discarded_bytes: u64,
    /// What was wrong with the first damaged record.
    pub corruption: Corruption,
}

/// The state recovery hands to the writer.
pub(crate) struct Recovered {
    pub segments: Vec<SegmentMeta>,
    /// The last segment, open for appending.
    pub active: File,
    pub active_len_bytes: u64,
    pub next_seq: u64,
    pub report: RecoveryReport,
}

pub(crate) fn recover(dir: &Path, config: &JournalConfig) -> Result<Recovered> {
    let (mut segments, temp_files_removed) = list_segments(dir)?;
    if segments.is_empty() {
        let first = SequenceNumber::FIRST.get();
        let (active, meta) = create_segment(dir, first, config.record_size_max_bytes, false)?;
        info!(target: "storage::journal", dir = %dir.display(), "created a new journal");
        return Ok(Recovered {
            segments: vec![meta],
            active,
            active_len_bytes: SEGMENT_HEADER_LEN_BYTES,
            next_seq: first,
            report: RecoveryReport {
                created: true,
                segments: 1,
                records: 0,
                last_seq: None,
                torn_tail: None,
                temp_files_removed,
            },
        });
    }

    let mut expected = SequenceNumber::FIRST.get();
    let mut records = 0u64;
    let mut torn_tail = None;
    let mut active_len_bytes = SEGMENT_HEADER_LEN_BYTES;
    let mut active_record_size_max = config.record_size_max_bytes;
    let mut payload = Vec::new();
    let segment_count = segments.len();
    let mut skipped_segments = 0usize;
    for (index, segment) in segments.iter().enumerate() {
        let is_last = index.saturating_add(1) == segment_count;
        let path = &segment.path;
        let (mut reader, header) = RecordReader::open(segment)?;
        if header.first_seq != expected {
            return Err(Error::SequenceGap {
                path: path.clone(),
                offset_bytes: 0,
                expected,
                found: header.first_seq,
            });
        }
        // A full segment whose records all come before `verify_from`: its header and place in
        // the sequence are checked, its records are read (and checked) only when replayed.
        if let Some(next) = segments.get(index.saturating_add(1)) {
            if next.first_seq <= config.verify_from && next.first_seq > expected {
                records = records.saturating_add(next.first_seq.saturating_sub(expected));
                expected = next.first_seq;
                skipped_segments = skipped_segments.saturating_add(1);
                continue;
            }
        }
        loop {
            match reader.next(&mut payload).map_err(|e| Error::io(path, e))? {
                Step::Record { seq, offset_bytes } => {
                    if seq != expected {
                        return Err(Error::SequenceGap {
                            path: path.clone(),
                            offset_bytes,
                            expected,
                            found: seq,
                        });
                    }
                    expected = expected.checked_add(1).ok_or(Error::SequenceExhausted)?;
                    records = records.saturating_add(1);
                }
                Step::End => break,
                Step::Damaged {
                    offset_bytes,
                    corruption,
                } => {
                    let corrupt = || Error::CorruptRecord {
                        path: path.clone(),
                        offset_bytes,
                        corruption,
                    };
                    if !is_last {
                        return Err(corrupt());
                    }
                    let file_len_bytes = reader.file_len_bytes();
                    let max = reader.record_size_max_bytes();
                    if let Some(valid_at) =
                        find_valid_record_after(path, offset_bytes, file_len_bytes, expected, max)?
                    {
                        warn!(target: "storage::journal", segment = %path.display(),
                            offset_bytes, valid_record_at = valid_at, %corruption,
                            "damaged record followed by a valid one: refusing to open");
                        return Err(corrupt());
                    }
                    truncate(path, offset_bytes)?;
                    let discarded_bytes = file_len_bytes.saturating_sub(offset_bytes);
                    warn!(target: "storage::journal", segment = %path.display(), offset_bytes,
                        discarded_bytes, next_seq = expected, %corruption,
                        "torn tail truncated (unacknowledged partial write)");
                    torn_tail = Some(TornTail {
                        segment: path.clone(),
                        offset_bytes,
                        discarded_bytes,
                        corruption,
                    });
                    break;
                }
            }
        }
        if is_last {
            active_len_bytes = reader.offset_bytes();
            active_record_size_max = header.record_size_max_bytes;
        }
    }

    let last = segments.last().cloned().ok_or(Error::CorruptHeader {
        path: dir.to_path_buf(),
        reason: "no segment",
    })?;
    let mut active = OpenOptions::new()
        .append(true)
        .open(&last.path)
        .map_err(|e| Error::io(&last.path, e))?;
    // Records found complete may not have been synced before the crash; make everything this
    // recovery reports (and the node will replay) durable before anyone relies on it.
    active.sync_all().map_err(|e| Error::io(&last.path, e))?;
    sync_dir(dir)?;

    // The active segment must accept the configured record size (its header bounds reads).
    if active_record_size_max < config.record_size_max_bytes {
        let empty = active_len_bytes == SEGMENT_HEADER_LEN_BYTES;
        let (file, meta) = create_segment(dir, expected, config.record_size_max_bytes, empty)?;
        info!(target: "storage::journal", first_seq = expected, replaced_empty = empty,
            "new segment for a larger configured record size");
        active = file;
        active_len_bytes = SEGMENT_HEADER_LEN_BYTES;
        if empty {
            segments.pop();
        }
        segments.push(meta);
    }

    let last_seq = expected
        .checked_sub(1)
        .filter(|&s| s > 0)
        .map(SequenceNumber);
    info!(target: "storage::journal", dir = %dir.display(), segments = segments.len(), records,
        segments_not_scanned = skipped_segments,
        last_seq = last_seq.map(SequenceNumber::get), torn_tail = torn_tail.is_some(),
        "journal recovered");
    Ok(Recovered {
        report: RecoveryReport {
            created: false,
            segments: segments.len(),
            records,
            last_seq,
            torn_tail,
            temp_files_removed,
        },
        segments,
        active,
        active_len_bytes,
        next_seq: expected,
    })
}

fn truncate(path: &Path, len_bytes: u64) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    file.set_len(len_bytes).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

/// Looks for a valid record (checksum matches, plausible sequence number) starting anywhere
/// after the damaged record at `damaged_at`. Finding one means the damage is not a torn tail:
/// records were written (and maybe acknowledged) after it. Reads the file in chunks; a
/// payload is read and checksummed only for a header whose sequence number could follow
/// `expected_seq`, which random or zeroed bytes almost never have.
pub(crate) fn find_valid_record_after(
    path: &Path,
    damaged_at: u64,
    file_len_bytes: u64,
    expected_seq: u64,
    record_size_max_bytes: u32,
) -> Result<Option<u64>> {
    const CHUNK: usize = 1 << 20;
    let io_err = |e| Error::io(path, e);
    let file = File::open(path).map_err(io_err)?;
    let tail_bytes = file_len_bytes.saturating_sub(damaged_at);
    let seq_max = expected_seq.saturating_add(tail_bytes / RECORD_HEADER_LEN_BYTES);
    let mut chunk = vec![0u8; CHUNK.saturating_add(RECORD_HEADER_LEN)];
    let mut payload = Vec::new();
    let mut base = damaged_at.saturating_add(1);
    while base.saturating_add(RECORD_HEADER_LEN_BYTES) <= file_len_bytes {
        let available = file_len_bytes.saturating_sub(base);
        let want = usize::try_from(available)
            .unwrap_or(usize::MAX)
            .min(chunk.len());
        let window = chunk.get_mut(..want).unwrap_or_default();
        file.read_exact_at(window, base).map_err(io_err)?;
        // Headers starting in this window; ones starting in the overlap come next round.
        let starts = want
            .saturating_sub(RECORD_HEADER_LEN)
            .saturating_add(1)
            .min(CHUNK);
        for i in 0..starts {
            let Some(bytes) = window.get(i..i.saturating_add(RECORD_HEADER_LEN)) else {
                break;
            };
            let Ok(bytes) = <&[u8; RECORD_HEADER_LEN]>::try_from(bytes) else {
                break;
            };
            let header = RecordHeader::decode(bytes);
            if header.seq < expected_seq
                || header.seq > seq_max
                || header.len_bytes > record_size_max_bytes
            {
                continue;
            }
            let at = base.saturating_add(i as u64);
            let payload_at = at.saturating_add(RECORD_HEADER_LEN_BYTES);
            if payload_at.saturating_add(u64::from(header.len_bytes)) > file_len_bytes {
                continue;
            }
            payload.resize(usize::try_from(header.len_bytes).unwrap_or(0), 0);
            file.read_exact_at(&mut payload, payload_at)
                .map_err(io_err)?;
            if header.matches(&payload) {
                return Ok(Some(at));
            }
        }
        base = base.saturating_add(starts as u64);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::journal::format::encode_record;

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        File::create(&path).unwrap().write_all(bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn finds_a_valid_record_at_any_alignment_after_garbage() {
        for garbage_len in [0usize, 1, 7, 15, 16, 17, 100] {
            let mut bytes = vec![0xA5u8; 10];
            bytes.extend(std::iter::repeat_n(0x5Au8, garbage_len));
            let at = bytes.len() as u64;
            encode_record(&mut bytes, 3, b"payload");
            let (_dir, path) = file_with(&bytes);
            let found = find_valid_record_after(&path, 0, bytes.len() as u64, 2, 1024).unwrap();
            assert_eq!(found, Some(at), "garbage {garbage_len}");
            // A sequence number before the damaged one does not count.
            let found = find_valid_record_after(&path, 0, bytes.len() as u64, 4, 1024).unwrap();
            assert_eq!(found, None);
        }
    }

    #[test]
    fn zeroes_and_partial_records_are_not_valid_records() {
        let mut bytes = vec![0u8; 4096];
        let mut record = Vec::new();
        encode_record(&mut record, 5, &[9u8; 64]);
        bytes.extend_from_slice(&record[..record.len() - 1]);
        let (_dir, path) = file_with(&bytes);
        assert_eq!(
            find_valid_record_after(&path, 0, bytes.len() as u64, 1, 1024).unwrap(),
            None
        );
    }

    #[test]
    fn scans_across_chunk_boundaries() {
        // A record straddling the 1 MiB window boundary is still found.
        let mut bytes = vec![0xFFu8; (1 << 20) - 5];
        let at = bytes.len() as u64;
        encode_record(&mut bytes, 10, &[1u8; 40]);
        let (_dir, path) = file_with(&bytes);
        let found = find_valid_record_after(&path, 0, bytes.len() as u64, 10, 1024).unwrap();
        assert_eq!(found, Some(at));
    }
}
