//! The durable journal: an append-only log of opaque records, each acknowledged only once it
//! is on stable storage.
//!
//! # Using it
//!
//! [`Journal::open`] recovers (or creates) the journal in a directory and starts its writer
//! thread. Appends get consecutive [`SequenceNumber`]s in the order they are enqueued:
//!
//! - [`Journal::append`] blocks until the record is synced and returns its sequence number;
//! - [`Journal::submit`] enqueues without blocking and returns an [`AppendTicket`] that knows
//!   its sequence number at once and completes when the record is synced: `.await` it from
//!   async code or [`AppendTicket::wait`] for it from a thread.
//!
//! Both fail at once with [`Error::Busy`] when the queue is full (bounded by record count
//! and bytes): nothing is enqueued and no sequence number is used. [`Journal::replay_from`]
//! streams the durable records from a sequence number, to rebuild state after a restart.
//!
//! ```
//! use stablelane_storage::{Journal, JournalConfig, SequenceNumber};
//!
//! # fn main() -> stablelane_storage::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let (journal, report) = Journal::open(dir.path(), JournalConfig::default())?;
//! assert!(report.torn_tail.is_none());
//! let seq = journal.append(b"transfer #1".to_vec())?; // durable when this returns
//! assert_eq!(seq, SequenceNumber(1));
//! let ticket = journal.submit(b"transfer #2".to_vec())?; // `.await` it in async code
//! assert_eq!(ticket.wait()?, SequenceNumber(2));
//! for record in journal.replay_from(SequenceNumber(1))? {
//!     let record = record?;
//!     println!("{}: {} bytes", record.seq, record.payload.len());
//! }
//! journal.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! # Group commit
//!
//! One writer thread owns the files. It takes everything queued, writes it with one `write`
//! per segment touched, calls `fdatasync` once, then completes every ticket of the group; while
//! it syncs, new appends queue up for the next group. If a write or sync fails the writer stops
//! for good ([`Error::WriterFailed`] for every pending and later append): after a failed
//! `fsync` the kernel may have dropped the dirty pages, so retrying could acknowledge data that
//! is not on disk. Reopening the journal recovers whatever did reach the disk.
//!
//! # On-disk format (version 1)
//!
//! A journal is a directory holding segment files `journal-<first seq, 20 digits>.log` and a
//! `LOCK` file (`flock`ed by the open journal, so that two writers cannot share a directory).
//! All integers are little-endian. A segment is a header followed by records:
//!
//! ```text
//! segment header (32 bytes)
//!   0..8    magic                  "SLJOURNL"
//!   8..12   format version (u32)   1
//!   12..16  record size max (u32)  largest payload in this segment, checked on read
//!   16..24  first seq (u64)        sequence number of the first record; equals the file name
//!   24..28  reserved (u32)         0
//!   28..32  header CRC (u32)       CRC-32 (IEEE) of bytes 0..28
//! record (16 + len bytes)
//!   0..4    CRC (u32)              CRC-32 (IEEE) of bytes 4..16 followed by the payload
//!   4..8    len (u32)              payload length in bytes
//!   8..16   seq (u64)              sequence number: previous record's + 1, first record 1
//!   16..    payload (len bytes)
//! ```
//!
//! A reader checks the magic, then the version (a different version is refused with
//! [`Error::UnsupportedFormatVersion`], not mistaken for corruption), then the header CRC. A
//! segment rolls over when the next record would take it past
//! [`JournalConfig::segment_size_max_bytes`]; records never span segments. The previous segment
//! is synced before the next is created, and a new segment is written to a temporary file,
//! synced, renamed into place and the directory synced, so a crash never leaves a partial
//! segment header.
//!
//! # Recovery
//!
//! [`Journal::open`] reads every segment in order and checks headers, checksums, lengths and
//! that sequence numbers continue without a gap from 1, across segments. A damaged or
//! incomplete record at the end of the **last** segment, with no valid record anywhere after
//! it, is a torn tail: a write that was never acknowledged. It is cut off, the truncation is
//! synced, logged (`tracing` target `storage::journal`) and reported in the
//! [`RecoveryReport`]. Any other damage (in a segment that is not the last, a damaged record
//! followed by a valid one, a sequence gap, a bad header) is an error: the journal refuses to
//! open rather than skip money records. The rule errs towards refusing: should a file system
//! persist the pages of an unsynced group out of order (a hole followed by valid, equally
//! unacknowledged records), open refuses as well and an operator decides. Records found
//! complete are synced again at open, so what recovery reports is durable before the node
//! replays it. The first segment must start at sequence number 1 (removing an old prefix of
//! the journal is not supported yet).
//!
//! # Limits
//!
//! Payloads up to [`JournalConfig::record_size_max_bytes`] (never above
//! [`RECORD_SIZE_LIMIT_BYTES`]); queue bounded by [`JournalConfig::queue_depth_max`] and
//! [`JournalConfig::queue_bytes_max`].

