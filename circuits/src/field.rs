//! Conversions between [`Fr`] and bytes.
//!
//! Field elements travel as 32 big-endian bytes (the encoding of Solidity's `uint256` and of
//! circomlibjs' `F.toObject`). Decoding is strict: [`fr_from_be_bytes`] rejects any integer at
//! or above the field modulus instead of reducing it, so every field element has exactly one
//! byte encoding.

use ark_ff::{BigInt, PrimeField};

use crate::{Error, Fr, Result};

/// Length of the big-endian encoding of a field element.
pub const FR_BYTES: usize = 32;

/// A 32-byte big-endian EVM word (a Solidity `uint256`): how field elements and curve
/// coordinates cross into contracts.
pub type EvmWord = [u8; FR_BYTES];

/// Encodes `value` as 32 big-endian bytes (canonical integer in `[0, r)`).
pub fn fr_to_be_bytes(value: &Fr) -> [u8; FR_BYTES] {
    let limbs = value.into_bigint().0;
    let mut out = [0u8; FR_BYTES];
    // Limbs are little-endian u64s; bytes are big-endian overall.
    for (chunk, limb) in out.chunks_exact_mut(8).zip(limbs.iter().rev()) {
        chunk.copy_from_slice(&limb.to_be_bytes());
    }
    out
}

/// Decodes 32 big-endian bytes into a field element.
///
/// # Errors
///
/// [`Error::NonCanonicalFieldElement`] if the integer is at or above the field modulus `r`.
pub fn fr_from_be_bytes(bytes: &[u8; FR_BYTES]) -> Result<Fr> {
    let mut limbs = [0u64; 4];
    for (limb, chunk) in limbs.iter_mut().rev().zip(bytes.chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        *limb = u64::from_be_bytes(word);
    }
    Fr::from_bigint(BigInt::new(limbs)).ok_or(Error::NonCanonicalFieldElement)
}

/// Maps a 20-byte Ethereum address to the field element of the same big-endian integer.
///
/// Addresses are below 2^160, far below `r`, so the map is injective and never reduces.
pub fn address_to_fr(address: &[u8; 20]) -> Fr {
    // A 160-bit integer is below the 254-bit modulus: "mod order" never reduces here.
    Fr::from_be_bytes_mod_order(address)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::{AdditiveGroup, Field};

    fn modulus_be() -> [u8; FR_BYTES] {
        let mut out = [0u8; FR_BYTES];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(Fr::MODULUS.0.iter().rev()) {
            chunk.copy_from_slice(&limb.to_be_bytes());
        }
        out
    }

    #[test]
    fn round_trips_small_and_extreme_values() {
        let minus_one = -Fr::ONE;
        for value in [
            Fr::ZERO,
            Fr::ONE,
            Fr::from(0x0102_0304_0506_0708u64),
            minus_one,
        ] {
            let bytes = fr_to_be_bytes(&value);
            assert_eq!(fr_from_be_bytes(&bytes), Ok(value));
        }
        let mut one = [0u8; FR_BYTES];
        one[31] = 1;
        assert_eq!(fr_to_be_bytes(&Fr::ONE), one);
        let mut two_pow_64 = [0u8; FR_BYTES];
        two_pow_64[23] = 1;
        assert_eq!(
            fr_from_be_bytes(&two_pow_64),
            Ok(Fr::from(u128::from(u64::MAX) + 1))
        );
    }

    #[test]
    fn rejects_modulus_and_above() {
        let modulus = modulus_be();
        assert_eq!(
            fr_from_be_bytes(&modulus),
            Err(Error::NonCanonicalFieldElement)
        );
        assert_eq!(
            fr_from_be_bytes(&[0xff; FR_BYTES]),
            Err(Error::NonCanonicalFieldElement)
        );
        let mut below = modulus;
        below[31] -= 1;
        assert_eq!(fr_from_be_bytes(&below), Ok(-Fr::ONE));
    }

    #[test]
    fn addresses_are_big_endian_integers() {
        let mut address = [0u8; 20];
        address[19] = 0x2a;
        address[0] = 0x01;
        let expected = Fr::from(2u64).pow([152]) + Fr::from(0x2au64);
        assert_eq!(address_to_fr(&address), expected);
        assert_eq!(
            address_to_fr(&[0xff; 20]),
            Fr::from(2u64).pow([160]) - Fr::ONE
        );
    }
}
