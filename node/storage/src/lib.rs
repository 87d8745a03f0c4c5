//! Stablelane node storage. Today this is the **journal** ([`journal`]): the append-only,
//! checksummed, segmented log that is the ledger's record of truth. Every record is written and
//! `fdatasync`ed before its append is acknowledged (many records share one sync: group commit),
//! and on start-up the journal verifies every segment, truncates a torn tail left by a crash and
//! refuses to open on any other damage, so an acknowledged payment is never lost or skipped. The
//! node rebuilds its state by replaying the journal in sequence order.
//!
//! What it is not: the journal stores opaque byte payloads and knows nothing about transfers,
//! balances or batches (the node encodes and decodes its own records); it is not a database and
//! has no index or random access by key. Materialised state and indexes (sled, rebuildable from
//! the journal) will join this crate as a separate module; nothing here depends on them. It does
//! no async I/O itself: the writer is a dedicated thread, and async callers await a ticket.
//!
//! - [`journal`]: [`Journal`], [`JournalConfig`], [`AppendTicket`], [`Replay`],
//!   [`RecoveryReport`], [`JournalMetrics`] and the on-disk format.
//! - [`SequenceNumber`]: the position of a record in the journal, from 1, without gaps.
//! - [`Error`]: every failure of this crate.

// Bad on-disk bytes must surface as errors, never as panics or overflowing arithmetic.
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

mod error;
pub mod journal;
mod sequence;

pub use error::{Error, Result};
pub use journal::{
    AppendTicket, Corruption, Journal, JournalConfig, JournalMetrics, Record, RecoveryReport,
    Replay, TornTail,
};
pub use sequence::SequenceNumber;
