//! The state as of sealed batches, for balance attestations.
//!
//! Proofs are made against roots the contract knows, that is roots of sealed (and then
//! committed) batches, never the live root, which moves with every transfer. [`SealedStates`]
//! keeps a second state tree equal to the live one at the last seal, the opening secrets of
//! every slot at that point, and, for the last `history` batches, what each seal overwrote, so
//! that the path and secrets of any slot can be read as of any of those batches.
//!
//! Keeping it costs no hashing: at a seal the live tree is up to date, and the paths of the
//! batch's changed slots are copied from it ([`StateTree::copy_paths_from`]). Memory: a second
//! tree (about 64 bytes per slot), 56 bytes of secrets per slot, and per retained batch about
//! 33 overwritten nodes per changed slot (about 1.6 MB for a batch of 1,024 changed slots).
//! It is a deterministic function of the journal like the rest of the state: replay rebuilds
//! it, nothing of it is stored.

use std::collections::{HashMap, VecDeque};

use alloy::primitives::B256;
use stablelane_circuits::{
    field::fr_from_be_bytes,
    tree::{SlotIndex as TreeIndex, StateTree},
    Fr, MerklePath, TREE_DEPTH,
};

/// Default number of sealed batches whose states stay readable.
pub const DEFAULT_HISTORY: usize = 64;

/// What opens a slot's leaf: Poseidon(owner, token, balance, nonce, salt).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SlotSecrets {
    /// Balance in base units.
    pub balance: u128,
    /// Nonce.
    pub nonce: u64,
    /// Salt (a field element).
    pub salt: Fr,
}

impl std::fmt::Debug for SlotSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlotSecrets { .. }")
    }
}

/// A slot's leaf opening and Merkle path as of a sealed batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotOpening {
    /// The batch.
    pub batch: u64,
    /// The batch's root.
    pub root: Fr,
    /// The slot's secrets then.
    pub secrets: SlotSecrets,
    /// The slot's path to `root`.
    pub path: MerklePath,
}

/// Why no opening can be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpeningError {
    /// The batch is not sealed yet, or older than the retained history.
    #[error(
        "batch {batch} is not available: the node keeps the states of batches {oldest}..={newest}"
    )]
    NotRetained {
        /// The batch asked for.
        batch: u64,
        /// Oldest readable batch.
        oldest: u64,
        /// Newest sealed batch.
        newest: u64,
    },
    /// The slot did not exist yet at that batch.
    #[error("the account had no slot yet at batch {batch}")]
    NoSlot {
        /// The batch asked for.
        batch: u64,
    },
    /// Keeping sealed states is switched off (no prover configured).
    #[error("sealed states are not kept (no prover configured)")]
    Disabled,
}

/// What one seal overwrote: enough to read the state before it.
#[derive(Debug, Default)]
struct Undo {
    /// The batch this seal made.
    batch: u64,
    /// Tree nodes before the seal, by (level, position).
    nodes: HashMap<(u8, u32), Fr>,
    /// Slot secrets before the seal (`None`: the slot did not exist).
    secrets: HashMap<u32, Option<SlotSecrets>>,
}

/// The states of the last sealed batches (see the [module docs](self)).
#[derive(Debug)]
pub struct SealedStates {
    history: usize,
    tree: StateTree,
    secrets: Vec<SlotSecrets>,
    head: u64,
    roots: VecDeque<(u64, Fr)>,
    undo: VecDeque<Undo>,
}

impl SealedStates {
    /// Empty (before batch 1), keeping the states of the last `history` batches (at least 1).
    pub fn new(history: usize) -> Self {
        let tree = StateTree::new();
        let mut roots = VecDeque::new();
        roots.push_back((0, tree.root()));
        Self {
            history: history.max(1),
            tree,
            secrets: Vec::new(),
            head: 0,
            roots,
            undo: VecDeque::new(),
        }
    }

    /// The newest sealed batch (0 before any).
    pub fn head(&self) -> u64 {
        self.head
    }

    /// The oldest batch whose state is readable.
    pub fn oldest(&self) -> u64 {
        self.roots.front().map_or(self.head, |&(b, _)| b)
    }

