//! The chain watcher against a real anvil: deposits credited only at depth N and exactly
//! once (also across a restart), a deposit reorged out before depth N never credited and its
//! re-inclusion credited once, and forced-withdrawal requests served.

use alloy::{
    primitives::{Address, B256, U256},
    providers::{ext::AnvilApi, DynProvider},
};
use eyre::{eyre, Result};
use stablelane::{domain, Amount};
use stablelane_chain::{Watcher, WatcherConfig};
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
            alloy::signers::local::PrivateKeySigner::random(),
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
        let d = self.devnet.description();
        Ok(Watcher::new(
            WatcherConfig {
                l2_rpc_url: self.devnet.rpc_url(),
                settlement: d.settlement,
                confirmations: CONFIRMATIONS,
                poll_interval: std::time::Duration::from_millis(50),
                max_block_range: 1_000,
                start_block: d.deploy_block,
            },
            self.sequencer.clone(),
        )?)
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
    assert_eq!(pay_outs[0].recipient, recipient, "paid to the named recipient");
    assert_eq!(pay_outs[0].token, s.usdc);
    s.sequencer.read(|st| st.ledger().check_supply())?;
    Ok(())
}
