//! `lane_proveBalance` over real HTTP against a sequencer keeping sealed states and a real
//! prover pool (INSECURE dev keys): proofs only under finalized roots, as of the batch asked
//! for (not the live balance), verified with `verify_attestation`; owner authentication,
//! expiry, thresholds above the balance, the history bound, a full queue and the timeout each
//! get their documented code.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use alloy::{
    primitives::{Address, B256},
    signers::local::PrivateKeySigner,
    sol_types::Eip712Domain,
};
use eyre::Result;
use serde_json::{json, Value};
use stablelane::{
    attestation::AttestationVerifier, domain, rpc::BatchStatus, sign, Amount, Attestation,
    ErrorCode, Nonce, ProveBalance, Transfer,
};
use stablelane_circuits::keys::{insecure_dev_setup, ProvingKey};
use stablelane_ledger::{Deposit, LedgerConfig};
use stablelane_rpc::{
    prover::{Prover, ProverLimits},
    AdminToken, Limits, RpcConfig, RpcServer, TokenInfo,
};
use stablelane_sequencer::{BatchChainState, Sequencer, SequencerConfig};
use stablelane_storage::JournalConfig;

const TOKEN: Address = Address::repeat_byte(0xaa);
const SETTLEMENT: Address = Address::repeat_byte(0x11);
const CHAIN_ID: u64 = 31337;
const FEE: u128 = 10;

