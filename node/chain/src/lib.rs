//! Stablelane's link to the L2.
//!
//! [`Watcher`] reads the settlement contract's deposit and forced-withdrawal queues and hands
//! each entry to the sequencer exactly once, in queue order, and only once its block is final
//! on the L2 ([`FinalityMode`]: the `finalized` or `safe` block tag, or `N` confirmations).
//! [`Settler`] seals batches by age and commits them in order with the operator key,
//! following each to committed and finalized (at the same finality head). [`chain_sync`] rebuilds the state tree of
//! leaf hashes from the chain alone, checking every committed batch against its calldata:
//! how anyone watches the operator.

pub mod finality;
pub mod settler;
pub mod sync;
pub mod watcher;

pub use finality::{FinalityHead, FinalityMode};
pub use settler::{commit_call, SettleReport, Settler, SettlerConfig, SettlerError};
pub use sync::{
    chain_sync, BatchSummary, ChainSyncConfig, CommitOrigin, SlotNote, SyncError, SyncProgress,
    SyncedState,
};
pub use watcher::{StepReport, Watcher, WatcherConfig, WatcherError};
