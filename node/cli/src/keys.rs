//! `stablelane keys` (make and inspect Groth16 key files) and `stablelane verify-attestation`
//! (check a balance attestation in Rust and, optionally, against the deployed contracts).

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use alloy::primitives::{Address, B256};
use clap::{Args, Subcommand};
use eyre::{bail, eyre, Context as _, Result};
use stablelane::{
    attestation::{attestation_context, AttestationVerifier},
    Amount, Attestation, BatchNumber,
};
use stablelane_circuits::{
    keys::{self, VerifyingKey},
    solidity::{dev_setup_description, render_verifier},
    ChaCha20Rng, SeedableRng,
};

/// `stablelane keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Makes the attestation circuit's proving and verifying keys, the Solidity verifier
    /// rendered from them, and `keys.json` recording their hashes.
    Setup(SetupArgs),
    /// Prints the verifying-key hash of a key file (what the verifier contract publishes as
    /// `VERIFYING_KEY_HASH`).
    Hash {
        /// A verifying key file.
        #[arg(long, required_unless_present = "proving_key")]
        verifying_key: Option<PathBuf>,
        /// A proving key file (its embedded verifying key is hashed).
        #[arg(long, conflicts_with = "verifying_key")]
        proving_key: Option<PathBuf>,
    },
}

/// `stablelane keys setup`
#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Directory to write `proving.key`, `verifying.key`, `Groth16Verifier.sol` and
    /// `keys.json` into.
    #[arg(long)]
    out_dir: PathBuf,
    /// INSECURE: the deterministic dev setup from the published seed (devnets and tests).
    #[arg(long, required_unless_present = "random", conflicts_with = "random")]
    insecure_dev: bool,
    /// A single-party setup with secrets from the OS's randomness, discarded after use.
    /// Whoever ran it could forge proofs if they kept them: production needs a multi-party
    /// ceremony (docs/keys.md).
    #[arg(long)]
    random: bool,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

/// Runs a `keys` command.
pub fn run(command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Setup(args) => setup(&args),
        KeysCommand::Hash {
            verifying_key,
            proving_key,
        } => {
            let vk = match (verifying_key, proving_key) {
                (Some(path), _) => keys::read_verifying_key(&path)
                    .map_err(|e| eyre!("reading {}: {e}", path.display()))?,
                (None, Some(path)) => {
                    keys::read_proving_key(&path)
                        .map_err(|e| eyre!("reading {}: {e}", path.display()))?
                        .vk
                }
                (None, None) => bail!("pass --verifying-key or --proving-key"),
            };
            println!("{}", key_hash(&vk)?);
            Ok(())
        }
    }
}

fn key_hash(vk: &VerifyingKey) -> Result<B256> {
    Ok(B256::from(
        keys::verifying_key_hash(vk).map_err(|e| eyre!("key hash: {e}"))?,
    ))
}

