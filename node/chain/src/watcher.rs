//! The chain watcher: deposits and forced-withdrawal requests, once final on the L2.
//!
//! Each [`step`](Watcher::step) finds the *finality head* (see [`finality`](crate::finality):
//! the L2's `finalized` block by default, or its `safe` block, or the block `confirmations`
//! deep), reads the `Deposited` and `ForcedWithdrawalRequested` events up to it, and submits
//! the entries the ledger has not consumed yet, in queue order. Nothing above the finality
//! head is ever credited, so a deposit reorged out before it is final never is, and one
//! re-included is credited once — when it becomes final.
//!
//! Exactly once: the ledger consumes each queue strictly in order (a queue index it has
//! already consumed is skipped here; one out of order is refused by the ledger), and the
//! journal makes the consumption durable. At every step, before crediting, the contract's
//! rolling hash at the count the ledger consumed (`depositHashAt` / `forcedHashAt`, called
//! at the finality head's hash) must equal the ledger's own: when they differ (the chain
//! lost or replaced entries the ledger already consumed, a reorg deeper than finality),
//! crediting stops with [`WatcherError::QueueMismatch`], an error log and the
//! `queue_mismatch` gauge, until they agree again. New entries read from logs must then chain
//! from the ledger's hash to the contract's rolling hash after them, at the same block, so
//! logs from a chain that was reorged while they were read are never credited. The scan
//! cursor (next block, and the hash of the block before it) lives in the sled store: after a
//! restart scanning resumes there; when the block before the cursor has another hash than
//! recorded (a reorg below the cursor), scanning rewinds and the queue-index check skips
//! what was credited.
//!
//! [`run`](Watcher::run) repeats steps with a poll interval, and backs off exponentially
//! (up to a minute) while the L2 RPC fails, logging each failure once per attempt.

use std::time::Duration;

use alloy::{
    eips::BlockId,
    primitives::{Address, B256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use stablelane::Amount;
use stablelane_contracts::{
    batch_data::{deposit_hash, forced_hash},
    Settlement,
};
use stablelane_ledger::{Deposit, ForcedWithdrawal};
use stablelane_sequencer::{ChainCursor, Sequencer, SubmitError};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::finality::{Finality, FinalityHead, FinalityMode, FinalityUser};

/// The deposit queue's name in errors and logs.
const DEPOSITS: &str = "deposits";
/// The forced-withdrawal queue's name in errors and logs.
const FORCED: &str = "forced withdrawals";

/// Settings of the watcher.
#[derive(Debug, Clone)]
pub struct WatcherConfig {
    /// The L2's JSON-RPC URL.
    pub l2_rpc_url: String,
    /// The settlement contract.
    pub settlement: Address,
    /// Which block counts as final: events are acted on up to it.
    pub finality: FinalityMode,
    /// Depth a block must have before its events are acted on (1 = the head itself) in the
    /// `Confirmations` mode, and when the L2 does not answer the configured block tag.
    pub confirmations: u64,
    /// Pause between steps when caught up.
    pub poll_interval: Duration,
    /// Most blocks per `eth_getLogs` request.
    pub max_block_range: u64,
    /// Where scanning starts when there is no cursor (the contract's deployment block).
    pub start_block: u64,
    /// A second L2 RPC (another provider or node) that must have the same block at the
    /// finality head before anything up to it is credited; `None`: no cross-check.
    pub cross_check_rpc_url: Option<String>,
}

/// Errors of a step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatcherError {
    /// The L2 RPC failed; retried with backoff.
    #[error("L2 RPC: {0}")]
    Rpc(String),
    /// Logs disagree with the contract's rolling hash at the finality head (a reorg while
    /// reading); retried at the next step.
    #[error("{queue} logs disagree with the contract at block {block}: {what}")]
    Inconsistent {
        /// The finality head.
        block: u64,
        /// Which queue.
        queue: &'static str,
        /// What differs.
        what: &'static str,
    },
    /// The second L2 RPC has another block at the finality head than the first (one of them
    /// follows another chain or lies). Nothing is credited while it lasts; the operator must
    /// find out which (docs/operator.md, "Crediting stopped: the second RPC disagrees").
    #[error(
        "the second L2 RPC has block {secondary} at the finality head {block}, the first {primary}"
    )]
    CrossCheckMismatch {
        /// The finality head.
        block: u64,
        /// Its hash on the first RPC.
        primary: B256,
        /// Its hash on the second RPC.
        secondary: B256,
    },
    /// The contract's rolling hash at the count the ledger consumed differs from the
    /// ledger's own: the chain no longer holds the entries the ledger credited (a reorg
    /// deeper than the finality head). Nothing is credited while it lasts; the operator
    /// must act (docs/operator.md, "Crediting stopped: rolling hash mismatch").
    #[error("{queue}: the contract's rolling hash at {consumed} consumed is {contract_hash} at block {block}, the ledger's is {ledger_hash}")]
    QueueMismatch {
        /// Which queue.
        queue: &'static str,
        /// Entries the ledger consumed.
        consumed: u64,
        /// The finality head the contract was read at.
        block: u64,
        /// The contract's `depositHashAt` / `forcedHashAt(consumed)`.
        contract_hash: B256,
        /// The ledger's rolling hash over what it consumed.
        ledger_hash: B256,
    },
    /// The sequencer refused an entry (e.g. a token missing from the node's configuration)
    /// or stopped. The queue cannot advance past it: the operator must act.
    #[error("the ledger refused queue entry {index} of {queue}: {reason}")]
    Refused {
        /// Which queue.
        queue: &'static str,
        /// Its index.
        index: u64,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
}

