//! Crash safety of the node process: SIGKILL it again and again while concurrent clients
//! send transfers, and check after every restart that every acknowledged transfer is
//! there with its original receipt, that nothing unacknowledged is half-applied (each
//! payer's balance is exactly what its nonce implies), that supply is conserved, and that
//! the live state root equals the one `stablelane journal verify` recomputes offline from
//! the journal.

use crate::common;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use alloy::{
    primitives::{Address, B256},
    signers::local::PrivateKeySigner,
};
use common::*;
use eyre::{ensure, Result};
use jsonrpsee::http_client::HttpClient;
use stablelane::{
    domain,
    rpc::{AdminApiClient, LaneApiClient, SignedReceipt},
    sign, Amount, Transfer,
};

const PAYERS: usize = 6;
const FUNDING: u128 = 1_000_000;
const AMOUNT: u128 = 7;
const ROUNDS: u64 = 5;

/// The payees' keys (balances are told only to their owners, so the check needs them).
fn recipient_keys() -> Vec<PrivateKeySigner> {
    [0xc1u8, 0xc2, 0xc3]
        .into_iter()
        .filter_map(|b| PrivateKeySigner::from_bytes(&B256::repeat_byte(b)).ok())
        .collect()
}

fn recipients() -> Vec<Address> {
    recipient_keys().iter().map(|k| k.address()).collect()
}

/// One client: sends transfers one after another until told to stop or the node dies.
async fn client_loop(
    client: HttpClient,
    payer: PrivateKeySigner,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<SignedReceipt>>>,
) {
    let domain = domain(CHAIN_ID, SETTLEMENT);
    let Ok(account) = test_account(&client, &payer).await else {
        return;
    };
    let mut nonce = account.nonce;
    let mut i = 0usize;
    let recipients = recipients();
    while !stop.load(Ordering::Relaxed) {
        let transfer = Transfer {
            from: payer.address(),
            to: recipients[i % recipients.len()],
            token: TOKEN,
            amount: Amount(AMOUNT),
            fee: Amount(FEE),
            nonce,
            valid_until: u64::MAX,
        };
        let Ok(signed) = sign(&payer, transfer, &domain) else {
            return;
        };
        match client.send_transfer(signed).await {
            Ok(receipt) => {
                if let Ok(mut a) = acked.lock() {
                    a.push(receipt);
                }
                nonce = stablelane::Nonce(nonce.get() + 1);
                i += 1;
            }
            // The node died (or refused): this transfer is unacknowledged.
            Err(_) => return,
        }
    }
}

/// Every check that must hold after a restart.
async fn check(
    node: &NodeProcess,
    payers: &[PrivateKeySigner],
    acked: &[SignedReceipt],
    offline: &(u64, String),
) -> Result<()> {
    let client = node.client()?;
    let status = node.admin()?.status().await?;
    ensure!(status.last_sequence == offline.0, "journal records differ");
    ensure!(
        status.state_root.to_string() == offline.1,
        "live root {} != offline root {}",
        status.state_root,
        offline.1
    );
    for receipt in acked {
        let found = client
            .get_transaction(receipt.receipt.tx_hash, None)
            .await?;
        ensure!(
            found.receipt.is_none(),
            "a receipt without the sender's authentication"
        );
        let payer = payers
            .iter()
            .find(|p| p.address() == receipt.receipt.owner)
            .ok_or_else(|| eyre::eyre!("a receipt of no payer"))?;
        let auth = stablelane::rpc::authenticate(
            payer,
            stablelane::rpc::GET_TRANSACTION_PURPOSE,
            60,
            &domain(CHAIN_ID, SETTLEMENT),
        )?;
        let found = client
            .get_transaction(receipt.receipt.tx_hash, Some(auth))
            .await?;
        ensure!(
            found.receipt.map(|r| r.receipt) == Some(receipt.receipt.clone()),
            "acknowledged transfer {} changed or lost",
            receipt.receipt.tx_hash
        );
    }
    let operator: PrivateKeySigner = OPERATOR_KEY.parse()?;
    ensure!(
        client.chain_info().await?.operator == operator.address(),
        "the operator is not the fee recipient of these tests"
    );
    let mut total = 0u128;
    for payer in payers {
        let account = test_account(&client, payer).await?;
        let sent = u128::from(account.nonce.get());
        ensure!(
            account.balance == Amount(FUNDING - sent * (AMOUNT + FEE)),
            "payer {} balance {} does not match nonce {sent}",
            payer.address(),
            account.balance
        );
        let acked_for_payer = acked
            .iter()
            .filter(|r| r.receipt.owner == payer.address())
            .count() as u128;
        ensure!(acked_for_payer <= sent, "acknowledged transfers missing");
        total += account.balance.base_units();
    }
    for who in recipient_keys().iter().chain([&operator]) {
        total += test_account(&client, who).await?.balance.base_units();
    }
    let supply = &status.supply[0];
    ensure!(
        Amount(total) == Amount(supply.deposited.base_units() - supply.withdrawn.base_units()),
        "supply not conserved: balances {total}, supply {supply:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_transfers_survive_repeated_sigkill() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), &dir.path().join("data"))?;
    let payers: Vec<PrivateKeySigner> = (0..PAYERS).map(|_| PrivateKeySigner::random()).collect();
    let acked: Arc<Mutex<Vec<SignedReceipt>>> = Arc::default();

    let mut node = NodeProcess::start(&config)?;
    let admin = node.admin()?;
    for payer in &payers {
        admin
            .dev_deposit(payer.address(), TOKEN, Amount(FUNDING))
            .await?;
    }
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for payer in &payers {
            tasks.push(tokio::spawn(client_loop(
                node.client()?,
                payer.clone(),
                stop.clone(),
                acked.clone(),
            )));
        }
        // Kill mid-flight, at a different moment each round.
        tokio::time::sleep(Duration::from_millis(300 + 157 * round)).await;
        node.kill()?;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await?;
        }
        let offline = journal_verify(&config)?;
        node = NodeProcess::start(&config)?;
        let snapshot = acked.lock().map(|a| a.clone()).unwrap_or_default();
        check(&node, &payers, &snapshot, &offline).await?;
        eprintln!(
            "round {round}: {} acknowledged so far, {} journal records, root {}",
            snapshot.len(),
            offline.0,
            offline.1
        );
    }
    let total = acked.lock().map(|a| a.len()).unwrap_or_default();
    ensure!(
        total > 0,
        "no transfer was acknowledged: the test exercised nothing"
    );
    node.stop()?;
    Ok(())
}
