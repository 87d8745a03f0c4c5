//! Chain sync against a real anvil: batches committed with the operator key (built here with
//! a state tree of our own) are rebuilt from the chain alone, root, slots, paths and notes;
//! a batch whose body lies about its leaves (the contract accepts it: it does not check the
//! tree) makes the sync fail naming that batch. Without anvil: replaying a commit refuses a
//! truncated body and every other inconsistency, naming the batch and leaving the state as
//! it was; an unreachable RPC fails after the retries.

use std::collections::HashMap;

use alloy::{
    primitives::{keccak256, Address, Bytes, B256},
    providers::{ext::AnvilApi, DynProvider, Provider},
    signers::local::PrivateKeySigner,
};
use eyre::{ensure, eyre, Result};
use stablelane::sync::{
    chain_sync, ChainSyncConfig, CommitOrigin, SyncError, SyncProgress, SyncedState,
};
use stablelane_circuits::{
    field::{fr_from_be_bytes, fr_to_be_bytes},
    leaf_hash, Fr, SlotIndex, StateTree,
};
use stablelane_contracts::{
    batch_body::{open_note, seal_note, BatchBody, BodyError, LeafUpdate, NewSlot},
    batch_data::encode_batch_data,
    Settlement,
};
use stablelane_devnet::{deploy::genesis_root, DeployConfig, Devnet, DevnetOptions};

/// Key the test seals notes with (stands for the owners' viewing keys).
const NOTE_KEY: B256 = B256::repeat_byte(0x42);

fn b256(value: &Fr) -> B256 {
    B256::from(fr_to_be_bytes(value))
}

/// One leaf change of a batch: slot, balance, nonce.
type Change = (u32, u128, u64);

/// Builds batches the way the node does, with a tree of its own.
#[derive(Default)]
struct Builder {
    tree: StateTree,
    slots: Vec<(Address, Address)>,
    last_batch: u64,
    /// Last (balance, nonce) per slot.
    balances: HashMap<u32, (u128, u64)>,
}

impl Builder {
    fn leaf(&self, slot: u32, balance: u128, nonce: u64) -> Result<Fr> {
        let &(owner, token) = self
            .slots
            .get(slot as usize)
            .ok_or_else(|| eyre!("no slot {slot}"))?;
        let salt = Fr::from(u64::from(slot) * 1_000 + 7);
        Ok(leaf_hash(owner.0 .0, token.0 .0, balance, nonce, salt))
    }

    /// The next batch: creates `new_slots`, applies `changes`; with `lie_about`, the body
    /// publishes another leaf for that slot than the one the committed root holds.
    fn next(
        &mut self,
        new_slots: &[(Address, Address)],
        changes: &[Change],
        lie_about: Option<u32>,
    ) -> Result<Settlement::commitBatchCall> {
        let number = self.last_batch + 1;
        let prev_root = b256(&self.tree.root());
        let first_slot = u32::try_from(self.slots.len())?;
        self.slots.extend_from_slice(new_slots);
        let mut tree_changes = Vec::new();
        let mut leaves = Vec::new();
        for &(slot, balance, nonce) in changes {
            let leaf = self.leaf(slot, balance, nonce)?;
            tree_changes.push((SlotIndex::new(slot), leaf));
            let published = if lie_about == Some(slot) {
                self.leaf(slot, balance + 1_000_000, nonce)?
            } else {
                leaf
            };
            leaves.push(LeafUpdate {
                slot,
                leaf: b256(&published),
                note: seal_note(&NOTE_KEY, number, slot, balance, nonce)?,
            });
            self.balances.insert(slot, (balance, nonce));
        }
        self.tree.update_batch(&tree_changes)?;
        let body = BatchBody {
            first_slot,
            new_slots: new_slots
                .iter()
                .map(|&(owner, token)| NewSlot { owner, token })
                .collect(),
            leaves,
        };
        let data = encode_batch_data(&[], &[], &body.encode()?)?;
        self.last_batch = number;
        Ok(Settlement::commitBatchCall {
            header: Settlement::BatchHeader {
                batchNumber: number,
                prevRoot: prev_root,
                newRoot: b256(&self.tree.root()),
                depositsConsumed: 0,
                depositsHash: B256::ZERO,
                forcedConsumed: 0,
                forcedHash: B256::ZERO,
                dataHash: keccak256(&data),
            },
            data: data.into(),
        })
    }
}

