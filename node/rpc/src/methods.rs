//! The method handlers: parameters in, typed results or [`RpcError`] out.

use std::{future::Future, sync::Arc};

use alloy::{primitives::Address, sol_types::Eip712Domain};
use jsonrpsee::{
    core::server::SubscriptionCloseResponse, core::SubscriptionError, types::ErrorObjectOwned,
    PendingSubscriptionSink, RpcModule, SubscriptionMessage,
};
use serde::Serialize;
use stablelane::{
    attestation::attestation_context,
    rpc::BatchStatus,
    rpc::{
        method, Account, BatchInfo, BatchProgress, ChainInfo, FeeQuote, NodeStatus,
        ReceiptNotification, SealResult, TokenInfo as TokenView, TokenSupply, TransactionInfo,
        TxStatus, AUTHENTICATION_VALIDITY_MAX_S, GET_ACCOUNT_PURPOSE, GET_TRANSACTION_PURPOSE,
        SUBSCRIBE_BATCHES, SUBSCRIBE_PURPOSE, SUBSCRIBE_RECEIPTS,
    },
    Amount, Attestation, Authentication, ErrorCode, ProveBalance, Signed, Transfer, TxHash,
    Withdrawal,
};
use stablelane_ledger::Deposit;
use stablelane_sequencer::Sequencer;
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info};

use crate::{
    error::{Result, RpcError},
    metrics::{RpcMetrics, TxKind},
    params::{optional, positional, required, signed, single_signed},
    prover::{ProveError, Prover},
    Clock, RpcConfig, StartError, TokenInfo,
};

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct Context {
    sequencer: Sequencer,
    domain: Eip712Domain,
    /// `domain.separator()`, computed once.
    separator: alloy::primitives::B256,
    chain_id: u64,
    settlement: Address,
    operator: Address,
    tokens: Vec<TokenInfo>,
    pub(crate) metrics: Arc<RpcMetrics>,
    dev_deposits: bool,
    pub(crate) prover: Option<Arc<Prover>>,
    /// The time of expiry checks.
    clock: Clock,
}

impl Context {
    pub(crate) fn new(
        config: &RpcConfig,
        sequencer: Sequencer,
        clock: Clock,
    ) -> Result<Self, StartError> {
        let domain = sequencer.read(|s| s.domain().clone());
        let chain_id = domain
            .chain_id
            .and_then(|id| u64::try_from(id).ok())
            .ok_or(StartError::IncompleteDomain)?;
        let settlement = domain
            .verifying_contract
            .ok_or(StartError::IncompleteDomain)?;
        Ok(Self {
            sequencer,
            separator: domain.separator(),
            domain,
            chain_id,
            settlement,
            operator: config.operator,
            tokens: config.tokens.clone(),
            metrics: Arc::new(RpcMetrics::default()),
            dev_deposits: config.dev_deposits,
            prover: config.prover.clone(),
            clock,
        })
    }

    /// Now, in Unix seconds, by the server's clock.
    fn now_s(&self) -> u64 {
        (self.clock)()
    }
}

impl Context {
    pub(crate) fn sequencer_metrics(&self) -> stablelane_sequencer::SequencerMetrics {
        self.sequencer.metrics()
    }
}

/// Registers `handler` as `name`, logging refusals at debug level.
fn register<T, F, Fut>(
    module: &mut RpcModule<Context>,
    name: &'static str,
    handler: F,
) -> Result<(), StartError>
where
    T: Serialize + Clone + Send + 'static,
    F: Fn(Arc<Context>, Option<String>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    module.register_async_method(name, move |params, context, _| {
        let handler = handler.clone();
        let raw = params.as_str().map(str::to_owned);
        async move {
            handler(context, raw).await.map_err(|error| {
                debug!(target: "rpc", method = name, code = error.code.code(), reason = %error.message, "call refused");
                ErrorObjectOwned::from(error)
            })
        }
    })?;
    Ok(())
}

/// Counts the outcome of a sending method.
fn count<T>(ctx: &Context, kind: TxKind, result: &Result<T>) {
    match result {
        Ok(_) => ctx.metrics.accepted(kind),
        Err(e) => ctx.metrics.rejected(kind, e.code),
    }
}