use std::{
    fs::{self, File, OpenOptions},
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{atomic::Ordering, Arc, Condvar, Mutex},
    task::{Context, Poll},
    thread::{self, JoinHandle},
};

use tokio::sync::oneshot;

mod format;
mod metrics;
mod recovery;
mod replay;
mod segment;
mod writer;

pub use format::{
    Corruption, FORMAT_VERSION, RECORD_HEADER_LEN_BYTES, RECORD_SIZE_LIMIT_BYTES,
    SEGMENT_HEADER_LEN_BYTES, SEGMENT_MAGIC,
};
pub use metrics::{JournalMetrics, SYNC_LATENCY_BUCKETS_US, SYNC_LATENCY_BUCKET_COUNT};
pub use recovery::{RecoveryReport, TornTail};
pub use replay::{Record, Replay};
pub use segment::segment_file_name;

use self::writer::{ActiveSegment, Pending, Queue, Reply, Shared, WriterState};
use crate::{Error, Result, SequenceNumber};

/// Name of the lock file in a journal directory.
pub const LOCK_FILE_NAME: &str = "LOCK";

/// Limits of a journal. Start from [`JournalConfig::default`] and change fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalConfig {
    /// A segment rolls over when the next record would take it past this size. Records are
    /// never split, so a segment holding one record larger than this exceeds it. Default
    /// 64 MiB.
    pub segment_size_max_bytes: u64,
    /// Largest payload an append accepts. Written into each new segment's header and checked
    /// on every read; at most [`RECORD_SIZE_LIMIT_BYTES`]. Default 1 MiB.
    pub record_size_max_bytes: u32,
    /// Most appends waiting for the writer; more fail with [`Error::Busy`]. The group being
    /// written is not counted, so up to twice this many can be in memory. Default 4096.
    pub queue_depth_max: usize,
    /// Most payload bytes waiting for the writer; more fail with [`Error::Busy`]. At least
    /// `record_size_max_bytes`; like `queue_depth_max`, the group being written is not
    /// counted. Default 64 MiB.
    pub queue_bytes_max: usize,
    /// Recovery reads and checks every record from this sequence number on; a segment
    /// holding only earlier records is checked by its header and its place in the sequence
    /// alone. Set it to the first record a restart will replay (after a snapshot): the
    /// records before it are checked when something reads them
    /// ([`replay_from`](Journal::replay_from) verifies every record it yields, and
    /// `stablelane journal verify` reads them all). Default 1: every record.
    pub verify_from: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            segment_size_max_bytes: 64 * 1024 * 1024,
            record_size_max_bytes: 1024 * 1024,
            queue_depth_max: 4096,
            queue_bytes_max: 64 * 1024 * 1024,
            verify_from: 1,
        }
    }
}

impl JournalConfig {
    /// Checks that the limits are consistent.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason| Err(Error::InvalidConfig { reason });
        if self.record_size_max_bytes == 0 || self.record_size_max_bytes > RECORD_SIZE_LIMIT_BYTES {
            return invalid("record_size_max_bytes must be between 1 and RECORD_SIZE_LIMIT_BYTES");
        }
        if self.segment_size_max_bytes
            <= SEGMENT_HEADER_LEN_BYTES.saturating_add(RECORD_HEADER_LEN_BYTES)
        {
            return invalid("segment_size_max_bytes must exceed a segment and a record header");
        }
        if self.queue_depth_max == 0 {
            return invalid("queue_depth_max must be at least 1");
        }
        if (self.queue_bytes_max as u64) < u64::from(self.record_size_max_bytes) {
            return invalid("queue_bytes_max must be at least record_size_max_bytes");
        }
        Ok(())
    }
}

