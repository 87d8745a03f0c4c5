//! `stablelane wallet`: a command-line wallet over the node's JSON-RPC API, using the typed
//! client of the `stablelane` library.
//!
//! Amounts are human ("12.5" with `--token USDC`, or "12.5 USDC") and converted with the
//! token's decimals from `lane_chainInfo`. The key comes from `--private-key`, the
//! environment variable `STABLELANE_PRIVATE_KEY`, or an encrypted JSON keystore
//! (`--keystore`, password from `--password-file` or `STABLELANE_KEYSTORE_PASSWORD`). Every
//! receipt is checked against the operator's signature before anything is printed.

use std::{
    path::PathBuf,
    time::{SystemTime, UNIX_EPOCH},
};

use alloy::{
    primitives::{Address, B256},
    signers::local::PrivateKeySigner,
};
use clap::{Args, Subcommand};
use eyre::{bail, eyre, Context as _, Result};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use stablelane::{
    domain,
    rpc::{
        authenticate, Account, ChainInfo, LaneApiClient, SignedReceipt, TokenInfo, TransactionInfo,
        AUTHENTICATION_VALIDITY_DEFAULT_S, GET_ACCOUNT_PURPOSE, GET_TRANSACTION_PURPOSE,
    },
    sign, Amount, Message, Nonce, Signed, Transfer, TxHash, Withdrawal,
};

use crate::receipt_store::ReceiptStore;

/// Default lifetime of a signed message.
const DEFAULT_VALID_FOR_S: u64 = 3_600;

/// Where the wallet's key comes from.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Private key (hex). Prefer the environment variable or a keystore: command lines are
    /// visible to other users of the machine.
    #[arg(
        long,
        env = "STABLELANE_PRIVATE_KEY",
        hide_env_values = true,
        global = true
    )]
    private_key: Option<String>,
    /// Encrypted JSON keystore (as written by `cast wallet import` or geth).
    #[arg(
        long,
        env = "STABLELANE_KEYSTORE",
        global = true,
        conflicts_with = "private_key"
    )]
    keystore: Option<PathBuf>,
    /// File holding the keystore's password (else `STABLELANE_KEYSTORE_PASSWORD`).
    #[arg(long, global = true)]
    password_file: Option<PathBuf>,
}

impl KeyArgs {
    pub(crate) fn signer(&self) -> Result<PrivateKeySigner> {
        if let Some(key) = &self.private_key {
            return key
                .trim()
                .parse()
                .map_err(|_| eyre!("--private-key is not a 32-byte hex private key"));
        }
        if let Some(path) = &self.keystore {
            let password = match &self.password_file {
                Some(file) => std::fs::read_to_string(file)
                    .wrap_err_with(|| format!("reading {}", file.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
                None => std::env::var("STABLELANE_KEYSTORE_PASSWORD").map_err(|_| {
                    eyre!("the keystore needs --password-file or STABLELANE_KEYSTORE_PASSWORD")
                })?,
            };
            return PrivateKeySigner::decrypt_keystore(path, password)
                .map_err(|e| eyre!("cannot decrypt keystore {}: {e}", path.display()));
        }
        bail!("no key: pass --private-key, set STABLELANE_PRIVATE_KEY, or use --keystore")
    }

    /// Whether a key was given at all.
    fn given(&self) -> bool {
        self.private_key.is_some() || self.keystore.is_some()
    }
}

/// `stablelane wallet …`
#[derive(Debug, Args)]
pub struct WalletArgs {
    /// The node's JSON-RPC URL.
    #[arg(
        long,
        env = "STABLELANE_RPC_URL",
        default_value = "http://127.0.0.1:8645",
        global = true
    )]
    rpc: String,
    /// Where the wallet keeps every receipt it gets (default
    /// `$XDG_DATA_HOME/stablelane/receipts`, else `~/.local/share/stablelane/receipts`); one
    /// directory per deployment and owner inside.
    #[arg(long, env = "STABLELANE_RECEIPTS_DIR", global = true)]
    receipts_dir: Option<PathBuf>,
    #[command(flatten)]
    key: KeyArgs,
    #[command(subcommand)]
    command: WalletCommand,
}

