//! Stablelane's local devnet.
//!
//! Starts a real anvil (from the pinned npm package `@foundry-rs/anvil-linux-amd64`), deploys the
//! settlement contracts from the committed artifacts with alloy, mints test stablecoins to
//! the dev accounts and describes the result as [`DevnetDescription`] (the JSON written to
//! `anvil/devnet.json`). End-to-end tests use the same code with one anvil each on a free
//! loopback port. It is a developer tool: nothing here is meant for a production chain.

pub mod deploy;
pub mod description;
pub mod node;
pub mod tools;

use std::path::PathBuf;

use alloy::{
    network::EthereumWallet,
    node_bindings::{Anvil, AnvilInstance},
    primitives::Address,
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};

pub use deploy::{deploy, DeployConfig, Deployment, Roles, TokenSpec};
pub use description::{devnet_receipt_key, DevAccount, DevnetDescription, TokenInfo};

/// The mnemonic of every Stablelane devnet (anvil's well-known default). Its keys are
/// public: never send real money to them.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// Chain id of the devnet (anvil's), the one chain on which the dev keys and short contract
/// periods are accepted without an explicit flag.
pub const DEV_CHAIN_ID: u64 = stablelane_circuits::keys::DEVNET_CHAIN_ID;

/// Index of the dev account that deploys and owns the contracts.
pub const OWNER_ACCOUNT: usize = 0;
/// Index of the dev account the node commits batches with.
pub const OPERATOR_ACCOUNT: usize = 1;
/// Index of the dev account that is the contract's guardian (may trigger exodus at once,
/// voiding the batches still in their window, and nothing else).
pub const GUARDIAN_ACCOUNT: usize = 2;
/// Index of the first dev account handed to wallets; the rest follow.
pub const FIRST_WALLET_ACCOUNT: usize = 3;

/// Errors of the devnet tooling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No anvil/forge binary could be found.
    #[error("{tool} not found; run `npm ci` in the repository root or set {env}")]
    ToolNotFound {
        /// Tool name.
        tool: &'static str,
        /// Environment variable that overrides its path.
        env: &'static str,
    },
    /// anvil did not start.
    #[error("anvil failed to start: {0}")]
    Anvil(String),
    /// A contract deployment or call failed.
    #[error("{what}: {source}")]
    Contract {
        /// What was being done.
        what: String,
        /// Underlying error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading or writing the description failed.
    #[error("devnet description {path}: {source}")]
    Io {
        /// File concerned.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The description is not valid JSON of the expected shape.
    #[error("devnet description: {0}")]
    Json(#[from] serde_json::Error),
    /// Deploying the INSECURE dev-keys verifier on a chain that is not anvil's.
    #[error("deploy: {0} (DeployConfig::allow_dev_keys_off_devnet)")]
    InsecureDevKeys(stablelane_circuits::Error),
}

/// Result with the devnet [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to start a devnet.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// Loopback port; 0 lets the OS choose a free one.
    pub port: u16,
    /// Seconds between blocks; `None` mines a block per transaction.
    pub block_time_s: Option<u64>,
    /// Number of dev accounts anvil creates (at least 4: owner, operator, guardian, one wallet).
    pub accounts: usize,
    /// Contracts and minting.
    pub deploy: DeployConfig,
    /// anvil's chain id ([`DEV_CHAIN_ID`] unless a test needs a chain that is not a devnet).
    pub chain_id: u64,
}

impl Default for DevnetOptions {
    fn default() -> Self {
        Self {
            port: 0,
            block_time_s: None,
            accounts: 10,
            deploy: DeployConfig::default(),
            chain_id: DEV_CHAIN_ID,
        }
    }
}

/// A running devnet: anvil plus deployed contracts. Dropping it stops anvil.
#[derive(Debug)]
pub struct Devnet {
    anvil: AnvilInstance,
    description: DevnetDescription,
    provider: DynProvider,
}

impl Devnet {
    /// Starts anvil, deploys the contracts and mints the test stablecoins.
    pub async fn start(options: DevnetOptions) -> Result<Self> {
        let anvil = spawn_anvil(&options)?;
        let keys: Vec<PrivateKeySigner> = anvil
            .keys()
            .iter()
            .map(|k| PrivateKeySigner::from(k.clone()))
            .collect();
        if keys.len() <= FIRST_WALLET_ACCOUNT {
            return Err(Error::Anvil(format!(
                "anvil created {} accounts, need at least {}",
                keys.len(),
                FIRST_WALLET_ACCOUNT + 1
            )));
        }
        let provider = wallet_provider(&anvil.endpoint(), &keys)?;
        let owner = keys[OWNER_ACCOUNT].address();
        let operator = keys[OPERATOR_ACCOUNT].address();
        let guardian = keys[GUARDIAN_ACCOUNT].address();
        let wallets: Vec<Address> = keys[FIRST_WALLET_ACCOUNT..]
            .iter()
            .map(PrivateKeySigner::address)
            .collect();
        let deployment = deploy(
            &provider,
            Roles {
                owner,
                operator,
                guardian,
                receipt_signer: description::devnet_receipt_key(&keys[OPERATOR_ACCOUNT]).address(),
            },
            &wallets,
            &options.deploy,
        )
        .await?;
        let chain_id = provider
            .get_chain_id()
            .await
            .map_err(|e| contract_err("eth_chainId", e))?;
        let description = DevnetDescription::new(
            chain_id,
            anvil.endpoint(),
            &deployment,
            &keys[OWNER_ACCOUNT],
            &keys[OPERATOR_ACCOUNT],
            &keys[GUARDIAN_ACCOUNT],
            &keys[FIRST_WALLET_ACCOUNT..],
        );
        Ok(Self {
            anvil,
            description,
            provider,
        })
    }

    /// What was deployed where, and the dev accounts.
    pub fn description(&self) -> &DevnetDescription {
        &self.description
    }

    /// A provider that signs with every dev account (the owner's by default).
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The anvil HTTP endpoint.
    pub fn rpc_url(&self) -> String {
        self.anvil.endpoint()
    }

    /// anvil's process id.
    pub fn anvil_pid(&self) -> u32 {
        self.anvil.child().id()
    }
}

fn spawn_anvil(options: &DevnetOptions) -> Result<AnvilInstance> {
    let mut anvil = Anvil::at(tools::anvil_binary()?)
        .host("127.0.0.1")
        .port(options.port)
        .mnemonic(DEV_MNEMONIC)
        .chain_id(options.chain_id)
        .arg("--accounts")
        .arg(options.accounts.to_string())
        .arg("--hardfork")
        .arg("cancun")
        .timeout(30_000);
    if let Some(block_time) = options.block_time_s {
        anvil = anvil.block_time(block_time);
    }
    anvil.try_spawn().map_err(|e| Error::Anvil(e.to_string()))
}

/// A provider for `rpc_url` that signs with `keys` (the first one by default).
pub fn wallet_provider(rpc_url: &str, keys: &[PrivateKeySigner]) -> Result<DynProvider> {
    let mut iter = keys.iter().cloned();
    let first = iter
        .next()
        .ok_or_else(|| Error::Anvil("no signing key".into()))?;
    let mut wallet = EthereumWallet::new(first);
    for key in iter {
        wallet.register_signer(key);
    }
    let url = rpc_url
        .parse()
        .map_err(|e| contract_err(format!("bad RPC URL {rpc_url}"), e))?;
    Ok(ProviderBuilder::new()
        .wallet(wallet)
        .connect_http(url)
        .erased())
}

pub(crate) fn contract_err(
    what: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::Contract {
        what: what.into(),
        source: Box::new(source),
    }
}
