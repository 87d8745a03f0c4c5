//! The sequencer against a real journal on disk: acceptance, idempotency, refusals that
//! store nothing, and a restart that rebuilds exactly the same state from the journal.

use alloy::{
    primitives::{Address, B256},
    signers::local::PrivateKeySigner,
};
use stablelane::{domain, sign, Amount, Nonce, Transfer, Withdrawal};
use stablelane_ledger::{Deposit, Rejection};
use stablelane_sequencer::{Sequencer, SequencerConfig, SignedReceipt, SubmitError};

use common::{config, TOKEN};

use crate::common;

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
    // Signed by the receipt key, over the group that holds it.
    first.verify(operator.address(), &cfg.domain).unwrap();
    assert_eq!(seq.receipt_signer(), operator.address());
    assert_eq!(first.receipt.kind, stablelane::ReceiptKind::Sender);
    assert_eq!(first.receipt.deposits_consumed, 1);
    assert!(first.verify(alice.address(), &cfg.domain).is_err());

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
    let count = seq.store().transaction_count();
    let pay_outs = seq.read(|s| s.pay_outs().to_vec());
    assert_eq!(pay_outs.len(), 1);
    seq.shutdown().await;

    // Restart: the journal rebuilds the same balances, receipts, pay-outs and root.
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    for (who, amount) in &before {
        assert_eq!(balance(&seq, *who), *amount);
    }
    assert_eq!(seq.store().transaction_count(), count);
    assert_eq!(seq.read(|s| s.pay_outs().to_vec()), pay_outs);
    assert_eq!(seq.root().unwrap(), root);
    assert_eq!(
        seq.signed_receipt(&first.receipt.tx_hash).unwrap(),
        Some(first.clone())
    );
    seq.read(|s| s.ledger().check_supply()).unwrap();
    seq.shutdown().await;
}

