//! The sled store: materialised state and indexes, derived from the journal.
//!
//! sled is not the record of truth — the journal is. The store holds what the node looks up
//! without replaying: each accepted transaction's receipt by transaction hash (a fixed
//! 105-byte binary record naming its receipt group), each receipt group's signed header and
//! leaves by group number, the deployment it belongs to, and a root checkpoint. Slots are
//! not here: the ledger lives in memory and restarts from a restart snapshot and the
//! journal. Each write records the journal sequence number it covers (`applied_seq`); on
//! start-up the sequencer catches the store up from the journal, checks it against the
//! replayed state (root checkpoint, batch roots), and rebuilds it from scratch when it is
//! ahead of the journal or disagrees with it.
//!
//! Sealed batches are indexed by number and by the sequence number of their seal record
//! (so a transaction's batch is one range lookup). The chain watcher keeps its scan cursor
//! here ([`ChainCursor`]) and the settler what it knows of each batch on-chain
//! ([`BatchChainState`]): both are reconciled with the chain after a restart.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use alloy::primitives::{Address, Signature, B256};
use stablelane::{
    Amount, Nonce, Receipt, ReceiptGroup, ReceiptKind, SequenceNumber, SignedGroup, SignedReceipt,
    SlotIndex, TxHash,
};

use crate::batch::{BatchChainState, SealedBatch};

/// Version of the store's layout; a store of another version is rebuilt.
///
/// 5: per-group receipts: a transaction's sender receipt names its group and index
///    (`transactions`), each group's signed header and leaves are in `receipt_groups`.
/// 4: receipts in binary keyed by transaction hash (one tree, `transactions`); no slots;
///    batches as a JSON header and raw data.
/// 3: as 4 with batches in JSON (data as hex).
/// 2: JSON receipts by sequence number, a hash → sequence index, every slot in JSON.
pub const STORE_FORMAT: u64 = 5;

/// Trees of earlier layouts, dropped when the store is rebuilt in this one.
const OLD_TREES: [&str; 3] = ["receipts", "tx_index", "slots"];

const META_FORMAT: &[u8] = b"format";
const META_DEPLOYMENT: &[u8] = b"deployment";
const META_APPLIED: &[u8] = b"applied_seq";
const META_CHECKPOINT: &[u8] = b"checkpoint";
const META_TX_COUNT: &[u8] = b"tx_count";
const META_CHAIN_CURSOR: &[u8] = b"chain_cursor";

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled failed.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value does not decode.
    #[error("corrupt store entry {key}: {reason}")]
    Corrupt {
        /// Which entry.
        key: String,
        /// Why.
        reason: String,
    },
}

/// A root the state had at a journal position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Journal sequence number.
    pub seq: SequenceNumber,
    /// State root after it.
    pub root: B256,
}

/// How far the chain watcher has scanned the L2: every block before `next_block` was read,
/// and `last_hash` is the hash of block `next_block - 1` when it was (a different hash now
/// means a reorg reached below the cursor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainCursor {
    /// First block not scanned yet.
    pub next_block: u64,
    /// Hash of block `next_block - 1` as scanned.
    pub last_hash: B256,
}

/// A signed receipt group and its number (groups are numbered from 1 in store order).
#[derive(Debug, Clone)]
pub struct NumberedGroup {
    /// Its number.
    pub number: u64,
    /// The signed receipts.
    pub signed: Arc<SignedGroup>,
}

/// What one write adds: receipt groups of new records and sealed batches, covering the
/// journal up to `applied_seq`.
#[derive(Debug, Default)]
pub struct StoreUpdate {
    /// Receipt groups of the records in this range.
    pub groups: Vec<NumberedGroup>,
    /// Batches sealed in this range.
    pub batches: Vec<SealedBatch>,
    /// The last journal record the update covers.
    pub applied_seq: u64,
}

/// The sled database of a node.
#[derive(Debug)]
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    transactions: sled::Tree,
    batches: sled::Tree,
    batch_by_seq: sled::Tree,
    batch_chain: sled::Tree,
    receipt_groups: sled::Tree,
    tx_count: AtomicU64,
}