fn rpc(e: impl std::fmt::Display) -> WatcherError {
    WatcherError::Rpc(e.to_string())
}

/// What one step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    /// The finality head acted on (None: none yet, the chain is shorter than
    /// `confirmations` in that mode).
    pub final_block: Option<u64>,
    /// The mode that chose it (the configured one, or `Confirmations` as the fallback).
    pub finality: Option<FinalityMode>,
    /// Deposits credited.
    pub deposits: u64,
    /// Forced withdrawals served.
    pub forced: u64,
    /// Whether the cursor had to rewind (deep reorg).
    pub rewound: bool,
}

/// The chain watcher.
#[derive(Debug)]
pub struct Watcher {
    config: WatcherConfig,
    provider: DynProvider,
    /// The second RPC of [`WatcherConfig::cross_check_rpc_url`].
    cross_check: Option<DynProvider>,
    sequencer: Sequencer,
    finality: Finality,
}

impl Watcher {
    /// A watcher feeding `sequencer` from `config.settlement`.
    pub fn new(config: WatcherConfig, sequencer: Sequencer) -> Result<Self, WatcherError> {
        let url = config
            .l2_rpc_url
            .parse()
            .map_err(|e| WatcherError::Rpc(format!("bad L2 RPC URL {}: {e}", config.l2_rpc_url)))?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        let cross_check = match &config.cross_check_rpc_url {
            None => None,
            Some(second) => {
                let url = second.parse().map_err(|e| {
                    WatcherError::Rpc(format!("bad cross-check L2 RPC URL {second}: {e}"))
                })?;
                Some(ProviderBuilder::new().connect_http(url).erased())
            }
        };
        let finality = Finality::new(config.finality, config.confirmations, FinalityUser::Watcher);
        Ok(Self {
            config: WatcherConfig {
                confirmations: config.confirmations.max(1),
                max_block_range: config.max_block_range.max(1),
                ..config
            },
            provider,
            cross_check,
            sequencer,
            finality,
        })
    }

