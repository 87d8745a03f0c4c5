//! The node's TOML configuration: documented defaults, environment overrides, validation.
//!
//! Every scalar setting can be overridden by an environment variable named after its path:
//! `STABLELANE_` + the table and key joined by `_`, upper-cased — `rpc.listen` is
//! `STABLELANE_RPC_LISTEN`, `data_dir` is `STABLELANE_DATA_DIR`. The token list is set in the
//! file only. Secrets never sit in the file: the operator (committer) key comes from
//! `STABLELANE_OPERATOR_KEY` or `operator_key_file`, the receipt key from
//! `STABLELANE_RECEIPT_KEY` or `receipt_key_file`, the salt secret from
//! `STABLELANE_SALT_SECRET` or `salt_secret_file`, the admin token from
//! `STABLELANE_ADMIN_TOKEN` or `rpc.admin_token_file`.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use alloy::primitives::{keccak256, Address, B256};
use eyre::{bail, eyre, Context as _, Result};
use serde::{Deserialize, Serialize};
use stablelane::Amount;

/// Environment variable holding the operator's private key (hex).
pub const OPERATOR_KEY_ENV: &str = "STABLELANE_OPERATOR_KEY";
/// Environment variable holding the receipt-signing key (hex).
pub const RECEIPT_KEY_ENV: &str = "STABLELANE_RECEIPT_KEY";
/// Environment variable holding the salt secret (32 bytes, hex).
pub const SALT_SECRET_ENV: &str = "STABLELANE_SALT_SECRET";
/// Environment variable holding the admin bearer token.
pub const ADMIN_TOKEN_ENV: &str = "STABLELANE_ADMIN_TOKEN";
/// Prefix of the override variables.
const ENV_PREFIX: &str = "STABLELANE_";

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Directory holding `journal/` (the record of truth) and `state.sled/` (the store).
    pub data_dir: PathBuf,
    /// Chain id of the L2 the settlement contract lives on.
    pub chain_id: u64,
    /// The settlement contract (EIP-712 verifying contract).
    pub settlement: Address,
    /// File with the operator's (committer's) private key (hex); `STABLELANE_OPERATOR_KEY`
    /// wins if set.
    pub operator_key_file: Option<PathBuf>,
    /// File with the receipt-signing private key (hex); `STABLELANE_RECEIPT_KEY` wins if
    /// set. Required off anvil's chain id 31337.
    pub receipt_key_file: Option<PathBuf>,
    /// File with the salt secret (32 bytes, hex); `STABLELANE_SALT_SECRET` wins if set.
    /// Required off anvil's chain id 31337.
    pub salt_secret_file: Option<PathBuf>,
    /// Receives transaction fees (default: the operator's address).
    pub fee_recipient: Option<Address>,
    /// Most accounts (slots) the ledger holds.
    pub slots_max: u32,
    /// Log filter (tracing `EnvFilter` syntax); `RUST_LOG` wins if set.
    pub log: String,
    /// The JSON-RPC servers.
    pub rpc: RpcSection,
    /// The sequencer.
    pub sequencer: SequencerSection,
    /// The journal.
    pub journal: JournalSection,
    /// The L2: where the chain watcher reads deposits and forced withdrawals.
    pub chain: ChainSection,
    /// Batches: when they seal and how the settler commits them.
    pub batch: BatchSection,
    /// Development switches; all off by default.
    pub dev: DevSection,
    /// `[prover]`
    pub prover: ProverSection,
    /// Supported tokens.
    pub tokens: Vec<TokenSection>,
}

/// `[rpc]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcSection {
    /// Wallet API (HTTP and WebSocket).
    pub listen: SocketAddr,
    /// Admin API and `/metrics`.
    pub admin_listen: SocketAddr,
    /// File holding the admin bearer token; `STABLELANE_ADMIN_TOKEN` wins if set.
    pub admin_token_file: Option<PathBuf>,
    /// Largest request accepted, bytes.
    pub request_body_max_bytes: u32,
    /// Largest response produced, bytes.
    pub response_body_max_bytes: u32,
    /// Most simultaneous connections.
    pub connections_max: u32,
    /// Most subscriptions per WebSocket connection.
    pub subscriptions_per_connection_max: u32,
    /// Most calls per batch request.
    pub batch_requests_max: u32,
}

/// `[sequencer]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequencerSection {
    /// Most transactions waiting for the writer; more are refused as busy (code 1030).
    pub intake_queue_max: usize,
    /// Most transactions per group commit (one fsync).
    pub group_max: usize,
}

