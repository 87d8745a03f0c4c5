//! Stablelane's JSON-RPC server.
//!
//! The wallet API (`lane_*` and `eth_chainId`) is served over HTTP and WebSocket on one
//! port; the operator API (`admin_*`) on a separate port behind a bearer token. Handlers
//! parse parameters from raw JSON, verify EIP-712 signatures before anything reaches the
//! sequencer, and map every failure to the stable code table ([`stablelane::ErrorCode`],
//! mapped in [`error`], documented in `docs/rpc.md`). The admin port also serves the
//! Prometheus exposition at `GET /metrics` ([`metrics`]). Every resource is bounded: request and
//! response size, connections, subscriptions per connection, batch length.
//!
//! Not here: the ledger rules (the `stablelane-ledger` crate), ordering and durability (the
//! sequencer), batches (the sequencer and the settler), installing a tracing subscriber
//! (the binary's job).

pub mod auth;
mod batch;
pub mod error;
mod methods;
pub mod metrics;
mod params;
pub mod prover;

use std::{net::SocketAddr, sync::Arc};

use alloy::primitives::Address;
use jsonrpsee::server::{BatchRequestConfig, ServerBuilder, ServerConfig, ServerHandle};
use serde::{Deserialize, Serialize};
use stablelane_sequencer::Sequencer;
use tracing::info;

pub use auth::{AdminToken, BearerAuthLayer};
pub use error::RpcError;

/// Where the wallet API reads the time: Unix seconds.
pub type Clock = fn() -> u64;

/// The system clock, in Unix seconds (0 before 1970).
pub fn system_clock_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Metadata of a supported token that the ledger does not keep (the configuration's view;
/// clients see [`stablelane::rpc::TokenInfo`], which adds the minimum fee).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// ERC-20 address.
    pub address: Address,
    /// Ticker, e.g. `"USDC"`.
    pub symbol: String,
    /// Decimals of the token's human amounts.
    pub decimals: u8,
}

/// Bounds on what clients can make the server hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body (HTTP) or message (WebSocket) accepted.
    pub request_body_max_bytes: u32,
    /// Largest response produced; larger ones are replaced by an error.
    pub response_body_max_bytes: u32,
    /// Most simultaneous connections.
    pub connections_max: u32,
    /// Most subscriptions per WebSocket connection.
    pub subscriptions_per_connection_max: u32,
    /// Most calls in one batch request.
    pub batch_requests_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_body_max_bytes: 64 * 1024,
            response_body_max_bytes: 1024 * 1024,
            connections_max: 1_000,
            subscriptions_per_connection_max: 64,
            batch_requests_max: 50,
        }
    }
}

/// Settings of the RPC servers.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// Address of the wallet API (HTTP and WebSocket).
    pub listen: SocketAddr,
    /// Address of the admin API.
    pub admin_listen: SocketAddr,
    /// Bearer token of the admin API.
    pub admin_token: AdminToken,
    /// The operator's (committer's) address.
    pub operator: Address,
    /// Metadata of the supported tokens (minimum fees come from the ledger).
    pub tokens: Vec<TokenInfo>,
    /// Bounds of the wallet API.
    pub limits: Limits,
    /// Bounds of the admin API.
    pub admin_limits: Limits,
    /// Development only: serve `admin_devDeposit`, which credits deposits that did not come
    /// from the chain (for local tests without a chain watcher). Never enable in production.
    pub dev_deposits: bool,
    /// The prover pool behind `lane_proveBalance` (`None`: the method answers
    /// `prover_disabled`). The sequencer must keep sealed states
    /// (`SequencerConfig::sealed_history`).
    pub prover: Option<Arc<prover::Prover>>,
}

/// Errors starting the servers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A listening socket could not be bound.
    #[error("cannot listen: {0}")]
    Bind(#[from] std::io::Error),
    /// The sequencer's EIP-712 domain lacks a chain id or verifying contract.
    #[error("the sequencer's domain has no chain id or verifying contract")]
    IncompleteDomain,
    /// A method could not be registered (a bug).
    #[error("registering methods: {0}")]
    Register(#[from] jsonrpsee::core::RegisterMethodError),
}

/// The running servers.
#[derive(Debug)]
pub struct RpcServer {
    addr: SocketAddr,
    admin_addr: SocketAddr,
    handle: ServerHandle,
    admin_handle: ServerHandle,
}

impl RpcServer {
    /// Binds both servers and starts serving `sequencer`. Must run inside a tokio runtime.
    pub async fn start(config: RpcConfig, sequencer: Sequencer) -> Result<Self, StartError> {
        Self::start_with_clock(config, sequencer, system_clock_s).await
    }

    /// As [`RpcServer::start`], with the wallet API reading the time from `clock` where it
    /// checks the expiries of owner authentications and proof requests (and ends receipt
    /// subscriptions). For reproducible examples and tests; a node uses the system clock.
    pub async fn start_with_clock(
        config: RpcConfig,
        sequencer: Sequencer,
        clock: Clock,
    ) -> Result<Self, StartError> {
        let context = Arc::new(methods::Context::new(&config, sequencer, clock)?);

        let server = ServerBuilder::with_config(server_config(&config.limits))
            .set_rpc_middleware(
                jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new().layer(
                    batch::ConcurrentBatchLayer {
                        response_max_bytes: config.limits.response_body_max_bytes as usize,
                    },
                ),
            )
            .build(config.listen)
            .await?;
        let addr = server.local_addr()?;
        let handle = server.start(methods::wallet_module(context.clone())?);

        let render: metrics::Render = {
            let context = context.clone();
            Arc::new(move || {
                let mut out = context.metrics.render(&context.sequencer_metrics());
                if let Some(prover) = &context.prover {
                    metrics::render_prover(&mut out, prover);
                }
                out
            })
        };
        let admin_middleware = tower::ServiceBuilder::new()
            .layer(BearerAuthLayer::new(config.admin_token.clone()))
            .layer(metrics::MetricsLayer::new(render));
        let admin = ServerBuilder::with_config(
            ServerConfig::builder()
                .http_only()
                .max_request_body_size(config.admin_limits.request_body_max_bytes)
                .max_response_body_size(config.admin_limits.response_body_max_bytes)
                .max_connections(config.admin_limits.connections_max)
                .set_batch_request_config(BatchRequestConfig::Limit(
                    config.admin_limits.batch_requests_max,
                ))
                .build(),
        )
        .set_http_middleware(admin_middleware)
        .build(config.admin_listen)
        .await?;
        let admin_addr = admin.local_addr()?;
        let admin_handle = admin.start(methods::admin_module(context)?);

        info!(target: "rpc", %addr, %admin_addr, "rpc servers listening");
        Ok(Self {
            addr,
            admin_addr,
            handle,
            admin_handle,
        })
    }

    /// Address of the wallet API.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Address of the admin API.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Stops both servers and waits until they have stopped.
    pub async fn stop(self) {
        // Already stopped is fine.
        let _ = self.handle.stop();
        let _ = self.admin_handle.stop();
        self.handle.stopped().await;
        self.admin_handle.stopped().await;
        info!(target: "rpc", "rpc servers stopped");
    }
}

fn server_config(limits: &Limits) -> ServerConfig {
    ServerConfig::builder()
        .max_request_body_size(limits.request_body_max_bytes)
        .max_response_body_size(limits.response_body_max_bytes)
        .max_connections(limits.connections_max)
        .max_subscriptions_per_connection(limits.subscriptions_per_connection_max)
        .set_batch_request_config(BatchRequestConfig::Limit(limits.batch_requests_max))
        .build()
}
