//! Helpers shared by the integration tests.

use std::{
    fs,
    path::{Path, PathBuf},
};

use stablelane_storage::{Journal, JournalConfig, SequenceNumber};

/// A config with small segments, so that tests roll over often.
pub fn config(segment_size_max_bytes: u64) -> JournalConfig {
    let mut config = JournalConfig::default();
    config.segment_size_max_bytes = segment_size_max_bytes;
    config
}

/// Every record of the journal, in order, as `(seq, payload)`.
pub fn all_records(journal: &Journal) -> Vec<(u64, Vec<u8>)> {
    journal
        .replay_from(SequenceNumber::FIRST)
        .expect("replay")
        .map(|r| {
            let r = r.expect("replayed record");
            (r.seq.get(), r.payload)
        })
        .collect()
}

/// Segment files of a journal directory, in name (= sequence) order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("journal-") && name.ends_with(".log")
        })
        .collect();
    files.sort();
    files
}

/// A deterministic payload of a given length, distinct per `seed`.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Copies every file of `from` into a fresh temporary directory.
pub fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, to.path().join(path.file_name().unwrap())).unwrap();
    }
    to
}