/// `[journal]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSection {
    /// Size at which a segment file is closed and a new one started, bytes.
    pub segment_size_max_bytes: u64,
    /// Records between restart snapshots in `<data_dir>/snapshots/` (taken at the next seal);
    /// a restart replays only the journal after the newest. 0: none (restarts replay the
    /// whole journal).
    pub snapshot_every_records: u64,
    /// Snapshots kept (1 to 16); an older one serves when the newest does not read back.
    pub snapshots_kept: usize,
}

/// `[chain]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSection {
    /// The L2's JSON-RPC URL; empty: no chain watcher (deposits are not credited).
    pub l2_rpc_url: String,
    /// Which L2 block counts as final: deposits and forced requests are acted on, and
    /// commits called finalized, only at or below it. `finalized` (default) or `safe`: the
    /// L2's block tag of that name; `confirmations`: `confirmations` blocks deep.
    pub finality: stablelane_chain::FinalityMode,
    /// Depth a block must reach in the `confirmations` mode, and the fallback when the L2
    /// does not answer the block tag.
    pub confirmations: u64,
    /// Pause between polls when caught up, milliseconds.
    pub poll_interval_ms: u64,
    /// Most blocks per `eth_getLogs` request.
    pub max_block_range: u64,
    /// Where scanning starts the first time (the settlement contract's deployment block).
    pub start_block: u64,
    /// A second L2 RPC (another provider or your own node) that must have the same block at
    /// the finality head before anything is credited; empty: no cross-check.
    pub cross_check_rpc_url: String,
}

/// `[batch]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSection {
    /// Seal once this many leaves changed (bounds calldata: about 50 bytes each).
    pub max_changed_slots: usize,
    /// Seal once this many withdrawals wait (the contract takes at most 1,024).
    pub max_withdrawals: usize,
    /// Seal before the batch data exceeds this many bytes (4,096 to 120,000; L2 nodes
    /// refuse transactions above 128 KiB).
    pub max_data_bytes: usize,
    /// Seal once the batch's first record is this old, milliseconds.
    pub max_age_ms: u64,
    /// Commit sealed batches on the L2 (needs `chain.l2_rpc_url`).
    pub commit: bool,
    /// Replace a commit not included after this many seconds.
    pub resend_after_s: u64,
    /// How much a replacement raises the fees, percent (at least 10).
    pub fee_bump_percent: u64,
    /// Highest fee cap the settler pays, gwei per gas.
    pub max_fee_per_gas_gwei: u64,
}

/// `[prover]`: balance attestations (`lane_proveBalance`). Off unless keys are given.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProverSection {
    /// Groth16 proving key file (from `stablelane keys setup` or a ceremony). The node refuses
    /// to start if its verifying key is not the one the deployed verifier was generated from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proving_key: Option<PathBuf>,
    /// Use the INSECURE deterministic dev setup's keys (anyone can forge proofs with them):
    /// devnets only. Refused on any chain id but anvil's (31337) unless
    /// `allow_dev_keys_off_devnet`.
    pub insecure_dev_keys: bool,
    /// Accept the INSECURE dev setup's keys on a chain whose id is not anvil's (31337), both
    /// for this prover and in the deployed verifier (which the node checks at start-up
    /// whenever `chain.l2_rpc_url` is set). For test chains with another id only: with these
    /// keys anyone can forge exits and attestations.
    #[serde(default)]
    pub allow_dev_keys_off_devnet: bool,
    /// Proving threads (each proof uses them all; keep cores for the sequencer).
    pub threads: usize,
    /// Requests waiting beyond those being proven; more are refused as busy.
    pub queue_max: usize,
    /// Longest a request waits for its proof, seconds.
    pub timeout_s: u64,
    /// Scheduling niceness of the proving threads, 0..=19 (19: proofs get only the CPU
    /// that transfers leave; Linux only).
    pub nice: i32,
    /// Sealed batches whose states stay provable (about 1.6 MB each for a full batch of
    /// 1,024 changed slots). Only finalized ones are proven, so this must cover the batches
    /// sealed during one finalization delay plus the L2's finality lag.
    pub history_batches: usize,
}

impl ProverSection {
    /// Whether proving is configured.
    pub fn enabled(&self) -> bool {
        self.proving_key.is_some() || self.insecure_dev_keys
    }
}

/// `[dev]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevSection {
    /// Serve `admin_devDeposit` (credits without the chain). Never in production.
    pub deposits: bool,
}

/// `[[tokens]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSection {
    /// ERC-20 address.
    pub address: Address,
    /// Ticker.
    pub symbol: String,
    /// Decimals.
    pub decimals: u8,
    /// Minimum fee per transaction, base units (a decimal string).
    pub minimum_fee: Amount,
}

