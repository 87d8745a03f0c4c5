//! What the sequencer's integration tests share: one token and a small configuration.

use alloy::primitives::{Address, B256};
use stablelane::{domain, Amount};
use stablelane_ledger::LedgerConfig;
use stablelane_sequencer::{SequencerConfig, SnapshotConfig};
use stablelane_storage::JournalConfig;

/// The one supported token (minimum fee 10).
pub const TOKEN: Address = Address::repeat_byte(0xaa);

/// A sequencer in `dir`: small queues, default batch limits, no sealed history, no snapshots.
pub fn config(dir: &std::path::Path) -> SequencerConfig {
    SequencerConfig {
        journal_dir: dir.join("journal"),
        store_dir: dir.join("state.sled"),
        journal: JournalConfig::default(),
        intake_queue_max: 1024,
        group_max: 256,
        ledger: LedgerConfig {
            tokens: [(TOKEN, Amount(10))].into_iter().collect(),
            fee_recipient: Address::repeat_byte(0xee),
            operator_secret: B256::repeat_byte(7),
            slots_max: 10_000,
        },
        domain: domain(31337, Address::repeat_byte(0x11)),
        batch: Default::default(),
        sealed_history: 0,
        snapshot: SnapshotConfig::off(),
    }
}
