//! `stablelane-devnet`: runs anvil, deploys Stablelane's contracts, mints test stablecoins,
//! with `--node` starts a Stablelane node and runs a demo payment, writes
//! `anvil/devnet.json` and stays up until interrupted (`make devnet`).

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
    /// Seconds between blocks; 0: a block per transaction only. Blocks keep coming like on a
    /// real L2, so chain time moves and committed batches finalize.
    #[arg(long, default_value_t = 1)]
    block_time: u64,
    /// Dev accounts to create (owner, operator, guardian, then wallets).
    #[arg(long, default_value_t = 10)]
    accounts: usize,
    /// Seconds before a committed withdrawal can be claimed (at least 1; chain id 31337
    /// waives the contract's 1-hour minimum).
    #[arg(long, default_value_t = 10)]
    finalization_delay: u64,
    /// Where to write the devnet description.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Directory for the pid files, the node's config, data and log.
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// The `stablelane` binary: with it, the devnet also runs a node and a demo payment.
    #[arg(long)]
    node: Option<PathBuf>,
    /// Port of the node's wallet API (the admin API takes the next one).
    #[arg(long, default_value_t = 8645)]
    node_port: u16,
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
    let node_pid_file = run_dir.join("node.pid");

    // Leftovers of an interrupted run: a stale description and possibly its anvil and node.
    remove_if_exists(&out)?;
    stop_stale(&node_pid_file, "stablelane")?;
    stop_stale(&pid_file, "anvil")?;
    let mut ports = vec![args.port];
    if args.node.is_some() {
        ports.extend([args.node_port, args.node_port.saturating_add(1)]);
    }
    for port in ports {
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            bail!("port {port} is in use by another program; stop it or pick other ports (--port, --node-port)");
        }
    }

    let options = DevnetOptions {
        port: args.port,
        block_time_s: (args.block_time > 0).then_some(args.block_time),
        accounts: args.accounts,
        deploy: DeployConfig {
            finalization_delay_s: args.finalization_delay,
            ..DeployConfig::default()
        },
        ..DevnetOptions::default()
    };
    let devnet = Devnet::start(options).await.wrap_err("starting devnet")?;
    std::fs::write(&pid_file, devnet.anvil_pid().to_string())
        .wrap_err_with(|| format!("writing {}", pid_file.display()))?;
    let mut description = devnet.description().clone();
    let mut node = None;
    if let Some(binary) = &args.node {
        let config = stablelane_devnet::node::write_config(
            &description,
            &run_dir,
            args.node_port,
            args.node_port.saturating_add(1),
        )?;
        let log = run_dir.join("node.log");
        println!("starting the node (log: {})", log.display());
        let process = stablelane_devnet::node::start(binary, &config, &log, &description)?;
        std::fs::write(&node_pid_file, process.pid().to_string())
            .wrap_err_with(|| format!("writing {}", node_pid_file.display()))?;
        stablelane_devnet::node::demo(&description, &process, binary)
            .await
            .wrap_err("the demo payment failed")?;
        description.node_rpc_url = Some(process.rpc_url.clone());
        description.admin_rpc_url = Some(process.admin_url.clone());
        description.admin_token = Some(process.admin_token.clone());
        node = Some(process);
    }
    // Written only once everything answers.
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
        "  verifier      {}  (Groth16, generated from the INSECURE dev setup keys)",
        description.verifier
    );
    for token in &description.tokens {
        println!(
            "  {:<13} {}  ({} decimals)",
            token.symbol, token.address, token.decimals
        );
    }
    if let (Some(rpc), Some(admin)) = (&description.node_rpc_url, &description.admin_rpc_url) {
        println!("  node RPC      {rpc}  (HTTP and WebSocket)");
        println!(
            "  node admin    {admin}  (bearer token in {})",
            out.display()
        );
        println!("  batches       sealed after 5 s or on admin_sealBatch, committed by the node's settler");
    }
    println!("  owner         {}", description.owner.address);
    println!("  operator      {}", description.operator.address);
    println!("  guardian      {}", description.guardian.address);
    println!(
        "  dev wallets   {} funded accounts (keys in {})",
        description.dev_accounts.len(),
        out.display()
    );
    println!();
    println!("Press Ctrl-C to stop.");

    wait_for_shutdown().await?;
    println!("stopping devnet");
    if let Some(mut node) = node {
        node.stop();
    }
    remove_if_exists(&node_pid_file)?;
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

/// Stops the process a previous, interrupted run left behind, if `pid_file` names a live
/// process whose command line contains `name` (Linux: checked through /proc).
fn stop_stale(pid_file: &Path, name: &str) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return Ok(());
    };
    remove_if_exists(pid_file)?;
    let Ok(pid) = text.trim().parse::<u32>() else {
        return Ok(());
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&cmdline).contains(name) {
        return Ok(());
    }
    tracing::warn!(target: "devnet", pid, name, "stopping a process left over from an earlier run");
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
