//! Balance attestations end to end with the real binaries: a wallet asks the node
//! (`lane_proveBalance`, and `stablelane wallet attest`) for a proof that it holds at least X
//! in a committed root; the attestation verifies in Rust (`verify_attestation`), on the CLI
//! (`stablelane verify-attestation`, which also asks the contract) and on-chain
//! (`Settlement.verifyAttestation`). A threshold above the balance yields a clear error and no
//! proof, and the attestation replayed with another context, owner, token, threshold or root
//! fails everywhere. An attestation proven in a tree of the prover's own (the proving key is
//! public) passes the proof-only check but is refused by every check that compares its root
//! with the committed one, and the CLI without a chain says the root was not checked and exits
//! non-zero. A relying party's minimum batch refuses attestations against older batches.

use crate::common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::{
    primitives::{Address, B256, U256},
    providers::ext::AnvilApi,
    signers::local::PrivateKeySigner,
};
use eyre::{ensure, eyre, Result};
use jsonrpsee::http_client::{HeaderMap, HttpClient, HttpClientBuilder};
use stablelane::{
    attestation::{attestation_context, AttestationError, AttestationVerifier},
    rpc::{AdminApiClient, BatchStatus, LaneApiClient},
    Amount, Attestation, BatchNumber, ErrorCode, ProveBalance,
};
use stablelane_contracts::{Settlement, TestStablecoin};
use stablelane_devnet::{node, wallet_provider, DeployConfig, Devnet, DevnetOptions};

