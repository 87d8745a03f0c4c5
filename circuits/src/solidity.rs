//! Renders the Solidity Groth16 verifier (`contracts/src/Groth16Verifier.sol`) from a
//! verifying key.
//!
//! The contract implements `IGroth16Verifier.verifyProof(uint256[8] proof, uint256[5] input)`
//! with the BN254 precompiles: ecAdd (`0x06`) and ecMul (`0x07`) fold the inputs into
//! `vk_x = IC_0 + sum input_i * IC_(i+1)`, and the pairing precompile (`0x08`) checks
//! `e(-A, B) e(alpha, beta) e(vk_x, gamma) e(C, delta) == 1`. Before any precompile it returns
//! `false` (never reverts) for an input `>= r`, a proof coordinate `>= q`, or a proof point
//! off its curve. The one malformed proof left for the precompile to reject is a `B` on the
//! twist but outside G2 (which only a deliberate attacker produces): the pairing precompile
//! fails, consuming the gas forwarded to it, and the function still returns `false`.
//!
//! The output is deterministic and already in `forge fmt` layout, so the committed file can be
//! checked byte for byte against a fresh rendering (`tests/integration/generated_files.rs`).

use std::fmt::Write;

use ark_bn254::{Fq, Fr, G1Affine, G2Affine};
use ark_ec::short_weierstrass::SWCurveConfig;
use ark_ec::AffineRepr;
use ark_ff::{AdditiveGroup, PrimeField};

use crate::keys::{check_verifying_key, verifying_key_hash, VerifyingKey, DEV_SETUP_SEED};
use crate::prover::fq_to_word;
use crate::statement::PUBLIC_INPUTS;
use crate::Result;

/// Setup description of the dev verifier's header: what [`crate::keys::insecure_dev_setup`]
/// is, in the words a reader of the contract needs.
pub fn dev_setup_description() -> String {
    format!(
        "INSECURE deterministic dev setup (keys::insecure_dev_setup, seed \"{}\"): anyone can \
         recompute its secrets and forge proofs. For devnets and tests only.",
        String::from_utf8_lossy(&DEV_SETUP_SEED)
    )
}

/// Renders the verifier contract for `vk`. `setup` says where the key comes from (a sentence
/// or two for the header comment, wrapped there; see [`dev_setup_description`]).
///
/// # Errors
///
/// [`crate::Error::VerifyingKeyMismatch`] for a key with another number of public inputs,
/// [`crate::Error::KeyEncoding`] if the key cannot be hashed.
pub fn render_verifier(vk: &VerifyingKey, setup: &str) -> Result<String> {
    check_verifying_key(vk)?;
    let setup: String = wrap(&format!("Setup: {setup}"), 92)
        .iter()
        .map(|text| format!("// {text}\n"))
        .collect();

    let mut key = String::new();
    g1_constants(&mut key, "ALPHA", &vk.alpha_g1);
    g2_constants(&mut key, "BETA", &vk.beta_g2);
    g2_constants(&mut key, "GAMMA", &vk.gamma_g2);
    g2_constants(&mut key, "DELTA", &vk.delta_g2);
    for (i, point) in vk.gamma_abc_g1.iter().enumerate() {
        g1_constants(&mut key, &format!("IC{i}"), point);
    }

    let mut twist = String::new();
    let b2 = ark_bn254::g2::Config::COEFF_B;
    constant(&mut twist, "B2_1", &b2.c1);
    constant(&mut twist, "B2_0", &b2.c0);

    let fold_inputs: String = (0..PUBLIC_INPUTS)
        .map(|i| {
            format!(
                "        if (!_mulAdd(vkX, IC{n}_X, IC{n}_Y, input[{i}])) return false;\n",
                n = i + 1
            )
        })
        .collect();

    Ok(TEMPLATE
        .replace("{SETUP}\n", &setup)
        .replace("{KEY_HASH}", &hex(&verifying_key_hash(vk)?))
        .replace("{R}", &Fr::MODULUS.to_string())
        .replace("{Q}", &Fq::MODULUS.to_string())
        .replace("{TWIST}\n", &twist)
        .replace("{VERIFYING_KEY}\n", &key)
        .replace("{FOLD_INPUTS}\n", &fold_inputs))
}

/// `0x` and two lowercase hex digits per byte.
fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * bytes.len());
    s.push_str("0x");
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Appends the declaration of a `uint256` constant holding `x`.
fn constant(out: &mut String, name: &str, x: &Fq) {
    let value = hex(&fq_to_word(x));
    // Writing to a String cannot fail.
    let _ = writeln!(out, "    uint256 internal constant {name} = {value};");
}

