//! Deploying the settlement contracts and minting test stablecoins.

use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
};
use stablelane_contracts::{Groth16Verifier, Settlement, TestStablecoin};
use tracing::info;

use crate::{contract_err, Error, Result, TokenInfo};

/// A test stablecoin to deploy.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    /// ERC-20 name.
    pub name: String,
    /// Ticker.
    pub symbol: String,
    /// Decimals of the base unit.
    pub decimals: u8,
    /// Whole tokens minted to every dev wallet.
    pub mint_per_wallet_whole: u64,
}

/// Outflow limit a real deployment should use: 10% of a token's ledger supply per window
/// ([`DEFAULT_OUTFLOW_PERIOD_S`]) leaves without delay; see [`DeployConfig::outflow_limit_bps`].
pub const DEFAULT_OUTFLOW_LIMIT_BPS: u16 = 1_000;
/// Length of an outflow window a real deployment should use: one day.
pub const DEFAULT_OUTFLOW_PERIOD_S: u64 = 86_400;
/// Extra finalization delay of a batch over the outflow limit a real deployment should use:
/// seven days.
pub const DEFAULT_OUTFLOW_DELAY_S: u64 = 7 * 86_400;

/// What to deploy and with which parameters.
///
/// [`Default`] is the devnet's configuration (short periods, no outflow limit), which the
/// end-to-end tests use too; [`DeployConfig::with_default_outflow_limit`] turns the limit on
/// with the values a real deployment should use.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// Test stablecoins, all added to the settlement allowlist.
    pub tokens: Vec<TokenSpec>,
    /// Seconds between a batch's commit and its withdrawals becoming claimable.
    pub finalization_delay_s: u64,
    /// Seconds the operator has to consume a deposit before exodus may be activated.
    pub deposit_deadline_s: u64,
    /// Seconds the operator has to serve a forced withdrawal.
    pub forced_deadline_s: u64,
    /// Per token and outflow window, the share (basis points of the token's ledger supply at
    /// the window's start) that batches may withdraw without delay; a batch that takes the
    /// window's outflow past it finalizes [`Self::outflow_delay_s`] later, and so do the
    /// batches after it. 0 = no limit, which the contract accepts only where short periods are
    /// allowed (chain id 31337 or [`Self::allow_short_periods`]). Devnet default: 0, so that
    /// tests that deposit and withdraw within a day are not delayed (a fresh deployment's
    /// first window has no allowance at all). Real deployments:
    /// [`DEFAULT_OUTFLOW_LIMIT_BPS`].
    pub outflow_limit_bps: u16,
    /// Length of an outflow window, at least [`Self::finalization_delay_s`] (default
    /// [`DEFAULT_OUTFLOW_PERIOD_S`]).
    pub outflow_period_s: u64,
    /// Extra finalization delay of a batch over the outflow limit, at least
    /// [`Self::finalization_delay_s`] (default [`DEFAULT_OUTFLOW_DELAY_S`]).
    pub outflow_delay_s: u64,
    /// Deploy the INSECURE dev-keys verifier on a chain whose id is not anvil's (31337): for
    /// test chains with another id only. Off: [`deploy`] refuses such a chain.
    pub allow_dev_keys_off_devnet: bool,
    /// Waive the contract's period minimums (`MIN_FINALIZATION_DELAY` = 1 hour,
    /// `MIN_DEADLINE_PERIOD` = 1 day; its `allowShortPeriods` flag). Not needed on the devnet:
    /// the contract waives them on chain id 31337 ([`crate::DEV_CHAIN_ID`]) anyway.
    pub allow_short_periods: bool,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            tokens: vec![
                TokenSpec {
                    name: "Stablelane Test USD Coin".into(),
                    symbol: "USDC".into(),
                    decimals: 6,
                    mint_per_wallet_whole: 1_000_000,
                },
                TokenSpec {
                    name: "Stablelane Test Dai".into(),
                    symbol: "DAI".into(),
                    decimals: 18,
                    mint_per_wallet_whole: 1_000_000,
                },
            ],
            finalization_delay_s: 10,
            deposit_deadline_s: 3_600,
            forced_deadline_s: 3_600,
            outflow_limit_bps: 0,
            outflow_period_s: DEFAULT_OUTFLOW_PERIOD_S,
            outflow_delay_s: DEFAULT_OUTFLOW_DELAY_S,
            allow_dev_keys_off_devnet: false,
            allow_short_periods: false,
        }
    }
}

impl DeployConfig {
    /// This configuration with the outflow limit a real deployment should use:
    /// [`DEFAULT_OUTFLOW_LIMIT_BPS`] per [`DEFAULT_OUTFLOW_PERIOD_S`], delaying a batch over it
    /// by [`DEFAULT_OUTFLOW_DELAY_S`].
    pub fn with_default_outflow_limit(self) -> Self {
        Self {
            outflow_limit_bps: DEFAULT_OUTFLOW_LIMIT_BPS,
            outflow_period_s: DEFAULT_OUTFLOW_PERIOD_S,
            outflow_delay_s: DEFAULT_OUTFLOW_DELAY_S,
            ..self
        }
    }
}