struct Node {
    _dir: tempfile::TempDir,
    sequencer: Sequencer,
    server: RpcServer,
    alice: PrivateKeySigner,
    bob: PrivateKeySigner,
    domain: Eip712Domain,
    http: reqwest::Client,
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Node {
    async fn start(history: usize, prover: Option<Prover>) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let domain = domain(CHAIN_ID, SETTLEMENT);
        let operator = PrivateKeySigner::random();
        let config = SequencerConfig {
            journal_dir: dir.path().join("journal"),
            store_dir: dir.path().join("state.sled"),
            journal: JournalConfig::default(),
            intake_queue_max: 1024,
            group_max: 256,
            ledger: LedgerConfig {
                tokens: [(TOKEN, Amount(FEE))].into_iter().collect(),
                fee_recipient: Address::repeat_byte(0xee),
                operator_secret: B256::repeat_byte(7),
                slots_max: 10_000,
            },
            domain: domain.clone(),
            batch: Default::default(),
            sealed_history: history,
            snapshot: stablelane_sequencer::SnapshotConfig::off(),
        };
        let sequencer = Sequencer::open(config, operator.clone())?;
        let alice = PrivateKeySigner::random();
        let bob = PrivateKeySigner::random();
        sequencer
            .submit_deposit(Deposit {
                queue_index: 0,
                recipient: alice.address(),
                token: TOKEN,
                amount: Amount(1_000),
            })
            .await?;
        let local = "127.0.0.1:0".parse()?;
        let server = RpcServer::start(
            RpcConfig {
                listen: local,
                admin_listen: local,
                admin_token: AdminToken::new("test-admin-token"),
                operator: operator.address(),
                tokens: vec![TokenInfo {
                    address: TOKEN,
                    symbol: "USDC".into(),
                    decimals: 6,
                }],
                limits: Limits::default(),
                admin_limits: Limits::default(),
                dev_deposits: false,
                prover: prover.map(Arc::new),
            },
            sequencer.clone(),
        )
        .await?;
        Ok(Self {
            _dir: dir,
            sequencer,
            server,
            alice,
            bob,
            domain,
            http: reqwest::Client::new(),
        })
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        Ok(self
            .http
            .post(format!("http://{}", self.server.local_addr()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?
            .json()
            .await?)
    }

    fn request(&self, signer: &PrivateKeySigner, threshold: u128, batch: u64) -> Result<Value> {
        Ok(serde_json::to_value(sign(
            signer,
            ProveBalance {
                owner: self.alice.address(),
                token: TOKEN,
                threshold: Amount(threshold),
                challenge: B256::repeat_byte(0x5a),
                batch,
                expiry: now_s() + 300,
            },
            &self.domain,
        )?)?)
    }

    async fn prove(&self, request: Value) -> Result<std::result::Result<Attestation, i64>> {
        let response = self.call("lane_proveBalance", json!([request])).await?;
        Ok(match response.get("error") {
            Some(error) => Err(error["code"].as_i64().unwrap_or_default()),
            None => Ok(serde_json::from_value(response["result"].clone())?),
        })
    }

    /// Alice pays bob `amount` (fee FEE) with nonce `nonce`.
    async fn pay(&self, amount: u128, nonce: u64) -> Result<()> {
        let transfer = Transfer {
            from: self.alice.address(),
            to: self.bob.address(),
            token: TOKEN,
            amount: Amount(amount),
            fee: Amount(FEE),
            nonce: Nonce(nonce),
            valid_until: now_s() + 3600,
        };
        self.sequencer
            .submit_transfer(sign(&self.alice, transfer, &self.domain)?)
            .await?;
        Ok(())
    }

    /// Seals the open batch and marks it finalized, as the settler would once its
    /// finalization delay passed.
    async fn seal_finalized(&self) -> Result<u64> {
        let number = self
            .sequencer
            .seal_batch()
            .await?
            .ok_or_else(|| eyre::eyre!("nothing to seal"))?;
        self.sequencer.set_batch_chain_state(
            number,
            &BatchChainState {
                status: BatchStatus::Finalized,
                ..BatchChainState::default()
            },
        )?;
        Ok(number)
    }
}

fn dev_key() -> Result<ProvingKey> {
    Ok(insecure_dev_setup()?.0)
}

fn code(error: ErrorCode) -> i64 {
    i64::from(error.code())
}

#[tokio::test(flavor = "multi_thread")]
async fn proofs_are_made_under_finalized_roots_as_of_the_batch_asked_for() -> Result<()> {
    let key = dev_key()?;
    let verifier = AttestationVerifier::new(&key.vk)?;
    let node = Node::start(
        2,
        Some(Prover::new(key, ProverLimits::default()).map_err(eyre::Report::msg)?),
    )
    .await?;
    let alice = node.alice.clone();

    // Sealed but not committed: nothing provable yet.
    let sealed = node
        .sequencer
        .seal_batch()
        .await?
        .ok_or_else(|| eyre::eyre!("nothing sealed"))?;
    assert_eq!(
        node.prove(node.request(&alice, 1, 0)?).await?.err(),
        Some(code(ErrorCode::BatchNotProvable))
    );
    // Committed but still in its challenge window: not provable either (the contract's
    // verifyAttestation would refuse it, and it may be voided).
    node.sequencer.set_batch_chain_state(
        sealed,
        &BatchChainState {
            status: BatchStatus::Committed,
            ..BatchChainState::default()
        },
    )?;
    assert_eq!(
        node.prove(node.request(&alice, 1, 0)?).await?.err(),
        Some(code(ErrorCode::BatchNotProvable))
    );
    assert_eq!(
        node.prove(node.request(&alice, 1, sealed)?).await?.err(),
        Some(code(ErrorCode::BatchNotProvable))
    );
    node.sequencer.set_batch_chain_state(
        sealed,
        &BatchChainState {
            status: BatchStatus::Finalized,
            ..BatchChainState::default()
        },
    )?;

    // Alice holds 1,000 in batch 1; she then pays 500 (+ fee) in the open batch 2.
    node.pay(500, 0).await?;
    let at_1 = node
        .prove(node.request(&alice, 1_000, 0)?)
        .await?
        .map_err(|c| eyre::eyre!("code {c}"))?;
    assert_eq!(at_1.batch, 1);
    verifier.verify_proof_only(&at_1)?;
    let (batch_1, _) = node
        .sequencer
        .batch(1)?
        .ok_or_else(|| eyre::eyre!("no batch 1"))?;
    assert_eq!(at_1.root, batch_1.new_root);

    // Batch 2 finalized: now her proven balance is 490; 1,000 is above it.
    assert_eq!(node.seal_finalized().await?, 2);
    assert_eq!(
        node.prove(node.request(&alice, 1_000, 0)?).await?.err(),
        Some(code(ErrorCode::BalanceBelowThreshold))
    );
    let at_2 = node
        .prove(node.request(&alice, 490, 0)?)
        .await?
        .map_err(|c| eyre::eyre!("code {c}"))?;
    assert_eq!(at_2.batch, 2);
    verifier.verify_proof_only(&at_2)?;
    // Batch 1 asked for explicitly still proves the balance it had.
    let again_1 = node
        .prove(node.request(&alice, 1_000, 1)?)
        .await?
        .map_err(|c| eyre::eyre!("code {c}"))?;
    assert_eq!(again_1.root, at_1.root);
    verifier.verify_proof_only(&again_1)?;

    // Two more batches: batch 1 falls out of the history of 2.
    node.pay(10, 1).await?;
    node.seal_finalized().await?;
    node.pay(10, 2).await?;
    node.seal_finalized().await?;
    assert_eq!(
        node.prove(node.request(&alice, 1, 1)?).await?.err(),
        Some(code(ErrorCode::BatchNotProvable))
    );
    assert!(node.prove(node.request(&alice, 1, 2)?).await?.is_ok());

    // Only the owner asks; expired requests are refused; other tokens are not proven.
    assert_eq!(
        node.prove(node.request(&node.bob, 1, 0)?).await?.err(),
        Some(code(ErrorCode::SignerMismatch))
    );
    let expired = serde_json::to_value(sign(
        &alice,
        ProveBalance {
            owner: alice.address(),
            token: TOKEN,
            threshold: Amount(1),
            challenge: B256::ZERO,
            batch: 0,
            expiry: now_s() - 1,
        },
        &node.domain,
    )?)?;
    assert_eq!(
        node.prove(expired).await?.err(),
        Some(code(ErrorCode::Expired))
    );
    let other_token = serde_json::to_value(sign(
        &alice,
        ProveBalance {
            owner: alice.address(),
            token: Address::repeat_byte(0xab),
            threshold: Amount(1),
            challenge: B256::ZERO,
            batch: 0,
            expiry: now_s() + 300,
        },
        &node.domain,
    )?)?;
    assert_eq!(
        node.prove(other_token).await?.err(),
        Some(code(ErrorCode::UnsupportedToken))
    );

    // Four proofs were made; the admin port's metrics say so.
    let metrics = node
        .http
        .get(format!("http://{}/metrics", node.server.admin_addr()))
        .bearer_auth("test-admin-token")
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("\nstablelane_prover_proofs_total 4\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nstablelane_prover_admitted 0\n"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_prover_is_bounded_by_its_queue_and_its_timeout_and_can_be_off() -> Result<()> {
    // Off: a clear code.
    let off = Node::start(0, None).await?;
    off.seal_finalized().await?;
    assert_eq!(
        off.prove(off.request(&off.alice, 1, 0)?).await?.err(),
        Some(code(ErrorCode::ProverDisabled))
    );

    let key = dev_key()?;
    // No queue: of several simultaneous requests, one is proven, the others refused as busy.
    let node = Node::start(
        4,
        Some(
            Prover::new(
                key.clone(),
                ProverLimits {
                    threads: 1,
                    queue_max: 0,
                    timeout: Duration::from_secs(120),
                    ..ProverLimits::default()
                },
            )
            .map_err(eyre::Report::msg)?,
        ),
    )
    .await?;
    node.seal_finalized().await?;
    let request = || node.request(&node.alice, 1, 0);
    let (a, b, c, d) = tokio::join!(
        node.prove(request()?),
        node.prove(request()?),
        node.prove(request()?),
        node.prove(request()?)
    );
    let outcomes = [a?, b?, c?, d?];
    let proven = outcomes.iter().filter(|o| o.is_ok()).count();
    let busy = outcomes
        .iter()
        .filter(|o| o.as_ref().err() == Some(&code(ErrorCode::Busy)))
        .count();
    assert!(proven >= 1, "{outcomes:?}");
    assert!(busy >= 1, "{outcomes:?}");
    assert_eq!(proven + busy, 4, "{outcomes:?}");

    // A timeout far below a proof's duration: the caller gets the timeout code.
    let slow = Node::start(
        4,
        Some(
            Prover::new(
                key,
                ProverLimits {
                    threads: 1,
                    queue_max: 1,
                    timeout: Duration::from_millis(1),
                    ..ProverLimits::default()
                },
            )
            .map_err(eyre::Report::msg)?,
        ),
    )
    .await?;
    slow.seal_finalized().await?;
    assert_eq!(
        slow.prove(slow.request(&slow.alice, 1, 0)?).await?.err(),
        Some(code(ErrorCode::ProvingTimeout))
    );
    Ok(())
}