/// The journal: one per directory, shared by reference (`&self` methods; wrap it in an `Arc`
/// to share it between threads or tasks). Dropping it closes it like [`Journal::close`],
/// ignoring errors.
#[derive(Debug)]
pub struct Journal {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Opens the journal in `dir` (created if missing), recovers it and starts the writer.
    ///
    /// Recovery verifies every segment (from [`JournalConfig::verify_from`] on); a torn tail
    /// is truncated and reported in the
    /// [`RecoveryReport`], any other damage is an error (see the [module docs](self)). Fails
    /// with [`Error::Locked`] if another journal has the directory open.
    pub fn open(dir: impl AsRef<Path>, config: JournalConfig) -> Result<(Self, RecoveryReport)> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        create_dir(&dir)?;
        let lock = lock_dir(&dir)?;
        let recovered = recovery::recover(&dir, &config)?;
        let active_meta = recovered
            .segments
            .last()
            .cloned()
            .ok_or(Error::CorruptHeader {
                path: dir.clone(),
                reason: "no segment",
            })?;
        let next_seq = recovered.next_seq;
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            config,
            queue: Mutex::new(Queue {
                pending: Default::default(),
                queued_bytes: 0,
                next_seq,
                state: WriterState::Running,
                #[cfg(test)]
                paused: false,
            }),
            wake: Condvar::new(),
            durable_seq: next_seq.saturating_sub(1).into(),
            segments: Mutex::new(recovered.segments),
            counters: Default::default(),
            _lock: lock,
            #[cfg(test)]
            fail_syncs: Default::default(),
        });
        let active = ActiveSegment {
            file: recovered.active,
            meta: active_meta,
            len_bytes: recovered.active_len_bytes,
        };
        let writer_shared = Arc::clone(&shared);
        let writer = thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer::run(writer_shared, active))
            .map_err(|e| Error::io(&dir, e))?;
        Ok((
            Self {
                shared,
                writer: Some(writer),
            },
            recovered.report,
        ))
    }

    /// Appends `payload` and blocks until it is durable; returns its sequence number.
    ///
    /// Fails at once with [`Error::Busy`] if the queue is full, [`Error::RecordTooLarge`] if
    /// the payload is over the limit.
    ///
    /// # Panics
    ///
    /// If called from within an async runtime (it blocks the thread): there, use
    /// `journal.submit(payload)?.await`.
    pub fn append(&self, payload: impl Into<Vec<u8>>) -> Result<SequenceNumber> {
        self.submit(payload)?.wait()
    }

    /// Enqueues `payload` without blocking. The returned ticket knows the record's sequence
    /// number now and completes (`.await` or [`AppendTicket::wait`]) once the record is
    /// durable. The record is acknowledged only then: until the ticket completes with `Ok`, a
    /// crash may lose it.
    ///
    /// Fails at once with [`Error::Busy`] when the queue is full (nothing enqueued, no sequence
    /// number used), [`Error::RecordTooLarge`], [`Error::Closed`] or [`Error::WriterFailed`].
    pub fn submit(&self, payload: impl Into<Vec<u8>>) -> Result<AppendTicket> {
        let payload = payload.into();
        let max_bytes = self.shared.config.record_size_max_bytes;
        if u32::try_from(payload.len()).map_or(true, |len| len > max_bytes) {
            return Err(Error::RecordTooLarge {
                len_bytes: payload.len(),
                max_bytes,
            });
        }
        let (reply, rx) = oneshot::channel();
        let seq = {
            let mut queue = self.shared.lock_queue();
            match &queue.state {
                WriterState::Running => {}
                WriterState::Closing => return Err(Error::Closed),
                WriterState::Failed(source) => {
                    return Err(Error::WriterFailed {
                        source: Arc::clone(source),
                    })
                }
            }
            let queued_bytes = queue.queued_bytes.saturating_add(payload.len());
            if queue.pending.len() >= self.shared.config.queue_depth_max
                || queued_bytes > self.shared.config.queue_bytes_max
            {
                self.shared.counters.record_busy();
                return Err(Error::Busy {
                    queued_records: queue.pending.len(),
                    queued_bytes: queue.queued_bytes,
                });
            }
            let seq = queue.next_seq;
            queue.next_seq = seq.checked_add(1).ok_or(Error::SequenceExhausted)?;
            queue.queued_bytes = queued_bytes;
            queue.pending.push_back(Pending {
                seq,
                payload,
                reply,
            });
            seq
        };
        self.shared.wake.notify_one();
        Ok(AppendTicket {
            seq: SequenceNumber(seq),
            rx,
        })
    }

    /// Streams the durable records with a sequence number of at least `from`, in order, up to
    /// the last record durable now. `from` may be one past the last record (nothing to replay);
    /// beyond that it is [`Error::ReplayOutOfRange`]: the caller's state is ahead of the
    /// journal.
    pub fn replay_from(&self, from: SequenceNumber) -> Result<Replay> {
        // Durable first, then segments: every segment holding a durable record is listed
        // (the writer lists a segment before writing to it).
        let last = self.shared.durable_seq.load(Ordering::Acquire);
        let segments = self.shared.lock_segments().clone();
        let first = segments
            .first()
            .map_or(SequenceNumber::FIRST.get(), |s| s.first_seq);
        let out_of_range = from.get() > last.saturating_add(1)
            || (from.get() < first && first > SequenceNumber::FIRST.get());
        if out_of_range {
            return Err(Error::ReplayOutOfRange {
                from: from.get(),
                first,
                last,
            });
        }
        Ok(Replay::new(segments, from.get().max(first), last))
    }

    /// Sequence number of the last durable record, `None` if the journal is empty.
    pub fn last_seq(&self) -> Option<SequenceNumber> {
        let last = self.shared.durable_seq.load(Ordering::Acquire);
        (last > 0).then_some(SequenceNumber(last))
    }

    /// A snapshot of the counters (records, syncs, sync latency, busy rejections, ...).
    pub fn metrics(&self) -> JournalMetrics {
        let queue_depth = self.shared.lock_queue().pending.len();
        self.shared.counters.snapshot(queue_depth)
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The configuration in force.
    pub fn config(&self) -> &JournalConfig {
        &self.shared.config
    }

    /// Stops accepting appends, lets the writer write and sync everything already queued, and
    /// waits for it. Returns the writer's failure if it had failed.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        {
            let mut queue = self.shared.lock_queue();
            if matches!(queue.state, WriterState::Running) {
                queue.state = WriterState::Closing;
            }
        }
        self.shared.wake.notify_all();
        let joined = writer.join();
        let queue = self.shared.lock_queue();
        match (&queue.state, joined) {
            (WriterState::Failed(source), _) => Err(Error::WriterFailed {
                source: Arc::clone(source),
            }),
            (_, Err(_)) => Err(Error::Closed),
            (_, Ok(())) => Ok(()),
        }
    }

    /// Test hook: holds the writer off the queue (appends pile up) until unpaused.
    #[cfg(test)]
    pub(crate) fn pause_writer(&self, paused: bool) {
        self.shared.lock_queue().paused = paused;
        self.shared.wake.notify_all();
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// A pending append: knows its sequence number, completes when the record is durable.
///
/// Await it (it is a `Future`, usable from any async runtime) or call [`AppendTicket::wait`]
/// from a thread. Dropping it does not cancel the append.
#[derive(Debug)]
#[must_use = "an append is acknowledged only when its ticket completes"]
pub struct AppendTicket {
    seq: SequenceNumber,
    rx: oneshot::Receiver<Reply>,
}

impl AppendTicket {
    /// The sequence number the record gets if it becomes durable.
    pub fn seq(&self) -> SequenceNumber {
        self.seq
    }

    /// Blocks until the record is durable; returns its sequence number.
    ///
    /// # Panics
    ///
    /// If called from within an async runtime (tokio forbids blocking there): `.await` the
    /// ticket instead.
    pub fn wait(self) -> Result<SequenceNumber> {
        let seq = self.seq;
        completion(seq, self.rx.blocking_recv())
    }
}

impl Future for AppendTicket {
    type Output = Result<SequenceNumber>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let seq = self.seq;
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|received| completion(seq, received))
    }
}

fn completion(
    seq: SequenceNumber,
    received: Result<Reply, oneshot::error::RecvError>,
) -> Result<SequenceNumber> {
    match received {
        Ok(Ok(())) => Ok(seq),
        Ok(Err(e)) => Err(e),
        // The writer always answers (even when it fails); a dropped sender means it is gone.
        Err(_) => Err(Error::Closed),
    }
}

/// Creates the journal directory if needed, durably (the parent's entry is synced).
fn create_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        segment::sync_dir(parent)?;
    }
    segment::sync_dir(dir)
}

/// Takes the directory's exclusive `flock`, held as long as the returned file is open (and
/// released by the kernel if the process dies).
fn lock_dir(dir: &Path) -> Result<File> {
    let path: PathBuf = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(Error::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(e) => Err(Error::io(&path, e.into())),
    }
}

#[cfg(test)]
mod tests;
