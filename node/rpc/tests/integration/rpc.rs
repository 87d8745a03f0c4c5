//! The RPC server over real HTTP (and WebSocket) against a sequencer over a journal in a
//! temporary directory: acceptance and idempotency, one documented code per refusal with
//! nothing stored, size limits, owner authentication (accounts, receipts and receipt
//! subscriptions only to their owner, expiries bounded), and the admin bearer token.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy::{
    primitives::{Address, B256},
    signers::local::PrivateKeySigner,
    sol_types::Eip712Domain,
};
use eyre::{eyre, Result};
use serde_json::{json, Value};
use stablelane::{domain, sign, Amount, Authentication, Nonce, Transfer, TypedDomain};
use stablelane_ledger::{Deposit, LedgerConfig};
use stablelane_rpc::{AdminToken, Limits, RpcConfig, RpcServer, TokenInfo};
use stablelane_sequencer::{Sequencer, SequencerConfig, SignedReceipt};
use stablelane_storage::JournalConfig;

const TOKEN: Address = Address::repeat_byte(0xaa);
const OTHER_TOKEN: Address = Address::repeat_byte(0xab);
const SETTLEMENT: Address = Address::repeat_byte(0x11);
const CHAIN_ID: u64 = 31337;
const FEE: u128 = 10;
const ADMIN_TOKEN: &str = "test-admin-token";

struct Node {
    _dir: tempfile::TempDir,
    sequencer: Sequencer,
    server: RpcServer,
    operator: Address,
    alice: PrivateKeySigner,
    bob: PrivateKeySigner,
    domain: Eip712Domain,
    http: reqwest::Client,
}

impl Node {
    async fn start() -> Result<Self> {
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
            sealed_history: 0,
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
                admin_token: AdminToken::new(ADMIN_TOKEN),
                operator: operator.address(),
                tokens: vec![TokenInfo {
                    address: TOKEN,
                    symbol: "USDC".into(),
                    decimals: 6,
                }],
                limits: Limits::default(),
                admin_limits: Limits::default(),
                dev_deposits: false,
                prover: None,
            },
            sequencer.clone(),
        )
        .await?;
        Ok(Self {
            _dir: dir,
            sequencer,
            server,
            operator: operator.address(),
            alice,
            bob,
            domain,
            http: reqwest::Client::new(),
        })
    }

    fn url(&self) -> String {
        format!("http://{}", self.server.local_addr())
    }

    async fn post_raw(&self, body: impl Into<reqwest::Body>) -> Result<(u16, Value)> {
        let response = self
            .http
            .post(self.url())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        Ok(self.post_raw(body.to_string()).await?.1)
    }

    fn transfer(&self, amount: u128, fee: u128, nonce: u64) -> Transfer {
        Transfer {
            from: self.alice.address(),
            to: self.bob.address(),
            token: TOKEN,
            amount: Amount(amount),
            fee: Amount(fee),
            nonce: Nonce(nonce),
            valid_until: now_s() + 3600,
        }
    }

    fn signed(&self, transfer: Transfer) -> Result<Value> {
        Ok(serde_json::to_value(sign(
            &self.alice,
            transfer,
            &self.domain,
        )?)?)
    }

    /// `key`'s signed authentication for `purpose`, as JSON.
    fn auth(&self, key: &PrivateKeySigner, purpose: &str, expiry: u64) -> Result<Value> {
        let message = Authentication {
            owner: key.address(),
            purpose: purpose.into(),
            expiry,
        };
        Ok(serde_json::to_value(sign(key, message, &self.domain)?)?)
    }

    fn alice_state(&self) -> (Amount, Nonce, u64) {
        self.sequencer.read(|s| {
            (
                s.ledger().balance(self.alice.address(), TOKEN),
                s.ledger().nonce(self.alice.address(), TOKEN),
                s.last_seq().get(),
            )
        })
    }
}

