//! Signing messages with a wallet key and recovering their signers.

use alloy::{
    primitives::{keccak256, Address, Signature, B256, U256},
    signers::{local::PrivateKeySigner, SignerSync},
    sol_types::{Eip712Domain, SolStruct},
};

use crate::{
    messages::{viewing_key_message, Message, Signed, TypedDomain},
    TxHash,
};

/// Half the secp256k1 group order: signatures with a larger `s` are malleated copies.
const SECP256K1_HALF_ORDER: U256 = U256::from_be_slice(&[
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
]);

/// Why a signature is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// Not a valid secp256k1 signature of this message (or a high-`s` malleated one).
    #[error("invalid signature")]
    Invalid,
    /// Valid, but by another account than the message's signer field.
    #[error("signed by {recovered}, expected {expected}")]
    WrongSigner {
        /// The account the message names.
        expected: Address,
        /// The account that signed.
        recovered: Address,
    },
    /// The stated domain has another chain id.
    #[error("signed for chain id {got}, this node serves {expected}")]
    WrongChainId {
        /// This deployment's chain id.
        expected: u64,
        /// The stated one.
        got: u64,
    },
    /// The stated domain has another verifying contract.
    #[error("signed for contract {got}, this node settles to {expected}")]
    WrongVerifyingContract {
        /// This deployment's settlement contract.
        expected: Address,
        /// The stated one.
        got: Address,
    },
    /// The stated domain has another name or version.
    #[error("signed for domain {name:?} version {version:?}, expected \"Stablelane\" \"1\"")]
    WrongDomain {
        /// Stated name.
        name: String,
        /// Stated version.
        version: String,
    },
    /// The local key could not sign.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Signs `message` in `domain` with `key`.
pub fn sign<M: Message>(
    key: &PrivateKeySigner,
    message: M,
    domain: &Eip712Domain,
) -> Result<Signed<M>, SignatureError> {
    let hash = message.signing_hash(domain);
    let signature = key
        .sign_hash_sync(&hash)
        .map_err(|e| SignatureError::Signing(e.to_string()))?;
    Ok(Signed {
        domain: typed_domain(domain),
        message,
        signature,
    })
}

fn typed_domain(domain: &Eip712Domain) -> Option<TypedDomain> {
    Some(TypedDomain {
        name: domain.name.as_deref()?.to_string(),
        version: domain.version.as_deref()?.to_string(),
        chain_id: u64::try_from(domain.chain_id?).ok()?,
        verifying_contract: domain.verifying_contract?,
    })
}

/// Checks a stated domain against this deployment's.
pub fn check_domain(stated: &TypedDomain, expected: &Eip712Domain) -> Result<(), SignatureError> {
    let Some(ours) = typed_domain(expected) else {
        return Err(SignatureError::Signing("incomplete local domain".into()));
    };
    if stated.name != ours.name || stated.version != ours.version {
        return Err(SignatureError::WrongDomain {
            name: stated.name.clone(),
            version: stated.version.clone(),
        });
    }
    if stated.chain_id != ours.chain_id {
        return Err(SignatureError::WrongChainId {
            expected: ours.chain_id,
            got: stated.chain_id,
        });
    }
    if stated.verifying_contract != ours.verifying_contract {
        return Err(SignatureError::WrongVerifyingContract {
            expected: ours.verifying_contract,
            got: stated.verifying_contract,
        });
    }
    Ok(())
}

