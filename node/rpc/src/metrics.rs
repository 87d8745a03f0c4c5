//! Prometheus text exposition of the node's counters, served at `GET /metrics` on the admin
//! port (behind the bearer token like every admin route).
//!
//! Counters of the RPC layer (accepted and refused calls of the sending methods, by reason)
//! live here; the sequencer and the journal keep their own and are read as snapshots.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
        Mutex,
    },
};

use stablelane::ErrorCode;
use stablelane_sequencer::SequencerMetrics;
use stablelane_storage::journal::SYNC_LATENCY_BUCKETS_US;

/// The kinds of signed transaction the wallet API takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxKind {
    /// `lane_sendTransfer`.
    Transfer,
    /// `lane_sendWithdrawal`.
    Withdrawal,
}

impl TxKind {
    const ALL: [TxKind; 2] = [TxKind::Transfer, TxKind::Withdrawal];

    /// The metrics label.
    pub const fn name(self) -> &'static str {
        match self {
            TxKind::Transfer => "transfer",
            TxKind::Withdrawal => "withdrawal",
        }
    }
}

/// Counters of the RPC layer.
#[derive(Debug, Default)]
pub struct RpcMetrics {
    /// Indexed by `TxKind as usize`: a relaxed add on the accepting path, no lock.
    accepted: [AtomicU64; 2],
    rejected: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    subscriptions: AtomicI64,
    notifications: AtomicU64,
    notifications_dropped: AtomicU64,
}

impl RpcMetrics {
    /// Counts an accepted transaction of `kind`.
    pub fn accepted(&self, kind: TxKind) {
        self.accepted[kind as usize].fetch_add(1, Relaxed);
    }

    /// Counts a refused transaction of `kind` by its error code.
    pub fn rejected(&self, kind: TxKind, code: ErrorCode) {
        if let Ok(mut map) = self.rejected.lock() {
            *map.entry((kind.name(), code.name())).or_default() += 1;
        }
    }

    /// A subscription opened (`+1`) or closed (`-1`).
    pub fn subscriptions(&self, delta: i64) {
        self.subscriptions.fetch_add(delta, Relaxed);
    }

    /// A notification sent.
    pub fn notified(&self) {
        self.notifications.fetch_add(1, Relaxed);
    }

    /// Notifications a slow subscriber missed.
    pub fn dropped(&self, n: u64) {
        self.notifications_dropped.fetch_add(n, Relaxed);
    }

