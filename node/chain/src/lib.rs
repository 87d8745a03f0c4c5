//! Stablelane's link to the L2.
//!
//! [`Watcher`] reads the settlement contract's deposit and forced-withdrawal queues and hands
//! each entry to the sequencer exactly once, in queue order, and only once it is `N` blocks
//! deep. [`Settler`] seals batches by age and commits them in order with the operator key,
//! following each to committed and finalized.

pub mod settler;
pub mod watcher;

pub use settler::{commit_call, SettleReport, Settler, SettlerConfig, SettlerError};
pub use watcher::{StepReport, Watcher, WatcherConfig, WatcherError};
