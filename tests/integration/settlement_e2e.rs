//! Settlement end to end, each test against its own real anvil: the node's sequencer, chain
//! watcher and settler (in process, stepped by the test) with the real settlement contract.
//!
//! - deposit → credited → transfers → withdrawal → batch committed with the node's root →
//!   finalized → claimed, the recipient's token balance grown by the amount; chain-sync of
//!   the commits' calldata alone rebuilds every committed root, and a registered wallet
//!   opens its own note and recomputes its leaf from that data and its key;
//! - a forced withdrawal requested on-chain is served (sealed, committed, paid) before its
//!   deadline without anyone's help;
//! - the operator gone for good: the deadline passes, anyone activates exodus, unprocessed
//!   deposits are refunded;
//! - a deposit the ledger cannot hold (a balance past 2^96 - 1) is consumed as refused: the
//!   queue moves on, the batch lists it, and its recipient has it refunded to a payee it
//!   names, without exodus; a restart replays the refusal;
//! - an L2 outage while a batch is being committed: transfers keep being accepted, and
//!   afterwards every batch is committed exactly once, in order;
//! - the node restarted between sending a commit and its confirmation: no second commit, no
//!   gap; a stuck commit is replaced with higher fees under the same nonce;
//! - a commit reorged out before finalization is committed again;
//! - a deposit reorged out before N confirmations is never credited, and its re-inclusion is
//!   credited once (the watcher's own tests in `node/chain/tests/integration/watcher.rs` go further).

use std::time::Duration;

use alloy::{
    primitives::{Address, B256, U256},
    providers::{ext::AnvilApi, DynProvider, Provider},
    rpc::types::Filter,
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
};
use eyre::{ensure, eyre, Result};
use stablelane::{domain, rpc::BatchStatus, sign, Amount, Nonce, Transfer, Withdrawal};
use stablelane_chain::{FinalityMode, Settler, SettlerConfig, Watcher, WatcherConfig};
use stablelane_contracts::{batch_data::withdrawal_proof, Settlement, TestStablecoin};
use stablelane_devnet::{wallet_provider, DeployConfig, Devnet, DevnetOptions};
use stablelane_ledger::LedgerConfig;
use stablelane_sequencer::{Sequencer, SequencerConfig};

const FINALIZATION_DELAY_S: u64 = 30;
const DEADLINE_S: u64 = 600;

struct Node {
    devnet: Devnet,
    dir: tempfile::TempDir,
    sequencer: Sequencer,
    usdc: Address,
    operator: PrivateKeySigner,
    /// Dev wallets 0 to 3.
    wallets: Vec<PrivateKeySigner>,
}

fn deploy() -> DeployConfig {
    DeployConfig {
        finalization_delay_s: FINALIZATION_DELAY_S,
        deposit_deadline_s: DEADLINE_S,
        forced_deadline_s: DEADLINE_S,
        ..DeployConfig::default()
    }
}

impl Node {
    async fn start() -> Result<Self> {
        let devnet = Devnet::start(DevnetOptions {
            port: 0,
            deploy: deploy(),
            ..DevnetOptions::default()
        })
        .await?;
        let d = devnet.description().clone();
        let usdc = d.token("USDC").ok_or_else(|| eyre!("no USDC"))?.address;
        let operator: PrivateKeySigner = d.operator.private_key.parse()?;
        let wallets = d
            .dev_accounts
            .iter()
            .take(4)
            .map(|a| a.private_key.parse())
            .collect::<Result<Vec<PrivateKeySigner>, _>>()?;
        let dir = tempfile::tempdir()?;
        let sequencer = open_sequencer(&devnet, dir.path(), &operator)?;
        Ok(Self {
            devnet,
            dir,
            sequencer,
            usdc,
            operator,
            wallets,
        })
    }

    /// Stops the sequencer and opens it again from the same data directory.
    async fn restart(self) -> Result<Self> {
        let Self {
            devnet,
            dir,
            sequencer,
            usdc,
            operator,
            wallets,
        } = self;
        sequencer.shutdown().await;
        let sequencer = open_sequencer(&devnet, dir.path(), &operator)?;
        Ok(Self {
            devnet,
            dir,
            sequencer,
            usdc,
            operator,
            wallets,
        })
    }

    fn provider(&self) -> DynProvider {
        self.devnet.provider().clone()
    }

    fn settlement(&self) -> Settlement::SettlementInstance<DynProvider> {
        Settlement::new(self.devnet.description().settlement, self.provider())
    }

    fn watcher(&self, l2: &str) -> Result<Watcher> {
        let d = self.devnet.description();
        Ok(Watcher::new(
            WatcherConfig {
                l2_rpc_url: l2.to_owned(),
                settlement: d.settlement,
                // At the head: these tests follow many blocks on anvil, whose `finalized`
                // tag lags 64 (node/chain/tests/integration/watcher.rs tests the tag modes).
                finality: FinalityMode::Confirmations,
                confirmations: 1,
                poll_interval: Duration::from_millis(50),
                max_block_range: 1_000,
                start_block: d.deploy_block,
                cross_check_rpc_url: None,
            },
            self.sequencer.clone(),
        )?)
    }