    /// Steps until `shutdown` turns true, with backoff while the L2 fails.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = self.config.poll_interval;
        loop {
            let pause = match self.step().await {
                Ok(report) => {
                    backoff = self.config.poll_interval;
                    if report.deposits + report.forced > 0 {
                        // More may be waiting: go again at once.
                        Duration::ZERO
                    } else {
                        self.config.poll_interval
                    }
                }
                Err(e) => {
                    self.sequencer
                        .watcher_metrics()
                        .step_failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    backoff =
                        (backoff * 2).clamp(self.config.poll_interval, Duration::from_secs(60));
                    // A mismatch was logged as an error, with its fields, where it was found.
                    if !matches!(
                        e,
                        WatcherError::QueueMismatch { .. }
                            | WatcherError::CrossCheckMismatch { .. }
                    ) {
                        warn!(target: "chain", error = %e, retry_in_ms = backoff.as_millis() as u64, "watcher step failed");
                    }
                    backoff
                }
            };
            tokio::select! {
                _ = shutdown.changed() => {}
                () = tokio::time::sleep(pause) => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
        info!(target: "chain", "watcher stopped");
    }

    /// Scans up to the finality head once and credits what is new.
    pub async fn step(&self) -> Result<StepReport, WatcherError> {
        let mut report = StepReport::default();
        let Some(head) = self.finality.head(&self.provider).await.map_err(rpc)? else {
            return Ok(report);
        };
        let metrics = self.sequencer.watcher_metrics();
        metrics.finality_mode.store(
            head.mode.metric_code(),
            std::sync::atomic::Ordering::Relaxed,
        );
        metrics
            .finality_block
            .store(head.number, std::sync::atomic::Ordering::Relaxed);
        report.final_block = Some(head.number);
        report.finality = Some(head.mode);
        if !self.cross_checked(&head).await? {
            return Ok(report);
        }
        let (safe, safe_hash) = (head.number, head.hash);
        let ahead = self.check_consumed(&head).await?;
        let store = self.sequencer.store();
        let mut next = match store
            .chain_cursor()
            .map_err(|e| WatcherError::Store(e.to_string()))?
        {
            None => self.config.start_block,
            Some(cursor) => {
                let still = self.block_hash(cursor.next_block.saturating_sub(1)).await?;
                if cursor.next_block > 0 && still != Some(cursor.last_hash) {
                    warn!(target: "chain", block = cursor.next_block - 1, "block below the cursor changed: rewinding the scan");
                    report.rewound = true;
                    cursor
                        .next_block
                        .saturating_sub(self.config.max_block_range)
                        .max(self.config.start_block)
                } else {
                    cursor.next_block
                }
            }
        };
        // When the ledger consumed more than the contract holds at the finality head, there
        // is nothing to credit until the head catches up.
        while !ahead && next <= safe {
            let to = safe.min(next + self.config.max_block_range - 1);
            let (deposits, forced) = self.read_logs(next, to).await?;
            report.deposits += self.credit_deposits(deposits, safe_hash, safe).await?;
            report.forced += self.serve_forced(forced, safe_hash, safe).await?;
            let hash = if to == safe {
                safe_hash
            } else {
                self.block_hash(to)
                    .await?
                    .ok_or_else(|| rpc(format!("block {to} not found")))?
            };
            store
                .set_chain_cursor(ChainCursor {
                    next_block: to + 1,
                    last_hash: hash,
                })
                .map_err(|e| WatcherError::Store(e.to_string()))?;
            next = to + 1;
        }
        if report.deposits + report.forced > 0 {
            info!(target: "chain", final_block = safe, finality = %head.mode, deposits = report.deposits, forced = report.forced, "credited from the chain");
        } else {
            debug!(target: "chain", final_block = safe, finality = %head.mode, "nothing new");
        }
        Ok(report)
    }

    /// With a second RPC configured: whether it has the finality head's block too (`false`:
    /// it is behind, nothing is credited this step); an error when it has another block
    /// there. Sets or clears the `cross_check_mismatch` gauge.
    async fn cross_checked(&self, head: &FinalityHead) -> Result<bool, WatcherError> {
        let Some(second) = &self.cross_check else {
            return Ok(true);
        };
        let block = second
            .get_block_by_number(head.number.into())
            .await
            .map_err(|e| rpc(format!("cross-check RPC: {e}")))?;
        let gauge = &self.sequencer.watcher_metrics().cross_check_mismatch;
        match block.map(|b| b.header.hash) {
            None => {
                debug!(target: "chain::watcher", block = head.number, "the second L2 RPC does not have the finality head yet: waiting");
                Ok(false)
            }
            Some(hash) if hash == head.hash => {
                gauge.store(0, std::sync::atomic::Ordering::Relaxed);
                Ok(true)
            }
            Some(secondary) => {
                gauge.store(1, std::sync::atomic::Ordering::Relaxed);
                error!(target: "chain::watcher", block = head.number, primary = %head.hash, %secondary, "the second L2 RPC has another block at the finality head; crediting stopped");
                Err(WatcherError::CrossCheckMismatch {
                    block: head.number,
                    primary: head.hash,
                    secondary,
                })
            }
        }
    }

    /// Checks, at the finality head, that the contract's rolling hash at the count the ledger
    /// consumed equals the ledger's own, for both queues; sets or clears the
    /// `queue_mismatch` gauge. Returns whether the ledger consumed more entries than the
    /// contract holds at the head (then nothing can be compared or credited yet: a head
    /// that lags the one entries were credited at, e.g. after changing the finality mode).
    async fn check_consumed(&self, head: &FinalityHead) -> Result<bool, WatcherError> {
        let (deposits, deposits_hash, forced, forced_hash) = self.sequencer.read(|s| {
            (
                s.ledger().deposits_consumed(),
                s.deposits_hash(),
                s.ledger().forced_consumed(),
                s.forced_hash(),
            )
        });
        if head.number < self.config.start_block {
            // No contract yet at the head: nothing to compare, nothing to scan.
            return Ok(false);
        }
        let at = BlockId::hash(head.hash);
        let mut ahead = false;
        for (queue, consumed, ledger_hash) in [
            (DEPOSITS, deposits, deposits_hash),
            (FORCED, forced, forced_hash),
        ] {
            if consumed == 0 {
                continue;
            }
            let contract_hash = match self.contract_hash_at(queue, consumed, at).await? {
                Ok(hash) => hash,
                Err(count) => {
                    // At every step until the head catches up: not a warning each time.
                    debug!(target: "chain::watcher", queue, consumed, contract_count = count, block = head.number, "the ledger consumed more entries than the contract holds at the finality head: waiting for the head");
                    ahead = true;
                    continue;
                }
            };
            if contract_hash != ledger_hash {
                self.sequencer
                    .watcher_metrics()
                    .queue_mismatch
                    .store(1, std::sync::atomic::Ordering::Relaxed);
                error!(target: "chain::watcher", queue, consumed, block = head.number, block_hash = %head.hash, contract_hash = %contract_hash, ledger_hash = %ledger_hash, "rolling hash mismatch: the chain no longer holds what the ledger credited; crediting stopped");
                return Err(WatcherError::QueueMismatch {
                    queue,
                    consumed,
                    block: head.number,
                    contract_hash,
                    ledger_hash,
                });
            }
        }
        self.sequencer
            .watcher_metrics()
            .queue_mismatch
            .store(0, std::sync::atomic::Ordering::Relaxed);
        Ok(ahead)
    }

    /// The contract's rolling hash over the first `consumed` entries of `queue` at block
    /// `at`, or `Err(count)` when it holds only `count` entries there.
    async fn contract_hash_at(
        &self,
        queue: &'static str,
        consumed: u64,
        at: BlockId,
    ) -> Result<Result<B256, u64>, WatcherError> {
        let contract = self.contract();
        let deposits = queue == DEPOSITS;
        let count = if deposits {
            contract.depositCount().block(at).call().await
        } else {
            contract.forcedCount().block(at).call().await
        }
        .map_err(rpc)?;
        if consumed > count {
            return Ok(Err(count));
        }
        let hash = if deposits {
            contract.depositHashAt(consumed).block(at).call().await
        } else {
            contract.forcedHashAt(consumed).block(at).call().await
        }
        .map_err(rpc)?;
        Ok(Ok(hash))
    }

    async fn block_hash(&self, number: u64) -> Result<Option<B256>, WatcherError> {
        Ok(self
            .provider
            .get_block_by_number(number.into())
            .await
            .map_err(rpc)?
            .map(|b| b.header.hash))
    }

    async fn read_logs(
        &self,
        from: u64,
        to: u64,
    ) -> Result<
        (
            Vec<Settlement::Deposited>,
            Vec<Settlement::ForcedWithdrawalRequested>,
        ),
        WatcherError,
    > {
        let filter = Filter::new()
            .address(self.config.settlement)
            .from_block(from)
            .to_block(to)
            .event_signature(vec![
                Settlement::Deposited::SIGNATURE_HASH,
                Settlement::ForcedWithdrawalRequested::SIGNATURE_HASH,
            ]);
        let logs = self.provider.get_logs(&filter).await.map_err(rpc)?;
        let mut deposits = Vec::new();
        let mut forced = Vec::new();
        for log in logs {
            if let Ok(d) = log.log_decode::<Settlement::Deposited>() {
                deposits.push(d.inner.data);
            } else if let Ok(f) = log.log_decode::<Settlement::ForcedWithdrawalRequested>() {
                forced.push(f.inner.data);
            }
        }
        deposits.sort_by_key(|d| d.index);
        forced.sort_by_key(|f| f.index);
        Ok((deposits, forced))
    }

    fn contract(&self) -> Settlement::SettlementInstance<&DynProvider> {
        Settlement::new(self.config.settlement, &self.provider)
    }

    async fn credit_deposits(
        &self,
        events: Vec<Settlement::Deposited>,
        safe_hash: B256,
        safe: u64,
    ) -> Result<u64, WatcherError> {
        let (consumed, before) = self
            .sequencer
            .read(|s| (s.ledger().deposits_consumed(), s.deposits_hash()));
        let fresh: Vec<_> = events.into_iter().filter(|d| d.index >= consumed).collect();
        let Some(last) = fresh.last() else {
            return Ok(0);
        };
        // The logs must chain from the ledger's rolling hash (the contract's at `consumed`,
        // checked at this step's start) to the contract's after the last, at the finality
        // head.
        let at = BlockId::hash(safe_hash);
        let after = self
            .contract()
            .depositHashAt(last.index + 1)
            .block(at)
            .call()
            .await
            .map_err(rpc)?;
        continues_queue(
            &fresh,
            consumed,
            before,
            after,
            |d| d.index,
            |h, d| deposit_hash(h, d.recipient, d.token, d.amount),
        )
        .map_err(|what| WatcherError::Inconsistent {
            block: safe,
            queue: "deposits",
            what,
        })?;
        let mut credited = 0;
        for d in fresh {
            let deposit = Deposit {
                queue_index: d.index,
                recipient: d.recipient,
                token: d.token,
                amount: Amount(d.amount),
            };
            self.sequencer
                .submit_deposit(deposit)
                .await
                .map_err(|e| refused("deposits", d.index, e))?;
            credited += 1;
        }
        Ok(credited)
    }

    async fn serve_forced(
        &self,
        events: Vec<Settlement::ForcedWithdrawalRequested>,
        safe_hash: B256,
        safe: u64,
    ) -> Result<u64, WatcherError> {
        let (consumed, before) = self
            .sequencer
            .read(|s| (s.ledger().forced_consumed(), s.forced_hash()));
        let fresh: Vec<_> = events.into_iter().filter(|f| f.index >= consumed).collect();
        let Some(last) = fresh.last() else {
            return Ok(0);
        };
        let at = BlockId::hash(safe_hash);
        let after = self
            .contract()
            .forcedHashAt(last.index + 1)
            .block(at)
            .call()
            .await
            .map_err(rpc)?;
        continues_queue(
            &fresh,
            consumed,
            before,
            after,
            |f| f.index,
            |h, f| forced_hash(h, f.owner, f.token, f.recipient),
        )
        .map_err(|what| WatcherError::Inconsistent {
            block: safe,
            queue: "forced withdrawals",
            what,
        })?;
        let mut served = 0;
        for f in fresh {
            self.sequencer
                .submit_forced(ForcedWithdrawal {
                    queue_index: f.index,
                    owner: f.owner,
                    token: f.token,
                    recipient: f.recipient,
                })
                .await
                .map_err(|e| refused("forced withdrawals", f.index, e))?;
            served += 1;
        }
        Ok(served)
    }
}

/// Checks that `entries` continue a queue whose first `consumed` entries are taken, without
/// a gap, and that chaining them with `link` leads from the rolling hash `before` them (the
/// ledger's) to the contract's rolling hash `after` them.
fn continues_queue<T>(
    entries: &[T],
    consumed: u64,
    before: B256,
    after: B256,
    index: impl Fn(&T) -> u64,
    link: impl Fn(B256, &T) -> B256,
) -> Result<(), &'static str> {
    let mut rolling = before;
    for (offset, entry) in entries.iter().enumerate() {
        if index(entry) != consumed + offset as u64 {
            return Err("indices have a gap");
        }
        rolling = link(rolling, entry);
    }
    if rolling == after {
        Ok(())
    } else {
        Err("rolling hash differs")
    }
}

fn refused(queue: &'static str, index: u64, e: SubmitError) -> WatcherError {
    WatcherError::Refused {
        queue,
        index,
        reason: e.to_string(),
    }
}
