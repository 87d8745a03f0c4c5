//! The devnet's node and demo payment (`stablelane-devnet --node <stablelane binary>`):
//! writes a node config for the fresh deployment, starts `stablelane node` with the
//! operator's key, waits until it answers, then runs the demo: an on-chain deposit credited
//! by the node, an off-chain payment, and a withdrawal that a batch carries on-chain and the
//! payee claims with the wallet CLI, printing each step.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{primitives::U256, signers::local::PrivateKeySigner};
use eyre::{bail, eyre, Context as _, Result};
use jsonrpsee::http_client::HttpClientBuilder;
use stablelane::{
    rpc::{
        authenticate, AdminApiClient, LaneApiClient, TokenInfo as NodeToken, TxStatus,
        AUTHENTICATION_VALIDITY_DEFAULT_S, GET_ACCOUNT_PURPOSE,
    },
    Amount, Transfer, Withdrawal,
};
use stablelane_contracts::{Settlement, TestStablecoin};

use crate::{wallet_provider, DevnetDescription};

/// A running `stablelane node`; stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct NodeProcess {
    child: Child,
    /// Wallet API URL.
    pub rpc_url: String,
    /// Admin API URL.
    pub admin_url: String,
    /// Admin bearer token.
    pub admin_token: String,
}

impl NodeProcess {
    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and wait up to 10 s, then SIGKILL.
    pub fn stop(&mut self) {
        // Ctrl-C in a terminal reaches the node too; it may already be gone.
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Minimum fee of the devnet's tokens: 0.01 of a token.
fn minimum_fee(decimals: u8) -> u128 {
    10u128.pow(u32::from(decimals.saturating_sub(2)))
}

fn random_token() -> Result<String> {
    let mut bytes = [0u8; 24];
    let mut urandom = std::fs::File::open("/dev/urandom")?;
    std::io::Read::read_exact(&mut urandom, &mut bytes)?;
    Ok(alloy::hex::encode(bytes))
}

/// Writes the node's config for `description` into `run_dir/node.toml`, with a fresh data
/// directory (the chain is fresh too).
pub fn write_config(
    description: &DevnetDescription,
    run_dir: &Path,
    port: u16,
    admin_port: u16,
) -> Result<PathBuf> {
    let data_dir = run_dir.join("node-data");
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)
            .wrap_err_with(|| format!("removing the old {}", data_dir.display()))?;
    }
    let mut text = format!(
        "# Written by stablelane-devnet for this devnet run; recreated every run.\n\
         data_dir = \"{data}\"\nchain_id = {chain_id}\nsettlement = \"{settlement}\"\n\n\
         [rpc]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{admin_port}\"\n\n\
         # anvil's `finalized` tag lags 64 blocks (a minute at one block a second): the\n\
         # devnet credits at the head instead, to stay fast. Production keeps \"finalized\".\n\
         [chain]\nl2_rpc_url = \"{l2}\"\nfinality = \"confirmations\"\nconfirmations = 1\npoll_interval_ms = 250\nstart_block = {start}\n\n\
         [batch]\nmax_age_ms = 5000\nresend_after_s = 15\n\n\
         # INSECURE dev setup keys (published seed): matches the verifier the devnet deploys.\n\
         [prover]\ninsecure_dev_keys = true\n",
        data = data_dir.display(),
        chain_id = description.chain_id,
        settlement = description.settlement,
        l2 = description.l2_rpc_url,
        start = description.deploy_block,
    );
    for token in &description.tokens {
        text.push_str(&format!(
            "\n[[tokens]]\naddress = \"{}\"\nsymbol = \"{}\"\ndecimals = {}\nminimum_fee = \"{}\"\n",
            token.address,
            token.symbol,
            token.decimals,
            minimum_fee(token.decimals)
        ));
    }
    let path = run_dir.join("node.toml");
    std::fs::write(&path, text).wrap_err_with(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Starts `binary node --config config`, logging to `log`, and waits (60 s at most) for
/// its ready line.
pub fn start(
    binary: &Path,
    config: &Path,
    log: &Path,
    description: &DevnetDescription,
) -> Result<NodeProcess> {
    let admin_token = random_token()?;
    let log_file =
        std::fs::File::create(log).wrap_err_with(|| format!("creating {}", log.display()))?;
    let mut child = Command::new(binary)
        .args(["node", "--config"])
        .arg(config)
        .env("STABLELANE_OPERATOR_KEY", &description.operator.private_key)
        .env(
            "STABLELANE_RECEIPT_KEY",
            &description.receipt_signer.private_key,
        )
        .env("STABLELANE_ADMIN_TOKEN", &admin_token)
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .wrap_err_with(|| format!("starting {}", binary.display()))?;
    let (rpc_url, admin_url) = match wait_until_ready(&mut child, Duration::from_secs(60)) {
        Ok(urls) => urls,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e.wrap_err(format!("the node did not start; see {}", log.display())));
        }
    };
    Ok(NodeProcess {
        child,
        rpc_url,
        admin_url,
        admin_token,
    })
}

