//! `anvil/devnet.json`: what a devnet runs, for wallets, scripts and the node.

use std::path::Path;

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use serde::{Deserialize, Serialize};

use crate::{Deployment, Error, Result};

/// A token on the devnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// Ticker, e.g. `USDC`.
    pub symbol: String,
    /// ERC-20 address.
    pub address: Address,
    /// Decimals of the base unit.
    pub decimals: u8,
}

/// A funded dev account. Its key is public knowledge: devnets only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevAccount {
    /// Account address.
    pub address: Address,
    /// Hex private key (0x-prefixed).
    pub private_key: String,
}

impl DevAccount {
    pub(crate) fn from_signer(signer: &PrivateKeySigner) -> Self {
        Self {
            address: signer.address(),
            private_key: format!("0x{}", alloy::hex::encode(signer.to_bytes())),
        }
    }

    /// The account's key.
    pub fn signer(&self) -> Result<PrivateKeySigner> {
        self.private_key
            .parse()
            .map_err(|_| Error::Anvil(format!("bad dev key for {}", self.address)))
    }
}

/// The devnet's receipt key: a key of its own, derived from the operator's, so that the
/// devnet runs with separate committer and receipt keys as a real deployment must.
pub fn devnet_receipt_key(operator: &PrivateKeySigner) -> PrivateKeySigner {
    let mut preimage = b"stablelane.devnet.receipt-key.v1".to_vec();
    preimage.extend_from_slice(&operator.to_bytes().0);
    // A keccak output is a valid secp256k1 scalar with overwhelming probability; the
    // operator keys of anvil's mnemonic all give one.
    PrivateKeySigner::from_bytes(&alloy::primitives::keccak256(&preimage))
        .expect("a keccak output is a secp256k1 scalar")
}

/// The contents of `anvil/devnet.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevnetDescription {
    /// EVM chain id.
    pub chain_id: u64,
    /// anvil's HTTP JSON-RPC URL.
    pub l2_rpc_url: String,
    /// Settlement contract.
    pub settlement: Address,
    /// Groth16 verifier the settlement contract checks proofs with.
    pub verifier: Address,
    /// Block in which the settlement contract was deployed (where chain scans start).
    pub deploy_block: u64,
    /// Supported test stablecoins.
    pub tokens: Vec<TokenInfo>,
    /// Funded wallet accounts (owner and operator excluded).
    pub dev_accounts: Vec<DevAccount>,
    /// Contract owner (governance) account.
    pub owner: DevAccount,
    /// Operator account: the node commits batches with it.
    pub operator: DevAccount,
    /// Guardian account: may activate exodus at once (`guardianExodus`), nothing else.
    pub guardian: DevAccount,
    /// The contract's receipt signer: the node signs receipt groups with this key
    /// (`STABLELANE_RECEIPT_KEY`). Derived from the operator's key ([`devnet_receipt_key`]),
    /// not an anvil account: it never sends a transaction.
    pub receipt_signer: DevAccount,
    /// The node's wallet API (HTTP and WebSocket), when the devnet runs a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_rpc_url: Option<String>,
    /// The node's admin API, when the devnet runs a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_rpc_url: Option<String>,
    /// The admin API's bearer token (a devnet secret, random per run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
}

impl DevnetDescription {
    pub(crate) fn new(
        chain_id: u64,
        l2_rpc_url: String,
        deployment: &Deployment,
        owner: &PrivateKeySigner,
        operator: &PrivateKeySigner,
        guardian: &PrivateKeySigner,
        wallets: &[PrivateKeySigner],
    ) -> Self {
        Self {
            chain_id,
            l2_rpc_url,
            settlement: deployment.settlement,
            verifier: deployment.verifier,
            deploy_block: deployment.deploy_block,
            tokens: deployment.tokens.clone(),
            dev_accounts: wallets.iter().map(DevAccount::from_signer).collect(),
            owner: DevAccount::from_signer(owner),
            operator: DevAccount::from_signer(operator),
            guardian: DevAccount::from_signer(guardian),
            receipt_signer: DevAccount::from_signer(&devnet_receipt_key(operator)),
            node_rpc_url: None,
            admin_rpc_url: None,
            admin_token: None,
        }
    }

    /// The token with `symbol` (case-insensitive).
    pub fn token(&self, symbol: &str) -> Option<&TokenInfo> {
        self.tokens
            .iter()
            .find(|t| t.symbol.eq_ignore_ascii_case(symbol))
    }

    /// Writes the description atomically (temporary file, fsync, rename), so a reader never
    /// sees a half-written file.
    pub fn write(&self, path: &Path) -> Result<()> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_vec_pretty(self)?;
        let tmp = path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp).map_err(io)?;
            file.write_all(&json).map_err(io)?;
            file.write_all(b"\n").map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads a description written by [`Self::write`].
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}