#[derive(Debug, Subcommand)]
enum WalletCommand {
    /// Prints the wallet's address.
    Address,
    /// Prints the wallet's balance and next nonce (the node answers only the owner: the
    /// request is authenticated with the wallet's key).
    Balance {
        /// Token symbol or address (default: the node's only token).
        #[arg(long)]
        token: Option<String>,
    },
    /// Sends a transfer; prints its transaction hash.
    Transfer(TransferArgs),
    /// Sends a withdrawal to an L2 address; prints its transaction hash.
    Withdraw(WithdrawArgs),
    /// Prints a transaction's status, and its receipt when the wallet's key (if given) is
    /// the sender's.
    Status {
        /// Transaction hash.
        tx_hash: B256,
    },
    /// Prints a signed message without sending it.
    #[command(subcommand)]
    Sign(SignCommand),
    /// Registers the wallet's viewing key with the node (done automatically before every
    /// transfer and withdrawal): from then on the batch data carries this wallet's balance
    /// notes encrypted to it, so it can rebuild its leaf from chain data alone.
    Register,
    /// Asks the node for a private balance attestation: a Groth16 proof that the wallet holds
    /// at least --threshold of the token in a committed batch's root, bound to a challenge.
    /// Writes the attestation JSON (check it with `stablelane verify-attestation`).
    Attest(AttestArgs),
    /// In exodus mode, exits with the wallet's whole balance of a token in the exit root (the
    /// last batch finalized when exodus began; later ones are void), proven from chain data
    /// and the wallet's key alone: the node is not needed. Pays the wallet's address, or --to
    /// (for example when the wallet cannot receive the token).
    Exit(ExitArgs),
    /// Refunds a deposit made to this wallet that the ledger refused (a batch listed it), or,
    /// in exodus mode, one no finalized batch consumed. Pays the wallet, or --to.
    Refund(RefundArgs),
    /// Claims on the L2 the withdrawals of a finalized batch: one withdrawal by its
    /// transaction hash, or with --batch all of a batch's withdrawals to the recipient.
    /// The wallet's key pays the gas; the tokens go to the withdrawal's recipient.
    Claim(ClaimArgs),
    /// Lists the receipts the wallet kept (every receipt of `transfer`, `withdraw` and
    /// `status`, and with --follow those the node pushes: payments received, deposits
    /// credited, forced payouts), each checked against the node's receipt signer. They are
    /// the wallet's evidence should a batch ever show its balance lowered.
    Receipts(ReceiptsArgs),
}

#[derive(Debug, Args)]
struct ReceiptsArgs {
    /// Only this token's (symbol or address).
    #[arg(long)]
    token: Option<String>,
    /// Print the signed receipts as JSON (one array) instead of a table.
    #[arg(long)]
    json: bool,
    /// First subscribe to the node's receipts for this wallet (WebSocket) and keep each one
    /// as it arrives, until Ctrl-C or --follow-for seconds.
    #[arg(long)]
    follow: bool,
    /// With --follow: stop after this many seconds.
    #[arg(long, requires = "follow")]
    follow_for: Option<u64>,
}

#[derive(Debug, Args)]
struct AttestArgs {
    /// Token symbol or address (default: the node's only token).
    #[arg(long)]
    token: Option<String>,
    /// The lower bound to prove, in human units ("20" or "20.5").
    #[arg(long)]
    threshold: String,
    /// The verifier's 32-byte challenge (default: 32 random bytes, printed on stderr).
    #[arg(long)]
    challenge: Option<B256>,
    /// A committed batch to prove under (default: the latest committed one).
    #[arg(long, default_value_t = 0)]
    batch: u64,
    /// Write the attestation here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ExitArgs {
    /// The L2's JSON-RPC URL.
    #[arg(long, env = "STABLELANE_L2_RPC_URL")]
    l2_rpc: String,
    /// The settlement contract.
    #[arg(long, env = "STABLELANE_SETTLEMENT")]
    settlement: Address,
    /// The token to exit with.
    #[arg(long)]
    token: Address,
    /// Who receives the tokens (default: the wallet's own address). The proof is bound to
    /// it: the contract pays this address and no other.
    #[arg(long)]
    to: Option<Address>,
    /// The settlement contract's deployment block (where chain-sync starts).
    #[arg(long, default_value_t = 0)]
    from_block: u64,
    /// Groth16 proving key file of the deployment (checked against the deployed verifier).
    #[arg(long, required_unless_present = "insecure_dev_keys")]
    proving_key: Option<PathBuf>,
    /// Use the INSECURE deterministic dev setup's keys (devnets only).
    #[arg(long, conflicts_with = "proving_key")]
    insecure_dev_keys: bool,
    /// Go on when the deployed verifier uses the INSECURE dev setup's keys on a chain whose
    /// id is not anvil's (31337): a test chain, never one holding real money.
    #[arg(long)]
    allow_dev_keys_off_devnet: bool,
}

#[derive(Debug, Args)]
struct RefundArgs {
    /// The deposit's index in the contract's deposit queue (its `Deposited` event says it;
    /// the node logs a refused deposit's `queue_index`).
    #[arg(long)]
    index: u64,
    /// Who receives the refund (default: the wallet, the deposit's recipient).
    #[arg(long)]
    to: Option<Address>,
    /// The L2's JSON-RPC URL.
    #[arg(long, env = "STABLELANE_L2_RPC_URL")]
    l2_rpc: String,
    /// The settlement contract.
    #[arg(long, env = "STABLELANE_SETTLEMENT")]
    settlement: Address,
}

#[derive(Debug, Args)]
struct ClaimArgs {
    /// The withdrawal's transaction hash.
    #[arg(required_unless_present = "batch")]
    tx_hash: Option<B256>,
    /// Claim every withdrawal of this batch paying --recipient.
    #[arg(long, conflicts_with = "tx_hash")]
    batch: Option<u64>,
    /// Recipient whose withdrawals to claim with --batch (default: the wallet's address).
    #[arg(long, requires = "batch")]
    recipient: Option<Address>,
    /// The L2's JSON-RPC URL.
    #[arg(long, env = "STABLELANE_L2_RPC_URL")]
    l2_rpc: String,
}