/// Recovers the account that signed `hash`, refusing high-`s` signatures.
///
/// Uses libsecp256k1 (the `secp256k1` crate), about five times faster than the pure-Rust
/// k256 on this project's machines: recovery bounds how many transfers a node accepts per
/// second. [`recover_k256`] is the same function on k256, kept as a cross-check.
pub fn recover(signature: &Signature, hash: &B256) -> Result<Address, SignatureError> {
    use secp256k1::{
        ecdsa::{RecoverableSignature, RecoveryId},
        Message, SECP256K1,
    };
    if signature.s() > SECP256K1_HALF_ORDER {
        return Err(SignatureError::Invalid);
    }
    let id = RecoveryId::try_from(i32::from(signature.v())).map_err(|_| SignatureError::Invalid)?;
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&signature.r().to_be_bytes::<32>());
    compact[32..].copy_from_slice(&signature.s().to_be_bytes::<32>());
    let recoverable =
        RecoverableSignature::from_compact(&compact, id).map_err(|_| SignatureError::Invalid)?;
    let key = SECP256K1
        .recover_ecdsa(Message::from_digest(hash.0), &recoverable)
        .map_err(|_| SignatureError::Invalid)?;
    let uncompressed = key.serialize_uncompressed();
    Ok(Address::from_raw_public_key(&uncompressed[1..]))
}

/// [`recover`] computed with k256 (pure Rust): the reference it is tested against.
pub fn recover_k256(signature: &Signature, hash: &B256) -> Result<Address, SignatureError> {
    if signature.s() > SECP256K1_HALF_ORDER {
        return Err(SignatureError::Invalid);
    }
    signature
        .recover_address_from_prehash(hash)
        .map_err(|_| SignatureError::Invalid)
}

impl<M: Message> Signed<M> {
    /// Checks that the message's signer signed it in `domain`; returns its transaction hash
    /// (the EIP-712 signing hash, independent of the signature's encoding).
    pub fn verify(&self, domain: &Eip712Domain) -> Result<TxHash, SignatureError> {
        self.verify_in(domain, &domain.separator())
    }

    /// [`verify`](Self::verify) with `domain`'s separator computed once by the caller.
    pub fn verify_in(
        &self,
        domain: &Eip712Domain,
        separator: &B256,
    ) -> Result<TxHash, SignatureError> {
        if let Some(stated) = &self.domain {
            check_domain(stated, domain)?;
        }
        let hash = self.message.signing_hash_in(separator);
        let recovered = recover(&self.signature, &hash)?;
        let expected = self.message.signer();
        if recovered != expected {
            return Err(SignatureError::WrongSigner {
                expected,
                recovered,
            });
        }
        Ok(TxHash(hash))
    }
}

/// Signs `hash` with libsecp256k1: the same deterministic (RFC 6979), low-`s` signature as
/// alloy's k256 signer, several times faster. Every group of receipts gets one.
pub fn sign_hash_fast(key: &PrivateKeySigner, hash: &B256) -> Result<Signature, SignatureError> {
    use secp256k1::{Message, SecretKey, SECP256K1};
    let secret = SecretKey::from_byte_array(key.to_bytes().0)
        .map_err(|e| SignatureError::Signing(e.to_string()))?;
    let (id, compact) = SECP256K1
        .sign_ecdsa_recoverable(Message::from_digest(hash.0), &secret)
        .serialize_compact();
    Ok(Signature::new(
        U256::from_be_slice(&compact[..32]),
        U256::from_be_slice(&compact[32..]),
        i32::from(id) == 1,
    ))
}

/// The wallet's viewing key: keccak256 of its (deterministic, RFC 6979) signature over the
/// fixed viewing-key message. A wallet re-derives it from its private key at any time.
pub fn derive_viewing_key(
    key: &PrivateKeySigner,
    domain: &Eip712Domain,
) -> Result<B256, SignatureError> {
    let hash = viewing_key_message(key.address()).eip712_signing_hash(domain);
    let signature = key
        .sign_hash_sync(&hash)
        .map_err(|e| SignatureError::Signing(e.to_string()))?;
    Ok(viewing_key_from_signature(&signature))
}

/// The viewing key of a viewing-key signature (what the node computes on registration).
pub fn viewing_key_from_signature(signature: &Signature) -> B256 {
    keccak256(signature.as_bytes())
}

#[cfg(test)]
mod tests {
    use alloy::primitives::address;

    use super::*;
    use crate::{
        messages::{domain, Transfer},
        Amount, Nonce,
    };

