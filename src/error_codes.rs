//! The stable table of JSON-RPC error codes (documented in `docs/rpc.md`).
//!
//! Standard JSON-RPC 2.0 codes for protocol failures, and application codes from 1000 up,
//! one per reason, never reused or renumbered once shipped. The node maps its internal
//! errors (ledger rejections, signature errors, limits) to these in one place.

/// An error code a Stablelane node answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Malformed JSON.
    ParseError = -32700,
    /// Not a valid JSON-RPC request.
    InvalidRequest = -32600,
    /// Unknown method.
    MethodNotFound = -32601,
    /// Parameters of the wrong shape or type.
    InvalidParams = -32602,
    /// Internal error of the node.
    InternalError = -32603,
    /// The request body exceeds the size limit (jsonrpsee's code; HTTP status 413).
    OversizedRequest = -32007,
    /// A batch has more calls than allowed (jsonrpsee's code).
    BatchTooLarge = -32010,

    /// The signature is not a valid secp256k1 signature of the message (or is high-`s`).
    InvalidSignature = 1001,
    /// The signature is valid but by another account than `from`/`owner`.
    SignerMismatch = 1002,
    /// The message was signed for another chain id.
    WrongChainId = 1003,
    /// The message was signed for another verifying contract.
    WrongVerifyingContract = 1004,
    /// The message was signed for another domain name or version.
    WrongDomain = 1005,
    /// The nonce was already used (a replay of another message).
    NonceTooLow = 1010,
    /// The nonce is ahead of the account's nonce.
    NonceTooHigh = 1011,
    /// `validUntil`/`expiry` is not in the future.
    Expired = 1012,
    /// Amount is zero.
    ZeroAmount = 1013,
    /// An amount or fee does not fit in 128 bits, or amount + fee overflows.
    AmountOverflow = 1014,
    /// The token is not supported.
    UnsupportedToken = 1015,
    /// Balance below amount + fee.
    InsufficientBalance = 1016,
    /// Fee below the quote of `lane_estimateFee`.
    FeeTooLow = 1017,
    /// A credited balance would exceed 2^96 − 1 base units (the ledger's per-account bound).
    BalanceOverflow = 1018,
    /// Withdrawal to the zero address.
    ZeroRecipient = 1019,
    /// The ledger holds as many accounts as it may.
    SlotLimitReached = 1020,
    /// The account's nonce reached 2^40 − 1 (the ledger's per-account bound).
    NonceExhausted = 1021,
    /// The owner already registered another viewing key.
    ViewingKeyConflict = 1022,
    /// The node's intake queue is full: retry later.
    Busy = 1030,
    /// Too many requests from this client: retry later (reserved: no rate limit yet).
    RateLimited = 1031,
    /// Owner authentication missing or invalid.
    Unauthorized = 1040,
    /// An `Authentication`'s or a `ProveBalance` request's `expiry` is further ahead than
    /// the node accepts ([`crate::rpc::AUTHENTICATION_VALIDITY_MAX_S`]).
    ExpiryTooFar = 1041,
    /// Unknown transaction, batch or account.
    NotFound = 1050,
    /// An attestation was asked for a threshold above the balance: no proof exists.
    BalanceBelowThreshold = 1060,
    /// The node was started without proving keys (`[prover]` in its config).
    ProverDisabled = 1061,
    /// The batch asked for is not finalized yet (or none kept is), or older than the prover keeps.
    BatchNotProvable = 1062,
    /// The proof was not ready within the node's proving timeout: retry later.
    ProvingTimeout = 1063,
}

impl ErrorCode {
    /// The numeric code.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// Every code, in table order.
    pub const ALL: &'static [ErrorCode] = &[
        Self::ParseError,
        Self::InvalidRequest,
        Self::MethodNotFound,
        Self::InvalidParams,
        Self::InternalError,
        Self::OversizedRequest,
        Self::BatchTooLarge,
        Self::InvalidSignature,
        Self::SignerMismatch,
        Self::WrongChainId,
        Self::WrongVerifyingContract,
        Self::WrongDomain,
        Self::NonceTooLow,
        Self::NonceTooHigh,
        Self::Expired,
        Self::ZeroAmount,
        Self::AmountOverflow,
        Self::UnsupportedToken,
        Self::InsufficientBalance,
        Self::FeeTooLow,
        Self::BalanceOverflow,
        Self::ZeroRecipient,
        Self::SlotLimitReached,
        Self::NonceExhausted,
        Self::ViewingKeyConflict,
        Self::Busy,
        Self::RateLimited,
        Self::Unauthorized,
        Self::ExpiryTooFar,
        Self::NotFound,
        Self::BalanceBelowThreshold,
        Self::ProverDisabled,
        Self::BatchNotProvable,
        Self::ProvingTimeout,
    ];

    /// A stable snake_case name (metrics labels, logs).
    pub const fn name(self) -> &'static str {
        match self {
            Self::ParseError => "parse_error",
            Self::InvalidRequest => "invalid_request",
            Self::MethodNotFound => "method_not_found",
            Self::InvalidParams => "invalid_params",
            Self::InternalError => "internal_error",
            Self::OversizedRequest => "oversized_request",
            Self::BatchTooLarge => "batch_too_large",
            Self::InvalidSignature => "invalid_signature",
            Self::SignerMismatch => "signer_mismatch",
            Self::WrongChainId => "wrong_chain_id",
            Self::WrongVerifyingContract => "wrong_verifying_contract",
            Self::WrongDomain => "wrong_domain",
            Self::NonceTooLow => "nonce_too_low",
            Self::NonceTooHigh => "nonce_too_high",
            Self::Expired => "expired",
            Self::ZeroAmount => "zero_amount",
            Self::AmountOverflow => "amount_overflow",
            Self::UnsupportedToken => "unsupported_token",
            Self::InsufficientBalance => "insufficient_balance",
            Self::FeeTooLow => "fee_too_low",
            Self::BalanceOverflow => "balance_overflow",
            Self::ZeroRecipient => "zero_recipient",
            Self::SlotLimitReached => "slot_limit_reached",
            Self::NonceExhausted => "nonce_exhausted",
            Self::ViewingKeyConflict => "viewing_key_conflict",
            Self::Busy => "busy",
            Self::RateLimited => "rate_limited",
            Self::Unauthorized => "unauthorized",
            Self::ExpiryTooFar => "expiry_too_far",
            Self::NotFound => "not_found",
            Self::BalanceBelowThreshold => "balance_below_threshold",
            Self::ProverDisabled => "prover_disabled",
            Self::BatchNotProvable => "batch_not_provable",
            Self::ProvingTimeout => "proving_timeout",
        }
    }

    /// The code for a numeric value, if it is one of ours.
    pub fn from_code(code: i32) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.code()), "duplicate {code:?}");
            assert_eq!(ErrorCode::from_code(code.code()), Some(*code));
            assert!(names.insert(code.name()), "duplicate name {code:?}");
        }
        assert_eq!(ErrorCode::from_code(0), None);
    }
}