    fn settler(&self, l2: &str, resend_after: Duration) -> Result<Settler> {
        let d = self.devnet.description();
        Ok(Settler::new(
            SettlerConfig {
                l2_rpc_url: l2.to_owned(),
                settlement: d.settlement,
                chain_id: d.chain_id,
                // At the head: these tests follow many blocks on anvil, whose `finalized`
                // tag lags 64 (node/chain/tests/integration/watcher.rs tests the tag modes).
                finality: FinalityMode::Confirmations,
                confirmations: 1,
                poll_interval: Duration::from_millis(50),
                max_batch_age: Duration::from_secs(3_600),
                resend_after,
                fee_bump_percent: 25,
                max_fee_per_gas: 1_000_000_000_000,
                start_block: d.deploy_block,
            },
            self.operator.clone(),
            self.sequencer.clone(),
        )?)
    }

    /// Approves and deposits `amount` USDC from wallet `i` to itself.
    async fn deposit(&self, i: usize, amount: u128) -> Result<()> {
        let d = self.devnet.description();
        let key = self.wallets[i].clone();
        let who = key.address();
        let provider = wallet_provider(&self.devnet.rpc_url(), &[key])?;
        TestStablecoin::new(self.usdc, provider.clone())
            .approve(d.settlement, U256::from(amount))
            .from(who)
            .send()
            .await?
            .get_receipt()
            .await?;
        let receipt = Settlement::new(d.settlement, provider)
            .deposit(self.usdc, U256::from(amount), who)
            .from(who)
            .send()
            .await?
            .get_receipt()
            .await?;
        ensure!(receipt.status(), "deposit reverted");
        Ok(())
    }

    async fn transfer(&self, from: usize, to: Address, amount: u128) -> Result<()> {
        let key = &self.wallets[from];
        let nonce = self
            .sequencer
            .read(|s| s.ledger().nonce(key.address(), self.usdc));
        let t = Transfer {
            from: key.address(),
            to,
            token: self.usdc,
            amount: Amount(amount),
            fee: Amount(10_000),
            nonce,
            valid_until: u64::MAX,
        };
        let d = self.devnet.description();
        let signed = sign(key, t, &domain(d.chain_id, d.settlement))?;
        self.sequencer.submit_transfer(signed).await?;
        Ok(())
    }

    async fn withdraw(&self, from: usize, recipient: Address, amount: u128) -> Result<()> {
        let key = &self.wallets[from];
        let nonce: Nonce = self
            .sequencer
            .read(|s| s.ledger().nonce(key.address(), self.usdc));
        let w = Withdrawal {
            from: key.address(),
            recipient,
            token: self.usdc,
            amount: Amount(amount),
            fee: Amount(10_000),
            nonce,
            valid_until: u64::MAX,
        };
        let d = self.devnet.description();
        let signed = sign(key, w, &domain(d.chain_id, d.settlement))?;
        self.sequencer.submit_withdrawal(signed).await?;
        Ok(())
    }

    /// Registers wallet `i`'s viewing key with the node (its signature over the fixed
    /// viewing-key message, as a wallet sends it).
    async fn register(&self, i: usize) -> Result<()> {
        use alloy::{signers::SignerSync, sol_types::SolStruct};
        let d = self.devnet.description();
        let key = &self.wallets[i];
        let hash = stablelane::messages::viewing_key_message(key.address())
            .eip712_signing_hash(&domain(d.chain_id, d.settlement));
        self.sequencer
            .register_viewing_key(key.address(), key.sign_hash_sync(&hash)?)
            .await?;
        Ok(())
    }

    /// The committed state rebuilt from the chain alone.
    async fn chain_sync(&self) -> Result<stablelane::sync::SyncedState> {
        let d = self.devnet.description();
        Ok(stablelane::sync::chain_sync(
            &stablelane::sync::ChainSyncConfig {
                l2_rpc_url: self.devnet.rpc_url(),
                settlement: d.settlement,
                from_block: d.deploy_block,
                max_block_range: 1_000,
                up_to: None,
            },
            |_| {},
        )
        .await?)
    }

    fn balance(&self, who: Address) -> Amount {
        self.sequencer.read(|s| s.ledger().balance(who, self.usdc))
    }

    async fn token_balance(&self, who: Address) -> Result<U256> {
        Ok(TestStablecoin::new(self.usdc, self.provider())
            .balanceOf(who)
            .call()
            .await?)
    }

    /// Block numbers of every `BatchCommitted` event, in log order.
    async fn committed_events(&self) -> Result<Vec<u64>> {
        let d = self.devnet.description();
        let logs = self
            .provider()
            .get_logs(
                &Filter::new()
                    .address(d.settlement)
                    .event_signature(Settlement::BatchCommitted::SIGNATURE_HASH)
                    .from_block(d.deploy_block),
            )
            .await?;
        logs.iter()
            .map(|l| {
                Settlement::BatchCommitted::decode_log_data(l.data())
                    .map(|e| e.batchNumber)
                    .map_err(Into::into)
            })
            .collect()
    }

    /// Moves the chain's clock past the finalization delay and mines a block.
    async fn pass_time(&self, seconds: u64) -> Result<()> {
        self.provider().anvil_increase_time(seconds).await?;
        self.provider().anvil_mine(Some(1), None).await?;
        Ok(())
    }
}

