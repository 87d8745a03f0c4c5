//! Why the ledger refuses an operation. One closed enum, one variant per reason, in a stable
//! order; the RPC layer maps each to its own JSON-RPC error code in one place.

/// A refused operation. A refused operation changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The token is not supported by this ledger.
    #[error("unsupported token")]
    UnsupportedToken,
    /// Amount is zero.
    #[error("amount must be positive")]
    ZeroAmount,
    /// Amount plus fee, or a running total, overflows 128 bits.
    #[error("amount overflows 128 bits")]
    AmountOverflow,
    /// `validUntil` is not in the future.
    #[error("message expired")]
    Expired,
    /// Nonce below the slot's nonce: a replay of an already applied message.
    #[error("nonce already used")]
    NonceTooLow,
    /// Nonce above the slot's nonce: an earlier transaction is missing.
    #[error("nonce is ahead of the account's nonce")]
    NonceTooHigh,
    /// The slot's nonce reached [`crate::NONCE_MAX`] (2^40 − 1): it cannot grow any more.
    #[error("account nonce exhausted")]
    NonceExhausted,
    /// Fee below the quoted minimum.
    #[error("fee below the quoted fee")]
    FeeTooLow,
    /// Balance below amount plus fee.
    #[error("insufficient balance")]
    InsufficientBalance,
    /// A credited balance would exceed [`crate::BALANCE_MAX`] (2^96 − 1 base units).
    #[error("balance would exceed the account maximum of 2^96 - 1 base units")]
    BalanceOverflow,
    /// A withdrawal to the zero address.
    #[error("recipient must not be the zero address")]
    ZeroRecipient,
    /// The ledger holds as many slots as it may.
    #[error("slot limit reached")]
    SlotLimitReached,
    /// A deposit out of queue order (already consumed, or one is missing).
    #[error("deposit out of order: expected queue index {expected}")]
    DepositOutOfOrder {
        /// The next queue index the ledger expects.
        expected: u64,
    },
    /// A forced-withdrawal request out of queue order.
    #[error("forced withdrawal out of order: expected queue index {expected}")]
    ForcedOutOfOrder {
        /// The next queue index the ledger expects.
        expected: u64,
    },
    /// The owner registered another viewing key before.
    #[error("a different viewing key is already registered")]
    ViewingKeyAlreadyRegistered,
    /// Internal: a slot index that does not exist.
    #[error("unknown account")]
    UnknownAccount,
    /// Internal: balances do not add up to deposits minus withdrawals.
    #[error("supply does not match balances")]
    SupplyMismatch,
}

/// Why a deposit from the contract's queue can never be credited. The sequencer consumes such
/// a deposit as *refused*: the queue moves on, nothing is credited, the batch lists its index
/// and the contract makes it refundable. One variant per [`Rejection`] that a deposit in
/// queue order can meet; the serialised names are journaled and stay stable.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, thiserror::Error,
)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum DepositRefusal {
    /// The token is not in the ledger's configuration.
    #[error("unsupported token")]
    UnsupportedToken,
    /// The amount is zero (the contract refuses those; kept for completeness).
    #[error("amount must be positive")]
    ZeroAmount,
    /// The token's total of deposits would overflow 128 bits.
    #[error("the token's deposit total overflows 128 bits")]
    AmountOverflow,
    /// The recipient's balance would exceed [`crate::BALANCE_MAX`].
    #[error("balance would exceed the account maximum of 2^96 - 1 base units")]
    BalanceOverflow,
    /// The recipient has no slot and the ledger holds as many slots as it may.
    #[error("slot limit reached")]
    SlotLimitReached,
}

impl DepositRefusal {
    /// The refusal a deposit's [`Rejection`] means, or `None` for one that is not final (a
    /// deposit out of queue order, an internal error).
    pub fn of(rejection: Rejection) -> Option<Self> {
        match rejection {
            Rejection::UnsupportedToken => Some(Self::UnsupportedToken),
            Rejection::ZeroAmount => Some(Self::ZeroAmount),
            Rejection::AmountOverflow => Some(Self::AmountOverflow),
            Rejection::BalanceOverflow => Some(Self::BalanceOverflow),
            Rejection::SlotLimitReached => Some(Self::SlotLimitReached),
            _ => None,
        }
    }
}
