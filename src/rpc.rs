//! The JSON-RPC API shared by the node and Rust wallets: method names, result shapes and,
//! with the `client` feature, typed jsonrpsee clients ([`LaneApiClient`], [`EthApiClient`],
//! [`AdminApiClient`]) that work over HTTP and WebSocket.
//!
//! The server (`stablelane-rpc`) registers exactly these method names and answers with
//! these types; it parses parameters itself so that each kind of bad input gets its own
//! error code (see `docs/rpc.md`).

use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};

use crate::{Amount, Nonce, TxHash};

/// Method names.
pub mod method {
    /// `eth_chainId`.
    pub const ETH_CHAIN_ID: &str = "eth_chainId";
    /// `lane_chainInfo`.
    pub const CHAIN_INFO: &str = "lane_chainInfo";
    /// `lane_estimateFee`.
    pub const ESTIMATE_FEE: &str = "lane_estimateFee";
    /// `lane_getAccount`.
    pub const GET_ACCOUNT: &str = "lane_getAccount";
    /// `lane_getTransaction`.
    pub const GET_TRANSACTION: &str = "lane_getTransaction";
    /// `lane_sendTransfer`.
    pub const SEND_TRANSFER: &str = "lane_sendTransfer";
    /// `lane_sendWithdrawal`.
    pub const SEND_WITHDRAWAL: &str = "lane_sendWithdrawal";
    /// `lane_subscribe`.
    pub const SUBSCRIBE: &str = "lane_subscribe";
    /// `lane_subscription` (the notification).
    pub const SUBSCRIPTION: &str = "lane_subscription";
    /// `lane_unsubscribe`.
    pub const UNSUBSCRIBE: &str = "lane_unsubscribe";
    /// `admin_status`.
    pub const ADMIN_STATUS: &str = "admin_status";
    /// `lane_getBatch`.
    pub const GET_BATCH: &str = "lane_getBatch";
    /// `lane_registerViewingKey`.
    pub const REGISTER_VIEWING_KEY: &str = "lane_registerViewingKey";
    /// `admin_sealBatch`.
    pub const ADMIN_SEAL_BATCH: &str = "admin_sealBatch";
    /// `lane_proveBalance`
    pub const PROVE_BALANCE: &str = "lane_proveBalance";
    /// `admin_devDeposit` (only on nodes configured for development).
    pub const ADMIN_DEV_DEPOSIT: &str = "admin_devDeposit";
}

/// The `purpose` an authentication for `lane_getAccount` must state.
pub const GET_ACCOUNT_PURPOSE: &str = "lane_getAccount";
/// The `purpose` an authentication for `lane_getTransaction` must state (to see the
/// sender's receipt).
pub const GET_TRANSACTION_PURPOSE: &str = "lane_getTransaction";
/// The `purpose` an authentication for `lane_subscribe("receipts", …)` must state.
pub const SUBSCRIBE_PURPOSE: &str = "lane_subscribe";

/// How far ahead of the node's clock an `Authentication`'s (or a `ProveBalance` request's)
/// `expiry` may be: 24 hours. A later one is refused with
/// [`ErrorCode::ExpiryTooFar`](crate::ErrorCode::ExpiryTooFar), so a leaked signature is
/// never a lifetime read key.
pub const AUTHENTICATION_VALIDITY_MAX_S: u64 = 24 * 60 * 60;

/// How long the authentications this crate's [`authenticate`] signs are valid by default
/// (what the `stablelane` wallet uses): 5 minutes.
pub const AUTHENTICATION_VALIDITY_DEFAULT_S: u64 = 5 * 60;

/// Signs the owner-only read authentication of `key` for `purpose` (one of
/// [`GET_ACCOUNT_PURPOSE`], [`GET_TRANSACTION_PURPOSE`], [`SUBSCRIBE_PURPOSE`]), valid
/// `valid_for_s` seconds from now (at most [`AUTHENTICATION_VALIDITY_MAX_S`] is accepted by
/// the node).
pub fn authenticate(
    key: &alloy::signers::local::PrivateKeySigner,
    purpose: &str,
    valid_for_s: u64,
    domain: &alloy::sol_types::Eip712Domain,
) -> Result<crate::Signed<crate::Authentication>, crate::SignatureError> {
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    crate::sign(
        key,
        crate::Authentication {
            owner: key.address(),
            purpose: purpose.to_owned(),
            expiry: now_s.saturating_add(valid_for_s),
        },
        domain,
    )
}