#[derive(Debug, Subcommand)]
enum SignCommand {
    /// A transfer.
    Transfer(TransferArgs),
    /// A withdrawal.
    Withdrawal(WithdrawArgs),
}

/// What every signed message needs besides its own fields.
#[derive(Debug, Args)]
struct Common {
    /// Amount: "1.25" (with --token) or "1.25 USDC".
    #[arg(long)]
    amount: String,
    /// Token symbol or address.
    #[arg(long)]
    token: Option<String>,
    /// Fee in human units (default: the node's quote).
    #[arg(long)]
    fee: Option<String>,
    /// Nonce (default: the account's next nonce, asked from the node).
    #[arg(long)]
    nonce: Option<u64>,
    /// Seconds the message stays valid.
    #[arg(long, default_value_t = DEFAULT_VALID_FOR_S)]
    valid_for: u64,
}

#[derive(Debug, Args)]
struct TransferArgs {
    /// Recipient.
    #[arg(long)]
    to: Address,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct WithdrawArgs {
    /// L2 address that may claim the tokens (default: the wallet's own).
    #[arg(long)]
    recipient: Option<Address>,
    #[command(flatten)]
    common: Common,
}

struct Session {
    client: HttpClient,
    info: ChainInfo,
    url: String,
    receipts_base: Option<PathBuf>,
}

impl Session {
    async fn connect(url: &str, receipts_base: Option<PathBuf>) -> Result<Self> {
        let client = HttpClientBuilder::default()
            .build(url)
            .wrap_err_with(|| format!("bad RPC URL {url}"))?;
        let info = client
            .chain_info()
            .await
            .wrap_err_with(|| format!("cannot reach the node at {url}"))?;
        Ok(Self {
            client,
            info,
            url: url.to_owned(),
            receipts_base,
        })
    }

    /// `owner`'s receipt store on this deployment.
    fn receipts(&self, owner: Address) -> Result<ReceiptStore> {
        let base = match &self.receipts_base {
            Some(base) => base.clone(),
            None => crate::receipt_store::default_base()?,
        };
        ReceiptStore::open(&base, self.info.chain_id, self.info.settlement, owner)
    }

    /// Keeps a checked receipt of `owner`'s.
    fn keep(&self, owner: Address, receipt: &SignedReceipt) -> Result<()> {
        let store = self.receipts(owner)?;
        store
            .save(receipt)
            .wrap_err_with(|| format!("keeping the receipt in {}", store.dir().display()))?;
        Ok(())
    }

    fn token(&self, wanted: Option<&str>) -> Result<&TokenInfo> {
        match wanted {
            Some(w) => self.info.token(w).ok_or_else(|| {
                let known: Vec<&str> = self.info.tokens.iter().map(|t| t.symbol.as_str()).collect();
                eyre!(
                    "unknown token {w:?} (this node supports {})",
                    known.join(", ")
                )
            }),
            None => match self.info.tokens.as_slice() {
                [only] => Ok(only),
                _ => bail!("the node supports several tokens: pass --token"),
            },
        }
    }

    fn domain(&self) -> alloy::sol_types::Eip712Domain {
        domain(self.info.chain_id, self.info.settlement)
    }

    /// Parses `"1.25"`/`"1.25 USDC"` against `--token`; returns the token and base units.
    fn amount(&self, text: &str, token: Option<&str>) -> Result<(TokenInfo, Amount)> {
        let mut parts = text.split_whitespace();
        let number = parts.next().ok_or_else(|| eyre!("empty amount"))?;
        let suffix = parts.next();
        if parts.next().is_some() {
            bail!("amount {text:?}: expected \"<number>\" or \"<number> <token>\"");
        }
        let token = match (suffix, token) {
            (Some(a), Some(b))
                if self.info.token(a).map(|t| t.address)
                    != self.info.token(b).map(|t| t.address) =>
            {
                bail!("amount says {a} but --token says {b}")
            }
            (Some(a), _) => self.token(Some(a))?,
            (None, b) => self.token(b)?,
        }
        .clone();
        let amount = Amount::from_human(number, token.decimals)
            .map_err(|e| eyre!("amount {number:?}: {e}"))?;
        Ok((token, amount))
    }

    /// The owner-only account of `key` (authenticated with `key`).
    async fn account(&self, key: &PrivateKeySigner, token: Address) -> Result<Account> {
        let auth = authenticate(
            key,
            GET_ACCOUNT_PURPOSE,
            AUTHENTICATION_VALIDITY_DEFAULT_S,
            &self.domain(),
        )?;
        self.client
            .get_account(key.address(), token, auth)
            .await
            .map_err(rpc_error)
    }

    /// A transaction's status, authenticated with `key` when given (then the receipt comes
    /// too if `key` sent it, and is checked).
    async fn transaction(
        &self,
        key: Option<&PrivateKeySigner>,
        hash: B256,
    ) -> Result<TransactionInfo> {
        let auth = key
            .map(|key| {
                authenticate(
                    key,
                    GET_TRANSACTION_PURPOSE,
                    AUTHENTICATION_VALIDITY_DEFAULT_S,
                    &self.domain(),
                )
            })
            .transpose()?;
        let info = self
            .client
            .get_transaction(TxHash(hash), auth)
            .await
            .map_err(rpc_error)?;
        if let Some(receipt) = &info.receipt {
            self.check(receipt, hash)?;
        }
        Ok(info)
    }

