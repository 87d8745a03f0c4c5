//! Stablelane's link to the L2.
//!
//! [`Watcher`] reads the settlement contract's deposit and forced-withdrawal queues and hands
//! each entry to the sequencer exactly once, in queue order, and only once it is `N` blocks
//! deep. The settler (sealing and committing batches) joins this crate later.

pub mod watcher;

pub use watcher::{StepReport, Watcher, WatcherConfig, WatcherError};