/// The subscription kind of an address's receipts.
pub const SUBSCRIBE_RECEIPTS: &str = "receipts";
/// Subscription kind of `lane_subscribe` for batch status changes.
pub const SUBSCRIBE_BATCHES: &str = "batches";

pub use crate::receipts::SignedReceipt;

/// A supported token (`lane_chainInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// ERC-20 address.
    pub address: Address,
    /// Ticker, e.g. `"USDC"`.
    pub symbol: String,
    /// Decimals of its human amounts.
    pub decimals: u8,
    /// Smallest fee the node accepts, in base units.
    pub minimum_fee: Amount,
}

/// The deployment a node serves (`lane_chainInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainInfo {
    /// Chain id of the L2.
    pub chain_id: u64,
    /// The settlement contract (the EIP-712 verifying contract).
    pub settlement: Address,
    /// The operator, whose committer key commits batches.
    pub operator: Address,
    /// The address whose key signs the receipt groups (check it against the contract's
    /// `receiptSigner()`).
    pub receipt_signer: Address,
    /// Supported tokens.
    pub tokens: Vec<TokenInfo>,
}

impl ChainInfo {
    /// The token with this symbol (case-insensitive) or address (`0x…`).
    pub fn token(&self, symbol_or_address: &str) -> Option<&TokenInfo> {
        let wanted: Option<Address> = symbol_or_address.parse().ok();
        self.tokens
            .iter()
            .find(|t| Some(t.address) == wanted || t.symbol.eq_ignore_ascii_case(symbol_or_address))
    }
}

/// A fee quote (`lane_estimateFee`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeeQuote {
    /// The token.
    pub token: Address,
    /// The smallest fee accepted, in base units.
    pub fee: Amount,
}

/// An account (`lane_getAccount`), answered only to its authenticated owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Owner.
    pub owner: Address,
    /// Token.
    pub token: Address,
    /// Balance in base units (0 for an account that does not exist).
    pub balance: Amount,
    /// Nonce the next transfer or withdrawal must carry.
    pub nonce: Nonce,
    /// The account's slot in the state tree, if it exists.
    pub slot: Option<u32>,
    /// The slot's salt (absent when the account does not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<B256>,
    /// The slot's current leaf hash (absent when the account does not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf: Option<B256>,
}

/// Where a transaction is in its life: accepted → batched → committed → finalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum TxStatus {
    /// Durable in the operator's journal; not yet in a batch.
    Accepted,
    /// In a sealed batch not yet committed on-chain.
    Batched,
    /// In a batch whose commit transaction is included on the L2.
    Committed,
    /// In a batch whose commit is at the confirmation depth and past the finalization
    /// delay: its withdrawals can be claimed.
    Finalized,
}

/// A transaction's status and receipt (`lane_getTransaction`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionInfo {
    /// Status.
    pub status: TxStatus,
    /// The batch that carries it, once batched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<u64>,
    /// The L2 transaction that committed its batch, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2_tx_hash: Option<B256>,
    /// The signed receipt (the sender's resulting account): only when the call carried the
    /// sender's authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<SignedReceipt>,
}

/// Where a batch is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum BatchStatus {
    /// Sealed and journaled by the node; not yet committed on-chain.
    #[default]
    Sealed,
    /// Its commit transaction is included on the L2.
    Committed,
    /// The commit is at the confirmation depth and past the finalization delay.
    Finalized,
}

impl BatchStatus {
    /// The status of a transaction in a batch of this status.
    pub fn tx_status(self) -> TxStatus {
        match self {
            Self::Sealed => TxStatus::Batched,
            Self::Committed => TxStatus::Committed,
            Self::Finalized => TxStatus::Finalized,
        }
    }
}

/// One withdrawal a batch pays out on-chain (claimable after finalization).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchWithdrawal {
    /// Position in the batch's withdrawal list (the `index` of `claimWithdrawal`).
    pub index: u32,
    /// Who receives it on-chain.
    pub recipient: Address,
    /// Token.
    pub token: Address,
    /// Amount in base units.
    pub amount: Amount,
    /// The signed withdrawal it pays, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<TxHash>,
    /// The forced-withdrawal request it serves, if any (queue index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced_index: Option<u64>,
}