impl Default for NodeConfig {
    fn default() -> Self {
        let journal = stablelane_storage::JournalConfig::default();
        let limits = stablelane_rpc::Limits::default();
        Self {
            data_dir: PathBuf::from("data"),
            chain_id: 31337,
            settlement: Address::ZERO,
            operator_key_file: None,
            receipt_key_file: None,
            salt_secret_file: None,
            fee_recipient: None,
            slots_max: 10_000_000,
            log: "info".into(),
            rpc: RpcSection {
                listen: SocketAddr::from(([127, 0, 0, 1], 8645)),
                admin_listen: SocketAddr::from(([127, 0, 0, 1], 8646)),
                admin_token_file: None,
                request_body_max_bytes: limits.request_body_max_bytes,
                response_body_max_bytes: limits.response_body_max_bytes,
                connections_max: limits.connections_max,
                subscriptions_per_connection_max: limits.subscriptions_per_connection_max,
                batch_requests_max: limits.batch_requests_max,
            },
            sequencer: SequencerSection {
                intake_queue_max: 65_536,
                group_max: 4_096,
            },
            journal: JournalSection {
                segment_size_max_bytes: journal.segment_size_max_bytes,
                snapshot_every_records: stablelane_sequencer::SnapshotConfig::DEFAULT_EVERY_RECORDS,
                snapshots_kept: stablelane_sequencer::SnapshotConfig::DEFAULT_KEEP,
            },
            chain: ChainSection {
                l2_rpc_url: String::new(),
                finality: stablelane_chain::FinalityMode::Finalized,
                confirmations: 12,
                poll_interval_ms: 1_000,
                max_block_range: 2_000,
                start_block: 0,
                cross_check_rpc_url: String::new(),
            },
            batch: BatchSection {
                max_changed_slots: 2_048,
                max_withdrawals: 1_024,
                max_data_bytes: 100_000,
                max_age_ms: 60_000,
                commit: true,
                resend_after_s: 60,
                fee_bump_percent: 25,
                max_fee_per_gas_gwei: 500,
            },
            dev: DevSection::default(),
            prover: ProverSection {
                proving_key: None,
                insecure_dev_keys: false,
                allow_dev_keys_off_devnet: false,
                threads: 1,
                queue_max: 8,
                timeout_s: 60,
                nice: 19,
                history_batches: 128,
            },
            tokens: Vec::new(),
        }
    }
}

impl NodeConfig {
    /// Reads `path` (defaults for what it leaves out), applies environment overrides from
    /// `env`, and validates.
    pub fn load(path: Option<&Path>, env: &[(String, String)]) -> Result<Self> {
        let mut value = toml::Value::try_from(Self::default())?;
        if let Some(path) = path {
            let text = std::fs::read_to_string(path)
                .wrap_err_with(|| format!("reading config {}", path.display()))?;
            let file: toml::Value = toml::from_str(&text)
                .wrap_err_with(|| format!("parsing config {}", path.display()))?;
            merge(&mut value, file);
        }
        apply_env(&mut value, &[], env)?;
        let config: Self = value
            .try_into()
            .wrap_err("invalid configuration (unknown key or wrong type)")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        if self.settlement == Address::ZERO {
            bail!("`settlement` (the settlement contract's address) must be set");
        }
        if self.tokens.is_empty() {
            bail!("at least one [[tokens]] entry is required");
        }
        for (i, t) in self.tokens.iter().enumerate() {
            if self.tokens[..i]
                .iter()
                .any(|o| o.address == t.address || o.symbol.eq_ignore_ascii_case(&t.symbol))
            {
                bail!("token {} ({}) listed twice", t.symbol, t.address);
            }
            if t.decimals > 38 {
                bail!("token {}: decimals {} > 38", t.symbol, t.decimals);
            }
        }
        if self.sequencer.intake_queue_max == 0 || self.sequencer.group_max == 0 {
            bail!("sequencer.intake_queue_max and sequencer.group_max must be positive");
        }
        if self.chain.confirmations == 0 || self.chain.max_block_range == 0 {
            bail!("chain.confirmations and chain.max_block_range must be positive");
        }
        if self.batch.max_changed_slots == 0
            || self.batch.max_withdrawals == 0
            || self.batch.max_withdrawals > 1_024
            || self.batch.max_age_ms == 0
            || !(4_096..=120_000).contains(&self.batch.max_data_bytes)
        {
            bail!("batch.max_changed_slots and batch.max_age_ms must be positive, batch.max_withdrawals within 1..=1024, batch.max_data_bytes within 4096..=120000");
        }
        if self.dev.deposits && !self.chain.l2_rpc_url.is_empty() {
            // A development deposit takes the next deposit queue index without an on-chain
            // deposit behind it: the watcher's real deposits would collide with it and the
            // contract refuses every batch that counts it (DepositPrefixOutOfRange).
            bail!("dev.deposits cannot be combined with chain.l2_rpc_url: development deposits are not in the contract's deposit queue, so no batch holding one could ever be committed; fund accounts with real deposits instead");
        }
        if !(1..=16).contains(&self.journal.snapshots_kept) {
            bail!("journal.snapshots_kept must be within 1..=16");
        }
        let p = &self.prover;
        if p.proving_key.is_some() && p.insecure_dev_keys {
            bail!("prover.proving_key and prover.insecure_dev_keys exclude each other");
        }
        if p.insecure_dev_keys {
            stablelane_circuits::keys::check_dev_keys_allowed(
                self.chain_id,
                &stablelane_circuits::keys::INSECURE_DEV_VERIFYING_KEY_HASH,
                p.allow_dev_keys_off_devnet,
            )
            .map_err(|e| {
                eyre!("prover.insecure_dev_keys: {e} (prover.allow_dev_keys_off_devnet)")
            })?;
        }
        if !(1..=64).contains(&p.threads)
            || !(1..=1_024).contains(&p.queue_max)
            || !(1..=3_600).contains(&p.timeout_s)
            || !(1..=4_096).contains(&p.history_batches)
            || !(0..=19).contains(&p.nice)
        {
            bail!("prover.threads must be within 1..=64, prover.queue_max 1..=1024, prover.timeout_s 1..=3600, prover.history_batches 1..=4096, prover.nice 0..=19");
        }
        if self.rpc.listen == self.rpc.admin_listen && self.rpc.listen.port() != 0 {
            bail!("rpc.listen and rpc.admin_listen must differ");
        }
        Ok(())
    }

