//! Stablelane's wallet-facing library.
//!
//! What wallets and other Rust clients share with the node: typed ids, amounts in base
//! units, the EIP-712 messages (transfers, withdrawals, authentication, receipts, the
//! viewing-key message) with signing and signer recovery, and the settlement contracts'
//! bindings. It does no I/O of its own and holds no node logic; the JSON-RPC API traits and
//! typed client join it with the RPC server.

pub mod amount;
pub mod error_codes;
pub mod ids;
pub mod messages;
pub mod signing;

pub use amount::{Amount, AmountError};
pub use error_codes::ErrorCode;
pub use ids::{BatchNumber, Nonce, SequenceNumber, SlotIndex, TxHash};
pub use messages::{
    domain, Authentication, Message, Receipt, Signed, Transfer, TypedDomain, Withdrawal,
};
pub use signing::{sign, SignatureError};
pub use stablelane_contracts as contracts;