/// The event the contract emits for `call` (a batch without withdrawals or deposits).
fn event_of(call: &Settlement::commitBatchCall) -> Settlement::BatchCommitted {
    Settlement::BatchCommitted {
        batchNumber: call.header.batchNumber,
        newRoot: call.header.newRoot,
        dataHash: call.header.dataHash,
        depositsConsumed: 0,
        forcedConsumed: 0,
        withdrawalCount: 0,
        withdrawalsRoot: B256::ZERO,
    }
}

struct Chain {
    devnet: Devnet,
    operator: DynProvider,
    owners: Vec<Address>,
    tokens: Vec<Address>,
}

impl Chain {
    async fn start() -> Result<Self> {
        let devnet = Devnet::start(DevnetOptions {
            port: 0,
            deploy: DeployConfig::default(),
            ..DevnetOptions::default()
        })
        .await?;
        let d = devnet.description();
        let key: PrivateKeySigner = d.operator.private_key.parse()?;
        let operator = stablelane_devnet::wallet_provider(&devnet.rpc_url(), &[key])?;
        let owners = d.dev_accounts.iter().map(|a| a.address).collect();
        let tokens: Vec<Address> = d.tokens.iter().map(|t| t.address).collect();
        ensure!(tokens.len() >= 2, "the devnet deploys at least two tokens");
        Ok(Self {
            owners,
            tokens,
            operator,
            devnet,
        })
    }

    fn settlement(&self) -> Address {
        self.devnet.description().settlement
    }

    /// Commits `call` from the operator key; returns the transaction hash.
    async fn commit(&self, call: &Settlement::commitBatchCall) -> Result<B256> {
        let receipt = Settlement::new(self.settlement(), self.operator.clone())
            .commitBatch(call.header.clone(), call.data.clone())
            .send()
            .await?
            .get_receipt()
            .await?;
        ensure!(
            receipt.status(),
            "commit of batch {} reverted",
            call.header.batchNumber
        );
        Ok(receipt.transaction_hash)
    }

    /// A few empty blocks, so that batches sit in different log chunks.
    async fn mine(&self, blocks: u64) -> Result<()> {
        self.devnet
            .provider()
            .anvil_mine(Some(blocks), None)
            .await?;
        Ok(())
    }

