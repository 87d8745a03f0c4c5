//! The context an exodus exit's proof is bound to.
//!
//! An exit is the attestation circuit's statement "`owner` holds at least `amount` of `token`
//! in the last committed root" with a context the settlement contract computes itself: its
//! `exitContext(owner, recipient)`,
//! `keccak256(abi.encode(EXIT_DOMAIN, chainid, settlement, owner, recipient)) mod r` with
//! `EXIT_DOMAIN = keccak256("Stablelane.exit.v2")`. So a proof serves one exit only: of this
//! owner, on this chain and contract, paying this recipient (the owner itself, or another
//! address it names, for example when the owner cannot receive the token). [`exit_context`]
//! computes it off-chain, byte for byte as the contract does.

use alloy::{
    primitives::{keccak256, Address, B256, U256},
    sol_types::SolValue,
};

use crate::attestation::SNARK_SCALAR_FIELD;

/// The tag string whose keccak256 is the contract's `EXIT_DOMAIN`.
pub const EXIT_DOMAIN_TAG: &[u8] = b"Stablelane.exit.v2";

/// The contract's `EXIT_DOMAIN`: `keccak256("Stablelane.exit.v2")`.
pub fn exit_domain() -> B256 {
    keccak256(EXIT_DOMAIN_TAG)
}

/// The context an exit of `owner` paying `recipient` must be proven under, on chain
/// `chain_id` against the settlement contract at `settlement`: the contract's
/// `exitContext(owner, recipient)`.
pub fn exit_context(
    chain_id: u64,
    settlement: Address,
    owner: Address,
    recipient: Address,
) -> U256 {
    let encoded = (
        exit_domain(),
        U256::from(chain_id),
        settlement,
        owner,
        recipient,
    )
        .abi_encode();
    U256::from_be_bytes(keccak256(encoded).0) % SNARK_SCALAR_FIELD
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{address, b256, uint};

    use super::*;

    #[test]
    fn exit_domain_is_the_contracts() {
        // `cast keccak "Stablelane.exit.v2"`, pinned in the forge suite's test_constants.
        assert_eq!(
            exit_domain(),
            b256!("e550b4c76d58a4bf8fd39269790089a9acd114498e5c6dc05f2d007ab93e5ed5")
        );
    }

    #[test]
    fn exit_context_matches_the_contract_vector() {
        // `cast abi-encode "f(bytes32,uint256,address,address,address)" <EXIT_DOMAIN> 31337
        // 0x44…44 0x33…33 0x11…11 | cast keccak`, mod r; the forge suite's
        // test_exitContext_matchesTheRustVector checks the contract against the same value.
        // The hash is above r, so the reduction is exercised.
        let context = exit_context(
            31_337,
            address!("4444444444444444444444444444444444444444"),
            address!("3333333333333333333333333333333333333333"),
            address!("1111111111111111111111111111111111111111"),
        );
        assert_eq!(
            context,
            uint!(0x2f1859e896a6cbff0ba3e478945e7270f567b034a4f0ccef4e42693289887b77_U256)
        );
    }

    #[test]
    fn exit_context_binds_every_part() {
        let (s, a, b) = (
            Address::repeat_byte(4),
            Address::repeat_byte(3),
            Address::repeat_byte(1),
        );
        let base = exit_context(1, s, a, b);
        assert!(base < SNARK_SCALAR_FIELD);
        assert_ne!(base, exit_context(1, s, a, a), "recipient");
        assert_ne!(base, exit_context(1, s, b, b), "owner");
        assert_ne!(
            base,
            exit_context(1, s, b, a),
            "owner and recipient swapped"
        );
        assert_ne!(base, exit_context(2, s, a, b), "chain");
        assert_ne!(base, exit_context(1, a, a, b), "contract");
    }
}
