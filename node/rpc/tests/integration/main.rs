//! The integration tests of `stablelane-rpc`: one test binary (linked once), a module per area.

mod examples;
mod prove;
mod rpc;
