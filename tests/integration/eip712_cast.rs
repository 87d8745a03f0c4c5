//! Interoperability: transfers signed by an EIP-712 implementation that is not ours —
//! foundry's `cast wallet sign --data`, as installed from npm — verify with our library,
//! and signatures for another domain do not.

use alloy::{
    primitives::{address, Address},
    signers::local::PrivateKeySigner,
};
use eyre::Result;
use serde_json::json;
use stablelane::{domain, Amount, Nonce, SignatureError, Signed, Transfer};
use stablelane_tests::{cast_sign_typed_data, transfer_typed_data};

/// anvil's first dev key: public knowledge, test use only.
const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const SETTLEMENT: Address = address!("0x3Aa5ebB10DC797CAC828524e59A333d0A371443c");

fn typed_data(transfer: &Transfer, chain_id: u64, contract: Address) -> serde_json::Value {
    transfer_typed_data(transfer, chain_id, contract)
}

fn cast_sign(data: &serde_json::Value) -> Result<String> {
    cast_sign_typed_data(data, KEY)
}

fn transfer(from: Address) -> Transfer {
    Transfer {
        from,
        to: address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
        token: address!("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"),
        amount: Amount(1_250_000),
        fee: Amount(1_000),
        nonce: Nonce(3),
        valid_until: 1_900_000_000,
    }
}

#[test]
fn cast_signed_transfer_verifies() -> Result<()> {
    let key: PrivateKeySigner = KEY.parse()?;
    let message = transfer(key.address());
    let signature = cast_sign(&typed_data(&message, 31337, SETTLEMENT))?;
    assert!(
        signature.starts_with("0x") && signature.len() == 132,
        "{signature}"
    );

    // The wire shape a wallet sends: the typed data's domain and message plus cast's hex
    // signature.
    let data = typed_data(&message, 31337, SETTLEMENT);
    let signed: Signed<Transfer> = serde_json::from_value(json!({
        "domain": data["domain"],
        "message": message,
        "signature": signature,
    }))?;
    let hash = signed.verify(&domain(31337, SETTLEMENT))?;

    // Same hash and signature as our own signer produces (RFC 6979 is deterministic).
    let ours = stablelane::sign(&key, message, &domain(31337, SETTLEMENT))?;
    assert_eq!(ours.signature, signed.signature);
    assert_eq!(ours.verify(&domain(31337, SETTLEMENT))?, hash);
    Ok(())
}

#[test]
fn cast_signature_for_another_domain_is_refused() -> Result<()> {
    let key: PrivateKeySigner = KEY.parse()?;
    let message = transfer(key.address());
    for (chain_id, contract) in [(1, SETTLEMENT), (31337, Address::repeat_byte(0x42))] {
        let data = typed_data(&message, chain_id, contract);
        let signature = cast_sign(&data)?;
        // Without the domain, the signature recovers some other account.
        let bare: Signed<Transfer> = serde_json::from_value(json!({
            "message": message,
            "signature": signature,
        }))?;
        assert!(matches!(
            bare.verify(&domain(31337, SETTLEMENT)),
            Err(SignatureError::WrongSigner { .. })
        ));
        // With the typed data's domain stated, the mismatch is named.
        let stated: Signed<Transfer> = serde_json::from_value(json!({
            "domain": data["domain"],
            "message": message,
            "signature": signature,
        }))?;
        let err = stated.verify(&domain(31337, SETTLEMENT)).unwrap_err();
        if chain_id == 1 {
            assert!(matches!(
                err,
                SignatureError::WrongChainId {
                    expected: 31337,
                    got: 1
                }
            ));
        } else {
            assert!(matches!(err, SignatureError::WrongVerifyingContract { .. }));
        }
    }
    Ok(())
}