    /// The journal directory.
    pub fn journal_dir(&self) -> PathBuf {
        self.data_dir.join("journal")
    }

    /// The sled directory.
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("state.sled")
    }

    /// The restart snapshots' directory.
    pub fn snapshot_dir(&self) -> PathBuf {
        self.data_dir.join("snapshots")
    }

    /// The ledger settings with the slots' salt secret.
    pub fn ledger(&self, salt_secret: B256, operator: Address) -> stablelane_ledger::LedgerConfig {
        stablelane_ledger::LedgerConfig {
            tokens: self
                .tokens
                .iter()
                .map(|t| (t.address, t.minimum_fee))
                .collect(),
            fee_recipient: self.fee_recipient.unwrap_or(operator),
            operator_secret: salt_secret,
            slots_max: self.slots_max,
        }
    }
}

/// The devnet salt secret when none is configured (chain 31337 only): derived from the
/// committer key, as before the secrets were separate.
pub fn devnet_salt_secret(committer_key: &[u8]) -> B256 {
    let mut preimage = b"stablelane.salt-secret.v1".to_vec();
    preimage.extend_from_slice(committer_key);
    keccak256(&preimage)
}

/// Reads a secret from the environment variable `env_name`, else from `file`.
pub fn secret(env: &[(String, String)], env_name: &str, file: Option<&Path>) -> Result<String> {
    if let Some((_, value)) = env.iter().find(|(k, _)| k == env_name) {
        return Ok(value.trim().to_owned());
    }
    let file = file.ok_or_else(|| eyre!("set {env_name} or the matching *_file setting"))?;
    let text = std::fs::read_to_string(file)
        .wrap_err_with(|| format!("reading secret file {}", file.display()))?;
    Ok(text.trim().to_owned())
}

