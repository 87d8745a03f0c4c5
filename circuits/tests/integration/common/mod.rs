//! Helpers shared by the integration tests: the dev keys, made once per test binary, and a
//! small state tree with an attestation witness in it.

use std::sync::OnceLock;

use stablelane_circuits::keys::{insecure_dev_setup, ProvingKey, VerifyingKey};
use stablelane_circuits::{leaf_hash, AttestationWitness, Fr, SlotIndex, StateTree};

/// The INSECURE dev keys, set up once per test binary (a few seconds).
pub fn dev_keys() -> &'static (ProvingKey, VerifyingKey) {
    static KEYS: OnceLock<(ProvingKey, VerifyingKey)> = OnceLock::new();
    KEYS.get_or_init(|| insecure_dev_setup().expect("dev setup"))
}

/// USDC-like owner and token addresses of the sample slot.
pub const OWNER: [u8; 20] = [
    0x70, 0x99, 0x79, 0x70, 0xc5, 0x18, 0x12, 0xdc, 0x3a, 0x01, 0x0c, 0x7d, 0x01, 0xb5, 0x0e, 0x0d,
    0x17, 0xdc, 0x79, 0xc8,
];
/// Token of the sample slot.
pub const TOKEN: [u8; 20] = [
    0x5f, 0xbd, 0xb2, 0x31, 0x56, 0x78, 0xaf, 0xec, 0xb3, 0x67, 0xf0, 0x32, 0xd9, 0x3f, 0x64, 0x2f,
    0x64, 0x18, 0x0a, 0xa3,
];
/// Balance of the sample slot: 1,234.5 units of a 6-decimal token.
pub const BALANCE: u128 = 1_234_500_000;

/// A tree of a few slots with the sample slot at index 5, and a witness that it holds at
/// least `threshold`, bound to `context`.
pub fn sample_witness(threshold: u128, context: Fr) -> AttestationWitness {
    let salt = Fr::from(0x5a17_5a17_u64);
    let nonce = 3;
    let slot = SlotIndex::new(5);
    let mut tree = StateTree::new();
    for i in 0..9u32 {
        let other = leaf_hash([i as u8; 20], TOKEN, u128::from(i) * 1_000, 0, Fr::from(i));
        tree.set(SlotIndex::new(i), other).expect("set");
    }
    tree.set(slot, leaf_hash(OWNER, TOKEN, BALANCE, nonce, salt))
        .expect("set");
    AttestationWitness {
        root: tree.root(),
        owner: OWNER,
        token: TOKEN,
        threshold,
        context,
        balance: BALANCE,
        nonce,
        salt,
        slot,
        path: tree.path(slot),
    }
}