/// Who holds which role in a deployment.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    /// Governance (two-step ownership): proposes operator and token changes, which take
    /// effect after the contract's timelock.
    pub owner: Address,
    /// Commits batches.
    pub operator: Address,
    /// May activate exodus at once, voiding the batches still in their window (zero: no
    /// guardian).
    pub guardian: Address,
    /// Signs receipt groups (non-zero); rotated by the owner through the same timelock as the
    /// operator.
    pub receipt_signer: Address,
}

/// Addresses of a deployment.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Settlement contract.
    pub settlement: Address,
    /// Verifier the settlement contract uses.
    pub verifier: Address,
    /// Block of the settlement contract's deployment.
    pub deploy_block: u64,
    /// Tokens, in allowlist order.
    pub tokens: Vec<TokenInfo>,
}

/// Root of the empty depth-32 Poseidon state tree: the genesis root of every deployment.
pub fn genesis_root() -> B256 {
    B256::from(stablelane_circuits::field::fr_to_be_bytes(
        &stablelane_circuits::tree::empty_root(),
    ))
}

/// Deploys the verifier, the test stablecoins and the settlement contract from the
/// [`Roles`]' owner (which `provider` must be able to sign for), with its operator as batch
/// committer, its guardian and its receipt signer, and mints each token to every address in
/// `wallets`.
///
/// The verifier is [`Groth16Verifier`], generated by the circuits crate from the verifying
/// key of the INSECURE deterministic dev setup (`stablelane_circuits::keys::insecure_dev_setup`):
/// anyone can forge proofs for it, which is fine on a devnet and nowhere else: on a chain
/// whose id is not anvil's (31337) it refuses to deploy ([`Error::InsecureDevKeys`]) unless
/// [`DeployConfig::allow_dev_keys_off_devnet`].
pub async fn deploy(
    provider: &DynProvider,
    roles: Roles,
    wallets: &[Address],
    config: &DeployConfig,
) -> Result<Deployment> {
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|e| contract_err("eth_chainId", e))?;
    stablelane_circuits::keys::check_dev_keys_allowed(
        chain_id,
        &stablelane_circuits::keys::INSECURE_DEV_VERIFYING_KEY_HASH,
        config.allow_dev_keys_off_devnet,
    )
    .map_err(Error::InsecureDevKeys)?;
    let verifier = Groth16Verifier::deploy(provider.clone())
        .await
        .map_err(|e| contract_err("deploy verifier", e))?;
    info!(target: "devnet", verifier = %verifier.address(), "Groth16 verifier deployed (generated from the INSECURE dev setup keys)");

    let mut tokens = Vec::with_capacity(config.tokens.len());
    for spec in &config.tokens {
        let token = TestStablecoin::deploy(
            provider.clone(),
            spec.name.clone(),
            spec.symbol.clone(),
            spec.decimals,
            roles.owner,
        )
        .await
        .map_err(|e| contract_err(format!("deploy {}", spec.symbol), e))?;
        let amount = U256::from(spec.mint_per_wallet_whole)
            .checked_mul(U256::from(10u64).pow(U256::from(spec.decimals)))
            .ok_or_else(|| contract_err("mint amount", std::fmt::Error))?;
        for wallet in wallets {
            token
                .mint(*wallet, amount)
                .from(roles.owner)
                .send()
                .await
                .map_err(|e| contract_err(format!("mint {}", spec.symbol), e))?
                .get_receipt()
                .await
                .map_err(|e| contract_err(format!("mint {} receipt", spec.symbol), e))?;
        }
        info!(target: "devnet", symbol = %spec.symbol, address = %token.address(), wallets = wallets.len(), "token deployed and minted");
        tokens.push(TokenInfo {
            symbol: spec.symbol.clone(),
            address: *token.address(),
            decimals: spec.decimals,
        });
    }

    let settlement = Settlement::deploy(
        provider.clone(),
        roles.owner,
        roles.operator,
        roles.guardian,
        roles.receipt_signer,
        *verifier.address(),
        genesis_root(),
        tokens.iter().map(|t| t.address).collect(),
        Settlement::Periods {
            finalizationDelay: config.finalization_delay_s,
            depositDeadlinePeriod: config.deposit_deadline_s,
            forcedDeadlinePeriod: config.forced_deadline_s,
            allowShortPeriods: config.allow_short_periods,
        },
        Settlement::OutflowConfig {
            limitBps: config.outflow_limit_bps,
            period: config.outflow_period_s,
            delay: config.outflow_delay_s,
        },
    )
    .await
    .map_err(|e| contract_err("deploy settlement", e))?;
    let deploy_block = provider
        .get_block_number()
        .await
        .map_err(|e| contract_err("eth_blockNumber", e))?;
    info!(target: "devnet", settlement = %settlement.address(), block = deploy_block, "settlement deployed");

    Ok(Deployment {
        settlement: *settlement.address(),
        verifier: *verifier.address(),
        deploy_block,
        tokens,
    })
}
