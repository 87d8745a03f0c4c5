//! End-to-end: the devnet's deployment, and the settlement contract driven from Rust through
//! the committed artifacts, checked against the Rust mirror of its hashes and data layout.

use alloy::{
    primitives::{B256, U256},
    providers::ext::AnvilApi,
};
use eyre::{ensure, eyre, Result};
use stablelane_contracts::{
    batch_data::{self, Withdrawal},
    Settlement, TestStablecoin,
};
use stablelane_devnet::{deploy::genesis_root, DeployConfig};
use stablelane_tests::start_devnet;

const FINALIZATION_DELAY_S: u64 = 30;

fn config() -> DeployConfig {
    DeployConfig {
        finalization_delay_s: FINALIZATION_DELAY_S,
        ..DeployConfig::default()
    }
}

/// Decodes the settlement contract's custom error out of a failed call or send.
fn settlement_error(err: &alloy::contract::Error) -> Option<Settlement::SettlementErrors> {
    err.as_decoded_interface_error::<Settlement::SettlementErrors>()
}

#[tokio::test(flavor = "multi_thread")]
async fn devnet_deploys_mints_and_describes_itself() -> Result<()> {
    let devnet = start_devnet(config()).await?;
    let d = devnet.description().clone();
    let provider = devnet.provider().clone();

    assert_eq!(d.chain_id, 31337);
    // Ten anvil accounts: owner, operator, guardian and seven wallets.
    assert_eq!(d.dev_accounts.len(), 7);
    assert_ne!(d.owner.address, d.operator.address);
    let contract = Settlement::new(d.settlement, provider.clone());
    assert_eq!(contract.guardian().call().await?, d.guardian.address);
    assert_eq!(contract.operator().call().await?, d.operator.address);
    // The devnet's receipt signer is a key of its own, and it has no outflow limit.
    assert_ne!(d.receipt_signer.address, d.operator.address);
    assert_eq!(
        contract.receiptSigner().call().await?,
        d.receipt_signer.address
    );
    assert_eq!(contract.outflowLimitBps().call().await?, 0);
    assert_eq!(
        contract.outflowAllowance(d.operator.address).call().await?,
        U256::MAX
    );
    assert!(!d
        .dev_accounts
        .iter()
        .any(|a| a.address == d.guardian.address));
    let usdc = d.token("usdc").ok_or_else(|| eyre!("no USDC"))?;
    let dai = d.token("DAI").ok_or_else(|| eyre!("no DAI"))?;
    assert_eq!((usdc.decimals, dai.decimals), (6, 18));

    let settlement = Settlement::new(d.settlement, provider.clone());
    assert_eq!(settlement.stateRoot().call().await?, genesis_root());
    assert_eq!(settlement.lastBatchNumber().call().await?, 0);
    assert_eq!(settlement.operator().call().await?, d.operator.address);
    assert_eq!(settlement.owner().call().await?, d.owner.address);
    assert_eq!(settlement.verifier().call().await?, d.verifier);
    assert_eq!(
        settlement.tokens().call().await?,
        vec![usdc.address, dai.address]
    );
    assert_eq!(
        settlement.finalizationDelay().call().await?,
        FINALIZATION_DELAY_S
    );

    for token in [usdc, dai] {
        let erc20 = TestStablecoin::new(token.address, provider.clone());
        assert_eq!(erc20.decimals().call().await?, token.decimals);
        let expected = U256::from(1_000_000u64) * U256::from(10u64).pow(U256::from(token.decimals));
        for account in &d.dev_accounts {
            assert_eq!(erc20.balanceOf(account.address).call().await?, expected);
        }
        assert_eq!(
            erc20.balanceOf(d.operator.address).call().await?,
            U256::ZERO
        );
    }

    // The devnet's generated verifier rejects a garbage proof (false, no revert).
    let accepted = settlement
        .verifyAttestation(
            0,
            0,
            d.dev_accounts[0].address,
            usdc.address,
            1,
            U256::from(7),
            [U256::from(1); 8],
        )
        .call()
        .await?;
    assert!(!accepted);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deposit_commit_claim_matches_the_rust_mirror() -> Result<()> {
    let devnet = start_devnet(config()).await?;
    let d = devnet.description().clone();
    let provider = devnet.provider().clone();
    let settlement = Settlement::new(d.settlement, provider.clone());
    let usdc = d.token("USDC").ok_or_else(|| eyre!("no USDC"))?.address;
    let token = TestStablecoin::new(usdc, provider.clone());
    let alice = d.dev_accounts[0].address;
    let bob = d.dev_accounts[1].address;
    let operator = d.operator.address;

    // Deposit 100 USDC for alice.
    let amount: u128 = 100_000_000;
    token
        .approve(d.settlement, U256::from(amount))
        .from(alice)
        .send()
        .await?
        .get_receipt()
        .await?;
    let receipt = settlement
        .deposit(usdc, U256::from(amount), alice)
        .from(alice)
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "deposit reverted");
    let deposited = receipt
        .decoded_log::<Settlement::Deposited>()
        .ok_or_else(|| eyre!("no Deposited event"))?;
    let expected_hash = batch_data::deposit_hash(B256::ZERO, alice, usdc, amount);
    assert_eq!(deposited.rollingHash, expected_hash);
    assert_eq!(deposited.amount, amount);
    assert_eq!(settlement.depositHashAt(1).call().await?, expected_hash);
    assert_eq!(
        settlement.pendingDeposits(usdc).call().await?,
        U256::from(amount)
    );

    // A forced-withdrawal request paid to a recipient bob names (alice), hashed the same
    // way in Rust.
    let receipt = settlement
        .requestForcedWithdrawal(usdc, alice)
        .from(bob)
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "forced request reverted");
    let requested = receipt
        .decoded_log::<Settlement::ForcedWithdrawalRequested>()
        .ok_or_else(|| eyre!("no ForcedWithdrawalRequested event"))?;
    assert_eq!(
        (requested.owner, requested.token, requested.recipient),
        (bob, usdc, alice)
    );
    assert_eq!(
        settlement.forcedHashAt(1).call().await?,
        batch_data::forced_hash(B256::ZERO, bob, usdc, alice)
    );
    assert_ne!(
        requested.rollingHash,
        batch_data::forced_hash(B256::ZERO, bob, usdc, bob),
        "the recipient is bound"
    );
    // The exit context, computed in Rust as the contract does.
    assert_eq!(
        settlement.exitContext(bob, alice).call().await?,
        stablelane::exit_context(d.chain_id, d.settlement, bob, alice)
    );

    // Batch 1 consumes both and withdraws 40 USDC to bob and 10 to alice.
    let withdrawals = vec![
        Withdrawal {
            recipient: bob,
            token: usdc,
            amount_base_units: 40_000_000,
        },
        Withdrawal {
            recipient: alice,
            token: usdc,
            amount_base_units: 10_000_000,
        },
        Withdrawal {
            recipient: bob,
            token: usdc,
            amount_base_units: 1,
        },
    ];
    let data = batch_data::encode_batch_data(&withdrawals, &[], b"opaque leaf section")?;
    let new_root = B256::from(U256::from(123_456_789u64));
    let header = Settlement::BatchHeader {
        batchNumber: 1,
        prevRoot: genesis_root(),
        newRoot: new_root,
        depositsConsumed: 1,
        depositsHash: expected_hash,
        forcedConsumed: 1,
        forcedHash: batch_data::forced_hash(B256::ZERO, bob, usdc, alice),
        dataHash: alloy::primitives::keccak256(&data),
    };

    // Only the operator may commit.
    let err = settlement
        .commitBatch(header.clone(), data.clone().into())
        .from(alice)
        .call()
        .await
        .expect_err("a non-operator commit must revert");
    assert!(matches!(
        settlement_error(&err),
        Some(Settlement::SettlementErrors::NotOperator(_))
    ));

    let receipt = settlement
        .commitBatch(header, data.into())
        .from(operator)
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "commit reverted");
    let committed = receipt
        .decoded_log::<Settlement::BatchCommitted>()
        .ok_or_else(|| eyre!("no BatchCommitted event"))?;
    assert_eq!(
        committed.withdrawalsRoot,
        batch_data::withdrawals_root(&withdrawals)
    );
    assert_eq!(committed.withdrawalCount, 3);
    assert_eq!(settlement.stateRoot().call().await?, new_root);
    assert_eq!(
        settlement.ledgerSupply(usdc).call().await?,
        U256::from(amount - 50_000_001)
    );

    // Not claimable before the finalization delay.
    let proof0 = batch_data::withdrawal_proof(&withdrawals, 0).ok_or_else(|| eyre!("proof"))?;
    let claim0 = settlement.claimWithdrawal(1, 0, bob, usdc, 40_000_000, proof0.clone());
    let err = claim0
        .call()
        .await
        .expect_err("claim before finalization must revert");
    assert!(matches!(
        settlement_error(&err),
        Some(Settlement::SettlementErrors::NotFinalized(_))
    ));

    provider
        .anvil_increase_time(FINALIZATION_DELAY_S + 1)
        .await?;
    provider.anvil_mine(Some(1), None).await?;

    // A proof for another amount does not verify.
    let err = settlement
        .claimWithdrawal(
            1,
            1,
            alice,
            usdc,
            10_000_001,
            batch_data::withdrawal_proof(&withdrawals, 1).unwrap_or_default(),
        )
        .call()
        .await
        .expect_err("a forged amount must revert");
    assert!(matches!(
        settlement_error(&err),
        Some(Settlement::SettlementErrors::InvalidMerkleProof(_))
    ));

    // Every withdrawal pays exactly its amount, once, whoever sends the claim.
    for (index, w) in withdrawals.iter().enumerate() {
        let proof = batch_data::withdrawal_proof(&withdrawals, index)
            .ok_or_else(|| eyre!("proof {index}"))?;
        let before = token.balanceOf(w.recipient).call().await?;
        let index = u32::try_from(index)?;
        let receipt = settlement
            .claimWithdrawal(1, index, w.recipient, w.token, w.amount_base_units, proof)
            .from(operator)
            .send()
            .await?
            .get_receipt()
            .await?;
        ensure!(receipt.status(), "claim {index} reverted");
        let after = token.balanceOf(w.recipient).call().await?;
        assert_eq!(after - before, U256::from(w.amount_base_units));
        assert!(settlement.isClaimed(1, index).call().await?);
    }
    let err = claim0.call().await.expect_err("double claim must revert");
    assert!(matches!(
        settlement_error(&err),
        Some(Settlement::SettlementErrors::AlreadyClaimed(_))
    ));

    // The contract still holds exactly the ledger's supply.
    let held = token.balanceOf(d.settlement).call().await?;
    assert_eq!(held, settlement.ledgerSupply(usdc).call().await?);
    assert_eq!(
        settlement.unclaimedWithdrawals(usdc).call().await?,
        U256::ZERO
    );
    assert_eq!(settlement.pendingDeposits(usdc).call().await?, U256::ZERO);
    Ok(())
}

