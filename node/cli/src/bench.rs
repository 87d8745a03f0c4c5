//! `stablelane bench`: a load generator for any node.
//!
//! 1. Derives `--accounts` keys from `--seed` (deterministic: a rerun reuses the accounts)
//!    and funds each one, either through `admin_devDeposit` (a node started with
//!    `[dev] deposits = true`) or not at all (`--no-fund`: the accounts were funded before,
//!    e.g. on-chain).
//! 2. Pre-signs `--transfers` transfers, round-robin over the accounts, each to the next
//!    account (`--recipients ring`) or to a random other one (`--recipients random`), with
//!    consecutive nonces per sender (in parallel, before the clock starts).
//! 3. Sends them over HTTP (one call per request, or JSON-RPC batches of `--batch`) or
//!    WebSocket, from `--concurrency` workers. Each worker owns a set of senders, so every
//!    sender's nonces arrive in order. `--rate` paces the offered load (open loop) to
//!    measure latency at a given throughput; without it, workers send as fast as the node
//!    answers (closed loop).
//! 4. Prints progress every second, then throughput, acknowledgement latency p50/p90/p99/max,
//!    errors by code, and the node's own counters from `/metrics` when `--admin` is given.
//!
//! Every acknowledgement is a durable one: the node answers after the journal's fsync.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use alloy::{primitives::keccak256, signers::local::PrivateKeySigner};
use clap::{Args, ValueEnum};
use eyre::{bail, eyre, Context as _, Result};
use jsonrpsee::{
    core::{client::ClientT, params::BatchRequestBuilder},
    http_client::{HeaderMap, HttpClient, HttpClientBuilder},
    ws_client::WsClientBuilder,
};
use stablelane::{
    domain,
    rpc::{
        authenticate, method, AdminApiClient, LaneApiClient, AUTHENTICATION_VALIDITY_DEFAULT_S,
        GET_ACCOUNT_PURPOSE,
    },
    sign, Amount, Nonce, Signed, Transfer,
};

/// How transfers travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// HTTP, one connection per worker.
    Http,
    /// WebSocket, one connection per worker.
    Ws,
}

/// Whom each transfer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Recipients {
    /// Account `i` pays account `i + 1` (wrapping): neighbouring slots, so a batch changes
    /// a few dense runs of the state tree.
    Ring,
    /// A uniformly random other account, the same for a given transfer index on every run:
    /// changed slots spread over the whole tree, as with independent wallets.
    Random,
}

