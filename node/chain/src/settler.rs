//! The settler: seals batches by age, commits sealed batches to the settlement contract in
//! order with the operator key, and follows each to committed and finalized.
//!
//! One commit is in flight at a time, for the batch after the contract's
//! `lastBatchNumber`: that number, read from the chain at every step, is the only cursor,
//! so after any restart the settler continues exactly where the contract is — a batch is
//! never committed twice (the contract also refuses a wrong number) and never skipped.
//!
//! Sending: the commit is simulated first (`eth_call`; a refusal is decoded and logged, and
//! nothing is sent), then signed locally as an EIP-1559 transaction with the operator
//! account's own nonce (its confirmed transaction count), and its hash is recorded in the
//! store *before* it is broadcast, so a crash right after sending still knows it. When the
//! commit is not included within `resend_after`, it is replaced (same nonce) with fees
//! raised by `fee_bump_percent`, up to `max_fee_per_gas`. A commit mined but reverted is
//! logged and retried after a new simulation.
//!
//! Statuses: a batch is *committed* once the contract's `lastBatchNumber` reaches it (the
//! commit's transaction hash and block are recorded), *finalized* once the contract already
//! held it at the finality head (the same as the watcher's, see [`finality`](crate::finality):
//! the L2's `finalized` block by default; read as `lastBatchNumber` at that block's hash)
//! and the contract's finalization delay has passed (its withdrawals can be claimed). A commit reorged out before finalization goes back to *sealed* and is
//! committed again.
//!
//! [`run`](Settler::run) repeats steps with a poll interval and backs off exponentially (up
//! to a minute) while the L2 fails; the sequencer keeps accepting transfers meanwhile.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope},
    eips::{eip2718::Encodable2718, BlockId, BlockNumberOrTag},
    network::TxSignerSync,
    primitives::{Address, TxKind, B256, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{Filter, TransactionRequest},
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolEvent},
};
use stablelane::rpc::BatchStatus;
use stablelane_contracts::Settlement;
use stablelane_sequencer::{BatchChainState, InFlight, SealedBatch, Sequencer};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::finality::{Finality, FinalityMode, FinalityUser};

/// Settings of the settler.
#[derive(Debug, Clone)]
pub struct SettlerConfig {
    /// The L2's JSON-RPC URL.
    pub l2_rpc_url: String,
    /// The settlement contract.
    pub settlement: Address,
    /// Chain id of the L2 (signed into every transaction).
    pub chain_id: u64,
    /// Which block counts as final: a commit at or below it is final (with the
    /// finalization delay).
    pub finality: FinalityMode,
    /// Depth a commit must reach to be final in the `Confirmations` mode, and when the L2
    /// does not answer the configured block tag.
    pub confirmations: u64,
    /// Pause between steps when there is nothing to do.
    pub poll_interval: Duration,
    /// Seal the open batch once its first record is this old.
    pub max_batch_age: Duration,
    /// Replace a commit not included after this long.
    pub resend_after: Duration,
    /// How much a replacement raises both fees, percent (at least 10, as nodes require).
    pub fee_bump_percent: u64,
    /// Highest fee cap the settler will pay, wei per gas.
    pub max_fee_per_gas: u128,
    /// Where to look for `BatchCommitted` events when reconciling (deployment block).
    pub start_block: u64,
}

/// Errors of a step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettlerError {
    /// The L2 RPC failed; retried with backoff.
    #[error("L2 RPC: {0}")]
    Rpc(String),
    /// The contract refuses the next commit (simulation or mined revert); retried, but
    /// the operator must look: see docs/operator.md, "A batch is stuck".
    #[error("the contract refuses batch {batch}: {reason}")]
    Refused {
        /// The batch.
        batch: u64,
        /// The decoded revert.
        reason: String,
    },
    /// The chain and the node disagree (another operator key committing, or a journal
    /// that lost batches). Nothing is sent until an operator resolves it.
    #[error("the chain and the node disagree: {0}")]
    Diverged(String),
    /// The store or sequencer failed.
    #[error("node: {0}")]
    Node(String),
}

