//! Typed identifiers. Newtypes without `Deref` or cross-type arithmetic, so a slot index
//! can never be passed where a batch number is expected.

use std::fmt;

use alloy::primitives::B256;
use serde::{Deserialize, Serialize};

macro_rules! id_u64 {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl $name {
            /// The raw value.
            pub const fn get(self) -> $inner {
                self.0
            }

            /// The next value, or `None` on overflow.
            pub fn checked_next(self) -> Option<Self> {
                self.0.checked_add(1).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_u64!(
    /// Index of a slot (owner, token) in the state tree; assigned sequentially on first credit.
    SlotIndex(u32)
);
id_u64!(
    /// Number of a settled batch; batch 0 is the genesis state.
    BatchNumber(u64)
);
id_u64!(
    /// Per-slot transaction counter: a transaction must carry the slot's current nonce.
    Nonce(u64)
);
id_u64!(
    /// Position of an accepted transaction in the node's journal.
    SequenceNumber(u64)
);

/// Hash identifying a transaction: the EIP-712 signing hash of its message, so it does not
/// depend on the signature's encoding.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct TxHash(pub B256);

impl fmt::Display for TxHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_as_plain_numbers() {
        assert_eq!(serde_json::to_string(&Nonce(7)).unwrap(), "7");
        assert_eq!(
            serde_json::from_str::<BatchNumber>("12").unwrap(),
            BatchNumber(12)
        );
        assert_eq!(Nonce(u64::MAX).checked_next(), None);
        assert_eq!(SlotIndex(1).checked_next(), Some(SlotIndex(2)));
    }
}
