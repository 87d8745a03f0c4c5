//! `stablelane node`: the sequencer and the RPC servers from a [`NodeConfig`], until SIGINT
//! or SIGTERM; and `stablelane journal verify`, the offline check of a data directory.

use alloy::signers::local::PrivateKeySigner;
use eyre::{Context as _, Result};
use stablelane::{domain, SequenceNumber};
use std::sync::Arc;

use stablelane_rpc::{
    prover::{Prover, ProverLimits},
    AdminToken, Limits, RpcConfig, RpcServer, TokenInfo,
};
use stablelane_sequencer::{
    BatchLimits, JournalRecord, Sequencer, SequencerConfig, SnapshotConfig, State,
};
use stablelane_storage::{Journal, JournalConfig};
use tracing::info;

use crate::config::{
    devnet_salt_secret, secret, NodeConfig, ADMIN_TOKEN_ENV, OPERATOR_KEY_ENV, RECEIPT_KEY_ENV,
    SALT_SECRET_ENV,
};

/// Shortest admin token accepted.
const ADMIN_TOKEN_MIN_LEN: usize = 16;

/// The node's three secrets (DESIGN section 9: separate, each rotatable).
pub struct NodeKeys {
    /// Commits batches: the contract's `operator`.
    pub committer: PrivateKeySigner,
    /// Signs the receipt groups: the contract's `receiptSigner`.
    pub receipt: PrivateKeySigner,
    /// Derives every slot's salt.
    pub salt_secret: alloy::primitives::B256,
}

fn is_set(env: &[(String, String)], name: &str, file: Option<&std::path::Path>) -> bool {
    file.is_some() || env.iter().any(|(k, _)| k == name)
}

/// Loads the committer key, the receipt key and the salt secret. Off anvil's chain id
/// (31337) all three are required and the two keys must differ; on a devnet a missing
/// receipt key or salt secret falls back to the committer key (with a warning).
pub fn node_keys(config: &NodeConfig, env: &[(String, String)]) -> Result<NodeKeys> {
    let key =
        |name: &str, what: &str, file: Option<&std::path::Path>| -> Result<PrivateKeySigner> {
            let text = secret(env, name, file).wrap_err_with(|| format!("the {what}"))?;
            text.parse()
                .map_err(|_| eyre::eyre!("the {what} is not a 32-byte hex private key"))
        };
    let committer = key(
        OPERATOR_KEY_ENV,
        "operator key",
        config.operator_key_file.as_deref(),
    )?;
    let devnet = config.chain_id == 31337;
    let receipt = if is_set(env, RECEIPT_KEY_ENV, config.receipt_key_file.as_deref()) {
        key(
            RECEIPT_KEY_ENV,
            "receipt key",
            config.receipt_key_file.as_deref(),
        )?
    } else if devnet {
        tracing::warn!(target: "node", "no receipt key ({RECEIPT_KEY_ENV} or receipt_key_file): the operator key signs receipts too (devnet only)");
        committer.clone()
    } else {
        eyre::bail!("set {RECEIPT_KEY_ENV} or receipt_key_file: off a devnet the receipt key is a secret of its own, separate from the operator key (docs/keys.md)");
    };
    if !devnet && receipt.address() == committer.address() {
        eyre::bail!("the receipt key is the operator key: off a devnet they must differ, so that a stolen one cannot stand in for the other (docs/keys.md)");
    }
    let salt_secret = if is_set(env, SALT_SECRET_ENV, config.salt_secret_file.as_deref()) {
        let text = secret(env, SALT_SECRET_ENV, config.salt_secret_file.as_deref())
            .wrap_err("the salt secret")?;
        text.parse::<alloy::primitives::B256>()
            .map_err(|_| eyre::eyre!("the salt secret is not 32 bytes of hex"))?
    } else if devnet {
        devnet_salt_secret(&committer.to_bytes().0)
    } else {
        eyre::bail!("set {SALT_SECRET_ENV} or salt_secret_file: off a devnet the salt secret is a secret of its own (docs/keys.md)");
    };
    Ok(NodeKeys {
        committer,
        receipt,
        salt_secret,
    })
}

