//! The integration tests of `stablelane-devnet`: one test binary (linked once), a module per area.

mod devnet_cli;