    async fn prepare(
        &self,
        key: &PrivateKeySigner,
        common: &Common,
    ) -> Result<(TokenInfo, Amount, Amount, Nonce, u64)> {
        let (token, amount) = self.amount(&common.amount, common.token.as_deref())?;
        let fee = match &common.fee {
            Some(fee) => {
                Amount::from_human(fee, token.decimals).map_err(|e| eyre!("fee {fee:?}: {e}"))?
            }
            None => {
                self.client
                    .estimate_fee(token.address)
                    .await
                    .map_err(rpc_error)?
                    .fee
            }
        };
        let nonce = match common.nonce {
            Some(n) => Nonce(n),
            None => self.account(key, token.address).await?.nonce,
        };
        let valid_until = now_s()
            .checked_add(common.valid_for)
            .ok_or_else(|| eyre!("--valid-for too large"))?;
        Ok((token, amount, fee, nonce, valid_until))
    }

    async fn transfer(
        &self,
        key: &PrivateKeySigner,
        args: &TransferArgs,
    ) -> Result<Signed<Transfer>> {
        let (token, amount, fee, nonce, valid_until) = self.prepare(key, &args.common).await?;
        let message = Transfer {
            from: key.address(),
            to: args.to,
            token: token.address,
            amount,
            fee,
            nonce,
            valid_until,
        };
        Ok(sign(key, message, &self.domain())?)
    }

    async fn withdrawal(
        &self,
        key: &PrivateKeySigner,
        args: &WithdrawArgs,
    ) -> Result<Signed<Withdrawal>> {
        let (token, amount, fee, nonce, valid_until) = self.prepare(key, &args.common).await?;
        let message = Withdrawal {
            from: key.address(),
            recipient: args.recipient.unwrap_or(key.address()),
            token: token.address,
            amount,
            fee,
            nonce,
            valid_until,
        };
        Ok(sign(key, message, &self.domain())?)
    }

    /// Registers the wallet's viewing key (idempotent: the node journals it once).
    async fn register(&self, key: &PrivateKeySigner) -> Result<()> {
        use alloy::{signers::SignerSync, sol_types::SolStruct};
        let hash = stablelane::messages::viewing_key_message(key.address())
            .eip712_signing_hash(&self.domain());
        let signature = key
            .sign_hash_sync(&hash)
            .map_err(|e| eyre!("signing the viewing-key message: {e}"))?;
        self.client
            .register_viewing_key(key.address(), signature)
            .await
            .map_err(rpc_error)?;
        Ok(())
    }

    /// Checks the receipt is the operator's and for `expected`.
    fn check(&self, receipt: &SignedReceipt, expected: B256) -> Result<TxHash> {
        receipt
            .verify(self.info.receipt_signer, &self.domain())
            .map_err(|e| {
                eyre!("the node's receipt does not check against the receipt signer: {e}")
            })?;
        if receipt.receipt.tx_hash.0 != expected {
            bail!("the node's receipt is for another transaction");
        }
        Ok(receipt.receipt.tx_hash)
    }
}

/// `wallet receipts`: optionally follows the node's receipts for a while, then lists the
/// kept ones, each checked again.
async fn receipts(session: &Session, key: &PrivateKeySigner, args: &ReceiptsArgs) -> Result<()> {
    let store = session.receipts(key.address())?;
    if args.follow {
        follow_receipts(session, key, &store, args.follow_for).await?;
    }
    let token = args
        .token
        .as_deref()
        .map(|t| session.token(Some(t)).cloned())
        .transpose()?;
    let kept: Vec<SignedReceipt> = store
        .list()?
        .into_iter()
        .filter(|r| token.as_ref().is_none_or(|t| r.receipt.token == t.address))
        .collect();
    for r in &kept {
        r.verify(session.info.receipt_signer, &session.domain())
            .map_err(|e| {
                eyre!(
                    "the kept receipt of sequence {} does not check against the receipt signer {}: {e}",
                    r.receipt.sequence,
                    session.info.receipt_signer
                )
            })?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&kept)?);
        return Ok(());
    }
    eprintln!("{} receipts in {}", kept.len(), store.dir().display());
    println!(
        "{:>10}  {:<9}  {:>8}  {:>6}  {:>20}  tx",
        "sequence", "kind", "token", "nonce", "balance"
    );
    for r in &kept {
        let e = &r.receipt;
        let (symbol, balance) = match session.info.tokens.iter().find(|t| t.address == e.token) {
            Some(t) => (t.symbol.clone(), e.balance.to_human(t.decimals)),
            None => (format!("{:#x}", e.token), e.balance.to_string()),
        };
        println!(
            "{:>10}  {:<9}  {:>8}  {:>6}  {:>20}  {}",
            e.sequence,
            e.kind.as_str(),
            symbol,
            e.nonce.get(),
            balance,
            e.tx_hash
        );
    }
    Ok(())
}

