//! Why a submission is refused and why the sequencer does not open.

use alloy::primitives::B256;
use stablelane_ledger::Rejection;

use crate::store::StoreError;

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The intake queue is full: retry later.
    #[error("sequencer busy")]
    Busy,
    /// The ledger refused the transaction; nothing was stored.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The sequencer stopped (journal failure or shutdown); restart the node.
    #[error("sequencer stopped: {0}")]
    Stopped(String),
}

/// Errors opening a sequencer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The journal could not be opened.
    #[error("journal: {0}")]
    Journal(#[from] stablelane_storage::Error),
    /// The sled store could not be opened or written.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The data directory belongs to another deployment (chain id or settlement contract).
    #[error("the data directory belongs to another deployment (domain separator {stored}, configured {configured})")]
    WrongDeployment {
        /// Domain separator recorded in the store.
        stored: B256,
        /// Domain separator of the configuration.
        configured: B256,
    },
    /// A journal record does not decode or does not apply: the stored state does not verify.
    #[error("journal record {seq} does not replay: {reason}")]
    Replay {
        /// Its sequence number.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// Balances do not add up to deposits minus withdrawals after replay.
    #[error("supply check failed after replay: {0}")]
    Supply(Rejection),
    /// The tree worker thread could not be started.
    #[error("starting the tree worker: {0}")]
    Thread(std::io::Error),
}
