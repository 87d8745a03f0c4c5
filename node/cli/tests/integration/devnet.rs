//! The main job's node half (`make devnet` runs the same functions): a fresh devnet, the node
//! started from the config the devnet writes, the demo (on-chain deposit credited by the
//! chain watcher, an off-chain transfer, a withdrawal committed in a batch, finalized and
//! claimed with `stablelane wallet claim`), and the wallet CLI against that node.

use crate::common;

use alloy::primitives::Address;
use eyre::Result;
use stablelane::rpc::{AdminApiClient, LaneApiClient};
use stablelane_devnet::{node, DeployConfig, Devnet, DevnetOptions};

#[tokio::test(flavor = "multi_thread")]
async fn devnet_node_credits_the_demo_deposit_and_pays() -> Result<()> {
    let devnet = Devnet::start(DevnetOptions {
        port: 0,
        // As `make devnet`: a block every second, so chain time moves and batches finalize.
        block_time_s: Some(1),
        deploy: DeployConfig::default(),
        ..DevnetOptions::default()
    })
    .await?;
    let description = devnet.description().clone();
    let run_dir = tempfile::tempdir()?;
    let config = node::write_config(&description, run_dir.path(), 0, 0)?;
    let process = node::start(
        &common::binary(),
        &config,
        &run_dir.path().join("node.log"),
        &description,
    )?;
    node::demo(&description, &process, &common::binary()).await?;

    let client = jsonrpsee::http_client::HttpClientBuilder::default().build(&process.rpc_url)?;
    let usdc = description
        .token("USDC")
        .ok_or_else(|| eyre::eyre!("no USDC"))?
        .address;
    let payer: alloy::signers::local::PrivateKeySigner =
        description.dev_accounts[0].private_key.parse()?;
    let payee: alloy::signers::local::PrivateKeySigner =
        description.dev_accounts[1].private_key.parse()?;
    let domain = stablelane::domain(description.chain_id, description.settlement);
    // 100 deposited, 25 paid with a 0.01 fee.
    assert_eq!(
        common::account(&client, &payer, usdc, &domain)
            .await?
            .balance,
        stablelane::Amount(74_990_000)
    );
    // 25 received, 10 withdrawn with a 0.01 fee.
    assert_eq!(
        common::account(&client, &payee, usdc, &domain)
            .await?
            .balance,
        stablelane::Amount(14_990_000)
    );
    // Nobody else is told a balance.
    assert!(
        stablelane::rpc::LaneApiClient::get_account(&client, payer.address(), usdc, {
            let other = alloy::signers::local::PrivateKeySigner::random();
            stablelane::rpc::authenticate(
                &other,
                stablelane::rpc::GET_ACCOUNT_PURPOSE,
                60,
                &domain,
            )?
        })
        .await
        .is_err()
    );
    // The withdrawal's batch is committed with the node's root and its withdrawal claimed.
    let batch = client.get_batch(1).await?;
    assert_eq!(batch.status, stablelane::rpc::BatchStatus::Finalized);
    let settlement =
        stablelane_contracts::Settlement::new(description.settlement, devnet.provider().clone());
    assert_eq!(settlement.stateRoot().call().await?, batch.new_root);
    assert!(settlement.isClaimed(1, 0).call().await?);

    // Anyone checks the operator from chain data alone.
    let (ok, out, err) = common::run_cli(
        &[
            "chain-sync",
            "--l2-rpc",
            &description.l2_rpc_url,
            "--settlement",
            &description.settlement.to_string(),
            "--from-block",
            &description.deploy_block.to_string(),
        ],
        &[],
    )?;
    assert!(ok, "{err}");
    assert!(
        out.contains("every committed root rebuilt from calldata"),
        "{out}"
    );

    // The wallet CLI against the devnet's node.
    let (ok, out, err) = common::run_cli(
        &[
            "wallet",
            "transfer",
            "--rpc",
            &process.rpc_url,
            "--to",
            &Address::repeat_byte(0xde).to_string(),
            "--amount",
            "1.5 USDC",
        ],
        &[(
            "STABLELANE_PRIVATE_KEY",
            &description.dev_accounts[1].private_key,
        )],
    )?;
    assert!(ok, "{err}");
    assert_eq!(out.trim().len(), 66);

    let admin = {
        let mut headers = jsonrpsee::http_client::HeaderMap::new();
        headers.insert(
            "authorization",
            format!("Bearer {}", process.admin_token).parse()?,
        );
        jsonrpsee::http_client::HttpClientBuilder::default()
            .set_headers(headers)
            .build(&process.admin_url)?
    };
    let status = admin.status().await?;
    let supply = status
        .supply
        .iter()
        .find(|s| s.token == usdc)
        .ok_or_else(|| eyre::eyre!("no USDC supply"))?;
    assert_eq!(supply.deposited, stablelane::Amount(100_000_000));
    Ok(())
}