fn u64_value(key: &str, bytes: Option<sled::IVec>) -> Result<u64, StoreError> {
    match bytes {
        None => Ok(0),
        Some(b) => <[u8; 8]>::try_from(b.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt {
                key: key.into(),
                reason: format!("{} bytes, expected 8", b.len()),
            }),
    }
}

fn decode<T: serde::de::DeserializeOwned>(key: String, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key,
        reason: e.to_string(),
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Batches and chain states hold only strings and numbers: serialising cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Version byte of a stored batch.
const BATCH_VERSION: u8 = 1;

/// A stored batch: a version byte, the length of the header (4 bytes, big-endian), the
/// header (the batch as JSON with empty data), then the batch data as raw bytes (in JSON
/// it would be hex, twice the size; the data is most of a batch).
fn encode_batch(batch: &SealedBatch) -> Vec<u8> {
    let header = encode(&SealedBatch {
        data: Default::default(),
        withdrawals: batch.withdrawals.clone(),
        ..*batch
    });
    let mut out = Vec::with_capacity(5 + header.len() + batch.data.len());
    out.push(BATCH_VERSION);
    // A header is a few hundred bytes plus 100-odd per withdrawal (at most 1,024).
    out.extend_from_slice(
        &u32::try_from(header.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&header);
    out.extend_from_slice(&batch.data);
    out
}

fn decode_batch(key: String, bytes: &[u8]) -> Result<SealedBatch, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        key: key.clone(),
        reason: reason.into(),
    };
    let (&version, rest) = bytes.split_first().ok_or_else(|| corrupt("empty"))?;
    if version != BATCH_VERSION {
        return Err(corrupt(&format!("batch version {version}")));
    }
    let (length, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("truncated header length"))?;
    let length = u32::from_be_bytes(*length) as usize;
    if rest.len() < length {
        return Err(corrupt("truncated header"));
    }
    let (header, data) = rest.split_at(length);
    let mut batch: SealedBatch = decode(key.clone(), header)?;
    batch.data = data.to_vec().into();
    Ok(batch)
}

/// Version byte of a stored receipt.
const RECEIPT_VERSION: u8 = 2;
/// Bytes of a stored sender receipt: version, group (8), index (4), sequence (8), owner
/// (20), token (20), slot (4), balance (16), nonce (8), deposits consumed (8), forced
/// consumed (8), all big-endian; the transaction hash is the key, the kind is `sender`.
pub const RECEIPT_BYTES: usize = 1 + 8 + 4 + 8 + 20 + 20 + 4 + 16 + 8 + 8 + 8;

/// Where a stored receipt sits: its group and index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptPlace {
    /// The group's number.
    pub group: u64,
    /// The receipt's leaf index in it.
    pub index: u32,
}

fn encode_receipt(r: &Receipt, place: ReceiptPlace) -> [u8; RECEIPT_BYTES] {
    let mut out = [0u8; RECEIPT_BYTES];
    let parts: [&[u8]; 11] = [
        &[RECEIPT_VERSION],
        &place.group.to_be_bytes(),
        &place.index.to_be_bytes(),
        &r.sequence.get().to_be_bytes(),
        r.owner.as_slice(),
        r.token.as_slice(),
        &r.slot.get().to_be_bytes(),
        &r.balance.base_units().to_be_bytes(),
        &r.nonce.get().to_be_bytes(),
        &r.deposits_consumed.to_be_bytes(),
        &r.forced_consumed.to_be_bytes(),
    ];
    let mut at = 0;
    for part in parts {
        let end = at + part.len();
        out[at..end].copy_from_slice(part);
        at = end;
    }
    out
}

fn be<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(b);
    a
}