/// With the limit a real deployment uses (10% per day, 7 days): a fresh deployment's first
/// window starts from an empty ledger, so a batch that credits a deposit and pays out even
/// one base unit of it is delayed by `outflowDelay`, and its withdrawal is not claimable
/// after the usual finalization delay.
#[tokio::test(flavor = "multi_thread")]
async fn outflow_limit_delays_a_batch_over_it() -> Result<()> {
    use stablelane_devnet::deploy::{
        DEFAULT_OUTFLOW_DELAY_S, DEFAULT_OUTFLOW_LIMIT_BPS, DEFAULT_OUTFLOW_PERIOD_S,
    };
    let devnet = start_devnet(config().with_default_outflow_limit()).await?;
    let d = devnet.description().clone();
    let provider = devnet.provider().clone();
    let settlement = Settlement::new(d.settlement, provider.clone());
    assert_eq!(
        settlement.outflowLimitBps().call().await?,
        DEFAULT_OUTFLOW_LIMIT_BPS
    );
    assert_eq!(
        settlement.outflowPeriod().call().await?,
        DEFAULT_OUTFLOW_PERIOD_S
    );
    assert_eq!(
        settlement.outflowDelay().call().await?,
        DEFAULT_OUTFLOW_DELAY_S
    );

    let usdc = d.token("USDC").ok_or_else(|| eyre!("no USDC"))?.address;
    let token = TestStablecoin::new(usdc, provider.clone());
    let alice = d.dev_accounts[0].address;
    let bob = d.dev_accounts[1].address;
    let amount: u128 = 100_000_000;
    token
        .approve(d.settlement, U256::from(amount))
        .from(alice)
        .send()
        .await?
        .get_receipt()
        .await?;
    let receipt = settlement
        .deposit(usdc, U256::from(amount), alice)
        .from(alice)
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "deposit reverted");

    let withdrawals = vec![Withdrawal {
        recipient: bob,
        token: usdc,
        amount_base_units: 1,
    }];
    let data = batch_data::encode_batch_data(&withdrawals, &[], b"")?;
    let header = Settlement::BatchHeader {
        batchNumber: 1,
        prevRoot: genesis_root(),
        newRoot: B256::from(U256::from(42u64)),
        depositsConsumed: 1,
        depositsHash: batch_data::deposit_hash(B256::ZERO, alice, usdc, amount),
        forcedConsumed: 0,
        forcedHash: B256::ZERO,
        dataHash: alloy::primitives::keccak256(&data),
    };
    let receipt = settlement
        .commitBatch(header, data.into())
        .from(d.operator.address)
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "commit reverted");
    let delayed = receipt
        .decoded_log::<Settlement::OutflowDelayed>()
        .ok_or_else(|| eyre!("no OutflowDelayed event"))?;
    let batch = settlement.batch(1).call().await?;
    assert_eq!(
        (
            delayed.batchNumber,
            delayed.token,
            delayed.outflow,
            delayed.limit
        ),
        (1, usdc, U256::from(1), U256::ZERO)
    );
    assert_eq!(
        batch.finalizedAt,
        batch.committedAt + FINALIZATION_DELAY_S + DEFAULT_OUTFLOW_DELAY_S
    );
    assert_eq!(delayed.finalizedAt, batch.finalizedAt);

    provider
        .anvil_increase_time(FINALIZATION_DELAY_S + 1)
        .await?;
    provider.anvil_mine(Some(1), None).await?;
    assert!(!settlement.isFinalized(1).call().await?);
    let proof = batch_data::withdrawal_proof(&withdrawals, 0).ok_or_else(|| eyre!("proof"))?;
    let err = settlement
        .claimWithdrawal(1, 0, bob, usdc, 1, proof)
        .call()
        .await
        .expect_err("a delayed batch is not claimable after the usual delay");
    assert!(matches!(
        settlement_error(&err),
        Some(Settlement::SettlementErrors::NotFinalized(e)) if e.claimableAt == batch.finalizedAt
    ));
    Ok(())
}