fn journal_config(config: &NodeConfig) -> JournalConfig {
    let mut journal = JournalConfig::default();
    journal.segment_size_max_bytes = config.journal.segment_size_max_bytes;
    journal
}

fn sequencer_config(config: &NodeConfig, keys: &NodeKeys) -> SequencerConfig {
    SequencerConfig {
        journal_dir: config.journal_dir(),
        store_dir: config.store_dir(),
        journal: journal_config(config),
        intake_queue_max: config.sequencer.intake_queue_max,
        group_max: config.sequencer.group_max,
        ledger: config.ledger(keys.salt_secret, keys.committer.address()),
        domain: domain(config.chain_id, config.settlement),
        batch: BatchLimits {
            max_changed_slots: config.batch.max_changed_slots,
            max_withdrawals: config.batch.max_withdrawals,
            max_data_bytes: config.batch.max_data_bytes,
            ..BatchLimits::default()
        },
        sealed_history: if config.prover.enabled() {
            config.prover.history_batches
        } else {
            0
        },
        snapshot: SnapshotConfig {
            dir: config.snapshot_dir(),
            every_records: config.journal.snapshot_every_records,
            keep: config.journal.snapshots_kept,
        },
    }
}

/// The prover pool of `[prover]`, if configured: loads the proving key and, when the node
/// talks to the L2, refuses a key whose verifying key is not the deployed verifier's.
async fn start_prover(config: &NodeConfig) -> Result<Option<Arc<Prover>>> {
    use stablelane_circuits::keys;
    let p = &config.prover;
    let key = match (&p.proving_key, p.insecure_dev_keys) {
        (Some(path), _) => {
            let path = path.clone();
            info!(target: "node", key = %path.display(), "loading the proving key");
            tokio::task::spawn_blocking(move || {
                keys::read_proving_key(&path)
                    .map_err(|e| eyre::eyre!("reading the proving key {}: {e}", path.display()))
            })
            .await??
        }
        (None, true) => {
            tracing::warn!(target: "node", "prover.insecure_dev_keys is on: proofs use the INSECURE dev setup, anyone can forge them (devnets only)");
            tokio::task::spawn_blocking(|| {
                // Without arkworks' per-gadget spans (see the prover pool).
                tracing::subscriber::with_default(
                    tracing::subscriber::NoSubscriber::default(),
                    keys::insecure_dev_setup,
                )
            })
            .await?
            .map_err(|e| eyre::eyre!("dev setup: {e}"))?
            .0
        }
        (None, false) => return Ok(None),
    };
    let prover = Prover::new(
        key,
        ProverLimits {
            threads: p.threads,
            queue_max: p.queue_max,
            timeout: std::time::Duration::from_secs(p.timeout_s),
            nice: p.nice,
        },
    )
    .map_err(|e| eyre::eyre!("{e}"))?;
    if config.chain.l2_rpc_url.is_empty() {
        tracing::warn!(target: "node", key_hash = %prover.key_hash(), "chain.l2_rpc_url is empty: the proving key is not checked against the deployed verifier");
    } else {
        check_deployed_key(config, prover.key_hash()).await?;
    }
    info!(target: "node", key_hash = %prover.key_hash(), threads = p.threads, "prover started");
    Ok(Some(Arc::new(prover)))
}

/// Fails unless the settlement contract's verifier publishes `key_hash`.
async fn check_deployed_key(config: &NodeConfig, key_hash: alloy::primitives::B256) -> Result<()> {
    let (verifier, deployed) = deployed_key_hash(config).await?;
    if deployed != key_hash {
        eyre::bail!(
            "the proving key does not match the deployed verifier {verifier}: its verifying key hash is {key_hash}, the contract's {deployed}"
        );
    }
    info!(target: "node", %verifier, "proving key matches the deployed verifier");
    Ok(())
}