/// Funds `n` payers and makes each pay bob once; returns the receipts.
async fn some_history(seq: &Sequencer, cfg: &SequencerConfig, n: usize) -> Vec<SignedReceipt> {
    let bob = Address::repeat_byte(0xb0);
    let mut receipts = Vec::new();
    for i in 0..n {
        let payer = PrivateKeySigner::random();
        seq.submit_deposit(Deposit {
            queue_index: seq.read(|s| s.ledger().deposits_consumed()),
            recipient: payer.address(),
            token: TOKEN,
            amount: Amount(1_000 + i as u128),
        })
        .await
        .unwrap();
        let tx = sign(&payer, transfer(&payer, bob, 100, 0), &cfg.domain).unwrap();
        receipts.push(seq.submit_transfer(tx).await.unwrap());
    }
    receipts
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_disagrees_with_the_journal_is_rebuilt_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let operator = PrivateKeySigner::random();
    let cfg = config(dir.path());
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    let receipts = some_history(&seq, &cfg, 5).await;
    let root = seq.root().unwrap();
    seq.shutdown().await;

    // Lost store: rebuilt entirely from the journal.
    std::fs::remove_dir_all(&cfg.store_dir).unwrap();
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    assert_eq!(seq.root().unwrap(), root);
    for r in &receipts {
        assert_eq!(
            seq.receipt(&r.receipt.tx_hash).unwrap(),
            Some(r.receipt.clone())
        );
    }
    assert_eq!(seq.store().transaction_count(), 5);
    seq.shutdown().await;

    // A store whose root checkpoint disagrees with the journal (its index was written by
    // another history): detected and rebuilt.
    {
        let store = stablelane_sequencer::Store::open(&cfg.store_dir).unwrap();
        let mut checkpoint = store.checkpoint().unwrap().unwrap();
        checkpoint.root.0[31] ^= 1;
        store.set_checkpoint(checkpoint).unwrap();
        // A receipt the journal never acknowledged: gone after the rebuild.
        let mut stray = receipts[0].receipt.clone();
        stray.tx_hash = stablelane::TxHash(alloy::primitives::B256::repeat_byte(0x5a));
        let group =
            stablelane::SignedGroup::sign(vec![stray.clone()], &operator, &cfg.domain.separator())
                .unwrap();
        store
            .write(&stablelane_sequencer::StoreUpdate {
                groups: vec![stablelane_sequencer::NumberedGroup {
                    number: store.last_group_number().unwrap() + 1,
                    signed: std::sync::Arc::new(group),
                }],
                batches: vec![],
                applied_seq: store.applied_seq().unwrap(),
            })
            .unwrap();
        assert_eq!(
            store.receipt(&stray.tx_hash).unwrap().map(|(r, _)| r),
            Some(stray)
        );
        store.flush().unwrap();
    }
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    assert_eq!(seq.root().unwrap(), root);
    assert_eq!(
        seq.store().checkpoint().unwrap().map(|c| c.root),
        Some(root)
    );
    assert_eq!(
        seq.receipt(&stablelane::TxHash(alloy::primitives::B256::repeat_byte(
            0x5a
        )))
        .unwrap(),
        None
    );
    for r in &receipts {
        assert_eq!(
            seq.receipt(&r.receipt.tx_hash).unwrap(),
            Some(r.receipt.clone())
        );
    }
    // The rebuild counted every transaction once.
    assert_eq!(seq.store().transaction_count(), 5);
    seq.shutdown().await;

    // A store that claims more than the journal holds (journal lost or swapped): rebuilt.
    {
        let store = stablelane_sequencer::Store::open(&cfg.store_dir).unwrap();
        store
            .write(&stablelane_sequencer::StoreUpdate {
                groups: vec![],
                batches: vec![],
                applied_seq: 1_000,
            })
            .unwrap();
        store.flush().unwrap();
    }
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    assert_eq!(
        seq.store().applied_seq().unwrap(),
        seq.read(|s| s.last_seq().get())
    );
    assert_eq!(seq.root().unwrap(), root);
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_directory_of_another_deployment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let operator = PrivateKeySigner::random();
    let cfg = config(dir.path());
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    some_history(&seq, &cfg, 1).await;
    seq.shutdown().await;
    let mut other = cfg.clone();
    other.domain = domain(31337, Address::repeat_byte(0x12));
    assert!(matches!(
        Sequencer::open(other, operator),
        Err(stablelane_sequencer::OpenError::WrongDeployment { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribers_see_acknowledged_transactions_of_their_address() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let receipt_key = PrivateKeySigner::random();
    let seq = Sequencer::open(cfg.clone(), receipt_key.clone()).unwrap();
    let mut events = seq.subscribe();
    let receipts = some_history(&seq, &cfg, 3).await;
    let bob = Address::repeat_byte(0xb0);
    let (mut payers, mut paid) = (Vec::new(), Vec::new());
    // Each payer's deposit and transfer, and bob's three credits, in some groups.
    while paid.len() < 3 {
        let event = events.recv().await.unwrap();
        for r in &receipts {
            payers.extend(event.receipts_for(r.receipt.owner));
        }
        paid.extend(event.receipts_for(bob));
        assert_eq!(event.receipts_for(Address::repeat_byte(0x01)).count(), 0);
    }
    for (own, counterparty) in payers.iter().chain(&paid) {
        own.verify(receipt_key.address(), &cfg.domain).unwrap();
        match own.receipt.kind {
            stablelane::ReceiptKind::Sender => assert_eq!(*counterparty, Some(bob)),
            stablelane::ReceiptKind::Recipient => {
                assert_eq!(own.receipt.owner, bob);
                assert!(receipts
                    .iter()
                    .any(|r| Some(r.receipt.owner) == *counterparty));
            }
            stablelane::ReceiptKind::Deposit => assert_eq!(*counterparty, None),
            other => panic!("unexpected {other:?}"),
        }
    }
    for r in &receipts {
        assert!(
            payers.iter().any(|(own, _)| own == r),
            "the sender's receipt is published as acknowledged"
        );
    }
    // Bob's balance rises by 100 per transfer; each of his receipts is his own state.
    let mut balances: Vec<u128> = paid
        .iter()
        .map(|(r, _)| r.receipt.balance.base_units())
        .collect();
    balances.sort_unstable();
    assert_eq!(balances, vec![100, 200, 300]);
    let metrics = seq.metrics();
    assert_eq!(metrics.transactions, 3);
    assert_eq!(metrics.last_seq, 6);
    assert!(metrics.groups >= 1 && metrics.journal.syncs >= 1);
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_the_poseidon_hashes_of_each_seal() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let seq = Sequencer::open(cfg.clone(), PrivateKeySigner::random()).unwrap();
    assert_eq!(seq.metrics().seal_hashes, Default::default());
    // Three payers (slots 0, 3, 4), each funded and then paying bob (slot 1) with a fee to
    // the fee recipient (slot 2).
    some_history(&seq, &cfg, 3).await;
    assert_eq!(seq.seal_batch().await.unwrap(), Some(1));
    seq.root().unwrap(); // waits for the seal job
    let hashes = seq.metrics().seal_hashes;
    // The writer hashes no leaf: every changed slot's leaf is hashed once, at the seal.
    assert_eq!(hashes.leaves, 5);
    // Slots 0..=4: 3 parents at level 1, 2 at level 2, then one node on each of 30 levels.
    assert_eq!(hashes.inner, 35);
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_seal_on_request_and_at_limits_and_replay_byte_for_byte() {
    use stablelane::rpc::BatchStatus;
    use stablelane_contracts::{
        batch_body::{open_note, BatchBody},
        batch_data::{decode_batch_data, deposit_hash},
    };
    use stablelane_sequencer::BatchLimits;

    let dir = tempfile::tempdir().unwrap();
    let operator = PrivateKeySigner::random();
    let mut cfg = config(dir.path());
    cfg.batch = BatchLimits {
        max_withdrawals: 2,
        ..BatchLimits::default()
    };
    let alice = PrivateKeySigner::random();
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    let mut batches = seq.subscribe_batches();

    // Nothing to seal yet.
    assert_eq!(seq.seal_batch().await.unwrap(), None);

    // Alice registers her viewing key, gets a deposit; batch 1 is sealed on request.
    let vk_sig = {
        use alloy::{signers::SignerSync, sol_types::SolStruct};
        let hash = stablelane::messages::viewing_key_message(alice.address())
            .eip712_signing_hash(&cfg.domain);
        alice.sign_hash_sync(&hash).unwrap()
    };
    seq.register_viewing_key(alice.address(), vk_sig)
        .await
        .unwrap();
    seq.submit_deposit(Deposit {
        queue_index: 0,
        recipient: alice.address(),
        token: TOKEN,
        amount: Amount(1_000),
    })
    .await
    .unwrap();
    let transfer = sign(
        &alice,
        transfer(&alice, Address::repeat_byte(0xb0), 100, 0),
        &cfg.domain,
    )
    .unwrap();
    let paid = seq.submit_transfer(transfer).await.unwrap();
    assert_eq!(seq.seal_batch().await.unwrap(), Some(1));
    assert_eq!(seq.seal_batch().await.unwrap(), None);
    let note = batches.recv().await.unwrap();
    assert_eq!((note.number, note.status), (1, BatchStatus::Sealed));

    let (one, chain) = seq.batch(1).unwrap().unwrap();
    assert_eq!(chain.status, BatchStatus::Sealed);
    assert_eq!(one.new_root, seq.root().unwrap());
    assert_eq!(
        one.prev_root,
        B256::from(stablelane_circuits::field::fr_to_be_bytes(
            &stablelane_circuits::tree::empty_root()
        ))
    );
    assert_eq!((one.deposits_consumed, one.transaction_count), (1, 1));
    assert_eq!(
        one.deposits_hash,
        deposit_hash(B256::ZERO, alice.address(), TOKEN, 1_000)
    );
    // Three slots: alice, the recipient and the fee recipient; all new.
    assert_eq!((one.new_slots, one.changed_slots), (3, 3));
    let decoded = decode_batch_data(&one.data).unwrap();
    assert!(decoded.withdrawals.is_empty());
    assert!(decoded.refused.is_empty());
    let body = BatchBody::decode(decoded.rest).unwrap();
    assert_eq!(body.first_slot, 0);
    assert_eq!(body.new_slots[0].owner, alice.address());
    // Alice opens her own note with her viewing key; the leaf matches her receipt.
    let vk = stablelane::signing::derive_viewing_key(&alice, &cfg.domain).unwrap();
    assert_eq!(vk, stablelane::signing::viewing_key_from_signature(&vk_sig));
    let leaf = body
        .leaves
        .iter()
        .find(|l| l.slot == paid.receipt.slot.get())
        .unwrap();
    assert_eq!(Some(leaf.leaf), seq.read(|s| s.leaf(paid.receipt.slot)));
    assert_eq!(open_note(&vk, 1, leaf.slot, &leaf.note), (890, 1));
    // The transaction's batch is found by its sequence number.
    assert_eq!(
        seq.batch_of_sequence(paid.receipt.sequence.get())
            .unwrap()
            .map(|(n, _)| n),
        Some(1)
    );

    // Two withdrawals reach max_withdrawals: the writer seals batch 2 on its own.
    for (nonce, amount) in [(1u64, 10u128), (2, 20)] {
        let w = Withdrawal {
            from: alice.address(),
            recipient: Address::repeat_byte(0x99),
            token: TOKEN,
            amount: Amount(amount),
            fee: Amount(10),
            nonce: Nonce(nonce),
            valid_until: u64::MAX,
        };
        seq.submit_withdrawal(sign(&alice, w, &cfg.domain).unwrap())
            .await
            .unwrap();
    }
    let note = batches.recv().await.unwrap();
    assert_eq!(note.number, 2);
    let (two, _) = seq.batch(2).unwrap().unwrap();
    assert_eq!(two.prev_root, one.new_root);
    assert_eq!(two.withdrawals.len(), 2);
    assert_eq!(two.withdrawals[1].amount, Amount(20));
    assert!(two.withdrawals[0].tx_hash.is_some());
    assert_eq!(seq.read(|s| s.open_batch().records), 0);
    // Unchanged slots are not repeated: alice and the fee recipient only.
    assert_eq!((two.new_slots, two.changed_slots), (0, 2));
    seq.shutdown().await;

    // A store rebuilt from the journal yields the same batches byte for byte.
    std::fs::remove_dir_all(&cfg.store_dir).unwrap();
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    assert_eq!(seq.batch(1).unwrap().unwrap().0, one);
    assert_eq!(seq.batch(2).unwrap().unwrap().0, two);
    assert!(seq.batch(3).unwrap().is_none());
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_repeats_of_a_transfer_in_flight_get_the_original_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let operator = PrivateKeySigner::random();
    let cfg = config(dir.path());
    let seq = Sequencer::open(cfg.clone(), operator).unwrap();
    let alice = PrivateKeySigner::random();
    seq.submit_deposit(Deposit {
        queue_index: 0,
        recipient: alice.address(),
        token: TOKEN,
        amount: Amount(1_000),
    })
    .await
    .unwrap();
    for nonce in 0..20u64 {
        let signed = sign(
            &alice,
            transfer(&alice, Address::repeat_byte(0xb0), 1, nonce),
            &cfg.domain,
        )
        .unwrap();
        // Eight copies at once: some land in the same group, some in later groups while
        // the first is still being synced.
        let copies: Vec<_> = (0..8)
            .map(|_| {
                let (seq, signed) = (seq.clone(), signed.clone());
                tokio::spawn(async move { seq.submit_transfer(signed).await })
            })
            .collect();
        let mut receipts = Vec::new();
        for copy in copies {
            receipts.push(copy.await.unwrap().unwrap());
        }
        assert!(receipts.iter().all(|r| r == &receipts[0]), "nonce {nonce}");
    }
    // One debit per transfer.
    assert_eq!(
        seq.read(|s| s.ledger().balance(alice.address(), TOKEN)),
        Amount(1_000 - 20 * 11)
    );
    assert_eq!(seq.store().transaction_count(), 20);
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_seal_before_their_data_outgrows_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.batch = stablelane_sequencer::BatchLimits {
        max_data_bytes: 4_096,
        ..Default::default()
    };
    let seq = Sequencer::open(cfg, PrivateKeySigner::random()).unwrap();
    // Each deposit to a new account adds a new slot (40 bytes) and a changed leaf (60).
    for i in 0..100u64 {
        seq.submit_deposit(Deposit {
            queue_index: i,
            recipient: Address::from_word(B256::from(alloy::primitives::U256::from(i + 1))),
            token: TOKEN,
            amount: Amount(5),
        })
        .await
        .unwrap();
    }
    let sealed = seq.read(|s| s.last_batch());
    assert!(sealed >= 2, "only {sealed} batches sealed");
    // Sealed at the data bound by the writer; the tree worker stores them a little later.
    seq.wait_for_batch(sealed).await.unwrap();
    for n in 1..=sealed {
        let (batch, _) = seq.batch(n).unwrap().unwrap();
        assert!(
            batch.data.len() <= 4_096,
            "batch {n}: {} bytes",
            batch.data.len()
        );
    }
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sealed_states_open_every_slot_against_its_batch_root_and_survive_restart() {
    use stablelane_circuits::{field::fr_from_be_bytes, leaf_hash, SlotIndex as TreeIndex};

    let dir = tempfile::tempdir().unwrap();
    let operator = PrivateKeySigner::random();
    let mut cfg = config(dir.path());
    cfg.sealed_history = 3;
    let keys: Vec<PrivateKeySigner> = (0..4).map(|_| PrivateKeySigner::random()).collect();
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    for (i, key) in keys.iter().enumerate() {
        seq.submit_deposit(Deposit {
            queue_index: i as u64,
            recipient: key.address(),
            token: TOKEN,
            amount: Amount(10_000),
        })
        .await
        .unwrap();
    }
    // Five batches of payments around the ring; remember each slot's balance at each seal.
    let mut balances_at: Vec<Vec<(u32, u128, u64)>> = Vec::new();
    for round in 0..5u64 {
        for (i, key) in keys.iter().enumerate() {
            let to = keys[(i + 1) % keys.len()].address();
            let tx = sign(
                key,
                transfer(key, to, 100 + round as u128, round),
                &cfg.domain,
            )
            .unwrap();
            seq.submit_transfer(tx).await.unwrap();
        }
        let number = seq.seal_batch().await.unwrap().unwrap();
        assert_eq!(number, round + 1);
        balances_at.push(seq.read(|s| {
            (0..s.ledger().slot_count())
                .filter_map(|i| {
                    s.ledger()
                        .slot(stablelane::SlotIndex(i))
                        .map(|slot| (i, slot.balance.base_units(), slot.nonce.get()))
                })
                .collect()
        }));
    }
    let check = |seq: &Sequencer| {
        for batch in 3..=5u64 {
            let (sealed_batch, _) = seq.batch(batch).unwrap().unwrap();
            seq.read(|s| {
                let side = s.tree().now();
                let sealed = side.sealed().expect("kept");
                assert_eq!((sealed.oldest(), sealed.head()), (2, 5));
                for &(slot, balance, nonce) in &balances_at[batch as usize - 1] {
                    let o = sealed.opening(batch, slot).unwrap();
                    assert_eq!((o.secrets.balance, o.secrets.nonce), (balance, nonce));
                    let ledger_slot = s.ledger().slot(stablelane::SlotIndex(slot)).unwrap();
                    let salt = fr_from_be_bytes(&ledger_slot.salt.0).unwrap();
                    assert_eq!(o.secrets.salt, salt);
                    let leaf = leaf_hash(
                        ledger_slot.owner.0 .0,
                        ledger_slot.token.0 .0,
                        balance,
                        nonce,
                        salt,
                    );
                    assert!(o.path.verify(o.root, TreeIndex::new(slot), leaf));
                    assert_eq!(
                        stablelane_sequencer::sealed::root_word(&o.root),
                        sealed_batch.new_root,
                        "batch {batch}"
                    );
                }
                assert!(sealed.opening(1, 0).is_err(), "outside the history");
            });
        }
    };
    check(&seq);
    seq.shutdown().await;
    // Replay rebuilds the same sealed states.
    let seq = Sequencer::open(cfg, operator).unwrap();
    check(&seq);
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_skips_rebuilding_stored_batches_but_a_wrong_stored_root_forces_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let operator = PrivateKeySigner::random();
    let cfg = config(dir.path());
    let alice = PrivateKeySigner::random();
    let bob = PrivateKeySigner::random();
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    seq.submit_deposit(Deposit {
        queue_index: 0,
        recipient: alice.address(),
        token: TOKEN,
        amount: Amount(10_000),
    })
    .await
    .unwrap();
    let mut batches = Vec::new();
    for nonce in 0..4 {
        let tx = sign(
            &alice,
            transfer(&alice, bob.address(), 10, nonce),
            &cfg.domain,
        )
        .unwrap();
        seq.submit_transfer(tx).await.unwrap();
        let number = seq.seal_batch().await.unwrap().unwrap();
        batches.push(seq.batch(number).unwrap().unwrap().0);
    }
    // Changes after the last seal stay in the open batch across the restart.
    let tx = sign(&alice, transfer(&alice, bob.address(), 10, 4), &cfg.domain).unwrap();
    seq.submit_transfer(tx).await.unwrap();
    let root = seq.root().unwrap();
    seq.shutdown().await;

    // A plain restart: same root, same batches, the open batch still open.
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    assert_eq!(seq.root().unwrap(), root);
    for batch in &batches {
        assert_eq!(&seq.batch(batch.number).unwrap().unwrap().0, batch);
    }
    assert_eq!(seq.open_batch().number, 5);
    assert_eq!(seq.open_batch().records, 1);
    seq.shutdown().await;

    // The store's last batch claims another root: the journal disagrees, the store is
    // rebuilt from it and holds the true batch again.
    {
        let store = stablelane_sequencer::Store::open(&cfg.store_dir).unwrap();
        let mut wrong = batches[3].clone();
        wrong.new_root = B256::repeat_byte(0x66);
        store
            .write(&stablelane_sequencer::StoreUpdate {
                batches: vec![wrong],
                applied_seq: store.applied_seq().unwrap(),
                ..Default::default()
            })
            .unwrap();
        store.flush().unwrap();
    }
    let seq = Sequencer::open(cfg, operator).unwrap();
    assert_eq!(seq.root().unwrap(), root);
    assert_eq!(&seq.batch(4).unwrap().unwrap().0, &batches[3]);
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn seals_journaled_before_their_batches_were_stored_are_rebuilt_on_start() {
    use stablelane::rpc::BatchStatus;
    use stablelane_sequencer::BatchChainState;

    let dir = tempfile::tempdir().unwrap();
    let operator = PrivateKeySigner::random();
    let cfg = config(dir.path());
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    let mut batches = Vec::new();
    for n in 1..=3u64 {
        some_history(&seq, &cfg, 2).await;
        assert_eq!(seq.seal_batch().await.unwrap(), Some(n));
        batches.push(seq.batch(n).unwrap().unwrap().0);
    }
    let committed = BatchChainState {
        status: BatchStatus::Committed,
        l2_tx_hash: Some(B256::repeat_byte(0x11)),
        l2_block: Some(7),
        ..BatchChainState::default()
    };
    seq.set_batch_chain_state(1, &committed).unwrap();
    let root = seq.root().unwrap();
    seq.shutdown().await;

    // The node stopped after the groups holding the seals of batches 2 and 3 were stored,
    // but before the tree worker's batches were.
    {
        let store = stablelane_sequencer::Store::open(&cfg.store_dir).unwrap();
        store.forget_batches_from(2).unwrap();
        assert_eq!(store.last_batch_number().unwrap(), 1);
        store.flush().unwrap();
    }
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    for batch in &batches {
        assert_eq!(&seq.batch(batch.number).unwrap().unwrap().0, batch);
    }
    assert_eq!(
        seq.batch_of_sequence(batches[2].last_sequence)
            .unwrap()
            .map(|b| b.0),
        Some(3)
    );
    // Rebuilt in place: what the settler recorded about batch 1 is still there (a store
    // rebuilt from scratch would have lost it).
    assert_eq!(seq.batch(1).unwrap().unwrap().1, committed);
    assert_eq!(seq.root().unwrap(), root);
    seq.shutdown().await;
}

/// Niceness of this process's threads whose name starts with `prefix`.
#[cfg(target_os = "linux")]
fn nice_of_threads(prefix: &str) -> Vec<i32> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let path = task.ok()?.path();
            let comm = std::fs::read_to_string(path.join("comm")).ok()?;
            if !comm.starts_with(prefix) {
                return None;
            }
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            // Fields after the command's closing parenthesis start at field 3 (state);
            // niceness is field 19.
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.split_whitespace().nth(16)?.parse().ok()
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn the_tree_worker_hashes_at_a_lower_priority_than_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let seq = Sequencer::open(cfg.clone(), PrivateKeySigner::random()).unwrap();
    some_history(&seq, &cfg, 2).await;
    assert_eq!(seq.seal_batch().await.unwrap(), Some(1));
    let own = stablelane_sequencer::priority::thread_nice();
    let hashing = nice_of_threads("tree-hash-");
    assert!(!hashing.is_empty(), "no tree hashing threads found");
    let want = own.max(stablelane_sequencer::TREE_WORKER_NICE);
    assert!(
        hashing.iter().all(|&n| n == want),
        "{hashing:?}, want {want}"
    );
    let tokio_workers = nice_of_threads("tokio-runtime-w");
    assert!(tokio_workers.iter().all(|&n| n == own), "{tokio_workers:?}");
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deposits_the_ledger_cannot_hold_are_consumed_as_refused_and_replayed_so() {
    use stablelane_contracts::batch_data::{decode_batch_data, deposit_hash};
    use stablelane_ledger::BALANCE_MAX;

    let dir = tempfile::tempdir().unwrap();
    let operator = PrivateKeySigner::random();
    let mut cfg = config(dir.path());
    cfg.ledger.slots_max = 2;
    let other_token = Address::repeat_byte(0xbb);
    let [alice, bob, carol] = [1u8, 2, 3].map(Address::repeat_byte);
    let deposits = [
        (alice, TOKEN, BALANCE_MAX), // credited: the slot holds its maximum
        (alice, TOKEN, 1),           // refused: the balance would pass 2^96 - 1
        (bob, other_token, 5),       // refused: a token the configuration lacks
        (bob, TOKEN, 7),             // credited: the second and last slot
        (carol, TOKEN, 9),           // refused: no slot left
        (bob, TOKEN, 3),             // credited: the queue moved on past the refusals
    ];
    let seq = Sequencer::open(cfg.clone(), operator.clone()).unwrap();
    let mut hash = B256::ZERO;
    for (i, (recipient, token, amount)) in deposits.iter().enumerate() {
        seq.submit_deposit(Deposit {
            queue_index: i as u64,
            recipient: *recipient,
            token: *token,
            amount: Amount(*amount),
        })
        .await
        .unwrap();
        hash = deposit_hash(hash, *recipient, *token, *amount);
    }
    // Out of queue order is still an error, not a refusal.
    assert!(matches!(
        seq.submit_deposit(Deposit {
            queue_index: 2,
            recipient: bob,
            token: TOKEN,
            amount: Amount(1),
        })
        .await,
        Err(SubmitError::Rejected(Rejection::DepositOutOfOrder {
            expected: 6
        }))
    ));
    let state = |s: &Sequencer| {
        s.read(|st| {
            let l = st.ledger();
            l.check_supply().unwrap();
            (
                l.deposits_consumed(),
                l.balance(alice, TOKEN),
                l.balance(bob, TOKEN),
                l.slot_count(),
                l.supply(TOKEN).unwrap().deposited,
            )
        })
    };
    let expected = (
        6,
        Amount(BALANCE_MAX),
        Amount(10),
        2,
        Amount(BALANCE_MAX + 10),
    );
    assert_eq!(state(&seq), expected);

    assert_eq!(seq.seal_batch().await.unwrap(), Some(1));
    let (batch, _) = seq.batch(1).unwrap().unwrap();
    assert_eq!((batch.deposits_consumed, batch.deposits_hash), (6, hash));
    let data = batch.data.clone();
    assert_eq!(decode_batch_data(&data).unwrap().refused, vec![1, 2, 4]);
    seq.shutdown().await;

    // The replay refuses the same deposits, even with the other token configured now: the
    // journal holds the refusals, not a re-check.
    let mut later = cfg.clone();
    later.ledger.tokens.insert(other_token, Amount(10));
    let seq = Sequencer::open(later.clone(), operator.clone()).unwrap();
    assert_eq!(state(&seq), expected);
    assert_eq!(
        seq.read(|s| s.ledger().balance(bob, other_token)),
        Amount(0)
    );
    assert_eq!(seq.batch(1).unwrap().unwrap().0.data, data);
    seq.shutdown().await;
    // And from scratch (store gone): the batch is rebuilt byte for byte.
    std::fs::remove_dir_all(&later.store_dir).unwrap();
    let seq = Sequencer::open(later, operator).unwrap();
    assert_eq!(state(&seq), expected);
    assert_eq!(seq.batch(1).unwrap().unwrap().0.data, data);
}
