//! Stablelane's wallet-facing library.
//!
//! What wallets and other Rust clients share with the node: the settlement contracts'
//! bindings today; protocol types, EIP-712 messages and the typed JSON-RPC client as the
//! ledger lands. It does no I/O of its own and is not the node.

pub use stablelane_contracts as contracts;
