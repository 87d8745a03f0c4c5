//! The integration tests of `stablelane-cli`: one test binary (linked once), a module per area.

mod attest;
mod cli;
mod common;
mod crash;
mod devnet;
mod exit;
mod keys;