/// Waits up to `timeout` for the ready line `stablelane node` prints on its (piped) stdout
/// and returns the wallet and admin API URLs it names.
pub fn wait_until_ready(child: &mut Child, timeout: Duration) -> Result<(String, String)> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| eyre!("the node's stdout is not piped"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("stablelane node ready:") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(timeout)
        .map_err(|_| eyre!("no ready line within {} s", timeout.as_secs()))?;
    // "stablelane node ready: rpc <url> admin <url>"
    let words: Vec<&str> = line.split_whitespace().collect();
    match (words.get(4), words.get(6)) {
        (Some(rpc), Some(admin)) => Ok(((*rpc).to_owned(), (*admin).to_owned())),
        _ => bail!("unexpected ready line {line:?}"),
    }
}

/// The demo: dev wallet 0 deposits 100 USDC on-chain, the node credits it, wallet 0 pays 25
/// USDC to wallet 1 off-chain, wallet 1 withdraws 10 USDC, the batch carrying it is
/// committed on-chain and finalized, and wallet 1 claims it with `binary wallet claim`.
/// The account of `key` (balances and nonces are told only to their owner: each wallet
/// authenticates its reads).
async fn account_of(
    client: &jsonrpsee::http_client::HttpClient,
    key: &PrivateKeySigner,
    token: alloy::primitives::Address,
    domain: &alloy::sol_types::Eip712Domain,
) -> Result<stablelane::rpc::Account> {
    let auth = authenticate(
        key,
        GET_ACCOUNT_PURPOSE,
        AUTHENTICATION_VALIDITY_DEFAULT_S,
        domain,
    )?;
    Ok(client.get_account(key.address(), token, auth).await?)
}

