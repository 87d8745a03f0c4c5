//! Slot salts: per-slot secrets hashed into leaves so balances cannot be brute-forced out
//! of leaf hashes.

//!
//! Here, not in the ledger, so that a wallet derives its own salts (to rebuild its leaf for an
//! exit) without the node's crates.

use alloy::primitives::{keccak256, Address, B256, U256};

use crate::attestation::SNARK_SCALAR_FIELD;

/// Salt of slot (owner, token) derived from `key`: the owner's viewing key once registered,
/// the operator's secret before. `keccak256("Stablelane.salt.v1" ‖ key ‖ owner ‖ token) mod r`.
pub fn derive_salt(key: &B256, owner: Address, token: Address) -> B256 {
    let mut buf = Vec::with_capacity(18 + 32 + 20 + 20);
    buf.extend_from_slice(b"Stablelane.salt.v1");
    buf.extend_from_slice(key.as_slice());
    buf.extend_from_slice(owner.as_slice());
    buf.extend_from_slice(token.as_slice());
    let value = U256::from_be_bytes(keccak256(&buf).0) % SNARK_SCALAR_FIELD;
    B256::from(value.to_be_bytes::<32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salts_are_field_elements_and_depend_on_every_input() {
        let key = B256::repeat_byte(1);
        let (a, b) = (Address::repeat_byte(2), Address::repeat_byte(3));
        let salt = derive_salt(&key, a, b);
        assert!(U256::from_be_bytes(salt.0) < SNARK_SCALAR_FIELD);
        assert_ne!(salt, derive_salt(&B256::repeat_byte(9), a, b));
        assert_ne!(salt, derive_salt(&key, b, a));
        assert_eq!(salt, derive_salt(&key, a, b));
    }
}
