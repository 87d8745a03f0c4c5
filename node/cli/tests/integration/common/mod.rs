//! Harness of the `stablelane` binary's tests: a node process on loopback ports chosen by
//! the OS, with a throwaway data directory, dev deposits on, and typed clients.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use alloy::primitives::Address;
use eyre::{bail, Result};
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};

/// `key`'s account on the node behind `client`, in deployment `domain` (the node answers
/// only the authenticated owner).
pub async fn account(
    client: &HttpClient,
    key: &alloy::signers::local::PrivateKeySigner,
    token: Address,
    domain: &alloy::sol_types::Eip712Domain,
) -> Result<stablelane::rpc::Account> {
    use stablelane::rpc::LaneApiClient;
    let auth = stablelane::rpc::authenticate(
        key,
        stablelane::rpc::GET_ACCOUNT_PURPOSE,
        stablelane::rpc::AUTHENTICATION_VALIDITY_DEFAULT_S,
        domain,
    )?;
    Ok(client.get_account(key.address(), token, auth).await?)
}

/// `key`'s account of [`TOKEN`] on a node of the test deployment ([`CHAIN_ID`], [`SETTLEMENT`]).
pub async fn test_account(
    client: &HttpClient,
    key: &alloy::signers::local::PrivateKeySigner,
) -> Result<stablelane::rpc::Account> {
    account(
        client,
        key,
        TOKEN,
        &stablelane::domain(CHAIN_ID, SETTLEMENT),
    )
    .await
}

/// anvil's first dev key (public knowledge): the node operator in these tests.
pub const OPERATOR_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/// The devnet's receipt key for [`OPERATOR_KEY`] (hex), as the devnet's contract expects it.
pub fn receipt_key() -> String {
    let operator: alloy::signers::local::PrivateKeySigner =
        OPERATOR_KEY.parse().expect("OPERATOR_KEY is a key");
    format!(
        "0x{}",
        alloy::hex::encode(stablelane_devnet::devnet_receipt_key(&operator).to_bytes())
    )
}
/// The admin token of these tests.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// The token the test config lists.
pub const TOKEN: Address = Address::repeat_byte(0xaa);
/// Its minimum fee, base units.
pub const FEE: u128 = 10;
/// Settlement contract of the test domain.
pub const SETTLEMENT: Address = Address::repeat_byte(0x11);
/// Chain id of the test domain.
pub const CHAIN_ID: u64 = 31337;

/// Path of the binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stablelane"))
}

/// Writes a node config for `data_dir` into `dir/node.toml`.
pub fn write_config(dir: &Path, data_dir: &Path) -> Result<PathBuf> {
    let path = dir.join("node.toml");
    let text = format!(
        r#"data_dir = "{data}"
chain_id = {CHAIN_ID}
settlement = "{SETTLEMENT}"
log = "info"

[rpc]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[sequencer]
group_max = 256

[dev]
deposits = true

[[tokens]]
address = "{TOKEN}"
symbol = "USDC"
decimals = 6
minimum_fee = "{FEE}"
"#,
        data = data_dir.display()
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

/// A running `stablelane node`.
pub struct NodeProcess {
    pub child: Child,
    pub rpc_url: String,
    pub admin_url: String,
}

impl NodeProcess {
    /// Starts the node and waits (up to 60 s) for its ready line.
    pub fn start(config: &Path) -> Result<Self> {
        let mut child = Command::new(binary())
            .args(["node", "--config"])
            .arg(config)
            .env("STABLELANE_OPERATOR_KEY", OPERATOR_KEY)
            .env("STABLELANE_RECEIPT_KEY", receipt_key())
            .env("STABLELANE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let (rpc_url, admin_url) =
            match stablelane_devnet::node::wait_until_ready(&mut child, Duration::from_secs(60)) {
                Ok(urls) => urls,
                Err(e) => {
                    let _ = child.kill();
                    let status = child.wait()?;
                    bail!("node did not become ready ({status}): {e}");
                }
            };
        Ok(Self {
            child,
            rpc_url,
            admin_url,
        })
    }

    /// A wallet API client.
    pub fn client(&self) -> Result<HttpClient> {
        Ok(HttpClientBuilder::default().build(&self.rpc_url)?)
    }

    /// An admin API client with the bearer token.
    pub fn admin(&self) -> Result<HttpClient> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {ADMIN_TOKEN}"))?,
        );
        Ok(HttpClientBuilder::default()
            .set_headers(headers)
            .build(&self.admin_url)?)
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status()?;
        eyre::ensure!(status.success(), "kill -TERM failed");
        let status = self.child.wait()?;
        eyre::ensure!(status.success(), "node exited with {status}");
        Ok(())
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `stablelane` with `args` and environment `env`; returns (success, stdout, stderr).
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> Result<(bool, String, String)> {
    let (status, out, err) = run_cli_status(args, env)?;
    Ok((status == Some(0), out, err))
}

/// [`run_cli`] with the exit status (`None`: killed by a signal).
pub fn run_cli_status(
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(Option<i32>, String, String)> {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env_remove("STABLELANE_PRIVATE_KEY")
        .env_remove("STABLELANE_RPC_URL")
        .env_remove("STABLELANE_KEYSTORE")
        .env_remove("STABLELANE_RECEIPTS_DIR")
        // Receipts the wallet keeps go to a scratch directory, not the user's home.
        .env(
            "XDG_DATA_HOME",
            std::env::temp_dir().join("stablelane-cli-tests"),
        );
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output()?;
    Ok((
        output.status.code(),
        String::from_utf8(output.stdout)?,
        String::from_utf8(output.stderr)?,
    ))
}

/// `stablelane journal verify` on a stopped node's config: (records, root).
pub fn journal_verify(config: &Path) -> Result<(u64, String)> {
    let (ok, out, err) = run_cli(
        &[
            "journal",
            "verify",
            "--config",
            config.to_str().unwrap_or_default(),
        ],
        &[
            ("STABLELANE_OPERATOR_KEY", OPERATOR_KEY),
            ("STABLELANE_RECEIPT_KEY", &receipt_key()),
        ],
    )?;
    eyre::ensure!(ok, "journal verify failed: {err}");
    let value: serde_json::Value = serde_json::from_str(&out)?;
    Ok((
        value["records"].as_u64().unwrap_or_default(),
        value["stateRoot"].as_str().unwrap_or_default().to_owned(),
    ))
}
