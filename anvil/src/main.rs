//! `stablelane-devnet`: runs anvil, deploys Stablelane's contracts, mints test stablecoins,
//! writes `anvil/devnet.json` and stays up until interrupted (`make devnet`).

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    time::Duration,
};

use clap::Parser;
use eyre::{bail, Context, Result};
use stablelane_devnet::{tools::repo_root, DeployConfig, Devnet, DevnetOptions};
use tracing_subscriber::EnvFilter;

/// Local Stablelane devnet on anvil.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Loopback port for anvil's JSON-RPC.
    #[arg(long, default_value_t = 8545, env = "STABLELANE_DEVNET_PORT")]
    port: u16,
    /// Seconds between blocks (default: a block per transaction).
    #[arg(long)]
    block_time: Option<u64>,
    /// Dev accounts to create (owner, operator, then wallets).
    #[arg(long, default_value_t = 10)]
    accounts: usize,
    /// Seconds before a committed withdrawal can be claimed.
    #[arg(long, default_value_t = 10)]
    finalization_delay: u64,
    /// Where to write the devnet description.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Directory for the pid file of a running devnet.
    #[arg(long)]
    run_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(true)
        .init();
    let args = Args::parse();
    let out = args
        .out
        .unwrap_or_else(|| repo_root().join("anvil").join("devnet.json"));
    let run_dir = args
        .run_dir
        .unwrap_or_else(|| repo_root().join("anvil").join("run"));
    std::fs::create_dir_all(&run_dir)
        .wrap_err_with(|| format!("creating {}", run_dir.display()))?;
    let pid_file = run_dir.join("anvil.pid");

    // Leftovers of an interrupted run: a stale description and possibly its anvil.
    remove_if_exists(&out)?;
    stop_stale_anvil(&pid_file)?;
    if TcpListener::bind(("127.0.0.1", args.port)).is_err() {
        bail!(
            "port {} is in use by another program; stop it or pass --port <free port>",
            args.port
        );
    }

    let options = DevnetOptions {
        port: args.port,
        block_time_s: args.block_time,
        accounts: args.accounts,
        deploy: DeployConfig {
            finalization_delay_s: args.finalization_delay,
            ..DeployConfig::default()
        },
    };
    let devnet = Devnet::start(options).await.wrap_err("starting devnet")?;
    std::fs::write(&pid_file, devnet.anvil_pid().to_string())
        .wrap_err_with(|| format!("writing {}", pid_file.display()))?;
    let description = devnet.description();
    description
        .write(&out)
        .wrap_err_with(|| format!("writing {}", out.display()))?;

    println!();
    println!(
        "Stablelane devnet is up (anvil, chain id {})",
        description.chain_id
    );
    println!("  L2 RPC        {}", description.l2_rpc_url);
    println!("  settlement    {}", description.settlement);
    println!(
        "  verifier      {}  (rejects every proof until the generated verifier lands)",
        description.verifier
    );
    for token in &description.tokens {
        println!(
            "  {:<13} {}  ({} decimals)",
            token.symbol, token.address, token.decimals
        );
    }
    println!("  owner         {}", description.owner.address);
    println!("  operator      {}", description.operator.address);
    println!(
        "  dev wallets   {} funded accounts (keys in {})",
        description.dev_accounts.len(),
        out.display()
    );
    println!();
    println!("Press Ctrl-C to stop.");

    wait_for_shutdown().await?;
    println!("stopping devnet");
    drop(devnet);
    remove_if_exists(&out)?;
    remove_if_exists(&pid_file)?;
    Ok(())
}

async fn wait_for_shutdown() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.wrap_err("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).wrap_err_with(|| format!("removing {}", path.display())),
    }
}

/// Stops the anvil a previous, interrupted run left behind, if its pid file names a live
/// anvil process (Linux: checked through /proc).
fn stop_stale_anvil(pid_file: &Path) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return Ok(());
    };
    remove_if_exists(pid_file)?;
    let Ok(pid) = text.trim().parse::<u32>() else {
        return Ok(());
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&cmdline).contains("anvil") {
        return Ok(());
    }
    tracing::warn!(target: "devnet", pid, "stopping anvil left over from an earlier run");
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status();
    for _ in 0..50 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    Ok(())
}