/// Seals the open batch and waits until it is committed; returns its number.
async fn seal_and_commit(admin: &HttpClient, client: &HttpClient) -> Result<u64> {
    let batch = admin
        .seal_batch()
        .await?
        .batch
        .ok_or_else(|| eyre!("nothing sealed"))?;
    let started = Instant::now();
    while client.get_batch(batch).await?.status == BatchStatus::Sealed {
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "batch {batch} not committed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(batch)
}

/// [`seal_and_commit`], then lets the finalization delay pass on the L2 until the node
/// calls the batch finalized: only finalized batches are provable.
async fn seal_and_finalize(
    admin: &HttpClient,
    client: &HttpClient,
    devnet: &Devnet,
) -> Result<u64> {
    let batch = seal_and_commit(admin, client).await?;
    let delay = DeployConfig::default().finalization_delay_s;
    devnet.provider().anvil_increase_time(delay + 1).await?;
    let started = Instant::now();
    while client.get_batch(batch).await?.status != BatchStatus::Finalized {
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "batch {batch} not finalized"
        );
        devnet.provider().anvil_mine(Some(1), None).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(batch)
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn attestations_from_the_node_verify_in_rust_on_the_cli_and_on_chain() -> Result<()> {
    let devnet = Devnet::start(DevnetOptions {
        port: 0,
        deploy: DeployConfig::default(),
        ..DevnetOptions::default()
    })
    .await?;
    let d = devnet.description().clone();
    let usdc = d.token("USDC").ok_or_else(|| eyre!("no USDC"))?.address;
    let run_dir = tempfile::tempdir()?;
    let config = node::write_config(&d, run_dir.path(), 0, 0)?;
    let process = node::start(
        &common::binary(),
        &config,
        &run_dir.path().join("node.log"),
        &d,
    )?;
    let alice_account = &d.dev_accounts[0];
    let alice: PrivateKeySigner = alice_account.private_key.parse()?;
    let bob: PrivateKeySigner = d.dev_accounts[1].private_key.parse()?;
    let key_env = [("STABLELANE_PRIVATE_KEY", alice_account.private_key.as_str())];
    let rpc = process.rpc_url.clone();
    let client = HttpClientBuilder::default().build(&rpc)?;
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {}", process.admin_token).parse()?,
    );
    let admin = HttpClientBuilder::default()
        .set_headers(headers)
        .build(&process.admin_url)?;

    // Alice deposits 50 USDC and pays bob 5; the batch holding it is committed.
    let provider = wallet_provider(&d.l2_rpc_url, std::slice::from_ref(&alice))?;
    let amount = U256::from(50_000_000u64);
    TestStablecoin::new(usdc, provider.clone())
        .approve(d.settlement, amount)
        .send()
        .await?
        .get_receipt()
        .await?;
    let receipt = Settlement::new(d.settlement, provider.clone())
        .deposit(usdc, amount, alice.address())
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "deposit reverted");
    let started = Instant::now();
    while common::account(
        &client,
        &alice,
        usdc,
        &stablelane::domain(d.chain_id, d.settlement),
    )
    .await?
    .balance
    .base_units()
        == 0
    {
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "deposit not credited"
        );
        devnet.provider().anvil_mine(Some(1), None).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bob_address = bob.address().to_string();
    // Alice pays bob `amount` USDC with the wallet.
    let pay_bob = |amount: &str| -> Result<()> {
        let usdc = usdc.to_string();
        let (ok, _, err) = common::run_cli(
            &[
                "wallet",
                "transfer",
                "--rpc",
                &rpc,
                "--token",
                &usdc,
                "--to",
                &bob_address,
                "--amount",
                amount,
            ],
            &key_env,
        )?;
        ensure!(ok, "{err}");
        Ok(())
    };
    pay_bob("5")?;
    let batch = seal_and_finalize(&admin, &client, &devnet).await?;
    let balance = common::account(
        &client,
        &alice,
        usdc,
        &stablelane::domain(d.chain_id, d.settlement),
    )
    .await?
    .balance
    .base_units();
    assert!(balance > 40_000_000 && balance < 45_000_000, "{balance}");

    // Before asking: nothing provable for an unknown batch, requests must be the owner's.
    let domain = stablelane::domain(d.chain_id, d.settlement);
    let challenge = B256::repeat_byte(0x42);
    let request = |key: &PrivateKeySigner, owner: Address, threshold: u128, batch: u64| {
        stablelane::sign(
            key,
            ProveBalance {
                owner,
                token: usdc,
                threshold: Amount(threshold),
                challenge,
                batch,
                expiry: now_s() + 300,
            },
            &domain,
        )
    };
    let code = |e: jsonrpsee::core::client::Error| match e {
        jsonrpsee::core::client::Error::Call(call) => call.code(),
        other => panic!("not a call error: {other}"),
    };
    let refused = client
        .prove_balance(request(&bob, alice.address(), 1, 0)?)
        .await
        .expect_err("bob cannot ask for alice");
    assert_eq!(code(refused), ErrorCode::SignerMismatch.code());
    let refused = client
        .prove_balance(request(&alice, alice.address(), 1, batch + 5)?)
        .await
        .expect_err("uncommitted batch");
    assert_eq!(code(refused), ErrorCode::BatchNotProvable.code());

    // A threshold above the balance: a clear error, no proof.
    let refused = client
        .prove_balance(request(&alice, alice.address(), balance + 1, 0)?)
        .await
        .expect_err("above the balance");
    assert_eq!(code(refused), ErrorCode::BalanceBelowThreshold.code());

    // Alice asks for "at least 20 USDC" (the latest finalized batch by default).
    let attestation = client
        .prove_balance(request(&alice, alice.address(), 20_000_000, 0)?)
        .await?;
    assert_eq!(attestation.batch, batch);
    assert_eq!(
        attestation.root,
        client.get_batch(batch).await?.new_root,
        "proven under the committed root"
    );
    assert_eq!(attestation.context, attestation_context(&challenge));

    // Rust.
    let (_, vk) = stablelane_circuits::keys::insecure_dev_setup()?;
    let verifier = AttestationVerifier::new(&vk)?;
    let committed = (BatchNumber(batch), attestation.root);
    verifier.verify(&attestation, &committed, BatchNumber(batch))?;
    assert_eq!(
        verifier.verify(&attestation, &committed, BatchNumber(batch + 1)),
        Err(AttestationError::BatchTooOld {
            batch,
            min_batch: batch + 1
        })
    );
    attestation.check_statement(alice.address(), usdc, Amount(20_000_000), &challenge)?;

    // On-chain.
    let settlement = Settlement::new(d.settlement, devnet.provider().clone());
    assert_eq!(
        settlement.attestationContext(challenge).call().await?,
        attestation.context
    );
    let on_chain = |a: Attestation| {
        let settlement = settlement.clone();
        async move {
            settlement
                .verifyAttestation(
                    a.batch,
                    0,
                    a.owner,
                    a.token,
                    a.threshold.0,
                    a.context,
                    a.proof,
                )
                .call()
                .await
        }
    };
    assert!(on_chain(attestation.clone()).await?, "valid on-chain");

    // CLI.
    let cli_verify = |a: &Attestation, name: &str| -> Result<(bool, String, String)> {
        let path = run_dir.path().join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(a)?)?;
        common::run_cli(
            &[
                "verify-attestation",
                "--attestation",
                &path.to_string_lossy(),
                "--insecure-dev-keys",
                "--l2-rpc",
                &d.l2_rpc_url,
                "--settlement",
                &d.settlement.to_string(),
            ],
            &[],
        )
    };
    let (ok, out, err) = cli_verify(&attestation, "valid")?;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("attestation valid"), "{out}");
    // A minimum batch the relying party demands, on-chain and on the CLI.
    let too_old = settlement
        .verifyAttestation(
            attestation.batch,
            batch + 1,
            attestation.owner,
            attestation.token,
            attestation.threshold.0,
            attestation.context,
            attestation.proof,
        )
        .call()
        .await;
    assert!(
        too_old.is_err(),
        "the contract accepted a batch below the minimum"
    );

    // A forged attestation: alice "holds" a trillion USDC in a tree the forger built. The
    // proving key is public, so the proof is valid for its own root...
    let forged = {
        use stablelane_circuits::{
            field::fr_to_be_bytes, leaf_hash, prover, AttestationWitness, ChaCha20Rng, Fr,
            SeedableRng, SlotIndex, StateTree,
        };
        let (pk, _) = stablelane_circuits::keys::insecure_dev_setup()?;
        let amount = 1_000_000_000_000_000_000u128;
        let salt = Fr::from(7u64);
        let slot = SlotIndex::new(0);
        let mut tree = StateTree::new();
        tree.set(
            slot,
            leaf_hash(alice.address().0 .0, usdc.0 .0, amount, 0, salt),
        )?;
        let context = stablelane_circuits::field::fr_from_be_bytes(
            &attestation_context(&challenge).to_be_bytes::<32>(),
        )?;
        let witness = AttestationWitness {
            root: tree.root(),
            owner: alice.address().0 .0,
            token: usdc.0 .0,
            threshold: amount,
            context,
            balance: amount,
            nonce: 0,
            salt,
            slot,
            path: tree.path(slot),
        };
        let proof = prover::prove(&pk, &witness, &mut ChaCha20Rng::from_seed([9; 32]))?;
        Attestation {
            root: B256::from(fr_to_be_bytes(&tree.root())),
            threshold: Amount(amount),
            proof: prover::proof_to_evm(&proof).map(U256::from_be_bytes),
            ..attestation.clone()
        }
    };
    verifier.verify_proof_only(&forged)?;
    // ...and refused by every check that knows the committed root.
    assert!(matches!(
        verifier.verify(&forged, &committed, BatchNumber(0)),
        Err(AttestationError::RootMismatch { .. })
    ));
    assert!(
        !on_chain(forged.clone()).await?,
        "the contract accepted the forged root"
    );
    let (ok, out, err) = cli_verify(&forged, "forged")?;
    assert!(!ok, "the CLI accepted the forged root: {out}");
    assert!(err.contains("finalized root"), "{err}");
    // The CLI without a chain: the proof holds, the root is not checked, exit status 3.
    let forged_path = run_dir.path().join("forged-offline.json");
    std::fs::write(&forged_path, serde_json::to_vec_pretty(&forged)?)?;
    let offline = |extra: &[&str]| {
        let mut args = vec![
            "verify-attestation",
            "--attestation",
            forged_path.to_str().unwrap_or_default(),
            "--insecure-dev-keys",
        ];
        args.extend_from_slice(extra);
        common::run_cli_status(&args, &[])
    };
    let (status, out, err) = offline(&[])?;
    assert_eq!(status, Some(3), "{out}\n{err}");
    assert!(!out.contains("attestation valid"), "{out}");
    assert!(err.contains("NOT VALID: the root"), "{err}");
    // With the committed root given offline, the forgery is refused; the real one passes.
    let real_root = attestation.root.to_string();
    let (status, out, err) = offline(&["--root", &real_root])?;
    assert_eq!(status, Some(1), "{out}\n{err}");
    assert!(err.contains("is not batch"), "{err}");

    // The same through the wallet CLI: ask, then check with expectations.
    let cli_file = run_dir.path().join("cli-attestation.json");
    let challenge_hex = challenge.to_string();
    let (ok, _, err) = common::run_cli(
        &[
            "wallet",
            "attest",
            "--rpc",
            &rpc,
            "--token",
            &usdc.to_string(),
            "--threshold",
            "20",
            "--challenge",
            &challenge_hex,
            "--out",
            &cli_file.to_string_lossy(),
        ],
        &key_env,
    )?;
    assert!(ok, "{err}");
    let (ok, out, err) = common::run_cli(
        &[
            "verify-attestation",
            "--attestation",
            &cli_file.to_string_lossy(),
            "--insecure-dev-keys",
            "--owner",
            &alice.address().to_string(),
            "--token",
            &usdc.to_string(),
            "--min-threshold",
            "20000000",
            "--challenge",
            &challenge_hex,
            "--root",
            &real_root,
            "--min-batch",
            &batch.to_string(),
        ],
        &[],
    )?;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("attestation valid"), "{out}");
    // Above the balance through the CLI: refused with the reason.
    let (ok, _, err) = common::run_cli(
        &[
            "wallet",
            "attest",
            "--rpc",
            &rpc,
            "--token",
            &usdc.to_string(),
            "--threshold",
            "1000",
        ],
        &key_env,
    )?;
    assert!(!ok);
    assert!(err.contains("below the threshold"), "{err}");

    // A second committed batch (alice pays bob again): its root differs.
    pay_bob("1")?;
    let later = seal_and_finalize(&admin, &client, &devnet).await?;
    let later_root = client.get_batch(later).await?.new_root;
    assert_ne!(later_root, attestation.root);

    // Replays fail everywhere.
    let other_challenge = B256::repeat_byte(0x43);
    let replays: Vec<(&str, Attestation)> = vec![
        ("context", {
            let mut a = attestation.clone();
            a.challenge = other_challenge;
            a.context = attestation_context(&other_challenge);
            a
        }),
        (
            "owner",
            Attestation {
                owner: bob.address(),
                ..attestation.clone()
            },
        ),
        (
            "token",
            Attestation {
                token: d.dev_accounts[2].address,
                ..attestation.clone()
            },
        ),
        (
            "threshold",
            Attestation {
                threshold: Amount(20_000_001),
                ..attestation.clone()
            },
        ),
        (
            "root",
            Attestation {
                batch: later,
                root: later_root,
                ..attestation.clone()
            },
        ),
    ];
    let roots: std::collections::BTreeMap<BatchNumber, B256> = [
        (BatchNumber(batch), attestation.root),
        (BatchNumber(later), later_root),
    ]
    .into();
    // Once the later batch exists, a relying party demanding it refuses the older attestation.
    let path = run_dir.path().join("older.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&attestation)?)?;
    let later_text = later.to_string();
    let (ok, out, err) = common::run_cli(
        &[
            "verify-attestation",
            "--attestation",
            &path.to_string_lossy(),
            "--insecure-dev-keys",
            "--l2-rpc",
            &d.l2_rpc_url,
            "--settlement",
            &d.settlement.to_string(),
            "--min-batch",
            &later_text,
        ],
        &[],
    )?;
    assert!(!ok, "the CLI accepted a batch below --min-batch: {out}");
    assert!(err.contains("older than the required"), "{err}");
    for (what, replay) in replays {
        assert!(
            verifier.verify(&replay, &roots, BatchNumber(0)).is_err(),
            "Rust accepted another {what}"
        );
        assert!(
            !on_chain(replay.clone()).await?,
            "the contract accepted another {what}"
        );
        let (ok, out, _) = cli_verify(&replay, what)?;
        assert!(!ok, "the CLI accepted another {what}: {out}");
    }
    // Proofs for the newer batch are made on request, for the older one still too.
    let older = client
        .prove_balance(request(&alice, alice.address(), 1, batch)?)
        .await?;
    assert_eq!((older.batch, older.root), (batch, attestation.root));
    verifier.verify(&older, &roots, BatchNumber(batch))?;
    let newer = client
        .prove_balance(request(&alice, alice.address(), 1, 0)?)
        .await?;
    assert_eq!((newer.batch, newer.root), (later, later_root));
    verifier.verify(&newer, &roots, BatchNumber(later))?;

    // A third batch, committed but still in its challenge window: the node does not prove
    // under it (by default it stays at the latest finalized batch), and an attestation naming
    // it is refused by the CLI and the contract even with a valid proof and root.
    pay_bob("1")?;
    let open = seal_and_commit(&admin, &client).await?;
    let refused = client
        .prove_balance(request(&alice, alice.address(), 1, open)?)
        .await
        .expect_err("a batch in its window");
    assert_eq!(code(refused), ErrorCode::BatchNotProvable.code());
    let by_default = client
        .prove_balance(request(&alice, alice.address(), 1, 0)?)
        .await?;
    assert_eq!(by_default.batch, later);
    let in_window = Attestation {
        batch: open,
        root: client.get_batch(open).await?.new_root,
        ..by_default.clone()
    };
    let (ok, out, err) = cli_verify(&in_window, "in-window")?;
    assert!(!ok, "the CLI accepted a batch in its window: {out}");
    assert!(err.contains("not finalized"), "{err}");
    assert!(
        on_chain(in_window).await.is_err(),
        "verifyAttestation accepted a batch in its window"
    );

    // A node whose proving key is not the deployed verifier's refuses to start.
    let keys_dir = run_dir.path().join("other-keys");
    let (ok, _, err) = common::run_cli(
        &[
            "keys",
            "setup",
            "--random",
            "--out-dir",
            &keys_dir.to_string_lossy(),
        ],
        &[],
    )?;
    assert!(ok, "{err}");
    let other_dir = tempfile::tempdir()?;
    let other_config = node::write_config(&d, other_dir.path(), 0, 0)?;
    let text = std::fs::read_to_string(&other_config)?.replace(
        "insecure_dev_keys = true",
        &format!(
            "proving_key = \"{}\"",
            keys_dir.join("proving.key").display()
        ),
    );
    std::fs::write(&other_config, text)?;
    let log = other_dir.path().join("node.log");
    assert!(node::start(&common::binary(), &other_config, &log, &d).is_err());
    let log_text = std::fs::read_to_string(&log)?;
    assert!(
        log_text.contains("does not match the deployed verifier"),
        "{log_text}"
    );
    Ok(())
}
