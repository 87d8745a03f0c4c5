//! Exodus end to end with the real binaries. A node commits a batch holding a registered
//! wallet's balance, then stops for good, and the wallet exits with `stablelane wallet exit`
//! from chain data and its key alone:
//! - a later deposit goes overdue, anyone activates exodus, and the wallet exits `--to`
//!   another address: that address receives exactly the wallet's balance (the wallet
//!   nothing); a second exit of the same account is refused;
//! - the stolen operator key commits a batch draining the bridge to the thief; inside its
//!   window the guardian triggers exodus, which voids it: the thief's claim is refused and
//!   the wallet exits its balance of the last finalized batch.

use crate::common;

use std::time::{Duration, Instant};

use alloy::{
    primitives::{keccak256, Address, B256, U256},
    providers::{ext::AnvilApi, DynProvider},
    signers::local::PrivateKeySigner,
};
use eyre::{ensure, eyre, Result};
use jsonrpsee::http_client::{HeaderMap, HttpClientBuilder};
use stablelane::rpc::{AdminApiClient, BatchStatus, LaneApiClient};
use stablelane_contracts::{Settlement, TestStablecoin};
use stablelane_devnet::{
    node, wallet_provider, DeployConfig, Devnet, DevnetDescription, DevnetOptions,
};

/// A devnet whose node committed batch `batch` holding alice's deposit of `amount` USDC.
struct Committed {
    devnet: Devnet,
    d: DevnetDescription,
    usdc: Address,
    process: node::NodeProcess,
    alice: PrivateKeySigner,
    /// alice's L2 provider.
    provider: DynProvider,
    amount: U256,
    batch: u64,
    _run_dir: tempfile::TempDir,
}

impl Committed {
    async fn start() -> Result<Self> {
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
        let process = node::start(
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
        Ok(Self {
            devnet,
            d,
            usdc,
            process,
            alice,
            provider,
            amount,
            batch,
            _run_dir: run_dir,
        })
    }

    /// `stablelane wallet exit` as alice, paying `to`.
    fn exit(&self, to: Address) -> Result<(bool, String, String)> {
        let settlement = self.d.settlement.to_string();
        let usdc = self.usdc.to_string();
        let block = self.d.deploy_block.to_string();
        let to = to.to_string();
        let args = [
            "wallet",
            "exit",
            "--l2-rpc",
            &self.d.l2_rpc_url,
            "--settlement",
            &settlement,
            "--token",
            &usdc,
            "--from-block",
            &block,
            "--insecure-dev-keys",
            "--to",
            &to,
        ];
        let key = self.d.dev_accounts[0].private_key.clone();
        common::run_cli(&args, &[("STABLELANE_PRIVATE_KEY", key.as_str())])
    }

    async fn balance_of(&self, who: Address) -> Result<U256> {
        Ok(TestStablecoin::new(self.usdc, self.provider.clone())
            .balanceOf(who)
            .call()
            .await?)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wallet_exits_in_exodus_from_chain_data_and_its_key() -> Result<()> {
    let mut c = Committed::start().await?;
    let (d, usdc) = (c.d.clone(), c.usdc);

    // The operator is gone for good. Bob's deposit is never consumed; its deadline passes.
    c.process.stop();
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
    c.devnet
        .provider()
        .anvil_increase_time(deadline + 1)
        .await?;
    c.devnet.provider().anvil_mine(Some(1), None).await?;
    let receipt = Settlement::new(d.settlement, bob_provider)
        .activateExodus()
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "activateExodus reverted");

    // Alice has the exit paid to dave (as a USDC-blacklisted owner would have to).
    let alice = c.alice.address();
    let dave = d.dev_accounts[3].address;
    let (alice_before, dave_before) = (c.balance_of(alice).await?, c.balance_of(dave).await?);
    let (ok, _, err) = c.exit(Address::ZERO)?;
    assert!(!ok);
    assert!(err.contains("--to must not be the zero address"), "{err}");
    let (ok, out, err) = c.exit(dave)?;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "exited with 50000000 base units of {usdc} to {dave}"
        )),
        "{out}"
    );
    assert_eq!(
        c.balance_of(dave).await?,
        dave_before + c.amount,
        "paid to --to"
    );
    assert_eq!(c.balance_of(alice).await?, alice_before, "not to the owner");

    // The same account cannot exit twice.
    let (ok, _, err) = c.exit(dave)?;
    assert!(!ok);
    assert!(err.contains("already exited"), "{err}");
    Ok(())
}