impl BatchWithdrawal {
    /// The withdrawal as the contract encodes and pays it.
    pub fn on_chain(&self) -> stablelane_contracts::batch_data::Withdrawal {
        stablelane_contracts::batch_data::Withdrawal {
            recipient: self.recipient,
            token: self.token,
            amount_base_units: self.amount.base_units(),
        }
    }
}

/// A batch (`lane_getBatch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchInfo {
    /// Batch number (1, 2, …).
    pub number: u64,
    /// Status.
    pub status: BatchStatus,
    /// State root before it.
    pub prev_root: B256,
    /// State root after it.
    pub new_root: B256,
    /// Deposits consumed after it (a prefix of the contract's queue).
    pub deposits_consumed: u64,
    /// Forced-withdrawal requests consumed after it.
    pub forced_consumed: u64,
    /// `keccak256` of the batch data.
    pub data_hash: B256,
    /// Bytes of batch data (calldata).
    pub data_bytes: u64,
    /// First and last journal sequence numbers it covers.
    pub first_sequence: u64,
    /// Last journal sequence number it covers (its seal record).
    pub last_sequence: u64,
    /// Signed transactions in it.
    pub transaction_count: u64,
    /// Leaves it changed.
    pub changed_slots: u32,
    /// Slots it created.
    pub new_slots: u32,
    /// Withdrawals it pays out.
    pub withdrawals: Vec<BatchWithdrawal>,
    /// The commit transaction on the L2, once sent and included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2_tx_hash: Option<B256>,
    /// The L2 block that included the commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2_block: Option<u64>,
    /// Unix time from which its withdrawals can be claimed, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimable_at: Option<u64>,
}

/// A `lane_subscription` notification of the `batches` kind: a batch sealed, committed or
/// finalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchNotification {
    /// Batch number.
    pub number: u64,
    /// Its new status.
    pub status: BatchStatus,
    /// State root after it.
    pub new_root: B256,
    /// The commit transaction, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2_tx_hash: Option<B256>,
}

/// The answer of `admin_sealBatch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealResult {
    /// The batch sealed, or `None` when nothing had changed since the last one.
    pub batch: Option<u64>,
}

/// A `lane_subscription` notification of the `receipts` kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptNotification {
    /// The receipt's kind: `"sender"`, `"recipient"`, `"deposit"` or `"forced"`.
    pub role: String,
    /// The subscriber's own resulting slot state, in its signed receipt group: for the
    /// sender the transaction's receipt, for a recipient a receipt of the same transaction
    /// (`txHash`, `sequence`) whose `owner`, `slot`, `balance` and `nonce` are the
    /// recipient's right after it. Never the other party's.
    pub receipt: SignedReceipt,
    /// The other party of a transfer: the payer for a recipient, the payee for the sender
    /// (absent for withdrawals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<Address>,
}

/// The node's status (`admin_status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// Chain id.
    pub chain_id: u64,
    /// Sequence number of the last journaled record.
    pub last_sequence: u64,
    /// Accepted signed transactions.
    pub transaction_count: u64,
    /// Ledger slots.
    pub slot_count: u32,
    /// The current state root.
    pub state_root: B256,
    /// Where batches are.
    pub batches: BatchProgress,
    /// Per token: deposits credited and withdrawals debited; their difference is the sum
    /// of balances (checked at every start).
    pub supply: Vec<TokenSupply>,
}

/// Batch numbers by status (`admin_status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchProgress {
    /// Last batch sealed.
    pub sealed: u64,
    /// Last batch the contract has committed, as the settler last saw it (0 without a
    /// settler).
    pub committed: u64,
    /// Last batch seen finalized.
    pub finalized: u64,
    /// Records in the open batch.
    pub open_records: u64,
}

/// Supply of one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenSupply {
    /// Token.
    pub token: Address,
    /// Deposits credited so far.
    pub deposited: Amount,
    /// Withdrawals (signed and forced) debited so far.
    pub withdrawn: Amount,
}

#[cfg(feature = "client")]
mod client {
    use alloy::primitives::{Address, B256};
    use jsonrpsee::proc_macros::rpc;

    use super::{
        Account, BatchInfo, BatchNotification, ChainInfo, FeeQuote, NodeStatus,
        ReceiptNotification, SealResult, SignedReceipt, TransactionInfo,
    };
    use crate::{Authentication, Signed, Transfer, TxHash, Withdrawal};