    fn config(&self, max_block_range: u64) -> ChainSyncConfig {
        ChainSyncConfig {
            l2_rpc_url: self.devnet.rpc_url(),
            settlement: self.settlement(),
            from_block: self.devnet.description().deploy_block,
            max_block_range,
            up_to: None,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rebuilds_the_committed_state_from_the_chain() -> Result<()> {
    let chain = Chain::start().await?;
    let (alice, bob, carol) = (chain.owners[0], chain.owners[1], chain.owners[2]);
    let (usdc, eurc) = (chain.tokens[0], chain.tokens[1]);

    // Before any batch: the genesis state.
    let genesis = chain_sync(&chain.config(1_000), |_| {}).await?;
    assert_eq!(genesis.last_batch(), 0);
    assert_eq!(genesis.root(), genesis_root());

    let mut b = Builder::default();
    let batches = [
        // Three slots, two of them set; slot 2 stays empty.
        b.next(
            &[(alice, usdc), (bob, usdc), (alice, eurc)],
            &[(0, 5_000_000, 0), (1, 7, 0)],
            None,
        )?,
        // No new slot; slot 0 again and slot 2 for the first time.
        b.next(&[], &[(0, 4_000_000, 1), (2, 1, 0)], None)?,
        // Two new slots, one left unset; an old slot and a new one change.
        b.next(
            &[(carol, usdc), (bob, eurc)],
            &[(1, 1_000_007, 3), (3, 42, 0)],
            None,
        )?,
    ];
    let mut tx_hashes = Vec::new();
    for call in &batches {
        tx_hashes.push(chain.commit(call).await?);
        chain.mine(3).await?;
    }
    let contract = Settlement::new(chain.settlement(), chain.devnet.provider().clone());
    assert_eq!(
        contract.stateRoot().call().await?,
        b256(&b.tree.root()),
        "the contract holds the root of the test's own tree"
    );

    // Logs read two blocks at a time: the batches sit in different chunks.
    let mut seen: Vec<SyncProgress> = Vec::new();
    let state = chain_sync(&chain.config(2), |p| seen.push(p)).await?;

    assert_eq!(state.last_batch(), 3);
    assert_eq!(state.root(), b256(&b.tree.root()));
    assert_eq!(state.tree().root(), b.tree.root());
    assert_eq!(state.slots(), b.slots.as_slice());
    assert_eq!(
        seen.iter()
            .map(|p| (p.batches_done, p.batches_total))
            .collect::<Vec<_>>(),
        vec![(1, 3), (2, 3), (3, 3)]
    );

    // Batch summaries point at the commits.
    let provider = chain.devnet.provider();
    for (i, summary) in state.batches().iter().enumerate() {
        let call = &batches[i];
        assert_eq!(summary.number, call.header.batchNumber);
        assert_eq!(summary.new_root, call.header.newRoot);
        assert_eq!(summary.l2_tx_hash, tx_hashes[i]);
        let receipt = provider
            .get_transaction_receipt(tx_hashes[i])
            .await?
            .ok_or_else(|| eyre!("no receipt"))?;
        assert_eq!(Some(summary.l2_block), receipt.block_number);
        assert_eq!(summary.withdrawals, 0);
        assert_eq!(seen[i].l2_block, summary.l2_block);
    }
    let counts: Vec<_> = state
        .batches()
        .iter()
        .map(|s| (s.new_slots, s.leaves_changed))
        .collect();
    assert_eq!(counts, vec![(3, 2), (0, 2), (2, 2)]);

    // Every slot: found by its key, its leaf and path prove against the root, and its last
    // note opens to its last (balance, nonce).
    let root = fr_from_be_bytes(&state.root().0)?;
    for (i, &(owner, token)) in b.slots.iter().enumerate() {
        let slot = SlotIndex::new(u32::try_from(i)?);
        assert_eq!(state.slot_index(owner, token), Some(slot));
        let leaf = state.leaf(slot).ok_or_else(|| eyre!("no leaf"))?;
        assert_eq!(leaf, b256(&b.tree.leaf(slot)));
        let path = state.path(slot).ok_or_else(|| eyre!("no path"))?;
        assert!(path.verify(root, slot, fr_from_be_bytes(&leaf.0)?));
        match b.balances.get(&slot.get()) {
            Some(&expected) => {
                let note = state.note(slot).ok_or_else(|| eyre!("no note"))?;
                assert_eq!(
                    open_note(&NOTE_KEY, note.batch, slot.get(), &note.note),
                    expected
                );
            }
            None => {
                assert!(state.note(slot).is_none());
                assert_eq!(leaf, B256::ZERO);
            }
        }
    }
    assert_eq!(state.note(SlotIndex::new(0)).map(|n| n.batch), Some(2));
    assert_eq!(state.slot_index(carol, eurc), None);
    assert!(state.path(SlotIndex::new(5)).is_none());
    assert!(state.leaf(SlotIndex::new(5)).is_none());

    // Up to batch 2 only: two batches replayed, checked against the contract's root of
    // batch 2 (not its stateRoot); beyond the last batch, refused.
    let mut partial = chain.config(1_000);
    partial.up_to = Some(2);
    let two = chain_sync(&partial, |_| {}).await?;
    assert_eq!(two.last_batch(), 2);
    assert_eq!(two.root(), batches[1].header.newRoot);
    assert_ne!(two.root(), state.root());
    partial.up_to = Some(4);
    match chain_sync(&partial, |_| {}).await {
        Err(SyncError::NotCommitted { up_to: 4, last: 3 }) => {}
        other => return Err(eyre!("expected batch 4 not committed, got {other:?}")),
    }

    // Scanning from after the commits finds none of them: the sync says which is missing.
    let mut late = chain.config(1_000);
    late.from_block = provider.get_block_number().await?;
    match chain_sync(&late, |_| {}).await {
        Err(SyncError::MissingBatch { batch: 1, last: 3 }) => {}
        other => return Err(eyre!("expected batch 1 missing, got {other:?}")),
    }
    Ok(())
}

/// An operator that commits through a contract (a Safe, a multisig, a forwarder): the
/// transaction goes to that contract, and chain sync finds the `commitBatch` call in the
/// call trace. Before, it refused such commits (`IndirectCommit`).
#[tokio::test(flavor = "multi_thread")]
async fn commits_made_through_a_forwarding_contract_are_read_from_the_trace() -> Result<()> {
    use alloy::sol_types::SolCall;
    use stablelane_contracts::CallForwarder;
    let chain = Chain::start().await?;
    let (alice, bob) = (chain.owners[0], chain.owners[1]);
    let usdc = chain.tokens[0];
    let mut b = Builder::default();
    let first = b.next(&[(alice, usdc)], &[(0, 9, 0)], None)?;
    chain.commit(&first).await?;

    // The owner makes a forwarder, owned by the operator key, the settlement operator.
    let d = chain.devnet.description();
    let owner_key: PrivateKeySigner = d.owner.private_key.parse()?;
    let owner = stablelane_devnet::wallet_provider(&chain.devnet.rpc_url(), &[owner_key])?;
    let forwarder = CallForwarder::deploy(chain.operator.clone(), d.operator.address).await?;
    // An operator change waits the contract's timelock (its finalization delay).
    let settlement = Settlement::new(chain.settlement(), owner);
    settlement
        .proposeOperator(*forwarder.address())
        .send()
        .await?
        .get_receipt()
        .await?;
    let delay = settlement.timelockDelay().call().await?;
    let provider = chain.devnet.provider();
    provider.anvil_increase_time(delay).await?;
    provider.anvil_mine(Some(1), None).await?;
    let receipt = settlement
        .executeOperator()
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "executeOperator reverted");
    assert_eq!(settlement.operator().call().await?, *forwarder.address());
    let mut through = Vec::new();
    for call in [
        b.next(&[(bob, usdc)], &[(0, 4, 1), (1, 5, 0)], None)?,
        b.next(&[], &[(1, 2, 1)], None)?,
    ] {
        let receipt = forwarder
            .forward(chain.settlement(), call.abi_encode().into())
            .send()
            .await?
            .get_receipt()
            .await?;
        ensure!(
            receipt.status(),
            "forwarded commit of batch {} reverted",
            call.header.batchNumber
        );
        ensure!(
            receipt.to == Some(*forwarder.address()),
            "sent to the forwarder"
        );
        through.push(receipt.transaction_hash);
        chain.mine(2).await?;
    }

    let state = chain_sync(&chain.config(1_000), |_| {}).await?;
    assert_eq!(state.last_batch(), 3);
    assert_eq!(state.root(), b256(&b.tree.root()));
    assert_eq!(state.slots(), b.slots.as_slice());
    let hashes: Vec<B256> = state
        .batches()
        .iter()
        .skip(1)
        .map(|s| s.l2_tx_hash)
        .collect();
    assert_eq!(
        hashes, through,
        "the forwarded transactions are the commits"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_lies_about_its_leaves_fails_naming_the_batch() -> Result<()> {
    let chain = Chain::start().await?;
    let (alice, bob) = (chain.owners[0], chain.owners[1]);
    let usdc = chain.tokens[0];
    let mut b = Builder::default();
    let honest = b.next(&[(alice, usdc), (bob, usdc)], &[(0, 10, 0)], None)?;
    // Batch 2 commits the root of slot 1 holding 20, but publishes a leaf for more.
    let lying = b.next(&[], &[(0, 9, 1), (1, 20, 0)], Some(1))?;
    let honest_again = b.next(&[], &[(0, 8, 2)], None)?;
    chain.commit(&honest).await?;
    chain.commit(&lying).await?;
    chain.commit(&honest_again).await?;
    // The contract took all three: it does not check the tree.
    let contract = Settlement::new(chain.settlement(), chain.devnet.provider().clone());
    assert_eq!(contract.lastBatchNumber().call().await?, 3);

    let mut seen = Vec::new();
    let err = chain_sync(&chain.config(1_000), |p| seen.push(p.batches_done))
        .await
        .expect_err("the lying batch must be caught");
    assert_eq!(err.batch(), Some(2), "{err}");
    match &err {
        SyncError::RootMismatch {
            batch: 2,
            committed,
            rebuilt,
        } => {
            assert_eq!(*committed, lying.header.newRoot);
            assert_ne!(rebuilt, committed);
        }
        other => return Err(eyre!("expected a root mismatch of batch 2, got {other:?}")),
    }
    assert!(err.to_string().starts_with("batch 2:"), "{err}");
    assert_eq!(seen, vec![1], "batch 1 was replayed before the failure");
    Ok(())
}

#[test]
fn replaying_a_truncated_body_fails_naming_the_batch() -> Result<()> {
    let owner = Address::repeat_byte(1);
    let token = Address::repeat_byte(2);
    let mut b = Builder::default();
    let call = b.next(&[(owner, token)], &[(0, 100, 0)], None)?;

    // The same commit, its body one byte short (header and event hash the truncated data).
    let rest = stablelane_contracts::batch_data::decode_batch_data(&call.data)?.rest;
    let short = encode_batch_data(&[], &[], rest.get(..rest.len() - 1).unwrap_or_default())?;
    let mut truncated = call.clone();
    truncated.header.dataHash = keccak256(&short);
    truncated.data = Bytes::from(short);

    let origin = CommitOrigin {
        l2_tx_hash: B256::repeat_byte(9),
        l2_block: 7,
    };
    let mut state = SyncedState::genesis();
    match state.apply_commit(&truncated, &event_of(&truncated), origin) {
        Err(SyncError::Body {
            batch: 1,
            source: BodyError::Truncated,
        }) => {}
        other => return Err(eyre!("expected a truncated body, got {other:?}")),
    }
    assert_eq!(state.last_batch(), 0);
    assert_eq!(state.root(), genesis_root());
    assert!(state.slots().is_empty());

    // The whole body replays.
    let summary = state.apply_commit(&call, &event_of(&call), origin)?;
    assert_eq!(summary.number, 1);
    assert_eq!((summary.new_slots, summary.leaves_changed), (1, 1));
    assert_eq!(state.root(), b256(&b.tree.root()));
    assert_eq!(state.slot_index(owner, token), Some(SlotIndex::new(0)));
    Ok(())
}

/// Replays `call` (with its event edited by `edit_event`) on a copy of `state` and returns
/// the error, checking the state was left as it was.
fn refused(
    state: &SyncedState,
    call: &Settlement::commitBatchCall,
    edit_event: impl FnOnce(&mut Settlement::BatchCommitted),
) -> Result<SyncError> {
    let mut copy = state.clone();
    let mut event = event_of(call);
    edit_event(&mut event);
    let origin = CommitOrigin {
        l2_tx_hash: B256::ZERO,
        l2_block: 0,
    };
    let err = match copy.apply_commit(call, &event, origin) {
        Ok(summary) => return Err(eyre!("batch {} accepted", summary.number)),
        Err(e) => e,
    };
    ensure!(
        copy.root() == state.root(),
        "root changed by a refused batch"
    );
    ensure!(
        copy.slots() == state.slots(),
        "slots changed by a refused batch"
    );
    ensure!(copy.last_batch() == state.last_batch());
    Ok(err)
}

/// Re-encodes `call` with another body (fixing the data hash).
fn with_body(
    call: &Settlement::commitBatchCall,
    body: &BatchBody,
) -> Result<Settlement::commitBatchCall> {
    let data = encode_batch_data(&[], &[], &body.encode()?)?;
    let mut out = call.clone();
    out.header.dataHash = keccak256(&data);
    out.data = data.into();
    Ok(out)
}

#[test]
fn every_inconsistency_is_refused_naming_the_batch() -> Result<()> {
    let (alice, bob, usdc) = (
        Address::repeat_byte(1),
        Address::repeat_byte(2),
        Address::repeat_byte(3),
    );
    let mut b = Builder::default();
    let first = b.next(&[(alice, usdc)], &[(0, 10, 0)], None)?;
    let mut state = SyncedState::genesis();
    state.apply_commit(
        &first,
        &event_of(&first),
        CommitOrigin {
            l2_tx_hash: B256::ZERO,
            l2_block: 1,
        },
    )?;
    let second = b.next(&[(bob, usdc)], &[(0, 5, 1), (1, 5, 0)], None)?;
    let body =
        BatchBody::decode(stablelane_contracts::batch_data::decode_batch_data(&second.data)?.rest)?;

    // Batch number.
    let mut wrong = second.clone();
    wrong.header.batchNumber = 3;
    assert!(matches!(
        refused(&state, &wrong, |e| e.batchNumber = 2)?,
        SyncError::BatchNumber {
            batch: 2,
            header: 3,
            event: 2
        }
    ));
    // Data hash: of the header, and of the event.
    let mut wrong = second.clone();
    wrong.header.dataHash = B256::repeat_byte(1);
    assert!(matches!(
        refused(&state, &wrong, |_| {})?,
        SyncError::DataHash { batch: 2, .. }
    ));
    assert!(matches!(
        refused(&state, &second, |e| e.dataHash = B256::repeat_byte(1))?,
        SyncError::DataHash { batch: 2, .. }
    ));
    // Previous root.
    let mut wrong = second.clone();
    wrong.header.prevRoot = genesis_root();
    assert!(matches!(
        refused(&state, &wrong, |_| {})?,
        SyncError::PrevRoot { batch: 2, .. }
    ));
    // Event fields.
    assert!(matches!(
        refused(&state, &second, |e| e.newRoot = B256::ZERO)?,
        SyncError::EventMismatch {
            batch: 2,
            field: "newRoot"
        }
    ));
    assert!(matches!(
        refused(&state, &second, |e| e.withdrawalCount = 1)?,
        SyncError::EventMismatch {
            batch: 2,
            field: "withdrawalCount"
        }
    ));
    // New slots not contiguous, or repeating a key.
    let gap = BatchBody {
        first_slot: 2,
        ..body.clone()
    };
    assert!(matches!(
        refused(&state, &with_body(&second, &gap)?, |_| {})?,
        SyncError::SlotGap {
            batch: 2,
            first_slot: 2,
            slot_count: 1
        }
    ));
    let mut again = body.clone();
    again.new_slots[0] = NewSlot {
        owner: alice,
        token: usdc,
    };
    assert!(matches!(
        refused(&state, &with_body(&second, &again)?, |_| {})?,
        SyncError::DuplicateSlot {
            batch: 2,
            slot: 1,
            existing: 0,
            ..
        }
    ));
    // A leaf beyond the slots, or not a field element.
    let mut beyond = body.clone();
    beyond.leaves[1].slot = 2;
    assert!(matches!(
        refused(&state, &with_body(&second, &beyond)?, |_| {})?,
        SyncError::LeafSlotOutOfRange {
            batch: 2,
            slot: 2,
            slot_count: 2
        }
    ));
    let mut huge = body.clone();
    huge.leaves[1].leaf = B256::repeat_byte(0xff);
    assert!(matches!(
        refused(&state, &with_body(&second, &huge)?, |_| {})?,
        SyncError::LeafNotInField {
            batch: 2,
            slot: 1,
            ..
        }
    ));
    // A leaf that does not give the committed root; the tree is restored.
    let mut lie = body.clone();
    lie.leaves[0].leaf = B256::repeat_byte(0x01);
    assert!(matches!(
        refused(&state, &with_body(&second, &lie)?, |_| {})?,
        SyncError::RootMismatch { batch: 2, .. }
    ));

    // The honest batch still replays after all of that.
    state.apply_commit(
        &second,
        &event_of(&second),
        CommitOrigin {
            l2_tx_hash: B256::ZERO,
            l2_block: 2,
        },
    )?;
    assert_eq!(state.root(), b256(&b.tree.root()));
    assert_eq!(state.slot_index(bob, usdc), Some(SlotIndex::new(1)));
    Ok(())
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::test]
async fn an_unreachable_rpc_fails_after_the_retries() -> Result<()> {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = ChainSyncConfig {
        l2_rpc_url: format!("http://127.0.0.1:{port}"),
        settlement: Address::repeat_byte(1),
        from_block: 0,
        up_to: None,
        max_block_range: 100,
    };
    // A CLI may spawn the sync on a tokio task.
    let sync = chain_sync(&config, |_| {});
    assert_send(&sync);
    match sync.await {
        Err(SyncError::Rpc(message)) => {
            assert!(message.contains("attempt 4 of 4"), "{message}");
        }
        other => return Err(eyre!("expected an RPC error, got {other:?}")),
    }
    let bad = ChainSyncConfig {
        l2_rpc_url: "not a url".into(),
        ..config
    };
    assert!(matches!(
        chain_sync(&bad, |_| {}).await,
        Err(SyncError::Rpc(_))
    ));
    Ok(())
}