/// The account that transfer `index`, sent by account `sender`, pays (`accounts >= 2`).
fn recipient(pattern: Recipients, sender: usize, index: usize, accounts: usize) -> usize {
    match pattern {
        Recipients::Ring => (sender + 1) % accounts,
        Recipients::Random => {
            // splitmix64 of the index: any other account, uniformly.
            let mut z = (index as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let others = accounts.saturating_sub(1).max(1) as u64;
            let offset = usize::try_from(z % others).unwrap_or(0) + 1;
            (sender + offset) % accounts
        }
    }
}

/// `stablelane bench …`
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The node's JSON-RPC URL (http://…; ws://… is derived for --transport ws).
    #[arg(
        long,
        env = "STABLELANE_RPC_URL",
        default_value = "http://127.0.0.1:8645"
    )]
    rpc: String,
    /// The node's admin URL, for funding with admin_devDeposit and reading /metrics.
    #[arg(long, env = "STABLELANE_ADMIN_URL")]
    admin: Option<String>,
    /// Admin bearer token.
    #[arg(long, env = "STABLELANE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Accounts sending and receiving.
    #[arg(long, default_value_t = 1_000)]
    accounts: usize,
    /// Transfers to send.
    #[arg(long, default_value_t = 100_000)]
    transfers: usize,
    /// Concurrent workers (connections).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Transfers per HTTP JSON-RPC batch request (1: one call per request).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Transport.
    #[arg(long, value_enum, default_value_t = Transport::Http)]
    transport: Transport,
    /// Offered load in transfers per second (open loop); default: as fast as answered.
    #[arg(long)]
    rate: Option<u64>,
    /// Whom each transfer pays: the next account (ring) or a random other one.
    #[arg(long, value_enum, default_value_t = Recipients::Ring)]
    recipients: Recipients,
    /// Token symbol or address (default: the node's first token).
    #[arg(long)]
    token: Option<String>,
    /// Seed the account keys are derived from.
    #[arg(long, default_value = "stablelane-bench")]
    seed: String,
    /// Use these accounts instead of derived ones: a file of hex private keys, one per line
    /// (blank lines and `#` comments skipped); --accounts is then the number of keys in it.
    /// Never point it at keys that hold real money: the bench spends their balances on fees.
    #[arg(long, conflicts_with = "seed")]
    keys_file: Option<std::path::PathBuf>,
    /// Do not fund the accounts (they already hold enough).
    #[arg(long, conflicts_with = "fund_from")]
    no_fund: bool,
    /// Fund the accounts with signed transfers from this key's account (which must hold
    /// enough of the token on the node, e.g. after an on-chain deposit) instead of
    /// `admin_devDeposit`. Works on any node, also one that commits to the L2.
    #[arg(long, env = "STABLELANE_BENCH_FUNDER_KEY", hide_env_values = true)]
    fund_from: Option<String>,
    /// Settlement cost: seal a batch before the run (so funding is not counted) and after
    /// it, wait until the node has committed every batch of the run on the L2, and report
    /// each commit's gas and gas per transfer. Needs --admin and --l2-rpc, and a node that
    /// commits (`[chain]`, `[batch] commit = true`).
    #[arg(long, requires = "l2_rpc")]
    settle: bool,
    /// The L2's JSON-RPC URL (for --settle: the commits' receipts).
    #[arg(long, env = "STABLELANE_L2_RPC_URL")]
    l2_rpc: Option<String>,
    /// How long --settle waits for the commits (seconds).
    #[arg(long, default_value_t = 600)]
    settle_timeout_s: u64,
}

/// One worker's share: transfers in the order it sends them.
type Share = Vec<Signed<Transfer>>;

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    fn error(&self, key: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut errors) = self.errors.lock() {
            *errors.entry(key).or_default() += 1;
        }
    }
}

fn error_key(e: &jsonrpsee::core::client::Error) -> String {
    match e {
        jsonrpsee::core::client::Error::Call(obj) => format!("code {}", obj.code()),
        other => {
            let text = other.to_string();
            text.chars().take(60).collect()
        }
    }
}

/// Private keys from a file, one hex key per line.
fn read_keys(path: &std::path::Path) -> Result<Vec<PrivateKeySigner>> {
    let text = std::fs::read_to_string(path)
        .wrap_err_with(|| format!("reading --keys-file {}", path.display()))?;
    let mut keys = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key: PrivateKeySigner = line.parse().map_err(|_| {
            eyre!(
                "{} line {}: not a hex private key",
                path.display(),
                number + 1
            )
        })?;
        if !seen.insert(key.address()) {
            bail!("{} line {}: a key listed twice", path.display(), number + 1);
        }
        keys.push(key);
    }
    if keys.len() < 2 {
        bail!(
            "--keys-file {} holds {} keys; at least 2 are needed",
            path.display(),
            keys.len()
        );
    }
    Ok(keys)
}

fn derive_keys(seed: &str, n: usize) -> Result<Vec<PrivateKeySigner>> {
    (0..n)
        .map(|i| {
            let mut material = seed.as_bytes().to_vec();
            material.extend_from_slice(&(i as u64).to_be_bytes());
            PrivateKeySigner::from_bytes(&keccak256(&material))
                .map_err(|e| eyre!("deriving key {i}: {e}"))
        })
        .collect()
}

fn admin_client(url: &str, token: Option<&str>) -> Result<HttpClient> {
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            "authorization",
            format!("Bearer {token}")
                .parse()
                .map_err(|_| eyre!("the admin token is not a valid header value"))?,
        );
    }
    Ok(HttpClientBuilder::default()
        .set_headers(headers)
        .build(url)?)
}

