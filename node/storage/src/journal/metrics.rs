//! Journal counters, updated by the writer with relaxed atomics and read as a snapshot.

use std::{
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Duration,
};

/// Upper bounds (inclusive, in microseconds) of the sync latency histogram buckets; a last,
/// implicit bucket counts everything slower. Chosen for SSD/NVMe `fdatasync` (tens of
/// microseconds) up to slow or overloaded disks (a quarter of a second and more).
pub const SYNC_LATENCY_BUCKETS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
];

/// Number of sync latency buckets, the overflow bucket included.
pub const SYNC_LATENCY_BUCKET_COUNT: usize = SYNC_LATENCY_BUCKETS_US.len() + 1;

/// A snapshot of the journal's counters, for export (e.g. as Prometheus metrics). Counters
/// start at zero when the journal is opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalMetrics {
    /// Records written and synced (acknowledged).
    pub records_appended: u64,
    /// Bytes written to segments, record headers included.
    pub bytes_appended: u64,
    /// `fdatasync` calls on segments (one per group commit, plus one per rollover).
    pub syncs: u64,
    /// Duration of the most recent sync.
    pub sync_latency_last: Duration,
    /// Longest sync so far.
    pub sync_latency_max: Duration,
    /// Sum of all sync durations (with `syncs`, the mean).
    pub sync_latency_sum: Duration,
    /// Sync count per latency bucket: index `i` counts syncs of at most
    /// [`SYNC_LATENCY_BUCKETS_US`]`[i]` microseconds (and more than the previous bound); the
    /// last counts slower ones. Not cumulative.
    pub sync_latency_buckets: [u64; SYNC_LATENCY_BUCKET_COUNT],
    /// Appends refused with [`Error::Busy`](crate::Error::Busy).
    pub busy_rejections: u64,
    /// Segments created by rollover since open.
    pub segments_created: u64,
    /// Records waiting in the queue when the snapshot was taken.
    pub queue_depth: usize,
}

impl JournalMetrics {
    /// Mean records per sync: how much group commit is batching.
    pub fn records_per_sync(&self) -> f64 {
        if self.syncs == 0 {
            0.0
        } else {
            self.records_appended as f64 / self.syncs as f64
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    records_appended: AtomicU64,
    bytes_appended: AtomicU64,
    syncs: AtomicU64,
    sync_latency_last_ns: AtomicU64,
    sync_latency_max_ns: AtomicU64,
    sync_latency_sum_ns: AtomicU64,
    sync_latency_buckets: [AtomicU64; SYNC_LATENCY_BUCKET_COUNT],
    busy_rejections: AtomicU64,
    segments_created: AtomicU64,
}

impl Counters {
    pub(crate) fn record_sync(&self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.syncs.fetch_add(1, Relaxed);
        self.sync_latency_last_ns.store(ns, Relaxed);
        self.sync_latency_max_ns.fetch_max(ns, Relaxed);
        self.sync_latency_sum_ns.fetch_add(ns, Relaxed);
        let us = ns / 1_000;
        let bucket = SYNC_LATENCY_BUCKETS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(SYNC_LATENCY_BUCKETS_US.len());
        if let Some(counter) = self.sync_latency_buckets.get(bucket) {
            counter.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn record_appended(&self, records: u64, bytes: u64) {
        self.records_appended.fetch_add(records, Relaxed);
        self.bytes_appended.fetch_add(bytes, Relaxed);
    }

    pub(crate) fn record_busy(&self) {
        self.busy_rejections.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_segment_created(&self) {
        self.segments_created.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self, queue_depth: usize) -> JournalMetrics {
        JournalMetrics {
            records_appended: self.records_appended.load(Relaxed),
            bytes_appended: self.bytes_appended.load(Relaxed),
            syncs: self.syncs.load(Relaxed),
            sync_latency_last: Duration::from_nanos(self.sync_latency_last_ns.load(Relaxed)),
            sync_latency_max: Duration::from_nanos(self.sync_latency_max_ns.load(Relaxed)),
            sync_latency_sum: Duration::from_nanos(self.sync_latency_sum_ns.load(Relaxed)),
            sync_latency_buckets: std::array::from_fn(|i| {
                self.sync_latency_buckets
                    .get(i)
                    .map_or(0, |c| c.load(Relaxed))
            }),
            busy_rejections: self.busy_rejections.load(Relaxed),
            segments_created: self.segments_created.load(Relaxed),
            queue_depth,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_latencies_land_in_their_buckets() {
        let counters = Counters::default();
        counters.record_sync(Duration::from_micros(10));
        counters.record_sync(Duration::from_micros(50));
        counters.record_sync(Duration::from_micros(51));
        counters.record_sync(Duration::from_secs(2));
        counters.record_appended(8, 800);
        let m = counters.snapshot(3);
        assert_eq!(m.syncs, 4);
        assert_eq!(m.sync_latency_buckets[0], 2);
        assert_eq!(m.sync_latency_buckets[1], 1);
        assert_eq!(m.sync_latency_buckets[SYNC_LATENCY_BUCKET_COUNT - 1], 1);
        assert_eq!(m.sync_latency_buckets.iter().sum::<u64>(), 4);
        assert_eq!(m.sync_latency_last, Duration::from_secs(2));
        assert_eq!(m.sync_latency_max, Duration::from_secs(2));
        assert_eq!(m.sync_latency_sum, Duration::from_micros(2_000_111));
        assert_eq!(m.records_per_sync(), 2.0);
        assert_eq!(m.queue_depth, 3);
    }
}
