//! Stablelane's wallet-facing library.
//!
//! What wallets and other Rust clients share with the node: typed ids, amounts in base
//! units, the EIP-712 messages (transfers, withdrawals, authentication, receipts, the
//! viewing-key message) with signing and signer recovery, and the settlement contracts'
//! bindings, and the JSON-RPC API's shapes. It holds no node logic and does no I/O of its own,
//! except the typed JSON-RPC clients of the `client` feature.

pub mod amount;
pub mod attestation;
pub mod error_codes;
pub mod exit;
pub mod ids;
pub mod messages;
pub mod receipts;
pub mod rpc;
pub mod salt;
pub mod signing;
#[cfg(feature = "chain-sync")]
pub mod sync;

pub use amount::{Amount, AmountError};
pub use attestation::{
    attestation_context, verify_attestation, verify_attestation_proof_only, Attestation,
    AttestationError, CommittedRoots,
};
pub use error_codes::ErrorCode;
pub use exit::exit_context;
pub use ids::{BatchNumber, Nonce, SequenceNumber, SlotIndex, TxHash};
pub use messages::{
    domain, Authentication, Message, ProveBalance, Signed, Transfer, TypedDomain, Withdrawal,
};
pub use receipts::{Receipt, ReceiptGroup, ReceiptKind, SignedGroup, SignedReceipt};
pub use signing::{sign, SignatureError};
pub use stablelane_contracts as contracts;
