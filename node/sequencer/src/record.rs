//! What the journal records: every input that changed the ledger, in order.
//!
//! Payloads are versioned JSON (`{"v":1,"kind":…}`): readable with ordinary tools when an
//! operator has to look at a journal, and tolerant of new record kinds. The node's state is
//! a deterministic function of this sequence: replaying it rebuilds the ledger, the state
//! tree and the receipts index.

use alloy::primitives::{Address, Signature};
use serde::{Deserialize, Serialize};
use stablelane::{messages::signature_hex, Signed, Transfer, Withdrawal};
use stablelane_ledger::{Deposit, DepositRefusal, ForcedWithdrawal};

/// Version of the record encoding.
pub const RECORD_VERSION: u32 = 1;

/// One journaled input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum JournalRecord {
    /// A deposit credited from the contract's queue.
    Deposit {
        /// The deposit.
        deposit: Deposit,
    },
    /// A deposit from the contract's queue consumed without credit: the ledger cannot hold
    /// it (`reason`). Its batch lists its queue index; the contract makes it refundable.
    /// (Added after the first journals were written: a new kind, so older journals read on.)
    RefusedDeposit {
        /// The deposit.
        deposit: Deposit,
        /// Why the ledger refused it, as it was when the deposit was consumed.
        reason: DepositRefusal,
    },
    /// An accepted transfer.
    Transfer {
        /// The signed message as received.
        tx: Signed<Transfer>,
        /// Unix time at acceptance (what `validUntil` was checked against).
        accepted_at_s: u64,
    },
    /// An accepted withdrawal.
    Withdrawal {
        /// The signed message as received.
        tx: Signed<Withdrawal>,
        /// Unix time at acceptance.
        accepted_at_s: u64,
    },
    /// A forced-withdrawal request served from the contract's queue. Records journaled
    /// before requests named a recipient have no `recipient` field: they read with the
    /// owner as the recipient (see [`ForcedWithdrawal`]).
    ForcedWithdrawal {
        /// The request.
        request: ForcedWithdrawal,
    },
    /// The end of a batch: every record since the previous seal belongs to batch `number`.
    SealBatch {
        /// The batch's number (the previous one + 1).
        number: u64,
    },
    /// A viewing-key registration (the owner's signature over the fixed message).
    RegisterViewingKey {
        /// The registering owner.
        owner: Address,
        /// Its viewing-key signature; the key is `keccak256` of it.
        #[serde(with = "signature_hex")]
        signature: Signature,
    },
}

#[derive(Serialize)]
struct Envelope<R> {
    v: u32,
    #[serde(flatten)]
    record: R,
}

/// Why a journal payload could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("undecodable journal record: {0}")]
pub struct DecodeError(String);

impl JournalRecord {
    /// The transaction hash of a signed transfer or withdrawal (its EIP-712 signing hash in
    /// the domain whose separator is `separator`); `None` for other records.
    pub fn tx_hash(&self, separator: &alloy::primitives::B256) -> Option<stablelane::TxHash> {
        use stablelane::Message;
        match self {
            Self::Transfer { tx, .. } => Some(tx.message.signing_hash_in(separator)),
            Self::Withdrawal { tx, .. } => Some(tx.message.signing_hash_in(separator)),
            _ => None,
        }
        .map(stablelane::TxHash)
    }