async fn ask_method(node: &Node, method: &str, params: Value) -> Result<Value> {
    let url = format!("http://{}", node.server.admin_addr());
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    Ok(node
        .http
        .post(&url)
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .json(&body)
        .send()
        .await?
        .json()
        .await?)
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn error_code(response: &Value) -> Option<i64> {
    response["error"]["code"].as_i64()
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_transfer_is_signed_and_idempotent() -> Result<()> {
    let node = Node::start().await?;
    let signed = node.signed(node.transfer(100, FEE, 0))?;

    let first = node.call("lane_sendTransfer", json!([signed])).await?;
    let receipt: SignedReceipt = serde_json::from_value(first["result"].clone())?;
    receipt.verify(node.operator, &node.domain)?;
    assert_eq!(receipt.receipt.balance, Amount(890));
    assert_eq!(receipt.receipt.nonce, Nonce(1));
    let after_first = node.alice_state();

    let second = node.call("lane_sendTransfer", json!([signed])).await?;
    assert_eq!(second["result"], first["result"], "identical receipt");
    assert_eq!(node.alice_state(), after_first, "nothing debited twice");

    let auth = node.auth(&node.alice, "lane_getTransaction", now_s() + 60)?;
    let tx = node
        .call(
            "lane_getTransaction",
            json!([receipt.receipt.tx_hash, auth]),
        )
        .await?;
    assert_eq!(tx["result"]["status"], "accepted");
    assert_eq!(tx["result"]["receipt"], first["result"]);
    let missing = node
        .call("lane_getTransaction", json!([B256::repeat_byte(9)]))
        .await?;
    assert_eq!(error_code(&missing), Some(1050));

    let auth = node.auth(&node.alice, "lane_getAccount", now_s() + 60)?;
    let account = node
        .call(
            "lane_getAccount",
            json!([node.alice.address(), TOKEN, auth]),
        )
        .await?;
    assert_eq!(account["result"]["balance"], "890");
    assert_eq!(account["result"]["nonce"], 1);
    node.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn chain_info_fee_and_chain_id() -> Result<()> {
    let node = Node::start().await?;
    let info = node.call("lane_chainInfo", json!([])).await?;
    assert_eq!(info["result"]["chainId"], CHAIN_ID);
    assert_eq!(
        info["result"]["operator"],
        json!(node.operator),
        "operator address"
    );
    assert_eq!(info["result"]["tokens"][0]["symbol"], "USDC");
    assert_eq!(info["result"]["tokens"][0]["minimumFee"], "10");

    let fee = node.call("lane_estimateFee", json!([TOKEN])).await?;
    assert_eq!(fee["result"]["fee"], "10");
    let unknown = node.call("lane_estimateFee", json!([OTHER_TOKEN])).await?;
    assert_eq!(error_code(&unknown), Some(1015));

    let chain_id = node.call("eth_chainId", json!([])).await?;
    assert_eq!(chain_id["result"], "0x7a69");
    node.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_has_its_code_and_stores_nothing() -> Result<()> {
    let node = Node::start().await?;
    // Use nonce 0 so that a replay can be tested.
    let accepted = node.signed(node.transfer(100, FEE, 0))?;
    let ok = node.call("lane_sendTransfer", json!([accepted])).await?;
    assert!(ok.get("result").is_some(), "{ok}");

    let mut cases: Vec<(&str, String, i64)> = Vec::new();
    let envelope = |method: &str, params: Value| {
        json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).to_string()
    };
    let send = |tx: Value| envelope("lane_sendTransfer", json!([tx]));

    cases.push((
        "malformed JSON",
        "{\"jsonrpc\": \"2.0\", \"id\":".into(),
        -32700,
    ));
    cases.push((
        "unknown method",
        envelope("lane_noSuchMethod", json!([])),
        -32601,
    ));
    cases.push((
        "wrong params",
        envelope("lane_sendTransfer", json!([42])),
        -32602,
    ));
    cases.push((
        "wrong params count",
        envelope("lane_estimateFee", json!([TOKEN, TOKEN])),
        -32602,
    ));

    let mut bad_bytes = node.signed(node.transfer(5, FEE, 1))?;
    bad_bytes["signature"] = json!("0x1234");
    cases.push(("bad signature bytes", send(bad_bytes), 1001));

    let by_bob = serde_json::to_value(sign(&node.bob, node.transfer(5, FEE, 1), &node.domain)?)?;
    cases.push(("signer is not from", send(by_bob), 1002));

    let other_chain = domain(1, SETTLEMENT);
    let mut wrong_chain =
        serde_json::to_value(sign(&node.alice, node.transfer(5, FEE, 1), &other_chain)?)?;
    wrong_chain["domain"] = serde_json::to_value(TypedDomain::new(1, SETTLEMENT))?;
    cases.push(("wrong chain id", send(wrong_chain), 1003));

    let other_contract = Address::repeat_byte(0x12);
    let mut wrong_contract = serde_json::to_value(sign(
        &node.alice,
        node.transfer(5, FEE, 1),
        &domain(CHAIN_ID, other_contract),
    )?)?;
    wrong_contract["domain"] = serde_json::to_value(TypedDomain::new(CHAIN_ID, other_contract))?;
    cases.push(("wrong verifying contract", send(wrong_contract), 1004));

    cases.push((
        "replayed nonce",
        send(node.signed(node.transfer(7, FEE, 0))?),
        1010,
    ));
    cases.push((
        "future nonce",
        send(node.signed(node.transfer(7, FEE, 5))?),
        1011,
    ));
    let mut expired = node.transfer(7, FEE, 1);
    expired.valid_until = 1;
    cases.push(("expired", send(node.signed(expired)?), 1012));
    cases.push((
        "zero amount",
        send(node.signed(node.transfer(0, FEE, 1))?),
        1013,
    ));
    let too_big = (u128::MAX).to_string() + "0";
    let mut amount_overflow = node.signed(node.transfer(7, FEE, 1))?;
    amount_overflow["message"]["amount"] = json!(too_big);
    cases.push(("amount overflows u128", send(amount_overflow), 1014));
    let mut fee_overflow = node.signed(node.transfer(7, FEE, 1))?;
    fee_overflow["message"]["fee"] = json!("340282366920938463463374607431768211456");
    cases.push(("fee overflows u128", send(fee_overflow), 1014));
    cases.push((
        "amount + fee overflows u128",
        send(node.signed(node.transfer(u128::MAX, FEE, 1))?),
        1014,
    ));
    let mut unknown_token = node.transfer(7, FEE, 1);
    unknown_token.token = OTHER_TOKEN;
    cases.push(("unknown token", send(node.signed(unknown_token)?), 1015));
    cases.push((
        "insufficient balance",
        send(node.signed(node.transfer(10_000, FEE, 1))?),
        1016,
    ));
    cases.push((
        "fee below quote",
        send(node.signed(node.transfer(7, FEE - 1, 1))?),
        1017,
    ));

    let before = node.alice_state();
    for (name, body, code) in cases {
        let (_, response) = node.post_raw(body).await?;
        assert_eq!(error_code(&response), Some(code), "{name}: {response}");
        let message = response["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{name}: no message");
        assert_eq!(node.alice_state(), before, "{name}: stored something");
        let alive = node.call("eth_chainId", json!([])).await?;
        assert_eq!(alive["result"], "0x7a69", "{name}: server stopped serving");
    }

    // Oversized: jsonrpsee answers HTTP 413 with -32007 before any handler runs.
    let padding = "x".repeat(Limits::default().request_body_max_bytes as usize + 1);
    let (status, response) = node
        .post_raw(envelope("lane_getAccount", json!([padding])))
        .await?;
    assert_eq!(status, 413);
    assert_eq!(error_code(&response), Some(-32007), "{response}");

    // A batch longer than the limit: -32010.
    let batch: Vec<Value> = (0..=Limits::default().batch_requests_max)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "eth_chainId"}))
        .collect();
    let (_, response) = node.post_raw(Value::Array(batch).to_string()).await?;
    assert_eq!(error_code(&response), Some(-32010), "{response}");

    assert_eq!(node.alice_state(), before);
    let alive = node.call("eth_chainId", json!([])).await?;
    assert_eq!(alive["result"], "0x7a69");
    node.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_only_to_the_authenticated_owner() -> Result<()> {
    let node = Node::start().await?;
    let auth = |purpose: &str, expiry: u64, key: &PrivateKeySigner| -> Result<Value> {
        let message = Authentication {
            owner: node.alice.address(),
            purpose: purpose.into(),
            expiry,
        };
        Ok(serde_json::to_value(sign(key, message, &node.domain)?)?)
    };
    let params = |auth: Value| json!([node.alice.address(), TOKEN, auth]);

    let good = node
        .call(
            "lane_getAccount",
            params(auth("lane_getAccount", now_s() + 60, &node.alice)?),
        )
        .await?;
    let result = &good["result"];
    assert_eq!(result["balance"], "1000");
    assert_eq!(result["nonce"], 0);
    assert!(result["salt"].is_string(), "{good}");
    let leaf = node.sequencer.read(|s| {
        s.ledger()
            .slot_index(node.alice.address(), TOKEN)
            .and_then(|i| s.leaf(i))
    });
    assert_eq!(result["leaf"], json!(leaf.ok_or_else(|| eyre!("no leaf"))?));
    // Up to 24 h ahead is accepted.
    let day = node
        .call(
            "lane_getAccount",
            params(auth("lane_getAccount", now_s() + 86_000, &node.alice)?),
        )
        .await?;
    assert_eq!(day["result"]["balance"], "1000", "{day}");

    // Without authentication nothing, for an existing account or not.
    for owner in [node.alice.address(), node.bob.address()] {
        for call in [json!([owner, TOKEN]), json!([owner, TOKEN, null])] {
            let response = node.call("lane_getAccount", call).await?;
            assert_eq!(error_code(&response), Some(1040), "{response}");
            assert!(response.get("result").is_none(), "{response}");
        }
    }
    for (name, bad) in [
        (
            "wrong purpose",
            auth("lane_proveBalance", now_s() + 60, &node.alice)?,
        ),
        (
            "another method's purpose",
            auth("lane_subscribe", now_s() + 60, &node.alice)?,
        ),
        (
            "expired",
            auth("lane_getAccount", now_s() - 1, &node.alice)?,
        ),
        (
            "not the owner",
            auth("lane_getAccount", now_s() + 60, &node.bob)?,
        ),
        (
            "bob's own authentication",
            node.auth(&node.bob, "lane_getAccount", now_s() + 60)?,
        ),
        ("garbage", json!({"message": 1})),
    ] {
        let response = node.call("lane_getAccount", params(bad)).await?;
        assert_eq!(error_code(&response), Some(1040), "{name}: {response}");
    }
    // An expiry more than 24 h ahead: its own code, for every purpose.
    let too_far = now_s() + 86_400 + 120;
    let response = node
        .call(
            "lane_getAccount",
            params(auth("lane_getAccount", too_far, &node.alice)?),
        )
        .await?;
    assert_eq!(error_code(&response), Some(1041), "{response}");
    let hash = node
        .call(
            "lane_sendTransfer",
            json!([node.signed(node.transfer(5, FEE, 0))?]),
        )
        .await?["result"]["receipt"]["txHash"]
        .clone();
    let response = node
        .call(
            "lane_getTransaction",
            json!([
                hash,
                node.auth(&node.alice, "lane_getTransaction", too_far)?
            ]),
        )
        .await?;
    assert_eq!(error_code(&response), Some(1041), "{response}");
    // And for balance proofs (checked before anything else, even without a prover).
    let request = serde_json::to_value(sign(
        &node.alice,
        stablelane::ProveBalance {
            owner: node.alice.address(),
            token: TOKEN,
            threshold: Amount(1),
            challenge: B256::repeat_byte(1),
            batch: 0,
            expiry: too_far,
        },
        &node.domain,
    )?)?;
    let response = node.call("lane_proveBalance", json!([request])).await?;
    assert_eq!(error_code(&response), Some(1041), "{response}");
    node.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transactions_receipt_only_to_its_sender() -> Result<()> {
    let node = Node::start().await?;
    let sent = node
        .call(
            "lane_sendTransfer",
            json!([node.signed(node.transfer(100, FEE, 0))?]),
        )
        .await?;
    let hash = sent["result"]["receipt"]["txHash"].clone();
    // Anyone with the hash (the payee too): the status, not the sender's balance.
    let public = node.call("lane_getTransaction", json!([hash])).await?;
    assert_eq!(public["result"]["status"], "accepted", "{public}");
    assert!(public["result"].get("receipt").is_none(), "{public}");
    let payee = node
        .call(
            "lane_getTransaction",
            json!([
                hash,
                node.auth(&node.bob, "lane_getTransaction", now_s() + 60)?
            ]),
        )
        .await?;
    assert_eq!(payee["result"]["status"], "accepted", "{payee}");
    assert!(payee["result"].get("receipt").is_none(), "{payee}");
    let sender = node
        .call(
            "lane_getTransaction",
            json!([
                hash,
                node.auth(&node.alice, "lane_getTransaction", now_s() + 60)?
            ]),
        )
        .await?;
    assert_eq!(sender["result"]["receipt"], sent["result"], "{sender}");
    for bad in [
        node.auth(&node.alice, "lane_getAccount", now_s() + 60)?,
        node.auth(&node.alice, "lane_getTransaction", now_s() - 1)?,
        json!({"message": 1}),
    ] {
        let response = node.call("lane_getTransaction", json!([hash, bad])).await?;
        assert_eq!(error_code(&response), Some(1040), "{response}");
    }
    node.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payee_is_notified_with_its_own_account_never_the_payers() -> Result<()> {
    use jsonrpsee::{
        core::client::{Subscription, SubscriptionClientT},
        rpc_params,
        ws_client::WsClientBuilder,
    };
    let node = Node::start().await?;
    let ws = WsClientBuilder::default()
        .build(format!("ws://{}", node.server.local_addr()))
        .await?;
    let mut feed: Subscription<Value> = ws
        .subscribe(
            "lane_subscribe",
            rpc_params![
                "receipts",
                node.bob.address(),
                node.auth(&node.bob, "lane_subscribe", now_s() + 600)?
            ],
            "lane_unsubscribe",
        )
        .await?;
    // Two payments, so the payee's second notification shows its balance after both.
    let mut sent = Vec::new();
    for (nonce, amount) in [(0, 100u128), (1, 30)] {
        let answer = node
            .call(
                "lane_sendTransfer",
                json!([node.signed(node.transfer(amount, FEE, nonce))?]),
            )
            .await?;
        sent.push(serde_json::from_value::<SignedReceipt>(
            answer["result"].clone(),
        )?);
    }
    let mut last_balance = Amount(0);
    for (payment, bob_balance) in sent.iter().zip([100u128, 130]) {
        let note = tokio::time::timeout(std::time::Duration::from_secs(10), feed.next())
            .await?
            .ok_or_else(|| eyre!("the subscription ended"))??;
        assert_eq!(note["role"], "recipient", "{note}");
        assert_eq!(note["counterparty"], json!(node.alice.address()), "{note}");
        let own: SignedReceipt = serde_json::from_value(note["receipt"].clone())?;
        own.verify(node.operator, &node.domain)?;
        assert_eq!(own.receipt.kind, stablelane::ReceiptKind::Recipient);
        assert_eq!(own.receipt.tx_hash, payment.receipt.tx_hash);
        assert_eq!(own.receipt.sequence, payment.receipt.sequence);
        // The payee's own slot, balance and nonce, never the payer's.
        assert_eq!(own.receipt.owner, node.bob.address());
        assert_eq!(own.receipt.balance, Amount(bob_balance));
        assert_eq!(own.receipt.nonce, Nonce(0));
        assert_ne!(own.receipt.slot, payment.receipt.slot);
        last_balance = own.receipt.balance;
        let text = note.to_string();
        assert!(
            !text.contains(&format!("\"{}\"", payment.receipt.balance)),
            "the payer's balance leaked: {text}"
        );
    }
    let leaf = node.sequencer.read(|s| {
        s.ledger()
            .slot_index(node.bob.address(), TOKEN)
            .and_then(|i| s.leaf(i))
    });
    let auth = node.auth(&node.bob, "lane_getAccount", now_s() + 60)?;
    let account = node
        .call("lane_getAccount", json!([node.bob.address(), TOKEN, auth]))
        .await?;
    assert_eq!(account["result"]["balance"], "130", "{account}");
    assert_eq!(account["result"]["leaf"], json!(leaf), "{account}");
    // The last notification's balance is the payee's current balance.
    assert_eq!(last_balance, Amount(130));
    node.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn receipt_subscriptions_are_the_owners_and_end_with_the_authentication() -> Result<()> {
    use jsonrpsee::{
        core::client::{Subscription, SubscriptionClientT},
        rpc_params,
        ws_client::WsClientBuilder,
    };
    let node = Node::start().await?;
    let ws = WsClientBuilder::default()
        .build(format!("ws://{}", node.server.local_addr()))
        .await?;
    let code = |e: jsonrpsee::core::client::Error| match e {
        jsonrpsee::core::client::Error::Call(obj) => Some(obj.code()),
        _ => None,
    };
    let open = |params: jsonrpsee::core::params::ArrayParams| {
        let ws = &ws;
        async move {
            ws.subscribe::<Value, _>("lane_subscribe", params, "lane_unsubscribe")
                .await
        }
    };
    let bob = node.bob.address();
    // No authentication, another's, another purpose, expired, too far ahead.
    let refusals = [
        (rpc_params!["receipts", bob], 1040),
        (
            rpc_params![
                "receipts",
                bob,
                node.auth(&node.alice, "lane_subscribe", now_s() + 60)?
            ],
            1040,
        ),
        (
            rpc_params![
                "receipts",
                bob,
                node.auth(&node.bob, "lane_getAccount", now_s() + 60)?
            ],
            1040,
        ),
        (
            rpc_params![
                "receipts",
                bob,
                node.auth(&node.bob, "lane_subscribe", now_s() - 1)?
            ],
            1040,
        ),
        (
            rpc_params![
                "receipts",
                bob,
                node.auth(&node.bob, "lane_subscribe", now_s() + 86_400 + 120)?
            ],
            1041,
        ),
    ];
    for (params, expected) in refusals {
        let refused = open(params).await.err().and_then(code);
        assert_eq!(refused, Some(expected));
    }

    // A subscription lasts as long as its authentication: the node ends it then.
    let expiry = now_s() + 2;
    let mut feed: Subscription<Value> = open(rpc_params![
        "receipts",
        bob,
        node.auth(&node.bob, "lane_subscribe", expiry)?
    ])
    .await?;
    let started = std::time::Instant::now();
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), feed.next()).await?;
    assert!(
        !matches!(end, Some(Ok(_))),
        "a notification instead of the end: {end:?}"
    );
    assert!(
        now_s() >= expiry,
        "ended early, after {:?}",
        started.elapsed()
    );
    node.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_status_requires_the_bearer_token() -> Result<()> {
    let node = Node::start().await?;
    let url = format!("http://{}", node.server.admin_addr());
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "admin_status", "params": []});
    let ask = |token: Option<&str>| {
        let mut request = node.http.post(&url).json(&body);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.send()
    };

    for token in [None, Some("wrong-token"), Some("")] {
        let response = ask(token).await?;
        assert_eq!(response.status().as_u16(), 401);
        let value: Value = response.json().await?;
        assert_eq!(error_code(&value), Some(1040));
    }
    let response = ask(Some(ADMIN_TOKEN)).await?;
    assert_eq!(response.status().as_u16(), 200);
    let value: Value = response.json().await?;
    assert_eq!(value["result"]["lastSequence"], 1, "{value}");
    assert_eq!(value["result"]["chainId"], CHAIN_ID);
    let status: stablelane::rpc::NodeStatus = serde_json::from_value(value["result"].clone())?;
    assert_eq!(
        status.state_root,
        node.sequencer.read(|s| s.recompute_root())?
    );
    assert_eq!(status.supply[0].deposited, Amount(1_000));
    // Development deposits are off unless configured.
    let dev = ask_method(
        &node,
        "admin_devDeposit",
        json!([node.bob.address(), TOKEN, "5"]),
    )
    .await?;
    assert_eq!(error_code(&dev), Some(-32601));

    // Prometheus exposition on the admin port, behind the token too.
    let metrics_url = format!("http://{}/metrics", node.server.admin_addr());
    let refused = node.http.get(&metrics_url).send().await?;
    assert_eq!(refused.status().as_u16(), 401);
    node.call(
        "lane_sendTransfer",
        json!([node.signed(node.transfer(5, FEE, 0))?]),
    )
    .await?;
    node.call(
        "lane_sendTransfer",
        json!([node.signed(node.transfer(5_000, FEE, 1))?]),
    )
    .await?;
    let sealed = ask_method(&node, "admin_sealBatch", json!([])).await?;
    assert_eq!(sealed["result"]["batch"], 1, "{sealed}");
    let text = node
        .http
        .get(&metrics_url)
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .send()
        .await?
        .text()
        .await?;
    for line in [
        "stablelane_transactions_accepted_total{kind=\"transfer\"} 1",
        "stablelane_transactions_rejected_total{kind=\"transfer\",reason=\"insufficient_balance\"} 1",
        "stablelane_journal_last_sequence 3", // deposit, transfer (the other refused), seal
        "# TYPE stablelane_journal_fsync_seconds histogram",
        "stablelane_intake_queue_depth 0",
        "stablelane_watcher_queue_mismatch 0",
        "stablelane_watcher_finality_mode 0", // no watcher in this test
        "stablelane_sequencer_seals_total 1",
        "stablelane_batches_sealed 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    let seal_seconds: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("stablelane_sequencer_last_seal_seconds "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0);
    assert!(seal_seconds > 0.0, "a seal takes time: {seal_seconds}");
    // admin_sealBatch answers once the tree worker built and stored the batch.
    let build_seconds: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("stablelane_sequencer_last_seal_build_seconds "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0);
    assert!(
        build_seconds > 0.0,
        "building a batch takes time: {build_seconds}"
    );

    // Admin methods are not on the wallet port, and wallet methods not on the admin port.
    let wallet = node.call("admin_status", json!([])).await?;
    assert_eq!(error_code(&wallet), Some(-32601));
    node.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_withdrawal_returns_a_signed_receipt() -> Result<()> {
    let node = Node::start().await?;
    let withdrawal = stablelane::Withdrawal {
        from: node.alice.address(),
        recipient: node.alice.address(),
        token: TOKEN,
        amount: Amount(500),
        fee: Amount(FEE),
        nonce: Nonce(0),
        valid_until: now_s() + 3600,
    };
    let signed = serde_json::to_value(sign(&node.alice, withdrawal.clone(), &node.domain)?)?;
    let response = node.call("lane_sendWithdrawal", json!([signed])).await?;
    let receipt: SignedReceipt = serde_json::from_value(response["result"].clone())?;
    receipt.verify(node.operator, &node.domain)?;
    assert_eq!(receipt.receipt.balance, Amount(490));

    let zero = stablelane::Withdrawal {
        recipient: Address::ZERO,
        nonce: Nonce(1),
        ..withdrawal
    };
    let signed = serde_json::to_value(sign(&node.alice, zero, &node.domain)?)?;
    let response = node.call("lane_sendWithdrawal", json!([signed])).await?;
    assert_eq!(error_code(&response), Some(1019), "{response}");
    assert_eq!(node.alice_state().0, Amount(490));
    node.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_clients_over_http_and_websocket_with_receipt_subscriptions() -> Result<()> {
    use jsonrpsee::{
        core::client::Subscription, http_client::HttpClientBuilder, ws_client::WsClientBuilder,
    };
    use stablelane::rpc::{EthApiClient, LaneApiClient, ReceiptNotification};

    let node = Node::start().await?;
    let http = HttpClientBuilder::default().build(node.url())?;
    assert_eq!(http.chain_id().await?, format!("0x{CHAIN_ID:x}"));
    let info = http.chain_info().await?;
    assert_eq!(info.token("usdc").map(|t| t.address), Some(TOKEN));
    assert_eq!(info.operator, node.operator);

    let ws = WsClientBuilder::default()
        .build(format!("ws://{}", node.server.local_addr()))
        .await?;
    let sub_auth = |key: &PrivateKeySigner| {
        stablelane::rpc::authenticate(key, stablelane::rpc::SUBSCRIBE_PURPOSE, 600, &node.domain)
    };
    let mut bob_feed: Subscription<ReceiptNotification> = ws
        .subscribe_receipts("receipts".into(), node.bob.address(), sub_auth(&node.bob)?)
        .await?;
    let mut alice_feed: Subscription<ReceiptNotification> = ws
        .subscribe_receipts(
            "receipts".into(),
            node.alice.address(),
            sub_auth(&node.alice)?,
        )
        .await?;
    let refused = ws
        .subscribe_receipts("blocks".into(), node.bob.address(), sub_auth(&node.bob)?)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("unknown subscription kind"),
        "{refused}"
    );

    let tx = sign(&node.alice, node.transfer(40, FEE, 0), &node.domain)?;
    let receipt = ws.send_transfer(tx).await?;
    let note = tokio::time::timeout(std::time::Duration::from_secs(10), bob_feed.next())
        .await?
        .expect("a notification")?;
    // The payee is told of the payment with its own resulting account, signed by the
    // operator, never the payer's.
    assert_eq!(note.role, "recipient");
    assert_eq!(note.counterparty, Some(node.alice.address()));
    let own = &note.receipt.receipt;
    assert_eq!(
        (own.tx_hash, own.sequence, own.owner, own.token),
        (
            receipt.receipt.tx_hash,
            receipt.receipt.sequence,
            node.bob.address(),
            TOKEN
        )
    );
    assert_eq!((own.balance, own.nonce), (Amount(40), Nonce(0)));
    let bob_slot = node
        .sequencer
        .read(|s| s.ledger().slot_index(node.bob.address(), TOKEN));
    assert_eq!(Some(own.slot), bob_slot);
    assert_ne!(own.balance, receipt.receipt.balance);
    note.receipt.verify(node.operator, &node.domain)?;
    // The payer's and the payee's receipts are leaves of one signed group.
    assert_eq!(note.receipt.group, receipt.group);
    assert_eq!(note.receipt.signature, receipt.signature);
    let note = tokio::time::timeout(std::time::Duration::from_secs(10), alice_feed.next())
        .await?
        .expect("a notification")?;
    assert_eq!(note.role, "sender");
    assert_eq!(note.receipt, receipt);
    assert_eq!(note.counterparty, Some(node.bob.address()));
    let fetched = http.get_transaction(receipt.receipt.tx_hash, None).await?;
    assert_eq!(fetched.receipt, None);
    let auth = stablelane::rpc::authenticate(
        &node.alice,
        stablelane::rpc::GET_TRANSACTION_PURPOSE,
        60,
        &node.domain,
    )?;
    let fetched = http
        .get_transaction(receipt.receipt.tx_hash, Some(auth))
        .await?;
    assert_eq!(fetched.receipt, Some(receipt.clone()));
    let auth = stablelane::rpc::authenticate(
        &node.alice,
        stablelane::rpc::GET_ACCOUNT_PURPOSE,
        60,
        &node.domain,
    )?;
    let account = http.get_account(node.alice.address(), TOKEN, auth).await?;
    assert_eq!(account.balance, Amount(1_000 - 40 - FEE));
    assert!(account.salt.is_some());
    bob_feed.unsubscribe().await?;
    alice_feed.unsubscribe().await?;

    // Viewing-key registration: the owner's own signature only, journaled once.
    let vk_hash = {
        use alloy::sol_types::SolStruct;
        stablelane::messages::viewing_key_message(node.bob.address())
            .eip712_signing_hash(&node.domain)
    };
    let vk_signature = alloy::signers::SignerSync::sign_hash_sync(&node.bob, &vk_hash)?;
    assert!(
        http.register_viewing_key(node.bob.address(), vk_signature)
            .await?
    );
    let last = node.sequencer.read(|s| s.last_seq());
    assert!(
        http.register_viewing_key(node.bob.address(), vk_signature)
            .await?
    );
    assert_eq!(node.sequencer.read(|s| s.last_seq()), last);
    assert_eq!(
        node.sequencer
            .read(|s| s.ledger().viewing_key(node.bob.address())),
        Some(stablelane::signing::viewing_key_from_signature(
            &vk_signature
        ))
    );
    let forged = alloy::signers::SignerSync::sign_hash_sync(&node.alice, &vk_hash)?;
    let refused = http
        .register_viewing_key(node.bob.address(), forged)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("signed by"), "{refused}");

    // Batches: an operator seals through the admin API; the batch subscription hears it,
    // lane_getBatch shows it, and the transaction's status moves to batched.
    let mut batches: Subscription<stablelane::rpc::BatchNotification> =
        ws.subscribe_batches("batches".into()).await?;
    let mut headers = jsonrpsee::http_client::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {ADMIN_TOKEN}")
            .parse()
            .map_err(|_| eyre!("header"))?,
    );
    let admin = HttpClientBuilder::default()
        .set_headers(headers)
        .build(format!("http://{}", node.server.admin_addr()))?;
    assert_eq!(
        stablelane::rpc::AdminApiClient::seal_batch(&admin)
            .await?
            .batch,
        Some(1)
    );
    assert_eq!(
        stablelane::rpc::AdminApiClient::seal_batch(&admin)
            .await?
            .batch,
        None
    );
    let note = tokio::time::timeout(std::time::Duration::from_secs(10), batches.next())
        .await?
        .expect("a batch notification")?;
    assert_eq!(note.number, 1);
    assert_eq!(note.status, stablelane::rpc::BatchStatus::Sealed);
    let batch = http.get_batch(1).await?;
    assert_eq!(batch.new_root, note.new_root);
    assert_eq!(batch.transaction_count, 1);
    assert!(http.get_batch(2).await.is_err());
    let fetched = http.get_transaction(receipt.receipt.tx_hash, None).await?;
    assert_eq!(fetched.status, stablelane::rpc::TxStatus::Batched);
    assert_eq!(fetched.batch, Some(1));
    let status = stablelane::rpc::AdminApiClient::status(&admin).await?;
    assert_eq!((status.batches.sealed, status.batches.open_records), (1, 0));
    batches.unsubscribe().await?;
    node.server.stop().await;
    Ok(())
}