fn decode_receipt(hash: &TxHash, bytes: &[u8]) -> Result<(Receipt, ReceiptPlace), StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: format!("transactions/{hash}"),
        reason,
    };
    if bytes.len() != RECEIPT_BYTES {
        return Err(corrupt(format!(
            "{} bytes, expected {RECEIPT_BYTES}",
            bytes.len()
        )));
    }
    if bytes[0] != RECEIPT_VERSION {
        return Err(corrupt(format!("receipt version {}", bytes[0])));
    }
    // Fields in order after the version byte; the length was checked above.
    let mut at = 1;
    let mut take = |n: usize| {
        let field = &bytes[at..at + n];
        at += n;
        field
    };
    let place = ReceiptPlace {
        group: u64::from_be_bytes(be(take(8))),
        index: u32::from_be_bytes(be(take(4))),
    };
    let receipt = Receipt {
        tx_hash: *hash,
        kind: ReceiptKind::Sender,
        sequence: SequenceNumber(u64::from_be_bytes(be(take(8)))),
        owner: Address::from_slice(take(20)),
        token: Address::from_slice(take(20)),
        slot: SlotIndex(u32::from_be_bytes(be(take(4)))),
        balance: Amount(u128::from_be_bytes(be(take(16)))),
        nonce: Nonce(u64::from_be_bytes(be(take(8)))),
        deposits_consumed: u64::from_be_bytes(be(take(8))),
        forced_consumed: u64::from_be_bytes(be(take(8))),
    };
    Ok((receipt, place))
}

/// Version byte of a stored receipt group.
const GROUP_VERSION: u8 = 1;
/// Bytes of a stored group before its leaves: version, root (32), first and last sequence
/// (8 each), count (4), signature (65).
const GROUP_HEADER_BYTES: usize = 1 + 32 + 8 + 8 + 4 + 65;

fn encode_group(group: &SignedGroup) -> Vec<u8> {
    let mut out = Vec::with_capacity(GROUP_HEADER_BYTES + 32 * group.leaves().len());
    out.push(GROUP_VERSION);
    out.extend_from_slice(group.group.root.as_slice());
    out.extend_from_slice(&group.group.first_sequence.get().to_be_bytes());
    out.extend_from_slice(&group.group.last_sequence.get().to_be_bytes());
    out.extend_from_slice(&group.group.count.to_be_bytes());
    out.extend_from_slice(&group.signature.as_bytes());
    for leaf in group.leaves() {
        out.extend_from_slice(leaf.as_slice());
    }
    out
}

fn decode_group(number: u64, bytes: &[u8]) -> Result<SignedGroup, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: format!("receipt_groups/{number}"),
        reason,
    };
    if bytes.len() < GROUP_HEADER_BYTES || !(bytes.len() - GROUP_HEADER_BYTES).is_multiple_of(32) {
        return Err(corrupt(format!("{} bytes", bytes.len())));
    }
    if bytes[0] != GROUP_VERSION {
        return Err(corrupt(format!("group version {}", bytes[0])));
    }
    let group = ReceiptGroup {
        root: B256::from_slice(&bytes[1..33]),
        first_sequence: SequenceNumber(u64::from_be_bytes(be(&bytes[33..41]))),
        last_sequence: SequenceNumber(u64::from_be_bytes(be(&bytes[41..49]))),
        count: u32::from_be_bytes(be(&bytes[49..53])),
    };
    let signature =
        Signature::from_raw(&bytes[53..118]).map_err(|e| corrupt(format!("signature: {e}")))?;
    let leaves = bytes[GROUP_HEADER_BYTES..]
        .chunks_exact(32)
        .map(B256::from_slice)
        .collect();
    SignedGroup::from_leaves(group, signature, leaves)
        .ok_or_else(|| corrupt("leaves do not lead to the signed root".into()))
}

/// sled's page cache. The store is an index (receipts, slots, batches), read mostly for
/// recent entries; 128 MiB keeps a node with a million slots under 1 GiB resident.
const STORE_CACHE_BYTES: u64 = 128 * 1024 * 1024;

