//! Stablelane's link to the L2.
//!
//! [`Watcher`] reads the settlement contract's deposit and forced-withdrawal queues and hands
//! each entry to the sequencer exactly once, in queue order, and only once its block is final
//! on the L2 ([`FinalityMode`]: the `finalized` or `safe` block tag, or `N` confirmations).
//! [`Settler`] seals batches by age and commits them in order with the operator key,
//! following each to committed and finalized (at the same finality head). Rebuilding the
//! state from the chain alone (chain-sync) is wallet-side: `stablelane::sync`.

pub mod finality;
pub mod settler;
pub mod watcher;

pub use finality::{FinalityHead, FinalityMode};
pub use settler::{commit_call, SettleReport, Settler, SettlerConfig, SettlerError};
pub use watcher::{StepReport, Watcher, WatcherConfig, WatcherError};