/// Fails if the deployed verifier uses the INSECURE dev setup's keys on a chain other than
/// anvil's, unless `prover.allow_dev_keys_off_devnet`.
async fn check_deployed_verifier(config: &NodeConfig) -> Result<()> {
    let (verifier, deployed) = deployed_key_hash(config).await?;
    stablelane_circuits::keys::check_dev_keys_allowed(
        config.chain_id,
        &deployed.0,
        config.prover.allow_dev_keys_off_devnet,
    )
    .map_err(|e| {
        eyre::eyre!(
            "the settlement contract's verifier {verifier}: {e} (prover.allow_dev_keys_off_devnet)"
        )
    })?;
    if deployed.0 == stablelane_circuits::keys::INSECURE_DEV_VERIFYING_KEY_HASH {
        tracing::warn!(target: "node", %verifier, chain_id = config.chain_id, "the deployed verifier uses the INSECURE dev setup keys: anyone can forge exits and attestations");
    }
    Ok(())
}

/// The settlement contract's verifier and the verifying key hash it publishes.
async fn deployed_key_hash(
    config: &NodeConfig,
) -> Result<(alloy::primitives::Address, alloy::primitives::B256)> {
    use alloy::providers::ProviderBuilder;
    use stablelane_contracts::{Groth16Verifier, Settlement};
    let url = config
        .chain
        .l2_rpc_url
        .parse()
        .map_err(|e| eyre::eyre!("bad chain.l2_rpc_url: {e}"))?;
    let provider = ProviderBuilder::new().connect_http(url);
    let verifier = Settlement::new(config.settlement, &provider)
        .verifier()
        .call()
        .await
        .wrap_err("reading the settlement contract's verifier")?;
    let deployed = Groth16Verifier::new(verifier, &provider)
        .VERIFYING_KEY_HASH()
        .call()
        .await
        .wrap_err_with(|| {
            format!("reading VERIFYING_KEY_HASH of the deployed verifier {verifier} (not a generated Groth16 verifier?)")
        })?;
    Ok((verifier, deployed))
}