/// The wallet API.
pub(crate) fn wallet_module(context: Arc<Context>) -> Result<RpcModule<Context>, StartError> {
    let mut module = RpcModule::from_arc(context);
    register(&mut module, method::ETH_CHAIN_ID, |ctx, raw| async move {
        positional(raw.as_deref(), method::ETH_CHAIN_ID, 0)?;
        Ok::<_, RpcError>(format!("0x{:x}", ctx.chain_id))
    })?;
    register(&mut module, method::CHAIN_INFO, |ctx, raw| async move {
        positional(raw.as_deref(), method::CHAIN_INFO, 0)?;
        chain_info(&ctx)
    })?;
    register(&mut module, method::ESTIMATE_FEE, |ctx, raw| async move {
        let items = positional(raw.as_deref(), method::ESTIMATE_FEE, 1)?;
        let token: Address = required(&items, 0, "token")?;
        estimate_fee(&ctx, token)
    })?;
    register(&mut module, method::GET_ACCOUNT, |ctx, raw| async move {
        let items = positional(raw.as_deref(), method::GET_ACCOUNT, 3)?;
        get_account(&ctx, &items)
    })?;
    register(
        &mut module,
        method::GET_TRANSACTION,
        |ctx, raw| async move {
            let items = positional(raw.as_deref(), method::GET_TRANSACTION, 2)?;
            let hash: TxHash = required(&items, 0, "txHash")?;
            // Checked before the look-up, so a bad authentication is refused the same way
            // whether the transaction exists or not.
            let auth = optional(&items, 1)
                .map(|value| authentication(&ctx, Some(value), GET_TRANSACTION_PURPOSE))
                .transpose()?
                .map(|auth| auth.owner);
            let receipt = ctx
                .sequencer
                .receipt(&hash)
                .map_err(internal)?
                .ok_or_else(|| RpcError::not_found(format!("no transaction {hash}")))?;
            let batch = ctx
                .sequencer
                .batch_of_sequence(receipt.sequence.get())
                .map_err(internal)?;
            // The receipt holds the sender's balance and nonce: for the sender only (anyone
            // else, the payee included, gets the status without it).
            let receipt = if auth == Some(receipt.owner) {
                ctx.sequencer.signed_receipt(&hash)?
            } else {
                None
            };
            Ok::<_, RpcError>(TransactionInfo {
                status: batch
                    .as_ref()
                    .map_or(TxStatus::Accepted, |(_, chain)| chain.status.tx_status()),
                batch: batch.as_ref().map(|(n, _)| *n),
                l2_tx_hash: batch.and_then(|(_, chain)| chain.l2_tx_hash),
                receipt,
            })
        },
    )?;
    register(
        &mut module,
        method::REGISTER_VIEWING_KEY,
        |ctx, raw| async move {
            let items = positional(raw.as_deref(), method::REGISTER_VIEWING_KEY, 2)?;
            let owner: Address = required(&items, 0, "owner")?;
            let signature: alloy::primitives::Signature = required(&items, 1, "signature")?;
            let hash = alloy::sol_types::SolStruct::eip712_signing_hash(
                &stablelane::messages::viewing_key_message(owner),
                &ctx.domain,
            );
            let signer = stablelane::signing::recover(&signature, &hash)?;
            if signer != owner {
                return Err(RpcError::new(
                    ErrorCode::SignerMismatch,
                    format!("viewing-key message signed by {signer}, not {owner}"),
                ));
            }
            ctx.sequencer.register_viewing_key(owner, signature).await?;
            info!(target: "rpc", %owner, "viewing key registered");
            Ok::<_, RpcError>(true)
        },
    )?;
    register(&mut module, method::PROVE_BALANCE, |ctx, raw| async move {
        let items = positional(raw.as_deref(), method::PROVE_BALANCE, 1)?;
        let value = items
            .first()
            .ok_or_else(|| RpcError::invalid_params("missing parameter 0 (request)"))?;
        let request: Signed<ProveBalance> = signed(value, "request", &["threshold"])?;
        prove_balance(&ctx, request).await
    })?;
    register(&mut module, method::GET_BATCH, |ctx, raw| async move {
        let items = positional(raw.as_deref(), method::GET_BATCH, 1)?;
        let number: u64 = required(&items, 0, "batchNumber")?;
        let (batch, chain) = ctx
            .sequencer
            .batch(number)
            .map_err(internal)?
            .ok_or_else(|| RpcError::not_found(format!("no batch {number}")))?;
        Ok::<BatchInfo, RpcError>(batch.info(&chain))
    })?;
    register(&mut module, method::SEND_TRANSFER, |ctx, raw| async move {
        let result = async {
            let tx: Signed<Transfer> = single_signed(
                raw.as_deref(),
                method::SEND_TRANSFER,
                "transfer",
                &["amount", "fee"],
            )?;
            let hash = tx.verify_in(&ctx.domain, &ctx.separator)?;
            let receipt = ctx.sequencer.submit_transfer(tx).await?;
            debug!(target: "rpc", tx = %hash, seq = receipt.receipt.sequence.get(), "transfer accepted");
            Ok::<_, RpcError>(receipt)
        }
        .await;
        count(&ctx, TxKind::Transfer, &result);
        result
    })?;
    register(
        &mut module,
        method::SEND_WITHDRAWAL,
        |ctx, raw| async move {
            let result = async {
            let tx: Signed<Withdrawal> = single_signed(
                raw.as_deref(),
                method::SEND_WITHDRAWAL,
                "withdrawal",
                &["amount", "fee"],
            )?;
            let hash = tx.verify_in(&ctx.domain, &ctx.separator)?;
            let receipt = ctx.sequencer.submit_withdrawal(tx).await?;
            debug!(target: "rpc", tx = %hash, seq = receipt.receipt.sequence.get(), "withdrawal accepted");
            Ok::<_, RpcError>(receipt)
        }
        .await;
            count(&ctx, TxKind::Withdrawal, &result);
            result
        },
    )?;
    module.register_subscription(
        method::SUBSCRIBE,
        method::SUBSCRIPTION,
        method::UNSUBSCRIBE,
        |params, pending, ctx, _| async move {
            let raw = params.as_str().map(str::to_owned);
            subscribe(ctx, raw, pending).await
        },
    )?;
    Ok(module)
}

