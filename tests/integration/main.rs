//! The end-to-end tests against a real anvil: one test binary (linked once), a module per
//! area.

mod chain_sync;
mod eip712_cast;
mod settlement;
mod settlement_e2e;
