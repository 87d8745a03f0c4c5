//! Exodus end to end with the real binaries: the node commits a batch holding a registered
//! wallet's balance, then stops for good; a later deposit goes overdue, exodus is activated,
//! and the wallet exits with `stablelane wallet exit --to <another address>` from chain data
//! and its key alone: that address receives exactly the wallet's balance (the wallet
//! nothing); a second exit of the same account is refused.

use crate::common;

use std::time::{Duration, Instant};

use alloy::{primitives::U256, providers::ext::AnvilApi, signers::local::PrivateKeySigner};
use eyre::{ensure, eyre, Result};
use jsonrpsee::http_client::{HeaderMap, HttpClientBuilder};
use stablelane::rpc::{AdminApiClient, BatchStatus, LaneApiClient};
use stablelane_contracts::{Settlement, TestStablecoin};
use stablelane_devnet::{node, wallet_provider, DeployConfig, Devnet, DevnetOptions};

#[tokio::test(flavor = "multi_thread")]
async fn wallet_exits_in_exodus_from_chain_data_and_its_key() -> Result<()> {
    let devnet = Devnet::start(DevnetOptions {
        port: 0,
        deploy: DeployConfig::default(),
        ..DevnetOptions::default()
    })
    .await?;
    let d = devnet.description().clone();
    let usdc = d.token("USDC").ok_or_else(|| eyre!("no USDC"))?.address;
    let run_dir = tempfile::tempdir()?;
    let config = node::write_config(&d, run_dir.path(), 0, 0)?;
    let mut process = node::start(
        &common::binary(),
        &config,
        &run_dir.path().join("node.log"),
        &d,
    )?;
    let alice_account = &d.dev_accounts[0];
    let alice: PrivateKeySigner = alice_account.private_key.parse()?;
    let key_env = [("STABLELANE_PRIVATE_KEY", alice_account.private_key.as_str())];

    // Alice registers her viewing key, then deposits 50 USDC.
    let (ok, _, err) =
        common::run_cli(&["wallet", "register", "--rpc", &process.rpc_url], &key_env)?;
    assert!(ok, "{err}");
    let provider = wallet_provider(&d.l2_rpc_url, std::slice::from_ref(&alice))?;
    let amount = U256::from(50_000_000u64);
    TestStablecoin::new(usdc, provider.clone())
        .approve(d.settlement, amount)
        .send()
        .await?
        .get_receipt()
        .await?;
    let receipt = Settlement::new(d.settlement, provider.clone())
        .deposit(usdc, amount, alice.address())
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "deposit reverted");
    let client = HttpClientBuilder::default().build(&process.rpc_url)?;
    let started = Instant::now();
    while common::account(
        &client,
        &alice,
        usdc,
        &stablelane::domain(d.chain_id, d.settlement),
    )
    .await?
    .balance
    .base_units()
        == 0
    {
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "deposit not credited"
        );
        devnet.provider().anvil_mine(Some(1), None).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The operator seals and commits the batch holding her balance.
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {}", process.admin_token).parse()?,
    );
    let admin = HttpClientBuilder::default()
        .set_headers(headers)
        .build(&process.admin_url)?;
    let batch = admin
        .seal_batch()
        .await?
        .batch
        .ok_or_else(|| eyre!("nothing sealed"))?;
    let started = Instant::now();
    while client.get_batch(batch).await?.status == BatchStatus::Sealed {
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "batch not committed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The operator is gone for good. Bob's deposit is never consumed; its deadline passes.
    process.stop();
    let bob: PrivateKeySigner = d.dev_accounts[1].private_key.parse()?;
    let bob_provider = wallet_provider(&d.l2_rpc_url, std::slice::from_ref(&bob))?;
    TestStablecoin::new(usdc, bob_provider.clone())
        .approve(d.settlement, U256::from(1u64))
        .send()
        .await?
        .get_receipt()
        .await?;
    Settlement::new(d.settlement, bob_provider.clone())
        .deposit(usdc, U256::from(1u64), bob.address())
        .send()
        .await?
        .get_receipt()
        .await?;
    let deadline = DeployConfig::default().deposit_deadline_s;
    devnet.provider().anvil_increase_time(deadline + 1).await?;
    devnet.provider().anvil_mine(Some(1), None).await?;
    let receipt = Settlement::new(d.settlement, bob_provider)
        .activateExodus()
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "activateExodus reverted");

    // Alice has the exit paid to dave (as a USDC-blacklisted owner would have to).
    let dave = d.dev_accounts[3].address;
    let balance_of = |who| {
        let token = TestStablecoin::new(usdc, provider.clone());
        async move { token.balanceOf(who).call().await }
    };
    let (alice_before, dave_before) = (balance_of(alice.address()).await?, balance_of(dave).await?);
    let exit_to = |to: String| {
        let mut args: Vec<String> = [
            "wallet",
            "exit",
            "--l2-rpc",
            &d.l2_rpc_url,
            "--settlement",
            &d.settlement.to_string(),
            "--token",
            &usdc.to_string(),
            "--from-block",
            &d.deploy_block.to_string(),
            "--insecure-dev-keys",
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend(["--to".to_owned(), to]);
        args
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::run_cli(&args, &key_env)
    };
    let (ok, _, err) = run(exit_to(alloy::primitives::Address::ZERO.to_string()))?;
    assert!(!ok);
    assert!(err.contains("--to must not be the zero address"), "{err}");
    let args = exit_to(dave.to_string());
    let (ok, out, err) = run(args.clone())?;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "exited with 50000000 base units of {usdc} to {dave}"
        )),
        "{out}"
    );
    assert_eq!(
        balance_of(dave).await?,
        dave_before + amount,
        "paid to --to"
    );
    assert_eq!(
        balance_of(alice.address()).await?,
        alice_before,
        "not to the owner"
    );

    // The same account cannot exit twice.
    let (ok, _, err) = run(args)?;
    assert!(!ok);
    assert!(err.contains("already exited"), "{err}");
    Ok(())
}
