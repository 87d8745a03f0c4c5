//! The bounded append queue and the single writer thread that drains it (group commit).

use std::{
    collections::VecDeque,
    fs::File,
    io::Write,
    mem,
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Condvar, Mutex, MutexGuard, PoisonError,
    },
    time::Instant,
};

use tokio::sync::oneshot;
use tracing::{debug, error, info};

use super::{
    format::{encode_record, encoded_len, SEGMENT_HEADER_LEN_BYTES},
    metrics::Counters,
    segment::{create_segment, SegmentMeta},
    JournalConfig,
};
use crate::{Error, Result};

/// Outcome sent to an appender: `Ok` once its record is synced.
pub(crate) type Reply = Result<()>;

/// An append waiting for the writer. Its sequence number was assigned at enqueue time, in
/// queue order.
pub(crate) struct Pending {
    pub seq: u64,
    pub payload: Vec<u8>,
    pub reply: oneshot::Sender<Reply>,
}

/// Writer lifecycle, guarded by the queue mutex.
pub(crate) enum WriterState {
    Running,
    /// Asked to stop: drain the queue, then exit.
    Closing,
    /// Stopped after a write or sync failure; every append fails with this error.
    Failed(Arc<Error>),
}

pub(crate) struct Queue {
    pub pending: VecDeque<Pending>,
    pub queued_bytes: usize,
    /// Sequence number the next enqueued append gets.
    pub next_seq: u64,
    pub state: WriterState,
    /// Test hook: the writer leaves the queue alone while set.
    #[cfg(test)]
    pub paused: bool,
}

/// State shared by the `Journal` handle, the writer thread and replays.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub config: JournalConfig,
    pub queue: Mutex<Queue>,
    /// Signalled when the queue gains work or the state changes.
    pub wake: Condvar,
    /// Last synced sequence number, 0 while the journal is empty.
    pub durable_seq: AtomicU64,
    /// Every segment, in order; the writer pushes a segment before writing to it.
    pub segments: Mutex<Vec<SegmentMeta>>,
    pub counters: Counters,
    /// Holds the directory's `flock` for the journal's lifetime.
    pub _lock: File,
    /// Test hook: every sync fails while set.
    #[cfg(test)]
    pub fail_syncs: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub(crate) fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn lock_segments(&self) -> MutexGuard<'_, Vec<SegmentMeta>> {
        self.segments.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The segment the writer appends to.
pub(crate) struct ActiveSegment {
    pub file: File,
    pub meta: SegmentMeta,
    pub len_bytes: u64,
}

/// The writer thread's body: take everything queued, write it, sync once, acknowledge; repeat
/// until closed (after draining) or failed.
pub(crate) fn run(shared: Arc<Shared>, mut active: ActiveSegment) {
    let _guard = ExitGuard(Arc::clone(&shared));
    let mut batch: Vec<Pending> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        {
            let mut queue = shared.lock_queue();
            loop {
                #[cfg(test)]
                let paused = queue.paused && matches!(queue.state, WriterState::Running);
                #[cfg(not(test))]
                let paused = false;
                if !queue.pending.is_empty() && !paused {
                    break;
                }
                if queue.pending.is_empty() && !matches!(queue.state, WriterState::Running) {
                    return;
                }
                queue = shared
                    .wake
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            batch.extend(queue.pending.drain(..));
            queue.queued_bytes = 0;
        }

        match write_batch(&shared, &mut active, &batch, &mut buf) {
            Ok(()) => {
                if let Some(last) = batch.last() {
                    shared.durable_seq.store(last.seq, Ordering::Release);
                }
                for pending in batch.drain(..) {
                    // The appender may have dropped its ticket; the record is durable anyway.
                    let _ = pending.reply.send(Ok(()));
                }
            }
            Err(e) => {
                error!(target: "storage::journal", error = %e, records = batch.len(),
                    "journal write or sync failed; the writer stops, reopen the journal");
                let failure = Arc::new(e);
                let mut queue = shared.lock_queue();
                queue.state = WriterState::Failed(Arc::clone(&failure));
                batch.extend(queue.pending.drain(..));
                queue.queued_bytes = 0;
                drop(queue);
                for pending in batch.drain(..) {
                    let _ = pending.reply.send(Err(Error::WriterFailed {
                        source: Arc::clone(&failure),
                    }));
                }
                return;
            }
        }
        // Do not keep a huge buffer around after a burst of large records.
        if buf.capacity() > 4 * 1024 * 1024 {
            buf = Vec::new();
        }
    }
}