fn setup(args: &SetupArgs) -> Result<()> {
    let files = [
        "proving.key",
        "verifying.key",
        "Groth16Verifier.sol",
        "keys.json",
    ]
    .map(|name| args.out_dir.join(name));
    if !args.force {
        if let Some(existing) = files.iter().find(|p| p.exists()) {
            bail!(
                "{} exists: pass --force to overwrite keys (a deployed verifier only accepts proofs of its own key)",
                existing.display()
            );
        }
    }
    std::fs::create_dir_all(&args.out_dir)
        .wrap_err_with(|| format!("creating {}", args.out_dir.display()))?;
    let (pk, vk, setup, description) = if args.insecure_dev {
        eprintln!(
            "WARNING: INSECURE dev setup. Its secrets come from the published seed {:?}: anyone can \
             recompute them and forge any proof. Devnets and tests only.",
            String::from_utf8_lossy(&keys::DEV_SETUP_SEED)
        );
        eprintln!("keys setup: running the Groth16 setup (a few seconds)…");
        let (pk, vk) = keys::insecure_dev_setup().map_err(|e| eyre!("setup: {e}"))?;
        (pk, vk, "insecure-dev", dev_setup_description())
    } else {
        eprintln!(
            "WARNING: single-party setup. Its secrets are drawn from the OS and dropped, but nobody \
             else can check that: whoever ran this could forge proofs. Use a multi-party ceremony \
             for real value (docs/keys.md)."
        );
        eprintln!("keys setup: running the Groth16 setup (a few seconds)…");
        let seed = alloy::signers::local::PrivateKeySigner::random().to_bytes();
        let mut rng = ChaCha20Rng::from_seed(seed.0);
        let (pk, vk) = keys::setup(&mut rng).map_err(|e| eyre!("setup: {e}"))?;
        (
            pk,
            vk,
            "single-party-random",
            "single-party setup with OS randomness (`stablelane keys setup --random`): trusts whoever ran it".to_string(),
        )
    };
    eprintln!("keys setup: writing the key files…");
    let [pk_path, vk_path, sol_path, json_path] = &files;
    keys::write_proving_key(pk_path, &pk)
        .map_err(|e| eyre!("writing {}: {e}", pk_path.display()))?;
    keys::write_verifying_key(vk_path, &vk)
        .map_err(|e| eyre!("writing {}: {e}", vk_path.display()))?;
    let source = render_verifier(&vk, &description).map_err(|e| eyre!("rendering: {e}"))?;
    std::fs::write(sol_path, source).wrap_err_with(|| format!("writing {}", sol_path.display()))?;
    let hash = key_hash(&vk)?;
    let pk_bytes =
        std::fs::read(pk_path).wrap_err_with(|| format!("reading {}", pk_path.display()))?;
    let record = serde_json::json!({
        "setup": setup,
        "verifyingKeyHash": hash,
        "provingKeyFileKeccak256": alloy::primitives::keccak256(&pk_bytes),
        "provingKey": "proving.key",
        "verifyingKey": "verifying.key",
        "verifier": "Groth16Verifier.sol",
    });
    std::fs::write(json_path, serde_json::to_string_pretty(&record)? + "\n")
        .wrap_err_with(|| format!("writing {}", json_path.display()))?;
    println!("verifying key hash {hash}");
    println!("wrote {}", args.out_dir.display());
    Ok(())
}

/// `stablelane verify-attestation`
#[derive(Debug, Args)]
pub struct VerifyAttestationArgs {
    /// The attestation JSON (as `lane_proveBalance` / `stablelane wallet attest` return it);
    /// `-` reads standard input.
    #[arg(long)]
    attestation: PathBuf,
    /// The deployment's verifying key file.
    #[arg(long, required_unless_present = "insecure_dev_keys")]
    verifying_key: Option<PathBuf>,
    /// Use the INSECURE dev setup's verifying key (devnets only).
    #[arg(long, conflicts_with = "verifying_key")]
    insecure_dev_keys: bool,
    /// Require this owner.
    #[arg(long)]
    owner: Option<Address>,
    /// Require this token.
    #[arg(long)]
    token: Option<Address>,
    /// Require a threshold of at least this many base units.
    #[arg(long)]
    min_threshold: Option<u128>,
    /// Require this challenge (the one the verifier issued).
    #[arg(long)]
    challenge: Option<B256>,
    /// Refuse an attestation against a batch older than this one (a balance proven under an
    /// old root may have been spent since).
    #[arg(long, default_value_t = 0)]
    min_batch: u64,
    /// Check on the L2: read the batch's committed root from the settlement contract and
    /// compare, check the deployed verifier's key hash, the contract's `attestationContext`,
    /// and `verifyAttestation` (with --min-batch) on-chain.
    #[arg(
        long,
        env = "STABLELANE_L2_RPC_URL",
        requires = "settlement",
        conflicts_with = "root"
    )]
    l2_rpc: Option<String>,
    /// The settlement contract (with --l2-rpc).
    #[arg(long, env = "STABLELANE_SETTLEMENT")]
    settlement: Option<Address>,
    /// Without a chain: the root the settlement contract committed for the attestation's
    /// batch, as the relying party learned it from a source it trusts.
    #[arg(long)]
    root: Option<B256>,
    /// Go on when the deployed verifier uses the INSECURE dev setup's keys on a chain whose id
    /// is not anvil's (31337): a test chain, never one holding real money.
    #[arg(long)]
    allow_dev_keys_off_devnet: bool,
}