/// Subscribes to `key`'s receipts over WebSocket and keeps each checked one, until Ctrl-C,
/// `seconds` or the subscription's end (its authentication expires after an hour).
async fn follow_receipts(
    session: &Session,
    key: &PrivateKeySigner,
    store: &ReceiptStore,
    seconds: Option<u64>,
) -> Result<()> {
    use jsonrpsee::ws_client::WsClientBuilder;
    use stablelane::rpc::SUBSCRIBE_PURPOSE;
    let url = session
        .url
        .replacen("https://", "wss://", 1)
        .replacen("http://", "ws://", 1);
    let client = WsClientBuilder::default()
        .build(&url)
        .await
        .wrap_err_with(|| format!("cannot open a WebSocket to the node at {url}"))?;
    let auth = authenticate(
        key,
        SUBSCRIBE_PURPOSE,
        AUTHENTICATION_VALIDITY_DEFAULT_S,
        &session.domain(),
    )?;
    let mut subscription = client
        .subscribe_receipts(
            stablelane::rpc::SUBSCRIBE_RECEIPTS.to_owned(),
            key.address(),
            auth,
        )
        .await
        .map_err(rpc_error)?;
    eprintln!(
        "following the receipts of {} (Ctrl-C stops)…",
        key.address()
    );
    let deadline = seconds.map(|s| tokio::time::Instant::now() + std::time::Duration::from_secs(s));
    loop {
        let next = async {
            tokio::select! {
                item = subscription.next() => Some(item),
                _ = tokio::signal::ctrl_c() => None,
            }
        };
        let item = match deadline {
            // Past the deadline: stop as on Ctrl-C.
            Some(at) => tokio::time::timeout_at(at, next).await.unwrap_or_default(),
            None => next.await,
        };
        let Some(Some(item)) = item else { break };
        let notification = item.wrap_err("the node's receipt subscription")?;
        let receipt = notification.receipt;
        receipt
            .verify(session.info.receipt_signer, &session.domain())
            .map_err(|e| {
                eyre!("a pushed receipt does not check against the receipt signer: {e}")
            })?;
        if receipt.receipt.owner != key.address() {
            bail!(
                "the node pushed a receipt of {}, not of this wallet",
                receipt.receipt.owner
            );
        }
        if store.save(&receipt)? {
            eprintln!(
                "kept the {} receipt of sequence {}",
                receipt.receipt.kind.as_str(),
                receipt.receipt.sequence
            );
        }
    }
    Ok(())
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Signs a `ProveBalance` request, asks the node, writes the attestation.
async fn attest(session: &Session, key: &PrivateKeySigner, args: &AttestArgs) -> Result<()> {
    let token = session.token(args.token.as_deref())?.clone();
    let threshold = Amount::from_human(&args.threshold, token.decimals)
        .map_err(|e| eyre!("threshold {:?}: {e}", args.threshold))?;
    let challenge = match args.challenge {
        Some(c) => c,
        None => {
            let c = B256::from(PrivateKeySigner::random().to_bytes().0);
            eprintln!("challenge {c}");
            c
        }
    };
    let request = sign(
        key,
        stablelane::ProveBalance {
            owner: key.address(),
            token: token.address,
            threshold,
            challenge,
            batch: args.batch,
            expiry: now_s() + 300,
        },
        &session.domain(),
    )?;
    eprintln!(
        "asking the node to prove {} holds at least {} {} (a proof takes about a second)…",
        key.address(),
        threshold.to_human(token.decimals),
        token.symbol
    );
    let attestation = session
        .client
        .prove_balance(request)
        .await
        .map_err(rpc_error)?;
    let text = serde_json::to_string_pretty(&attestation)? + "\n";
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).wrap_err_with(|| format!("writing {}", path.display()))?;
            eprintln!(
                "attestation for batch {} written to {}",
                attestation.batch,
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// Formats a JSON-RPC error from the node as `message (code N)`.
fn rpc_error(e: jsonrpsee::core::client::Error) -> eyre::Report {
    match e {
        jsonrpsee::core::client::Error::Call(obj) => {
            eyre!("{} (code {})", obj.message(), obj.code())
        }
        other => eyre!(other),
    }
}

/// Runs a wallet command.
pub async fn run(args: WalletArgs) -> Result<()> {
    if let WalletCommand::Address = args.command {
        println!("{}", args.key.signer()?.address());
        return Ok(());
    }
    if let WalletCommand::Exit(exit_args) = &args.command {
        return exit(&args.key.signer()?, exit_args).await;
    }
    if let WalletCommand::Refund(refund_args) = &args.command {
        return refund(&args.key.signer()?, refund_args).await;
    }
    let session = Session::connect(&args.rpc, args.receipts_dir.clone()).await?;
    match &args.command {
        WalletCommand::Address => {}
        WalletCommand::Balance { token } => {
            let token = session.token(token.as_deref())?.clone();
            let account = session.account(&args.key.signer()?, token.address).await?;
            println!(
                "{} {} ({} base units), next nonce {}",
                account.balance.to_human(token.decimals),
                token.symbol,
                account.balance,
                account.nonce.get()
            );
        }
        WalletCommand::Attest(a) => {
            let key = args.key.signer()?;
            attest(&session, &key, a).await?;
        }
        WalletCommand::Register => {
            let key = args.key.signer()?;
            session.register(&key).await?;
            println!("viewing key of {} registered", key.address());
        }
        WalletCommand::Transfer(t) => {
            let key = args.key.signer()?;
            session.register(&key).await?;
            let signed = session.transfer(&key, t).await?;
            let hash = signed.message.signing_hash(&session.domain());
            let receipt = session
                .client
                .send_transfer(signed)
                .await
                .map_err(rpc_error)?;
            let checked = session.check(&receipt, hash)?;
            session.keep(key.address(), &receipt)?;
            println!("{checked}");
        }
        WalletCommand::Withdraw(w) => {
            let key = args.key.signer()?;
            session.register(&key).await?;
            let signed = session.withdrawal(&key, w).await?;
            let hash = signed.message.signing_hash(&session.domain());
            let receipt = session
                .client
                .send_withdrawal(signed)
                .await
                .map_err(rpc_error)?;
            let checked = session.check(&receipt, hash)?;
            session.keep(key.address(), &receipt)?;
            println!("{checked}");
        }
        WalletCommand::Status { tx_hash } => {
            let key = args.key.given().then(|| args.key.signer()).transpose()?;
            let info = session.transaction(key.as_ref(), *tx_hash).await?;
            if let (Some(key), Some(receipt)) = (&key, &info.receipt) {
                session.keep(key.address(), receipt)?;
            }
            println!("{}", serde_json::to_string_pretty(&info)?);
        }
        WalletCommand::Claim(c) => claim(&session, &args.key.signer()?, c).await?,
        WalletCommand::Receipts(r) => receipts(&session, &args.key.signer()?, r).await?,
        WalletCommand::Exit(_) | WalletCommand::Refund(_) => {}
        WalletCommand::Sign(SignCommand::Transfer(t)) => {
            let signed = session.transfer(&args.key.signer()?, t).await?;
            println!("{}", serde_json::to_string_pretty(&signed)?);
        }
        WalletCommand::Sign(SignCommand::Withdrawal(w)) => {
            let signed = session.withdrawal(&args.key.signer()?, w).await?;
            println!("{}", serde_json::to_string_pretty(&signed)?);
        }
    }
    Ok(())
}

/// A provider for the L2 at `url` that signs with `key`, and the L2's chain id.
pub(crate) async fn connect_l2(
    url: &str,
    key: &PrivateKeySigner,
) -> Result<(impl alloy::providers::Provider + Clone, u64)> {
    use alloy::{
        network::EthereumWallet,
        providers::{Provider, ProviderBuilder},
    };
    let parsed = url
        .parse()
        .map_err(|e| eyre!("bad L2 RPC URL {url}: {e}"))?;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key.clone()))
        .connect_http(parsed);
    let chain_id = provider
        .get_chain_id()
        .await
        .wrap_err_with(|| format!("cannot reach the L2 at {url}"))?;
    Ok((provider, chain_id))
}