    /// The wallet API (`lane_*`).
    #[rpc(client, namespace = "lane")]
    pub trait LaneApi {
        /// The deployment and its tokens.
        #[method(name = "chainInfo")]
        async fn chain_info(&self) -> RpcResult<ChainInfo>;

        /// The smallest accepted fee for `token`.
        #[method(name = "estimateFee")]
        async fn estimate_fee(&self, token: Address) -> RpcResult<FeeQuote>;

        /// An account, with its salt and leaf; `auth` is the owner's authentication for
        /// [`GET_ACCOUNT_PURPOSE`](super::GET_ACCOUNT_PURPOSE) (see [`authenticate`](super::authenticate)).
        #[method(name = "getAccount")]
        async fn get_account(
            &self,
            owner: Address,
            token: Address,
            auth: Signed<Authentication>,
        ) -> RpcResult<Account>;

        /// A transaction's status; with the sender's authentication for
        /// [`GET_TRANSACTION_PURPOSE`](super::GET_TRANSACTION_PURPOSE), its receipt too.
        #[method(name = "getTransaction")]
        async fn get_transaction(
            &self,
            hash: TxHash,
            auth: Option<Signed<Authentication>>,
        ) -> RpcResult<TransactionInfo>;

        /// Sends a signed transfer; the operator's receipt once it is durable.
        #[method(name = "sendTransfer")]
        async fn send_transfer(&self, transfer: Signed<Transfer>) -> RpcResult<SignedReceipt>;

        /// Sends a signed withdrawal.
        #[method(name = "sendWithdrawal")]
        async fn send_withdrawal(&self, withdrawal: Signed<Withdrawal>)
            -> RpcResult<SignedReceipt>;

        /// Receipts of transactions sent or received by `address` (WebSocket only; `kind`
        /// is `"receipts"`), each with the subscriber's own resulting account. `auth` is the
        /// owner's authentication for [`SUBSCRIBE_PURPOSE`](super::SUBSCRIBE_PURPOSE); the
        /// node ends the subscription at its expiry.
        #[subscription(name = "subscribe" => "subscription", unsubscribe = "unsubscribe", item = ReceiptNotification)]
        async fn subscribe_receipts(
            &self,
            kind: String,
            address: Address,
            auth: Signed<Authentication>,
        ) -> SubscriptionResult;

        /// Registers the owner's viewing key from its signature over the fixed viewing-key
        /// message (idempotent); `true` once registered.
        #[method(name = "registerViewingKey")]
        async fn register_viewing_key(
            &self,
            owner: Address,
            signature: alloy::primitives::Signature,
        ) -> RpcResult<bool>;

        /// A private balance attestation: a Groth16 proof that the signed request's owner
        /// holds at least its threshold in a committed batch's root, bound to its challenge.
        #[method(name = "proveBalance")]
        async fn prove_balance(
            &self,
            request: Signed<crate::ProveBalance>,
        ) -> RpcResult<crate::Attestation>;

        /// A batch and its status.
        #[method(name = "getBatch")]
        async fn get_batch(&self, number: u64) -> RpcResult<BatchInfo>;

        /// Batch status changes: sealed, committed, finalized (WebSocket only; `kind` is
        /// `"batches"`).
        #[subscription(name = "subscribe" => "subscription", unsubscribe = "unsubscribe", item = BatchNotification)]
        async fn subscribe_batches(&self, kind: String) -> SubscriptionResult;
    }

    /// `eth_chainId`.
    #[rpc(client, namespace = "eth")]
    pub trait EthApi {
        /// The chain id, as a hex quantity.
        #[method(name = "chainId")]
        async fn chain_id(&self) -> RpcResult<String>;
    }

    /// The operator API (`admin_*`, separate port, bearer token).
    #[rpc(client, namespace = "admin")]
    pub trait AdminApi {
        /// The node's status.
        #[method(name = "status")]
        async fn status(&self) -> RpcResult<NodeStatus>;

        /// Seals the open batch now (the settler commits it).
        #[method(name = "sealBatch")]
        async fn seal_batch(&self) -> RpcResult<SealResult>;

        /// Development only: credits a deposit that did not come from the chain.
        #[method(name = "devDeposit")]
        async fn dev_deposit(
            &self,
            recipient: Address,
            token: Address,
            amount: crate::Amount,
        ) -> RpcResult<B256>;
    }
}

#[cfg(feature = "client")]
pub use client::{AdminApiClient, EthApiClient, LaneApiClient};