    /// The payload appended to the journal.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising these types cannot fail: all keys are strings, no maps with
        // non-string keys, no floats.
        serde_json::to_vec(&Envelope {
            v: RECORD_VERSION,
            record: self,
        })
        .unwrap_or_default()
    }

    /// Decodes a journal payload.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        // What `encode` writes starts with the version: parse the record straight from the
        // bytes after it (`{` + the rest), without building a `serde_json::Value` first.
        // Anything else (keys reordered by hand, another version) takes the general path.
        const _: () = assert!(RECORD_VERSION == 1, "ENCODED_PREFIX names the version");
        const ENCODED_PREFIX: &[u8] = b"{\"v\":1,";
        if let Some(rest) = payload.strip_prefix(ENCODED_PREFIX) {
            let mut object = Vec::with_capacity(rest.len().saturating_add(1));
            object.push(b'{');
            object.extend_from_slice(rest);
            return serde_json::from_slice(&object).map_err(|e| DecodeError(e.to_string()));
        }
        let value: serde_json::Value =
            serde_json::from_slice(payload).map_err(|e| DecodeError(e.to_string()))?;
        let version = value.get("v").and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(RECORD_VERSION)) {
            return Err(DecodeError(format!("unsupported version {version:?}")));
        }
        let mut value = value;
        if let Some(map) = value.as_object_mut() {
            map.remove("v");
        }
        serde_json::from_value(value).map_err(|e| DecodeError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use alloy::signers::local::PrivateKeySigner;
    use stablelane::{domain, sign, Amount, Nonce};

    use super::*;

    #[test]
    fn records_round_trip_and_unknown_versions_are_refused() {
        let key = PrivateKeySigner::random();
        let tx = sign(
            &key,
            Transfer {
                from: key.address(),
                to: Address::repeat_byte(2),
                token: Address::repeat_byte(3),
                amount: Amount(5),
                fee: Amount(1),
                nonce: Nonce(0),
                valid_until: 9,
            },
            &domain(1, Address::repeat_byte(4)),
        )
        .unwrap();
        let records = [
            JournalRecord::Transfer {
                tx,
                accepted_at_s: 3,
            },
            JournalRecord::Deposit {
                deposit: Deposit {
                    queue_index: 0,
                    recipient: Address::repeat_byte(5),
                    token: Address::repeat_byte(3),
                    amount: Amount(u128::MAX),
                },
            },
            JournalRecord::RefusedDeposit {
                deposit: Deposit {
                    queue_index: 1,
                    recipient: Address::repeat_byte(5),
                    token: Address::repeat_byte(3),
                    amount: Amount(1),
                },
                reason: DepositRefusal::BalanceOverflow,
            },
            JournalRecord::ForcedWithdrawal {
                request: ForcedWithdrawal {
                    queue_index: 2,
                    owner: Address::repeat_byte(5),
                    token: Address::repeat_byte(3),
                    recipient: Address::repeat_byte(6),
                },
            },
        ];
        for record in records {
            let bytes = record.encode();
            assert!(bytes.starts_with(b"{\"v\":1,"));
            assert_eq!(JournalRecord::decode(&bytes).unwrap(), record);
        }
        assert!(JournalRecord::decode(br#"{"v":2,"kind":"deposit"}"#).is_err());
        assert!(JournalRecord::decode(b"not json").is_err());
    }

    #[test]
    fn refused_deposit_records_have_a_stable_encoding() {
        let record = JournalRecord::RefusedDeposit {
            deposit: Deposit {
                queue_index: 7,
                recipient: Address::repeat_byte(5),
                token: Address::repeat_byte(3),
                amount: Amount(9),
            },
            reason: DepositRefusal::SlotLimitReached,
        };
        let text = String::from_utf8(record.encode()).unwrap();
        assert!(
            text.starts_with(r#"{"v":1,"kind":"refusedDeposit","deposit":{"#),
            "{text}"
        );
        assert!(text.ends_with(r#","reason":"slotLimitReached"}"#), "{text}");
        assert_eq!(JournalRecord::decode(text.as_bytes()).unwrap(), record);
        // A reason this build does not know is refused, not guessed.
        let unknown = text.replace("slotLimitReached", "noSuchReason");
        assert!(JournalRecord::decode(unknown.as_bytes()).is_err());
    }

    #[test]
    fn forced_withdrawals_journaled_without_a_recipient_pay_the_owner() {
        let owner = Address::repeat_byte(5);
        let token = Address::repeat_byte(3);
        let old = format!(
            r#"{{"v":1,"kind":"forcedWithdrawal","request":{{"queue_index":2,"owner":"{owner}","token":"{token}"}}}}"#
        );
        // Both decoding paths: the encoder's layout and the general one.
        let reordered = format!(
            r#"{{"kind":"forcedWithdrawal","request":{{"queue_index":2,"owner":"{owner}","token":"{token}"}},"v":1}}"#
        );
        let expected = JournalRecord::ForcedWithdrawal {
            request: ForcedWithdrawal {
                queue_index: 2,
                owner,
                token,
                recipient: owner,
            },
        };
        for bytes in [old.as_bytes(), reordered.as_bytes()] {
            assert_eq!(JournalRecord::decode(bytes).unwrap(), expected);
        }
        // A record written now carries the recipient.
        let named = JournalRecord::ForcedWithdrawal {
            request: ForcedWithdrawal {
                queue_index: 2,
                owner,
                token,
                recipient: Address::repeat_byte(7),
            },
        };
        let bytes = named.encode();
        assert!(String::from_utf8_lossy(&bytes)
            .contains(&format!(r#""recipient":"{}""#, Address::repeat_byte(7))));
        assert_eq!(JournalRecord::decode(&bytes).unwrap(), named);
    }

    #[test]
    fn both_decoding_paths_accept_the_same_records_and_refuse_the_same_mistakes() {
        let seal = JournalRecord::SealBatch { number: 3 };
        // The encoder's layout (fast path) and the same record written otherwise by hand.
        for bytes in [
            &br#"{"v":1,"kind":"sealBatch","number":3}"#[..],
            br#"{"kind":"sealBatch","number":3,"v":1}"#,
            br#"{ "v": 1, "kind": "sealBatch", "number": 3 }"#,
        ] {
            assert_eq!(JournalRecord::decode(bytes).unwrap(), seal);
        }
        for bytes in [
            &br#"{"v":1,"kind":"sealBatch","number":3,"extra":1}"#[..],
            br#"{"kind":"sealBatch","number":3,"extra":1,"v":1}"#,
            br#"{"v":1,"kind":"sealBatch","number":3,"v":2}"#,
            br#"{"v":1,"kind":"noSuchKind"}"#,
            br#"{"kind":"noSuchKind","v":1}"#,
            br#"{"v":1,}"#,
            br#"{"v":1,"kind":"sealBatch","number":-3}"#,
            br#"{"v":1,"kind":"sealBatch"}"#,
            br#"{"v":1,"kind":"sealBatch","number":3}trailing"#,
        ] {
            assert!(
                JournalRecord::decode(bytes).is_err(),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
