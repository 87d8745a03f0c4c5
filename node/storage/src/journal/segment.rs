//! Segment files: names, listing, creation (durable, via a temporary file and a rename) and a
//! streaming record reader shared by recovery and replay.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufReader, Read, Write},
    path::{Path, PathBuf},
};

use tracing::warn;

use super::format::{
    Corruption, HeaderError, RecordHeader, SegmentHeader, FORMAT_VERSION, RECORD_HEADER_LEN,
    RECORD_HEADER_LEN_BYTES, SEGMENT_HEADER_LEN, SEGMENT_HEADER_LEN_BYTES,
};
use crate::{Error, Result};

const PREFIX: &str = "journal-";
const SUFFIX: &str = ".log";
const TEMP_SUFFIX: &str = ".tmp";
const SEQ_DIGITS: usize = 20;

/// A segment known to the journal: its first sequence number and its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    pub first_seq: u64,
    pub path: PathBuf,
}

/// File name of the segment whose first record is `first_seq`: `journal-` followed by the
/// sequence number zero-padded to 20 digits, then `.log`, so names sort in sequence order.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{PREFIX}{first_seq:0SEQ_DIGITS$}{SUFFIX}")
}

/// Parses a segment file name. `Ok(None)`: not a segment name at all; `Err`: looks like one
/// (prefix and suffix) but the number does not parse.
fn parse_segment_file_name(name: &str) -> Result<Option<u64>, ()> {
    let Some(digits) = name
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_suffix(SUFFIX))
    else {
        return Ok(None);
    };
    if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    digits.parse().map(Some).map_err(|_| ())
}

/// Lists the segments of `dir` in sequence order and removes leftover temporary files of an
/// interrupted segment creation (they were never renamed into place, so hold no record).
/// Returns the segments and the number of temporary files removed.
pub(crate) fn list_segments(dir: &Path) -> Result<(Vec<SegmentMeta>, usize)> {
    let mut segments = Vec::new();
    let mut removed = 0usize;
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with(PREFIX) && name.ends_with(TEMP_SUFFIX) {
            warn!(target: "storage::journal", file = %path.display(),
                "removing temporary segment file left by an interrupted rollover");
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            removed = removed.saturating_add(1);
            continue;
        }
        match parse_segment_file_name(&name) {
            Ok(Some(first_seq)) => segments.push(SegmentMeta { first_seq, path }),
            Ok(None) => {}
            Err(()) => return Err(Error::UnexpectedFile { path }),
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    segments.sort_by_key(|s| s.first_seq);
    Ok((segments, removed))
}

/// Creates a new segment durably: header written to a temporary file and synced, renamed into
/// place, directory synced. A crash at any point leaves either no segment or a complete empty
/// one (with `replace`, an existing empty segment is atomically swapped for the new one).
/// Returns the open file (positioned after the header) and the segment.
pub(crate) fn create_segment(
    dir: &Path,
    first_seq: u64,
    record_size_max_bytes: u32,
    replace: bool,
) -> Result<(File, SegmentMeta)> {
    let name = segment_file_name(first_seq);
    let path = dir.join(&name);
    let temp = dir.join(format!("{name}{TEMP_SUFFIX}"));
    if !replace && path.exists() {
        return Err(Error::CorruptHeader {
            path,
            reason: "segment to create already exists",
        });
    }
    let header = SegmentHeader {
        record_size_max_bytes,
        first_seq,
    }
    .encode();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(|e| Error::io(&temp, e))?;
    file.write_all(&header).map_err(|e| Error::io(&temp, e))?;
    file.sync_all().map_err(|e| Error::io(&temp, e))?;
    fs::rename(&temp, &path).map_err(|e| Error::io(&path, e))?;
    sync_dir(dir)?;
    Ok((file, SegmentMeta { first_seq, path }))
}

/// Makes a directory's entries durable (new, renamed or removed files).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Reads and checks a segment's header against the sequence number its name promises.
pub(crate) fn read_header(file: &mut impl Read, segment: &SegmentMeta) -> Result<SegmentHeader> {
    let path = &segment.path;
    let mut bytes = [0u8; SEGMENT_HEADER_LEN];
    if let Err(e) = file.read_exact(&mut bytes) {
        return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
            Error::CorruptHeader {
                path: path.clone(),
                reason: "file shorter than a segment header",
            }
        } else {
            Error::io(path, e)
        });
    }
    let header = SegmentHeader::decode(&bytes).map_err(|e| match e {
        HeaderError::BadMagic => Error::NotASegment { path: path.clone() },
        HeaderError::UnsupportedVersion(version) => Error::UnsupportedFormatVersion {
            path: path.clone(),
            version,
            supported: FORMAT_VERSION,
        },
        HeaderError::ChecksumMismatch => Error::CorruptHeader {
            path: path.clone(),
            reason: "header checksum mismatch",
        },
        HeaderError::RecordSizeMaxInvalid => Error::CorruptHeader {
            path: path.clone(),
            reason: "invalid maximum record size",
        },
    })?;
    if header.first_seq != segment.first_seq {
        return Err(Error::CorruptHeader {
            path: path.clone(),
            reason: "first sequence number in the header differs from the file name",
        });
    }
    Ok(header)
}

