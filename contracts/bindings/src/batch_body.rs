//! The node-defined part of batch data (version 1): what follows the withdrawal section the
//! contract reads, and what lets anyone rebuild the tree of leaf hashes from calldata alone.
//!
//! ```text
//! first_slot u32 BE ‖ r u32 BE ‖ r × (owner 20 ‖ token 20)                 new slots
//! u u32 BE ‖ u × (slot u32 BE ‖ leaf 32 ‖ note 24)                          changed leaves
//! ```
//!
//! New slots are numbered `first_slot, first_slot + 1, …`: the slot count before the batch.
//! Changed leaves are in strictly increasing slot order. A note is the slot's
//! `(balance u128 BE ‖ nonce u64 BE)` XOR the first 24 bytes of
//! `keccak256("Stablelane.note.v1" ‖ key ‖ batch u64 BE ‖ slot u32 BE)`, where `key` is the
//! owner's viewing key once registered (the operator's secret before): the owner, and
//! nobody else, opens its own notes. Balances and transfers stay hidden; the leaf hash binds
//! a random salt, so it cannot be brute-forced either.

use alloy::primitives::{keccak256, Address, B256};

/// Bytes of one new-slot entry.
pub const NEW_SLOT_BYTES: usize = 40;
/// Bytes of one changed-leaf entry.
pub const LEAF_UPDATE_BYTES: usize = 4 + 32 + NOTE_BYTES;
/// Bytes of an encrypted note.
pub const NOTE_BYTES: usize = 24;

/// A slot created in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewSlot {
    /// Owner.
    pub owner: Address,
    /// Token.
    pub token: Address,
}

/// A leaf changed by a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafUpdate {
    /// Slot index.
    pub slot: u32,
    /// New leaf hash (a BN254 field element, big-endian).
    pub leaf: B256,
    /// Encrypted `(balance, nonce)`.
    pub note: [u8; NOTE_BYTES],
}

/// The node-defined sections of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchBody {
    /// Index of the first new slot (the slot count before the batch).
    pub first_slot: u32,
    /// Slots created, in index order.
    pub new_slots: Vec<NewSlot>,
    /// Changed leaves, in increasing slot order.
    pub leaves: Vec<LeafUpdate>,
}

/// Why a batch body does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// Shorter than its counts say.
    #[error("batch body truncated")]
    Truncated,
    /// Bytes after the last section.
    #[error("{0} unexpected bytes after the batch body")]
    Trailing(usize),
    /// Changed leaves not in strictly increasing slot order.
    #[error("changed leaves out of order at slot {0}")]
    Unordered(u32),
    /// Slot numbers overflow.
    #[error("slot index overflow")]
    Overflow,
}

