//! The crate's error type.

use std::{io, path::PathBuf, sync::Arc};

use crate::journal::Corruption;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
///
/// Errors that mean "the journal on disk cannot be trusted" ([`Error::CorruptRecord`],
/// [`Error::SequenceGap`], [`Error::CorruptHeader`], ...) are raised by
/// [`Journal::open`](crate::Journal::open) instead of skipping data: an operator has to look.
/// [`Error::Busy`] is the only one a caller should simply retry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a journal file or directory failed.
    #[error("journal I/O error on {path}: {source}")]
    Io {
        /// File or directory the operation was on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Another `Journal` (in this or another process) holds the directory's lock.
    #[error("journal directory {dir} is locked by another journal (is another node running?)")]
    Locked {
        /// The journal directory.
        dir: PathBuf,
    },

    /// The configuration is inconsistent; the message says which limit.
    #[error("invalid journal configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: &'static str,
    },

    /// A file named like a segment does not start with the segment magic: not a journal file.
    #[error("{path} is not a Stablelane journal segment (bad magic)")]
    NotASegment {
        /// The file.
        path: PathBuf,
    },

    /// A segment was written in a format version this build does not read.
    #[error(
        "{path} has journal format version {version}; this build reads version {supported} only"
    )]
    UnsupportedFormatVersion {
        /// The file.
        path: PathBuf,
        /// Version found in the segment header.
        version: u32,
        /// The version this build reads and writes.
        supported: u32,
    },

    /// A segment header is damaged, or disagrees with the segment's file name.
    #[error("corrupt journal segment header in {path}: {reason}")]
    CorruptHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },

    /// A file in the journal directory looks like a segment but its name does not parse.
    #[error("unexpected file {path} in the journal directory")]
    UnexpectedFile {
        /// The file.
        path: PathBuf,
    },

    /// A damaged record that is not a torn tail: it is followed by valid records or lies in a
    /// segment other than the last. The journal refuses to open.
    #[error("corrupt journal record in {path} at byte {offset_bytes}: {corruption}")]
    CorruptRecord {
        /// The segment file.
        path: PathBuf,
        /// Offset of the record's first byte in the file.
        offset_bytes: u64,
        /// What is wrong with it.
        corruption: Corruption,
    },

    /// A record (or a segment's first sequence number) is intact but not the next in
    /// sequence: a record is missing or duplicated.
    #[error(
        "journal sequence gap in {path} at byte {offset_bytes}: expected {expected}, found {found}"
    )]
    SequenceGap {
        /// The segment file.
        path: PathBuf,
        /// Offset of the record (0 for the segment header).
        offset_bytes: u64,
        /// The sequence number that should be there.
        expected: u64,
        /// The sequence number that is there.
        found: u64,
    },

    /// An append's payload is larger than [`JournalConfig::record_size_max_bytes`](crate::JournalConfig::record_size_max_bytes).
    #[error("journal record of {len_bytes} bytes exceeds the maximum of {max_bytes} bytes")]
    RecordTooLarge {
        /// Payload size.
        len_bytes: usize,
        /// Configured maximum.
        max_bytes: u32,
    },

    /// The append queue is full (by record count or bytes). Nothing was enqueued and no sequence
    /// number was consumed; shed load or retry later.
    #[error(
        "journal busy: append queue full ({queued_records} records, {queued_bytes} bytes queued)"
    )]
    Busy {
        /// Records waiting for the writer.
        queued_records: usize,
        /// Payload bytes waiting for the writer.
        queued_bytes: usize,
    },

    /// The journal is closing or closed.
    #[error("journal is closed")]
    Closed,

    /// The writer failed to write or sync (or stopped unexpectedly). Its appends in flight and
    /// all later appends fail; the on-disk state is only known after reopening the journal,
    /// which recovers it. A failed sync is never retried (its dirty pages may be gone).
    #[error("journal writer failed; reopen the journal to recover: {source}")]
    WriterFailed {
        /// The failure that stopped the writer.
        #[source]
        source: Arc<Error>,
    },

    /// The journal has reached `u64::MAX` records.
    #[error("journal sequence numbers exhausted")]
    SequenceExhausted,

    /// A replay was asked to start after the end of the journal (or before its first retained
    /// record): the caller's state and the journal disagree.
    #[error("replay from {from} is out of range: the journal holds records {first} to {last}")]
    ReplayOutOfRange {
        /// The requested first sequence number.
        from: u64,
        /// First record held (1 unless a prefix was removed).
        first: u64,
        /// Last durable record (0 if empty).
        last: u64,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
