//! `stablelane keys`: the INSECURE dev setup written by the CLI is the one the committed
//! verifier was generated from (same key hash, same Solidity byte for byte), files are never
//! overwritten silently, and `keys hash` reads the hash back from either key file.

mod common;

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