/// Claims withdrawals on the L2 with proofs built from the node's copy of the batch, after
/// checking it against the root the contract recorded.
async fn claim(session: &Session, key: &PrivateKeySigner, args: &ClaimArgs) -> Result<()> {
    use stablelane_contracts::{
        batch_data::{withdrawal_proof, withdrawals_root},
        Settlement,
    };

    let (number, wanted) = match (args.tx_hash, args.batch) {
        (Some(hash), _) => {
            let info = session.transaction(Some(key), hash).await?;
            let number = info.batch.ok_or_else(|| {
                eyre!("transaction {hash} is not in a batch yet (status {:?}); try again after the next batch is finalized", info.status)
            })?;
            (number, Some(TxHash(hash)))
        }
        (None, Some(number)) => (number, None),
        (None, None) => bail!("pass a withdrawal's transaction hash or --batch"),
    };
    let batch = session.client.get_batch(number).await.map_err(rpc_error)?;
    let recipient = args.recipient.unwrap_or(key.address());
    let chosen: Vec<_> = batch
        .withdrawals
        .iter()
        .filter(|w| match wanted {
            Some(hash) => w.tx_hash == Some(hash),
            None => w.recipient == recipient,
        })
        .collect();
    if chosen.is_empty() {
        match wanted {
            Some(hash) => {
                bail!("batch {number} pays no withdrawal of transaction {hash} (is it a transfer?)")
            }
            None => bail!("batch {number} pays nothing to {recipient}"),
        }
    }
    let list: Vec<_> = batch
        .withdrawals
        .iter()
        .map(stablelane::rpc::BatchWithdrawal::on_chain)
        .collect();
    let (provider, chain_id) = connect_l2(&args.l2_rpc, key).await?;
    if chain_id != session.info.chain_id {
        bail!(
            "the L2 at {} is chain {chain_id}, the node settles on chain {}",
            args.l2_rpc,
            session.info.chain_id
        );
    }
    let settlement = Settlement::new(session.info.settlement, &provider);
    let last = settlement.lastBatchNumber().call().await?;
    if number > last {
        bail!("batch {number} is not committed on-chain yet (the contract is at batch {last}); status {:?}", batch.status);
    }
    let committed = settlement.batch(number).call().await?;
    if committed.withdrawalsRoot != withdrawals_root(&list) {
        bail!("the node's withdrawal list of batch {number} does not match the root the contract recorded");
    }
    let now = now_s();
    // Includes any outflow-limit delay of this batch or an earlier one.
    let claimable_at = committed.finalizedAt;
    for w in chosen {
        let symbol = session
            .info
            .tokens
            .iter()
            .find(|t| t.address == w.token)
            .map_or_else(
                || w.token.to_string(),
                |t| format!("{} {}", w.amount.to_human(t.decimals), t.symbol),
            );
        if settlement.isClaimed(number, w.index).call().await? {
            println!(
                "already claimed: {symbol} to {} (batch {number}, withdrawal {})",
                w.recipient, w.index
            );
            continue;
        }
        if now < claimable_at {
            bail!(
                "batch {number} is not final yet: withdrawals are claimable from unix time {claimable_at} (in about {} s)",
                claimable_at - now
            );
        }
        let proof = withdrawal_proof(&list, w.index as usize)
            .ok_or_else(|| eyre!("withdrawal {} out of range", w.index))?;
        let pending = settlement
            .claimWithdrawal(
                number,
                w.index,
                w.recipient,
                w.token,
                w.amount.base_units(),
                proof,
            )
            .send()
            .await
            .map_err(
                |e| match e.as_decoded_interface_error::<Settlement::SettlementErrors>() {
                    Some(decoded) => eyre!("the contract refuses the claim: {decoded:?}"),
                    None => eyre!("sending the claim: {e}"),
                },
            )?;
        let receipt = pending.get_receipt().await?;
        if !receipt.status() {
            bail!("claim transaction {} reverted", receipt.transaction_hash);
        }
        println!(
            "claimed {symbol} to {} (batch {number}, withdrawal {}): {}",
            w.recipient, w.index, receipt.transaction_hash
        );
    }
    Ok(())
}

