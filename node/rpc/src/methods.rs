//! The method handlers: parameters in, typed results or [`RpcError`] out.

use std::{
    future::Future,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use alloy::{
    primitives::{Address, B256},
    sol_types::Eip712Domain,
};
use jsonrpsee::{types::ErrorObjectOwned, RpcModule};
use serde::Serialize;
use stablelane::{
    Amount, Authentication, ErrorCode, Message, Nonce, Signed, Transfer, TxHash, Withdrawal,
};
use stablelane_sequencer::{Sequencer, SignedReceipt};
use tracing::debug;

use crate::{
    error::{Result, RpcError},
    params::{optional, positional, required, signed},
    RpcConfig, StartError, TokenInfo,
};

/// The `purpose` an authentication for `lane_getAccount` must state.
pub(crate) const GET_ACCOUNT_PURPOSE: &str = "lane_getAccount";

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct Context {
    sequencer: Sequencer,
    domain: Eip712Domain,
    chain_id: u64,
    settlement: Address,
    operator: Address,
    tokens: Vec<TokenInfo>,
}

impl Context {
    pub(crate) fn new(config: &RpcConfig, sequencer: Sequencer) -> Result<Self, StartError> {
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
            domain,
            chain_id,
            settlement,
            operator: config.operator,
            tokens: config.tokens.clone(),
        })
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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

/// The wallet API.
pub(crate) fn wallet_module(context: Arc<Context>) -> Result<RpcModule<Context>, StartError> {
    let mut module = RpcModule::from_arc(context);
    register(&mut module, "eth_chainId", |ctx, raw| async move {
        positional(raw.as_deref(), "eth_chainId", 0)?;
        Ok::<_, RpcError>(format!("0x{:x}", ctx.chain_id))
    })?;
    register(&mut module, "lane_chainInfo", |ctx, raw| async move {
        positional(raw.as_deref(), "lane_chainInfo", 0)?;
        chain_info(&ctx)
    })?;
    register(&mut module, "lane_estimateFee", |ctx, raw| async move {
        let items = positional(raw.as_deref(), "lane_estimateFee", 1)?;
        let token: Address = required(&items, 0, "token")?;
        estimate_fee(&ctx, token)
    })?;
    register(&mut module, "lane_getAccount", |ctx, raw| async move {
        let items = positional(raw.as_deref(), "lane_getAccount", 3)?;
        get_account(&ctx, &items)
    })?;
    register(&mut module, "lane_getTransaction", |ctx, raw| async move {
        let items = positional(raw.as_deref(), "lane_getTransaction", 1)?;
        let hash: TxHash = required(&items, 0, "txHash")?;
        let receipt = ctx
            .sequencer
            .signed_receipt(&hash)
            .ok_or_else(|| RpcError::not_found(format!("no transaction {hash}")))?;
        Ok::<_, RpcError>(TransactionView {
            status: "accepted",
            receipt,
        })
    })?;
    register(&mut module, "lane_sendTransfer", |ctx, raw| async move {
        let items = positional(raw.as_deref(), "lane_sendTransfer", 1)?;
        let value = items
            .first()
            .ok_or_else(|| RpcError::invalid_params("missing parameter 0 (transfer)"))?;
        let tx: Signed<Transfer> = signed(value, "transfer", &["amount", "fee"])?;
        let hash = tx.verify(&ctx.domain)?;
        let receipt = ctx.sequencer.submit_transfer(tx).await?;
        debug!(target: "rpc", tx = %hash, seq = receipt.receipt.sequence.get(), "transfer accepted");
        Ok::<_, RpcError>(receipt)
    })?;
    register(&mut module, "lane_sendWithdrawal", |ctx, raw| async move {
        let items = positional(raw.as_deref(), "lane_sendWithdrawal", 1)?;
        let value = items
            .first()
            .ok_or_else(|| RpcError::invalid_params("missing parameter 0 (withdrawal)"))?;
        let tx: Signed<Withdrawal> = signed(value, "withdrawal", &["amount", "fee"])?;
        let hash = tx.verify(&ctx.domain)?;
        let receipt = ctx.sequencer.submit_withdrawal(tx).await?;
        debug!(target: "rpc", tx = %hash, seq = receipt.receipt.sequence.get(), "withdrawal accepted");
        Ok::<_, RpcError>(receipt)
    })?;
    Ok(module)
}

/// The admin API (served behind the bearer token).
pub(crate) fn admin_module(context: Arc<Context>) -> Result<RpcModule<Context>, StartError> {
    let mut module = RpcModule::from_arc(context);
    register(&mut module, "admin_status", |ctx, raw| async move {
        positional(raw.as_deref(), "admin_status", 0)?;
        Ok::<_, RpcError>(ctx.sequencer.read(|state| StatusView {
            chain_id: ctx.chain_id,
            last_sequence: state.last_seq().get(),
            transaction_count: state.transaction_count(),
            slot_count: state.ledger().slot_count(),
        }))
    })?;
    Ok(module)
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenView {
    address: Address,
    symbol: String,
    decimals: u8,
    minimum_fee: Amount,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct ChainInfoView {
    chain_id: u64,
    settlement: Address,
    operator: Address,
    tokens: Vec<TokenView>,
}

fn chain_info(ctx: &Context) -> Result<ChainInfoView> {
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
    Ok(ChainInfoView {
        chain_id: ctx.chain_id,
        settlement: ctx.settlement,
        operator: ctx.operator,
        tokens,
    })
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct FeeView {
    token: Address,
    fee: Amount,
}

fn estimate_fee(ctx: &Context, token: Address) -> Result<FeeView> {
    let fee = ctx
        .sequencer
        .read(|state| state.ledger().fee_quote(token))?;
    Ok(FeeView { token, fee })
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountView {
    owner: Address,
    token: Address,
    balance: Amount,
    nonce: Nonce,
    slot: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    salt: Option<B256>,
    #[serde(skip_serializing_if = "Option::is_none")]
    leaf: Option<B256>,
}

fn get_account(ctx: &Context, items: &[serde_json::Value]) -> Result<AccountView> {
    let owner: Address = required(items, 0, "owner")?;
    let token: Address = required(items, 1, "token")?;
    let authenticated = match optional(items, 2) {
        None => false,
        Some(value) => {
            let auth: Signed<Authentication> = signed(value, "auth", &[])
                .map_err(|e| RpcError::unauthorized(format!("authentication: {}", e.message)))?;
            check_authentication(ctx, &auth, owner)?;
            true
        }
    };
    Ok(ctx.sequencer.read(|state| {
        let ledger = state.ledger();
        let index = ledger.slot_index(owner, token);
        let (salt, leaf) = match index {
            Some(i) if authenticated => (ledger.slot(i).map(|s| s.salt), state.leaf(i)),
            _ => (None, None),
        };
        AccountView {
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

fn check_authentication(
    ctx: &Context,
    auth: &Signed<Authentication>,
    owner: Address,
) -> Result<()> {
    if auth.message.signer() != owner {
        return Err(RpcError::unauthorized(
            "authentication is for another owner",
        ));
    }
    if auth.message.purpose != GET_ACCOUNT_PURPOSE {
        return Err(RpcError::unauthorized(format!(
            "authentication purpose must be {GET_ACCOUNT_PURPOSE:?}"
        )));
    }
    if auth.message.expiry <= now_s() {
        return Err(RpcError::unauthorized("authentication expired"));
    }
    auth.verify(&ctx.domain).map_err(|e| {
        RpcError::new(
            ErrorCode::Unauthorized,
            format!("authentication signature: {e}"),
        )
    })?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct TransactionView {
    status: &'static str,
    receipt: SignedReceipt,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusView {
    chain_id: u64,
    last_sequence: u64,
    transaction_count: usize,
    slot_count: u32,
}