fn internal(e: impl std::fmt::Display) -> RpcError {
    RpcError::new(ErrorCode::InternalError, e.to_string())
}

/// `lane_subscribe("receipts", address, auth)`: for every acknowledged transaction the
/// address sent or received, its own resulting account signed by the operator (never the
/// other party's), until unsubscribed, disconnected, or the owner's authentication expires
/// (then the subscription ends with an error notification).
/// `lane_subscribe("batches")`: every batch status change (sealed, committed, finalized).
/// A client too slow to keep up misses notifications and is told so in a `lagged`
/// notification.
async fn subscribe(
    ctx: Arc<Context>,
    raw: Option<String>,
    pending: PendingSubscriptionSink,
) -> SubscriptionCloseResponse {
    let parsed = (|| {
        let items = positional(raw.as_deref(), method::SUBSCRIBE, 3)?;
        let kind: String = required(&items, 0, "kind")?;
        match kind.as_str() {
            SUBSCRIBE_RECEIPTS => {
                let address: Address = required(&items, 1, "address")?;
                let expiry = owner_authentication(&ctx, optional(&items, 2), address, SUBSCRIBE_PURPOSE)?;
                Ok(Some((address, expiry)))
            }
            SUBSCRIBE_BATCHES if items.len() == 1 => Ok(None),
            SUBSCRIBE_BATCHES => Err(RpcError::invalid_params(
                "lane_subscribe(\"batches\") takes no further parameter",
            )),
            _ => Err(RpcError::invalid_params(format!(
                "unknown subscription kind {kind:?} (this node offers \"{SUBSCRIBE_RECEIPTS}\" and \"{SUBSCRIBE_BATCHES}\")"
            ))),
        }
    })();
    let (address, expiry) = match parsed {
        Ok(Some(subscription)) => subscription,
        Ok(None) => {
            subscribe_batches(ctx, pending).await;
            return SubscriptionCloseResponse::None;
        }
        Err(e) => {
            pending.reject(ErrorObjectOwned::from(e)).await;
            return SubscriptionCloseResponse::None;
        }
    };
    // Subscribe before accepting so nothing acknowledged after the answer is missed.
    let mut events = ctx.sequencer.subscribe();
    let Ok(sink) = pending.accept().await else {
        return SubscriptionCloseResponse::None;
    };
    // The subscription lasts as long as the authentication that opened it.
    let expires = tokio::time::sleep(std::time::Duration::from_secs(
        expiry.saturating_sub(ctx.now_s()),
    ));
    tokio::pin!(expires);
    let mut close = SubscriptionCloseResponse::None;
    ctx.metrics.subscriptions(1);
    loop {
        tokio::select! {
            () = sink.closed() => break,
            () = &mut expires => {
                debug!(target: "rpc", %address, expiry, "receipt subscription ended: authentication expired");
                close = subscription_expired(expiry);
                break;
            }
            event = events.recv() => match event {
                Ok(event) => {
                    let mut ended = false;
                    for (receipt, counterparty) in event.receipts_for(address) {
                        let note = ReceiptNotification {
                            role: receipt.receipt.kind.as_str().into(),
                            receipt,
                            counterparty,
                        };
                        let Ok(raw) = serde_json::value::to_raw_value(&note) else {
                            ended = true;
                            break;
                        };
                        if sink.send(SubscriptionMessage::from(raw)).await.is_err() {
                            ended = true;
                            break;
                        }
                        ctx.metrics.notified();
                    }
                    if ended {
                        break;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    ctx.metrics.dropped(missed);
                    let note = serde_json::json!({ "lagged": missed });
                    let Ok(raw) = serde_json::value::to_raw_value(&note) else { break };
                    if sink.send(SubscriptionMessage::from(raw)).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Closed) => break,
            },
        }
    }
    ctx.metrics.subscriptions(-1);
    close
}

/// The error notification that ends a receipt subscription whose authentication expired:
/// `{"code": 1040, "message": …}` in the notification's `error`.
fn subscription_expired(expiry: u64) -> SubscriptionCloseResponse {
    let error = serde_json::json!({
        "code": ErrorCode::Unauthorized.code(),
        "message": format!("authentication expired at {expiry}: subscribe again with a new one"),
    });
    match serde_json::value::to_raw_value(&error) {
        Ok(raw) => SubscriptionCloseResponse::NotifErr(SubscriptionError::from_json(raw)),
        Err(_) => SubscriptionCloseResponse::None,
    }
}

/// Sends every batch status change to the subscriber.
async fn subscribe_batches(ctx: Arc<Context>, pending: PendingSubscriptionSink) {
    let mut events = ctx.sequencer.subscribe_batches();
    let Ok(sink) = pending.accept().await else {
        return;
    };
    ctx.metrics.subscriptions(1);
    loop {
        tokio::select! {
            () = sink.closed() => break,
            event = events.recv() => {
                let note = match event {
                    Ok(note) => serde_json::to_value(&note),
                    Err(RecvError::Lagged(missed)) => {
                        ctx.metrics.dropped(missed);
                        Ok(serde_json::json!({ "lagged": missed }))
                    }
                    Err(RecvError::Closed) => break,
                };
                let Ok(raw) = note.and_then(|n| serde_json::value::to_raw_value(&n)) else { break };
                if sink.send(SubscriptionMessage::from(raw)).await.is_err() {
                    break;
                }
                ctx.metrics.notified();
            }
        }
    }
    ctx.metrics.subscriptions(-1);
}

/// The admin API (served behind the bearer token).
pub(crate) fn admin_module(context: Arc<Context>) -> Result<RpcModule<Context>, StartError> {
    let dev_deposits = context.dev_deposits;
    let mut module = RpcModule::from_arc(context);
    register(&mut module, method::ADMIN_STATUS, |ctx, raw| async move {
        positional(raw.as_deref(), method::ADMIN_STATUS, 0)?;
        let state_root = ctx
            .sequencer
            .root()
            .map_err(|e| RpcError::new(ErrorCode::InternalError, e.to_string()))?;
        let settler = ctx.sequencer.settler_metrics();
        let batches = BatchProgress {
            sealed: ctx.sequencer.read(|s| s.last_batch()),
            committed: settler
                .last_committed
                .load(std::sync::atomic::Ordering::Relaxed),
            finalized: settler
                .last_finalized
                .load(std::sync::atomic::Ordering::Relaxed),
            open_records: ctx.sequencer.open_batch().records,
        };
        Ok::<_, RpcError>(ctx.sequencer.read(|state| {
            NodeStatus {
                batches,
                chain_id: ctx.chain_id,
                last_sequence: state.last_seq().get(),
                transaction_count: ctx.sequencer.store().transaction_count(),
                slot_count: state.ledger().slot_count(),
                state_root,
                supply: state
                    .ledger()
                    .config()
                    .tokens
                    .keys()
                    .map(|token| {
                        let s = state.ledger().supply(*token).unwrap_or_default();
                        TokenSupply {
                            token: *token,
                            deposited: s.deposited,
                            withdrawn: s.withdrawn,
                        }
                    })
                    .collect(),
            }
        }))
    })?;
    register(
        &mut module,
        method::ADMIN_SEAL_BATCH,
        |ctx, raw| async move {
            positional(raw.as_deref(), method::ADMIN_SEAL_BATCH, 0)?;
            let batch = ctx.sequencer.seal_batch().await?;
            info!(target: "rpc", ?batch, "admin_sealBatch");
            Ok::<_, RpcError>(SealResult { batch })
        },
    )?;
    if dev_deposits {
        register(
            &mut module,
            method::ADMIN_DEV_DEPOSIT,
            |ctx, raw| async move {
                let items = positional(raw.as_deref(), method::ADMIN_DEV_DEPOSIT, 3)?;
                let recipient: Address = required(&items, 0, "recipient")?;
                let token: Address = required(&items, 1, "token")?;
                let amount: Amount = required(&items, 2, "amount")?;
                let queue_index = ctx.sequencer.read(|s| s.ledger().deposits_consumed());
                ctx.sequencer
                    .submit_deposit(Deposit {
                        queue_index,
                        recipient,
                        token,
                        amount,
                    })
                    .await?;
                info!(target: "rpc", %recipient, %token, %amount, queue_index, "development deposit credited");
                ctx.sequencer
                    .root()
                    .map_err(|e| RpcError::new(ErrorCode::InternalError, e.to_string()))
            },
        )?;
    }
    Ok(module)
}

fn chain_info(ctx: &Context) -> Result<ChainInfo> {
    let tokens = ctx.sequencer.read(|state| {
        ctx.tokens
            .iter()
            .filter_map(|info| {
                let fee = state.ledger().fee_quote(info.address).ok()?;
                Some(TokenView {
                    address: info.address,
                    symbol: info.symbol.clone(),
                    decimals: info.decimals,
                    minimum_fee: fee,
                })
            })
            .collect()
    });
    Ok(ChainInfo {
        chain_id: ctx.chain_id,
        settlement: ctx.settlement,
        operator: ctx.operator,
        receipt_signer: ctx.sequencer.receipt_signer(),
        tokens,
    })
}

fn estimate_fee(ctx: &Context, token: Address) -> Result<FeeQuote> {
    let fee = ctx
        .sequencer
        .read(|state| state.ledger().fee_quote(token))?;
    Ok(FeeQuote { token, fee })
}

/// `lane_getAccount(owner, token, auth)`: the owner's account, to the authenticated owner
/// only. Without a valid authentication nothing is answered, not even whether the account
/// exists.
fn get_account(ctx: &Context, items: &[serde_json::Value]) -> Result<Account> {
    let owner: Address = required(items, 0, "owner")?;
    let token: Address = required(items, 1, "token")?;
    owner_authentication(ctx, optional(items, 2), owner, GET_ACCOUNT_PURPOSE)?;
    Ok(ctx.sequencer.read(|state| {
        let ledger = state.ledger();
        let index = ledger.slot_index(owner, token);
        let (salt, leaf) = match index {
            Some(i) => (ledger.slot(i).map(|s| s.salt), state.leaf(i)),
            None => (None, None),
        };
        Account {
            owner,
            token,
            balance: ledger.balance(owner, token),
            nonce: ledger.nonce(owner, token),
            slot: index.map(|i| i.get()),
            salt,
            leaf,
        }
    }))
}

/// Checks that `value` is a valid `Signed<Authentication>` by `owner` for `purpose` (see
/// [`authentication`]; one by another account is 1040 too); returns its expiry.
fn owner_authentication(
    ctx: &Context,
    value: Option<&serde_json::Value>,
    owner: Address,
    purpose: &str,
) -> Result<u64> {
    let auth = authentication(ctx, value, purpose)?;
    if auth.owner != owner {
        return Err(RpcError::unauthorized(
            "authentication is for another owner",
        ));
    }
    Ok(auth.expiry)
}

/// Checks that `value` is a valid `Signed<Authentication>` for `purpose`: missing,
/// malformed, another purpose, expired, or badly signed is 1040 (`Unauthorized`); an
/// expiry more than [`AUTHENTICATION_VALIDITY_MAX_S`] ahead is 1041 (`ExpiryTooFar`).
/// Returns the authenticated message.
fn authentication(
    ctx: &Context,
    value: Option<&serde_json::Value>,
    purpose: &str,
) -> Result<Authentication> {
    let value = value.ok_or_else(|| {
        RpcError::unauthorized(format!(
            "{purpose} answers only the owner: pass the owner's Signed<Authentication> with purpose {purpose:?}"
        ))
    })?;
    let auth: Signed<Authentication> = signed(value, "auth", &[])
        .map_err(|e| RpcError::unauthorized(format!("authentication: {}", e.message)))?;
    if auth.message.purpose != purpose {
        return Err(RpcError::unauthorized(format!(
            "authentication purpose must be {purpose:?}"
        )));
    }
    check_expiry(auth.message.expiry, ctx.now_s(), |e| {
        RpcError::unauthorized(format!("authentication expired at {e}"))
    })?;
    auth.verify(&ctx.domain).map_err(|e| {
        RpcError::new(
            ErrorCode::Unauthorized,
            format!("authentication signature: {e}"),
        )
    })?;
    Ok(auth.message)
}

/// `expiry` must be after `now_s` (else `expired(expiry)`) and at most
/// [`AUTHENTICATION_VALIDITY_MAX_S`] after it (else 1041, `ExpiryTooFar`).
fn check_expiry(expiry: u64, now_s: u64, expired: impl FnOnce(u64) -> RpcError) -> Result<()> {
    if expiry <= now_s {
        return Err(expired(expiry));
    }
    if expiry - now_s > AUTHENTICATION_VALIDITY_MAX_S {
        return Err(RpcError::new(
            ErrorCode::ExpiryTooFar,
            format!(
                "expiry {expiry} is more than {AUTHENTICATION_VALIDITY_MAX_S} s (24 h) ahead of the node's clock ({now_s}): sign a shorter one"
            ),
        ));
    }
    Ok(())
}

/// `lane_proveBalance`: checks the owner's signed request, opens the owner's slot as of the
/// finalized batch asked for (the latest finalized one by default), checks the statement
/// natively (a threshold above the balance is refused before any proving work), and proves on
/// the prover pool.
async fn prove_balance(ctx: &Context, request: Signed<ProveBalance>) -> Result<Attestation> {
    check_expiry(request.message.expiry, ctx.now_s(), |_| {
        RpcError::new(ErrorCode::Expired, "request expired")
    })?;
    let prover = ctx.prover.clone().ok_or_else(|| {
        RpcError::new(
            ErrorCode::ProverDisabled,
            "this node does not prove balances (no [prover] keys configured)",
        )
    })?;
    request.verify(&ctx.domain)?;
    let ProveBalance {
        owner,
        token,
        threshold,
        challenge,
        batch,
        ..
    } = request.message;
    if !ctx.tokens.iter().any(|t| t.address == token) {
        return Err(RpcError::new(
            ErrorCode::UnsupportedToken,
            format!("token {token} is not supported"),
        ));
    }
    let batch = provable_batch(ctx, batch)?;
    let (slot, tree) = ctx.sequencer.read(|state| {
        (
            state.ledger().slot_index(owner, token),
            state.tree().clone(),
        )
    });
    // The sealed states are read outside the state lock: the tree worker may hold them for
    // tens of milliseconds, and the writer must not wait behind this read meanwhile.
    let opening = {
        let side = tree.now();
        match (side.sealed(), slot) {
            (None, _) => Err(RpcError::new(
                ErrorCode::ProverDisabled,
                "this node keeps no sealed states",
            )),
            (_, None) => Err(RpcError::not_found(format!(
                "{owner} has no {token} account"
            ))),
            (Some(sealed), Some(slot)) => sealed.opening(batch, slot.get()).map_err(|e| match e {
                stablelane_sequencer::sealed::OpeningError::NoSlot { .. } => {
                    RpcError::not_found(format!("{owner} had no {token} account at batch {batch}"))
                }
                other => RpcError::new(ErrorCode::BatchNotProvable, other.to_string()),
            }),
        }
    };
    let opening = opening?;
    let slot = slot.ok_or_else(|| RpcError::not_found("no account"))?;
    // The root the contract stores for this batch must be the one the opening verifies
    // against (a mismatch would be a bug: refuse rather than prove something unverifiable).
    let (stored, _) = ctx
        .sequencer
        .batch(batch)
        .map_err(internal)?
        .ok_or_else(|| RpcError::not_found(format!("no batch {batch}")))?;
    let root = stablelane_sequencer::sealed::root_word(&opening.root);
    if stored.new_root != root {
        return Err(internal(format!(
            "sealed state of batch {batch} has root {root}, the batch {}",
            stored.new_root
        )));
    }
    let context = attestation_context(&challenge);
    let witness = stablelane_circuits::AttestationWitness {
        root: opening.root,
        owner: owner.0 .0,
        token: token.0 .0,
        threshold: threshold.base_units(),
        context: stablelane_circuits::field::fr_from_be_bytes(&context.to_be_bytes::<32>())
            .map_err(internal)?,
        balance: opening.secrets.balance,
        nonce: opening.secrets.nonce,
        salt: opening.secrets.salt,
        slot: stablelane_circuits::SlotIndex::new(slot.get()),
        path: opening.path,
    };
    if opening.secrets.balance < threshold.base_units() {
        return Err(RpcError::new(
            ErrorCode::BalanceBelowThreshold,
            format!("the balance at batch {batch} is below the threshold: no proof exists"),
        ));
    }
    witness.check().map_err(internal)?;
    let started = std::time::Instant::now();
    let proof = prover.prove(witness).await.map_err(|e| match e {
        ProveError::Busy(_) => RpcError::new(ErrorCode::Busy, e.to_string()),
        ProveError::Timeout(_) => RpcError::new(ErrorCode::ProvingTimeout, e.to_string()),
        ProveError::Failed(_) => internal(e),
    })?;
    info!(target: "rpc", %owner, batch, took = ?started.elapsed(), "balance attested");
    Ok(Attestation {
        batch,
        root,
        owner,
        token,
        threshold,
        challenge,
        context,
        proof: stablelane_circuits::prover::proof_to_evm(&proof)
            .map(alloy::primitives::U256::from_be_bytes),
        verifying_key_hash: prover.key_hash(),
    })
}

/// The batch a proof request refers to: `requested`, or the latest finalized batch for 0.
/// Only finalized batches are provable: the contract's `verifyAttestation` accepts no other
/// (a batch still in its challenge window may be voided), and the node calls a batch
/// finalized only once the contract would (its finalization delay passed) and the commit is
/// at the L2's finality head.
fn provable_batch(ctx: &Context, requested: u64) -> Result<u64> {
    let is_finalized = |number: u64| -> Result<bool> {
        Ok(ctx
            .sequencer
            .batch(number)
            .map_err(internal)?
            .is_some_and(|(_, chain)| chain.status == BatchStatus::Finalized))
    };
    if requested != 0 {
        return if is_finalized(requested)? {
            Ok(requested)
        } else {
            Err(RpcError::new(
                ErrorCode::BatchNotProvable,
                format!("batch {requested} is not finalized"),
            ))
        };
    }
    // Outside the state lock (see `prove_balance`).
    let tree = ctx.sequencer.read(|state| state.tree().clone());
    let (newest, oldest) = tree
        .now()
        .sealed()
        .map_or((0, 1), |sealed| (sealed.head(), sealed.oldest().max(1)));
    for number in (oldest..=newest).rev() {
        if is_finalized(number)? {
            return Ok(number);
        }
    }
    Err(RpcError::new(
        ErrorCode::BatchNotProvable,
        "no finalized batch among the states this node keeps (a batch is provable once its finalization delay has passed and its commit is final on the L2; [prover] history_batches must cover the batches sealed meanwhile)",
    ))
}
