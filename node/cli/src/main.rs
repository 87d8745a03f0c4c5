//! `stablelane`: run a settlement node, or use one as a wallet.
//!
//! ```text
//! stablelane node --config node.toml          # the node (journal + sled + JSON-RPC)
//! stablelane journal verify --config node.toml  # offline replay check of a data directory
//! stablelane config example                   # the documented example configuration
//! stablelane wallet transfer --to 0x… --amount 1.25 --token USDC
//! stablelane chain-sync --l2-rpc http://… --settlement 0x…   # verify the operator
//! stablelane bench --admin http://127.0.0.1:8646 --transfers 100000   # load generator
//! stablelane wallet attest --token USDC --threshold 20 --out att.json  # ask for a proof
//! stablelane verify-attestation --attestation att.json --verifying-key keys/verifying.key
//! stablelane keys setup --out-dir keys --random   # Groth16 key files (docs/keys.md)
//! ```

mod bench;
mod config;
mod guardian;
mod keys;
mod node;
mod receipt_store;
mod sync;
mod wallet;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::NodeConfig;

/// mimalloc: the node allocates per request (JSON, HTTP, receipts); glibc's malloc showed
/// up at about 12% of the node's CPU under load (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "stablelane",
    version,
    about = "Stablelane settlement node and wallet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the node until SIGINT/SIGTERM.
    Node {
        /// TOML configuration (see `stablelane config example`); environment variables
        /// STABLELANE_<KEY> override it.
        #[arg(long, env = "STABLELANE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Checks a data directory offline.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// A wallet for a node's JSON-RPC API.
    Wallet(wallet::WalletArgs),
    /// Rebuilds the state tree from the L2 alone (commit calldata) and checks every
    /// committed root.
    ChainSync(sync::ChainSyncArgs),
    /// Load generator: funds accounts, pre-signs transfers, sends them, reports throughput
    /// and latency.
    Bench(bench::BenchArgs),
    /// Groth16 key files of the attestation circuit.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Checks a balance attestation: its proof in Rust, the statement against what you
    /// expect, and with --l2-rpc the deployed contracts.
    VerifyAttestation(keys::VerifyAttestationArgs),
    /// The settlement contract's guardian: inspect the batches in their window, or start
    /// exodus at once, voiding them (its only power).
    Guardian(guardian::GuardianArgs),
}

#[derive(Debug, Subcommand)]
enum JournalCommand {
    /// Replays the journal (the node must be stopped): every record must apply and supply
    /// must be conserved; prints the record count and the root recomputed from scratch.
    Verify {
        /// The node's configuration.
        #[arg(long, env = "STABLELANE_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Prints the documented example configuration.
    Example,
}

fn env_vars() -> Vec<(String, String)> {
    std::env::vars().collect()
}

fn init_tracing(default: &str) {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| default.to_string());
    // arkworks instruments every constraint gadget with an INFO span that records its
    // arguments, the whole constraint system included: enabled, one proof takes minutes.
    let directives = if directives.contains("r1cs") {
        directives
    } else {
        format!("{directives},gr1cs=off,r1cs=off")
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run(cli: Cli) -> eyre::Result<ExitCode> {
    let env = env_vars();
    let done = match cli.command {
        Command::Node { config } => {
            let config = NodeConfig::load(config.as_deref(), &env)?;
            init_tracing(&config.log);
            node::run(config, &env).await
        }
        Command::Journal(JournalCommand::Verify { config }) => {
            let config = NodeConfig::load(config.as_deref(), &env)?;
            init_tracing("warn");
            let verified = node::verify(&config, &env)?;
            println!("{}", serde_json::to_string_pretty(&verified)?);
            Ok(())
        }
        Command::Config(ConfigCommand::Example) => {
            print!("{}", config::EXAMPLE);
            Ok(())
        }
        Command::Wallet(args) => {
            init_tracing("warn");
            wallet::run(args).await
        }
        Command::ChainSync(args) => {
            init_tracing("warn");
            sync::run(args).await
        }
        Command::Bench(args) => {
            init_tracing("warn");
            bench::run(args).await
        }
        Command::Keys(command) => {
            init_tracing("warn");
            keys::run(command)
        }
        Command::Guardian(args) => {
            init_tracing("warn");
            guardian::run(args).await
        }
        Command::VerifyAttestation(args) => {
            init_tracing("warn");
            // Valid only if the root was checked; a proof that holds for an unchecked root
            // exits with its own status.
            return Ok(if keys::verify_attestation(&args).await? {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(keys::ROOT_NOT_CHECKED_EXIT)
            });
        }
    };
    done.map(|()| ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks over every command and argument (a required global
    /// argument, a conflicting name, …), which otherwise fire only when that command runs.
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
