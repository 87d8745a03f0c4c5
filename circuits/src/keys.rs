//! Groth16 keys of the attestation circuit: the INSECURE deterministic dev setup, their
//! (de)serialisation, and the verifying-key hash that ties a key to a deployed verifier.
//!
//! # The dev setup is insecure
//!
//! [`insecure_dev_setup`] draws the setup's secrets ("toxic waste") from ChaCha20 seeded with
//! the published constant [`DEV_SETUP_SEED`]. Anyone can recompute them and forge a proof of
//! any statement, for example an exit of someone else's funds. It exists so that devnets,
//! tests and the committed Solidity verifier are reproducible byte for byte. A deployment that
//! holds real value needs keys from a multi-party ceremony, loaded with
//! [`read_proving_key`] / [`read_verifying_key`], and a verifier rendered from them.
//!
//! # Encoding
//!
//! Keys are stored in arkworks' compressed canonical encoding ([`CanonicalSerialize`]).
//! Reading validates every point (on the curve, in the prime-order subgroup): about a second
//! for the proving key (1.9 MB: about 43,000 G1 and 8,900 G2 points), so load it once. The
//! key hash ([`verifying_key_hash`]) is keccak256 of the compressed verifying key (424 bytes);
//! the generated verifier publishes it as `VERIFYING_KEY_HASH`.

use std::fs;
use std::io::Write;
use std::path::Path;

use ark_bn254::Bn254;
use ark_groth16::Groth16;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use ark_std::rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha3::{Digest, Keccak256};

use crate::circuit::AttestationCircuit;
use crate::statement::PUBLIC_INPUTS;
use crate::{Error, Result};

/// Groth16 proving key of the attestation circuit (BN254).
pub type ProvingKey = ark_groth16::ProvingKey<Bn254>;
/// Groth16 verifying key of the attestation circuit (BN254).
pub type VerifyingKey = ark_groth16::VerifyingKey<Bn254>;
/// A verifying key with its pairing precomputations, for repeated verification.
pub type PreparedVerifyingKey = ark_groth16::PreparedVerifyingKey<Bn254>;

/// The published seed of the INSECURE dev setup. Knowing it is knowing the toxic waste.
pub const DEV_SETUP_SEED: [u8; 32] = *b"stablelane INSECURE dev setup v1";

/// keccak256 of the INSECURE dev setup's verifying key ([`verifying_key_hash`] of
/// [`insecure_dev_setup`]'s key; a test recomputes it): the `VERIFYING_KEY_HASH` of the
/// committed `Groth16Verifier.sol`. A deployment whose verifier publishes it can have exits
/// and attestations forged by anyone.
pub const INSECURE_DEV_VERIFYING_KEY_HASH: [u8; 32] = [
    0xb6, 0x13, 0x0f, 0x28, 0x0e, 0xe6, 0x99, 0x03, 0xfb, 0x35, 0xdd, 0xe0, 0xab, 0xb4, 0x4a, 0xbd,
    0x39, 0xdd, 0xd7, 0xc4, 0xdc, 0x63, 0xae, 0x27, 0xda, 0xb9, 0x7e, 0x52, 0xc5, 0x7c, 0xda, 0x86,
];

/// anvil's chain id: the only chain on which the node, the wallet and the deploy tool accept
/// the INSECURE dev keys unless told otherwise ([`check_dev_keys_allowed`]).
pub const DEVNET_CHAIN_ID: u64 = 31337;

/// Refuses the INSECURE dev keys off a devnet: `Ok` if `key_hash` is not
/// [`INSECURE_DEV_VERIFYING_KEY_HASH`], if `chain_id` is [`DEVNET_CHAIN_ID`], or if the caller
/// explicitly allows them anywhere (`allow_off_devnet`, for a test chain with another id).
///
/// # Errors
///
/// [`Error::InsecureDevKeys`] otherwise.
pub fn check_dev_keys_allowed(
    chain_id: u64,
    key_hash: &[u8; 32],
    allow_off_devnet: bool,
) -> Result<()> {
    if key_hash == &INSECURE_DEV_VERIFYING_KEY_HASH
        && chain_id != DEVNET_CHAIN_ID
        && !allow_off_devnet
    {
        return Err(Error::InsecureDevKeys { chain_id });
    }
    Ok(())
}

/// INSECURE: Groth16 setup of the attestation circuit with secrets derived from the public
/// [`DEV_SETUP_SEED`], for devnets and tests only (see the [module docs](self)). Deterministic:
/// the same keys on every machine, every time. Takes a few seconds.
///
/// # Errors
///
/// [`Error::Synthesis`] if the circuit cannot be synthesised (a bug).
pub fn insecure_dev_setup() -> Result<(ProvingKey, VerifyingKey)> {
    setup(&mut ChaCha20Rng::from_seed(DEV_SETUP_SEED))
}

/// A single-party Groth16 setup of the attestation circuit with secrets drawn from `rng`.
/// Whoever knows what `rng` produced can forge proofs: draw it from the OS and drop it (a
/// multi-party ceremony removes even that trust; see `docs/keys.md`).
///
/// # Errors
///
/// [`Error::Synthesis`] if the circuit cannot be synthesised (a bug).
pub fn setup<R: ark_std::rand::RngCore + ark_std::rand::CryptoRng>(
    rng: &mut R,
) -> Result<(ProvingKey, VerifyingKey)> {
    let pk = Groth16::<Bn254>::generate_random_parameters_with_reduction(
        AttestationCircuit::blank(),
        rng,
    )?;
    let vk = pk.vk.clone();
    Ok((pk, vk))
}