/// Refunds deposit `args.index` to the wallet (its recipient) or `--to`, after checking on
/// the contract that it is refundable: refused by a batch, or in exodus not consumed by a
/// finalized batch.
async fn refund(key: &PrivateKeySigner, args: &RefundArgs) -> Result<()> {
    use stablelane_contracts::Settlement;
    let recipient = key.address();
    let to = args.to.unwrap_or(recipient);
    if to.is_zero() {
        bail!("--to must not be the zero address");
    }
    let (provider, _) = connect_l2(&args.l2_rpc, key).await?;
    let settlement = Settlement::new(args.settlement, &provider);
    let entry = settlement
        .depositEntry(args.index)
        .call()
        .await
        .wrap_err_with(|| format!("reading deposit {}", args.index))?;
    if entry.amount == 0 {
        bail!("deposit {} was refunded already", args.index);
    }
    if !entry.refused {
        let exodus = settlement.exodus().call().await?;
        let consumed = settlement.depositsConsumed().call().await?;
        if !exodus {
            bail!(
                "deposit {} is not refundable: no batch refused it, and the contract is not in exodus mode",
                args.index
            );
        }
        if args.index < consumed {
            bail!(
                "deposit {} was credited by a finalized batch: it is part of the ledger (exit with `wallet exit` instead)",
                args.index
            );
        }
    }
    let receipt = settlement
        .refundDeposit(args.index, recipient, to)
        .send()
        .await
        .map_err(|e| eyre!("refundDeposit (is this wallet the deposit's recipient?): {e}"))?
        .get_receipt()
        .await?;
    if !receipt.status() {
        bail!("refund transaction {} reverted", receipt.transaction_hash);
    }
    println!(
        "refunded deposit {} ({} base units of {}) to {to}: {}",
        args.index, entry.amount, entry.token, receipt.transaction_hash
    );
    Ok(())
}