fn g1_constants(out: &mut String, name: &str, p: &G1Affine) {
    let (x, y) = p.xy().unwrap_or((Fq::ZERO, Fq::ZERO));
    constant(out, &format!("{name}_X"), &x);
    constant(out, &format!("{name}_Y"), &y);
}

/// G2 coordinates in the precompile's order: imaginary part (`c1`) first.
fn g2_constants(out: &mut String, name: &str, p: &G2Affine) {
    let (x, y) = p.xy().unwrap_or_default();
    constant(out, &format!("{name}_X1"), &x.c1);
    constant(out, &format!("{name}_X0"), &x.c0);
    constant(out, &format!("{name}_Y1"), &y.c1);
    constant(out, &format!("{name}_Y0"), &y.c0);
}

/// Splits `text` into lines of at most `width` characters at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        if !current.is_empty() && current.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// The contract, with `{PLACEHOLDERS}` for what depends on the key. Already in `forge fmt`
/// layout once rendered.
const TEMPLATE: &str = r#"// SPDX-License-Identifier: MIT OR Apache-2.0
// GENERATED FILE, DO NOT EDIT. Rendered by the stablelane-circuits crate
// (circuits/src/solidity.rs) from the attestation circuit's verifying key.
// Regenerate: STABLELANE_BLESS=1 cargo test -p stablelane-circuits --test integration generated_files
//
{SETUP}
// Verifying key hash (keccak256 of its compressed arkworks encoding):
// {KEY_HASH}
pragma solidity ^0.8.24;

import {IGroth16Verifier} from "./IGroth16Verifier.sol";

