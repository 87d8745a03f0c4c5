//! Restart snapshots: the state as of a seal record, so that a restart replays only the
//! journal after it.
//!
//! The journal stays the record of truth. A snapshot is a copy of what replaying it up to a
//! seal record gives (the ledger, the state tree, the deposit and forced-request hash chains),
//! taken every [`SnapshotConfig::every_records`] records at the next seal: the writer copies
//! the ledger when it applies that seal record, the tree worker adds the tree once the seal
//! job ran, and a background thread writes the file (to a temporary name, `fsync`, rename,
//! `fsync` of the directory) and keeps the newest [`SnapshotConfig::keep`].
//!
//! On start-up the newest snapshot that reads back whole (its CRC-32 over every byte), belongs
//! to the configured deployment, and agrees with the journal (the record at its position is
//! the seal of its batch) and with the store (which holds that batch with the same root and
//! covers that record) is loaded; the rest of the journal replays on top. Any doubt falls back
//! to an older snapshot, then to a full replay. `stablelane journal verify` still replays
//! everything.
//!
//! File layout (integers little-endian, field elements and hashes as 32 big-endian bytes):
//!
//! ```text
//! "SLSNAP01"  domain separator (32)  record (8)  batch (8)  root (32)
//! deposits hash (32)  forced hash (32)  deposits consumed (8)  forced consumed (8)
//! slots (8)  viewing keys (8)  tokens (8)  tree leaves (8)
//! slots × [owner (20) token (20) balance (16) nonce (8) salt (32)]
//! viewing keys × [owner (20) key (32)]
//! tokens × [token (20) deposited (16) withdrawn (16)]
//! tree levels 0..=32, level l: ceil(leaves / 2^l) × node (32)
//! CRC-32 of everything before (4)
//! ```

use std::{
    fs::{self, File},
    io::{BufReader, BufWriter, Read, Write},
    path::{Path, PathBuf},
};

use alloy::primitives::{Address, B256};
use stablelane::{Amount, Nonce};
use stablelane_circuits::{
    field::{fr_from_be_bytes, fr_to_be_bytes},
    tree::StateTree,
    Fr, TREE_DEPTH,
};
use stablelane_ledger::{LedgerImage, Slot, Supply};

const MAGIC: &[u8; 8] = b"SLSNAP01";
const HEADER_BYTES: u64 = 8 + 32 + 8 + 8 + 32 + 32 + 32 + 8 + 8 + 8 + 8 + 8 + 8;
const SLOT_BYTES: u64 = 20 + 20 + 16 + 8 + 32;
const VIEWING_KEY_BYTES: u64 = 20 + 32;
const SUPPLY_BYTES: u64 = 20 + 16 + 16;
const NODE_BYTES: u64 = 32;
const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".bin";
const TMP_SUFFIX: &str = ".tmp";

/// Where and how often snapshots are taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotConfig {
    /// Directory of the snapshot files.
    pub dir: PathBuf,
    /// Journal records between snapshots (one is taken at the first seal after this many
    /// records since the last); 0 takes none (restarts then replay the whole journal).
    pub every_records: u64,
    /// Snapshots kept (at least 1): an older one is used when the newest does not read back.
    pub keep: usize,
}

impl SnapshotConfig {
    /// Default [`every_records`](Self::every_records): a restart replays about this many
    /// records after the snapshot, about 5 s of replay here (see docs/benchmarks.md), and a
    /// snapshot costs the writer one copy of the ledger (tens of milliseconds at a million
    /// slots) every few minutes at full load.
    pub const DEFAULT_EVERY_RECORDS: u64 = 500_000;
    /// Default [`keep`](Self::keep).
    pub const DEFAULT_KEEP: usize = 2;

    /// Snapshots in `dir` at the default interval.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            every_records: Self::DEFAULT_EVERY_RECORDS,
            keep: Self::DEFAULT_KEEP,
        }
    }

    /// No snapshots (every restart replays the whole journal).
    pub fn off() -> Self {
        Self {
            dir: PathBuf::new(),
            every_records: 0,
            keep: Self::DEFAULT_KEEP,
        }
    }

    /// Whether snapshots are taken and read.
    pub fn enabled(&self) -> bool {
        self.every_records > 0 && !self.dir.as_os_str().is_empty()
    }
}

/// Why a snapshot file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a snapshot, or not a whole one.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A snapshot of another deployment.
    #[error("{path}: taken for domain separator {found}, configured {configured}")]
    WrongDeployment {
        /// The file.
        path: PathBuf,
        /// Its domain separator.
        found: B256,
        /// The configured one.
        configured: B256,
    },
}