/// Runs the node until SIGINT or SIGTERM, then shuts down cleanly.
pub async fn run(config: NodeConfig, env: &[(String, String)]) -> Result<()> {
    let keys = node_keys(&config, env)?;
    let operator = keys.committer.clone();
    let admin_token = secret(env, ADMIN_TOKEN_ENV, config.rpc.admin_token_file.as_deref())
        .wrap_err("the admin token")?;
    if admin_token.len() < ADMIN_TOKEN_MIN_LEN {
        eyre::bail!("the admin token must have at least {ADMIN_TOKEN_MIN_LEN} characters");
    }
    std::fs::create_dir_all(&config.data_dir)
        .wrap_err_with(|| format!("creating {}", config.data_dir.display()))?;
    info!(
        target: "node",
        data_dir = %config.data_dir.display(),
        chain_id = config.chain_id,
        settlement = %config.settlement,
        operator = %operator.address(),
        receipt_signer = %keys.receipt.address(),
        "starting"
    );
    if config.dev.deposits {
        tracing::warn!(target: "node", "dev.deposits is on: admin_devDeposit credits balances without the chain");
    }
    if !config.chain.l2_rpc_url.is_empty() {
        check_deployed_verifier(&config)
            .await
            .wrap_err("checking the deployed verifier")?;
    }
    let prover = start_prover(&config)
        .await
        .wrap_err("starting the prover")?;
    let sequencer = Sequencer::open(sequencer_config(&config, &keys), keys.receipt.clone())
        .wrap_err("opening the ledger")?;
    let limits = Limits {
        request_body_max_bytes: config.rpc.request_body_max_bytes,
        response_body_max_bytes: config.rpc.response_body_max_bytes,
        connections_max: config.rpc.connections_max,
        subscriptions_per_connection_max: config.rpc.subscriptions_per_connection_max,
        batch_requests_max: config.rpc.batch_requests_max,
    };
    let server = RpcServer::start(
        RpcConfig {
            listen: config.rpc.listen,
            admin_listen: config.rpc.admin_listen,
            admin_token: AdminToken::new(admin_token),
            operator: operator.address(),
            tokens: config
                .tokens
                .iter()
                .map(|t| TokenInfo {
                    address: t.address,
                    symbol: t.symbol.clone(),
                    decimals: t.decimals,
                })
                .collect(),
            limits,
            admin_limits: Limits {
                connections_max: 16,
                ..Limits::default()
            },
            dev_deposits: config.dev.deposits,
            prover,
        },
        sequencer.clone(),
    )
    .await
    .wrap_err("starting the RPC servers")?;
    let (stop_watcher, watcher_stopped) = tokio::sync::watch::channel(false);
    let watcher = if config.chain.l2_rpc_url.is_empty() {
        tracing::warn!(target: "node", "chain.l2_rpc_url is empty: no chain watcher, deposits are not credited");
        None
    } else {
        let watcher = stablelane_chain::Watcher::new(
            stablelane_chain::WatcherConfig {
                l2_rpc_url: config.chain.l2_rpc_url.clone(),
                settlement: config.settlement,
                finality: config.chain.finality,
                confirmations: config.chain.confirmations,
                poll_interval: std::time::Duration::from_millis(config.chain.poll_interval_ms),
                max_block_range: config.chain.max_block_range,
                start_block: config.chain.start_block,
                cross_check_rpc_url: (!config.chain.cross_check_rpc_url.is_empty())
                    .then(|| config.chain.cross_check_rpc_url.clone()),
            },
            sequencer.clone(),
        )?;
        info!(target: "node", l2 = %config.chain.l2_rpc_url, finality = %config.chain.finality, confirmations = config.chain.confirmations, "chain watcher started");
        Some(tokio::spawn(watcher.run(watcher_stopped.clone())))
    };
    let settler = if config.chain.l2_rpc_url.is_empty() || !config.batch.commit {
        tracing::warn!(target: "node", "no settler: sealed batches are not committed (set chain.l2_rpc_url and batch.commit)");
        None
    } else {
        let settler = stablelane_chain::Settler::new(
            stablelane_chain::SettlerConfig {
                l2_rpc_url: config.chain.l2_rpc_url.clone(),
                settlement: config.settlement,
                chain_id: config.chain_id,
                finality: config.chain.finality,
                confirmations: config.chain.confirmations,
                poll_interval: std::time::Duration::from_millis(config.chain.poll_interval_ms),
                max_batch_age: std::time::Duration::from_millis(config.batch.max_age_ms),
                resend_after: std::time::Duration::from_secs(config.batch.resend_after_s),
                fee_bump_percent: config.batch.fee_bump_percent,
                max_fee_per_gas: u128::from(config.batch.max_fee_per_gas_gwei) * 1_000_000_000,
                start_block: config.chain.start_block,
            },
            operator.clone(),
            sequencer.clone(),
        )?;
        info!(target: "node", max_age_ms = config.batch.max_age_ms, "settler started");
        Some(tokio::spawn(settler.run(watcher_stopped)))
    };
    // One line a script can wait for.
    println!(
        "stablelane node ready: rpc http://{} admin http://{}",
        server.local_addr(),
        server.admin_addr()
    );
    shutdown_signal().await?;
    info!(target: "node", "shutting down");
    let _ = stop_watcher.send(true);
    for task in [watcher, settler].into_iter().flatten() {
        let _ = task.await;
    }
    server.stop().await;
    sequencer.shutdown().await;
    info!(target: "node", "stopped");
    Ok(())
}

async fn shutdown_signal() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// What `journal verify` found.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    /// Records replayed.
    pub records: u64,
    /// Slots in the ledger.
    pub slots: u32,
    /// Root recomputed from scratch from the replayed slots.
    pub state_root: alloy::primitives::B256,
}

