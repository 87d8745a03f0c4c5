//! The node-defined part of batch data (version 3; unchanged since version 2): what follows
//! the withdrawal and refused-deposit sections the contract reads, and what lets anyone
//! rebuild the tree of leaf hashes from calldata alone.
//!
//! ```text
//! first_slot u32 BE ‖ r u32 BE ‖ r × (owner 20 ‖ token 20)                 new slots
//! u u32 BE ‖ u × (gap varint ‖ leaf 32 ‖ note 17)                           changed leaves
//! ```
//!
//! New slots are numbered `first_slot, first_slot + 1, …`: the slot count before the batch.
//! Changed leaves are in strictly increasing slot order, each slot given by its `gap` to the
//! previous one: `gap = slot − (previous slot + 1)`, and `gap = slot` for the first entry.
//! `varint` is unsigned LEB128 (7 bits per byte, least significant group first, high bit set
//! on every byte but the last), canonical: minimal length, at most 5 bytes, and the slot it
//! gives must fit a `u32`. A gap below 128 takes one byte, below 16,384 two, so an entry is
//! typically 50 or 51 bytes and at most [`LEAF_UPDATE_BYTES`] (54).
//!
//! A note is the slot's `(balance as u96 BE (12 bytes) ‖ nonce as u40 BE (5 bytes))` XOR the
//! first 17 bytes of `keccak256("Stablelane.note.v2" ‖ key ‖ batch u64 BE ‖ slot u32 BE)`,
//! where `key` is the owner's viewing key once registered (the operator's secret before): the
//! owner, and nobody else, opens its own notes. Balances and transfers stay hidden; the leaf
//! hash binds a random salt, so it cannot be brute-forced either. The ledger keeps every
//! balance at most [`NOTE_BALANCE_MAX`] and every nonce at most [`NOTE_NONCE_MAX`], so every
//! slot fits a note.
//!
//! Decoding never panics and allocates no more than the input's length justifies: a count
//! that the remaining bytes cannot hold is [`BodyError::Truncated`] before anything is
//! allocated.

use alloy::primitives::{keccak256, Address, B256};

/// Bytes of one new-slot entry.
pub const NEW_SLOT_BYTES: usize = 40;
/// Bytes of an encrypted note.
pub const NOTE_BYTES: usize = 17;
/// Most bytes of a gap varint (a gap up to `u32::MAX`).
pub const GAP_BYTES_MAX: usize = 5;
/// Most bytes of one changed-leaf entry (a 5-byte gap); an entry is
/// `varint_len(gap) + 32 + 17`, typically 50 or 51 bytes. Use it as an upper bound only:
/// [`BatchBody::encoded_len`] is exact.
pub const LEAF_UPDATE_BYTES: usize = GAP_BYTES_MAX + 32 + NOTE_BYTES;
/// Fewest bytes of one changed-leaf entry (a 1-byte gap).
pub const LEAF_UPDATE_BYTES_MIN: usize = 1 + 32 + NOTE_BYTES;
/// Largest balance a note carries: 12 bytes (2^96 − 1 base units, about 79 billion tokens
/// of an 18-decimal token).
pub const NOTE_BALANCE_MAX: u128 = (1 << 96) - 1;
/// Largest nonce a note carries: 5 bytes (2^40 − 1).
pub const NOTE_NONCE_MAX: u64 = (1 << 40) - 1;

const BALANCE_BYTES: usize = 12;
const NOTE_KEY_DOMAIN: &[u8; 18] = b"Stablelane.note.v2";

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
    /// Changed leaves, in strictly increasing slot order.
    pub leaves: Vec<LeafUpdate>,
}

/// Why a batch body does not encode or decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// Shorter than its counts say.
    #[error("batch body truncated")]
    Truncated,
    /// Bytes after the last section.
    #[error("{0} unexpected bytes after the batch body")]
    Trailing(usize),
    /// Changed leaves not in strictly increasing slot order (encoding only: the gap encoding
    /// cannot express it).
    #[error("changed leaves out of order at slot {0}")]
    Unordered(u32),
    /// Slot numbers overflow `u32` (or a section has more than `u32::MAX` entries).
    #[error("slot index overflow")]
    Overflow,
    /// A gap varint is not in its shortest form (it ends in a zero byte), at this offset of
    /// the body.
    #[error("non-minimal varint at byte {0} of the batch body")]
    NonMinimalVarint(usize),
    /// A gap varint longer than 5 bytes, at this offset of the body.
    #[error("varint longer than 5 bytes at byte {0} of the batch body")]
    VarintTooLong(usize),
}

