//! The integration tests of `stablelane-sequencer`: one test binary (linked once), a module per area.

mod common;
mod sequencer;
mod snapshots;