/// One step of [`RecordReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A complete record whose checksum matches; its payload is in the caller's buffer.
    Record { seq: u64, offset_bytes: u64 },
    /// The file ends exactly at a record boundary.
    End,
    /// A damaged record starts at `offset_bytes`. Nothing after it has been read.
    Damaged {
        offset_bytes: u64,
        corruption: Corruption,
    },
}

/// Streams the records of one segment after its header, checking length and checksum. It
/// never reads past the length the file had when it was opened, and holds one record in
/// memory at a time.
#[derive(Debug)]
pub(crate) struct RecordReader {
    reader: BufReader<File>,
    file_len_bytes: u64,
    offset_bytes: u64,
    record_size_max_bytes: u32,
}

impl RecordReader {
    /// Opens `segment`, checks its header and positions the reader on its first record.
    pub(crate) fn open(segment: &SegmentMeta) -> Result<(Self, SegmentHeader)> {
        let path = &segment.path;
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len_bytes = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let header = read_header(&mut reader, segment)?;
        let this = Self {
            reader,
            file_len_bytes,
            offset_bytes: SEGMENT_HEADER_LEN_BYTES,
            record_size_max_bytes: header.record_size_max_bytes,
        };
        Ok((this, header))
    }

    /// Offset of the next record (the end of the valid records read so far).
    pub(crate) fn offset_bytes(&self) -> u64 {
        self.offset_bytes
    }

    /// Length of the file when it was opened.
    pub(crate) fn file_len_bytes(&self) -> u64 {
        self.file_len_bytes
    }

    /// Maximum payload size from the segment header.
    pub(crate) fn record_size_max_bytes(&self) -> u32 {
        self.record_size_max_bytes
    }

    /// Reads the next record into `payload`.
    pub(crate) fn next(&mut self, payload: &mut Vec<u8>) -> io::Result<Step> {
        let offset_bytes = self.offset_bytes;
        let remaining = self.file_len_bytes.saturating_sub(offset_bytes);
        if remaining == 0 {
            return Ok(Step::End);
        }
        let damaged = |corruption| {
            Ok(Step::Damaged {
                offset_bytes,
                corruption,
            })
        };
        if remaining < RECORD_HEADER_LEN_BYTES {
            return damaged(Corruption::Incomplete);
        }
        let mut header_bytes = [0u8; RECORD_HEADER_LEN];
        self.reader.read_exact(&mut header_bytes)?;
        let header = RecordHeader::decode(&header_bytes);
        if header.len_bytes > self.record_size_max_bytes {
            return damaged(Corruption::LengthOverMax {
                len_bytes: header.len_bytes,
                max_bytes: self.record_size_max_bytes,
            });
        }
        let record_len = RECORD_HEADER_LEN_BYTES.saturating_add(u64::from(header.len_bytes));
        if remaining < record_len {
            return damaged(Corruption::Incomplete);
        }
        payload.clear();
        payload.resize(usize::try_from(header.len_bytes).unwrap_or(usize::MAX), 0);
        self.reader.read_exact(payload)?;
        if !header.matches(payload) {
            return damaged(Corruption::ChecksumMismatch);
        }
        self.offset_bytes = offset_bytes.saturating_add(record_len);
        Ok(Step::Record {
            seq: header.seq,
            offset_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_sequence_order_and_parse_back() {
        assert_eq!(segment_file_name(1), "journal-00000000000000000001.log");
        assert_eq!(
            segment_file_name(u64::MAX),
            "journal-18446744073709551615.log"
        );
        for seq in [0, 1, 9, 10, 12345, u64::MAX] {
            assert_eq!(
                parse_segment_file_name(&segment_file_name(seq)),
                Ok(Some(seq))
            );
        }
        assert!(segment_file_name(9) < segment_file_name(10));
        assert_eq!(parse_segment_file_name("LOCK"), Ok(None));
        assert_eq!(parse_segment_file_name("journal-1.log"), Err(()));
        assert_eq!(
            parse_segment_file_name("journal-0000000000000000000x.log"),
            Err(())
        );
        assert_eq!(
            parse_segment_file_name("journal-99999999999999999999.log"),
            Err(())
        );
    }

    #[test]
    fn listing_removes_temporary_files_and_refuses_odd_names() {
        let dir = tempfile::tempdir().unwrap();
        let (_, a) = create_segment(dir.path(), 1, 64, false).unwrap();
        let (_, b) = create_segment(dir.path(), 10, 64, false).unwrap();
        fs::write(
            dir.path()
                .join(format!("{}{TEMP_SUFFIX}", segment_file_name(20))),
            b"x",
        )
        .unwrap();
        fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let (segments, removed) = list_segments(dir.path()).unwrap();
        assert_eq!(segments, vec![a, b]);
        assert_eq!(removed, 1);

        fs::write(dir.path().join("journal-7.log"), b"x").unwrap();
        assert!(matches!(
            list_segments(dir.path()),
            Err(Error::UnexpectedFile { .. })
        ));
    }

    #[test]
    fn header_must_match_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let (_, segment) = create_segment(dir.path(), 5, 64, false).unwrap();
        let renamed = SegmentMeta {
            first_seq: 6,
            path: segment.path.clone(),
        };
        let mut file = File::open(&segment.path).unwrap();
        assert!(matches!(
            read_header(&mut file, &renamed),
            Err(Error::CorruptHeader { .. })
        ));
        let mut file = File::open(&segment.path).unwrap();
        assert_eq!(read_header(&mut file, &segment).unwrap().first_seq, 5);
    }
}
