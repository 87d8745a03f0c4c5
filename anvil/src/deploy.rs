//! Deploying the settlement contracts and minting test stablecoins.

use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
};
use stablelane_contracts::{DisabledVerifier, Settlement, TestStablecoin};
use tracing::info;

use crate::{contract_err, Result, TokenInfo};

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

/// What to deploy and with which parameters.
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
        }
    }
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

/// Deploys the verifier, the test stablecoins and the settlement contract from `owner`
/// (which `provider` must be able to sign for), with `operator` as batch committer, and
/// mints each token to every address in `wallets`.
///
/// The verifier is [`DisabledVerifier`], which rejects every proof, until the verifier
/// generated from the circuit's verifying key exists: exits and attestations fail closed.
pub async fn deploy(
    provider: &DynProvider,
    owner: Address,
    operator: Address,
    wallets: &[Address],
    config: &DeployConfig,
) -> Result<Deployment> {
    let verifier = DisabledVerifier::deploy(provider.clone())
        .await
        .map_err(|e| contract_err("deploy verifier", e))?;
    info!(target: "devnet", verifier = %verifier.address(), "verifier deployed (rejects every proof)");

    let mut tokens = Vec::with_capacity(config.tokens.len());
    for spec in &config.tokens {
        let token = TestStablecoin::deploy(
            provider.clone(),
            spec.name.clone(),
            spec.symbol.clone(),
            spec.decimals,
            owner,
        )
        .await
        .map_err(|e| contract_err(format!("deploy {}", spec.symbol), e))?;
        let amount = U256::from(spec.mint_per_wallet_whole)
            .checked_mul(U256::from(10u64).pow(U256::from(spec.decimals)))
            .ok_or_else(|| contract_err("mint amount", std::fmt::Error))?;
        for wallet in wallets {
            token
                .mint(*wallet, amount)
                .from(owner)
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
        owner,
        operator,
        *verifier.address(),
        genesis_root(),
        tokens.iter().map(|t| t.address).collect(),
        config.finalization_delay_s,
        config.deposit_deadline_s,
        config.forced_deadline_s,
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
