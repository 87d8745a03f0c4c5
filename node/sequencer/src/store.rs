//! The sled store: materialised state and indexes, derived from the journal.
//!
//! sled is not the record of truth — the journal is. The store holds what the node looks up
//! without replaying: each accepted transaction's receipt by transaction hash (a fixed
//! 109-byte binary record), the deployment it belongs to, and a root checkpoint. Slots are
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
    sync::atomic::{AtomicU64, Ordering},
};

use alloy::primitives::{Address, B256};
use stablelane::{Amount, Nonce, Receipt, SequenceNumber, SlotIndex, TxHash};

use crate::batch::{BatchChainState, SealedBatch};

/// Version of the store's layout; a store of another version is rebuilt.
///
/// 4: receipts in binary keyed by transaction hash (one tree, `transactions`); no slots;
///    batches as a JSON header and raw data.
/// 3: as 4 with batches in JSON (data as hex).
/// 2: JSON receipts by sequence number, a hash → sequence index, every slot in JSON.
pub const STORE_FORMAT: u64 = 4;

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

/// What one write adds: receipts of new transactions and sealed batches, covering the
/// journal up to `applied_seq`.
#[derive(Debug, Default)]
pub struct StoreUpdate {
    /// Receipts of transactions accepted in this range.
    pub receipts: Vec<Receipt>,
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
const RECEIPT_VERSION: u8 = 1;
/// Bytes of a stored receipt: version, sequence (8), owner (20), token (20), slot (4),
/// balance (16), nonce (8), leaf (32), all big-endian; the transaction hash is the key.
pub const RECEIPT_BYTES: usize = 1 + 8 + 20 + 20 + 4 + 16 + 8 + 32;

fn encode_receipt(r: &Receipt) -> [u8; RECEIPT_BYTES] {
    let mut out = [0u8; RECEIPT_BYTES];
    let parts: [&[u8]; 8] = [
        &[RECEIPT_VERSION],
        &r.sequence.get().to_be_bytes(),
        r.owner.as_slice(),
        r.token.as_slice(),
        &r.slot.get().to_be_bytes(),
        &r.balance.base_units().to_be_bytes(),
        &r.nonce.get().to_be_bytes(),
        r.leaf.as_slice(),
    ];
    let mut at = 0;
    for part in parts {
        let end = at + part.len();
        out[at..end].copy_from_slice(part);
        at = end;
    }
    out
}

fn decode_receipt(hash: &TxHash, bytes: &[u8]) -> Result<Receipt, StoreError> {
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
    fn be<const N: usize>(b: &[u8]) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        a
    }
    Ok(Receipt {
        tx_hash: *hash,
        sequence: SequenceNumber(u64::from_be_bytes(be(take(8)))),
        owner: Address::from_slice(take(20)),
        token: Address::from_slice(take(20)),
        slot: SlotIndex(u32::from_be_bytes(be(take(4)))),
        balance: Amount(u128::from_be_bytes(be(take(16)))),
        nonce: Nonce(u64::from_be_bytes(be(take(8)))),
        leaf: B256::from_slice(take(32)),
    })
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
        if !update.receipts.is_empty() {
            let mut receipts = sled::Batch::default();
            for receipt in &update.receipts {
                receipts.insert(receipt.tx_hash.0.as_slice(), &encode_receipt(receipt)[..]);
            }
            self.transactions.apply_batch(receipts)?;
        }
        for batch in &update.batches {
            let number = batch.number.to_be_bytes();
            self.batches.insert(&number[..], encode_batch(batch))?;
            self.batch_by_seq
                .insert(&batch.last_sequence.to_be_bytes()[..], &number[..])?;
        }
        let count = self
            .tx_count
            .fetch_add(update.receipts.len() as u64, Ordering::Relaxed)
            + update.receipts.len() as u64;
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

    /// The receipt of transaction `hash`, if indexed.
    pub fn receipt(&self, hash: &TxHash) -> Result<Option<Receipt>, StoreError> {
        self.transactions
            .get(hash.0.as_slice())?
            .map(|bytes| decode_receipt(hash, &bytes))
            .transpose()
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
            sequence: SequenceNumber(0x0102_0304_0506_0708),
            owner: Address::repeat_byte(0x11),
            token: Address::repeat_byte(0x22),
            slot: SlotIndex(0x0a0b_0c0d),
            balance: Amount((1u128 << 96) - 1),
            nonce: Nonce((1u64 << 40) - 1),
            leaf: B256::repeat_byte(0x33),
        }
    }

    #[test]
    fn receipts_round_trip_in_their_fixed_layout() {
        let r = receipt();
        let bytes = encode_receipt(&r);
        assert_eq!(bytes.len(), RECEIPT_BYTES);
        assert_eq!(bytes[0], RECEIPT_VERSION);
        assert_eq!(&bytes[1..9], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[49..53], &[0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(&bytes[RECEIPT_BYTES - 32..], &[0x33; 32]);
        assert_eq!(decode_receipt(&r.tx_hash, &bytes).unwrap(), r);
        let max = Receipt {
            balance: Amount(u128::MAX),
            nonce: Nonce(u64::MAX),
            ..r.clone()
        };
        assert_eq!(
            decode_receipt(&r.tx_hash, &encode_receipt(&max)).unwrap(),
            max
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
        let bytes = encode_receipt(&r);
        let short = decode_receipt(&r.tx_hash, &bytes[..RECEIPT_BYTES - 1]).unwrap_err();
        assert!(
            short.to_string().contains("108 bytes, expected 109"),
            "{short}"
        );
        let mut versioned = bytes;
        versioned[0] = 2;
        let err = decode_receipt(&r.tx_hash, &versioned).unwrap_err();
        assert!(err.to_string().contains("receipt version 2"), "{err}");
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
        store
            .write(&StoreUpdate {
                receipts: vec![r.clone()],
                batches: vec![],
                applied_seq: 1,
            })
            .unwrap();
        assert_eq!(store.receipt(&r.tx_hash).unwrap(), Some(r));
        assert_eq!(store.transaction_count(), 1);
    }
}