impl BatchBody {
    /// Encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        8 + self.new_slots.len() * NEW_SLOT_BYTES + 4 + self.leaves.len() * LEAF_UPDATE_BYTES
    }

    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&self.first_slot.to_be_bytes());
        out.extend_from_slice(&(self.new_slots.len() as u32).to_be_bytes());
        for s in &self.new_slots {
            out.extend_from_slice(s.owner.as_slice());
            out.extend_from_slice(s.token.as_slice());
        }
        out.extend_from_slice(&(self.leaves.len() as u32).to_be_bytes());
        for l in &self.leaves {
            out.extend_from_slice(&l.slot.to_be_bytes());
            out.extend_from_slice(l.leaf.as_slice());
            out.extend_from_slice(&l.note);
        }
        out
    }

    /// Decodes a body (the `rest` of [`crate::batch_data::decode_batch_data`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader { bytes, at: 0 };
        let first_slot = r.u32()?;
        let new_count = r.u32()? as usize;
        let new_slots = r
            .take(
                new_count
                    .checked_mul(NEW_SLOT_BYTES)
                    .ok_or(BodyError::Overflow)?,
            )?
            .chunks_exact(NEW_SLOT_BYTES)
            .map(|c| NewSlot {
                owner: Address::from_slice(&c[..20]),
                token: Address::from_slice(&c[20..]),
            })
            .collect::<Vec<_>>();
        first_slot
            .checked_add(new_count as u32)
            .ok_or(BodyError::Overflow)?;
        let leaf_count = r.u32()? as usize;
        let section = r.take(
            leaf_count
                .checked_mul(LEAF_UPDATE_BYTES)
                .ok_or(BodyError::Overflow)?,
        )?;
        let mut leaves = Vec::with_capacity(leaf_count);
        for c in section.chunks_exact(LEAF_UPDATE_BYTES) {
            let slot = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            if leaves.last().is_some_and(|l: &LeafUpdate| l.slot >= slot) {
                return Err(BodyError::Unordered(slot));
            }
            let mut note = [0u8; NOTE_BYTES];
            note.copy_from_slice(&c[36..]);
            leaves.push(LeafUpdate {
                slot,
                leaf: B256::from_slice(&c[4..36]),
                note,
            });
        }
        if r.at != bytes.len() {
            return Err(BodyError::Trailing(bytes.len() - r.at));
        }
        Ok(Self {
            first_slot,
            new_slots,
            leaves,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BodyError> {
        let end = self.at.checked_add(n).ok_or(BodyError::Overflow)?;
        let out = self.bytes.get(self.at..end).ok_or(BodyError::Truncated)?;
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, BodyError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

fn keystream(key: &B256, batch: u64, slot: u32) -> B256 {
    let mut buf = [0u8; 18 + 32 + 8 + 4];
    buf[..18].copy_from_slice(b"Stablelane.note.v1");
    buf[18..50].copy_from_slice(key.as_slice());
    buf[50..58].copy_from_slice(&batch.to_be_bytes());
    buf[58..].copy_from_slice(&slot.to_be_bytes());
    keccak256(buf)
}

/// Encrypts a slot's `(balance, nonce)` for batch `batch` under `key`.
pub fn seal_note(key: &B256, batch: u64, slot: u32, balance: u128, nonce: u64) -> [u8; NOTE_BYTES] {
    let stream = keystream(key, batch, slot);
    let mut note = [0u8; NOTE_BYTES];
    note[..16].copy_from_slice(&balance.to_be_bytes());
    note[16..].copy_from_slice(&nonce.to_be_bytes());
    for (n, k) in note.iter_mut().zip(stream.iter()) {
        *n ^= k;
    }
    note
}

/// Decrypts a note sealed by [`seal_note`]: `(balance, nonce)`. With the wrong key the
/// result is noise; check it against the leaf hash.
pub fn open_note(key: &B256, batch: u64, slot: u32, note: &[u8; NOTE_BYTES]) -> (u128, u64) {
    let stream = keystream(key, batch, slot);
    let mut plain = *note;
    for (n, k) in plain.iter_mut().zip(stream.iter()) {
        *n ^= k;
    }
    let mut balance = [0u8; 16];
    balance.copy_from_slice(&plain[..16]);
    let mut nonce = [0u8; 8];
    nonce.copy_from_slice(&plain[16..]);
    (u128::from_be_bytes(balance), u64::from_be_bytes(nonce))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> BatchBody {
        let key = B256::repeat_byte(7);
        BatchBody {
            first_slot: 3,
            new_slots: vec![NewSlot {
                owner: Address::repeat_byte(1),
                token: Address::repeat_byte(2),
            }],
            leaves: vec![
                LeafUpdate {
                    slot: 0,
                    leaf: B256::repeat_byte(9),
                    note: seal_note(&key, 5, 0, 10, 1),
                },
                LeafUpdate {
                    slot: 3,
                    leaf: B256::repeat_byte(8),
                    note: seal_note(&key, 5, 3, u128::MAX, u64::MAX),
                },
            ],
        }
    }

    #[test]
    fn bodies_round_trip() {
        let b = body();
        let bytes = b.encode();
        assert_eq!(bytes.len(), b.encoded_len());
        assert_eq!(BatchBody::decode(&bytes).unwrap(), b);
        assert_eq!(
            BatchBody::decode(&BatchBody::default().encode()).unwrap(),
            BatchBody::default()
        );
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let bytes = body().encode();
        assert_eq!(
            BatchBody::decode(&bytes[..bytes.len() - 1]),
            Err(BodyError::Truncated)
        );
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(BatchBody::decode(&long), Err(BodyError::Trailing(1)));
        let mut swapped = body();
        swapped.leaves.reverse();
        assert_eq!(
            BatchBody::decode(&swapped.encode()),
            Err(BodyError::Unordered(0))
        );
        assert_eq!(BatchBody::decode(&[]), Err(BodyError::Truncated));
    }

    #[test]
    fn notes_open_with_their_key_only() {
        let key = B256::repeat_byte(7);
        let note = seal_note(&key, 5, 3, 1_234, 9);
        assert_eq!(open_note(&key, 5, 3, &note), (1_234, 9));
        assert_ne!(open_note(&B256::repeat_byte(6), 5, 3, &note), (1_234, 9));
        assert_ne!(open_note(&key, 6, 3, &note), (1_234, 9));
        assert_ne!(seal_note(&key, 5, 4, 1_234, 9), note);
    }
}