fn rpc(e: impl std::fmt::Display) -> SettlerError {
    SettlerError::Rpc(e.to_string())
}

fn node(e: impl std::fmt::Display) -> SettlerError {
    SettlerError::Node(e.to_string())
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What one step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettleReport {
    /// A batch sealed for age.
    pub sealed: Option<u64>,
    /// The contract's last committed batch.
    pub last_committed: u64,
    /// A commit transaction sent (batch, hash), first send or replacement.
    pub sent: Option<(u64, B256)>,
    /// Batches newly seen committed.
    pub committed: Vec<u64>,
    /// Batches newly seen finalized.
    pub finalized: Vec<u64>,
}

/// The settler.
#[derive(Debug)]
pub struct Settler {
    config: SettlerConfig,
    provider: DynProvider,
    signer: PrivateKeySigner,
    sequencer: Sequencer,
    /// Whether the contract's `operator` was seen to be this key.
    operator_checked: std::sync::atomic::AtomicBool,
    finality: Finality,
}

impl Settler {
    /// A settler committing `sequencer`'s batches with `signer` (the contract's operator).
    pub fn new(
        config: SettlerConfig,
        signer: PrivateKeySigner,
        sequencer: Sequencer,
    ) -> Result<Self, SettlerError> {
        let url = config
            .l2_rpc_url
            .parse()
            .map_err(|e| SettlerError::Rpc(format!("bad L2 RPC URL {}: {e}", config.l2_rpc_url)))?;
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(url)
            .erased();
        let finality = Finality::new(config.finality, config.confirmations, FinalityUser::Settler);
        Ok(Self {
            config: SettlerConfig {
                confirmations: config.confirmations.max(1),
                fee_bump_percent: config.fee_bump_percent.max(10),
                ..config
            },
            provider,
            signer,
            sequencer,
            operator_checked: std::sync::atomic::AtomicBool::new(false),
            finality,
        })
    }

    /// Steps until `shutdown` turns true, with backoff while the L2 fails.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let metrics_failures = |s: &Self| {
            s.sequencer
                .settler_metrics()
                .step_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        };
        let mut backoff = self.config.poll_interval;
        loop {
            let pause = match self.step().await {
                Ok(report) => {
                    backoff = self.config.poll_interval;
                    if report.sent.is_some() || !report.committed.is_empty() {
                        // Follow up quickly: the next batch may be waiting.
                        self.config.poll_interval.min(Duration::from_millis(200))
                    } else {
                        self.config.poll_interval
                    }
                }
                Err(e) => {
                    metrics_failures(&self);
                    backoff =
                        (backoff * 2).clamp(self.config.poll_interval, Duration::from_secs(60));
                    match &e {
                        SettlerError::Diverged(_) | SettlerError::Refused { .. } => {
                            error!(target: "settler", error = %e, retry_in_ms = backoff.as_millis() as u64, "settler step failed")
                        }
                        _ => {
                            warn!(target: "settler", error = %e, retry_in_ms = backoff.as_millis() as u64, "settler step failed")
                        }
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
        info!(target: "settler", "settler stopped");
    }

    fn contract(&self) -> Settlement::SettlementInstance<DynProvider> {
        Settlement::new(self.config.settlement, self.provider.clone())
    }

    /// Seals for age, reconciles with the contract, follows commits, sends the next one.
    pub async fn step(&self) -> Result<SettleReport, SettlerError> {
        let mut report = SettleReport::default();
        let open = self.sequencer.open_batch();
        let old = open
            .since
            .is_some_and(|t| t.elapsed() >= self.config.max_batch_age);
        if open.records > 0 && (old || open.forced) {
            report.sealed = self.sequencer.seal_batch().await.map_err(node)?;
        }

        let contract = self.contract();
        if !self
            .operator_checked
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let operator = contract.operator().call().await.map_err(rpc)?;
            if operator != self.signer.address() {
                return Err(SettlerError::Diverged(format!(
                    "this node's key {} is not the contract's operator {operator}: commits would be refused",
                    self.signer.address()
                )));
            }
            // Receipts signed by another key than the contract's receipt signer would not
            // bind the operator: no user could win a challenge with them.
            let receipt_signer = contract.receiptSigner().call().await.map_err(rpc)?;
            if receipt_signer != self.sequencer.receipt_signer() {
                return Err(SettlerError::Diverged(format!(
                    "this node's receipt key {} is not the contract's receipt signer {receipt_signer}: its receipts would not bind the operator",
                    self.sequencer.receipt_signer()
                )));
            }
            self.operator_checked
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let on_chain = contract.lastBatchNumber().call().await.map_err(rpc)?;
        // The contract's last batch as of the finality head: batches up to it are final on
        // the L2, whatever reorgs moved their commits between blocks.
        let final_committed = match self.finality.head(&self.provider).await.map_err(rpc)? {
            // Before the deployment block there is no contract to ask.
            Some(head) if head.number >= self.config.start_block => contract
                .lastBatchNumber()
                .block(BlockId::hash(head.hash))
                .call()
                .await
                .map_err(rpc)?,
            Some(_) | None => 0,
        };
        report.last_committed = on_chain;
        let metrics = self.sequencer.settler_metrics();
        metrics
            .last_committed
            .store(on_chain, std::sync::atomic::Ordering::Relaxed);
        let store = self.sequencer.store();
        let sealed = store.last_batch_number().map_err(node)?;
        if on_chain > sealed {
            return Err(SettlerError::Diverged(format!(
                "the contract has batch {on_chain}, this node sealed only {sealed}"
            )));
        }

        self.follow_committed(on_chain, final_committed, &mut report)
            .await?;

        let next = on_chain + 1;
        if next <= sealed {
            let batch = store
                .batch(next)
                .map_err(node)?
                .ok_or_else(|| node(format!("sealed batch {next} missing from the store")))?;
            let state = store.batch_chain_state(next).map_err(node)?;
            if let Some(sent) = self.commit(&batch, state).await? {
                report.sent = Some((next, sent));
            }
        }
        Ok(report)
    }

    /// Brings the recorded status of batches up to `on_chain` up to date: committed ones
    /// get their transaction and block, ones the contract already held at the finality head
    /// (up to `final_committed`) and old enough become finalized, and ones the contract no
    /// longer has (reorged out) go back to sealed.
    async fn follow_committed(
        &self,
        on_chain: u64,
        final_committed: u64,
        report: &mut SettleReport,
    ) -> Result<(), SettlerError> {
        let store = self.sequencer.store();
        let metrics = self.sequencer.settler_metrics();
        let finalized_before = metrics
            .last_finalized
            .load(std::sync::atomic::Ordering::Relaxed);
        // Batches above the contract's count that we believed committed were reorged out.
        let sealed = store.last_batch_number().map_err(node)?;
        for n in (on_chain + 1)..=sealed {
            let mut state = store.batch_chain_state(n).map_err(node)?;
            if state.status != BatchStatus::Sealed {
                warn!(target: "settler", batch = n, "commit no longer on the chain (reorg): committing again");
                state.status = BatchStatus::Sealed;
                state.l2_tx_hash = None;
                state.l2_block = None;
                state.claimable_at = None;
                self.sequencer
                    .set_batch_chain_state(n, &state)
                    .map_err(node)?;
                metrics
                    .last_finalized
                    .fetch_min(n - 1, std::sync::atomic::Ordering::Relaxed);
            } else {
                break;
            }
        }
        let mut first = finalized_before + 1;
        if finalized_before > on_chain {
            first = 1;
        }
        let latest_time = match self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(rpc)?
        {
            Some(block) => block.header.timestamp,
            None => return Err(rpc("no latest block")),
        };
        let mut finalized = finalized_before.min(on_chain);
        // Batches finalize in order; later ones are still recorded as committed.
        let mut in_order = true;
        for n in first..=on_chain {
            let mut state = store.batch_chain_state(n).map_err(node)?;
            if state.status == BatchStatus::Finalized {
                finalized = finalized.max(n);
                continue;
            }
            if state.status == BatchStatus::Sealed || state.l2_block.is_none() {
                self.record_commit(n, &mut state).await?;
                self.sequencer
                    .set_batch_chain_state(n, &state)
                    .map_err(node)?;
                report.committed.push(n);
            }
            let deep = n <= final_committed;
            let due = state.claimable_at.is_some_and(|t| latest_time >= t);
            if in_order && deep && due {
                state.status = BatchStatus::Finalized;
                self.sequencer
                    .set_batch_chain_state(n, &state)
                    .map_err(node)?;
                info!(target: "settler", batch = n, "batch finalized: withdrawals claimable");
                report.finalized.push(n);
                finalized = finalized.max(n);
            } else {
                in_order = false;
            }
        }
        metrics
            .last_finalized
            .store(finalized, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Fills in a committed batch's transaction, block and claimable time from the chain,
    /// checking the contract recorded this node's root.
    async fn record_commit(&self, n: u64, state: &mut BatchChainState) -> Result<(), SettlerError> {
        let store = self.sequencer.store();
        let batch = store
            .batch(n)
            .map_err(node)?
            .ok_or_else(|| node(format!("sealed batch {n} missing from the store")))?;
        let contract = self.contract();
        let on_chain = contract.batch(n).call().await.map_err(rpc)?;
        if on_chain.root != batch.new_root {
            return Err(SettlerError::Diverged(format!(
                "batch {n}: the contract holds root {}, this node sealed {}",
                on_chain.root, batch.new_root
            )));
        }
        // The transaction: one of ours in flight, else the BatchCommitted event.
        let mut found = None;
        if let Some(in_flight) = &state.in_flight {
            for hash in in_flight.tx_hashes.iter().rev() {
                if let Some(r) = self
                    .provider
                    .get_transaction_receipt(*hash)
                    .await
                    .map_err(rpc)?
                {
                    if r.status() {
                        found = Some((*hash, r.block_number.unwrap_or_default()));
                        break;
                    }
                }
            }
        }
        if found.is_none() {
            let filter = Filter::new()
                .address(self.config.settlement)
                .event_signature(Settlement::BatchCommitted::SIGNATURE_HASH)
                .topic1(U256::from(n))
                .from_block(self.config.start_block)
                .to_block(BlockNumberOrTag::Latest);
            let logs = self.provider.get_logs(&filter).await.map_err(rpc)?;
            found = logs
                .last()
                .and_then(|l| Some((l.transaction_hash?, l.block_number.unwrap_or_default())));
        }
        let (hash, block) = found.ok_or_else(|| {
            rpc(format!(
                "batch {n} is committed but its event was not found"
            ))
        })?;
        state.status = BatchStatus::Committed;
        state.l2_tx_hash = Some(hash);
        state.l2_block = Some(block);
        // The contract's own finality time: later than `committedAt + finalizationDelay` when
        // the batch (or an earlier one) went over an outflow limit.
        state.claimable_at = Some(on_chain.finalizedAt);
        state.in_flight = None;
        info!(target: "settler", batch = n, tx = %hash, block, "batch committed");
        Ok(())
    }

    /// Sends (or replaces) the commit of `batch`, the next one the contract expects.
    /// Returns the hash sent, if any.
    async fn commit(
        &self,
        batch: &SealedBatch,
        mut state: BatchChainState,
    ) -> Result<Option<B256>, SettlerError> {
        let n = batch.number;
        let operator = self.signer.address();
        let confirmed_nonce = self
            .provider
            .get_transaction_count(operator)
            .await
            .map_err(rpc)?;
        if let Some(in_flight) = state.in_flight.clone() {
            // Mined (success or revert)?
            for hash in &in_flight.tx_hashes {
                if let Some(r) = self
                    .provider
                    .get_transaction_receipt(*hash)
                    .await
                    .map_err(rpc)?
                {
                    if r.status() {
                        // Committed: the next step's reconciliation records it.
                        return Ok(None);
                    }
                    self.sequencer
                        .settler_metrics()
                        .commit_refusals
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    warn!(target: "settler", batch = n, tx = %hash, "commit mined but reverted; simulating again");
                    state.in_flight = None;
                    self.sequencer
                        .set_batch_chain_state(n, &state)
                        .map_err(node)?;
                    return Ok(None);
                }
            }
            let mut known = false;
            for hash in &in_flight.tx_hashes {
                if self
                    .provider
                    .get_transaction_by_hash(*hash)
                    .await
                    .map_err(rpc)?
                    .is_some()
                {
                    known = true;
                    break;
                }
            }
            if confirmed_nonce > in_flight.nonce {
                // The nonce was used by a transaction that is not ours (or not known).
                warn!(target: "settler", batch = n, nonce = in_flight.nonce, "commit nonce consumed by another transaction; sending again");
                state.in_flight = None;
            } else if !known {
                // The L2 has none of our transactions (a broadcast that failed, a dropped
                // mempool): send again under the same nonce at no lower fees.
                warn!(target: "settler", batch = n, nonce = in_flight.nonce, "commit unknown to the L2; broadcasting again");
                let (fee, tip) = self.fees().await?;
                let (fee, tip) = self.capped(
                    fee.max(in_flight.max_fee_per_gas),
                    tip.max(in_flight.max_priority_fee_per_gas),
                );
                let hash = self
                    .send(
                        batch,
                        &mut state,
                        in_flight.nonce,
                        in_flight.gas_limit,
                        fee,
                        tip,
                    )
                    .await?;
                return Ok(Some(hash));
            } else {
                let waited = now_s().saturating_sub(in_flight.sent_at_s);
                if waited < self.config.resend_after.as_secs() {
                    return Ok(None);
                }
                let bump = |fee: u128| fee + fee * u128::from(self.config.fee_bump_percent) / 100;
                let estimate = self.fees().await?;
                let (max_fee, max_priority) = self.capped(
                    bump(in_flight.max_fee_per_gas).max(estimate.0),
                    bump(in_flight.max_priority_fee_per_gas)
                        .max(estimate.1)
                        .max(1),
                );
                if max_fee <= in_flight.max_fee_per_gas {
                    warn!(target: "settler", batch = n, max_fee, "commit stuck at the configured fee cap (batch.max_fee_per_gas_gwei)");
                    return Ok(None);
                }
                info!(target: "settler", batch = n, waited_s = waited, max_fee, max_priority, "replacing a stuck commit with higher fees");
                self.sequencer
                    .settler_metrics()
                    .replacements
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let hash = self
                    .send(
                        batch,
                        &mut state,
                        in_flight.nonce,
                        in_flight.gas_limit,
                        max_fee,
                        max_priority,
                    )
                    .await?;
                return Ok(Some(hash));
            }
        }

        // Simulate first: a refusal is logged and nothing is sent.
        let call = commit_call(batch);
        let request = TransactionRequest::default()
            .from(operator)
            .to(self.config.settlement)
            .input(call.abi_encode().into());
        let gas = match self.provider.estimate_gas(request).await {
            Ok(gas) => gas,
            Err(e) => {
                let response = e.as_error_resp();
                let decoded = response
                    .and_then(|r| r.as_decoded_interface_error::<Settlement::SettlementErrors>());
                let reverted = decoded.is_some()
                    || response.is_some_and(|r| r.message.contains("revert") || r.data.is_some());
                if reverted {
                    self.sequencer
                        .settler_metrics()
                        .commit_refusals
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let reason = decoded.map_or_else(|| e.to_string(), |d| format!("{d:?}"));
                    return Err(SettlerError::Refused { batch: n, reason });
                }
                return Err(rpc(e));
            }
        };
        let gas_limit = gas + gas / 5;
        let (max_fee, max_priority) = self.fees().await?;
        let (max_fee, max_priority) = self.capped(max_fee, max_priority);
        let hash = self
            .send(
                batch,
                &mut state,
                confirmed_nonce,
                gas_limit,
                max_fee,
                max_priority,
            )
            .await?;
        Ok(Some(hash))
    }

    /// `(max fee, priority fee)` within `max_fee_per_gas`, the fee cap never below the tip.
    fn capped(&self, max_fee: u128, max_priority: u128) -> (u128, u128) {
        let cap = self.config.max_fee_per_gas;
        let tip = max_priority.min(cap);
        (max_fee.min(cap).max(tip), tip)
    }

    /// The network's current EIP-1559 fees: (max fee, priority fee).
    async fn fees(&self) -> Result<(u128, u128), SettlerError> {
        let estimate = self.provider.estimate_eip1559_fees().await.map_err(rpc)?;
        Ok((estimate.max_fee_per_gas, estimate.max_priority_fee_per_gas))
    }

    /// Signs the commit, records it as in flight (durably), then broadcasts it.
    async fn send(
        &self,
        batch: &SealedBatch,
        state: &mut BatchChainState,
        nonce: u64,
        gas_limit: u64,
        max_fee_per_gas: u128,
        max_priority_fee_per_gas: u128,
    ) -> Result<B256, SettlerError> {
        let mut tx = TxEip1559 {
            chain_id: self.config.chain_id,
            nonce,
            gas_limit,
            max_fee_per_gas,
            max_priority_fee_per_gas,
            to: TxKind::Call(self.config.settlement),
            value: U256::ZERO,
            access_list: Default::default(),
            input: commit_call(batch).abi_encode().into(),
        };
        let signature = self.signer.sign_transaction_sync(&mut tx).map_err(node)?;
        let envelope = TxEnvelope::from(tx.into_signed(signature));
        let hash = *envelope.tx_hash();
        let mut in_flight = state.in_flight.take().unwrap_or(InFlight {
            nonce,
            tx_hashes: Vec::new(),
            max_fee_per_gas,
            max_priority_fee_per_gas,
            gas_limit,
            sent_at_s: 0,
        });
        in_flight.nonce = nonce;
        in_flight.tx_hashes.push(hash);
        in_flight.max_fee_per_gas = max_fee_per_gas;
        in_flight.max_priority_fee_per_gas = max_priority_fee_per_gas;
        in_flight.sent_at_s = now_s();
        state.in_flight = Some(in_flight);
        self.sequencer
            .set_batch_chain_state(batch.number, state)
            .map_err(node)?;
        self.sequencer
            .settler_metrics()
            .commits_sent
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self
            .provider
            .send_raw_transaction(&envelope.encoded_2718())
            .await
        {
            Ok(_) => {
                info!(target: "settler", batch = batch.number, tx = %hash, nonce, gas_limit, max_fee_per_gas, "commit sent");
                Ok(hash)
            }
            // Recorded in flight: the next steps look for it, and replace it if it never
            // arrives.
            Err(e) => Err(rpc(format!(
                "sending commit of batch {}: {e}",
                batch.number
            ))),
        }
    }
}

/// The `commitBatch` call of a sealed batch.
pub fn commit_call(batch: &SealedBatch) -> Settlement::commitBatchCall {
    Settlement::commitBatchCall {
        header: Settlement::BatchHeader {
            batchNumber: batch.number,
            prevRoot: batch.prev_root,
            newRoot: batch.new_root,
            depositsConsumed: batch.deposits_consumed,
            depositsHash: batch.deposits_hash,
            forcedConsumed: batch.forced_consumed,
            forcedHash: batch.forced_hash,
            dataHash: batch.data_hash(),
        },
        data: batch.data.clone(),
    }
}