/// The state as of a seal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Sequence number of the seal record.
    pub seq: u64,
    /// The batch it sealed.
    pub batch: u64,
    /// That batch's state root (the tree's root).
    pub root: B256,
    /// Hash chain of the deposits consumed so far.
    pub deposits_hash: B256,
    /// Hash chain of the forced requests consumed so far.
    pub forced_hash: B256,
    /// The ledger.
    pub ledger: LedgerImage,
    /// The state tree.
    pub tree: StateTree,
}

/// File name of the snapshot of record `seq`.
fn file_name(seq: u64) -> String {
    format!("{PREFIX}{seq:020}{SUFFIX}")
}

/// The snapshots in `dir`, newest first (a missing directory has none).
///
/// # Errors
///
/// [`SnapshotError::Io`] if the directory cannot be listed.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SnapshotError> {
    let io = |source| SnapshotError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(seq) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((seq, entry.path()));
    }
    found.sort_unstable_by_key(|(seq, _)| std::cmp::Reverse(*seq));
    Ok(found)
}

/// Writes `snapshot` into `dir` durably (temporary file, `fsync`, rename, `fsync` of the
/// directory), then deletes all but the newest `keep` snapshots and any temporary files
/// left by an interrupted write. Returns the file's path and size in bytes.
///
/// # Errors
///
/// [`SnapshotError::Io`]; a failed write leaves the older snapshots as they were.
pub fn write(
    dir: &Path,
    domain_separator: B256,
    snapshot: &Snapshot,
    keep: usize,
) -> Result<(PathBuf, u64), SnapshotError> {
    let path = dir.join(file_name(snapshot.seq));
    let tmp = dir.join(format!("{}{TMP_SUFFIX}", file_name(snapshot.seq)));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SnapshotError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let file = File::create(&tmp).map_err(io(&tmp))?;
    let mut out = Crc32Writer::new(BufWriter::with_capacity(1 << 20, file));
    encode(&mut out, domain_separator, snapshot).map_err(io(&tmp))?;
    let crc = out.hasher.clone().finalize();
    let bytes = out.written + 4;
    let mut inner = out.inner;
    inner.write_all(&crc.to_le_bytes()).map_err(io(&tmp))?;
    let file = inner.into_inner().map_err(|e| SnapshotError::Io {
        path: tmp.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(io(&path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    prune(dir, keep.max(1))?;
    Ok((path, bytes))
}

/// Deletes all but the newest `keep` snapshots and leftover temporary files.
fn prune(dir: &Path, keep: usize) -> Result<(), SnapshotError> {
    for (_, old) in list(dir)?.into_iter().skip(keep) {
        fs::remove_file(&old).map_err(|source| SnapshotError::Io { path: old, source })?;
    }
    let entries = fs::read_dir(dir).map_err(|source| SnapshotError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name
            .to_str()
            .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(TMP_SUFFIX))
        {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}

fn encode(out: &mut impl Write, domain_separator: B256, s: &Snapshot) -> std::io::Result<()> {
    let image = &s.ledger;
    out.write_all(MAGIC)?;
    out.write_all(domain_separator.as_slice())?;
    out.write_all(&s.seq.to_le_bytes())?;
    out.write_all(&s.batch.to_le_bytes())?;
    out.write_all(s.root.as_slice())?;
    out.write_all(s.deposits_hash.as_slice())?;
    out.write_all(s.forced_hash.as_slice())?;
    out.write_all(&image.deposits_consumed.to_le_bytes())?;
    out.write_all(&image.forced_consumed.to_le_bytes())?;
    for count in [
        image.slots.len(),
        image.viewing_keys.len(),
        image.supply.len(),
        s.tree.leaves().len(),
    ] {
        out.write_all(&(count as u64).to_le_bytes())?;
    }
    for slot in &image.slots {
        out.write_all(slot.owner.as_slice())?;
        out.write_all(slot.token.as_slice())?;
        out.write_all(&slot.balance.base_units().to_le_bytes())?;
        out.write_all(&slot.nonce.get().to_le_bytes())?;
        out.write_all(slot.salt.as_slice())?;
    }
    for (owner, key) in &image.viewing_keys {
        out.write_all(owner.as_slice())?;
        out.write_all(key.as_slice())?;
    }
    for (token, supply) in &image.supply {
        out.write_all(token.as_slice())?;
        out.write_all(&supply.deposited.base_units().to_le_bytes())?;
        out.write_all(&supply.withdrawn.base_units().to_le_bytes())?;
    }
    for level in s.tree.levels() {
        for node in level {
            out.write_all(&fr_to_be_bytes(node))?;
        }
    }
    Ok(())
}

/// Reads the snapshot at `path`, checking its length, checksum and deployment. Memory is
/// bounded by the file's size: counts in the header must account for every byte of it.
///
/// # Errors
///
/// [`SnapshotError`] if it cannot be read, is not a whole snapshot, or belongs to another
/// deployment.
pub fn read(path: &Path, domain_separator: B256) -> Result<Snapshot, SnapshotError> {
    let corrupt = |reason: String| SnapshotError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let io = |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut r = Crc32Reader {
        inner: BufReader::with_capacity(1 << 20, file),
        hasher: crc32fast::Hasher::new(),
    };
    let truncated = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            corrupt("truncated".into())
        } else {
            io(e)
        }
    };
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(truncated)?;
    if &magic != MAGIC {
        return Err(corrupt("not a Stablelane snapshot (bad magic)".into()));
    }
    let found = r.b256().map_err(truncated)?;
    let seq = r.u64().map_err(truncated)?;
    let batch = r.u64().map_err(truncated)?;
    let root = r.b256().map_err(truncated)?;
    let deposits_hash = r.b256().map_err(truncated)?;
    let forced_hash = r.b256().map_err(truncated)?;
    let deposits_consumed = r.u64().map_err(truncated)?;
    let forced_consumed = r.u64().map_err(truncated)?;
    let slots = r.u64().map_err(truncated)?;
    let viewing_keys = r.u64().map_err(truncated)?;
    let tokens = r.u64().map_err(truncated)?;
    let leaves = r.u64().map_err(truncated)?;
    let nodes = (0..=TREE_DEPTH).try_fold(0u64, |sum, level| {
        sum.checked_add(leaves.div_ceil(1u64 << level))
    });
    let expected = [
        (slots, SLOT_BYTES),
        (viewing_keys, VIEWING_KEY_BYTES),
        (tokens, SUPPLY_BYTES),
        (nodes.unwrap_or(u64::MAX), NODE_BYTES),
    ]
    .iter()
    .try_fold(HEADER_BYTES + 4, |sum, (count, bytes)| {
        count.checked_mul(*bytes).and_then(|b| sum.checked_add(b))
    });
    if expected != Some(size) {
        return Err(corrupt(format!(
            "{size} bytes, its header describes {}",
            expected.map_or("more than 2^64".to_string(), |e| e.to_string())
        )));
    }
    if found != domain_separator {
        return Err(SnapshotError::WrongDeployment {
            path: path.to_path_buf(),
            found,
            configured: domain_separator,
        });
    }
    let body = (|| -> std::io::Result<_> {
        let mut image = LedgerImage {
            slots: Vec::with_capacity(slots as usize),
            viewing_keys: Vec::with_capacity(viewing_keys as usize),
            supply: Vec::with_capacity(tokens as usize),
            deposits_consumed,
            forced_consumed,
        };
        for _ in 0..slots {
            image.slots.push(Slot {
                owner: r.address()?,
                token: r.address()?,
                balance: Amount(r.u128()?),
                nonce: Nonce(r.u64()?),
                salt: r.b256()?,
            });
        }
        for _ in 0..viewing_keys {
            image.viewing_keys.push((r.address()?, r.b256()?));
        }
        for _ in 0..tokens {
            let token = r.address()?;
            image.supply.push((
                token,
                Supply {
                    deposited: Amount(r.u128()?),
                    withdrawn: Amount(r.u128()?),
                },
            ));
        }
        let mut levels = Vec::with_capacity(TREE_DEPTH + 1);
        for level in 0..=TREE_DEPTH {
            let len = leaves.div_ceil(1u64 << level) as usize;
            let mut nodes: Vec<Fr> = Vec::with_capacity(len);
            for _ in 0..len {
                let bytes = r.array::<32>()?;
                let node = fr_from_be_bytes(&bytes)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                nodes.push(node);
            }
            levels.push(nodes);
        }
        Ok((image, levels))
    })();
    let (image, levels) = body.map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => corrupt(format!("tree node: {e}")),
        _ => truncated(e),
    })?;
    let computed = r.hasher.clone().finalize();
    let mut stored = [0u8; 4];
    r.inner.read_exact(&mut stored).map_err(truncated)?;
    if u32::from_le_bytes(stored) != computed {
        return Err(corrupt("checksum mismatch".into()));
    }
    let tree = StateTree::from_levels(levels).map_err(|e| corrupt(e.to_string()))?;
    if B256::from(fr_to_be_bytes(&tree.root())) != root {
        return Err(corrupt("the tree's root is not the recorded root".into()));
    }
    Ok(Snapshot {
        seq,
        batch,
        root,
        deposits_hash,
        forced_hash,
        ledger: image,
        tree,
    })
}

/// A writer that counts and checksums what passes through.
struct Crc32Writer<W> {
    inner: W,
    hasher: crc32fast::Hasher,
    written: u64,
}

impl<W: Write> Crc32Writer<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: crc32fast::Hasher::new(),
            written: 0,
        }
    }
}