/// Runs the benchmark.
pub async fn run(args: BenchArgs) -> Result<()> {
    let file_keys = match &args.keys_file {
        Some(path) => Some(read_keys(path)?),
        None => None,
    };
    let args = match &file_keys {
        Some(keys) => BenchArgs {
            accounts: keys.len(),
            ..args
        },
        None => args,
    };
    if args.accounts < 2 || args.transfers == 0 || args.concurrency == 0 || args.batch == 0 {
        bail!("--accounts must be at least 2; --transfers, --concurrency and --batch positive");
    }
    if args.transport == Transport::Ws && args.batch > 1 {
        bail!("--batch applies to --transport http");
    }
    if args.batch > args.accounts / args.concurrency.min(args.accounts) {
        bail!("--batch must not exceed accounts per worker (--accounts / --concurrency): a batch must not hold two transfers of one sender");
    }
    let client = HttpClientBuilder::default()
        .max_request_size(64 * 1024 * 1024)
        .build(&args.rpc)?;
    let info = client
        .chain_info()
        .await
        .wrap_err_with(|| format!("cannot reach the node at {}", args.rpc))?;
    let token = match &args.token {
        Some(t) => info.token(t).ok_or_else(|| eyre!("unknown token {t}"))?,
        None => info
            .tokens
            .first()
            .ok_or_else(|| eyre!("the node has no token"))?,
    }
    .clone();
    let fee = client.estimate_fee(token.address).await?.fee;
    let domain = domain(info.chain_id, info.settlement);
    let keys = match file_keys {
        Some(keys) => keys,
        None => derive_keys(&args.seed, args.accounts)?,
    };
    let per_sender = args.transfers.div_ceil(args.accounts) as u128;
    let amount = Amount(1);

    // Fund.
    let admin = match &args.admin {
        Some(url) => Some(admin_client(url, args.admin_token.as_deref())?),
        None => None,
    };
    if let Some(funder) = &args.fund_from {
        let funder: PrivateKeySigner = funder
            .trim()
            .parse()
            .map_err(|_| eyre!("--fund-from is not a hex private key"))?;
        let need = Amount(per_sender * (amount.base_units() + fee.base_units()));
        fund_by_transfers(&client, &funder, &keys, token.address, need, fee, &domain).await?;
    } else if !args.no_fund {
        let Some(admin) = &admin else {
            bail!("funding needs --admin (a node with [dev] deposits = true), or pass --no-fund");
        };
        let need = Amount(per_sender * (amount.base_units() + fee.base_units()));
        let started = Instant::now();
        eprintln!(
            "funding {} accounts with {} base units each (admin_devDeposit)…",
            keys.len(),
            need
        );
        for (i, key) in keys.iter().enumerate() {
            admin
                .dev_deposit(key.address(), token.address, need)
                .await
                .map_err(|e| eyre!("admin_devDeposit: {e} (is [dev] deposits = true?)"))?;
            if (i + 1) % 1_000 == 0 {
                eprintln!("  funded {}/{}", i + 1, keys.len());
            }
        }
        eprintln!("funded in {:.1} s", started.elapsed().as_secs_f64());
    }

    // Current nonces, then pre-sign in parallel.
    let mut nonces = Vec::with_capacity(keys.len());
    for key in &keys {
        let auth = authenticate(
            key,
            GET_ACCOUNT_PURPOSE,
            AUTHENTICATION_VALIDITY_DEFAULT_S,
            &domain,
        )?;
        nonces.push(
            client
                .get_account(key.address(), token.address, auth)
                .await?
                .nonce,
        );
    }
    let started = Instant::now();
    let workers = args.concurrency.min(args.accounts);
    let keys = Arc::new(keys);
    let nonces = Arc::new(nonces);
    let mut signers = Vec::new();
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    for t in 0..threads {
        let (keys, nonces, domain) = (keys.clone(), nonces.clone(), domain.clone());
        let (transfers, accounts, token) = (args.transfers, args.accounts, token.address);
        let pattern = args.recipients;
        signers.push(std::thread::spawn(
            move || -> Result<Vec<(usize, Signed<Transfer>)>> {
                let mut out = Vec::new();
                for i in (t..transfers).step_by(threads) {
                    let sender = i % accounts;
                    let round = (i / accounts) as u64;
                    let key = &keys[sender];
                    let to = keys[recipient(pattern, sender, i, accounts)].address();
                    let message = Transfer {
                        from: key.address(),
                        to,
                        token,
                        amount,
                        fee,
                        nonce: Nonce(nonces[sender].get() + round),
                        valid_until: u64::MAX,
                    };
                    out.push((i, sign(key, message, &domain)?));
                }
                Ok(out)
            },
        ));
    }
    let mut signed: Vec<Option<Signed<Transfer>>> = vec![None; args.transfers];
    for handle in signers {
        for (i, tx) in handle
            .join()
            .map_err(|_| eyre!("signing thread panicked"))??
        {
            signed[i] = Some(tx);
        }
    }
    // Worker w owns senders s with s % workers == w, and sends their transfers in index
    // order (so each sender's nonces in order).
    let mut shares: Vec<Share> = vec![Vec::new(); workers];
    for (i, tx) in signed.into_iter().enumerate() {
        let tx = tx.ok_or_else(|| eyre!("transfer {i} not signed"))?;
        shares[(i % args.accounts) % workers].push(tx);
    }
    eprintln!(
        "signed {} transfers over {} accounts in {:.1} s; sending over {:?} with {} workers{}{}",
        args.transfers,
        args.accounts,
        started.elapsed().as_secs_f64(),
        args.transport,
        workers,
        if args.batch > 1 {
            format!(", batches of {}", args.batch)
        } else {
            String::new()
        },
        args.rate
            .map_or(String::new(), |r| format!(", offered {r} transfers/s"))
    );

    // With --settle, close the batch holding the funding so the run's batches hold only
    // the run's transfers.
    let first_batch = match (&admin, args.settle) {
        (Some(admin), true) => {
            admin.seal_batch().await?;
            Some(admin.status().await?.batches.sealed + 1)
        }
        (None, true) => bail!("--settle needs --admin (to seal batches)"),
        _ => None,
    };
    let before = match &admin {
        Some(_) => scrape(&args).await.ok(),
        None => None,
    };
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (index, share) in shares.into_iter().enumerate() {
        let tally = tally.clone();
        let args_rpc = args.rpc.clone();
        let (transport, batch) = (args.transport, args.batch);
        let per_worker_rate = args.rate.map(|r| r as f64 / workers as f64);
        tasks.push(tokio::spawn(async move {
            let phase = (index as f64) / (workers as f64);
            worker(
                share,
                &args_rpc,
                transport,
                batch,
                per_worker_rate,
                phase,
                &tally,
            )
            .await
        }));
    }
    let progress = {
        let tally = tally.clone();
        let total = args.transfers as u64;
        tokio::spawn(async move {
            let mut last = 0u64;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let acked = tally.acked.load(Ordering::Relaxed);
                let failed = tally.failed.load(Ordering::Relaxed);
                eprintln!(
                    "  {:>6.1} s  acked {acked:>9}/{total}  {:>7} /s  errors {failed}",
                    started.elapsed().as_secs_f64(),
                    acked - last
                );
                last = acked;
            }
        })
    };
    for task in tasks {
        task.await.map_err(|e| eyre!("worker: {e}"))??;
    }
    progress.abort();
    let elapsed = started.elapsed();

    let acked = tally.acked.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    let mut latencies = tally
        .latencies_us
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        f64::from(latencies[i]) / 1_000.0
    };
    println!(
        "transfers      {} sent, {acked} acknowledged, {failed} failed",
        tally.sent.load(Ordering::Relaxed)
    );
    println!(
        "throughput     {:.0} acknowledged transfers/s over {:.2} s",
        acked as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "latency (ms)   p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  (per request{})",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        latencies.last().map_or(0.0, |l| f64::from(*l) / 1_000.0),
        if args.batch > 1 {
            "; a batch is one request"
        } else {
            ""
        }
    );
    if let Ok(errors) = tally.errors.lock() {
        for (key, n) in errors.iter() {
            println!("error          {key}: {n}");
        }
    }
    if let (Some(admin), Some(before)) = (&admin, before) {
        let after = scrape(&args).await?;
        let delta = |name: &str| {
            after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0)
        };
        let accepted = "stablelane_transactions_accepted_total{kind=\"transfer\"}";
        let leaf_hashes = "stablelane_sequencer_seal_leaf_hashes_total";
        let inner_hashes = "stablelane_sequencer_seal_inner_hashes_total";
        for name in [
            accepted,
            "stablelane_sequencer_groups_total",
            "stablelane_journal_records_total",
            "stablelane_intake_busy_total",
            leaf_hashes,
            inner_hashes,
        ] {
            println!("node           {name} +{}", delta(name));
        }
        let groups = delta("stablelane_sequencer_groups_total");
        if groups > 0.0 {
            println!(
                "node           {:.1} records per fsync group",
                delta("stablelane_journal_records_total") / groups
            );
        }
        let transfers = delta(accepted);
        if transfers > 0.0 {
            // Batches still open or being sealed are not counted yet: a lower bound.
            println!(
                "node           Poseidon per transfer: 1 receipt leaf, {:.2} more leaves and \
                 {:.2} inner nodes at seals (batches sealed so far)",
                delta(leaf_hashes) / transfers,
                delta(inner_hashes) / transfers
            );
        }
        let status = admin.status().await?;
        println!(
            "node           last sequence {}, slots {}, batches sealed {}",
            status.last_sequence, status.slot_count, status.batches.sealed
        );
    }
    if let (Some(admin), Some(first), Some(l2)) = (&admin, first_batch, &args.l2_rpc) {
        settlement_report(admin, &client, l2, first, args.settle_timeout_s).await?;
    }
    if failed > 0 {
        bail!("{failed} transfers failed");
    }
    Ok(())
}