/// Why a note cannot be sealed: the value does not fit its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The balance is above [`NOTE_BALANCE_MAX`].
    #[error("balance {0} does not fit a note (at most 2^96 - 1)")]
    BalanceTooLarge(u128),
    /// The nonce is above [`NOTE_NONCE_MAX`].
    #[error("nonce {0} does not fit a note (at most 2^40 - 1)")]
    NonceTooLarge(u64),
}

/// Bytes of the LEB128 encoding of `v`.
fn varint_len(v: u32) -> usize {
    match v {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0x0fff_ffff => 4,
        _ => 5,
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl BatchBody {
    /// The gaps of the changed leaves, checking their order.
    fn gaps(&self) -> impl Iterator<Item = Result<u32, BodyError>> + '_ {
        let mut next: u64 = 0;
        self.leaves.iter().map(move |l| {
            let gap = u64::from(l.slot)
                .checked_sub(next)
                .ok_or(BodyError::Unordered(l.slot))?;
            next = u64::from(l.slot) + 1;
            // `gap <= slot <= u32::MAX`.
            u32::try_from(gap).map_err(|_| BodyError::Overflow)
        })
    }

    fn check_counts(&self) -> Result<(u32, u32), BodyError> {
        let new_count = u32::try_from(self.new_slots.len()).map_err(|_| BodyError::Overflow)?;
        let leaf_count = u32::try_from(self.leaves.len()).map_err(|_| BodyError::Overflow)?;
        self.first_slot
            .checked_add(new_count)
            .ok_or(BodyError::Overflow)?;
        Ok((new_count, leaf_count))
    }

    /// Exact encoded length in bytes.
    ///
    /// # Errors
    ///
    /// What [`encode`](Self::encode) refuses.
    pub fn encoded_len(&self) -> Result<usize, BodyError> {
        self.check_counts()?;
        let mut gap_bytes = 0usize;
        for gap in self.gaps() {
            gap_bytes += varint_len(gap?);
        }
        Ok(8 + self.new_slots.len() * NEW_SLOT_BYTES
            + 4
            + self.leaves.len() * (32 + NOTE_BYTES)
            + gap_bytes)
    }

    /// Encodes the body.
    ///
    /// # Errors
    ///
    /// [`BodyError::Unordered`] when the changed leaves are not in strictly increasing slot
    /// order (a repeated slot included), [`BodyError::Overflow`] when `first_slot` plus the
    /// new slots overflows `u32` or a section has more than `u32::MAX` entries.
    pub fn encode(&self) -> Result<Vec<u8>, BodyError> {
        let (new_count, leaf_count) = self.check_counts()?;
        // At most `LEAF_UPDATE_BYTES` per changed leaf (the gaps are computed once, below).
        let mut out = Vec::with_capacity(
            8 + self.new_slots.len() * NEW_SLOT_BYTES + 4 + self.leaves.len() * LEAF_UPDATE_BYTES,
        );
        out.extend_from_slice(&self.first_slot.to_be_bytes());
        out.extend_from_slice(&new_count.to_be_bytes());
        for s in &self.new_slots {
            out.extend_from_slice(s.owner.as_slice());
            out.extend_from_slice(s.token.as_slice());
        }
        out.extend_from_slice(&leaf_count.to_be_bytes());
        for (l, gap) in self.leaves.iter().zip(self.gaps()) {
            put_varint(&mut out, gap?);
            out.extend_from_slice(l.leaf.as_slice());
            out.extend_from_slice(&l.note);
        }
        Ok(out)
    }

    /// Decodes a body (the `rest` of [`crate::batch_data::decode_batch_data`]).
    ///
    /// # Errors
    ///
    /// [`BodyError`]: truncated input (also a count the remaining bytes cannot hold),
    /// trailing bytes, a non-canonical or over-long varint, slot numbers overflowing `u32`.
    pub fn decode(bytes: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader { bytes, at: 0 };
        let first_slot = r.u32()?;
        let new_count = r.u32()?;
        first_slot
            .checked_add(new_count)
            .ok_or(BodyError::Overflow)?;
        let new_slots = r
            .take(
                (new_count as usize)
                    .checked_mul(NEW_SLOT_BYTES)
                    .ok_or(BodyError::Truncated)?,
            )?
            .chunks_exact(NEW_SLOT_BYTES)
            .map(|c| NewSlot {
                owner: Address::from_slice(&c[..20]),
                token: Address::from_slice(&c[20..]),
            })
            .collect::<Vec<_>>();
        let leaf_count = r.u32()? as usize;
        // Bound the allocation by what the rest can hold (every entry takes 50 bytes at least).
        if leaf_count
            .checked_mul(LEAF_UPDATE_BYTES_MIN)
            .is_none_or(|need| need > r.remaining())
        {
            return Err(BodyError::Truncated);
        }
        let mut leaves = Vec::with_capacity(leaf_count);
        // The smallest slot the next entry may have.
        let mut next: u64 = 0;
        for _ in 0..leaf_count {
            let gap = r.varint()?;
            let slot = u32::try_from(next + u64::from(gap)).map_err(|_| BodyError::Overflow)?;
            let leaf = B256::from_slice(r.take(32)?);
            let mut note = [0u8; NOTE_BYTES];
            note.copy_from_slice(r.take(NOTE_BYTES)?);
            leaves.push(LeafUpdate { slot, leaf, note });
            next = u64::from(slot) + 1;
        }
        if r.remaining() != 0 {
            return Err(BodyError::Trailing(r.remaining()));
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
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.at)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BodyError> {
        let end = self.at.checked_add(n).ok_or(BodyError::Truncated)?;
        let out = self.bytes.get(self.at..end).ok_or(BodyError::Truncated)?;
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, BodyError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A canonical unsigned LEB128 value of at most 5 bytes. Values above `u32::MAX` are
    /// [`BodyError::Overflow`].
    fn varint(&mut self) -> Result<u32, BodyError> {
        let start = self.at;
        let mut value: u64 = 0;
        for i in 0..GAP_BYTES_MAX {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if byte == 0 && i > 0 {
                    return Err(BodyError::NonMinimalVarint(start));
                }
                return u32::try_from(value).map_err(|_| BodyError::Overflow);
            }
        }
        Err(BodyError::VarintTooLong(start))
    }
}

fn keystream(key: &B256, batch: u64, slot: u32) -> B256 {
    let mut buf = [0u8; 18 + 32 + 8 + 4];
    buf[..18].copy_from_slice(NOTE_KEY_DOMAIN);
    buf[18..50].copy_from_slice(key.as_slice());
    buf[50..58].copy_from_slice(&batch.to_be_bytes());
    buf[58..].copy_from_slice(&slot.to_be_bytes());
    keccak256(buf)
}

/// Encrypts a slot's `(balance, nonce)` for batch `batch` under `key`.
///
/// # Errors
///
/// [`NoteError`] when `balance > NOTE_BALANCE_MAX` or `nonce > NOTE_NONCE_MAX` (the ledger
/// never lets a slot get there).
pub fn seal_note(
    key: &B256,
    batch: u64,
    slot: u32,
    balance: u128,
    nonce: u64,
) -> Result<[u8; NOTE_BYTES], NoteError> {
    if balance > NOTE_BALANCE_MAX {
        return Err(NoteError::BalanceTooLarge(balance));
    }
    if nonce > NOTE_NONCE_MAX {
        return Err(NoteError::NonceTooLarge(nonce));
    }
    let mut note = [0u8; NOTE_BYTES];
    note[..BALANCE_BYTES].copy_from_slice(&balance.to_be_bytes()[16 - BALANCE_BYTES..]);
    note[BALANCE_BYTES..].copy_from_slice(&nonce.to_be_bytes()[8 - (NOTE_BYTES - BALANCE_BYTES)..]);
    let stream = keystream(key, batch, slot);
    for (n, k) in note.iter_mut().zip(stream.iter()) {
        *n ^= k;
    }
    Ok(note)
}

/// Decrypts a note sealed by [`seal_note`]: `(balance, nonce)`. With the wrong key the
/// result is noise (within the bounds); check it against the leaf hash.
pub fn open_note(key: &B256, batch: u64, slot: u32, note: &[u8; NOTE_BYTES]) -> (u128, u64) {
    let stream = keystream(key, batch, slot);
    let mut plain = *note;
    for (n, k) in plain.iter_mut().zip(stream.iter()) {
        *n ^= k;
    }
    let mut balance = [0u8; 16];
    balance[16 - BALANCE_BYTES..].copy_from_slice(&plain[..BALANCE_BYTES]);
    let mut nonce = [0u8; 8];
    nonce[8 - (NOTE_BYTES - BALANCE_BYTES)..].copy_from_slice(&plain[BALANCE_BYTES..]);
    (u128::from_be_bytes(balance), u64::from_be_bytes(nonce))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: B256 = B256::repeat_byte(7);

    fn leaf(slot: u32) -> LeafUpdate {
        LeafUpdate {
            slot,
            leaf: keccak256(slot.to_be_bytes()),
            note: seal_note(&KEY, 5, slot, u128::from(slot) * 3, u64::from(slot % 1000)).unwrap(),
        }
    }

    fn body_with(slots: &[u32]) -> BatchBody {
        BatchBody {
            first_slot: 3,
            new_slots: vec![NewSlot {
                owner: Address::repeat_byte(1),
                token: Address::repeat_byte(2),
            }],
            leaves: slots.iter().copied().map(leaf).collect(),
        }
    }

    fn body() -> BatchBody {
        body_with(&[0, 3])
    }

    /// A tiny deterministic generator (xorshift64), so the test needs no extra crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Decodes, checks the round trip and the exact length, and returns the bytes.
    fn round_trip(b: &BatchBody) -> Vec<u8> {
        let bytes = b.encode().unwrap();
        assert_eq!(bytes.len(), b.encoded_len().unwrap());
        assert_eq!(BatchBody::decode(&bytes).unwrap(), *b);
        bytes
    }

    #[test]
    fn bodies_round_trip() {
        round_trip(&body());
        let empty = round_trip(&BatchBody::default());
        assert_eq!(empty.len(), 12);
        // Slot 0 alone, consecutive slots (gap 0), u32::MAX alone and after others.
        round_trip(&body_with(&[0]));
        round_trip(&body_with(&[0, 1, 2, 3, 4]));
        round_trip(&body_with(&[u32::MAX]));
        round_trip(&body_with(&[0, u32::MAX - 1, u32::MAX]));
        round_trip(&body_with(&[7, u32::MAX]));
        // Random-ish slot sets at every density: gaps of 1 to 5 varint bytes.
        let mut rng = Rng(0x5eed);
        for round in 0..200 {
            let count = (rng.next() % 40) as usize;
            let spread = [1u64, 200, 30_000, 3_000_000, 500_000_000, 1 << 32][round % 6];
            let mut slots: Vec<u32> = (0..count)
                .map(|_| (rng.next() % spread).min(u64::from(u32::MAX)) as u32)
                .collect();
            slots.sort_unstable();
            slots.dedup();
            round_trip(&body_with(&slots));
        }
    }

    #[test]
    fn entries_take_one_to_five_gap_bytes() {
        // (slot of a lone entry = its gap, bytes of the varint)
        for (gap, len) in [
            (0u32, 1usize),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (2_097_151, 3),
            (2_097_152, 4),
            (268_435_455, 4),
            (268_435_456, 5),
            (u32::MAX, 5),
        ] {
            let b = body_with(&[gap]);
            let bytes = round_trip(&b);
            assert_eq!(
                bytes.len(),
                12 + NEW_SLOT_BYTES + len + 32 + NOTE_BYTES,
                "{gap}"
            );
            assert_eq!(varint_len(gap), len);
            let mut v = Vec::new();
            put_varint(&mut v, gap);
            assert_eq!(v.len(), len);
        }
        // The gap is relative to the previous slot + 1: consecutive slots cost one byte.
        let dense = body_with(&(1_000_000..1_000_100).collect::<Vec<_>>());
        let bytes = round_trip(&dense);
        // First gap 1,000,000 (3 bytes), then 99 gaps of 0 (1 byte each).
        assert_eq!(
            bytes.len(),
            12 + NEW_SLOT_BYTES + 3 + 99 + 100 * (32 + NOTE_BYTES)
        );
        assert_eq!(LEAF_UPDATE_BYTES, 54);
        assert_eq!(LEAF_UPDATE_BYTES_MIN, 50);
    }

    /// Bytes of a body with no new slots and one entry of raw gap `varint`.
    fn raw_entry(varint: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        bytes.extend_from_slice(varint);
        bytes.extend_from_slice(&[0xab; 32 + NOTE_BYTES]);
        bytes
    }

    #[test]
    fn non_canonical_and_oversized_varints_are_refused() {
        assert_eq!(
            BatchBody::decode(&raw_entry(&[0x05])).unwrap().leaves[0].slot,
            5
        );
        assert_eq!(
            BatchBody::decode(&raw_entry(&[0x80, 0x01])).unwrap().leaves[0].slot,
            128
        );
        // Non-minimal: a trailing zero group.
        for bad in [
            &[0x80, 0x00][..],
            &[0x85, 0x00],
            &[0xff, 0x80, 0x00],
            &[0x80, 0x80, 0x80, 0x80, 0x00],
        ] {
            assert_eq!(
                BatchBody::decode(&raw_entry(bad)),
                Err(BodyError::NonMinimalVarint(12)),
                "{bad:x?}"
            );
        }
        // Six bytes (five with the continuation bit).
        assert_eq!(
            BatchBody::decode(&raw_entry(&[0x80, 0x80, 0x80, 0x80, 0x81, 0x00])),
            Err(BodyError::VarintTooLong(12))
        );
        // Five bytes above u32::MAX.
        assert_eq!(
            BatchBody::decode(&raw_entry(&[0xff, 0xff, 0xff, 0xff, 0x1f])),
            Err(BodyError::Overflow)
        );
        assert_eq!(
            BatchBody::decode(&raw_entry(&[0xff, 0xff, 0xff, 0xff, 0x0f]))
                .unwrap()
                .leaves[0]
                .slot,
            u32::MAX
        );
    }

    #[test]
    fn gaps_past_u32_max_are_refused() {
        // Slot u32::MAX, then any further entry (even gap 0) is past the slot space.
        let mut bytes = body_with(&[u32::MAX]).encode().unwrap();
        let count_at = 8 + NEW_SLOT_BYTES;
        bytes[count_at..count_at + 4].copy_from_slice(&2u32.to_be_bytes());
        bytes.push(0);
        bytes.extend_from_slice(&[0xcd; 32 + NOTE_BYTES]);
        assert_eq!(BatchBody::decode(&bytes), Err(BodyError::Overflow));
        // Slot 10, then a gap of u32::MAX - 10.
        let mut bytes = body_with(&[10]).encode().unwrap();
        bytes[count_at..count_at + 4].copy_from_slice(&2u32.to_be_bytes());
        put_varint(&mut bytes, u32::MAX - 10);
        bytes.extend_from_slice(&[0xcd; 32 + NOTE_BYTES]);
        assert_eq!(BatchBody::decode(&bytes), Err(BodyError::Overflow));
        // One less fits exactly: slot u32::MAX.
        let mut bytes = body_with(&[10]).encode().unwrap();
        bytes[count_at..count_at + 4].copy_from_slice(&2u32.to_be_bytes());
        put_varint(&mut bytes, u32::MAX - 11);
        bytes.extend_from_slice(&[0xcd; 32 + NOTE_BYTES]);
        assert_eq!(BatchBody::decode(&bytes).unwrap().leaves[1].slot, u32::MAX);
        // New slots overflowing the slot space.
        let mut bytes = BatchBody::default().encode().unwrap();
        bytes[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        bytes[4..8].copy_from_slice(&1u32.to_be_bytes());
        assert_eq!(BatchBody::decode(&bytes), Err(BodyError::Overflow));
        let b = BatchBody {
            first_slot: u32::MAX,
            ..body()
        };
        assert_eq!(b.encode(), Err(BodyError::Overflow));
    }

    #[test]
    fn repeated_or_unordered_slots_cannot_be_encoded() {
        for slots in [
            &[3u32, 3][..],
            &[0, 0],
            &[5, 4],
            &[1, 2, 2],
            &[u32::MAX, u32::MAX],
        ] {
            let b = body_with(slots);
            let at = slots.windows(2).find(|w| w[0] >= w[1]).unwrap()[1];
            assert_eq!(b.encode(), Err(BodyError::Unordered(at)), "{slots:?}");
            assert_eq!(b.encoded_len(), Err(BodyError::Unordered(at)));
        }
    }

    #[test]
    fn every_cut_and_every_extra_byte_is_refused() {
        let bytes = body_with(&[0, 1, 200, 70_000, u32::MAX]).encode().unwrap();
        for cut in 0..bytes.len() {
            assert_eq!(
                BatchBody::decode(&bytes[..cut]),
                Err(BodyError::Truncated),
                "cut at {cut}"
            );
        }
        for extra in 1..4 {
            let mut long = bytes.clone();
            long.extend(std::iter::repeat_n(0, extra));
            assert_eq!(BatchBody::decode(&long), Err(BodyError::Trailing(extra)));
        }
        assert_eq!(BatchBody::decode(&[]), Err(BodyError::Truncated));
    }

    #[test]
    fn huge_counts_are_truncated_before_allocating() {
        // A leaf count of u32::MAX with 49 bytes behind it, a new-slot count of u32::MAX
        // with nothing behind it: refused without reserving gigabytes.
        let mut bytes = vec![0, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        bytes.extend_from_slice(&[0; 49]);
        assert_eq!(BatchBody::decode(&bytes), Err(BodyError::Truncated));
        // Exactly one minimal entry's worth of bytes for a count of 2.
        let mut bytes = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        bytes.extend_from_slice(&[0; LEAF_UPDATE_BYTES_MIN]);
        assert_eq!(BatchBody::decode(&bytes), Err(BodyError::Truncated));
        let bytes = [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0];
        assert_eq!(BatchBody::decode(&bytes), Err(BodyError::Truncated));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = Rng(42);
        let valid = body_with(&[0, 1, 200, 70_000]).encode().unwrap();
        for _ in 0..20_000 {
            // Mutations of a valid body, and random short inputs.
            let mut bytes = valid.clone();
            for _ in 0..(rng.next() % 4 + 1) {
                let at = (rng.next() as usize) % bytes.len();
                bytes[at] = rng.next() as u8;
            }
            if rng.next().is_multiple_of(2) {
                bytes.truncate((rng.next() as usize) % (bytes.len() + 1));
            }
            let len = (rng.next() % 80) as usize;
            let noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            for input in [bytes, noise] {
                if let Ok(b) = BatchBody::decode(&input) {
                    // Whatever decodes re-encodes to the same bytes: the encoding is canonical.
                    assert_eq!(b.encode().unwrap(), input);
                }
            }
        }
    }

    #[test]
    fn notes_open_with_their_key_only() {
        let note = seal_note(&KEY, 5, 3, 1_234, 9).unwrap();
        assert_eq!(open_note(&KEY, 5, 3, &note), (1_234, 9));
        assert_ne!(open_note(&B256::repeat_byte(6), 5, 3, &note), (1_234, 9));
        assert_ne!(open_note(&KEY, 6, 3, &note), (1_234, 9));
        assert_ne!(seal_note(&KEY, 5, 4, 1_234, 9).unwrap(), note);
    }

    #[test]
    fn notes_round_trip_at_the_bounds_and_refuse_beyond() {
        for (balance, nonce) in [
            (0, 0),
            (NOTE_BALANCE_MAX, NOTE_NONCE_MAX),
            (NOTE_BALANCE_MAX, 0),
            (0, NOTE_NONCE_MAX),
            (1 << 95, 1 << 39),
        ] {
            let note = seal_note(&KEY, u64::MAX, u32::MAX, balance, nonce).unwrap();
            assert_eq!(open_note(&KEY, u64::MAX, u32::MAX, &note), (balance, nonce));
        }
        assert_eq!(NOTE_BALANCE_MAX, 79_228_162_514_264_337_593_543_950_335);
        assert_eq!(
            seal_note(&KEY, 1, 1, NOTE_BALANCE_MAX + 1, 0),
            Err(NoteError::BalanceTooLarge(NOTE_BALANCE_MAX + 1))
        );
        assert_eq!(
            seal_note(&KEY, 1, 1, u128::MAX, 0),
            Err(NoteError::BalanceTooLarge(u128::MAX))
        );
        assert_eq!(
            seal_note(&KEY, 1, 1, 0, NOTE_NONCE_MAX + 1),
            Err(NoteError::NonceTooLarge(NOTE_NONCE_MAX + 1))
        );
        assert_eq!(
            seal_note(&KEY, 1, 1, 0, u64::MAX),
            Err(NoteError::NonceTooLarge(u64::MAX))
        );
    }

    #[test]
    fn the_note_layout_is_fixed() {
        // The all-zero key, batch 0, slot 0: the note XOR its keystream is the plain layout.
        let key = B256::ZERO;
        let note = seal_note(&key, 0, 0, 0x0102_0304_0506_0708_090a_0b0c, 0x0d_0e0f_1011).unwrap();
        let mut buf = Vec::new();
        buf.extend_from_slice(b"Stablelane.note.v2");
        buf.extend_from_slice(&[0; 32 + 8 + 4]);
        let stream = keccak256(&buf);
        let plain: Vec<u8> = note.iter().zip(stream.iter()).map(|(n, k)| n ^ k).collect();
        assert_eq!(plain, (1..=17).collect::<Vec<u8>>());
    }
}
