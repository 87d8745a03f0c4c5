//! The sequencer against a real journal on disk: acceptance, idempotency, refusals that
//! store nothing, and a restart that rebuilds exactly the same state from the journal.

use alloy::{
    primitives::{Address, B256},
    signers::local::PrivateKeySigner,
};
use stablelane::{domain, sign, Amount, Nonce, Transfer, Withdrawal};
use stablelane_ledger::{Deposit, LedgerConfig, Rejection};
use stablelane_sequencer::{Sequencer, SequencerConfig, SubmitError};
use stablelane_storage::JournalConfig;

const TOKEN: Address = Address::repeat_byte(0xaa);

fn config(dir: &std::path::Path) -> SequencerConfig {
    SequencerConfig {
        journal_dir: dir.to_path_buf(),
        journal: JournalConfig::default(),
        intake_queue_max: 1024,
        group_max: 256,
        ledger: LedgerConfig {
            tokens: [(TOKEN, Amount(10))].into_iter().collect(),
            fee_recipient: Address::repeat_byte(0xee),
            operator_secret: B256::repeat_byte(7),
            slots_max: 10_000,
        },
        domain: domain(31337, Address::repeat_byte(0x11)),
    }
}

fn transfer(key: &PrivateKeySigner, to: Address, amount: u128, nonce: u64) -> Transfer {
    Transfer {
        from: key.address(),
        to,
        token: TOKEN,
        amount: Amount(amount),
        fee: Amount(10),
        nonce: Nonce(nonce),
        valid_until: u64::MAX,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn accepts_is_idempotent_refuses_cleanly_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let operator = PrivateKeySigner::random();
    let alice = PrivateKeySigner::random();
    let bob = PrivateKeySigner::random();
    let cfg = config(dir.path());

    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    seq.submit_deposit(Deposit {
        queue_index: 0,
        recipient: alice.address(),
        token: TOKEN,
        amount: Amount(1_000),
    })
    .await
    .unwrap();

    let signed = sign(&alice, transfer(&alice, bob.address(), 100, 0), &cfg.domain).unwrap();
    let first = seq.submit_transfer(signed.clone()).await.unwrap();
    assert_eq!(first.receipt.balance, Amount(890));
    assert_eq!(first.receipt.nonce, Nonce(1));
    assert_eq!(first.receipt.sequence.get(), 2);
    stablelane::signing::verify_receipt(
        operator.address(),
        &first.receipt,
        &first.signature,
        &cfg.domain,
    )
    .unwrap();
    assert_eq!(
        Some(first.receipt.leaf),
        seq.read(|s| s.leaf(first.receipt.slot))
    );

    // The same signed transfer again: the original receipt, no second debit.
    let again = seq.submit_transfer(signed).await.unwrap();
    assert_eq!(again, first);
    let balance = |s: &Sequencer, who: Address| s.read(|st| st.ledger().balance(who, TOKEN));
    assert_eq!(balance(&seq, alice.address()), Amount(890));

    // Refusals store nothing.
    let last = seq.read(|s| s.last_seq());
    let too_much = sign(
        &alice,
        transfer(&alice, bob.address(), 10_000, 1),
        &cfg.domain,
    )
    .unwrap();
    assert!(matches!(
        seq.submit_transfer(too_much).await,
        Err(SubmitError::Rejected(Rejection::InsufficientBalance))
    ));
    let replay = sign(&alice, transfer(&alice, bob.address(), 5, 0), &cfg.domain).unwrap();
    assert!(matches!(
        seq.submit_transfer(replay).await,
        Err(SubmitError::Rejected(Rejection::NonceTooLow))
    ));
    assert_eq!(seq.read(|s| s.last_seq()), last);

    // Concurrent transfers from many payers.
    let payers: Vec<PrivateKeySigner> = (0..20).map(|_| PrivateKeySigner::random()).collect();
    for (i, payer) in payers.iter().enumerate() {
        seq.submit_deposit(Deposit {
            queue_index: 1 + i as u64,
            recipient: payer.address(),
            token: TOKEN,
            amount: Amount(500),
        })
        .await
        .unwrap();
    }
    let mut tasks = Vec::new();
    for payer in &payers {
        for nonce in 0..3 {
            let signed =
                sign(payer, transfer(payer, bob.address(), 7, nonce), &cfg.domain).unwrap();
            let seq = seq.clone();
            // Nonces of one payer must arrive in order: submit them one after another.
            tasks.push((payer.address(), nonce, signed, seq));
        }
    }
    let mut handles = Vec::new();
    for chunk in tasks.chunks(3) {
        let chunk = chunk.to_vec();
        handles.push(tokio::spawn(async move {
            for (_, _, signed, seq) in chunk {
                seq.submit_transfer(signed).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    drop(tasks);
    let withdrawal = Withdrawal {
        from: bob.address(),
        recipient: Address::repeat_byte(0x99),
        token: TOKEN,
        amount: Amount(50),
        fee: Amount(10),
        nonce: Nonce(0),
        valid_until: u64::MAX,
    };
    seq.submit_withdrawal(sign(&bob, withdrawal, &cfg.domain).unwrap())
        .await
        .unwrap();

    let root = seq.root().unwrap();
    let recomputed = seq.read(|s| s.recompute_root()).unwrap();
    assert_eq!(root, recomputed);
    let before: Vec<(Address, Amount)> = [alice.address(), bob.address(), cfg.ledger.fee_recipient]
        .iter()
        .map(|a| (*a, balance(&seq, *a)))
        .collect();
    assert_eq!(before[1].1, Amount(100 + 20 * 3 * 7 - 60));
    let count = seq.read(|s| s.transaction_count());
    let pay_outs = seq.read(|s| s.pay_outs().to_vec());
    assert_eq!(pay_outs.len(), 1);
    seq.shutdown().await;

    // Restart: the journal rebuilds the same balances, receipts, pay-outs and root.
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    for (who, amount) in &before {
        assert_eq!(balance(&seq, *who), *amount);
    }
    assert_eq!(seq.read(|s| s.transaction_count()), count);
    assert_eq!(seq.read(|s| s.pay_outs().to_vec()), pay_outs);
    assert_eq!(seq.root().unwrap(), root);
    assert_eq!(seq.signed_receipt(&first.receipt.tx_hash), Some(first));
    seq.read(|s| s.ledger().check_supply()).unwrap();
    seq.shutdown().await;
}