/// Checks that `vk` has one input point per public input (plus the constant term).
///
/// # Errors
///
/// [`Error::VerifyingKeyMismatch`] otherwise.
pub fn check_verifying_key(vk: &VerifyingKey) -> Result<()> {
    if vk.gamma_abc_g1.len() != PUBLIC_INPUTS + 1 {
        return Err(Error::VerifyingKeyMismatch {
            inputs: vk.gamma_abc_g1.len().saturating_sub(1),
        });
    }
    Ok(())
}

/// Compressed encoding of a verifying key.
///
/// # Errors
///
/// [`Error::KeyEncoding`] if serialisation fails (it does not for well-formed keys).
pub fn verifying_key_to_bytes(vk: &VerifyingKey) -> Result<Vec<u8>> {
    to_bytes(vk)
}

/// Decodes and validates a compressed verifying key.
///
/// # Errors
///
/// [`Error::KeyEncoding`] for malformed bytes or invalid points,
/// [`Error::VerifyingKeyMismatch`] for a key of another circuit shape.
pub fn verifying_key_from_bytes(bytes: &[u8]) -> Result<VerifyingKey> {
    let vk: VerifyingKey = from_bytes(bytes)?;
    check_verifying_key(&vk)?;
    Ok(vk)
}

/// Compressed encoding of a proving key (about 1.9 MB).
///
/// # Errors
///
/// [`Error::KeyEncoding`] if serialisation fails (it does not for well-formed keys).
pub fn proving_key_to_bytes(pk: &ProvingKey) -> Result<Vec<u8>> {
    to_bytes(pk)
}

/// Decodes and validates a compressed proving key.
///
/// # Errors
///
/// [`Error::KeyEncoding`] for malformed bytes or invalid points,
/// [`Error::VerifyingKeyMismatch`] if its verifying key has another number of inputs.
pub fn proving_key_from_bytes(bytes: &[u8]) -> Result<ProvingKey> {
    let pk: ProvingKey = from_bytes(bytes)?;
    check_verifying_key(&pk.vk)?;
    Ok(pk)
}

/// keccak256 of the compressed verifying key: the identity of a key, published by the
/// generated Solidity verifier as `VERIFYING_KEY_HASH`.
///
/// # Errors
///
/// [`Error::KeyEncoding`] if serialisation fails (it does not for well-formed keys).
pub fn verifying_key_hash(vk: &VerifyingKey) -> Result<[u8; 32]> {
    Ok(Keccak256::digest(verifying_key_to_bytes(vk)?).into())
}

/// Writes a proving key to `path` (compressed), atomically: a temporary file beside it,
/// renamed over `path`.
///
/// # Errors
///
/// [`Error::KeyFile`] on I/O errors.
pub fn write_proving_key(path: &Path, pk: &ProvingKey) -> Result<()> {
    write_atomically(path, &proving_key_to_bytes(pk)?)
}

/// Reads and validates a proving key written by [`write_proving_key`].
///
/// # Errors
///
/// [`Error::KeyFile`] on I/O errors or a malformed key.
pub fn read_proving_key(path: &Path) -> Result<ProvingKey> {
    let bytes = fs::read(path).map_err(|e| key_file(path, &e))?;
    proving_key_from_bytes(&bytes).map_err(|e| key_file(path, &e))
}

/// Writes a verifying key to `path` (compressed), atomically.
///
/// # Errors
///
/// [`Error::KeyFile`] on I/O errors.
pub fn write_verifying_key(path: &Path, vk: &VerifyingKey) -> Result<()> {
    write_atomically(path, &verifying_key_to_bytes(vk)?)
}

/// Reads and validates a verifying key written by [`write_verifying_key`].
///
/// # Errors
///
/// [`Error::KeyFile`] on I/O errors or a malformed key.
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey> {
    let bytes = fs::read(path).map_err(|e| key_file(path, &e))?;
    verifying_key_from_bytes(&bytes).map_err(|e| key_file(path, &e))
}

fn to_bytes(value: &impl CanonicalSerialize) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(value.compressed_size());
    value
        .serialize_compressed(&mut bytes)
        .map_err(|e| Error::KeyEncoding {
            reason: e.to_string(),
        })?;
    Ok(bytes)
}

fn from_bytes<T: CanonicalDeserialize>(mut bytes: &[u8]) -> Result<T> {
    let value = T::deserialize_compressed(&mut bytes).map_err(|e| Error::KeyEncoding {
        reason: e.to_string(),
    })?;
    if !bytes.is_empty() {
        return Err(Error::KeyEncoding {
            reason: format!("{} trailing bytes", bytes.len()),
        });
    }
    Ok(value)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(tmp, path)
    };
    write().map_err(|e| {
        // Best effort: the temporary file is useless after a failure.
        let _ = fs::remove_file(tmp);
        key_file(path, &e)
    })
}

fn key_file(path: &Path, reason: &impl std::fmt::Display) -> Error {
    Error::KeyFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}