/// @title Groth16 verifier of Stablelane's balance-attestation circuit (BN254)
/// @notice Generated from the circuit's verifying key (see the header); public inputs are
///         `[root, owner, token, threshold, context]`.
/// @dev Returns false, never reverts, for an input >= R, a proof coordinate >= Q, or a proof
///      point off its curve. Then checks e(-A, B) e(alpha, beta) e(vk_x, gamma) e(C, delta)
///      == 1 with the precompiles ecAdd (0x06), ecMul (0x07) and pairing (0x08), where
///      vk_x = IC0 + sum input[i] * IC(i+1). A B on the twist but outside G2 (only a
///      deliberate attacker makes one) makes the pairing precompile fail: the function
///      returns false, and that failure consumes the gas forwarded to the precompile (all but
///      1/64 of what is left).
contract Groth16Verifier is IGroth16Verifier {
    /// @notice keccak256 of the verifying key this contract was generated from
    ///         (compressed arkworks encoding): compare it with the hash of your
    ///         proving key's verifying key before trusting proofs to verify here.
    bytes32 public constant VERIFYING_KEY_HASH = {KEY_HASH};

    /// @dev BN254 scalar field modulus: every public input must be below it.
    uint256 internal constant R = {R};
    /// @dev BN254 base field modulus: every proof coordinate must be below it.
    uint256 internal constant Q = {Q};
    /// @dev B2 = 3 / (9 + i), the constant of the twist y^2 = x^3 + B2 that holds G2.
{TWIST}

    // Verifying key. G2 points as (x.c1, x.c0, y.c1, y.c0): the precompile's order.
{VERIFYING_KEY}

    /// @inheritdoc IGroth16Verifier
    function verifyProof(uint256[8] calldata proof, uint256[5] calldata input) external view returns (bool) {
        for (uint256 i = 0; i < 8; ++i) {
            if (proof[i] >= Q) return false;
        }
        for (uint256 i = 0; i < 5; ++i) {
            if (input[i] >= R) return false;
        }
        if (!_isOnCurveG1(proof[0], proof[1]) || !_isOnCurveG1(proof[6], proof[7])) return false;
        if (!_isOnCurveG2(proof[2], proof[3], proof[4], proof[5])) return false;

        uint256[2] memory vkX = [IC0_X, IC0_Y];
{FOLD_INPUTS}

        uint256[24] memory pairing = [
            proof[0],
            (Q - proof[1]) % Q,
            proof[2],
            proof[3],
            proof[4],
            proof[5],
            ALPHA_X,
            ALPHA_Y,
            BETA_X1,
            BETA_X0,
            BETA_Y1,
            BETA_Y0,
            vkX[0],
            vkX[1],
            GAMMA_X1,
            GAMMA_X0,
            GAMMA_Y1,
            GAMMA_Y0,
            proof[6],
            proof[7],
            DELTA_X1,
            DELTA_X0,
            DELTA_Y1,
            DELTA_Y0
        ];
        uint256[1] memory result;
        bool ok;
        assembly ("memory-safe") {
            ok := staticcall(gas(), 0x08, pairing, 768, result, 0x20)
        }
        return ok && result[0] == 1;
    }

    /// @dev Whether (x, y) is on y^2 = x^3 + 3 or is the point at infinity (0, 0). G1 has
    ///      cofactor 1: on the curve is in the group. Coordinates are already below Q.
    function _isOnCurveG1(uint256 x, uint256 y) private pure returns (bool) {
        if (x == 0 && y == 0) return true;
        return mulmod(y, y, Q) == addmod(mulmod(x, mulmod(x, x, Q), Q), 3, Q);
    }

    /// @dev Whether (x, y) is on the twist y^2 = x^3 + B2 over Fq2 = Fq[i]/(i^2 + 1), or is the
    ///      point at infinity (0, 0). Elements as (c1, c0); coordinates are already below Q.
    ///      Membership of the subgroup G2 is left to the pairing precompile.
    function _isOnCurveG2(uint256 x1, uint256 x0, uint256 y1, uint256 y0) private pure returns (bool) {
        if ((x1 | x0 | y1 | y0) == 0) return true;
        // x^2
        uint256 s0 = addmod(mulmod(x0, x0, Q), Q - mulmod(x1, x1, Q), Q);
        uint256 s1 = mulmod(addmod(x0, x0, Q), x1, Q);
        // x^3 + B2
        uint256 r0 = addmod(addmod(mulmod(s0, x0, Q), Q - mulmod(s1, x1, Q), Q), B2_0, Q);
        uint256 r1 = addmod(addmod(mulmod(s0, x1, Q), mulmod(s1, x0, Q), Q), B2_1, Q);
        // y^2
        uint256 t0 = addmod(mulmod(y0, y0, Q), Q - mulmod(y1, y1, Q), Q);
        uint256 t1 = mulmod(addmod(y0, y0, Q), y1, Q);
        return t0 == r0 && t1 == r1;
    }

    /// @dev acc += s * (x, y) with ecMul and ecAdd; false if a precompile fails (it cannot
    ///      for the key's points and any scalar).
    function _mulAdd(uint256[2] memory acc, uint256 x, uint256 y, uint256 s) private view returns (bool ok) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, x)
            mstore(add(p, 0x20), y)
            mstore(add(p, 0x40), s)
            ok := staticcall(gas(), 0x07, p, 0x60, p, 0x40)
            if ok {
                mstore(add(p, 0x40), mload(acc))
                mstore(add(p, 0x60), mload(add(acc, 0x20)))
                ok := staticcall(gas(), 0x06, p, 0x80, acc, 0x40)
            }
        }
    }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("", 5), Vec::<String>::new());
        assert_eq!(wrap("toolongword x", 4), ["toolongword", "x"]);
    }

    #[test]
    fn every_placeholder_is_filled() {
        use ark_ec::CurveGroup;
        use ark_ff::UniformRand;
        let mut rng = ark_std::test_rng();
        let g1 = |rng: &mut _| ark_bn254::G1Projective::rand(rng).into_affine();
        let g2 = |rng: &mut _| ark_bn254::G2Projective::rand(rng).into_affine();
        let vk = VerifyingKey {
            alpha_g1: g1(&mut rng),
            beta_g2: g2(&mut rng),
            gamma_g2: g2(&mut rng),
            delta_g2: g2(&mut rng),
            gamma_abc_g1: (0..=PUBLIC_INPUTS).map(|_| g1(&mut rng)).collect(),
        };
        let source = render_verifier(&vk, "a test key").expect("render");
        for placeholder in [
            "{SETUP}",
            "{KEY_HASH}",
            "{R}",
            "{Q}",
            "{TWIST}",
            "{VERIFYING_KEY}",
            "{FOLD_INPUTS}",
        ] {
            assert!(!source.contains(placeholder), "{placeholder} left");
        }
        assert!(source.contains("// Setup: a test key\n"));
        assert!(source.contains("uint256 internal constant IC5_Y = 0x"));
        assert!(!source.contains("IC6_X"));
        assert!(source.contains("input[4])) return false;\n"));
        let short = VerifyingKey {
            gamma_abc_g1: vk.gamma_abc_g1[..3].to_vec(),
            ..vk
        };
        assert_eq!(
            render_verifier(&short, "x"),
            Err(crate::Error::VerifyingKeyMismatch { inputs: 2 })
        );
    }

    #[test]
    fn hex_is_lowercase_and_prefixed() {
        assert_eq!(hex(&[0x00, 0xab, 0x0f]), "0x00ab0f");
    }
}
