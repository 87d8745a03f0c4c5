//! Parsing of method parameters from raw JSON, so that the cases a generic
//! "invalid params" would blur (an amount overflowing 128 bits, signature bytes that are
//! not a signature) get their own codes.

use alloy::primitives::{hex, Signature};
use serde::de::DeserializeOwned;
use serde_json::Value;
use stablelane::Amount;

use crate::error::{Result, RpcError};

/// The positional parameters of a call: `[]`, `[a, b, …]`, or absent.
pub(crate) fn positional(raw: Option<&str>, method: &str, max: usize) -> Result<Vec<Value>> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let value: Value = serde_json::from_str(raw)
        .map_err(|_| RpcError::invalid_params(format!("{method}: params are not JSON")))?;
    let Value::Array(items) = value else {
        return Err(RpcError::invalid_params(format!(
            "{method}: params must be a positional array"
        )));
    };
    if items.len() > max {
        return Err(RpcError::invalid_params(format!(
            "{method}: takes at most {max} parameter(s), got {}",
            items.len()
        )));
    }
    Ok(items)
}

/// The parameter at `index`, required.
pub(crate) fn required<T: DeserializeOwned>(
    items: &[Value],
    index: usize,
    name: &str,
) -> Result<T> {
    let Some(value) = items.get(index) else {
        return Err(RpcError::invalid_params(format!(
            "missing parameter {index} ({name})"
        )));
    };
    serde_json::from_value(value.clone())
        .map_err(|e| RpcError::invalid_params(format!("parameter {index} ({name}): {e}")))
}

/// The parameter at `index`, optional (absent or `null`).
pub(crate) fn optional(items: &[Value], index: usize) -> Option<&Value> {
    items.get(index).filter(|v| !v.is_null())
}

/// Parses a `Signed<M>` whose message has the base-unit string fields `amount_fields`.
///
/// Before the typed parse: an amount field that is a digit string too large for 128 bits is
/// [`stablelane::ErrorCode::AmountOverflow`]; a `signature` string that is not 65 bytes of
/// hex with a valid `v` is [`stablelane::ErrorCode::InvalidSignature`]. Everything else that
/// does not parse is invalid params.
pub(crate) fn signed<T: DeserializeOwned>(
    value: &Value,
    name: &str,
    amount_fields: &[&str],
) -> Result<T> {
    if let Some(message) = value.get("message") {
        for field in amount_fields {
            if let Some(Value::String(text)) = message.get(*field) {
                if let Err(e) = text.parse::<Amount>() {
                    return Err(RpcError::amount(field, &e));
                }
            }
        }
    }
    if let Some(Value::String(text)) = value.get("signature") {
        let parsed = hex::decode(text)
            .map_err(|_| "signature is not hex".to_string())
            .and_then(|bytes| {
                Signature::from_raw(&bytes)
                    .map_err(|_| "signature is not 65 bytes r ‖ s ‖ v".to_string())
            });
        if let Err(message) = parsed {
            return Err(RpcError::new(
                stablelane::ErrorCode::InvalidSignature,
                message,
            ));
        }
    }
    serde_json::from_value(value.clone())
        .map_err(|e| RpcError::invalid_params(format!("{name}: {e}")))
}

/// The one `Signed<M>` parameter of a sending method. A well-formed call is parsed
/// straight into its type; anything else takes the path of [`positional`] and [`signed`],
/// so refusals keep their precise codes. Both accept exactly the same input: the direct
/// parse is the last step of the other path.
pub(crate) fn single_signed<T: DeserializeOwned>(
    raw: Option<&str>,
    method: &str,
    name: &str,
    amount_fields: &[&str],
) -> Result<T> {
    if let Some(Ok((parsed,))) = raw.map(serde_json::from_str::<(T,)>) {
        return Ok(parsed);
    }
    let items = positional(raw, method, 1)?;
    let value = items
        .first()
        .ok_or_else(|| RpcError::invalid_params(format!("missing parameter 0 ({name})")))?;
    signed(value, name, amount_fields)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use stablelane::{ErrorCode, Signed, Transfer};

    use super::*;

    #[test]
    fn positional_params_are_bounded() {
        assert_eq!(positional(None, "m", 1).unwrap().len(), 0);
        assert_eq!(positional(Some("[1]"), "m", 1).unwrap().len(), 1);
        let too_many = positional(Some("[1,2]"), "m", 1).unwrap_err();
        assert_eq!(too_many.code, ErrorCode::InvalidParams);
        let object = positional(Some("{\"a\":1}"), "m", 1).unwrap_err();
        assert_eq!(object.code, ErrorCode::InvalidParams);
    }

    #[test]
    fn overflow_and_bad_signatures_have_their_own_codes() {
        let overflow = json!({"message": {"amount": "340282366920938463463374607431768211456"}});
        let error =
            signed::<Signed<Transfer>>(&overflow, "transfer", &["amount", "fee"]).unwrap_err();
        assert_eq!(error.code, ErrorCode::AmountOverflow);

        let bad_signature = json!({"message": {"amount": "1"}, "signature": "0x1234"});
        let error =
            signed::<Signed<Transfer>>(&bad_signature, "transfer", &["amount", "fee"]).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidSignature);

        let error = signed::<Signed<Transfer>>(&json!({"message": 1}), "transfer", &["amount"])
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParams);
    }

    #[test]
    fn the_direct_parse_and_the_checked_path_agree() {
        use alloy::signers::local::PrivateKeySigner;
        let key = PrivateKeySigner::random();
        let domain = stablelane::domain(1, alloy::primitives::Address::repeat_byte(1));
        let tx = stablelane::sign(
            &key,
            Transfer {
                from: key.address(),
                to: alloy::primitives::Address::repeat_byte(2),
                token: alloy::primitives::Address::repeat_byte(3),
                amount: Amount(5),
                fee: Amount(1),
                nonce: stablelane::Nonce(0),
                valid_until: 9,
            },
            &domain,
        )
        .unwrap();
        let raw = serde_json::to_string(&json!([tx])).unwrap();
        let direct: Signed<Transfer> =
            single_signed(Some(&raw), "m", "transfer", &["amount"]).unwrap();
        let items = positional(Some(&raw), "m", 1).unwrap();
        let checked: Signed<Transfer> = signed(&items[0], "transfer", &["amount"]).unwrap();
        assert_eq!(direct, checked);
        assert_eq!(direct, tx);
        // What the direct parse refuses gets the checked path's codes.
        let cases = [
            (
                None,
                ErrorCode::InvalidParams,
                "missing parameter 0 (transfer)",
            ),
            (
                Some("[]".to_string()),
                ErrorCode::InvalidParams,
                "missing parameter 0",
            ),
            (
                Some(format!("[{}, 1]", serde_json::to_string(&tx).unwrap())),
                ErrorCode::InvalidParams,
                "at most 1",
            ),
            (
                Some(raw.replace("\"5\"", "\"340282366920938463463374607431768211456\"")),
                ErrorCode::AmountOverflow,
                "",
            ),
            (
                Some({
                    let mut v = json!([tx]);
                    v[0]["signature"] = json!("0x1234");
                    v.to_string()
                }),
                ErrorCode::InvalidSignature,
                "65 bytes",
            ),
        ];
        for (raw, code, text) in cases {
            let e = single_signed::<Signed<Transfer>>(raw.as_deref(), "m", "transfer", &["amount"])
                .unwrap_err();
            assert_eq!(e.code, code, "{raw:?}: {}", e.message);
            assert!(e.message.contains(text), "{}", e.message);
        }
    }
}