/// Prints each step.
pub async fn demo(
    description: &DevnetDescription,
    node: &NodeProcess,
    binary: &Path,
) -> Result<()> {
    let (Some(alice_account), Some(bob_account)) = (
        description.dev_accounts.first(),
        description.dev_accounts.get(1),
    ) else {
        bail!("the demo needs two dev wallets");
    };
    let alice: PrivateKeySigner = alice_account.private_key.parse()?;
    let bob = bob_account.address;
    let bob_key: PrivateKeySigner = bob_account.private_key.parse()?;
    let client = HttpClientBuilder::default().build(&node.rpc_url)?;
    let info = client.chain_info().await?;
    let domain = stablelane::domain(info.chain_id, info.settlement);
    let usdc: NodeToken = info
        .token("USDC")
        .cloned()
        .ok_or_else(|| eyre!("the node has no USDC"))?;
    let deposit = Amount::from_human("100", usdc.decimals)?;
    let payment = Amount::from_human("25", usdc.decimals)?;

    println!(
        "demo: {} deposits 100 USDC into the settlement contract",
        alice.address()
    );
    let provider = wallet_provider(&description.l2_rpc_url, std::slice::from_ref(&alice))?;
    TestStablecoin::new(usdc.address, provider.clone())
        .approve(description.settlement, U256::from(deposit.base_units()))
        .send()
        .await?
        .get_receipt()
        .await?;
    let receipt = Settlement::new(description.settlement, provider)
        .deposit(
            usdc.address,
            U256::from(deposit.base_units()),
            alice.address(),
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    if !receipt.status() {
        bail!("the demo deposit reverted");
    }
    println!(
        "demo: deposit mined in block {}; waiting for the node to credit it",
        receipt.block_number.unwrap_or_default()
    );
    let started = Instant::now();
    loop {
        let account = account_of(&client, &alice, usdc.address, &domain).await?;
        if account.balance >= deposit {
            println!(
                "demo: credited off-chain after {} ms: {} USDC",
                started.elapsed().as_millis(),
                account.balance.to_human(usdc.decimals)
            );
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the node did not credit the deposit within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let account = account_of(&client, &alice, usdc.address, &domain).await?;
    let transfer = Transfer {
        from: alice.address(),
        to: bob,
        token: usdc.address,
        amount: payment,
        fee: usdc.minimum_fee,
        nonce: account.nonce,
        valid_until: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            + 600,
    };
    let signed = stablelane::sign(&alice, transfer, &domain)?;
    let started = Instant::now();
    let receipt = client.send_transfer(signed).await?;
    receipt.verify(info.receipt_signer, &domain)?;
    println!(
        "demo: paid 25 USDC to {bob} off-chain in {} ms: tx {} (journal #{}), receipt in a group of {} signed by the receipt key",
        started.elapsed().as_millis(),
        receipt.receipt.tx_hash,
        receipt.receipt.sequence.get(),
        receipt.group.count
    );
    let bob_balance = account_of(&client, &bob_key, usdc.address, &domain)
        .await?
        .balance;
    println!(
        "demo: balances now {} USDC (payer) and {} USDC (payee)",
        receipt.receipt.balance.to_human(usdc.decimals),
        bob_balance.to_human(usdc.decimals)
    );

    // Wallet 1 withdraws to its own L2 address; a batch carries it on-chain.
    let withdrawal = Withdrawal {
        from: bob,
        recipient: bob,
        token: usdc.address,
        amount: Amount::from_human("10", usdc.decimals)?,
        fee: usdc.minimum_fee,
        nonce: account_of(&client, &bob_key, usdc.address, &domain)
            .await?
            .nonce,
        valid_until: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            + 600,
    };
    let signed = stablelane::sign(&bob_key, withdrawal, &domain)?;
    let receipt = client.send_withdrawal(signed).await?;
    let tx = receipt.receipt.tx_hash;
    println!("demo: {bob} withdraws 10 USDC to its L2 address: tx {tx}");
    let admin = {
        let mut headers = jsonrpsee::http_client::HeaderMap::new();
        headers.insert(
            "authorization",
            format!("Bearer {}", node.admin_token)
                .parse()
                .map_err(|_| eyre!("admin token is not a header value"))?,
        );
        HttpClientBuilder::default()
            .set_headers(headers)
            .build(&node.admin_url)?
    };
    if let Some(n) = admin.seal_batch().await?.batch {
        println!("demo: operator sealed batch {n} (admin_sealBatch)");
    }
    let bob_l2 = wallet_provider(&description.l2_rpc_url, std::slice::from_ref(&bob_key))?;
    let delay = Settlement::new(description.settlement, bob_l2.clone())
        .finalizationDelay()
        .call()
        .await?;
    let started = Instant::now();
    let mut shown = TxStatus::Accepted;
    loop {
        let info = client.get_transaction(tx, None).await?;
        if info.status != shown {
            shown = info.status;
            match (info.status, info.batch) {
                (TxStatus::Batched, Some(n)) => {
                    println!("demo: in batch {n}; the settler commits it")
                }
                (TxStatus::Committed, Some(n)) => {
                    let batch = client.get_batch(n).await?;
                    println!(
                        "demo: batch {n} committed on-chain in L2 tx {} (block {}), root {}; claimable after the {} s finalization delay",
                        batch.l2_tx_hash.unwrap_or_default(),
                        batch.l2_block.unwrap_or_default(),
                        batch.new_root,
                        delay
                    );
                }
                (TxStatus::Finalized, Some(n)) => {
                    println!(
                        "demo: batch {n} finalized after {} s",
                        started.elapsed().as_secs()
                    );
                    break;
                }
                _ => {}
            }
        }
        if started.elapsed() > Duration::from_secs(90) {
            bail!("the withdrawal's batch was not finalized within 90 s (status {:?}); see the node log", info.status);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let before = TestStablecoin::new(usdc.address, bob_l2.clone())
        .balanceOf(bob)
        .call()
        .await?;
    println!(
        "demo: $ stablelane wallet claim {tx} --l2-rpc {}",
        description.l2_rpc_url
    );
    let output = std::process::Command::new(binary)
        .args([
            "wallet",
            "claim",
            &tx.to_string(),
            "--rpc",
            &node.rpc_url,
            "--l2-rpc",
            &description.l2_rpc_url,
        ])
        .env("STABLELANE_PRIVATE_KEY", &bob_account.private_key)
        .output()
        .wrap_err_with(|| format!("running {} wallet claim", binary.display()))?;
    if !output.status.success() {
        bail!(
            "wallet claim failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    print!("demo: {}", String::from_utf8_lossy(&output.stdout));
    let after = TestStablecoin::new(usdc.address, bob_l2.clone())
        .balanceOf(bob)
        .call()
        .await?;
    println!(
        "demo: {bob}'s on-chain USDC balance grew by {} USDC",
        Amount(u128::try_from(after.saturating_sub(before)).unwrap_or(u128::MAX))
            .to_human(usdc.decimals)
    );
    Ok(())
}
