//! The one place where internal errors become JSON-RPC errors.
//!
//! Every signature error, ledger rejection, sequencer error and parameter problem maps to
//! one [`ErrorCode`] of the stable table (documented in `docs/rpc.md`) with a readable
//! message. Codes produced by jsonrpsee itself before a handler runs (parse errors, unknown
//! methods, oversized requests and batches) are listed in `docs/rpc.md` too.

use jsonrpsee::types::ErrorObjectOwned;
use stablelane::{amount::AmountError, ErrorCode, SignatureError};
use stablelane_ledger::Rejection;
use stablelane_sequencer::SubmitError;

/// An error answered to a JSON-RPC client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    /// The code from the stable table.
    pub code: ErrorCode,
    /// What went wrong, for humans.
    pub message: String,
}

/// Results of RPC handlers.
pub type Result<T, E = RpcError> = std::result::Result<T, E>;

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Parameters of the wrong shape or type.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParams, message)
    }

    /// An amount or fee field that is not a valid base-unit string. `field` names it.
    pub fn amount(field: &str, error: &AmountError) -> Self {
        match error {
            AmountError::Overflow => Self::new(
                ErrorCode::AmountOverflow,
                format!("{field} does not fit in 128 bits"),
            ),
            other => Self::invalid_params(format!("{field}: {other}")),
        }
    }

    /// Missing or invalid owner authentication.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// Unknown transaction, batch or account.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
}

impl From<RpcError> for ErrorObjectOwned {
    fn from(error: RpcError) -> Self {
        ErrorObjectOwned::owned::<()>(error.code.code(), error.message, None)
    }
}

impl From<SignatureError> for RpcError {
    fn from(error: SignatureError) -> Self {
        let code = match &error {
            SignatureError::WrongSigner { .. } => ErrorCode::SignerMismatch,
            SignatureError::WrongChainId { .. } => ErrorCode::WrongChainId,
            SignatureError::WrongVerifyingContract { .. } => ErrorCode::WrongVerifyingContract,
            SignatureError::WrongDomain { .. } => ErrorCode::WrongDomain,
            // `Signing` only arises from local keys; anything else unknown is refused as
            // an invalid signature.
            SignatureError::Signing(_) => ErrorCode::InternalError,
            _ => ErrorCode::InvalidSignature,
        };
        Self::new(code, error.to_string())
    }
}

impl From<Rejection> for RpcError {
    fn from(rejection: Rejection) -> Self {
        let code = match rejection {
            Rejection::UnsupportedToken => ErrorCode::UnsupportedToken,
            Rejection::ZeroAmount => ErrorCode::ZeroAmount,
            Rejection::AmountOverflow => ErrorCode::AmountOverflow,
            Rejection::Expired => ErrorCode::Expired,
            Rejection::NonceTooLow => ErrorCode::NonceTooLow,
            Rejection::NonceTooHigh => ErrorCode::NonceTooHigh,
            Rejection::NonceExhausted => ErrorCode::NonceExhausted,
            Rejection::FeeTooLow => ErrorCode::FeeTooLow,
            Rejection::InsufficientBalance => ErrorCode::InsufficientBalance,
            Rejection::BalanceOverflow => ErrorCode::BalanceOverflow,
            Rejection::ZeroRecipient => ErrorCode::ZeroRecipient,
            Rejection::SlotLimitReached => ErrorCode::SlotLimitReached,
            Rejection::UnknownAccount => ErrorCode::NotFound,
            Rejection::ViewingKeyAlreadyRegistered => ErrorCode::ViewingKeyConflict,
            // Deposits, forced withdrawals, viewing keys and supply are not submitted over
            // the wallet API; should one surface here it is the node's fault.
            _ => ErrorCode::InternalError,
        };
        Self::new(code, rejection.to_string())
    }
}

impl From<SubmitError> for RpcError {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::Busy => Self::new(ErrorCode::Busy, "node busy: retry later"),
            SubmitError::Rejected(rejection) => rejection.into(),
            // The reason may name files or internals: keep it in the node's log.
            SubmitError::Stopped(_) => Self::new(ErrorCode::InternalError, "sequencer stopped"),
            _ => Self::new(ErrorCode::InternalError, "internal error"),
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::Address;

    use super::*;

    #[test]
    fn every_rejection_of_the_wallet_api_has_its_own_code() {
        let rejections = [
            Rejection::UnsupportedToken,
            Rejection::ZeroAmount,
            Rejection::AmountOverflow,
            Rejection::Expired,
            Rejection::NonceTooLow,
            Rejection::NonceTooHigh,
            Rejection::NonceExhausted,
            Rejection::FeeTooLow,
            Rejection::InsufficientBalance,
            Rejection::BalanceOverflow,
            Rejection::ZeroRecipient,
            Rejection::SlotLimitReached,
        ];
        let mut seen = std::collections::HashSet::new();
        for rejection in rejections {
            let error = RpcError::from(rejection);
            assert!(seen.insert(error.code), "{rejection:?} shares a code");
            assert!(error.code.code() >= 1000);
            assert!(!error.message.is_empty());
        }
    }

    #[test]
    fn signature_errors_map_to_distinct_codes() {
        let errors = [
            SignatureError::Invalid,
            SignatureError::WrongSigner {
                expected: Address::ZERO,
                recovered: Address::repeat_byte(1),
            },
            SignatureError::WrongChainId {
                expected: 1,
                got: 2,
            },
            SignatureError::WrongVerifyingContract {
                expected: Address::ZERO,
                got: Address::repeat_byte(1),
            },
            SignatureError::WrongDomain {
                name: "x".into(),
                version: "2".into(),
            },
        ];
        let codes: std::collections::HashSet<_> =
            errors.into_iter().map(|e| RpcError::from(e).code).collect();
        assert_eq!(codes.len(), 5);
    }

    #[test]
    fn overflowing_amounts_are_not_generic_param_errors() {
        let error = RpcError::amount("fee", &AmountError::Overflow);
        assert_eq!(error.code, ErrorCode::AmountOverflow);
        let error = RpcError::amount("fee", &AmountError::Invalid);
        assert_eq!(error.code, ErrorCode::InvalidParams);
    }
}