    fn transfer(from: Address) -> Transfer {
        Transfer {
            from,
            to: address!("0x00000000000000000000000000000000000000b0"),
            token: address!("0x00000000000000000000000000000000000000c0"),
            amount: Amount(1_250_000),
            fee: Amount(10),
            nonce: Nonce(0),
            valid_until: 1_900_000_000,
        }
    }

    #[test]
    fn hashes_with_a_cached_separator_equal_alloys_eip712_signing_hash() {
        use crate::messages::{Authentication, ProveBalance, Withdrawal};
        let a = address!("0x00000000000000000000000000000000000000a0");
        for d in [
            domain(1, a),
            domain(
                31337,
                address!("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
            ),
        ] {
            let sep = d.separator();
            let t = transfer(a);
            assert_eq!(t.signing_hash_in(&sep), t.to_sol().eip712_signing_hash(&d));
            assert_eq!(t.signing_hash(&d), t.to_sol().eip712_signing_hash(&d));
            let w = Withdrawal {
                from: a,
                recipient: t.to,
                token: t.token,
                amount: Amount(7),
                fee: Amount(1),
                nonce: Nonce(3),
                valid_until: 9,
            };
            assert_eq!(w.signing_hash_in(&sep), w.to_sol().eip712_signing_hash(&d));
            let auth = Authentication {
                owner: a,
                purpose: "lane_getAccount".into(),
                expiry: 5,
            };
            assert_eq!(
                auth.signing_hash_in(&sep),
                auth.to_sol().eip712_signing_hash(&d)
            );
            let prove = ProveBalance {
                owner: a,
                token: t.token,
                threshold: Amount(100),
                challenge: B256::repeat_byte(4),
                batch: 2,
                expiry: 6,
            };
            assert_eq!(
                prove.signing_hash_in(&sep),
                prove.to_sol().eip712_signing_hash(&d)
            );
            // Twice: the cached type hash is the same the second time.
            assert_eq!(t.signing_hash_in(&sep), t.signing_hash(&d));
        }
    }

    #[test]
    fn libsecp256k1_and_k256_recover_the_same_signer() {
        for i in 0u8..32 {
            let key = PrivateKeySigner::random();
            let hash = keccak256([i; 7]);
            let signature = key.sign_hash_sync(&hash).unwrap();
            assert_eq!(recover(&signature, &hash), Ok(key.address()));
            assert_eq!(recover_k256(&signature, &hash), Ok(key.address()));
            // Another message: both recover the same (wrong) account.
            let other = keccak256([i; 8]);
            assert_eq!(
                recover(&signature, &other),
                recover_k256(&signature, &other)
            );
            assert_ne!(recover(&signature, &other), Ok(key.address()));
            // Flipped parity: both agree on the result, never the signer.
            let flipped = Signature::new(signature.r(), signature.s(), !signature.v());
            assert_eq!(recover(&flipped, &hash), recover_k256(&flipped, &hash));
            assert_ne!(recover(&flipped, &hash), Ok(key.address()));
            // The malleated high-s twin is refused by both.
            let order = SECP256K1_HALF_ORDER * U256::from(2) + U256::from(1);
            let high = Signature::new(signature.r(), order - signature.s(), !signature.v());
            assert_eq!(recover(&high, &hash), Err(SignatureError::Invalid));
            assert_eq!(recover_k256(&high, &hash), Err(SignatureError::Invalid));
        }
        // Signing: byte for byte what alloy's k256 signer produces.
        for i in 0u8..16 {
            let key = PrivateKeySigner::random();
            let hash = keccak256([i; 3]);
            assert_eq!(
                sign_hash_fast(&key, &hash).unwrap(),
                key.sign_hash_sync(&hash).unwrap()
            );
        }
        // r = 0 is not a signature.
        let zero = Signature::new(U256::ZERO, U256::from(1), false);
        assert_eq!(recover(&zero, &B256::ZERO), Err(SignatureError::Invalid));
    }

    #[test]
    fn signed_transfer_verifies_and_round_trips_json() {
        let key = PrivateKeySigner::random();
        let domain = domain(31337, Address::repeat_byte(0x11));
        let signed = sign(&key, transfer(key.address()), &domain).unwrap();
        let hash = signed.verify(&domain).unwrap();
        assert_eq!(hash.0, signed.message.signing_hash(&domain));

        let json = serde_json::to_value(&signed).unwrap();
        assert_eq!(json["message"]["amount"], "1250000");
        assert_eq!(json["message"]["validUntil"], 1_900_000_000u64);
        assert!(json["signature"].as_str().unwrap().starts_with("0x"));
        let back: Signed<Transfer> = serde_json::from_value(json).unwrap();
        assert_eq!(back, signed);
    }

    #[test]
    fn wrong_domain_signer_or_message_fails() {
        let key = PrivateKeySigner::random();
        let other = PrivateKeySigner::random();
        let domain_a = domain(31337, Address::repeat_byte(0x11));
        let mut signed = sign(&key, transfer(key.address()), &domain_a).unwrap();

        // Another chain or another contract, with no stated domain: recovers someone else.
        signed.domain = None;
        for wrong in [
            domain(1, Address::repeat_byte(0x11)),
            domain(31337, Address::repeat_byte(0x12)),
        ] {
            assert!(matches!(
                signed.verify(&wrong),
                Err(SignatureError::WrongSigner { .. })
            ));
        }
        // Signed by a key that is not `from`.
        let forged = sign(&other, transfer(key.address()), &domain_a).unwrap();
        assert_eq!(
            forged.verify(&domain_a),
            Err(SignatureError::WrongSigner {
                expected: key.address(),
                recovered: other.address()
            })
        );
        // A changed amount no longer matches the signature.
        let mut tampered = signed.clone();
        tampered.message.amount = Amount(1_250_001);
        assert!(tampered.verify(&domain_a).is_err());
    }

    #[test]
    fn stated_domain_mismatches_are_reported_as_such() {
        let key = PrivateKeySigner::random();
        let ours = domain(31337, Address::repeat_byte(0x11));
        let signed = sign(&key, transfer(key.address()), &ours).unwrap();
        assert!(signed.domain.is_some());
        let mut other_chain = signed.clone();
        other_chain.domain = Some(TypedDomain::new(1, Address::repeat_byte(0x11)));
        assert!(matches!(
            other_chain.verify(&ours),
            Err(SignatureError::WrongChainId {
                expected: 31337,
                got: 1
            })
        ));
        let mut other_contract = signed.clone();
        other_contract.domain = Some(TypedDomain::new(31337, Address::repeat_byte(0x12)));
        assert!(matches!(
            other_contract.verify(&ours),
            Err(SignatureError::WrongVerifyingContract { .. })
        ));
        let mut other_name = signed.clone();
        other_name.domain = Some(TypedDomain {
            name: "Other".into(),
            ..TypedDomain::new(31337, Address::repeat_byte(0x11))
        });
        assert!(matches!(
            other_name.verify(&ours),
            Err(SignatureError::WrongDomain { .. })
        ));
    }

    #[test]
    fn high_s_copies_are_refused() {
        let key = PrivateKeySigner::random();
        let domain = domain(31337, Address::repeat_byte(0x11));
        let signed = sign(&key, transfer(key.address()), &domain).unwrap();
        let order = SECP256K1_HALF_ORDER * U256::from(2) + U256::from(1);
        let s = signed.signature.s();
        let malleated = Signature::new(signed.signature.r(), order - s, !signed.signature.v());
        let copy = Signed {
            domain: None,
            message: signed.message.clone(),
            signature: malleated,
        };
        assert_eq!(copy.verify(&domain), Err(SignatureError::Invalid));
    }

    #[test]
    fn viewing_key_is_deterministic() {
        let key = PrivateKeySigner::random();
        let domain = domain(31337, Address::repeat_byte(0x11));
        assert_eq!(
            derive_viewing_key(&key, &domain).unwrap(),
            derive_viewing_key(&key, &domain).unwrap()
        );
        assert_ne!(
            derive_viewing_key(&key, &domain).unwrap(),
            derive_viewing_key(&PrivateKeySigner::random(), &domain).unwrap()
        );
    }
}
