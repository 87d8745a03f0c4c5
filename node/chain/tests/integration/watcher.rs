//! The chain watcher against a real anvil: deposits credited only at depth N and exactly
//! once (also across a restart), a deposit reorged out before depth N never credited and its
//! re-inclusion credited once, and forced-withdrawal requests served. With the `finalized`
//! and `safe` block tags (anvil answers them 64 and 32 blocks behind the latest block):
//! deposits credited exactly when the tag reaches their block, a deposit deeper than the
//! confirmations but reorged out before the tag reached it never credited, and the settler
//! finalizing a batch only once the tag passes its commit. A ledger whose consumed deposits
//! the chain no longer holds stops crediting with a rolling-hash mismatch.

use alloy::{
    primitives::{Address, B256, U256},
    providers::{ext::AnvilApi, DynProvider, Provider},
};
use eyre::{eyre, Result};
use stablelane::rpc::BatchStatus;
use stablelane::{domain, Amount};
use stablelane_chain::{
    FinalityMode, Settler, SettlerConfig, Watcher, WatcherConfig, WatcherError,
};
use stablelane_contracts::{Settlement, TestStablecoin};
use stablelane_devnet::{DeployConfig, Devnet, DevnetOptions};
use stablelane_ledger::LedgerConfig;
use stablelane_sequencer::{Sequencer, SequencerConfig};

const CONFIRMATIONS: u64 = 3;

struct Setup {
    devnet: Devnet,
    _dir: tempfile::TempDir,
    sequencer: Sequencer,
    usdc: Address,
    alice: Address,
}

impl Setup {
    async fn start() -> Result<Self> {
        let devnet = Devnet::start(DevnetOptions {
            port: 0,
            deploy: DeployConfig::default(),
            ..DevnetOptions::default()
        })
        .await?;
        let d = devnet.description().clone();
        let usdc = d.token("USDC").ok_or_else(|| eyre!("no USDC"))?.address;
        let dir = tempfile::tempdir()?;
        let sequencer = Sequencer::open(
            SequencerConfig {
                journal_dir: dir.path().join("journal"),
                store_dir: dir.path().join("state.sled"),
                journal: Default::default(),
                intake_queue_max: 64,
                group_max: 64,
                ledger: LedgerConfig {
                    tokens: d.tokens.iter().map(|t| (t.address, Amount(1))).collect(),
                    fee_recipient: d.operator.address,
                    operator_secret: B256::repeat_byte(3),
                    slots_max: 1_000,
                },
                domain: domain(d.chain_id, d.settlement),
                batch: Default::default(),
                sealed_history: 0,
                snapshot: stablelane_sequencer::SnapshotConfig::off(),
            },
            d.receipt_signer.signer()?,
        )?;
        Ok(Self {
            alice: d.dev_accounts[0].address,
            devnet,
            _dir: dir,
            sequencer,
            usdc,
        })
    }

    fn provider(&self) -> DynProvider {
        self.devnet.provider().clone()
    }

    fn watcher(&self) -> Result<Watcher> {
        self.watcher_in(FinalityMode::Confirmations)
    }

    /// A confirmations-mode watcher that cross-checks the finality head with `second`.
    fn watcher_checked_by(&self, second: String) -> Result<Watcher> {
        self.watcher_with(FinalityMode::Confirmations, Some(second))
    }

    /// A watcher in `finality` mode, with `CONFIRMATIONS` for that mode or the fallback.
    fn watcher_in(&self, finality: FinalityMode) -> Result<Watcher> {
        self.watcher_with(finality, None)
    }

    /// [`Self::watcher_in`], cross-checking the finality head with `cross_check` if given.
    fn watcher_with(&self, finality: FinalityMode, cross_check: Option<String>) -> Result<Watcher> {
        let d = self.devnet.description();
        Ok(Watcher::new(
            WatcherConfig {
                l2_rpc_url: self.devnet.rpc_url(),
                settlement: d.settlement,
                finality,
                confirmations: CONFIRMATIONS,
                poll_interval: std::time::Duration::from_millis(50),
                max_block_range: 1_000,
                start_block: d.deploy_block,
                cross_check_rpc_url: cross_check,
            },
            self.sequencer.clone(),
        )?)
    }

