//! `stablelane keys`: the INSECURE dev setup written by the CLI is the one the committed
//! verifier was generated from (same key hash, same Solidity byte for byte), files are never
//! overwritten silently, and `keys hash` reads the hash back from either key file.

use crate::common;

#[test]
fn dev_setup_files_match_the_committed_verifier_and_are_not_overwritten() -> eyre::Result<()> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("keys");
    let out_arg = out.to_string_lossy().to_string();
    let (ok, stdout, stderr) = common::run_cli(
        &["keys", "setup", "--insecure-dev", "--out-dir", &out_arg],
        &[],
    )?;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("INSECURE"), "{stderr}");

    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../contracts/src/Groth16Verifier.sol"),
    )?;
    assert_eq!(
        std::fs::read_to_string(out.join("Groth16Verifier.sol"))?,
        committed
    );
    let hash_line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("verifying key hash "))
        .ok_or_else(|| eyre::eyre!("no hash in {stdout}"))?
        .to_string();
    assert!(
        committed.contains(&format!("VERIFYING_KEY_HASH = {hash_line};")),
        "the committed verifier publishes {hash_line}"
    );
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("keys.json"))?)?;
    assert_eq!(record["setup"], "insecure-dev");
    assert_eq!(record["verifyingKeyHash"], hash_line.as_str());

    // keys hash, from either file.
    for (flag, file) in [
        ("--verifying-key", "verifying.key"),
        ("--proving-key", "proving.key"),
    ] {
        let path = out.join(file).to_string_lossy().to_string();
        let (ok, stdout, stderr) = common::run_cli(&["keys", "hash", flag, &path], &[])?;
        assert!(ok, "{stderr}");
        assert_eq!(stdout.trim(), hash_line);
    }

    // A second setup into the same directory is refused without --force.
    let (ok, _, stderr) = common::run_cli(
        &["keys", "setup", "--insecure-dev", "--out-dir", &out_arg],
        &[],
    )?;
    assert!(!ok);
    assert!(stderr.contains("--force"), "{stderr}");
    // A random setup is another key.
    let (ok, stdout, stderr) = common::run_cli(
        &[
            "keys",
            "setup",
            "--random",
            "--out-dir",
            &out_arg,
            "--force",
        ],
        &[],
    )?;
    assert!(ok, "{stderr}");
    assert!(!stdout.contains(&hash_line), "{stdout}");
    Ok(())
}