/// The exit status of `verify-attestation` when the proof holds but nothing said whether its
/// root was committed (no --l2-rpc, no --root): not valid, and not a broken proof either.
pub const ROOT_NOT_CHECKED_EXIT: u8 = 3;

/// Checks an attestation; prints one line per check. Fails on the first failed check.
/// Returns whether the root was checked (against the chain or --root): only then is the
/// attestation valid.
pub async fn verify_attestation(args: &VerifyAttestationArgs) -> Result<bool> {
    let text = if args.attestation.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        read_text(&args.attestation)?
    };
    let attestation: Attestation =
        serde_json::from_str(&text).wrap_err("the attestation is not valid attestation JSON")?;
    let vk = match &args.verifying_key {
        Some(path) => {
            keys::read_verifying_key(path).map_err(|e| eyre!("reading {}: {e}", path.display()))?
        }
        None => {
            eprintln!(
                "verify-attestation: using the INSECURE dev setup's verifying key (devnets only)"
            );
            keys::insecure_dev_setup()
                .map_err(|e| eyre!("dev setup: {e}"))?
                .1
        }
    };
    let a = &attestation;
    println!(
        "statement: {} holds at least {} of {} in batch {} (root {}), challenge {}",
        a.owner, a.threshold.0, a.token, a.batch, a.root, a.challenge
    );
    if let Some(owner) = args.owner {
        ensure_eq("owner", a.owner, owner)?;
    }
    if let Some(token) = args.token {
        ensure_eq("token", a.token, token)?;
    }
    if let Some(min) = args.min_threshold {
        if a.threshold < Amount(min) {
            bail!("threshold: {} is below the required {min}", a.threshold.0);
        }
        println!("ok: threshold {} >= {min}", a.threshold.0);
    }
    if let Some(challenge) = args.challenge {
        ensure_eq("challenge", a.challenge, challenge)?;
    }
    let min_batch = BatchNumber(args.min_batch);
    if a.batch < args.min_batch {
        bail!(
            "batch: the attestation is against batch {}, older than the required {}",
            a.batch,
            args.min_batch
        );
    }
    if args.min_batch > 0 {
        println!("ok: batch {} >= {}", a.batch, args.min_batch);
    }
    let verifier = AttestationVerifier::new(&vk).map_err(|e| eyre!("verifying key: {e}"))?;
    let committed = match (&args.l2_rpc, args.settlement, args.root) {
        (Some(url), Some(settlement), _) => Some(
            on_chain(
                a,
                url,
                settlement,
                args.min_batch,
                args.allow_dev_keys_off_devnet,
            )
            .await?,
        ),
        (_, _, Some(root)) => Some(root),
        _ => None,
    };
    let Some(committed) = committed else {
        verifier
            .verify_proof_only(a)
            .map_err(|e| eyre!("proof check in Rust failed: {e}"))?;
        println!(
            "ok: the Groth16 proof proves the statement for its own root (Rust, key {})",
            verifier.key_hash()
        );
        eprintln!(
            "NOT VALID: the root {} was not checked against the chain. The proving key is public: \
             anyone can prove any balance in a tree of their own. Pass --l2-rpc and --settlement \
             (or --root with batch {}'s committed root) to check it.",
            a.root, a.batch
        );
        return Ok(false);
    };
    verifier
        .verify(a, &(BatchNumber(a.batch), committed), min_batch)
        .map_err(|e| eyre!("check in Rust failed: {e}"))?;
    println!(
        "ok: root {} is batch {}'s committed root and the Groth16 proof proves the statement (Rust, key {})",
        a.root,
        a.batch,
        verifier.key_hash()
    );
    println!("attestation valid");
    Ok(true)
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).wrap_err_with(|| format!("reading {}", path.display()))
}