    /// The number of the block anvil answers for `tag`.
    async fn tag_block(&self, tag: alloy::eips::BlockNumberOrTag) -> Result<u64> {
        use alloy::providers::Provider;
        Ok(self
            .provider()
            .get_block_by_number(tag)
            .await?
            .ok_or_else(|| eyre!("no {tag} block"))?
            .header
            .number)
    }

    /// Mines until anvil answers `target` for `tag` (it answers block 0 while the chain is
    /// shorter than the tag's lag).
    async fn mine_until_tag(&self, tag: alloy::eips::BlockNumberOrTag, target: u64) -> Result<()> {
        loop {
            let at = self.tag_block(tag).await?;
            if at >= target {
                eyre::ensure!(at == target, "{tag} is at {at}, past {target}");
                return Ok(());
            }
            self.provider().anvil_mine(Some(target - at), None).await?;
        }
    }

    async fn latest_block(&self) -> Result<u64> {
        use alloy::providers::Provider;
        Ok(self.provider().get_block_number().await?)
    }

    /// Approves and deposits (two blocks); the deposit is then at depth 1. A fresh provider
    /// each time: a reverted chain must not meet a cached nonce.
    async fn deposit(&self, amount: u128) -> Result<()> {
        let d = self.devnet.description();
        let key: alloy::signers::local::PrivateKeySigner = d.dev_accounts[0].private_key.parse()?;
        let provider = stablelane_devnet::wallet_provider(&self.devnet.rpc_url(), &[key])?;
        TestStablecoin::new(self.usdc, provider.clone())
            .approve(d.settlement, U256::from(amount))
            .from(self.alice)
            .send()
            .await?
            .get_receipt()
            .await?;
        let receipt = Settlement::new(d.settlement, provider)
            .deposit(self.usdc, U256::from(amount), self.alice)
            .from(self.alice)
            .send()
            .await?
            .get_receipt()
            .await?;
        eyre::ensure!(receipt.status(), "deposit reverted");
        Ok(())
    }