    /// Records the seal of batch `number`: `live` is the up-to-date live tree, `changed` the
    /// slots the batch changed with their secrets now.
    ///
    /// # Errors
    ///
    /// A message if the tree cannot grow or a salt is not a field element (the state is then
    /// unchanged except for the tree's allocation).
    pub fn record_seal(
        &mut self,
        number: u64,
        live: &StateTree,
        changed: &[(u32, SlotSecrets)],
    ) -> Result<(), String> {
        let slots: Vec<TreeIndex> = changed.iter().map(|&(i, _)| TreeIndex::new(i)).collect();
        let overwritten = self
            .tree
            .copy_paths_from(live, &slots)
            .map_err(|e| e.to_string())?;
        let mut undo = Undo {
            batch: number,
            nodes: overwritten
                .into_iter()
                .map(|(level, position, old)| ((level, position), old))
                .collect(),
            secrets: HashMap::with_capacity(changed.len()),
        };
        let known = self.secrets.len();
        let needed = changed
            .iter()
            .map(|&(slot, _)| slot as usize + 1)
            .max()
            .unwrap_or(0);
        if needed > known {
            let zero = SlotSecrets {
                balance: 0,
                nonce: 0,
                salt: Fr::from(0u64),
            };
            self.secrets.resize(needed, zero);
        }
        for &(slot, secrets) in changed {
            let index = slot as usize;
            if let Some(now) = self.secrets.get_mut(index) {
                // A slot created by this batch did not exist before it.
                let before = (index < known).then_some(*now);
                undo.secrets.entry(slot).or_insert(before);
                *now = secrets;
            }
        }
        self.head = number;
        self.roots.push_back((number, self.tree.root()));
        self.undo.push_back(undo);
        while self.undo.len() > self.history {
            self.undo.pop_front();
        }
        while self.roots.len() > self.history + 1 {
            self.roots.pop_front();
        }
        Ok(())
    }

    /// Starts over at sealed batch `number` with `live` (up to date at that seal) and the
    /// secrets of every slot then: the history begins there. Journal replay uses it to skip
    /// the seals before the retained history.
    pub fn restart_from(&mut self, number: u64, live: &StateTree, secrets: Vec<SlotSecrets>) {
        self.tree = live.clone();
        self.secrets = secrets;
        self.head = number;
        self.roots.clear();
        self.roots.push_back((number, self.tree.root()));
        self.undo.clear();
    }

    /// The number of sealed batches whose states are kept.
    pub fn history(&self) -> usize {
        self.history
    }

    /// The root of sealed batch `batch`, if retained.
    pub fn root(&self, batch: u64) -> Option<Fr> {
        self.roots
            .iter()
            .find(|&&(b, _)| b == batch)
            .map(|&(_, root)| root)
    }

    /// The opening of `slot` as of sealed batch `batch`.
    ///
    /// # Errors
    ///
    /// [`OpeningError::NotRetained`] for a batch outside the history,
    /// [`OpeningError::NoSlot`] if the slot did not exist then.
    pub fn opening(&self, batch: u64, slot: u32) -> Result<SlotOpening, OpeningError> {
        let root = self.root(batch).ok_or(OpeningError::NotRetained {
            batch,
            oldest: self.oldest(),
            newest: self.head,
        })?;
        // The seals after `batch`, oldest first: the first that overwrote a value holds its
        // value as of `batch`.
        let later: Vec<&Undo> = self.undo.iter().filter(|u| u.batch > batch).collect();
        let node = |level: usize, position: u32| {
            later
                .iter()
                .find_map(|u| u.nodes.get(&(level as u8, position)).copied())
                .unwrap_or_else(|| self.tree.node_at(level, position))
        };
        let secrets = match later.iter().find_map(|u| u.secrets.get(&slot).copied()) {
            Some(then) => then,
            None => self.secrets.get(slot as usize).copied(),
        }
        .ok_or(OpeningError::NoSlot { batch })?;
        let siblings: [Fr; TREE_DEPTH] =
            std::array::from_fn(|level| node(level, (slot >> level) ^ 1));
        Ok(SlotOpening {
            batch,
            root,
            secrets,
            path: MerklePath::new(siblings),
        })
    }
}

