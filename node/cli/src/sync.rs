//! `stablelane chain-sync`: rebuilds the state tree from the L2 alone and checks every
//! committed root — what anyone can run to watch an operator, and the base of the exit tool.

use alloy::primitives::Address;
use clap::Args;
use eyre::{Context as _, Result};
use stablelane::sync::{chain_sync, ChainSyncConfig};

/// `stablelane chain-sync …`
#[derive(Debug, Args)]
pub struct ChainSyncArgs {
    /// The L2's JSON-RPC URL.
    #[arg(long, env = "STABLELANE_L2_RPC_URL")]
    l2_rpc: String,
    /// The settlement contract.
    #[arg(long, env = "STABLELANE_SETTLEMENT")]
    settlement: Address,
    /// Block to scan from (the contract's deployment block; 0 scans everything).
    #[arg(long, default_value_t = 0)]
    from_block: u64,
    /// Most blocks per eth_getLogs request.
    #[arg(long, default_value_t = 2_000)]
    max_block_range: u64,
    /// Stop after this batch and check against the root the contract recorded for it
    /// (default: every committed batch, checked against stateRoot).
    #[arg(long)]
    up_to: Option<u64>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the sync and prints what it verified.
pub async fn run(args: ChainSyncArgs) -> Result<()> {
    let config = ChainSyncConfig {
        l2_rpc_url: args.l2_rpc.clone(),
        settlement: args.settlement,
        from_block: args.from_block,
        max_block_range: args.max_block_range,
        up_to: args.up_to,
    };
    let state = chain_sync(&config, |p| {
        eprintln!(
            "chain-sync: batch {}/{} verified (L2 block {})",
            p.batches_done, p.batches_total, p.l2_block
        );
    })
    .await
    .wrap_err("chain-sync failed")?;
    if args.json {
        let batches: Vec<serde_json::Value> = state
            .batches()
            .iter()
            .map(|b| {
                serde_json::json!({
                    "number": b.number,
                    "newRoot": b.new_root,
                    "l2TxHash": b.l2_tx_hash,
                    "l2Block": b.l2_block,
                    "leavesChanged": b.leaves_changed,
                    "newSlots": b.new_slots,
                    "withdrawals": b.withdrawals,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "lastBatch": state.last_batch(),
                "root": state.root(),
                "slots": state.slots().len(),
                "batches": batches,
            }))?
        );
    } else {
        for b in state.batches() {
            println!(
                "batch {:>6}  root {}  {} leaves, {} new slots, {} withdrawals  (L2 block {}, tx {})",
                b.number,
                b.new_root,
                b.leaves_changed,
                b.new_slots,
                b.withdrawals,
                b.l2_block,
                b.l2_tx_hash
            );
        }
        println!(
            "verified {} batches: every committed root rebuilt from calldata; state root {} over {} slots",
            state.last_batch(),
            state.root(),
            state.slots().len()
        );
    }
    Ok(())
}