impl<W: Write> Write for Crc32Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that checksums what it reads.
struct Crc32Reader<R> {
    inner: R,
    hasher: crc32fast::Hasher,
}

impl<R: Read> Crc32Reader<R> {
    fn array<const N: usize>(&mut self) -> std::io::Result<[u8; N]> {
        let mut out = [0u8; N];
        self.inner.read_exact(&mut out)?;
        self.hasher.update(&out);
        Ok(out)
    }

    fn u64(&mut self) -> std::io::Result<u64> {
        self.array::<8>().map(u64::from_le_bytes)
    }

    fn u128(&mut self) -> std::io::Result<u128> {
        self.array::<16>().map(u128::from_le_bytes)
    }

    fn b256(&mut self) -> std::io::Result<B256> {
        self.array::<32>().map(B256::from)
    }

    fn address(&mut self) -> std::io::Result<Address> {
        self.array::<20>().map(Address::from)
    }
}

impl<R: Read> Read for Crc32Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seq: u64) -> Snapshot {
        let slots: Vec<Slot> = (0..37u8)
            .map(|i| Slot {
                owner: Address::repeat_byte(i),
                token: Address::repeat_byte(0xaa),
                balance: Amount(1_000 + u128::from(i)),
                nonce: Nonce(u64::from(i) * 3),
                salt: B256::from(fr_to_be_bytes(&Fr::from(u64::from(i) + 99))),
            })
            .collect();
        let total: u128 = slots.iter().map(|s| s.balance.base_units()).sum();
        let tree =
            StateTree::from_leaves((0..37u64).map(|i| Fr::from(i * 7 + 1)).collect()).unwrap();
        Snapshot {
            seq,
            batch: 4,
            root: B256::from(fr_to_be_bytes(&tree.root())),
            deposits_hash: B256::repeat_byte(1),
            forced_hash: B256::repeat_byte(2),
            ledger: LedgerImage {
                slots,
                viewing_keys: vec![(Address::repeat_byte(3), B256::repeat_byte(4))],
                supply: vec![(
                    Address::repeat_byte(0xaa),
                    Supply {
                        deposited: Amount(total + 5),
                        withdrawn: Amount(5),
                    },
                )],
                deposits_consumed: 37,
                forced_consumed: 1,
            },
            tree,
        }
    }

    const DOMAIN: B256 = B256::repeat_byte(0x5d);

    #[test]
    fn a_written_snapshot_reads_back_and_old_ones_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        for seq in [10, 20, 30] {
            let (path, bytes) = write(dir.path(), DOMAIN, &sample(seq), 2).unwrap();
            assert_eq!(fs::metadata(&path).unwrap().len(), bytes);
            assert_eq!(read(&path, DOMAIN).unwrap(), sample(seq));
        }
        let listed: Vec<u64> = list(dir.path())
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(listed, vec![30, 20]);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temporary file left"
        );
        assert!(list(&dir.path().join("missing")).unwrap().is_empty());
    }

    #[test]
    fn damaged_truncated_or_foreign_snapshots_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write(dir.path(), DOMAIN, &sample(10), 2).unwrap();
        let good = fs::read(&path).unwrap();
        // Any flipped byte is caught: by the header's sizes, the checksum, or a field check.
        for at in [
            0,
            45,
            60,
            200,
            good.len() / 2,
            good.len() - 40,
            good.len() - 1,
        ] {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            fs::write(&path, &bad).unwrap();
            assert!(
                matches!(read(&path, DOMAIN), Err(SnapshotError::Corrupt { .. })),
                "flipped byte {at} not caught"
            );
        }
        fs::write(&path, &good[..good.len() - 1]).unwrap();
        assert!(matches!(
            read(&path, DOMAIN),
            Err(SnapshotError::Corrupt { .. })
        ));
        fs::write(&path, &good[..20]).unwrap();
        assert!(matches!(
            read(&path, DOMAIN),
            Err(SnapshotError::Corrupt { .. })
        ));
        // A header claiming billions of slots is refused before anything is allocated.
        let mut huge = good.clone();
        let slots_at = (HEADER_BYTES - 32) as usize;
        huge[slots_at..slots_at + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        fs::write(&path, &huge).unwrap();
        assert!(matches!(
            read(&path, DOMAIN),
            Err(SnapshotError::Corrupt { .. })
        ));
        fs::write(&path, &good).unwrap();
        assert!(matches!(
            read(&path, B256::repeat_byte(1)),
            Err(SnapshotError::WrongDeployment { .. })
        ));
        assert_eq!(read(&path, DOMAIN).unwrap(), sample(10));
    }
}