/// `--fund-from`: one signed transfer of `need` from `funder` to each account, in nonce
/// order, each acknowledged before the next is sent.
async fn fund_by_transfers(
    client: &HttpClient,
    funder: &PrivateKeySigner,
    keys: &[PrivateKeySigner],
    token: alloy::primitives::Address,
    need: Amount,
    fee: Amount,
    domain: &alloy::sol_types::Eip712Domain,
) -> Result<()> {
    let auth = authenticate(
        funder,
        GET_ACCOUNT_PURPOSE,
        AUTHENTICATION_VALIDITY_DEFAULT_S,
        domain,
    )?;
    let account = client.get_account(funder.address(), token, auth).await?;
    let total = (need.base_units() + fee.base_units())
        .checked_mul(keys.len() as u128)
        .ok_or_else(|| eyre!("funding overflows"))?;
    if account.balance.base_units() < total {
        bail!(
            "--fund-from {} holds {} base units; funding {} accounts needs {total} (amount {need} + fee {fee} each)",
            funder.address(),
            account.balance,
            keys.len()
        );
    }
    let started = Instant::now();
    eprintln!(
        "funding {} accounts with {need} base units each by transfers from {}…",
        keys.len(),
        funder.address()
    );
    for (i, key) in keys.iter().enumerate() {
        let message = Transfer {
            from: funder.address(),
            to: key.address(),
            token,
            amount: need,
            fee,
            nonce: Nonce(account.nonce.get() + i as u64),
            valid_until: u64::MAX,
        };
        client
            .send_transfer(sign(funder, message, domain)?)
            .await
            .map_err(|e| eyre!("funding transfer {i}: {e}"))?;
        if (i + 1) % 1_000 == 0 {
            eprintln!("  funded {}/{}", i + 1, keys.len());
        }
    }
    eprintln!("funded in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `--settle`: seals the run's last batch, waits for the node to commit batches
/// `first..=last`, and prints each commit's gas from its L2 receipt.
async fn settlement_report(
    admin: &HttpClient,
    client: &HttpClient,
    l2: &str,
    first: u64,
    timeout_s: u64,
) -> Result<()> {
    use alloy::providers::{Provider, ProviderBuilder};
    admin.seal_batch().await?;
    let last = admin.status().await?.batches.sealed;
    if last < first {
        println!("settlement     no batch sealed by the run");
        return Ok(());
    }
    let provider = ProviderBuilder::new().connect_http(
        l2.parse()
            .wrap_err_with(|| format!("--l2-rpc {l2} is not a URL"))?,
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(timeout_s);
    eprintln!("waiting for batches {first}..={last} to be committed on the L2…");
    let mut shown = 0;
    loop {
        let committed = admin.status().await?.batches.committed;
        if committed >= last {
            break;
        }
        if committed != shown {
            eprintln!(
                "  {:>6.1} s  committed {committed}/{last}",
                started.elapsed().as_secs_f64()
            );
            shown = committed;
        }
        if Instant::now() > deadline {
            bail!(
                "batches {first}..={last}: only {committed} committed after {timeout_s} s \
                 (is the node committing? [batch] commit, [chain] l2_rpc_url)"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "settlement     batch  transfers  changed leaves  data bytes  calldata bytes  gas used   gas/transfer"
    );
    let (mut total_gas, mut total_txs) = (0u128, 0u64);
    for number in first..=last {
        let batch = client.get_batch(number).await?;
        let hash = batch
            .l2_tx_hash
            .ok_or_else(|| eyre!("batch {number} is committed but has no L2 transaction"))?;
        let receipt = provider
            .get_transaction_receipt(hash)
            .await?
            .ok_or_else(|| eyre!("no L2 receipt for batch {number}'s commit {hash}"))?;
        let tx = provider
            .get_transaction_by_hash(hash)
            .await?
            .ok_or_else(|| eyre!("no L2 transaction {hash}"))?;
        let calldata = alloy::consensus::Transaction::input(&tx).len();
        let gas = u128::from(receipt.gas_used);
        total_gas += gas;
        total_txs += batch.transaction_count;
        println!(
            "settlement     {number:>5}  {:>9}  {:>14}  {:>10}  {calldata:>14}  {gas:>9}  {}",
            batch.transaction_count,
            batch.changed_slots,
            batch.data_bytes,
            per_transfer(gas, batch.transaction_count),
        );
    }
    println!(
        "settlement     {} batches, {total_txs} transactions, {total_gas} gas: {} gas per transfer",
        last - first + 1,
        per_transfer(total_gas, total_txs)
    );
    Ok(())
}

fn per_transfer(gas: u128, transfers: u64) -> String {
    if transfers == 0 {
        "-".into()
    } else {
        format!("{:.0}", gas as f64 / transfers as f64)
    }
}

/// The node's Prometheus counters (unlabelled and labelled names as written).
async fn scrape(args: &BenchArgs) -> Result<BTreeMap<String, f64>> {
    let url = format!(
        "{}/metrics",
        args.admin
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/')
    );
    let mut request = reqwest_lite(&url, args.admin_token.as_deref())?;
    let text = request.send().await?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect())
}

/// A tiny GET over HTTP/1.1 (the CLI has no HTTP client of its own besides jsonrpsee's).
struct Get {
    host: String,
    path: String,
    token: Option<String>,
}

fn reqwest_lite(url: &str, token: Option<&str>) -> Result<Get> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| eyre!("--admin must be an http:// URL"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    Ok(Get {
        host: host.to_owned(),
        path: format!("/{path}"),
        token: token.map(str::to_owned),
    })
}

impl Get {
    async fn send(&mut self) -> Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(&self.host).await?;
        let auth = self
            .token
            .as_ref()
            .map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\n{auth}Connection: close\r\n\r\n",
            self.path, self.host
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| eyre!("bad HTTP response"))?;
        if !head.starts_with("HTTP/1.1 200") {
            bail!(
                "GET {}: {}",
                self.path,
                head.lines().next().unwrap_or_default()
            );
        }
        Ok(body.to_owned())
    }
}

async fn worker(
    share: Share,
    rpc: &str,
    transport: Transport,
    batch: usize,
    rate: Option<f64>,
    phase: f64,
    tally: &Tally,
) -> Result<()> {
    let interval = rate.map(|r| Duration::from_secs_f64(batch as f64 / r.max(0.001)));
    // Workers are spread over one interval so the offered load is smooth, not bursts of
    // one request per worker at the same instant.
    let mut next = Instant::now() + interval.map_or(Duration::ZERO, |i| i.mul_f64(phase));
    let pace = |next: &mut Instant| {
        let wait = interval.map(|i| {
            *next += i;
            next.saturating_duration_since(Instant::now())
        });
        async move {
            if let Some(wait) = wait {
                tokio::time::sleep(wait).await;
            }
        }
    };
    match transport {
        Transport::Ws => {
            let url = rpc
                .replacen("http://", "ws://", 1)
                .replacen("https://", "wss://", 1);
            let client = WsClientBuilder::default().build(&url).await?;
            for tx in share {
                pace(&mut next).await;
                let t = Instant::now();
                tally.sent.fetch_add(1, Ordering::Relaxed);
                match client.send_transfer(tx).await {
                    Ok(_) => record(tally, t, 1),
                    Err(e) => tally.error(error_key(&e)),
                }
            }
        }
        Transport::Http if batch == 1 => {
            let client = HttpClientBuilder::default().build(rpc)?;
            for tx in share {
                pace(&mut next).await;
                let t = Instant::now();
                tally.sent.fetch_add(1, Ordering::Relaxed);
                match client.send_transfer(tx).await {
                    Ok(_) => record(tally, t, 1),
                    Err(e) => tally.error(error_key(&e)),
                }
            }
        }
        Transport::Http => {
            let client = HttpClientBuilder::default()
                .max_request_size(64 * 1024 * 1024)
                .max_response_size(64 * 1024 * 1024)
                .build(rpc)?;
            // A batch must not hold two transfers of one sender (their order in a batch is
            // not guaranteed): the share is ordered round-robin over its senders, so chunks
            // no larger than the number of senders are safe.
            for chunk in share.chunks(batch) {
                pace(&mut next).await;
                let mut request = BatchRequestBuilder::new();
                for tx in chunk {
                    request.insert(method::SEND_TRANSFER, [tx])?;
                }
                let t = Instant::now();
                tally.sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                match client.batch_request::<serde_json::Value>(request).await {
                    Ok(response) => {
                        let mut ok = 0;
                        for entry in response.into_iter() {
                            match entry {
                                Ok(_) => ok += 1,
                                Err(e) => tally.error(format!("code {}", e.code())),
                            }
                        }
                        record(tally, t, ok);
                    }
                    Err(e) => {
                        for _ in chunk {
                            tally.error(error_key(&e));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn record(tally: &Tally, started: Instant, acked: u64) {
    tally.acked.fetch_add(acked, Ordering::Relaxed);
    let us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
    if let Ok(mut l) = tally.latencies_us.lock() {
        l.push(us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.txt");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    const A: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    const B: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

    #[test]
    fn recipients_are_never_the_sender_and_random_ones_cover_every_account() {
        for accounts in [2, 3, 10, 1_000] {
            for sender in [0, 1, accounts - 1] {
                assert_eq!(
                    recipient(Recipients::Ring, sender, 7, accounts),
                    (sender + 1) % accounts
                );
            }
        }
        for accounts in [2, 3, 100] {
            let mut hits = vec![0u32; accounts];
            for index in 0..100 * accounts {
                let sender = index % accounts;
                let to = recipient(Recipients::Random, sender, index, accounts);
                assert!(to < accounts && to != sender, "{index}: {sender} -> {to}");
                hits[to] += 1;
            }
            // Uniform: about 100 each; a bias or a constant offset would leave some far off.
            assert!(hits.iter().all(|&h| (60..=140).contains(&h)), "{hits:?}");
        }
        // The same transfer pays the same account on every run.
        assert_eq!(
            recipient(Recipients::Random, 5, 12_345, 10_000),
            recipient(Recipients::Random, 5, 12_345, 10_000)
        );
    }

    #[test]
    fn keys_file_skips_comments_and_blank_lines() {
        let (_dir, path) = write(&format!("# bench wallets\n{A}\n\n  {B}  \n"));
        let keys = read_keys(&path).unwrap();
        let want: Vec<alloy::primitives::Address> = [A, B]
            .iter()
            .map(|k| k.parse::<PrivateKeySigner>().unwrap().address())
            .collect();
        assert_eq!(keys.iter().map(|k| k.address()).collect::<Vec<_>>(), want);
    }

    #[test]
    fn keys_file_refuses_bad_keys_duplicates_and_too_few() {
        let (_dir, path) = write(&format!("{A}\nnot-a-key\n"));
        let err = read_keys(&path).unwrap_err().to_string();
        assert!(err.contains("line 2: not a hex private key"), "{err}");

        let (_dir, path) = write(&format!("{A}\n{B}\n{A}\n"));
        let err = read_keys(&path).unwrap_err().to_string();
        assert!(err.contains("line 3: a key listed twice"), "{err}");

        let (_dir, path) = write(&format!("{A}\n"));
        let err = read_keys(&path).unwrap_err().to_string();
        assert!(err.contains("holds 1 keys"), "{err}");
    }
}