impl Store {
    /// Opens (or creates) the store in directory `path`. A store of another layout version
    /// is cleared (it is rebuilt from the journal).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(STORE_CACHE_BYTES)
            .open()?;
        let store = Self {
            meta: db.open_tree("meta")?,
            transactions: db.open_tree("transactions")?,
            batches: db.open_tree("batches")?,
            batch_by_seq: db.open_tree("batch_by_seq")?,
            batch_chain: db.open_tree("batch_chain")?,
            receipt_groups: db.open_tree("receipt_groups")?,
            db,
            tx_count: AtomicU64::new(0),
        };
        let format = u64_value("format", store.meta.get(META_FORMAT)?)?;
        if format != STORE_FORMAT {
            store.clear()?;
        }
        store.tx_count.store(
            u64_value("tx_count", store.meta.get(META_TX_COUNT)?)?,
            Ordering::Relaxed,
        );
        Ok(store)
    }

    /// Removes everything, leaving an empty store of the current format.
    pub fn clear(&self) -> Result<(), StoreError> {
        for name in OLD_TREES {
            self.db.drop_tree(name)?;
        }
        self.transactions.clear()?;
        self.batches.clear()?;
        self.batch_by_seq.clear()?;
        self.batch_chain.clear()?;
        self.receipt_groups.clear()?;
        self.meta.clear()?;
        self.meta
            .insert(META_FORMAT, &STORE_FORMAT.to_be_bytes()[..])?;
        self.tx_count.store(0, Ordering::Relaxed);
        self.db.flush()?;
        Ok(())
    }

    /// The deployment (EIP-712 domain separator) the store belongs to, if recorded.
    pub fn deployment(&self) -> Result<Option<B256>, StoreError> {
        self.meta
            .get(META_DEPLOYMENT)?
            .map(|b| B256::try_from(b.as_ref()))
            .transpose()
            .map_err(|_| StoreError::Corrupt {
                key: "deployment".into(),
                reason: "not 32 bytes".into(),
            })
    }

    /// Records the deployment the store belongs to.
    pub fn set_deployment(&self, separator: B256) -> Result<(), StoreError> {
        self.meta.insert(META_DEPLOYMENT, separator.as_slice())?;
        Ok(())
    }

    /// The last journal record the store covers (0: none).
    pub fn applied_seq(&self) -> Result<u64, StoreError> {
        u64_value("applied_seq", self.meta.get(META_APPLIED)?)
    }

    /// The recorded root checkpoint.
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let Some(bytes) = self.meta.get(META_CHECKPOINT)? else {
            return Ok(None);
        };
        let corrupt = || StoreError::Corrupt {
            key: "checkpoint".into(),
            reason: format!("{} bytes, expected 40", bytes.len()),
        };
        let seq = bytes
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .ok_or_else(corrupt)?;
        let root = bytes
            .get(8..40)
            .and_then(|b| B256::try_from(b).ok())
            .ok_or_else(corrupt)?;
        Ok(Some(Checkpoint {
            seq: SequenceNumber(u64::from_be_bytes(seq)),
            root,
        }))
    }

    /// Records that the state root after journal record `seq` was `root`.
    pub fn set_checkpoint(&self, checkpoint: Checkpoint) -> Result<(), StoreError> {
        let mut bytes = checkpoint.seq.get().to_be_bytes().to_vec();
        bytes.extend_from_slice(checkpoint.root.as_slice());
        self.meta.insert(META_CHECKPOINT, bytes)?;
        Ok(())
    }

    /// The chain watcher's cursor, if it has scanned anything.
    pub fn chain_cursor(&self) -> Result<Option<ChainCursor>, StoreError> {
        let Some(bytes) = self.meta.get(META_CHAIN_CURSOR)? else {
            return Ok(None);
        };
        let corrupt = || StoreError::Corrupt {
            key: "chain_cursor".into(),
            reason: format!("{} bytes, expected 40", bytes.len()),
        };
        let next = bytes
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .ok_or_else(corrupt)?;
        let hash = bytes
            .get(8..40)
            .and_then(|b| B256::try_from(b).ok())
            .ok_or_else(corrupt)?;
        Ok(Some(ChainCursor {
            next_block: u64::from_be_bytes(next),
            last_hash: hash,
        }))
    }

    /// Records the chain watcher's cursor.
    pub fn set_chain_cursor(&self, cursor: ChainCursor) -> Result<(), StoreError> {
        let mut bytes = cursor.next_block.to_be_bytes().to_vec();
        bytes.extend_from_slice(cursor.last_hash.as_slice());
        self.meta.insert(META_CHAIN_CURSOR, bytes)?;
        Ok(())
    }

    /// Writes `update`. Entries go first and the covered position last, so a crash in
    /// between leaves entries the next catch-up rewrites with the same values.
    pub fn write(&self, update: &StoreUpdate) -> Result<(), StoreError> {
        let mut transactions = 0u64;
        if !update.groups.is_empty() {
            let mut receipts = sled::Batch::default();
            let mut groups = sled::Batch::default();
            for numbered in &update.groups {
                let group = &numbered.signed;
                for (index, receipt) in (0u32..).zip(&group.receipts) {
                    if receipt.kind != ReceiptKind::Sender {
                        continue;
                    }
                    transactions += 1;
                    let place = ReceiptPlace {
                        group: numbered.number,
                        index,
                    };
                    receipts.insert(
                        receipt.tx_hash.0.as_slice(),
                        &encode_receipt(receipt, place)[..],
                    );
                }
                groups.insert(&numbered.number.to_be_bytes()[..], encode_group(group));
            }
            // Groups first: a receipt never names a group the store lacks.
            self.receipt_groups.apply_batch(groups)?;
            self.transactions.apply_batch(receipts)?;
        }
        for batch in &update.batches {
            let number = batch.number.to_be_bytes();
            self.batches.insert(&number[..], encode_batch(batch))?;
            self.batch_by_seq
                .insert(&batch.last_sequence.to_be_bytes()[..], &number[..])?;
        }
        let count = self.tx_count.fetch_add(transactions, Ordering::Relaxed) + transactions;
        let mut meta = sled::Batch::default();
        meta.insert(META_TX_COUNT, &count.to_be_bytes()[..]);
        meta.insert(META_APPLIED, &update.applied_seq.to_be_bytes()[..]);
        self.meta.apply_batch(meta)?;
        Ok(())
    }

    /// Writes one sealed batch (the sequencer's tree worker finishes batches after the
    /// group that sealed them is written; a crash in between makes the next start-up
    /// rebuild the batch from the journal).
    pub fn write_batch(&self, batch: &SealedBatch) -> Result<(), StoreError> {
        let number = batch.number.to_be_bytes();
        self.batches.insert(&number[..], encode_batch(batch))?;
        self.batch_by_seq
            .insert(&batch.last_sequence.to_be_bytes()[..], &number[..])?;
        Ok(())
    }

    /// Removes batches `number..` (not their chain states): what the store looks like when
    /// the node stopped after journaling seals whose batches the tree worker had not yet
    /// finished. For tests of that crash window only.
    #[doc(hidden)]
    pub fn forget_batches_from(&self, number: u64) -> Result<(), StoreError> {
        while let Some((key, value)) = self.batches.last()? {
            if u64_value("batches", Some(key.clone()))? < number {
                break;
            }
            let batch = decode_batch("batches".into(), &value)?;
            self.batch_by_seq
                .remove(&batch.last_sequence.to_be_bytes()[..])?;
            self.batches.remove(key)?;
        }
        Ok(())
    }

    /// The sender's receipt of transaction `hash` and where it sits, if indexed.
    pub fn receipt(&self, hash: &TxHash) -> Result<Option<(Receipt, ReceiptPlace)>, StoreError> {
        self.transactions
            .get(hash.0.as_slice())?
            .map(|bytes| decode_receipt(hash, &bytes))
            .transpose()
    }

    /// The sender's signed receipt of transaction `hash` (with its path in its group), if
    /// indexed.
    pub fn signed_receipt(&self, hash: &TxHash) -> Result<Option<SignedReceipt>, StoreError> {
        let Some((receipt, place)) = self.receipt(hash)? else {
            return Ok(None);
        };
        let group = self
            .receipt_group(place.group)?
            .ok_or_else(|| StoreError::Corrupt {
                key: format!("transactions/{hash}"),
                reason: format!("names receipt group {}, which is missing", place.group),
            })?;
        group
            .signed(receipt, place.index)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt {
                key: format!("transactions/{hash}"),
                reason: format!("index {} outside group {}", place.index, place.group),
            })
    }

    /// Receipt group `number`, with its leaves (not its receipts).
    pub fn receipt_group(&self, number: u64) -> Result<Option<SignedGroup>, StoreError> {
        self.receipt_groups
            .get(number.to_be_bytes())?
            .map(|bytes| decode_group(number, &bytes))
            .transpose()
    }

    /// The number of the last stored receipt group (0: none).
    pub fn last_group_number(&self) -> Result<u64, StoreError> {
        match self.receipt_groups.last()? {
            None => Ok(0),
            Some((key, _)) => u64_value("receipt_groups", Some(key)),
        }
    }

    /// Number of indexed transactions.
    pub fn transaction_count(&self) -> u64 {
        self.tx_count.load(Ordering::Relaxed)
    }

    /// Sealed batch `number`.
    pub fn batch(&self, number: u64) -> Result<Option<SealedBatch>, StoreError> {
        self.batches
            .get(number.to_be_bytes())?
            .map(|bytes| decode_batch(format!("batches/{number}"), &bytes))
            .transpose()
    }

    /// The number of the last sealed batch (0: none).
    pub fn last_batch_number(&self) -> Result<u64, StoreError> {
        match self.batches.last()? {
            None => Ok(0),
            Some((key, _)) => u64_value("batches", Some(key)),
        }
    }

    /// The batch that carries journal record `seq`, if it is sealed.
    pub fn batch_of_sequence(&self, seq: u64) -> Result<Option<u64>, StoreError> {
        match self.batch_by_seq.range(seq.to_be_bytes()..).next() {
            None => Ok(None),
            Some(entry) => {
                let (_, number) = entry?;
                u64_value("batch_by_seq", Some(number)).map(Some)
            }
        }
    }

    /// What the settler recorded about batch `number` on-chain (default: only sealed).
    pub fn batch_chain_state(&self, number: u64) -> Result<BatchChainState, StoreError> {
        Ok(self
            .batch_chain
            .get(number.to_be_bytes())?
            .map(|bytes| decode(format!("batch_chain/{number}"), &bytes))
            .transpose()?
            .unwrap_or_default())
    }

    /// Records what the settler knows about batch `number`, durably (flushed before
    /// returning: an in-flight commit must be known after a crash).
    pub fn set_batch_chain_state(
        &self,
        number: u64,
        state: &BatchChainState,
    ) -> Result<(), StoreError> {
        self.batch_chain
            .insert(number.to_be_bytes(), encode(state))?;
        self.batch_chain.flush()?;
        Ok(())
    }

    /// Flushes sled's buffers (the journal, not this, is what makes writes durable).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> Receipt {
        Receipt {
            tx_hash: TxHash(B256::repeat_byte(0xab)),
            kind: ReceiptKind::Sender,
            sequence: SequenceNumber(0x0102_0304_0506_0708),
            owner: Address::repeat_byte(0x11),
            token: Address::repeat_byte(0x22),
            slot: SlotIndex(0x0a0b_0c0d),
            balance: Amount((1u128 << 96) - 1),
            nonce: Nonce((1u64 << 40) - 1),
            deposits_consumed: 0x33,
            forced_consumed: 0x44,
        }
    }

    const PLACE: ReceiptPlace = ReceiptPlace {
        group: 0x0f0e,
        index: 7,
    };

    #[test]
    fn receipts_round_trip_in_their_fixed_layout() {
        let r = receipt();
        let bytes = encode_receipt(&r, PLACE);
        assert_eq!(bytes.len(), RECEIPT_BYTES);
        assert_eq!(bytes[0], RECEIPT_VERSION);
        assert_eq!(&bytes[1..9], &[0, 0, 0, 0, 0, 0, 0x0f, 0x0e]);
        assert_eq!(&bytes[13..21], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[61..65], &[0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(bytes[RECEIPT_BYTES - 1], 0x44);
        assert_eq!(
            decode_receipt(&r.tx_hash, &bytes).unwrap(),
            (r.clone(), PLACE)
        );
        let max = Receipt {
            balance: Amount(u128::MAX),
            nonce: Nonce(u64::MAX),
            ..r.clone()
        };
        assert_eq!(
            decode_receipt(&r.tx_hash, &encode_receipt(&max, PLACE))
                .unwrap()
                .0,
            max
        );
    }

    fn signed_group(receipts: Vec<Receipt>) -> Arc<SignedGroup> {
        let key =
            alloy::signers::local::PrivateKeySigner::from_bytes(&B256::repeat_byte(7)).unwrap();
        Arc::new(SignedGroup::sign(receipts, &key, &B256::repeat_byte(1)).unwrap())
    }

    #[test]
    fn groups_round_trip_and_damaged_ones_are_refused() {
        let recipient = Receipt {
            kind: ReceiptKind::Recipient,
            owner: Address::repeat_byte(0x55),
            ..receipt()
        };
        let group = signed_group(vec![receipt(), recipient]);
        let bytes = encode_group(&group);
        let back = decode_group(3, &bytes).unwrap();
        assert_eq!(back.signed(receipt(), 0), group.receipt(0));
        for cut in [0, 50, bytes.len() - 1] {
            assert!(decode_group(3, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let err = decode_group(3, &flipped).unwrap_err();
        assert!(
            err.to_string().contains("do not lead to the signed root"),
            "{err}"
        );
    }

    #[test]
    fn batches_are_stored_with_raw_data_and_read_back_whole() {
        let batch = SealedBatch {
            number: 7,
            prev_root: B256::repeat_byte(1),
            new_root: B256::repeat_byte(2),
            deposits_consumed: 3,
            deposits_hash: B256::repeat_byte(4),
            forced_consumed: 5,
            forced_hash: B256::repeat_byte(6),
            first_sequence: 8,
            last_sequence: 9,
            transaction_count: 10,
            changed_slots: 11,
            new_slots: 12,
            withdrawals: vec![],
            data: (0..=255u8).cycle().take(5_000).collect::<Vec<_>>().into(),
        };
        let bytes = encode_batch(&batch);
        assert!(bytes.len() < 5_000 + 1_000, "{} bytes", bytes.len());
        assert!(bytes.ends_with(&batch.data));
        assert_eq!(decode_batch("b".into(), &bytes).unwrap(), batch);
        for cut in [0, 3, 20] {
            assert!(
                decode_batch("b".into(), &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut other = bytes.clone();
        other[0] = 9;
        assert!(decode_batch("b".into(), &other).is_err());
    }

    #[test]
    fn damaged_receipts_are_reported_not_misread() {
        let r = receipt();
        let bytes = encode_receipt(&r, PLACE);
        let short = decode_receipt(&r.tx_hash, &bytes[..RECEIPT_BYTES - 1]).unwrap_err();
        assert!(
            short.to_string().contains("104 bytes, expected 105"),
            "{short}"
        );
        let mut versioned = bytes;
        versioned[0] = 1;
        let err = decode_receipt(&r.tx_hash, &versioned).unwrap_err();
        assert!(err.to_string().contains("receipt version 1"), "{err}");
    }

    #[test]
    fn a_store_of_the_previous_layout_is_cleared_with_its_trees() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let meta = db.open_tree("meta").unwrap();
            meta.insert(META_FORMAT, &2u64.to_be_bytes()[..]).unwrap();
            meta.insert(META_APPLIED, &9u64.to_be_bytes()[..]).unwrap();
            db.open_tree("slots").unwrap().insert(b"k", b"v").unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.applied_seq().unwrap(), 0);
        assert!(!store.db.tree_names().iter().any(|n| n.as_ref() == b"slots"));
        let r = receipt();
        let recipient = Receipt {
            kind: ReceiptKind::Recipient,
            owner: Address::repeat_byte(0x55),
            ..r.clone()
        };
        let group = signed_group(vec![r.clone(), recipient]);
        store
            .write(&StoreUpdate {
                groups: vec![NumberedGroup {
                    number: 1,
                    signed: group.clone(),
                }],
                batches: vec![],
                applied_seq: 1,
            })
            .unwrap();
        assert_eq!(
            store.receipt(&r.tx_hash).unwrap(),
            Some((r.clone(), ReceiptPlace { group: 1, index: 0 }))
        );
        assert_eq!(store.signed_receipt(&r.tx_hash).unwrap(), group.receipt(0));
        assert_eq!(store.last_group_number().unwrap(), 1);
        // Only the sender's receipt counts a transaction.
        assert_eq!(store.transaction_count(), 1);
    }
}