/// Replays the journal of `config`'s data directory without the store and without
/// starting anything: checks every record applies, supply is conserved, and recomputes the
/// root from scratch. The node must not be running.
pub fn verify(config: &NodeConfig, env: &[(String, String)]) -> Result<Verified> {
    let keys = node_keys(config, env)?;
    let seq_config = sequencer_config(config, &keys);
    let (journal, report) = Journal::open(&seq_config.journal_dir, seq_config.journal.clone())
        .wrap_err("opening the journal")?;
    if report.torn_tail.is_some() {
        eprintln!("note: the journal had a torn tail (an unacknowledged write), truncated");
    }
    let mut state = State::new(seq_config.ledger.clone(), seq_config.domain.clone());
    let mut records = 0u64;
    for record in journal.replay_from(stablelane_storage::SequenceNumber(1))? {
        let record = record?;
        let decoded = JournalRecord::decode(&record.payload)
            .wrap_err_with(|| format!("record {}", record.seq.0))?;
        state
            .apply(&decoded, SequenceNumber(record.seq.0), false)
            .wrap_err_with(|| format!("record {} does not apply", record.seq.0))?;
        records += 1;
    }
    journal.close()?;
    state
        .ledger()
        .check_supply()
        .map_err(|e| eyre::eyre!("supply check failed: {e}"))?;
    let state_root = state.recompute_root()?;
    Ok(Verified {
        records,
        slots: state.ledger().slot_count(),
        state_root,
    })
}

#[cfg(test)]
mod key_tests {
    use super::*;

    const COMMITTER: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";
    const RECEIPT: &str = "0x2222222222222222222222222222222222222222222222222222222222222222";
    const SALT: &str = "0x3333333333333333333333333333333333333333333333333333333333333333";

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn off_a_devnet_the_three_secrets_are_required_and_the_keys_differ() {
        let config = NodeConfig {
            chain_id: 10,
            ..NodeConfig::default()
        };
        let only_committer = env(&[(OPERATOR_KEY_ENV, COMMITTER)]);
        let err = node_keys(&config, &only_committer)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(RECEIPT_KEY_ENV), "{err}");
        let same = env(&[
            (OPERATOR_KEY_ENV, COMMITTER),
            (RECEIPT_KEY_ENV, COMMITTER),
            (SALT_SECRET_ENV, SALT),
        ]);
        let err = node_keys(&config, &same).err().unwrap().to_string();
        assert!(err.contains("must differ"), "{err}");
        let no_salt = env(&[(OPERATOR_KEY_ENV, COMMITTER), (RECEIPT_KEY_ENV, RECEIPT)]);
        let err = node_keys(&config, &no_salt).err().unwrap().to_string();
        assert!(err.contains(SALT_SECRET_ENV), "{err}");
        let all = env(&[
            (OPERATOR_KEY_ENV, COMMITTER),
            (RECEIPT_KEY_ENV, RECEIPT),
            (SALT_SECRET_ENV, SALT),
        ]);
        let keys = node_keys(&config, &all).unwrap();
        assert_ne!(keys.committer.address(), keys.receipt.address());
        assert_eq!(
            keys.salt_secret,
            SALT.parse::<alloy::primitives::B256>().unwrap()
        );
        let bad_salt = env(&[
            (OPERATOR_KEY_ENV, COMMITTER),
            (RECEIPT_KEY_ENV, RECEIPT),
            (SALT_SECRET_ENV, "0x12"),
        ]);
        assert!(node_keys(&config, &bad_salt).is_err());
    }

    #[test]
    fn a_devnet_falls_back_to_the_committer_key() {
        let config = NodeConfig::default();
        assert_eq!(config.chain_id, 31337);
        let keys = node_keys(&config, &env(&[(OPERATOR_KEY_ENV, COMMITTER)])).unwrap();
        assert_eq!(keys.committer.address(), keys.receipt.address());
        assert_eq!(
            keys.salt_secret,
            devnet_salt_secret(&keys.committer.to_bytes().0)
        );
    }
}