/// Makes sure no appender waits forever if the writer thread ends unexpectedly (a panic):
/// marks the journal failed and fails whatever is still queued.
struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let mut queue = self.0.lock_queue();
        if std::thread::panicking() {
            let source = Arc::new(Error::io(
                &self.0.dir,
                std::io::Error::other("the journal writer thread panicked"),
            ));
            queue.state = WriterState::Failed(source);
        }
        let pending = mem::take(&mut queue.pending);
        queue.queued_bytes = 0;
        let state_error = match &queue.state {
            WriterState::Failed(source) => Some(Arc::clone(source)),
            WriterState::Running | WriterState::Closing => None,
        };
        drop(queue);
        for p in pending {
            let _ = p.reply.send(Err(match &state_error {
                Some(source) => Error::WriterFailed {
                    source: Arc::clone(source),
                },
                None => Error::Closed,
            }));
        }
    }
}

/// Writes one group of records, rolling over to new segments as needed, and syncs. On return
/// with `Ok`, every record of `batch` is durable.
fn write_batch(
    shared: &Shared,
    active: &mut ActiveSegment,
    batch: &[Pending],
    buf: &mut Vec<u8>,
) -> Result<()> {
    let segment_size_max = shared.config.segment_size_max_bytes;
    buf.clear();
    for pending in batch {
        let record_len = encoded_len(pending.payload.len());
        let segment_len = active.len_bytes.saturating_add(buf.len() as u64);
        let segment_has_records = segment_len > SEGMENT_HEADER_LEN_BYTES;
        if segment_has_records && segment_len.saturating_add(record_len) > segment_size_max {
            flush(shared, active, buf)?;
            roll_over(shared, active, pending.seq)?;
        }
        encode_record(buf, pending.seq, &pending.payload);
    }
    flush(shared, active, buf)?;
    shared.counters.record_appended(batch.len() as u64, 0);
    if let (Some(first), Some(last)) = (batch.first(), batch.last()) {
        debug!(target: "storage::journal", first_seq = first.seq, last_seq = last.seq,
            records = batch.len(), "group commit synced");
    }
    Ok(())
}

/// Writes `buf` to the active segment and syncs it. Nothing to write means nothing to sync:
/// earlier groups were synced before they were acknowledged.
fn flush(shared: &Shared, active: &mut ActiveSegment, buf: &mut Vec<u8>) -> Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let path = &active.meta.path;
    active.file.write_all(buf).map_err(|e| Error::io(path, e))?;
    active.len_bytes = active.len_bytes.saturating_add(buf.len() as u64);
    shared.counters.record_appended(0, buf.len() as u64);
    buf.clear();
    #[cfg(test)]
    if shared.fail_syncs.load(Ordering::Relaxed) {
        return Err(Error::io(
            path,
            std::io::Error::other("injected sync failure"),
        ));
    }
    let started = Instant::now();
    active.file.sync_data().map_err(|e| Error::io(path, e))?;
    shared.counters.record_sync(started.elapsed());
    Ok(())
}

/// Starts a new segment whose first record will be `first_seq`. The current segment has been
/// synced, so a crash leaves complete segments behind.
fn roll_over(shared: &Shared, active: &mut ActiveSegment, first_seq: u64) -> Result<()> {
    let (file, meta) = create_segment(
        &shared.dir,
        first_seq,
        shared.config.record_size_max_bytes,
        false,
    )?;
    info!(target: "storage::journal", first_seq, previous_len_bytes = active.len_bytes,
        segment = %meta.path.display(), "journal segment rolled over");
    shared.lock_segments().push(meta.clone());
    shared.counters.record_segment_created();
    *active = ActiveSegment {
        file,
        meta,
        len_bytes: SEGMENT_HEADER_LEN_BYTES,
    };
    Ok(())
}