/// The review's drain, replayed with the real node and wallet: the operator key is stolen
/// and commits a batch paying the whole bridge to the thief, with a root nobody can open.
/// Inside the batch's window the guardian triggers exodus: the batch is void, the thief's
/// claim is refused, alice exits her balance of the last finalized batch and bob has his
/// deposit, which only the void batch consumed, refunded.
#[tokio::test(flavor = "multi_thread")]
async fn a_drain_by_a_stolen_operator_key_is_voided_by_the_guardian() -> Result<()> {
    use stablelane_contracts::batch_data::{encode_batch_data, Withdrawal};
    let mut c = Committed::start().await?;
    let d = c.d.clone();
    let l2 = c.devnet.provider().clone();
    // Batch 1 (alice's balance) finalizes on-chain; then the node is gone.
    let delay = DeployConfig::default().finalization_delay_s;
    l2.anvil_increase_time(delay + 1).await?;
    l2.anvil_mine(Some(1), None).await?;
    c.process.stop();
    // Bob deposits 3 USDC meanwhile (deposit 1).
    let bob: PrivateKeySigner = d.dev_accounts[1].private_key.parse()?;
    let bob_provider = wallet_provider(&d.l2_rpc_url, std::slice::from_ref(&bob))?;
    let bob_amount = U256::from(3_000_000u64);
    TestStablecoin::new(c.usdc, bob_provider.clone())
        .approve(d.settlement, bob_amount)
        .send()
        .await?
        .get_receipt()
        .await?;
    let receipt = Settlement::new(d.settlement, bob_provider)
        .deposit(c.usdc, bob_amount, bob.address())
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "bob's deposit reverted");

    // The thief, holding the operator key, commits batch 2: it consumes bob's deposit and
    // pays every USDC of the ledger to itself, under a root that no batch data opens (the
    // body is empty).
    let thief: PrivateKeySigner = d.operator.private_key.parse()?;
    let as_thief = Settlement::new(
        d.settlement,
        wallet_provider(&d.l2_rpc_url, std::slice::from_ref(&thief))?,
    );
    let thief_before = c.balance_of(thief.address()).await?;
    let supply = as_thief.ledgerSupply(c.usdc).call().await? + bob_amount;
    assert_eq!(supply, c.amount + bob_amount);
    let amount = u128::try_from(supply)?;
    let data = encode_batch_data(
        &[Withdrawal {
            recipient: thief.address(),
            token: c.usdc,
            amount_base_units: amount,
        }],
        &[],
        &[],
    )?;
    let deposits = as_thief.depositsConsumed().call().await? + 1;
    let forced = as_thief.forcedConsumed().call().await?;
    let header = Settlement::BatchHeader {
        batchNumber: c.batch + 1,
        prevRoot: as_thief.stateRoot().call().await?,
        newRoot: B256::with_last_byte(7),
        depositsConsumed: deposits,
        depositsHash: as_thief.depositHashAt(deposits).call().await?,
        forcedConsumed: forced,
        forcedHash: as_thief.forcedHashAt(forced).call().await?,
        dataHash: keccak256(&data),
    };
    let receipt = as_thief
        .commitBatch(header, data.into())
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "the thief's commit reverted");
    let drained = c.batch + 1;

    // Inside its window: the guardian (and nobody else) triggers exodus at once, with
    // `stablelane guardian`.
    assert!(
        as_thief.guardianExodus().call().await.is_err(),
        "only the guardian may"
    );
    let settlement = d.settlement.to_string();
    let guardian_cli = |key: &str, command: &[&str]| {
        let mut args = vec![
            "guardian",
            "--l2-rpc",
            &d.l2_rpc_url,
            "--settlement",
            &settlement,
        ];
        args.extend_from_slice(command);
        common::run_cli(&args, &[("STABLELANE_PRIVATE_KEY", key)])
    };
    let guardian_key = d.guardian.private_key.as_str();
    let (ok, out, err) = guardian_cli(guardian_key, &["status"])?;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("in their window    {drained}..={drained}")),
        "{out}"
    );
    let (ok, _, err) = guardian_cli(&d.operator.private_key, &["exodus", "--yes"])?;
    assert!(!ok);
    assert!(err.contains("is not the contract's guardian"), "{err}");
    let (ok, _, err) = guardian_cli(guardian_key, &["exodus"])?;
    assert!(!ok);
    assert!(err.contains("pass --yes"), "{err}");
    let (ok, out, err) = guardian_cli(guardian_key, &["exodus", "--yes"])?;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("exodus started at batch {}", c.batch)),
        "{out}"
    );
    let as_guardian = Settlement::new(d.settlement, l2.clone());
    assert_eq!(as_guardian.exodusBatchNumber().call().await?, c.batch);
    assert!(!as_guardian.isFinalized(drained).call().await?);

    // The thief's claim is refused, also once its window would have passed.
    l2.anvil_increase_time(delay + 1).await?;
    l2.anvil_mine(Some(1), None).await?;
    let refused = as_thief
        .claimWithdrawal(drained, 0, thief.address(), c.usdc, amount, vec![])
        .call()
        .await
        .expect_err("the void batch paid the thief");
    assert!(
        matches!(
            refused.as_decoded_interface_error::<Settlement::SettlementErrors>(),
            Some(Settlement::SettlementErrors::BatchVoided(_))
        ),
        "{refused}"
    );

    // alice exits with her whole balance of batch 1, the last finalized root.
    let alice = c.alice.address();
    let before = c.balance_of(alice).await?;
    let (ok, out, err) = c.exit(alice)?;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("exited with {} base units", c.amount)),
        "{out}"
    );
    assert_eq!(c.balance_of(alice).await?, before + c.amount);
    assert_eq!(
        c.balance_of(thief.address()).await?,
        thief_before,
        "the thief got nothing"
    );
    // Bob's deposit, consumed only by the void batch, is his again: `wallet refund`.
    let refund = |index: &str| {
        common::run_cli(
            &[
                "wallet",
                "refund",
                "--index",
                index,
                "--l2-rpc",
                &d.l2_rpc_url,
                "--settlement",
                &settlement,
            ],
            &[(
                "STABLELANE_PRIVATE_KEY",
                d.dev_accounts[1].private_key.as_str(),
            )],
        )
    };
    let bob_before = c.balance_of(bob.address()).await?;
    let (ok, _, err) = refund("0")?;
    assert!(
        !ok,
        "alice's deposit, credited by a finalized batch, refunded"
    );
    assert!(err.contains("credited by a finalized batch"), "{err}");
    let (ok, out, err) = refund("1")?;
    assert!(ok, "{err}");
    assert!(
        out.contains("refunded deposit 1 (3000000 base units"),
        "{out}"
    );
    assert_eq!(c.balance_of(bob.address()).await?, bob_before + bob_amount);
    let (ok, _, err) = refund("1")?;
    assert!(!ok);
    assert!(err.contains("refunded already"), "{err}");
    assert_eq!(as_guardian.ledgerSupply(c.usdc).call().await?, U256::ZERO);
    Ok(())
}
