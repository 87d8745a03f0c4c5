//! The `stablelane` binary end to end: a node started from a TOML config, the wallet
//! commands against it (private key, environment variable and a keystore written by
//! foundry's `cast`), a transfer signed by `cast wallet sign --data` accepted once and
//! answered idempotently, and the offline journal check agreeing with the live root.

use crate::common;

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use common::*;
use eyre::Result;
use serde_json::json;
use stablelane::{
    rpc::{AdminApiClient, SignedReceipt},
    Amount, Nonce, Signed, Transfer,
};
use stablelane_tests::{cast_sign_typed_data, transfer_typed_data};

/// anvil's first dev key: the paying wallet.
const ALICE_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[tokio::test(flavor = "multi_thread")]
async fn wallet_commands_against_a_node_started_from_config() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), &dir.path().join("data"))?;
    let node = NodeProcess::start(&config)?;
    let alice: PrivateKeySigner = ALICE_KEY.parse()?;
    let bob_key = PrivateKeySigner::from_bytes(&alloy::primitives::B256::repeat_byte(0xb0))?;
    let bob = bob_key.address();
    let admin = node.admin()?;
    admin
        .dev_deposit(alice.address(), TOKEN, Amount(10_000_000))
        .await?;
    let rpc = node.rpc_url.as_str();
    let receipts_dir = dir.path().join("receipts");
    let receipts_dir = receipts_dir.to_str().unwrap_or_default();
    let key_env = [
        ("STABLELANE_PRIVATE_KEY", ALICE_KEY),
        ("STABLELANE_RECEIPTS_DIR", receipts_dir),
    ];

    let (ok, out, _) = run_cli(&["wallet", "address", "--private-key", ALICE_KEY], &[])?;
    assert!(ok);
    assert_eq!(out.trim().parse::<Address>()?, alice.address());

    let (ok, out, err) = run_cli(
        &["wallet", "balance", "--rpc", rpc, "--token", "USDC"],
        &key_env,
    )?;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "10 USDC (10000000 base units), next nonce 0");

    // The scripted shape: prints only the transaction hash.
    let (ok, out, err) = run_cli(
        &[
            "wallet",
            "transfer",
            "--rpc",
            rpc,
            "--to",
            &bob.to_string(),
            "--amount",
            "1.25",
            "--token",
            "USDC",
        ],
        &key_env,
    )?;
    assert!(ok, "{err}");
    let hash = out.trim().to_owned();
    assert!(
        hash.len() == 66
            && hash.starts_with("0x")
            && hash[2..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{hash:?}"
    );
    let client = node.client()?;
    let bob_account = test_account(&client, &bob_key).await?;
    assert_eq!(bob_account.balance, Amount(1_250_000));

    let (ok, out, err) = run_cli(&["wallet", "status", "--rpc", rpc, &hash], &key_env)?;
    assert!(ok, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(status["status"], "accepted");
    assert_eq!(status["receipt"]["receipt"]["txHash"], hash.as_str());
    // Without the sender's key: the status, not the sender's receipt.
    let (ok, out, err) = run_cli(&["wallet", "status", "--rpc", rpc, &hash], &[])?;
    assert!(ok, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(status["status"], "accepted");
    assert!(status.get("receipt").is_none(), "{status}");

    // The wallet kept its receipt of the transfer (once, although `status` got it again).
    let (ok, out, err) = run_cli(&["wallet", "receipts", "--rpc", rpc, "--json"], &key_env)?;
    assert!(ok, "{err}");
    let kept: Vec<SignedReceipt> = serde_json::from_str(&out)?;
    assert_eq!(kept.len(), 1, "{out}");
    assert_eq!(format!("{}", kept[0].receipt.tx_hash), hash);
    assert_eq!(kept[0].receipt.kind, stablelane::ReceiptKind::Sender);
    assert_eq!(
        kept[0].receipt.balance,
        test_account(&client, &alice).await?.balance
    );

    // A recipient keeps the receipts the node pushes while it follows.
    let mut follower = std::process::Command::new(binary())
        .args([
            "wallet",
            "receipts",
            "--rpc",
            rpc,
            "--follow",
            "--follow-for",
            "30",
        ])
        .env(
            "STABLELANE_PRIVATE_KEY",
            format!("{:x}", bob_key.to_bytes()),
        )
        .env("STABLELANE_RECEIPTS_DIR", receipts_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        follower
            .stderr
            .take()
            .ok_or_else(|| eyre::eyre!("no stderr"))?,
    ));
    let first = lines.next().transpose()?.unwrap_or_default();
    assert!(first.contains("following the receipts"), "{first}");
    let (ok, out, err) = run_cli(
        &[
            "wallet",
            "transfer",
            "--rpc",
            rpc,
            "--to",
            &bob.to_string(),
            "--amount",
            "0.25 USDC",
        ],
        &key_env,
    )?;
    assert!(ok, "{err}");
    let second = out.trim().to_owned();
    let kept_line = lines.next().transpose()?.unwrap_or_default();
    assert!(
        kept_line.contains("kept the recipient receipt"),
        "{kept_line}"
    );
    // Ctrl-C (SIGINT) ends the follow; the listing follows.
    let pid = follower.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()?;
    let output = follower.wait_with_output()?;
    assert!(output.status.success());
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("recipient") && table.contains(&second),
        "{table}"
    );
    assert!(
        table.contains("1.5"),
        "bob's balance after both payments: {table}"
    );

    // Refusals: non-zero exit with the node's reason and code, nothing sent.
    let (ok, _, err) = run_cli(
        &[
            "wallet",
            "transfer",
            "--rpc",
            rpc,
            "--to",
            &bob.to_string(),
            "--amount",
            "1000 USDC",
        ],
        &key_env,
    )?;
    assert!(!ok);
    assert!(err.contains("code 1016"), "{err}");
    let (ok, _, err) = run_cli(
        &[
            "wallet",
            "transfer",
            "--rpc",
            rpc,
            "--to",
            &bob.to_string(),
            "--amount",
            "1",
            "--token",
            "EURC",
        ],
        &key_env,
    )?;
    assert!(!ok);
    assert!(err.contains("unknown token \"EURC\""), "{err}");
    let (ok, _, err) = run_cli(
        &[
            "wallet",
            "transfer",
            "--rpc",
            rpc,
            "--to",
            &bob.to_string(),
            "--amount",
            "0.0000001",
        ],
        &key_env,
    )?;
    assert!(!ok);
    assert!(err.contains("amount"), "{err}");
    let (ok, _, err) = run_cli(&["wallet", "balance", "--rpc", rpc], &[])?;
    assert!(!ok);
    assert!(err.contains("no key"), "{err}");

    // `sign` prints a signed message and sends nothing.
    let (ok, out, err) = run_cli(
        &[
            "wallet",
            "sign",
            "transfer",
            "--rpc",
            rpc,
            "--to",
            &bob.to_string(),
            "--amount",
            "2 USDC",
        ],
        &key_env,
    )?;
    assert!(ok, "{err}");
    let signed: Signed<Transfer> = serde_json::from_str(&out)?;
    assert_eq!(signed.message.amount, Amount(2_000_000));
    assert_eq!(signed.message.nonce, Nonce(2));
    signed.verify(&stablelane::domain(CHAIN_ID, SETTLEMENT))?;
    assert_eq!(test_account(&client, &alice).await?.nonce, Nonce(2));

    // A keystore written by foundry's cast, unlocked with a password file.
    let cast = stablelane_devnet::tools::cast_binary()?;
    let keystores = dir.path().join("keystores");
    std::fs::create_dir_all(&keystores)?;
    let status = std::process::Command::new(cast)
        .args([
            "wallet",
            "import",
            "alice",
            "--private-key",
            ALICE_KEY,
            "--unsafe-password",
            "correct horse",
            "-k",
        ])
        .arg(&keystores)
        .output()?;
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let password = dir.path().join("password");
    std::fs::write(&password, "correct horse\n")?;
    let keystore = keystores.join("alice");
    let (ok, out, err) = run_cli(
        &[
            "wallet",
            "withdraw",
            "--rpc",
            rpc,
            "--amount",
            "0.5",
            "--keystore",
            keystore.to_str().unwrap_or_default(),
            "--password-file",
            password.to_str().unwrap_or_default(),
        ],
        &[],
    )?;
    assert!(ok, "{err}");
    assert_eq!(out.trim().len(), 66);
    std::fs::write(&password, "wrong\n")?;
    let (ok, _, err) = run_cli(
        &[
            "wallet",
            "address",
            "--keystore",
            keystore.to_str().unwrap_or_default(),
            "--password-file",
            password.to_str().unwrap_or_default(),
        ],
        &[],
    )?;
    assert!(!ok);
    assert!(err.contains("cannot decrypt keystore"), "{err}");

    // A transfer signed by cast (not our EIP-712 code), sent as a wallet would send it.
    let before = test_account(&client, &alice).await?;
    let transfer = Transfer {
        from: alice.address(),
        to: bob,
        token: TOKEN,
        amount: Amount(300_000),
        fee: Amount(FEE),
        nonce: before.nonce,
        valid_until: now_s() + 600,
    };
    let data = transfer_typed_data(&transfer, CHAIN_ID, SETTLEMENT);
    let signature = cast_sign_typed_data(&data, ALICE_KEY)?;
    let body = json!({
        "jsonrpc": "2.0", "id": 7, "method": "lane_sendTransfer",
        "params": [{ "domain": data["domain"], "message": data["message"], "signature": signature }],
    });
    let http = reqwest::Client::new();
    let send = || async {
        let value: serde_json::Value = http
            .post(&node.rpc_url)
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        let receipt: SignedReceipt = serde_json::from_value(value["result"].clone())
            .map_err(|e| eyre::eyre!("{e}: {value}"))?;
        Ok::<_, eyre::Report>(receipt)
    };
    let first = send().await?;
    let again = send().await?;
    assert_eq!(first, again, "a repeat returns the original receipt");
    let after = test_account(&client, &alice).await?;
    assert_eq!(
        after.balance,
        Amount(before.balance.base_units() - 300_000 - FEE)
    );
    assert_eq!(after.nonce, Nonce(before.nonce.get() + 1));

    // The live root equals the one recomputed offline from the journal.
    let status = admin.status().await?;
    node.stop()?;
    let (records, root) = journal_verify(&config)?;
    assert_eq!(records, status.last_sequence);
    assert_eq!(root, status.state_root.to_string());
    Ok(())
}
