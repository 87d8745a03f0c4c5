//! Slot salts: per-slot secrets hashed into leaves so balances cannot be brute-forced out
//! of leaf hashes.

use alloy::primitives::{keccak256, Address, B256, U256};

/// Order r of the BN254 scalar field; salts, like every leaf input, are below it.
pub const BN254_SCALAR_ORDER: U256 = U256::from_be_slice(&[
    0x30, 0x64, 0x4e, 0x72, 0xe1, 0x31, 0xa0, 0x29, 0xb8, 0x50, 0x45, 0xb6, 0x81, 0x81, 0x58, 0x5d,
    0x28, 0x33, 0xe8, 0x48, 0x79, 0xb9, 0x70, 0x91, 0x43, 0xe1, 0xf5, 0x93, 0xf0, 0x00, 0x00, 0x01,
]);

/// Salt of slot (owner, token) derived from `key`: the owner's viewing key once registered,
/// the operator's secret before. `keccak256("Stablelane.salt.v1" ‖ key ‖ owner ‖ token) mod r`.
pub fn derive_salt(key: &B256, owner: Address, token: Address) -> B256 {
    let mut buf = Vec::with_capacity(18 + 32 + 20 + 20);
    buf.extend_from_slice(b"Stablelane.salt.v1");
    buf.extend_from_slice(key.as_slice());
    buf.extend_from_slice(owner.as_slice());
    buf.extend_from_slice(token.as_slice());
    let value = U256::from_be_bytes(keccak256(&buf).0) % BN254_SCALAR_ORDER;
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
        assert!(U256::from_be_bytes(salt.0) < BN254_SCALAR_ORDER);
        assert_ne!(salt, derive_salt(&B256::repeat_byte(9), a, b));
        assert_ne!(salt, derive_salt(&key, b, a));
        assert_eq!(salt, derive_salt(&key, a, b));
    }
}
