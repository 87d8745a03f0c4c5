//! Streaming replay of the journal from a sequence number.

use std::{mem, path::PathBuf};

use super::segment::{RecordReader, SegmentMeta, Step};
use crate::{Error, Result, SequenceNumber};

/// One journal record, as replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// Its sequence number.
    pub seq: SequenceNumber,
    /// The bytes given to the append.
    pub payload: Vec<u8>,
}

/// Iterator over the durable records from a given sequence number, in order, from
/// [`Journal::replay_from`](super::Journal::replay_from).
///
/// It reads the segment files as it goes (one buffered file and one record in memory at a
/// time), verifies each record's checksum and the sequence continuity again, and stops at the
/// last record that was durable when it was created: appends made meanwhile are not included.
/// After an error it yields nothing more.
#[derive(Debug)]
pub struct Replay {
    segments: std::vec::IntoIter<SegmentMeta>,
    reader: Option<(RecordReader, PathBuf)>,
    /// The segment read last, for errors.
    last_path: PathBuf,
    /// Sequence number the next record read must have; `None` until the first segment opens.
    next_seq: Option<u64>,
    from: u64,
    end_seq: u64,
    payload: Vec<u8>,
    done: bool,
}

impl Replay {
    /// `segments` in order; yields records `from..=end_seq`.
    pub(crate) fn new(mut segments: Vec<SegmentMeta>, from: u64, end_seq: u64) -> Self {
        // Start in the last segment that begins at or before `from`.
        let start = segments
            .iter()
            .rposition(|s| s.first_seq <= from)
            .unwrap_or(0);
        let segments = segments.split_off(start).into_iter();
        Self {
            segments,
            reader: None,
            last_path: PathBuf::new(),
            next_seq: None,
            from,
            end_seq,
            payload: Vec::new(),
            done: from > end_seq,
        }
    }

    fn step(&mut self) -> Result<Option<Record>> {
        loop {
            if self.next_seq.is_some_and(|next| next > self.end_seq) {
                return Ok(None);
            }
            let Some((reader, path)) = &mut self.reader else {
                let Some(segment) = self.segments.next() else {
                    // Records up to `end_seq` were durable, so they must be there.
                    return Err(Error::SequenceGap {
                        path: self.last_path.clone(),
                        offset_bytes: 0,
                        expected: self.next_seq.unwrap_or(self.from),
                        found: 0,
                    });
                };
                let (reader, header) = RecordReader::open(&segment)?;
                if let Some(expected) = self.next_seq.filter(|&n| n != header.first_seq) {
                    return Err(Error::SequenceGap {
                        path: segment.path,
                        offset_bytes: 0,
                        expected,
                        found: header.first_seq,
                    });
                }
                self.next_seq = Some(header.first_seq);
                self.last_path.clone_from(&segment.path);
                self.reader = Some((reader, segment.path));
                continue;
            };
            let expected = self.next_seq.unwrap_or(0);
            match reader
                .next(&mut self.payload)
                .map_err(|e| Error::io(&*path, e))?
            {
                Step::Record { seq, offset_bytes } => {
                    if seq != expected {
                        return Err(Error::SequenceGap {
                            path: path.clone(),
                            offset_bytes,
                            expected,
                            found: seq,
                        });
                    }
                    self.next_seq = Some(seq.saturating_add(1));
                    if seq >= self.from {
                        let payload = mem::take(&mut self.payload);
                        return Ok(Some(Record {
                            seq: SequenceNumber(seq),
                            payload,
                        }));
                    }
                }
                Step::End => self.reader = None,
                Step::Damaged {
                    offset_bytes,
                    corruption,
                } => {
                    return Err(Error::CorruptRecord {
                        path: path.clone(),
                        offset_bytes,
                        corruption,
                    });
                }
            }
        }
    }
}

impl Iterator for Replay {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.step().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}
