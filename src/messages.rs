//! The EIP-712 messages of the protocol and their JSON shapes.
//!
//! Domain: `{ name: "Stablelane", version: "1", chainId, verifyingContract: <settlement> }`.
//! Types (stable once shipped; see `docs/rpc.md`):
//!
//! ```text
//! Transfer(address from,address to,address token,uint128 amount,uint128 fee,uint64 nonce,uint64 validUntil)
//! Withdrawal(address from,address recipient,address token,uint128 amount,uint128 fee,uint64 nonce,uint64 validUntil)
//! Authentication(address owner,string purpose,uint64 expiry)
//! ViewingKey(address owner,string statement)
//! ```
//!
//! Receipts (signed by the node, per group) are in [`crate::receipts`].
//!
//! Any wallet that implements `eth_signTypedData_v4` can sign these; the JSON types here
//! carry amounts as decimal strings and are converted to the `sol!` structs for hashing.

use alloy::{
    primitives::{keccak256, Address, Signature, B256},
    sol_types::{eip712_domain, Eip712Domain, SolStruct},
};
use serde::{Deserialize, Serialize};

use crate::{Amount, Nonce};

/// `name` of the EIP-712 domain.
pub const DOMAIN_NAME: &str = "Stablelane";
/// `version` of the EIP-712 domain.
pub const DOMAIN_VERSION: &str = "1";
/// The fixed statement a wallet signs to derive its viewing key.
pub const VIEWING_KEY_STATEMENT: &str =
    "Stablelane viewing key: sign only on a Stablelane wallet. This does not move funds.";

/// The `sol!` definitions that fix the EIP-712 type strings.
pub mod sol {
    #![allow(missing_docs)]
    alloy::sol! {
        struct Transfer {
            address from;
            address to;
            address token;
            uint128 amount;
            uint128 fee;
            uint64 nonce;
            uint64 validUntil;
        }

        struct Withdrawal {
            address from;
            address recipient;
            address token;
            uint128 amount;
            uint128 fee;
            uint64 nonce;
            uint64 validUntil;
        }

        struct Authentication {
            address owner;
            string purpose;
            uint64 expiry;
        }

        struct ViewingKey {
            address owner;
            string statement;
        }

        struct ProveBalance {
            address owner;
            address token;
            uint128 threshold;
            bytes32 challenge;
            uint64 batch;
            uint64 expiry;
        }
    }
}

/// The EIP-712 domain of a deployment.
pub fn domain(chain_id: u64, settlement: Address) -> Eip712Domain {
    eip712_domain! {
        name: DOMAIN_NAME,
        version: DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: settlement,
    }
}

/// A message that wallets sign with EIP-712.
pub trait Message {
    /// The `sol!` struct that defines its type hash.
    type Sol: SolStruct;
    /// The `sol!` form of the message.
    fn to_sol(&self) -> Self::Sol;
    /// The account that must have signed it.
    fn signer(&self) -> Address;
    /// The EIP-712 signing hash in `domain`.
    fn signing_hash(&self, domain: &Eip712Domain) -> B256 {
        self.signing_hash_in(&domain.separator())
    }
    /// The EIP-712 signing hash in the domain whose separator (`domain.separator()`) is
    /// `separator`: what a node that checks many messages of one domain computes, two
    /// keccak-256 calls instead of seven.
    fn signing_hash_in(&self, separator: &B256) -> B256 {
        typed_data_hash(separator, Self::type_hash(), &self.to_sol())
    }
    /// The EIP-712 `typeHash` of the message type.
    fn type_hash() -> B256;
}

/// `keccak256(type_hash ‖ encodeData(value))`: the EIP-712 `hashStruct`.
pub(crate) fn struct_hash<S: SolStruct>(type_hash: B256, value: &S) -> B256 {
    let mut hasher = alloy::primitives::Keccak256::new();
    hasher.update(type_hash);
    hasher.update(value.eip712_encode_data());
    hasher.finalize()
}

/// `keccak256(0x1901 ‖ separator ‖ keccak256(type_hash ‖ encodeData(message)))`.
pub(crate) fn typed_data_hash<S: SolStruct>(
    separator: &B256,
    type_hash: B256,
    message: &S,
) -> B256 {
    let mut digest = [0u8; 66];
    digest[..2].copy_from_slice(&[0x19, 0x01]);
    digest[2..34].copy_from_slice(separator.as_slice());
    digest[34..].copy_from_slice(struct_hash(type_hash, message).as_slice());
    keccak256(digest)
}

/// The `typeHash` of `S`, computed once per type.
macro_rules! cached_type_hash {
    ($sol:ty) => {{
        static HASH: std::sync::OnceLock<alloy::primitives::B256> = std::sync::OnceLock::new();
        *HASH.get_or_init(|| {
            alloy::primitives::keccak256(
                <$sol as alloy::sol_types::SolStruct>::eip712_encode_type().as_bytes(),
            )
        })
    }};
}
pub(crate) use cached_type_hash;

/// A payment from one slot to another slot of the same token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transfer {
    /// Payer; must be the signer.
    pub from: Address,
    /// Payee.
    pub to: Address,
    /// ERC-20 token of the slot.
    pub token: Address,
    /// Amount paid to `to`, in base units.
    pub amount: Amount,
    /// Fee paid to the operator, in base units.
    pub fee: Amount,
    /// Must equal the payer slot's current nonce.
    pub nonce: Nonce,
    /// Unix time (seconds) after which the node refuses the message.
    pub valid_until: u64,
}

impl Message for Transfer {
    type Sol = sol::Transfer;
    fn type_hash() -> B256 {
        cached_type_hash!(sol::Transfer)
    }

