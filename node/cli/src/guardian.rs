//! `stablelane guardian`: what the settlement contract's guardian can do, and nothing more.
//!
//! The guardian (a separate key, a multisig in production) may start exodus at once with
//! `guardianExodus()`: every batch still in its window is voided, withdrawals of void
//! batches are never paid, and users exit against the last finalized root. It is the answer
//! to a stolen operator key committing a draining or unopenable batch, and must be used
//! inside that batch's window (the contract's finalization delay).

use alloy::primitives::Address;
use clap::{Args, Subcommand};
use eyre::{bail, eyre, Result};
use stablelane_contracts::Settlement;

use crate::wallet::{connect_l2, KeyArgs};

/// `stablelane guardian …`
#[derive(Debug, Args)]
pub struct GuardianArgs {
    #[command(flatten)]
    key: KeyArgs,
    /// The L2's JSON-RPC URL.
    #[arg(long, env = "STABLELANE_L2_RPC_URL")]
    l2_rpc: String,
    /// The settlement contract.
    #[arg(long, env = "STABLELANE_SETTLEMENT")]
    settlement: Address,
    #[command(subcommand)]
    command: GuardianCommand,
}

#[derive(Debug, Subcommand)]
enum GuardianCommand {
    /// Prints what the guardian would act on: the last batch, the last finalized one, and the
    /// batches still in their window (which `exodus` would void).
    Status,
    /// Starts exodus now, voiding every batch still in its window (final: no batch is ever
    /// committed again). Requires --yes.
    Exodus {
        /// Confirms that exodus is what you want.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs a guardian command.
pub async fn run(args: GuardianArgs) -> Result<()> {
    let key = args.key.signer()?;
    let (provider, _) = connect_l2(&args.l2_rpc, &key).await?;
    let settlement = Settlement::new(args.settlement, &provider);
    let guardian = settlement.guardian().call().await?;
    let last = settlement.lastBatchNumber().call().await?;
    let finalized = settlement.lastFinalizedBatchNumber().call().await?;
    let exodus = settlement.exodus().call().await?;
    match args.command {
        GuardianCommand::Status => {
            println!("guardian           {guardian}");
            println!("exodus             {exodus}");
            println!("last batch         {last}");
            println!("last finalized     {finalized}");
            if exodus {
                println!(
                    "exit root batch    {}",
                    settlement.exodusBatchNumber().call().await?
                );
            } else if last > finalized {
                println!("in their window    {}..={last}", finalized + 1);
            } else {
                println!("in their window    none");
            }
        }
        GuardianCommand::Exodus { yes } => {
            if guardian != key.address() {
                bail!(
                    "this key ({}) is not the contract's guardian ({guardian})",
                    key.address()
                );
            }
            if exodus {
                bail!("the contract is already in exodus mode");
            }
            if !yes {
                bail!("exodus is final (batches {}..={last} would be void, no batch is ever committed again): pass --yes", finalized + 1);
            }
            let receipt = settlement
                .guardianExodus()
                .send()
                .await
                .map_err(|e| eyre!("guardianExodus: {e}"))?
                .get_receipt()
                .await?;
            if !receipt.status() {
                bail!("guardianExodus {} reverted", receipt.transaction_hash);
            }
            let at = settlement.exodusBatchNumber().call().await?;
            println!(
                "exodus started at batch {at} (batches after it are void): {}",
                receipt.transaction_hash
            );
        }
    }
    Ok(())
}