fn open_sequencer(
    devnet: &Devnet,
    dir: &std::path::Path,
    operator: &PrivateKeySigner,
) -> Result<Sequencer> {
    let d = devnet.description();
    Ok(Sequencer::open(
        SequencerConfig {
            journal_dir: dir.join("journal"),
            store_dir: dir.join("state.sled"),
            journal: Default::default(),
            intake_queue_max: 256,
            group_max: 64,
            ledger: LedgerConfig {
                tokens: d
                    .tokens
                    .iter()
                    .map(|t| (t.address, Amount(10_000)))
                    .collect(),
                fee_recipient: operator.address(),
                operator_secret: B256::repeat_byte(3),
                slots_max: 1_000,
            },
            domain: domain(d.chain_id, d.settlement),
            batch: Default::default(),
            sealed_history: stablelane_sequencer::sealed::DEFAULT_HISTORY,
            snapshot: stablelane_sequencer::SnapshotConfig::off(),
        },
        d.receipt_signer.signer()?,
    )?)
}

/// Steps `settler` until it reports batch `n` committed (anvil mines a sent transaction
/// asynchronously, so the step after a send may not see it yet); the batches it reported
/// committed meanwhile.
async fn step_until_committed(settler: &Settler, n: u64) -> Result<Vec<u64>> {
    let mut committed = Vec::new();
    for _ in 0..100 {
        committed.extend(settler.step().await?.committed);
        if committed.contains(&n) {
            return Ok(committed);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(eyre!("batch {n} not committed; saw {committed:?}"))
}

/// Claims every withdrawal of batch `number` paying `recipient`, with proofs built from
/// the node's batch (as `stablelane wallet claim` does).
async fn claim(node: &Node, number: u64, recipient: &PrivateKeySigner) -> Result<u128> {
    let (batch, _) = node
        .sequencer
        .batch(number)?
        .ok_or_else(|| eyre!("no batch {number}"))?;
    let list = batch.contract_withdrawals();
    let provider = wallet_provider(&node.devnet.rpc_url(), std::slice::from_ref(recipient))?;
    let settlement = Settlement::new(node.devnet.description().settlement, provider);
    let mut total = 0;
    for w in batch
        .withdrawals
        .iter()
        .filter(|w| w.recipient == recipient.address())
    {
        let proof = withdrawal_proof(&list, w.index as usize).ok_or_else(|| eyre!("no proof"))?;
        let receipt = settlement
            .claimWithdrawal(
                number,
                w.index,
                w.recipient,
                w.token,
                w.amount.base_units(),
                proof,
            )
            .send()
            .await?
            .get_receipt()
            .await?;
        ensure!(receipt.status(), "claim reverted");
        total += w.amount.base_units();
    }
    Ok(total)
}

#[tokio::test(flavor = "multi_thread")]
async fn deposit_transfer_batch_commit_finalize_claim() -> Result<()> {
    let node = Node::start().await?;
    let l2 = node.devnet.rpc_url();
    let watcher = node.watcher(&l2)?;
    let settler = node.settler(&l2, Duration::from_secs(60))?;
    let (alice, bob) = (node.wallets[0].address(), node.wallets[1].address());

    // Alice registers her viewing key before her deposit is credited.
    let d = node.devnet.description().clone();
    let deployment = domain(d.chain_id, d.settlement);
    node.register(0).await?;
    node.deposit(0, 100_000_000).await?;
    assert_eq!(watcher.step().await?.deposits, 1);
    assert_eq!(node.balance(alice), Amount(100_000_000));
    node.transfer(0, bob, 25_000_000).await?;
    node.transfer(0, bob, 5_000_000).await?;
    // Bob withdraws to his own on-chain address.
    node.withdraw(1, bob, 10_000_000).await?;
    assert_eq!(node.balance(bob), Amount(19_990_000));

    assert_eq!(node.sequencer.seal_batch().await?, Some(1));
    let report = settler.step().await?;
    assert!(report.sent.is_some(), "{report:?}");
    assert_eq!(step_until_committed(&settler, 1).await?, vec![1]);
    let settlement = node.settlement();
    assert_eq!(settlement.lastBatchNumber().call().await?, 1);
    assert_eq!(settlement.stateRoot().call().await?, node.sequencer.root()?);
    let (_, chain) = node.sequencer.batch(1)?.ok_or_else(|| eyre!("no batch"))?;
    assert_eq!(chain.status, BatchStatus::Committed);
    assert!(chain.l2_tx_hash.is_some());
    // Nothing more to send.
    assert_eq!(settler.step().await?.sent, None);

    // Not claimable before the finalization delay.
    let (batch, _) = node.sequencer.batch(1)?.ok_or_else(|| eyre!("no batch"))?;
    let list = batch.contract_withdrawals();
    let early = settlement
        .claimWithdrawal(
            1,
            0,
            bob,
            node.usdc,
            10_000_000,
            withdrawal_proof(&list, 0).ok_or_else(|| eyre!("proof"))?,
        )
        .call()
        .await;
    assert!(early.is_err(), "claimable before finalization");

    node.pass_time(FINALIZATION_DELAY_S + 1).await?;
    let report = settler.step().await?;
    assert_eq!(
        report.finalized,
        vec![1],
        "{report:?} {:?}",
        node.sequencer.batch(1)?.map(|b| b.1)
    );
    let (_, chain) = node.sequencer.batch(1)?.ok_or_else(|| eyre!("no batch"))?;
    assert_eq!(chain.status, BatchStatus::Finalized);

    let before = node.token_balance(bob).await?;
    assert_eq!(claim(&node, 1, &node.wallets[1]).await?, 10_000_000);
    assert_eq!(
        node.token_balance(bob).await?,
        before + U256::from(10_000_000u64)
    );

    // A second batch continues from the first root; each committed once, in order.
    node.transfer(1, alice, 1_000_000).await?;
    assert_eq!(node.sequencer.seal_batch().await?, Some(2));
    assert_eq!(step_until_committed(&settler, 2).await?, vec![2]);
    assert_eq!(node.committed_events().await?, vec![1, 2]);
    assert_eq!(settlement.stateRoot().call().await?, node.sequencer.root()?);

    // Anyone rebuilds the tree from the commits' calldata and checks every root.
    let synced = node.chain_sync().await?;
    assert_eq!(synced.last_batch(), 2);
    assert_eq!(synced.root(), node.sequencer.root()?);
    for b in synced.batches() {
        let (sealed, _) = node
            .sequencer
            .batch(b.number)?
            .ok_or_else(|| eyre!("no batch"))?;
        assert_eq!(b.new_root, sealed.new_root);
    }
    // Alice, with only chain data and her key: open her last note, recompute her leaf.
    let slot = synced
        .slot_index(alice, node.usdc)
        .ok_or_else(|| eyre!("alice has no slot on-chain"))?;
    let note = synced.note(slot).ok_or_else(|| eyre!("no note"))?;
    let vk = stablelane::signing::derive_viewing_key(&node.wallets[0], &deployment)?;
    let (balance, nonce) =
        stablelane_contracts::batch_body::open_note(&vk, note.batch, slot.into(), &note.note);
    assert_eq!(Amount(balance), node.balance(alice));
    assert_eq!(
        Nonce(nonce),
        node.sequencer.read(|s| s.ledger().nonce(alice, node.usdc))
    );
    let salt = stablelane::salt::derive_salt(&vk, alice, node.usdc);
    let leaf = stablelane_circuits::leaf_hash(
        alice.0 .0,
        node.usdc.0 .0,
        balance,
        nonce,
        stablelane_circuits::field::fr_from_be_bytes(&salt.0)?,
    );
    assert_eq!(
        synced.leaf(slot),
        Some(B256::from(stablelane_circuits::field::fr_to_be_bytes(
            &leaf
        )))
    );
    let path = synced.path(slot).ok_or_else(|| eyre!("no path"))?;
    assert!(path.verify(
        stablelane_circuits::field::fr_from_be_bytes(&synced.root().0)?,
        slot,
        leaf
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn forced_withdrawal_is_served_before_its_deadline() -> Result<()> {
    let node = Node::start().await?;
    let l2 = node.devnet.rpc_url();
    let watcher = node.watcher(&l2)?;
    let settler = node.settler(&l2, Duration::from_secs(60))?;
    let carol = node.wallets[2].clone();
    // Carol has the payout sent to dave (as a USDC-blacklisted owner would have to).
    let dave = node.wallets[3].clone();

    node.deposit(2, 7_000_000).await?;
    watcher.step().await?;
    settler.step().await?; // nothing sealed yet: no forced request, batch not old
    assert_eq!(node.settlement().lastBatchNumber().call().await?, 0);

    // Carol asks the contract, not the node.
    let provider = wallet_provider(&l2, std::slice::from_ref(&carol))?;
    let receipt = Settlement::new(node.devnet.description().settlement, provider)
        .requestForcedWithdrawal(node.usdc, dave.address())
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "request reverted");

    // The node serves it on its own: watcher queues it, the settler seals at once (a forced
    // request is waiting) and commits.
    assert_eq!(watcher.step().await?.forced, 1);
    assert_eq!(node.balance(carol.address()), Amount(0));
    let report = settler.step().await?;
    assert_eq!(report.sealed, Some(1));
    assert!(report.sent.is_some());
    step_until_committed(&settler, 1).await?;
    let settlement = node.settlement();
    assert_eq!(settlement.forcedConsumed().call().await?, 1);
    // Before the deadline: exodus cannot be activated.
    assert!(settlement.activateExodus().call().await.is_err());

    let (batch, _) = node.sequencer.batch(1)?.ok_or_else(|| eyre!("no batch"))?;
    assert_eq!(batch.withdrawals.len(), 1);
    assert_eq!(batch.withdrawals[0].forced_index, Some(0));
    assert_eq!(batch.withdrawals[0].recipient, dave.address());
    node.pass_time(FINALIZATION_DELAY_S + 1).await?;
    settler.step().await?;
    let carol_before = node.token_balance(carol.address()).await?;
    let dave_before = node.token_balance(dave.address()).await?;
    assert_eq!(claim(&node, 1, &carol).await?, 0, "nothing for the owner");
    assert_eq!(claim(&node, 1, &dave).await?, 7_000_000);
    assert_eq!(
        node.token_balance(dave.address()).await?,
        dave_before + U256::from(7_000_000u64),
        "paid to the named recipient"
    );
    assert_eq!(node.token_balance(carol.address()).await?, carol_before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_gone_exodus_refunds_unprocessed_deposits() -> Result<()> {
    let node = Node::start().await?;
    let alice = node.wallets[0].address();
    // A deposit the (stopped) operator never consumes.
    node.deposit(0, 3_000_000).await?;
    // The operator runs no watcher and no settler from here on.
    let settlement = node.settlement();
    assert!(
        settlement.activateExodus().call().await.is_err(),
        "exodus before any deadline"
    );
    node.pass_time(DEADLINE_S + 1).await?;

    // Anyone (here wallet 1) activates exodus and refunds alice's deposit.
    let bob = node.wallets[1].clone();
    let provider = wallet_provider(&node.devnet.rpc_url(), &[bob])?;
    let as_bob = Settlement::new(node.devnet.description().settlement, provider);
    let receipt = as_bob.activateExodus().send().await?.get_receipt().await?;
    ensure!(receipt.status(), "activateExodus reverted");
    assert!(settlement.exodus().call().await?);
    let before = node.token_balance(alice).await?;
    let receipt = as_bob
        .refundDeposit(0, alice, alice)
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "refund reverted");
    assert_eq!(
        node.token_balance(alice).await?,
        before + U256::from(3_000_000u64)
    );
    // Once only.
    assert!(as_bob.refundDeposit(0, alice, alice).call().await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deposit_the_ledger_cannot_hold_is_refused_in_a_batch_and_refundable() -> Result<()> {
    let node = Node::start().await?;
    let d = node.devnet.description().clone();
    let [alice, bob, carol] = [0, 1, 2].map(|i| node.wallets[i].address());
    let max = stablelane_ledger::BALANCE_MAX;
    // The owner mints alice the contract's largest deposit.
    let owner: PrivateKeySigner = d.owner.private_key.parse()?;
    let as_owner = wallet_provider(&node.devnet.rpc_url(), std::slice::from_ref(&owner))?;
    let receipt = TestStablecoin::new(node.usdc, as_owner)
        .mint(alice, U256::from(max))
        .from(owner.address())
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "mint reverted");

    // Deposit 0 fills alice's slot to the ledger's bound; deposit 1 cannot be credited to
    // it; deposit 2 (bob's) comes after it in the queue.
    node.deposit(0, max).await?;
    node.deposit(0, 2_000_000).await?;
    node.deposit(1, 3_000_000).await?;
    let watcher = node.watcher(&node.devnet.rpc_url())?;
    let report = watcher.step().await?;
    assert_eq!(
        report.deposits, 3,
        "the queue did not stop at the refused deposit"
    );
    assert_eq!(node.sequencer.read(|s| s.ledger().deposits_consumed()), 3);
    assert_eq!(node.balance(alice), Amount(max));
    assert_eq!(node.balance(bob), Amount(3_000_000));

    // The batch consumes all three and lists deposit 1 as refused.
    assert_eq!(node.sequencer.seal_batch().await?, Some(1));
    let (batch, _) = node.sequencer.batch(1)?.ok_or_else(|| eyre!("no batch"))?;
    assert_eq!(
        stablelane_contracts::batch_data::decode_batch_data(&batch.data)?.refused,
        vec![1]
    );
    let settler = node.settler(&node.devnet.rpc_url(), Duration::from_secs(60))?;
    step_until_committed(&settler, 1).await?;
    let settlement = node.settlement();
    assert_eq!(settlement.depositsConsumed().call().await?, 3);
    assert!(settlement.depositEntry(1).call().await?.refused);
    assert!(!settlement.depositEntry(0).call().await?.refused);
    assert_eq!(
        settlement.refusedDeposits(node.usdc).call().await?,
        U256::from(2_000_000u64)
    );
    assert_eq!(
        settlement.ledgerSupply(node.usdc).call().await?,
        U256::from(max) + U256::from(3_000_000u64)
    );
    // Anyone can rebuild the committed root from calldata (data version 3).
    assert_eq!(node.chain_sync().await?.batches()[0].refused_deposits, 1);

    // Without exodus: bob may not redirect alice's refund; alice names carol as payee.
    let as_bob = Settlement::new(
        d.settlement,
        wallet_provider(&node.devnet.rpc_url(), &[node.wallets[1].clone()])?,
    );
    assert!(as_bob.refundDeposit(1, alice, bob).call().await.is_err());
    assert!(
        as_bob.refundDeposit(0, alice, alice).call().await.is_err(),
        "a credited deposit is not refundable"
    );
    let as_alice = Settlement::new(
        d.settlement,
        wallet_provider(&node.devnet.rpc_url(), &[node.wallets[0].clone()])?,
    );
    let before = node.token_balance(carol).await?;
    let receipt = as_alice
        .refundDeposit(1, alice, carol)
        .from(alice)
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "refund reverted");
    assert_eq!(
        node.token_balance(carol).await?,
        before + U256::from(2_000_000u64)
    );
    assert!(!settlement.exodus().call().await?);
    assert!(
        as_alice
            .refundDeposit(1, alice, alice)
            .call()
            .await
            .is_err(),
        "once only"
    );

    // A restart replays the refusal: same balances, same queue position, same batch data.
    // The watcher and settler hold the sequencer: the writer stops once they are gone.
    drop((watcher, settler));
    let data = batch.data.clone();
    let node = node.restart().await?;
    assert_eq!(node.sequencer.read(|s| s.ledger().deposits_consumed()), 3);
    assert_eq!(node.balance(alice), Amount(max));
    assert_eq!(node.balance(bob), Amount(3_000_000));
    let (again, _) = node.sequencer.batch(1)?.ok_or_else(|| eyre!("no batch"))?;
    assert_eq!(again.data, data);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn l2_outage_during_commit_then_every_batch_committed_once_in_order() -> Result<()> {
    let node = Node::start().await?;
    let proxy = Proxy::start(&node.devnet.rpc_url()).await?;
    let l2 = proxy.url();
    let watcher = node.watcher(&l2)?;
    let settler = node.settler(&l2, Duration::from_secs(60))?;
    let bob = node.wallets[1].address();
    node.deposit(0, 50_000_000).await?;
    watcher.step().await?;
    node.transfer(0, bob, 1_000_000).await?;
    assert_eq!(node.sequencer.seal_batch().await?, Some(1));

    // The settler sends the commit of batch 1, and the L2 goes away before it has seen
    // the commit included.
    assert!(settler.step().await?.sent.is_some());
    proxy.set_up(false);
    assert!(settler.step().await.is_err());
    // The node keeps accepting transfers and sealing batches meanwhile.
    for n in 2..=3 {
        node.transfer(0, bob, 1_000_000).await?;
        assert_eq!(node.sequencer.seal_batch().await?, Some(n));
        assert!(settler.step().await.is_err());
    }
    assert_eq!(node.settlement().lastBatchNumber().call().await?, 1);

    // Back: every batch committed exactly once, in order.
    proxy.set_up(true);
    step_until_committed(&settler, 3).await?;
    assert_eq!(node.committed_events().await?, vec![1, 2, 3]);
    assert_eq!(
        node.settlement().stateRoot().call().await?,
        node.sequencer.root()?
    );
    for n in 1..=3 {
        let (_, chain) = node.sequencer.batch(n)?.ok_or_else(|| eyre!("no batch"))?;
        assert_eq!(chain.status, BatchStatus::Committed, "batch {n}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_between_commit_and_confirmation_neither_doubles_nor_skips() -> Result<()> {
    let node = Node::start().await?;
    let l2 = node.devnet.rpc_url();
    let bob = node.wallets[1].address();
    node.deposit(0, 50_000_000).await?;
    node.watcher(&l2)?.step().await?;
    node.transfer(0, bob, 2_000_000).await?;
    assert_eq!(node.sequencer.seal_batch().await?, Some(1));

    // Blocks stop: the commit is sent but not included.
    node.provider().anvil_set_auto_mine(false).await?;
    let settler = node.settler(&l2, Duration::from_secs(3_600))?;
    let (_, first_hash) = settler
        .step()
        .await?
        .sent
        .ok_or_else(|| eyre!("nothing sent"))?;
    drop(settler);

    // The node restarts (and seals another batch) before the commit is confirmed.
    let node = node.restart().await?;
    node.transfer(0, bob, 3_000_000).await?;
    assert_eq!(node.sequencer.seal_batch().await?, Some(2));
    let (_, chain) = node.sequencer.batch(1)?.ok_or_else(|| eyre!("no batch"))?;
    let in_flight = chain
        .in_flight
        .ok_or_else(|| eyre!("in-flight commit forgotten"))?;
    assert_eq!(in_flight.tx_hashes, vec![first_hash]);

    // The restarted settler does not send batch 1 again while its commit is pending...
    let settler = node.settler(&l2, Duration::from_secs(3_600))?;
    assert_eq!(settler.step().await?.sent, None);
    // ...and once blocks come, batch 1 is committed by that transaction, then batch 2.
    node.provider().anvil_mine(Some(1), None).await?;
    node.provider().anvil_set_auto_mine(true).await?;
    assert_eq!(step_until_committed(&settler, 1).await?, vec![1]);
    let (_, chain) = node.sequencer.batch(1)?.ok_or_else(|| eyre!("no batch"))?;
    assert_eq!(chain.l2_tx_hash, Some(first_hash));
    assert_eq!(step_until_committed(&settler, 2).await?, vec![2]);
    assert_eq!(node.committed_events().await?, vec![1, 2]);

    // A stuck commit is replaced under the same nonce with higher fees; one is mined.
    node.transfer(0, bob, 1_000_000).await?;
    assert_eq!(node.sequencer.seal_batch().await?, Some(3));
    node.provider().anvil_set_auto_mine(false).await?;
    let impatient = node.settler(&l2, Duration::ZERO)?;
    let (_, first) = impatient
        .step()
        .await?
        .sent
        .ok_or_else(|| eyre!("not sent"))?;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (_, second) = impatient
        .step()
        .await?
        .sent
        .ok_or_else(|| eyre!("not replaced"))?;
    assert_ne!(first, second);
    let (_, chain) = node.sequencer.batch(3)?.ok_or_else(|| eyre!("no batch"))?;
    let in_flight = chain.in_flight.ok_or_else(|| eyre!("no in-flight"))?;
    assert_eq!(in_flight.tx_hashes, vec![first, second]);
    node.provider().anvil_mine(Some(1), None).await?;
    node.provider().anvil_set_auto_mine(true).await?;
    assert_eq!(step_until_committed(&impatient, 3).await?, vec![3]);
    assert_eq!(node.committed_events().await?, vec![1, 2, 3]);
    let (_, chain) = node.sequencer.batch(3)?.ok_or_else(|| eyre!("no batch"))?;
    assert_eq!(chain.l2_tx_hash, Some(second));
    Ok(())
}

/// A TCP proxy in front of anvil that can be cut: while down, open connections are closed
/// and new ones closed at once, so the node sees the L2 vanish and come back while anvil
/// keeps its state (a restarted anvil would lose the chain).
struct Proxy {
    addr: std::net::SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: &str) -> Result<Self> {
        let target = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (up, flag) = tokio::sync::watch::channel(true);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !*flag.borrow() {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let mut flag = flag.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = flag.wait_for(|up| !*up) => {}
                        }
                    }
                });
            }
        });
        Ok(Self { addr, up, task })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_reorged_out_is_committed_again() -> Result<()> {
    let node = Node::start().await?;
    let l2 = node.devnet.rpc_url();
    let watcher = node.watcher(&l2)?;
    let settler = node.settler(&l2, Duration::from_secs(60))?;
    node.deposit(0, 5_000_000).await?;
    watcher.step().await?;
    node.transfer(0, node.wallets[1].address(), 1_000_000)
        .await?;
    assert_eq!(node.sequencer.seal_batch().await?, Some(1));

    // The deposit stays; the commit's block is reorged away.
    let snapshot = node.provider().anvil_snapshot().await?;
    step_until_committed(&settler, 1).await?;
    assert_eq!(node.settlement().lastBatchNumber().call().await?, 1);
    ensure!(
        node.provider().anvil_revert(snapshot).await?,
        "revert failed"
    );
    assert_eq!(node.settlement().lastBatchNumber().call().await?, 0);

    // The settler notices, marks batch 1 sealed again and commits it once more.
    assert_eq!(step_until_committed(&settler, 1).await?, vec![1]);
    assert_eq!(node.committed_events().await?, vec![1]);
    assert_eq!(
        node.settlement().stateRoot().call().await?,
        node.sequencer.root()?
    );
    let (_, chain) = node.sequencer.batch(1)?.ok_or_else(|| eyre!("no batch"))?;
    assert_eq!(chain.status, BatchStatus::Committed);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deposit_reorged_out_before_depth_n_is_never_credited_and_its_reinclusion_once(
) -> Result<()> {
    let node = Node::start().await?;
    let d = node.devnet.description().clone();
    let alice = node.wallets[0].address();
    let watcher = Watcher::new(
        WatcherConfig {
            l2_rpc_url: node.devnet.rpc_url(),
            settlement: d.settlement,
            finality: FinalityMode::Confirmations,
            confirmations: 3,
            poll_interval: Duration::from_millis(50),
            max_block_range: 1_000,
            start_block: d.deploy_block,
            cross_check_rpc_url: None,
        },
        node.sequencer.clone(),
    )?;
    // A deposit at depth 1 (approve + deposit), then the chain reorganises it away.
    let snapshot = node.provider().anvil_snapshot().await?;
    node.deposit(0, 4_000_000).await?;
    assert_eq!(watcher.step().await?.deposits, 0);
    ensure!(
        node.provider().anvil_revert(snapshot).await?,
        "revert failed"
    );
    node.provider().anvil_mine(Some(5), None).await?;
    assert_eq!(watcher.step().await?.deposits, 0);
    assert_eq!(node.balance(alice), Amount(0));

    // Re-included later: credited once it is 3 deep, and only once.
    node.deposit(0, 4_000_000).await?;
    assert_eq!(watcher.step().await?.deposits, 0);
    node.provider().anvil_mine(Some(2), None).await?;
    assert_eq!(watcher.step().await?.deposits, 1);
    node.provider().anvil_mine(Some(3), None).await?;
    assert_eq!(watcher.step().await?.deposits, 0);
    assert_eq!(node.balance(alice), Amount(4_000_000));

    // And the batch consuming it commits against the contract's rolling hash.
    assert_eq!(node.sequencer.seal_batch().await?, Some(1));
    let settler = node.settler(&node.devnet.rpc_url(), Duration::from_secs(60))?;
    step_until_committed(&settler, 1).await?;
    assert_eq!(node.settlement().depositsConsumed().call().await?, 1);
    Ok(())
}

/// Field element of a 32-byte big-endian value below r.
fn fr(bytes: &B256) -> Result<stablelane_circuits::Fr> {
    Ok(stablelane_circuits::field::fr_from_be_bytes(&bytes.0)?)
}

#[tokio::test(flavor = "multi_thread")]
async fn attestation_verifies_on_chain_and_exodus_exit_uses_only_chain_data_and_the_key(
) -> Result<()> {
    use stablelane_circuits::{
        keys::insecure_dev_setup,
        prover::{proof_to_evm, prove},
        AttestationWitness, ChaCha20Rng, SeedableRng,
    };

    let node = Node::start().await?;
    let l2 = node.devnet.rpc_url();
    let d = node.devnet.description().clone();
    let deployment = domain(d.chain_id, d.settlement);
    let watcher = node.watcher(&l2)?;
    let settler = node.settler(&l2, Duration::from_secs(60))?;
    let alice_key = node.wallets[0].clone();
    let alice = alice_key.address();
    node.register(0).await?;
    node.deposit(0, 9_000_000).await?;
    watcher.step().await?;
    node.transfer(0, node.wallets[1].address(), 2_000_000)
        .await?;
    assert_eq!(node.sequencer.seal_batch().await?, Some(1));
    step_until_committed(&settler, 1).await?;
    let balance_now = node.balance(alice).base_units();

    // From here on only chain data and alice's key: rebuild, open the note, build the witness.
    let synced = node.chain_sync().await?;
    let vk = stablelane::signing::derive_viewing_key(&alice_key, &deployment)?;
    let slot = synced
        .slot_index(alice, node.usdc)
        .ok_or_else(|| eyre!("no slot"))?;
    let note = synced.note(slot).ok_or_else(|| eyre!("no note"))?;
    let (balance, nonce) =
        stablelane_contracts::batch_body::open_note(&vk, note.batch, slot.into(), &note.note);
    assert_eq!(balance, balance_now);
    let salt = stablelane::salt::derive_salt(&vk, alice, node.usdc);
    let witness =
        |threshold: u128, context: stablelane_circuits::Fr| -> Result<AttestationWitness> {
            Ok(AttestationWitness {
                root: fr(&synced.root())?,
                owner: alice.0 .0,
                token: node.usdc.0 .0,
                threshold,
                context,
                balance,
                nonce,
                salt: fr(&salt)?,
                slot,
                path: synced.path(slot).ok_or_else(|| eyre!("no path"))?,
            })
        };
    let (proving_key, _) = insecure_dev_setup()?;
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let evm =
        |proof: &stablelane_circuits::prover::Proof| proof_to_evm(proof).map(U256::from_be_bytes);

    // An attestation "alice holds at least 5 USDC in batch 1's root", bound to context 42.
    let proof = prove(
        &proving_key,
        &witness(5_000_000, stablelane_circuits::Fr::from(42u64))?,
        &mut rng,
    )?;
    let words = evm(&proof);
    let settlement = node.settlement();
    let check = |owner: Address, threshold: u128, context: u64| {
        let settlement = settlement.clone();
        async move {
            settlement
                .verifyAttestation(
                    1,
                    0,
                    owner,
                    node.usdc,
                    threshold,
                    U256::from(context),
                    words,
                )
                .call()
                .await
        }
    };
    // Batch 1 is still in its challenge window: the contract accepts no attestation under it.
    let early = check(alice, 5_000_000, 42)
        .await
        .expect_err("verifyAttestation accepted a batch in its window");
    assert!(
        matches!(
            early.as_decoded_interface_error::<Settlement::SettlementErrors>(),
            Some(Settlement::SettlementErrors::NotFinalized(_))
        ),
        "{early}"
    );
    node.pass_time(FINALIZATION_DELAY_S + 1).await?;
    assert!(check(alice, 5_000_000, 42).await?);
    assert!(
        !check(alice, 5_000_000, 43).await?,
        "replayed with another context"
    );
    assert!(
        !check(node.wallets[1].address(), 5_000_000, 42).await?,
        "another owner"
    );
    assert!(!check(alice, 5_000_001, 42).await?, "another threshold");
    // Above the balance: no proof at all.
    assert!(prove(
        &proving_key,
        &witness(balance + 1, stablelane_circuits::Fr::from(1u64))?,
        &mut rng
    )
    .is_err());

    // The operator disappears; bob's later deposit is never consumed; its deadline passes.
    node.deposit(1, 1_000_000).await?;
    node.pass_time(DEADLINE_S + 1).await?;
    let as_alice = Settlement::new(
        d.settlement,
        wallet_provider(&l2, std::slice::from_ref(&alice_key))?,
    );
    let receipt = as_alice
        .activateExodus()
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "activateExodus reverted");

    // Alice exits with exactly her balance, proven against the last committed root, paid
    // to dave (the address she names; the context binds it).
    let dave = node.wallets[3].address();
    let context = settlement.exitContext(alice, dave).call().await?;
    assert_eq!(
        context,
        stablelane::exit_context(d.chain_id, d.settlement, alice, dave)
    );
    let exit_proof = prove(
        &proving_key,
        &witness(balance, fr(&B256::from(context))?)?,
        &mut rng,
    )?;
    // The proof for dave does not verify for any other recipient.
    for other in [alice, node.wallets[1].address()] {
        let err = as_alice
            .exit(node.usdc, balance, other, evm(&exit_proof))
            .call()
            .await
            .expect_err("an exit to another recipient must revert");
        assert!(
            matches!(
                err.as_decoded_interface_error::<Settlement::SettlementErrors>(),
                Some(Settlement::SettlementErrors::InvalidProof(_))
            ),
            "{err}"
        );
    }
    let alice_before = node.token_balance(alice).await?;
    let dave_before = node.token_balance(dave).await?;
    let receipt = as_alice
        .exit(node.usdc, balance, dave, evm(&exit_proof))
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "exit reverted");
    let exited = receipt
        .decoded_log::<Settlement::Exited>()
        .ok_or_else(|| eyre!("no Exited event"))?;
    assert_eq!(
        (exited.owner, exited.recipient, exited.amount),
        (alice, dave, balance)
    );
    assert_eq!(
        node.token_balance(dave).await?,
        dave_before + U256::from(balance),
        "paid to the named recipient"
    );
    assert_eq!(node.token_balance(alice).await?, alice_before);
    // A second exit of the same slot reverts.
    assert!(as_alice
        .exit(node.usdc, balance, dave, evm(&exit_proof))
        .call()
        .await
        .is_err());
    Ok(())
}
