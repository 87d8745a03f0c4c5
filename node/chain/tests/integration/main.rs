//! The integration tests of `stablelane-chain`: one test binary (linked once), a module per area.

mod watcher;