fn ensure_eq<T: PartialEq + std::fmt::Display>(what: &str, got: T, wanted: T) -> Result<()> {
    if got != wanted {
        bail!("{what}: the attestation says {got}, expected {wanted}");
    }
    println!("ok: {what} {got}");
    Ok(())
}

/// The on-chain checks; returns the root the contract committed for the attestation's batch.
async fn on_chain(
    a: &Attestation,
    url: &str,
    settlement: Address,
    min_batch: u64,
    allow_dev_keys_off_devnet: bool,
) -> Result<B256> {
    use alloy::providers::{Provider as _, ProviderBuilder};
    use stablelane_contracts::{Groth16Verifier, Settlement};
    let parsed = url
        .parse()
        .map_err(|e| eyre!("bad L2 RPC URL {url}: {e}"))?;
    let provider = ProviderBuilder::new().connect_http(parsed);
    let chain_id = provider
        .get_chain_id()
        .await
        .wrap_err_with(|| format!("eth_chainId at {url}"))?;
    let contract = Settlement::new(settlement, &provider);
    let verifier =
        contract.verifier().call().await.wrap_err_with(|| {
            format!("cannot read the settlement contract {settlement} at {url}")
        })?;
    let deployed = Groth16Verifier::new(verifier, &provider)
        .VERIFYING_KEY_HASH()
        .call()
        .await
        .wrap_err("reading the deployed verifier's VERIFYING_KEY_HASH")?;
    if deployed != a.verifying_key_hash {
        bail!(
            "on-chain: the deployed verifier's key hash is {deployed}, the attestation's {}",
            a.verifying_key_hash
        );
    }
    keys::check_dev_keys_allowed(chain_id, &deployed.0, allow_dev_keys_off_devnet).map_err(
        |e| eyre!("on-chain: the deployed verifier {verifier}: {e} (--allow-dev-keys-off-devnet)"),
    )?;
    println!("ok: the deployed verifier {verifier} has key {deployed}");
    let committed = contract
        .batch(a.batch)
        .call()
        .await
        .wrap_err_with(|| format!("reading batch {} (is it committed?)", a.batch))?
        .root;
    // Only a finalized batch's root counts: one still in its challenge window may be voided
    // (and in exodus, later batches are).
    if !contract.isFinalized(a.batch).call().await? {
        bail!(
            "on-chain: batch {} is not finalized (its challenge window is open, or exodus voided it): a balance proven under it may be undone",
            a.batch
        );
    }
    println!("ok: batch {} is finalized on-chain", a.batch);
    let context = contract.attestationContext(a.challenge).call().await?;
    if context != a.context || context != attestation_context(&a.challenge) {
        bail!(
            "on-chain: attestationContext(challenge) is {context}, the attestation says {}",
            a.context
        );
    }
    let valid = contract
        .verifyAttestation(
            a.batch,
            min_batch,
            a.owner,
            a.token,
            a.threshold.0,
            a.context,
            a.proof,
        )
        .call()
        .await
        .wrap_err_with(|| format!("verifyAttestation (is batch {} finalized?)", a.batch))?;
    if !valid {
        bail!(
            "on-chain: verifyAttestation is false: the proof does not hold for batch {}'s finalized root",
            a.batch
        );
    }
    println!(
        "ok: verifyAttestation is true against batch {}'s finalized root",
        a.batch
    );
    Ok(committed)
}
