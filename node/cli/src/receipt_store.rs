//! The wallet's receipts on disk: every signed receipt the wallet gets is kept, one JSON file
//! each, so that the wallet (or a watchtower given the directory) can later prove a theft of
//! its balance with them (DESIGN section 9).
//!
//! Layout: `<base>/<chainId>-<settlement>/<owner>/<sequence>-<kind>-<leaf>.json`, where
//! `<base>` is `--receipts-dir`, `STABLELANE_RECEIPTS_DIR`, `$XDG_DATA_HOME/stablelane/receipts`
//! or `~/.local/share/stablelane/receipts`. `<sequence>` is zero-padded to 20 digits so that
//! names sort by sequence; `<leaf>` (the first 8 bytes of the receipt's leaf hash, hex) keeps
//! two different receipts of one sequence and kind apart — the node signing two is itself
//! evidence worth keeping. Each file is written to a temporary name, synced and renamed, and
//! the directory synced: a crash leaves a receipt whole or absent.

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};

use alloy::primitives::Address;
use eyre::{bail, Context as _, Result};
use stablelane::SignedReceipt;

/// Largest receipt file read back (a receipt with a 32-level path is about 3 KiB).
const FILE_SIZE_MAX_BYTES: u64 = 64 * 1024;

/// The receipts of one owner on one deployment.
#[derive(Debug, Clone)]
pub struct ReceiptStore {
    dir: PathBuf,
    owner: Address,
}

/// The base directory when none is given: `$XDG_DATA_HOME/stablelane/receipts`, else
/// `$HOME/.local/share/stablelane/receipts`.
pub fn default_base() -> Result<PathBuf> {
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(data).join("stablelane").join("receipts"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => Ok(PathBuf::from(home)
            .join(".local")
            .join("share")
            .join("stablelane")
            .join("receipts")),
        None => bail!("no receipts directory: pass --receipts-dir or set STABLELANE_RECEIPTS_DIR"),
    }
}

impl ReceiptStore {
    /// The store of `owner` on the deployment (`chain_id`, `settlement`) under `base`,
    /// created if missing.
    pub fn open(base: &Path, chain_id: u64, settlement: Address, owner: Address) -> Result<Self> {
        let dir = base
            .join(format!("{chain_id}-{settlement:#x}"))
            .join(format!("{owner:#x}"));
        fs::create_dir_all(&dir)
            .wrap_err_with(|| format!("creating the receipts directory {}", dir.display()))?;
        Ok(Self { dir, owner })
    }

    /// The directory the receipts are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file_name(receipt: &SignedReceipt) -> String {
        let r = &receipt.receipt;
        format!(
            "{:020}-{}-{}.json",
            r.sequence.get(),
            r.kind.as_str(),
            alloy::hex::encode(&r.leaf()[..8])
        )
    }

    /// Keeps `receipt` (durably); `false` when the same receipt was already kept.
    pub fn save(&self, receipt: &SignedReceipt) -> Result<bool> {
        if receipt.receipt.owner != self.owner {
            bail!(
                "a receipt of {} is not one of {}'s",
                receipt.receipt.owner,
                self.owner
            );
        }
        let path = self.dir.join(Self::file_name(receipt));
        if path.exists() {
            return Ok(false);
        }
        let text = serde_json::to_string_pretty(receipt)? + "\n";
        let tmp = self.dir.join(format!(
            ".{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("receipt")
        ));
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            fs::File::open(&self.dir)?.sync_all()
        };
        write().wrap_err_with(|| format!("keeping the receipt in {}", path.display()))?;
        Ok(true)
    }

    /// Every kept receipt, by sequence. A file that is not a receipt of this owner is an
    /// error naming it (the directory is the wallet's evidence: nothing is skipped silently).
    pub fn list(&self) -> Result<Vec<SignedReceipt>> {
        let mut names: Vec<PathBuf> = fs::read_dir(&self.dir)
            .wrap_err_with(|| format!("reading {}", self.dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && !p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'))
            })
            .collect();
        names.sort();
        let mut receipts = Vec::with_capacity(names.len());
        for path in names {
            let size = fs::metadata(&path)
                .wrap_err_with(|| format!("reading {}", path.display()))?
                .len();
            if size > FILE_SIZE_MAX_BYTES {
                bail!(
                    "{} is {size} bytes, more than a receipt ({FILE_SIZE_MAX_BYTES} at most)",
                    path.display()
                );
            }
            let text = fs::read_to_string(&path)
                .wrap_err_with(|| format!("reading {}", path.display()))?;
            let receipt: SignedReceipt = serde_json::from_str(&text)
                .wrap_err_with(|| format!("{} is not a signed receipt", path.display()))?;
            if receipt.receipt.owner != self.owner {
                bail!(
                    "{} is a receipt of {}, not of {}",
                    path.display(),
                    receipt.receipt.owner,
                    self.owner
                );
            }
            receipts.push(receipt);
        }
        receipts.sort_by_key(|r| (r.receipt.sequence, r.receipt.kind.code()));
        Ok(receipts)
    }
}

#[cfg(test)]
mod tests {
    use alloy::{signers::local::PrivateKeySigner, sol_types::Eip712Domain};
    use stablelane::{
        Amount, Nonce, Receipt, ReceiptKind, SequenceNumber, SignedGroup, SlotIndex, TxHash,
    };

    use super::*;

    fn receipt(owner: Address, sequence: u64, balance: u128) -> Receipt {
        Receipt {
            sequence: SequenceNumber(sequence),
            tx_hash: TxHash(alloy::primitives::B256::repeat_byte(sequence as u8)),
            kind: ReceiptKind::Recipient,
            owner,
            token: Address::repeat_byte(0x70),
            slot: SlotIndex(3),
            balance: Amount(balance),
            nonce: Nonce(0),
            deposits_consumed: 0,
            forced_consumed: 0,
        }
    }

    #[test]
    fn receipts_are_kept_once_listed_by_sequence_and_checked_for_their_owner() -> Result<()> {
        let key = PrivateKeySigner::random();
        let domain = Eip712Domain::default();
        let owner = Address::repeat_byte(0x0a);
        let (early, late) = (receipt(owner, 9, 7), receipt(owner, 12, 5));
        let group =
            SignedGroup::sign(vec![early.clone(), late.clone()], &key, &domain.separator())?;
        let dir = tempfile::tempdir()?;
        let store = ReceiptStore::open(dir.path(), 31337, Address::repeat_byte(0x5e), owner)?;
        let late = group.signed(late, 1).expect("index 1");
        let early = group.signed(early, 0).expect("index 0");
        assert!(store.save(&late)?);
        assert!(store.save(&early)?);
        assert!(!store.save(&late)?, "the same receipt was kept twice");
        let listed = store.list()?;
        assert_eq!(listed, vec![early.clone(), late]);
        for r in &listed {
            r.verify(key.address(), &domain)?;
        }

        // Another owner's receipt is neither kept nor listed silently.
        let stranger = receipt(Address::repeat_byte(0x0b), 13, 1);
        let other = SignedGroup::sign(vec![stranger.clone()], &key, &domain.separator())?
            .signed(stranger, 0)
            .expect("index 0");
        assert!(store.save(&other).is_err());
        let stray = store.dir().join("00000000000000000013-recipient-00.json");
        fs::write(&stray, serde_json::to_string(&other)?)?;
        assert!(store.list().is_err());
        fs::remove_file(&stray)?;
        // Nor is a file that is not a receipt.
        fs::write(store.dir().join("x.json"), "{}")?;
        assert!(store.list().is_err());
        Ok(())
    }
}