    fn balance(&self) -> Amount {
        self.sequencer
            .read(|s| s.ledger().balance(self.alice, self.usdc))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deposits_are_credited_at_depth_n_exactly_once() -> Result<()> {
    let s = Setup::start().await?;
    let watcher = s.watcher()?;
    s.deposit(5_000_000).await?;
    // Depth 1, then 2: not yet.
    assert_eq!(watcher.step().await?.deposits, 0);
    s.provider().anvil_mine(Some(1), None).await?;
    assert_eq!(watcher.step().await?.deposits, 0);
    assert_eq!(s.balance(), Amount(0));
    // Depth 3: credited.
    s.provider().anvil_mine(Some(1), None).await?;
    assert_eq!(watcher.step().await?.deposits, 1);
    assert_eq!(s.balance(), Amount(5_000_000));
    assert_eq!(watcher.step().await?.deposits, 0);

    // A restarted watcher (same store) credits nothing again, and a fresh scan from the
    // deployment block (store cursor lost) neither.
    let again = s.watcher()?;
    assert_eq!(again.step().await?.deposits, 0);
    s.sequencer
        .store()
        .set_chain_cursor(stablelane_sequencer::ChainCursor {
            next_block: 0,
            last_hash: B256::ZERO,
        })?;
    assert_eq!(again.step().await?.deposits, 0);
    assert_eq!(s.balance(), Amount(5_000_000));

    // Two more deposits in quick succession, credited in order once deep enough.
    s.deposit(1).await?;
    s.deposit(2).await?;
    s.provider().anvil_mine(Some(CONFIRMATIONS), None).await?;
    assert_eq!(again.step().await?.deposits, 2);
    assert_eq!(s.balance(), Amount(5_000_003));
    assert_eq!(s.sequencer.read(|st| st.ledger().deposits_consumed()), 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reorged_out_deposit_is_never_credited_and_its_reinclusion_once() -> Result<()> {
    let s = Setup::start().await?;
    let watcher = s.watcher()?;
    s.provider().anvil_mine(Some(CONFIRMATIONS), None).await?;
    watcher.step().await?;
    let snapshot = s.provider().anvil_snapshot().await?;
    s.deposit(7_000_000).await?;
    s.provider().anvil_mine(Some(1), None).await?;
    // Depth 2: seen by nobody yet.
    assert_eq!(watcher.step().await?.deposits, 0);
    // The chain reorganises without the deposit, and grows well past depth N.
    assert!(s.provider().anvil_revert(snapshot).await?);
    s.provider()
        .anvil_mine(Some(CONFIRMATIONS + 3), None)
        .await?;
    let report = watcher.step().await?;
    assert_eq!(report.deposits, 0);
    assert_eq!(s.balance(), Amount(0));
    // The deposit is included again: credited once, at depth N.
    s.deposit(7_000_000).await?;
    assert_eq!(watcher.step().await?.deposits, 0);
    s.provider().anvil_mine(Some(CONFIRMATIONS), None).await?;
    assert_eq!(watcher.step().await?.deposits, 1);
    assert_eq!(watcher.step().await?.deposits, 0);
    assert_eq!(s.balance(), Amount(7_000_000));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn forced_withdrawal_requests_are_served() -> Result<()> {
    let s = Setup::start().await?;
    let watcher = s.watcher()?;
    s.deposit(9_000_000).await?;
    let settlement = Settlement::new(s.devnet.description().settlement, s.provider());
    // alice names another address to be paid (as a USDC-blacklisted owner would).
    let recipient = Address::repeat_byte(0x77);
    settlement
        .requestForcedWithdrawal(s.usdc, recipient)
        .from(s.alice)
        .send()
        .await?
        .get_receipt()
        .await?;
    s.provider().anvil_mine(Some(CONFIRMATIONS), None).await?;
    let report = watcher.step().await?;
    assert_eq!((report.deposits, report.forced), (1, 1));
    assert_eq!(s.balance(), Amount(0));
    let pay_outs = s.sequencer.read(|st| st.pay_outs().to_vec());
    assert_eq!(pay_outs.len(), 1);
    assert_eq!(pay_outs[0].amount, Amount(9_000_000));
    assert_eq!(
        pay_outs[0].recipient, recipient,
        "paid to the named recipient"
    );
    assert_eq!(pay_outs[0].token, s.usdc);
    s.sequencer.read(|st| st.ledger().check_supply())?;
    Ok(())
}

/// Credits a deposit in `mode` exactly at the step where the tag reaches its block: not at
/// depth `CONFIRMATIONS` (today's soft confirmation), nor one block before the tag.
async fn credited_when_the_tag_reaches_the_deposit(mode: FinalityMode) -> Result<()> {
    let tag = match mode {
        FinalityMode::Finalized => alloy::eips::BlockNumberOrTag::Finalized,
        FinalityMode::Safe => alloy::eips::BlockNumberOrTag::Safe,
        FinalityMode::Confirmations => unreachable!("a tag mode"),
    };
    let s = Setup::start().await?;
    let watcher = s.watcher_in(mode)?;
    s.deposit(5_000_000).await?;
    let deposit_block = s.latest_block().await?;
    // Well past the confirmations: still above the tag.
    s.provider()
        .anvil_mine(Some(CONFIRMATIONS + 5), None)
        .await?;
    let report = watcher.step().await?;
    assert_eq!(report.finality, Some(mode));
    assert_eq!(report.final_block, Some(s.tag_block(tag).await?));
    assert_eq!(report.deposits, 0);
    assert_eq!(s.balance(), Amount(0));
    // One block below the deposit: not yet.
    s.mine_until_tag(tag, deposit_block - 1).await?;
    assert_eq!(watcher.step().await?.deposits, 0);
    assert_eq!(s.balance(), Amount(0));
    // The tag reaches the deposit's block: credited, once.
    s.provider().anvil_mine(Some(1), None).await?;
    assert_eq!(watcher.step().await?.deposits, 1);
    assert_eq!(s.balance(), Amount(5_000_000));
    s.provider().anvil_mine(Some(3), None).await?;
    assert_eq!(watcher.step().await?.deposits, 0);
    assert_eq!(s.balance(), Amount(5_000_000));
    let metrics = s.sequencer.metrics();
    assert_eq!(metrics.watcher_finality_mode, mode.metric_code());
    assert_eq!(metrics.watcher_queue_mismatch, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deposits_are_credited_when_the_finalized_tag_reaches_them() -> Result<()> {
    credited_when_the_tag_reaches_the_deposit(FinalityMode::Finalized).await
}

#[tokio::test(flavor = "multi_thread")]
async fn deposits_are_credited_when_the_safe_tag_reaches_them() -> Result<()> {
    credited_when_the_tag_reaches_the_deposit(FinalityMode::Safe).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deposit_reorged_out_below_the_confirmations_but_above_the_safe_tag_is_never_credited(
) -> Result<()> {
    let s = Setup::start().await?;
    let watcher = s.watcher_in(FinalityMode::Safe)?;
    watcher.step().await?;
    let snapshot = s.provider().anvil_snapshot().await?;
    s.deposit(7_000_000).await?;
    // Ten blocks deep: past the confirmations, short of the safe tag (32 behind).
    s.provider().anvil_mine(Some(9), None).await?;
    assert_eq!(watcher.step().await?.deposits, 0);
    // A reorg deeper than the confirmations replaces it with another deposit at the same
    // queue index.
    assert!(s.provider().anvil_revert(snapshot).await?);
    s.provider().anvil_mine(Some(2), None).await?;
    s.deposit(3_000_000).await?;
    s.provider().anvil_mine(Some(40), None).await?;
    assert_eq!(watcher.step().await?.deposits, 1);
    assert_eq!(s.balance(), Amount(3_000_000));
    assert_eq!(watcher.step().await?.deposits, 0);
    assert_eq!(s.sequencer.metrics().watcher_queue_mismatch, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_hash_mismatch_stops_crediting() -> Result<()> {
    let s = Setup::start().await?;
    let watcher = s.watcher()?;
    let snapshot = s.provider().anvil_snapshot().await?;
    s.deposit(1_000).await?;
    s.provider().anvil_mine(Some(CONFIRMATIONS), None).await?;
    assert_eq!(watcher.step().await?.deposits, 1);
    // A reorg deeper than the confirmations: queue entry 0 becomes another deposit, and
    // entry 1 follows it.
    assert!(s.provider().anvil_revert(snapshot).await?);
    s.deposit(2_000).await?;
    s.deposit(3_000).await?;
    s.provider().anvil_mine(Some(CONFIRMATIONS), None).await?;
    let err = watcher.step().await.expect_err("a mismatch");
    let WatcherError::QueueMismatch {
        queue,
        consumed,
        contract_hash,
        ledger_hash,
        ..
    } = err
    else {
        panic!("not a mismatch: {err}");
    };
    assert_eq!((queue, consumed), ("deposits", 1));
    assert_ne!(contract_hash, ledger_hash);
    assert_eq!(ledger_hash, s.sequencer.read(|st| st.deposits_hash()));
    // Entry 1 is not credited on top of the lost entry 0, at this step or the next.
    assert!(watcher.step().await.is_err());
    assert_eq!(s.balance(), Amount(1_000));
    assert_eq!(s.sequencer.read(|st| st.ledger().deposits_consumed()), 1);
    assert_eq!(s.sequencer.metrics().watcher_queue_mismatch, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_settler_finalizes_a_batch_once_the_finalized_tag_passes_its_commit() -> Result<()> {
    let s = Setup::start().await?;
    // Credited at depth N: the batch needs a record; finality of the commit is the point.
    s.deposit(4_000_000).await?;
    s.provider().anvil_mine(Some(CONFIRMATIONS), None).await?;
    assert_eq!(s.watcher()?.step().await?.deposits, 1);
    assert_eq!(s.sequencer.seal_batch().await?, Some(1));
    let d = s.devnet.description();
    let settler = Settler::new(
        SettlerConfig {
            l2_rpc_url: s.devnet.rpc_url(),
            settlement: d.settlement,
            chain_id: d.chain_id,
            finality: FinalityMode::Finalized,
            confirmations: 1,
            poll_interval: std::time::Duration::from_millis(50),
            max_batch_age: std::time::Duration::from_secs(3_600),
            resend_after: std::time::Duration::from_secs(60),
            fee_bump_percent: 25,
            max_fee_per_gas: 1_000_000_000_000,
            start_block: d.deploy_block,
        },
        d.operator.private_key.parse()?,
        s.sequencer.clone(),
    )?;
    assert!(settler.step().await?.sent.is_some());
    // anvil mines the commit at once; under load the next step may still miss it.
    let mut committed = Vec::new();
    for _ in 0..100 {
        committed.extend(settler.step().await?.committed);
        if !committed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(committed, vec![1]);
    let commit_block = s
        .sequencer
        .batch(1)?
        .and_then(|(_, chain)| chain.l2_block)
        .ok_or_else(|| eyre!("no commit block"))?;
    // Ten blocks deep and past the finalization delay (10 s): finalized at one
    // confirmation, not at the finalized tag.
    s.provider().anvil_mine(Some(10), Some(2)).await?;
    assert!(settler.step().await?.finalized.is_empty());
    let status = |s: &Setup| -> Result<BatchStatus> {
        Ok(s.sequencer
            .batch(1)?
            .ok_or_else(|| eyre!("no batch 1"))?
            .1
            .status)
    };
    assert_eq!(status(&s)?, BatchStatus::Committed);
    // The tag one block below the commit: not yet; at the commit: finalized.
    let finalized = alloy::eips::BlockNumberOrTag::Finalized;
    s.mine_until_tag(finalized, commit_block - 1).await?;
    assert!(settler.step().await?.finalized.is_empty());
    s.provider().anvil_mine(Some(1), None).await?;
    assert_eq!(s.tag_block(finalized).await?, commit_block);
    assert_eq!(settler.step().await?.finalized, vec![1]);
    assert_eq!(status(&s)?, BatchStatus::Finalized);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn after_switching_to_the_finalized_tag_the_watcher_waits_for_the_head() -> Result<()> {
    let s = Setup::start().await?;
    s.deposit(6_000_000).await?;
    s.provider().anvil_mine(Some(CONFIRMATIONS), None).await?;
    assert_eq!(s.watcher()?.step().await?.deposits, 1);
    // The same ledger under the slower mode: the contract holds no deposit yet at the
    // finalized block. Not a mismatch, nothing credited twice.
    let watcher = s.watcher_in(FinalityMode::Finalized)?;
    s.deposit(1).await?;
    s.provider().anvil_mine(Some(3), None).await?;
    assert_eq!(watcher.step().await?.deposits, 0);
    assert_eq!(s.sequencer.metrics().watcher_queue_mismatch, 0);
    // Once the tag passes both deposits, only the second is credited.
    let latest = s.latest_block().await?;
    s.mine_until_tag(alloy::eips::BlockNumberOrTag::Finalized, latest)
        .await?;
    assert_eq!(watcher.step().await?.deposits, 1);
    assert_eq!(s.balance(), Amount(6_000_001));
    Ok(())
}

/// `[chain] cross_check_rpc_url`: a second RPC that serves another chain (here another
/// anvil) has another block at the finality head, so nothing is credited and the gauge says
/// why; a second RPC on the same chain lets the deposit through.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_rpc_that_disagrees_stops_crediting() -> Result<()> {
    use std::sync::atomic::Ordering;
    let s = Setup::start().await?;
    let other = Devnet::start(DevnetOptions {
        port: 0,
        ..DevnetOptions::default()
    })
    .await?;
    s.deposit(5_000_000).await?;
    s.provider().anvil_mine(Some(CONFIRMATIONS), None).await?;
    // The other chain reaches the same height (and beyond), with other blocks.
    let height = s.provider().get_block_number().await?;
    other.provider().anvil_mine(Some(height + 1), None).await?;

    let forked = s.watcher_checked_by(other.rpc_url())?;
    match forked.step().await {
        Err(WatcherError::CrossCheckMismatch {
            primary, secondary, ..
        }) => assert_ne!(primary, secondary),
        other => return Err(eyre!("expected a cross-check mismatch, got {other:?}")),
    }
    let gauge = &s.sequencer.watcher_metrics().cross_check_mismatch;
    assert_eq!(gauge.load(Ordering::Relaxed), 1);
    assert_eq!(s.balance(), Amount(0), "credited against a disagreeing RPC");

    // The same chain behind the second URL: credited, and the gauge clears.
    let agreeing = s.watcher_checked_by(s.devnet.rpc_url())?;
    assert_eq!(agreeing.step().await?.deposits, 1);
    assert_eq!(s.balance(), Amount(5_000_000));
    assert_eq!(gauge.load(Ordering::Relaxed), 0);
    Ok(())
}