/// The INSECURE dev keys off a devnet (a chain whose id is not anvil's 31337): the deploy tool
/// refuses to deploy their verifier, the node refuses to prove with them or to run against a
/// deployment whose verifier uses them, and the wallet's verify-attestation refuses such a
/// deployment; each goes on only when explicitly told to.
#[tokio::test(flavor = "multi_thread")]
async fn dev_keys_are_refused_off_anvil_unless_explicitly_allowed() -> eyre::Result<()> {
    use stablelane_devnet::{node, DeployConfig, Devnet, DevnetOptions};
    const CHAIN: u64 = 10;
    let refused = Devnet::start(DevnetOptions {
        chain_id: CHAIN,
        ..DevnetOptions::default()
    })
    .await
    .expect_err("the deploy tool deployed the dev verifier on chain 10");
    assert!(refused.to_string().contains("INSECURE"), "{refused}");

    let devnet = Devnet::start(DevnetOptions {
        chain_id: CHAIN,
        deploy: DeployConfig {
            allow_dev_keys_off_devnet: true,
            // The devnet's short periods need the contract's waiver off chain 31337 too.
            allow_short_periods: true,
            ..DeployConfig::default()
        },
        ..DevnetOptions::default()
    })
    .await?;
    let d = devnet.description().clone();
    assert_eq!(d.chain_id, CHAIN);
    let dir = tempfile::tempdir()?;
    let config = node::write_config(&d, dir.path(), 0, 0)?;
    // Off chain 31337 the receipt key and the salt secret are secrets of their own.
    let receipt_key = dir.path().join("receipt.key");
    // The contract's receipt signer (the node refuses to settle under another one).
    std::fs::write(&receipt_key, &d.receipt_signer.private_key)?;
    let salt_secret = dir.path().join("salt.secret");
    std::fs::write(
        &salt_secret,
        format!("{:x}", alloy::primitives::B256::repeat_byte(0x53)),
    )?;
    let text = format!(
        "receipt_key_file = {:?}\nsalt_secret_file = {:?}\n{}",
        receipt_key.to_string_lossy(),
        salt_secret.to_string_lossy(),
        std::fs::read_to_string(&config)?
    );
    let log = dir.path().join("node.log");
    let start = |text: &str| -> eyre::Result<Option<node::NodeProcess>> {
        std::fs::write(&config, text)?;
        Ok(node::start(&common::binary(), &config, &log, &d).ok())
    };
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    // The prover with the dev keys, on chain 10.
    assert!(
        start(&text)?.is_none(),
        "the node proved with the dev keys on chain 10"
    );
    assert!(
        log_text().contains("prover.insecure_dev_keys"),
        "{}",
        log_text()
    );
    // No prover: the deployed verifier still uses the dev keys.
    let no_prover = text.replace("insecure_dev_keys = true", "insecure_dev_keys = false");
    assert_ne!(no_prover, text);
    assert!(
        start(&no_prover)?.is_none(),
        "the node ran against the dev verifier on chain 10"
    );
    assert!(log_text().contains("deployed verifier"), "{}", log_text());
    assert!(log_text().contains("INSECURE"), "{}", log_text());
    // Told explicitly, it runs.
    let allowed = text.replace(
        "insecure_dev_keys = true",
        "insecure_dev_keys = true\nallow_dev_keys_off_devnet = true",
    );
    let mut running = start(&allowed)?.ok_or_else(|| eyre::eyre!("{}", log_text()))?;
    running.stop();

    // verify-attestation against that deployment.
    let attestation = stablelane::Attestation {
        batch: 0,
        root: stablelane_devnet::deploy::genesis_root(),
        owner: d.dev_accounts[0].address,
        token: d.tokens[0].address,
        threshold: stablelane::Amount(1),
        challenge: alloy::primitives::B256::ZERO,
        context: stablelane::attestation_context(&alloy::primitives::B256::ZERO),
        proof: [alloy::primitives::U256::from(1); 8],
        verifying_key_hash: stablelane_circuits::keys::INSECURE_DEV_VERIFYING_KEY_HASH.into(),
    };
    let path = dir.path().join("attestation.json");
    std::fs::write(&path, serde_json::to_vec(&attestation)?)?;
    let path = path.to_string_lossy().to_string();
    let settlement = d.settlement.to_string();
    let args = [
        "verify-attestation",
        "--attestation",
        &path,
        "--insecure-dev-keys",
        "--l2-rpc",
        &d.l2_rpc_url,
        "--settlement",
        &settlement,
    ];
    let (ok, out, err) = common::run_cli(&args, &[])?;
    assert!(!ok, "{out}");
    assert!(err.contains("INSECURE"), "{err}");
    // Allowed: it gets as far as the proof, which is garbage.
    let mut allowed = args.to_vec();
    allowed.push("--allow-dev-keys-off-devnet");
    let (ok, out, err) = common::run_cli(&allowed, &[])?;
    assert!(!ok, "{out}");
    assert!(out.contains("has key"), "{out}\n{err}");
    assert!(
        !err.contains("INSECURE dev setup's (published seed"),
        "{err}"
    );

    // The wallet's exit on that deployment: refused for the verifier, before anything else.
    let token = d.tokens[0].address.to_string();
    let block = d.deploy_block.to_string();
    let exit = [
        "wallet",
        "exit",
        "--l2-rpc",
        &d.l2_rpc_url,
        "--settlement",
        &settlement,
        "--token",
        &token,
        "--from-block",
        &block,
        "--insecure-dev-keys",
    ];
    let key_env = [(
        "STABLELANE_PRIVATE_KEY",
        d.dev_accounts[0].private_key.as_str(),
    )];
    let (ok, out, err) = common::run_cli(&exit, &key_env)?;
    assert!(!ok, "{out}");
    assert!(err.contains("INSECURE"), "{err}");
    assert!(err.contains("--allow-dev-keys-off-devnet"), "{err}");
    // Allowed: it gets as far as the contract's mode (no exodus here).
    let mut allowed = exit.to_vec();
    allowed.push("--allow-dev-keys-off-devnet");
    let (ok, out, err) = common::run_cli(&allowed, &key_env)?;
    assert!(!ok, "{out}");
    assert!(err.contains("not in exodus mode"), "{err}");
    assert!(!err.contains("INSECURE dev setup's"), "{err}");
    Ok(())
}