/// Exodus exit from chain data and the wallet's key: rebuild the tree (chain-sync), open the
/// wallet's last note with its viewing key, recompute its leaf, prove "holds at least its
/// balance" bound to the contract's exit context for (wallet, recipient), and send `exit`
/// paying the recipient (`--to`, default the wallet itself).
async fn exit(key: &PrivateKeySigner, args: &ExitArgs) -> Result<()> {
    use stablelane_circuits::{
        field::{fr_from_be_bytes, fr_to_be_bytes},
        keys, leaf_hash,
        prover::{proof_to_evm, prove},
        AttestationWitness, ChaCha20Rng, SeedableRng,
    };
    use stablelane_contracts::{Groth16Verifier, Settlement};

    let owner = key.address();
    let recipient = args.to.unwrap_or(owner);
    if recipient.is_zero() {
        bail!("--to must not be the zero address");
    }
    let (provider, chain_id) = connect_l2(&args.l2_rpc, key).await?;
    let settlement = Settlement::new(args.settlement, &provider);
    // The deployment's verifier first: a chain that is not a devnet with the INSECURE dev
    // keys is refused before anything else is looked at.
    let verifier = Groth16Verifier::new(settlement.verifier().call().await?, &provider);
    let deployed = verifier.VERIFYING_KEY_HASH().call().await?;
    keys::check_dev_keys_allowed(chain_id, &deployed.0, args.allow_dev_keys_off_devnet).map_err(
        |e| {
            eyre!(
                "the deployed verifier {}: {e} (--allow-dev-keys-off-devnet)",
                verifier.address()
            )
        },
    )?;
    if !settlement.exodus().call().await? {
        bail!("the settlement contract is not in exodus mode (anyone may call activateExodus once a deposit or forced withdrawal is overdue)");
    }
    if settlement.exited(owner, args.token).call().await? {
        bail!("{owner} already exited with token {}", args.token);
    }
    // The context binds the recipient: computed here and checked against the contract's own
    // before any work, so a contract of another version fails now, not after proving.
    let context = stablelane::exit_context(chain_id, args.settlement, owner, recipient);
    let deployed_context = settlement.exitContext(owner, recipient).call().await?;
    if deployed_context != context {
        bail!("the settlement contract computes another exit context ({deployed_context:#x}, expected {context:#x}): it is not the contract version this wallet exits from");
    }

    let (proving_key, verifying_key) = match &args.proving_key {
        Some(path) => {
            let pk = keys::read_proving_key(path)
                .map_err(|e| eyre!("reading the proving key {}: {e}", path.display()))?;
            let vk = pk.vk.clone();
            (pk, vk)
        }
        None => {
            eprintln!("exit: using the INSECURE dev setup keys (devnets only)");
            keys::insecure_dev_setup().map_err(|e| eyre!("dev setup: {e}"))?
        }
    };
    let hash = keys::verifying_key_hash(&verifying_key).map_err(|e| eyre!("key hash: {e}"))?;
    if deployed.0 != hash {
        bail!(
            "the proving key does not match the deployed verifier (key hash {deployed} on-chain)"
        );
    }

    // Exits prove against the last batch nobody voided: the one exodus was activated at.
    let exit_batch = settlement.exodusBatchNumber().call().await?;
    let synced = stablelane::sync::chain_sync(
        &stablelane::sync::ChainSyncConfig {
            l2_rpc_url: args.l2_rpc.clone(),
            settlement: args.settlement,
            from_block: args.from_block,
            max_block_range: 2_000,
            up_to: Some(exit_batch),
        },
        |p| {
            eprintln!(
                "exit: chain-sync batch {}/{}",
                p.batches_done, p.batches_total
            )
        },
    )
    .await
    .wrap_err("rebuilding the state from the chain")?;
    let slot = synced.slot_index(owner, args.token).ok_or_else(|| {
        eyre!(
            "{owner} has no account for token {} in the committed state",
            args.token
        )
    })?;
    let note = synced
        .note(slot)
        .ok_or_else(|| eyre!("no batch carries a note for slot {slot}"))?;
    let domain = domain(chain_id, args.settlement);
    let viewing_key = stablelane::signing::derive_viewing_key(key, &domain)?;
    let (balance, nonce) = stablelane_contracts::batch_body::open_note(
        &viewing_key,
        note.batch,
        slot.into(),
        &note.note,
    );
    let salt = stablelane::salt::derive_salt(&viewing_key, owner, args.token);
    let salt = fr_from_be_bytes(&salt.0).map_err(|e| eyre!("salt: {e}"))?;
    let leaf = leaf_hash(owner.0 .0, args.token.0 .0, balance, nonce, salt);
    if synced.leaf(slot) != Some(B256::from(fr_to_be_bytes(&leaf))) {
        bail!("cannot open this account's leaf with this wallet's viewing key: it was not registered (lane_registerViewingKey) before the last batch that changed the account; only the operator can open it");
    }
    if balance == 0 {
        bail!("nothing to exit: the balance in the exit root (batch {exit_batch}, the last finalized one) is 0");
    }
    let witness = AttestationWitness {
        root: fr_from_be_bytes(&synced.root().0).map_err(|e| eyre!("root: {e}"))?,
        owner: owner.0 .0,
        token: args.token.0 .0,
        threshold: balance,
        context: fr_from_be_bytes(&context.to_be_bytes::<32>())
            .map_err(|e| eyre!("context: {e}"))?,
        balance,
        nonce,
        salt,
        slot,
        path: synced
            .path(slot)
            .ok_or_else(|| eyre!("no Merkle path for slot {slot}"))?,
    };
    let mut seed = [0u8; 32];
    // Fresh OS randomness (the proof must not reuse a fixed seed).
    seed.copy_from_slice(&PrivateKeySigner::random().to_bytes().0);
    let proof = prove(&proving_key, &witness, &mut ChaCha20Rng::from_seed(seed))
        .map_err(|e| eyre!("proving: {e}"))?;
    let words = proof_to_evm(&proof).map(alloy::primitives::U256::from_be_bytes);
    let receipt = settlement
        .exit(args.token, balance, recipient, words)
        .send()
        .await
        .map_err(
            |e| match e.as_decoded_interface_error::<Settlement::SettlementErrors>() {
                Some(decoded) => eyre!("the contract refuses the exit: {decoded:?}"),
                None => eyre!("sending the exit: {e}"),
            },
        )?
        .get_receipt()
        .await?;
    if !receipt.status() {
        bail!("exit transaction {} reverted", receipt.transaction_hash);
    }
    println!(
        "exited with {balance} base units of {} to {recipient} (slot {slot}, root {}): {}",
        args.token,
        synced.root(),
        receipt.transaction_hash
    );
    Ok(())
}