/// Overlays `file` on `base`, table by table.
fn merge(base: &mut toml::Value, file: toml::Value) {
    match (base, file) {
        (toml::Value::Table(base), toml::Value::Table(file)) => {
            for (key, value) in file {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

/// Applies `STABLELANE_<PATH>` overrides to every scalar leaf of `value`, and to the
/// optional settings that have no default (which the serialised defaults omit).
fn apply_env(value: &mut toml::Value, path: &[String], env: &[(String, String)]) -> Result<()> {
    const OPTIONAL: [&[&str]; 5] = [
        &["operator_key_file"],
        &["receipt_key_file"],
        &["salt_secret_file"],
        &["fee_recipient"],
        &["rpc", "admin_token_file"],
    ];
    if path.is_empty() {
        for optional in OPTIONAL {
            let name = env_name(optional.iter().map(|s| s.to_string()));
            if let Some((_, text)) = env.iter().find(|(k, _)| *k == name) {
                let mut cursor = &mut *value;
                for (i, key) in optional.iter().enumerate() {
                    let table = cursor
                        .as_table_mut()
                        .ok_or_else(|| eyre!("config is not a table"))?;
                    if i + 1 == optional.len() {
                        table.insert((*key).into(), toml::Value::String(text.clone()));
                        break;
                    }
                    cursor = table
                        .entry(*key)
                        .or_insert_with(|| toml::Value::Table(Default::default()));
                }
            }
        }
    }
    match value {
        toml::Value::Table(table) => {
            for (key, child) in table.iter_mut() {
                let mut child_path = path.to_vec();
                child_path.push(key.clone());
                apply_env(child, &child_path, env)?;
            }
        }
        toml::Value::Array(_) => {}
        leaf => {
            let name = env_name(path.iter().cloned());
            if let Some((_, text)) = env.iter().find(|(k, _)| *k == name) {
                *leaf = match leaf {
                    toml::Value::Integer(_) => toml::Value::Integer(
                        text.parse()
                            .wrap_err_with(|| format!("{name}: not an integer: {text:?}"))?,
                    ),
                    toml::Value::Boolean(_) => toml::Value::Boolean(
                        text.parse()
                            .wrap_err_with(|| format!("{name}: not true/false: {text:?}"))?,
                    ),
                    _ => toml::Value::String(text.clone()),
                };
            }
        }
    }
    Ok(())
}

fn env_name(path: impl Iterator<Item = String>) -> String {
    let joined: Vec<String> = path.map(|p| p.to_uppercase()).collect();
    format!("{ENV_PREFIX}{}", joined.join("_"))
}

/// The documented example configuration (`stablelane config example`).
pub const EXAMPLE: &str = include_str!("../node.example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_example_parses_and_env_overrides_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let config = NodeConfig::load(Some(&path), &[]).unwrap();
        assert_eq!(config.tokens.len(), 1);
        assert_eq!(config.rpc.listen.port(), 8645);
        assert_eq!(
            config.chain.finality,
            stablelane_chain::FinalityMode::Finalized
        );
        assert_eq!(
            NodeConfig::default().chain.finality,
            stablelane_chain::FinalityMode::Finalized
        );

        let config = NodeConfig::load(
            Some(&path),
            &env(&[
                ("STABLELANE_RPC_LISTEN", "127.0.0.1:9000"),
                ("STABLELANE_SEQUENCER_GROUP_MAX", "17"),
                ("STABLELANE_DEV_DEPOSITS", "true"),
                ("STABLELANE_DATA_DIR", "/tmp/x"),
                ("STABLELANE_CHAIN_FINALITY", "safe"),
                (
                    "STABLELANE_FEE_RECIPIENT",
                    "0x00000000000000000000000000000000000000ee",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(config.rpc.listen.port(), 9000);
        assert_eq!(config.sequencer.group_max, 17);
        assert!(config.dev.deposits);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.chain.finality, stablelane_chain::FinalityMode::Safe);
        assert_eq!(config.fee_recipient, Some(Address::with_last_byte(0xee)));
    }

    #[test]
    fn bad_configs_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, EXAMPLE.replace("group_max", "group_maximum")).unwrap();
        let err = format!("{:#}", NodeConfig::load(Some(&path), &[]).unwrap_err());
        assert!(err.contains("group_maximum"), "{err}");

        std::fs::write(&path, EXAMPLE).unwrap();
        let err = format!(
            "{:#}",
            NodeConfig::load(
                Some(&path),
                &env(&[
                    ("STABLELANE_DEV_DEPOSITS", "true"),
                    ("STABLELANE_CHAIN_L2_RPC_URL", "http://127.0.0.1:8545"),
                ]),
            )
            .unwrap_err()
        );
        assert!(err.contains("dev.deposits cannot be combined"), "{err}");

        std::fs::write(&path, EXAMPLE).unwrap();
        let err = NodeConfig::load(
            Some(&path),
            &env(&[("STABLELANE_SEQUENCER_GROUP_MAX", "lots")]),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("STABLELANE_SEQUENCER_GROUP_MAX"));

        std::fs::write(&path, EXAMPLE).unwrap();
        let err = NodeConfig::load(
            Some(&path),
            &env(&[("STABLELANE_CHAIN_FINALITY", "latest")]),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("latest"), "{err:#}");

        let err = NodeConfig::load(None, &[]).unwrap_err();
        assert!(format!("{err:#}").contains("settlement"));
    }
}