/// A ledger slot's secrets.
///
/// # Errors
///
/// A message if the salt is not a field element.
pub fn slot_secrets(slot: &stablelane_ledger::Slot) -> Result<SlotSecrets, String> {
    Ok(SlotSecrets {
        balance: slot.balance.base_units(),
        nonce: slot.nonce.get(),
        salt: fr_from_be_bytes(&slot.salt.0).map_err(|e| format!("salt: {e}"))?,
    })
}

/// The root as the contract stores it.
pub fn root_word(root: &Fr) -> B256 {
    B256::from(stablelane_circuits::field::fr_to_be_bytes(root))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stablelane_circuits::leaf_hash;

    fn secrets(balance: u128, nonce: u64) -> SlotSecrets {
        SlotSecrets {
            balance,
            nonce,
            salt: Fr::from(99u64 + nonce),
        }
    }

    fn leaf(slot: u32, s: &SlotSecrets) -> Fr {
        leaf_hash([slot as u8; 20], [7; 20], s.balance, s.nonce, s.salt)
    }

    /// Applies `changes` to `live` and records the seal.
    fn seal(
        sealed: &mut SealedStates,
        live: &mut StateTree,
        number: u64,
        changes: &[(u32, SlotSecrets)],
    ) {
        let leaves: Vec<_> = changes
            .iter()
            .map(|(i, s)| (TreeIndex::new(*i), leaf(*i, s)))
            .collect();
        live.update_batch(&leaves).expect("update");
        sealed.record_seal(number, live, changes).expect("seal");
        assert_eq!(sealed.root(number), Some(live.root()));
    }

    #[test]
    fn openings_of_past_batches_verify_against_their_roots() {
        let mut sealed = SealedStates::new(3);
        let mut live = StateTree::new();
        let history: Vec<Vec<(u32, SlotSecrets)>> = vec![
            vec![(0, secrets(100, 0)), (1, secrets(5, 0))],
            vec![(0, secrets(90, 1)), (2, secrets(10, 0))],
            vec![(1, secrets(15, 0))],
            vec![(0, secrets(80, 2)), (3, secrets(1, 0))],
        ];
        for (k, changes) in history.iter().enumerate() {
            seal(&mut sealed, &mut live, k as u64 + 1, changes);
        }
        // Changes of the open batch do not leak into the sealed states.
        live.set(TreeIndex::new(0), Fr::from(12345u64))
            .expect("set");
        let o = sealed.opening(4, 0).expect("opening");
        assert_eq!(o.secrets, secrets(80, 2));
        assert!(o
            .path
            .verify(o.root, TreeIndex::new(0), leaf(0, &o.secrets)));
        assert_ne!(o.root, live.root());
        assert_eq!((sealed.oldest(), sealed.head()), (1, 4));
        // Batch 1: slot 0 had 100 / nonce 0; slot 2 did not exist yet.
        let at1 = sealed.opening(1, 0).expect("opening");
        assert_eq!(at1.secrets, secrets(100, 0));
        assert!(at1
            .path
            .verify(at1.root, TreeIndex::new(0), leaf(0, &at1.secrets)));
        assert_eq!(sealed.opening(1, 2), Err(OpeningError::NoSlot { batch: 1 }));
        // Batch 3: slot 0 at 90 / 1, slot 1 at 15.
        for (slot, expected) in [
            (0, secrets(90, 1)),
            (1, secrets(15, 0)),
            (2, secrets(10, 0)),
        ] {
            let o = sealed.opening(3, slot).expect("opening");
            assert_eq!(o.secrets, expected, "slot {slot}");
            assert!(o
                .path
                .verify(o.root, TreeIndex::new(slot), leaf(slot, &expected)));
        }
        // The head.
        let o = sealed.opening(4, 3).expect("opening");
        assert!(o
            .path
            .verify(o.root, TreeIndex::new(3), leaf(3, &secrets(1, 0))));
        // Batch 0 fell out of the history of 3; batch 5 is not sealed.
        assert!(matches!(
            sealed.opening(0, 0),
            Err(OpeningError::NotRetained {
                oldest: 1,
                newest: 4,
                ..
            })
        ));
        assert!(matches!(
            sealed.opening(5, 0),
            Err(OpeningError::NotRetained { .. })
        ));
    }
}