    fn to_sol(&self) -> sol::Transfer {
        sol::Transfer {
            from: self.from,
            to: self.to,
            token: self.token,
            amount: self.amount.base_units(),
            fee: self.fee.base_units(),
            nonce: self.nonce.get(),
            validUntil: self.valid_until,
        }
    }

    fn signer(&self) -> Address {
        self.from
    }
}

/// A withdrawal from the ledger to an on-chain recipient, paid out through a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Withdrawal {
    /// Owner of the debited slot; must be the signer.
    pub from: Address,
    /// Who can claim the tokens on-chain.
    pub recipient: Address,
    /// ERC-20 token.
    pub token: Address,
    /// Amount withdrawn, in base units.
    pub amount: Amount,
    /// Fee paid to the operator, in base units.
    pub fee: Amount,
    /// Must equal the slot's current nonce.
    pub nonce: Nonce,
    /// Unix time (seconds) after which the node refuses the message.
    pub valid_until: u64,
}

impl Message for Withdrawal {
    type Sol = sol::Withdrawal;
    fn type_hash() -> B256 {
        cached_type_hash!(sol::Withdrawal)
    }

    fn to_sol(&self) -> sol::Withdrawal {
        sol::Withdrawal {
            from: self.from,
            recipient: self.recipient,
            token: self.token,
            amount: self.amount.base_units(),
            fee: self.fee.base_units(),
            nonce: self.nonce.get(),
            validUntil: self.valid_until,
        }
    }

    fn signer(&self) -> Address {
        self.from
    }
}

/// Proof of ownership for owner-only reads and proof requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Authentication {
    /// The authenticated account; must be the signer.
    pub owner: Address,
    /// What the signature is for (e.g. `"lane_getAccount"`); the node checks it.
    pub purpose: String,
    /// Unix time (seconds) after which the signature is refused.
    pub expiry: u64,
}

impl Message for Authentication {
    type Sol = sol::Authentication;
    fn type_hash() -> B256 {
        cached_type_hash!(sol::Authentication)
    }

    fn to_sol(&self) -> sol::Authentication {
        sol::Authentication {
            owner: self.owner,
            purpose: self.purpose.clone(),
            expiry: self.expiry,
        }
    }

    fn signer(&self) -> Address {
        self.owner
    }
}

/// A request for a balance attestation (`lane_proveBalance`), signed by the owner.
///
/// Every parameter is signed, so that whoever sees a request (a verifier it was forwarded
/// to, a proxy) can only repeat the very same statement, never probe other thresholds and
/// bisect the balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProveBalance {
    /// The account; must be the signer.
    pub owner: Address,
    /// The token.
    pub token: Address,
    /// The lower bound to prove, in base units.
    pub threshold: Amount,
    /// The verifier's challenge the proof is bound to.
    pub challenge: B256,
    /// The committed batch whose root to prove under; 0 for the latest committed batch.
    pub batch: u64,
    /// Unix time (seconds) after which the node refuses the request.
    pub expiry: u64,
}

impl Message for ProveBalance {
    type Sol = sol::ProveBalance;
    fn type_hash() -> B256 {
        cached_type_hash!(sol::ProveBalance)
    }

    fn to_sol(&self) -> sol::ProveBalance {
        sol::ProveBalance {
            owner: self.owner,
            token: self.token,
            threshold: self.threshold.base_units(),
            challenge: self.challenge,
            batch: self.batch,
            expiry: self.expiry,
        }
    }

    fn signer(&self) -> Address {
        self.owner
    }
}

/// The message a wallet signs once to derive its viewing key.
pub fn viewing_key_message(owner: Address) -> sol::ViewingKey {
    sol::ViewingKey {
        owner,
        statement: VIEWING_KEY_STATEMENT.to_string(),
    }
}

/// The EIP-712 domain as a wallet's typed data states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TypedDomain {
    /// Must be `"Stablelane"`.
    pub name: String,
    /// Must be `"1"`.
    pub version: String,
    /// Chain id the wallet signed for.
    pub chain_id: u64,
    /// Settlement contract the wallet signed for.
    pub verifying_contract: Address,
}

impl TypedDomain {
    /// The domain of a deployment.
    pub fn new(chain_id: u64, settlement: Address) -> Self {
        Self {
            name: DOMAIN_NAME.to_string(),
            version: DOMAIN_VERSION.to_string(),
            chain_id,
            verifying_contract: settlement,
        }
    }
}

/// A message with its signature, as sent over JSON-RPC:
/// `{ "domain": { … }, "message": { … }, "signature": "0x<r><s><v>" }`.
///
/// `domain` is optional; when present (as in the typed data a wallet signed) the node
/// checks it first and reports a wrong chain id or contract as such rather than as a
/// signature by someone else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed<M> {
    /// The domain the wallet says it signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<TypedDomain>,
    /// The signed message.
    pub message: M,
    /// 65-byte secp256k1 signature (`v` 27/28 or 0/1), as 0x-prefixed hex.
    #[serde(with = "signature_hex")]
    pub signature: Signature,
}

/// Serde for a signature as the 0x-prefixed hex of its 65 bytes, as wallets print it.
pub mod signature_hex {
    use alloy::primitives::{hex, Signature};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes `r ‖ s ‖ v` (v = 27/28) as hex.
    pub fn serialize<S: Serializer>(
        signature: &Signature,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode_prefixed(signature.as_bytes()))
    }

    /// Parses 65 bytes of hex (with or without 0x).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Signature, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        let bytes = hex::decode(text.as_ref()).map_err(serde::de::Error::custom)?;
        Signature::from_raw(&bytes).map_err(serde::de::Error::custom)
    }
}