    /// The exposition, with the sequencer's and journal's counters.
    pub fn render(&self, seq: &SequencerMetrics) -> String {
        let mut out = String::with_capacity(4096);
        head(
            &mut out,
            "stablelane_transactions_accepted_total",
            "counter",
            "Signed transactions accepted and acknowledged, by kind.",
        );
        for kind in TxKind::ALL {
            let n = self.accepted[kind as usize].load(Relaxed);
            let _ = writeln!(
                out,
                "stablelane_transactions_accepted_total{{kind=\"{}\"}} {n}",
                kind.name()
            );
        }
        head(
            &mut out,
            "stablelane_transactions_rejected_total",
            "counter",
            "Signed transactions refused, by kind and reason (the error code's name).",
        );
        let rejected = self.rejected.lock().map(|m| m.clone()).unwrap_or_default();
        for ((kind, reason), n) in rejected {
            let _ = writeln!(
                out,
                "stablelane_transactions_rejected_total{{kind=\"{kind}\",reason=\"{reason}\"}} {n}"
            );
        }
        let scalars: [(&str, &str, &str, String); 37] = [
            (
                "stablelane_intake_queue_depth",
                "gauge",
                "Submissions waiting for the sequencer.",
                seq.queue_depth.to_string(),
            ),
            (
                "stablelane_intake_queue_capacity",
                "gauge",
                "Capacity of the intake queue.",
                seq.queue_capacity.to_string(),
            ),
            (
                "stablelane_intake_busy_total",
                "counter",
                "Submissions refused because the intake queue was full.",
                seq.busy.to_string(),
            ),
            (
                "stablelane_sequencer_groups_total",
                "counter",
                "Groups applied and journaled (one fsync each).",
                seq.groups.to_string(),
            ),
            (
                "stablelane_journal_last_sequence",
                "gauge",
                "Sequence number of the last journaled record.",
                seq.last_seq.to_string(),
            ),
            (
                "stablelane_transactions_indexed",
                "gauge",
                "Signed transactions in the store.",
                seq.transactions.to_string(),
            ),
            (
                "stablelane_ledger_slots",
                "gauge",
                "Accounts (slots) in the ledger.",
                seq.slots.to_string(),
            ),
            (
                "stablelane_journal_records_total",
                "counter",
                "Records appended and synced since start.",
                seq.journal.records_appended.to_string(),
            ),
            (
                "stablelane_journal_bytes_total",
                "counter",
                "Bytes appended since start.",
                seq.journal.bytes_appended.to_string(),
            ),
            (
                "stablelane_batches_sealed",
                "gauge",
                "Number of the last batch sealed.",
                seq.batches_sealed.to_string(),
            ),
            (
                "stablelane_sequencer_seals_total",
                "counter",
                "Batches sealed by this process (replay excluded).",
                seq.seals.to_string(),
            ),
            (
                "stablelane_sequencer_seal_seconds_total",
                "counter",
                "Time the writer spent sealing (closing the batch, copying what the tree worker needs): transfers wait meanwhile.",
                seq.seal_seconds_total.to_string(),
            ),
            (
                "stablelane_sequencer_last_seal_seconds",
                "gauge",
                "How long the last seal held the writer.",
                seq.last_seal_seconds.to_string(),
            ),
            (
                "stablelane_sequencer_seal_build_seconds_total",
                "counter",
                "Time the tree worker spent finishing seals (state tree, notes, batch data), beside the writer.",
                seq.seal_build_seconds_total.to_string(),
            ),
            (
                "stablelane_sequencer_last_seal_build_seconds",
                "gauge",
                "How long the tree worker took for the last seal.",
                seq.last_seal_build_seconds.to_string(),
            ),
            (
                "stablelane_sequencer_seal_leaf_hashes_total",
                "counter",
                "Changed leaves the tree worker hashed (Poseidon, 5 inputs); a sender's leaf hashed for its receipt is reused, not counted here.",
                seq.seal_hashes.leaves.to_string(),
            ),
            (
                "stablelane_sequencer_seal_inner_hashes_total",
                "counter",
                "Inner state-tree nodes the tree worker rehashed (Poseidon, 2 inputs).",
                seq.seal_hashes.inner.to_string(),
            ),
            (
                "stablelane_sequencer_snapshots_written_total",
                "counter",
                "Restart snapshots written since start.",
                seq.snapshots_written.to_string(),
            ),
            (
                "stablelane_sequencer_snapshot_failures_total",
                "counter",
                "Restart snapshots not written (I/O error, or skipped while the previous one was being written).",
                seq.snapshot_failures.to_string(),
            ),
            (
                "stablelane_sequencer_last_snapshot_sequence",
                "gauge",
                "Journal record of the newest restart snapshot (written or loaded at start; 0: none).",
                seq.last_snapshot_seq.to_string(),
            ),
            (
                "stablelane_sequencer_last_snapshot_seconds",
                "gauge",
                "How long writing the last restart snapshot took (encode, write, fsync).",
                seq.last_snapshot_seconds.to_string(),
            ),
            (
                "stablelane_open_batch_records",
                "gauge",
                "Records in the batch being filled.",
                seq.open_batch_records.to_string(),
            ),
            (
                "stablelane_open_batch_changed_slots",
                "gauge",
                "Leaves changed in the batch being filled.",
                seq.open_batch_changed_slots.to_string(),
            ),
            (
                "stablelane_batches_committed",
                "gauge",
                "Number of the last batch the settlement contract has committed, as last seen.",
                seq.batches_committed.to_string(),
            ),
            (
                "stablelane_batches_finalized",
                "gauge",
                "Number of the last batch seen finalized (withdrawals claimable).",
                seq.batches_finalized.to_string(),
            ),
            (
                "stablelane_settler_commits_sent_total",
                "counter",
                "Commit transactions sent, replacements included.",
                seq.commits_sent.to_string(),
            ),
            (
                "stablelane_settler_replacements_total",
                "counter",
                "Stuck commits replaced with higher fees.",
                seq.commit_replacements.to_string(),
            ),
            (
                "stablelane_settler_refusals_total",
                "counter",
                "Commits the contract refused (simulated or mined).",
                seq.commit_refusals.to_string(),
            ),
            (
                "stablelane_settler_failures_total",
                "counter",
                "Settler steps that failed (L2 errors, refusals, divergence).",
                seq.settler_failures.to_string(),
            ),
            (
                "stablelane_watcher_finality_mode",
                "gauge",
                "Finality mode of the chain watcher's last step: 1 finalized tag, 2 safe tag, 3 confirmations (configured, or the fallback when the L2 does not answer the tag); 0 none yet.",
                seq.watcher_finality_mode.to_string(),
            ),
            (
                "stablelane_watcher_finality_block",
                "gauge",
                "The finality head of the chain watcher's last step: the highest L2 block acted on.",
                seq.watcher_finality_block.to_string(),
            ),
            (
                "stablelane_watcher_queue_mismatch",
                "gauge",
                "1 while crediting is stopped: the contract's rolling hash at the ledger's consumed count differs from the ledger's (a reorg past finality); else 0.",
                seq.watcher_queue_mismatch.to_string(),
            ),
            (
                "stablelane_watcher_cross_check_mismatch",
                "gauge",
                "1 while crediting is stopped: the second L2 RPC ([chain] cross_check_rpc_url) has another block at the finality head; else 0.",
                seq.watcher_cross_check_mismatch.to_string(),
            ),
            (
                "stablelane_watcher_failures_total",
                "counter",
                "Chain watcher steps that failed (L2 errors, rolling-hash mismatches, refusals).",
                seq.watcher_failures.to_string(),
            ),
            (
                "stablelane_rpc_subscriptions",
                "gauge",
                "Open subscriptions.",
                self.subscriptions.load(Relaxed).to_string(),
            ),
            (
                "stablelane_rpc_notifications_total",
                "counter",
                "Subscription notifications sent.",
                self.notifications.load(Relaxed).to_string(),
            ),
            (
                "stablelane_rpc_notifications_dropped_total",
                "counter",
                "Notifications slow subscribers missed.",
                self.notifications_dropped.load(Relaxed).to_string(),
            ),
        ];
        for (name, kind, help, value) in scalars {
            head(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }

        let name = "stablelane_journal_fsync_seconds";
        head(
            &mut out,
            name,
            "histogram",
            "Latency of the journal's fdatasync (one per group commit).",
        );
        let mut cumulative = 0u64;
        for (bound, count) in SYNC_LATENCY_BUCKETS_US
            .iter()
            .zip(seq.journal.sync_latency_buckets.iter())
        {
            cumulative += count;
            let le = *bound as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", seq.journal.syncs);
        let _ = writeln!(
            out,
            "{name}_sum {}",
            seq.journal.sync_latency_sum.as_secs_f64()
        );
        let _ = writeln!(out, "{name}_count {}", seq.journal.syncs);
        out
    }
}

/// The prover pool's series (only on nodes with `[prover]` keys).
pub(crate) fn render_prover(out: &mut String, prover: &crate::prover::Prover) {
    let c = prover.counters();
    let series: [(&str, &str, &str, String); 6] = [
        (
            "stablelane_prover_proofs_total",
            "counter",
            "Balance attestations proven.",
            c.proofs.load(Relaxed).to_string(),
        ),
        (
            "stablelane_prover_busy_total",
            "counter",
            "lane_proveBalance requests refused because the prover queue was full.",
            c.busy.load(Relaxed).to_string(),
        ),
        (
            "stablelane_prover_timeouts_total",
            "counter",
            "lane_proveBalance callers that gave up after prover.timeout_s.",
            c.timeouts.load(Relaxed).to_string(),
        ),
        (
            "stablelane_prover_failures_total",
            "counter",
            "Proofs that failed (a bug: witnesses are checked first).",
            c.failures.load(Relaxed).to_string(),
        ),
        (
            "stablelane_prover_proving_seconds_total",
            "counter",
            "Time spent proving; divided by proofs_total, the mean proof time.",
            format!("{:.6}", c.proving_micros.load(Relaxed) as f64 / 1e6),
        ),
        (
            "stablelane_prover_admitted",
            "gauge",
            "Requests being proven or waiting now.",
            prover.admitted().to_string(),
        ),
    ];
    for (name, kind, help, value) in series {
        head(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Something that renders the exposition on demand.
pub(crate) type Render = std::sync::Arc<dyn Fn() -> String + Send + Sync>;

/// Tower layer answering `GET /metrics` with the exposition; everything else goes on to
/// the JSON-RPC server.
#[derive(Clone)]
pub(crate) struct MetricsLayer {
    render: Render,
}

impl MetricsLayer {
    pub(crate) fn new(render: Render) -> Self {
        Self { render }
    }
}

impl std::fmt::Debug for MetricsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsLayer")
    }
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            render: self.render.clone(),
        }
    }
}

/// The service of [`MetricsLayer`].
#[derive(Clone)]
pub(crate) struct MetricsService<S> {
    inner: S,
    render: Render,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type HttpResponse = http::Response<jsonrpsee::server::HttpBody>;

impl<S, B> tower::Service<http::Request<B>> for MetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = HttpResponse>,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.method() == http::Method::GET && request.uri().path() == "/metrics" {
            let body = (self.render)();
            let mut response = HttpResponse::new(jsonrpsee::server::HttpBody::from(body));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return Box::pin(async { Ok(response) });
        }
        let future = self.inner.call(request);
        Box::pin(async move { future.await.map_err(Into::into) })
    }
}
