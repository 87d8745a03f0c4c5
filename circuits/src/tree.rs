//! The depth-32 sparse Merkle tree of the ledger state.
//!
//! Leaves are indexed by [`SlotIndex`] (a `u32`, so an index at or above 2^32 cannot even be
//! expressed). An internal node is `Poseidon(left, right)`, an empty leaf is `0`, and an empty
//! subtree of height `h` hashes to [`empty_subtree_roots`]`()[h]`.
//!
//! # Memory
//!
//! Slots are handed out sequentially from 0, so [`StateTree`] stores each level densely up to
//! the highest slot ever set: level `l` holds `ceil(len / 2^l)` nodes and every node beyond is
//! the empty-subtree hash of its level. That is about two field elements, 64 bytes, per slot
//! (64 MiB for a million slots), plus at most 25% of headroom left by growth (see
//! [`StateTree::heap_bytes`]). The flip side: a single large index costs as much as filling
//! every slot below it. Setting slot 2^31 alone would need 128 GiB; the tree then returns
//! [`Error::TreeAllocation`] if the allocator refuses, but the
//! operating system may also accept the reservation and kill the process when the pages are
//! touched. Never derive a slot index from untrusted input.

use std::fmt;
use std::sync::OnceLock;

use ark_ff::AdditiveGroup;
use rayon::prelude::*;

use crate::poseidon::hash2;
use crate::{Error, Fr, Result};

/// Depth of the state tree: 2^32 leaves.
pub const TREE_DEPTH: usize = 32;

/// Number of slots of a full tree (2^32).
const SLOTS_MAX: u64 = 1 << TREE_DEPTH;

/// Height of the subtrees that [`StateTree::update_batch`] rehashes in parallel (1,024 leaves
/// each); the levels above are rehashed by one thread.
const SPLIT_HEIGHT: usize = 10;

/// Below this many changed leaves a batch is rehashed by one thread.
const PARALLEL_CHANGES_MIN: usize = 128;

/// Index of a leaf (an account slot) in the state tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotIndex(u32);

impl SlotIndex {
    /// The last slot of the tree, 2^32 - 1.
    pub const MAX: Self = Self(u32::MAX);

    /// Slot `index`.
    pub const fn new(index: u32) -> Self {
        Self(index)
    }

    /// The index as an integer.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl From<u32> for SlotIndex {
    fn from(index: u32) -> Self {
        Self(index)
    }
}

impl From<SlotIndex> for u32 {
    fn from(index: SlotIndex) -> Self {
        index.0
    }
}

impl From<SlotIndex> for u64 {
    fn from(index: SlotIndex) -> Self {
        u64::from(index.0)
    }
}

impl TryFrom<u64> for SlotIndex {
    type Error = std::num::TryFromIntError;

    fn try_from(index: u64) -> Result<Self, Self::Error> {
        u32::try_from(index).map(Self)
    }
}

impl fmt::Display for SlotIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Roots of empty subtrees by height: `[0]` is the empty leaf (0), `[h + 1]` is
/// `Poseidon([h], [h])`, and `[TREE_DEPTH]` is the root of the empty tree.
pub fn empty_subtree_roots() -> &'static [Fr; TREE_DEPTH + 1] {
    static EMPTY: OnceLock<[Fr; TREE_DEPTH + 1]> = OnceLock::new();
    EMPTY.get_or_init(|| {
        let mut roots = [Fr::ZERO; TREE_DEPTH + 1];
        for height in 1..=TREE_DEPTH {
            roots[height] = hash2(roots[height - 1], roots[height - 1]);
        }
        roots
    })
}

/// Root of the empty depth-32 tree.
pub fn empty_root() -> Fr {
    empty_subtree_roots()[TREE_DEPTH]
}

/// Number of stored nodes at `level` for a tree of `slots` slots: `ceil(slots / 2^level)`.
fn level_len(slots: u64, level: usize) -> u64 {
    slots.div_ceil(1 << level)
}

/// Changed nodes of one level: `(position, new value)`, sorted by position, no duplicates.
type LevelUpdates = Vec<(u32, Fr)>;

/// The ledger's state: a depth-32 sparse Merkle tree over [`SlotIndex`], stored densely up to
/// the highest slot set (see the [module docs](self) for the memory cost).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateTree {
    /// `levels[0]` are the leaves, `levels[TREE_DEPTH]` holds the root (once non-empty).
    levels: Vec<Vec<Fr>>,
}

impl Default for StateTree {
    fn default() -> Self {
        Self::new()
    }
}

impl StateTree {
    /// An empty tree (every leaf 0, root [`empty_root`]).
    pub fn new() -> Self {
        Self {
            levels: vec![Vec::new(); TREE_DEPTH + 1],
        }
    }

    /// A tree whose leaves `0..leaves.len()` are `leaves`, hashed level by level in parallel.
    ///
    /// # Errors
    ///
    /// [`Error::TooManySlots`] for more than 2^32 leaves.
    pub fn from_leaves(leaves: Vec<Fr>) -> Result<Self> {
        let slots = u64::try_from(leaves.len()).unwrap_or(u64::MAX);
        if slots > SLOTS_MAX {
            return Err(Error::TooManySlots { slots });
        }
        let empty = empty_subtree_roots();
        let mut levels = Vec::with_capacity(TREE_DEPTH + 1);
        let mut below = leaves;
        for empty_below in empty.iter().take(TREE_DEPTH) {
            let above: Vec<Fr> = below
                .par_chunks(2)
                .with_min_len(256)
                .map(|pair| match *pair {
                    [left, right] => hash2(left, right),
                    [left] => hash2(left, *empty_below),
                    _ => *empty_below,
                })
                .collect();
            levels.push(below);
            below = above;
        }
        levels.push(below);
        Ok(Self { levels })
    }

    /// A tree from its stored nodes as [`levels`](Self::levels) gives them (a copy kept in a
    /// checksummed snapshot). Checks that the levels' sizes fit one tree, not the hashes:
    /// compare the [`root`](Self::root) with one known from elsewhere.
    ///
    /// # Errors
    ///
    /// [`Error::TooManySlots`] or [`Error::TreeShape`] for levels no tree has.
    pub fn from_levels(levels: Vec<Vec<Fr>>) -> Result<Self> {
        let slots = levels.first().map_or(0, |l| l.len() as u64);
        if slots > SLOTS_MAX {
            return Err(Error::TooManySlots { slots });
        }
        if levels.len() != TREE_DEPTH + 1 {
            return Err(Error::TreeDepth {
                got: levels.len(),
                expected: TREE_DEPTH + 1,
            });
        }
        for (level, nodes) in levels.iter().enumerate() {
            let expected = level_len(slots, level);
            if nodes.len() as u64 != expected {
                return Err(Error::TreeShape {
                    level,
                    got: nodes.len() as u64,
                    expected,
                    slots,
                });
            }
        }
        Ok(Self { levels })
    }

    /// The stored nodes, level by level: `[0]` the leaves, `[TREE_DEPTH]` the root (empty
    /// while the tree is); level `l` holds `ceil(len / 2^l)` nodes.
    pub fn levels(&self) -> &[Vec<Fr>] {
        &self.levels
    }

    /// Number of slots stored: one past the highest slot ever set.
    pub fn len(&self) -> u64 {
        self.leaves().len() as u64
    }

    /// Whether no slot was ever set (the root is then [`empty_root`]).
    pub fn is_empty(&self) -> bool {
        self.leaves().is_empty()
    }

    /// The stored leaves, slot `i` at `[i]` (slots at and past [`len`](Self::len) are 0).
    pub fn leaves(&self) -> &[Fr] {
        self.levels.first().map(Vec::as_slice).unwrap_or_default()
    }

    /// The current root.
    pub fn root(&self) -> Fr {
        self.node(TREE_DEPTH, 0)
    }

    /// The leaf of slot `index` (0 if never set).
    pub fn leaf(&self, index: SlotIndex) -> Fr {
        self.node(0, index.0)
    }

    /// Node `position` of `level` (0 = leaves); the empty-subtree hash if not stored.
    fn node(&self, level: usize, position: u32) -> Fr {
        self.levels
            .get(level)
            .and_then(|nodes| nodes.get(position as usize))
            .copied()
            .unwrap_or_else(|| {
                empty_subtree_roots()
                    .get(level)
                    .copied()
                    .unwrap_or_default()
            })
    }

    /// Sets one leaf and rehashes its 32 ancestors.
    ///
    /// # Errors
    ///
    /// [`Error::TreeAllocation`] if the tree cannot grow to `index + 1` slots.
    pub fn set(&mut self, index: SlotIndex, leaf: Fr) -> Result<()> {
        self.update_batch(&[(index, leaf)]).map(|_| ())
    }

    /// Applies many leaf changes at once and rehashes every node above them exactly once.
    ///
    /// If a slot appears more than once, its last change wins. Every listed slot counts as
    /// changed, even if its new value equals the old one. Large batches (at least 128 changed
    /// leaves) are split into subtrees of 1,024 leaves rehashed in parallel on rayon's current
    /// pool; the few levels above are finished by one thread. The result does not depend on
    /// the split.
    ///
    /// Returns how many inner nodes it hashed (Poseidon 2-to-1 each): the work the update
    /// took, which depends on how the changed slots are spread.
    ///
    /// # Errors
    ///
    /// [`Error::TreeAllocation`] if the tree cannot grow to cover the highest index; the tree
    /// is then unchanged.
    pub fn update_batch(&mut self, changes: &[(SlotIndex, Fr)]) -> Result<usize> {
        let leaves = normalize(changes);
        let Some(&(last, _)) = leaves.last() else {
            return Ok(0);
        };
        self.grow(u64::from(last) + 1)?;
        let parallel = leaves.len() >= PARALLEL_CHANGES_MIN && rayon::current_num_threads() > 1;
        let upper = if parallel {
            rehash_parallel(&self.levels, &leaves)
        } else {
            rehash(&self.levels, 0, TREE_DEPTH, &leaves)
        };
        let hashed = upper.iter().map(Vec::len).sum();
        for (nodes, updates) in self
            .levels
            .iter_mut()
            .zip(std::iter::once(&leaves).chain(&upper))
        {
            for &(position, value) in updates {
                // Always in range: `grow` sized every level for the highest changed slot.
                if let Some(node) = nodes.get_mut(position as usize) {
                    *node = value;
                } else {
                    debug_assert!(false, "node {position} beyond a grown level");
                }
            }
        }
        Ok(hashed)
    }

    /// The Merkle path (32 siblings, leaf level first) of slot `index`, which proves its leaf
    /// against [`root`](Self::root). Slots never set get a valid path for the leaf 0.
    pub fn path(&self, index: SlotIndex) -> MerklePath {
        let mut siblings = [Fr::ZERO; TREE_DEPTH];
        for (level, sibling) in siblings.iter_mut().enumerate() {
            *sibling = self.node(level, (index.0 >> level) ^ 1);
        }
        MerklePath { siblings }
    }

    /// Node `position` of `level`: level 0 holds the leaves, level [`TREE_DEPTH`] the root;
    /// the empty-subtree hash of the level where nothing was set.
    pub fn node_at(&self, level: usize, position: u32) -> Fr {
        self.node(level, position)
    }

    /// Makes the paths of `slots` (each leaf and its 32 ancestors) equal to `source`'s by
    /// copying nodes, without hashing, and returns the nodes it overwrote as
    /// `(level, position, previous value)`, each node once.
    ///
    /// This keeps a second tree in step with a live one at chosen moments (the sequencer's
    /// tree as of its last sealed batch) for the price of a copy: if the two trees differed
    /// only on the paths of `slots`, they are equal afterwards. The returned values are what
    /// it takes to read the old tree's paths again.
    ///
    /// # Errors
    ///
    /// [`Error::TreeAllocation`] if the tree cannot grow to the highest slot; it is then
    /// unchanged.
    pub fn copy_paths_from(
        &mut self,
        source: &StateTree,
        slots: &[SlotIndex],
    ) -> Result<Vec<(u8, u32, Fr)>> {
        let Some(highest) = slots.iter().max() else {
            return Ok(Vec::new());
        };
        self.grow(u64::from(highest.0) + 1)?;
        let mut sorted: Vec<u32> = slots.iter().map(|s| s.0).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut previous = Vec::new();
        for level in 0..=TREE_DEPTH {
            let mut last = None;
            for &slot in &sorted {
                let position = slot.checked_shr(level as u32).unwrap_or(0);
                // Slots are sorted, so the positions of one level are too: skip repeats.
                if last == Some(position) {
                    continue;
                }
                last = Some(position);
                let new = source.node(level, position);
                let Some(node) = self
                    .levels
                    .get_mut(level)
                    .and_then(|nodes| nodes.get_mut(position as usize))
                else {
                    debug_assert!(false, "node {position} beyond a grown level");
                    continue;
                };
                if *node != new {
                    previous.push((level as u8, position, *node));
                    *node = new;
                }
            }
        }
        Ok(previous)
    }

    /// Heap memory held by the tree, in bytes (allocated capacity, including growth
    /// headroom).
    pub fn heap_bytes(&self) -> usize {
        self.levels
            .iter()
            .map(|nodes| nodes.capacity() * size_of::<Fr>())
            .sum::<usize>()
            + self.levels.capacity() * size_of::<Vec<Fr>>()
    }

    /// Grows every level to cover `slots` slots, filling with empty-subtree hashes (which
    /// changes no hash). Reserves all levels before touching any, so that a failed allocation
    /// leaves the tree as it was.
    fn grow(&mut self, slots: u64) -> Result<()> {
        if slots <= self.len() {
            return Ok(());
        }
        if slots > SLOTS_MAX {
            return Err(Error::TooManySlots { slots });
        }
        let allocation = Error::TreeAllocation { slots };
        let mut targets = [0usize; TREE_DEPTH + 1];
        for (level, (nodes, target)) in self.levels.iter_mut().zip(&mut targets).enumerate() {
            *target = usize::try_from(level_len(slots, level)).map_err(|_| allocation.clone())?;
            let additional = target.saturating_sub(nodes.len());
            if additional > nodes.capacity() - nodes.len() {
                // Amortise growth with 25% headroom, without doubling a large level.
                let headroom = additional.max(nodes.len() / 4);
                nodes
                    .try_reserve_exact(headroom)
                    .or_else(|_| nodes.try_reserve_exact(additional))
                    .map_err(|_| allocation.clone())?;
            }
        }
        let empty = empty_subtree_roots();
        for ((nodes, target), empty) in self.levels.iter_mut().zip(targets).zip(empty) {
            if target > nodes.len() {
                nodes.resize(target, *empty);
            }
        }
        Ok(())
    }
}

/// Sorts the changes by slot, keeping the last change of each slot.
fn normalize(changes: &[(SlotIndex, Fr)]) -> LevelUpdates {
    let mut sorted: LevelUpdates = changes
        .iter()
        .map(|&(index, leaf)| (index.0, leaf))
        .collect();
    // Stable: changes to the same slot stay in input order.
    sorted.sort_by_key(|&(index, _)| index);
    let mut out: LevelUpdates = Vec::with_capacity(sorted.len());
    for (index, leaf) in sorted {
        match out.last_mut() {
            Some(last) if last.0 == index => last.1 = leaf,
            _ => out.push((index, leaf)),
        }
    }
    out
}

/// New values of the nodes of levels `from_level + 1..=to_level` above `changed` (the new
/// nodes of `from_level`), one [`LevelUpdates`] per level. Unchanged siblings are read from
/// `levels`; each changed node is hashed exactly once.
fn rehash(
    levels: &[Vec<Fr>],
    from_level: usize,
    to_level: usize,
    changed: &[(u32, Fr)],
) -> Vec<LevelUpdates> {
    let mut out: Vec<LevelUpdates> = Vec::with_capacity(to_level.saturating_sub(from_level));
    for level in from_level..to_level {
        let below = out.last().map(Vec::as_slice).unwrap_or(changed);
        let parents = parents(levels, level, below);
        out.push(parents);
    }
    out
}

/// New values of the parents of the changed nodes `children` of `level`.
fn parents(levels: &[Vec<Fr>], level: usize, children: &[(u32, Fr)]) -> LevelUpdates {
    let stored = levels.get(level).map(Vec::as_slice).unwrap_or_default();
    let empty = empty_subtree_roots()
        .get(level)
        .copied()
        .unwrap_or_default();
    let node = |position: u32| stored.get(position as usize).copied().unwrap_or(empty);
    let mut out = Vec::with_capacity(children.len().div_ceil(2));
    let mut children = children.iter().peekable();
    while let Some(&(position, value)) = children.next() {
        let (left, right) = if position & 1 == 0 {
            // `position` is even, so `position + 1` cannot overflow.
            match children.next_if(|&&(next, _)| next == position + 1) {
                Some(&(_, right)) => (value, right),
                None => (value, node(position + 1)),
            }
        } else {
            (node(position - 1), value)
        };
        out.push((position >> 1, hash2(left, right)));
    }
    out
}

/// [`rehash`] from the leaves to the root, subtrees of height [`SPLIT_HEIGHT`] in parallel.
fn rehash_parallel(levels: &[Vec<Fr>], leaves: &[(u32, Fr)]) -> Vec<LevelUpdates> {
    let subtrees: Vec<&[(u32, Fr)]> = leaves
        .chunk_by(|a, b| a.0 >> SPLIT_HEIGHT == b.0 >> SPLIT_HEIGHT)
        .collect();
    if subtrees.len() < 2 {
        return rehash(levels, 0, TREE_DEPTH, leaves);
    }
    let lower: Vec<Vec<LevelUpdates>> = subtrees
        .par_iter()
        .map(|changed| rehash(levels, 0, SPLIT_HEIGHT, changed))
        .collect();
    // Subtrees are disjoint and in slot order, so concatenating keeps each level sorted.
    let mut out: Vec<LevelUpdates> = (0..SPLIT_HEIGHT)
        .map(|k| {
            lower
                .iter()
                .filter_map(|subtree| subtree.get(k))
                .flatten()
                .copied()
                .collect()
        })
        .collect();
    let roots = out.last().map(Vec::as_slice).unwrap_or_default();
    let top = rehash(levels, SPLIT_HEIGHT, TREE_DEPTH, roots);
    out.extend(top);
    out
}

/// The 32 siblings from a leaf to the root of the state tree, leaf level first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerklePath {
    siblings: [Fr; TREE_DEPTH],
}

impl MerklePath {
    /// A path from its siblings, leaf level first.
    pub fn new(siblings: [Fr; TREE_DEPTH]) -> Self {
        Self { siblings }
    }

    /// The siblings, leaf level first: bit `l` of the slot index says whether the node at
    /// level `l` is a right child (`1`, sibling on the left) or a left child (`0`).
    pub fn siblings(&self) -> &[Fr; TREE_DEPTH] {
        &self.siblings
    }

    /// The root of a tree in which slot `index` holds `leaf` and the path's siblings.
    pub fn compute_root(&self, index: SlotIndex, leaf: Fr) -> Fr {
        self.siblings
            .iter()
            .enumerate()
            .fold(leaf, |node, (level, &sibling)| {
                if (index.0 >> level) & 1 == 0 {
                    hash2(node, sibling)
                } else {
                    hash2(sibling, node)
                }
            })
    }

    /// Whether this path proves that slot `index` holds `leaf` under `root`.
    pub fn verify(&self, root: Fr, index: SlotIndex, leaf: Fr) -> bool {
        self.compute_root(index, leaf) == root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u64) -> Fr {
        Fr::from(1_000 + i)
    }

    /// Root by hashing every level of a tree of `slots` slots from scratch.
    fn naive_root(leaves: &[Fr]) -> Fr {
        let empty = empty_subtree_roots();
        let mut level: Vec<Fr> = leaves.to_vec();
        for empty_below in empty.iter().take(TREE_DEPTH) {
            level = level
                .chunks(2)
                .map(|pair| hash2(pair[0], pair.get(1).copied().unwrap_or(*empty_below)))
                .collect();
        }
        level.first().copied().unwrap_or(empty[TREE_DEPTH])
    }

    #[test]
    fn empty_tree() {
        let tree = StateTree::new();
        assert!(tree.is_empty());
        assert_eq!(tree.root(), empty_root());
        assert_eq!(tree.leaf(SlotIndex::MAX), Fr::ZERO);
        let empty = empty_subtree_roots();
        assert_eq!(empty[0], Fr::ZERO);
        assert_eq!(empty[1], hash2(Fr::ZERO, Fr::ZERO));
        let path = tree.path(SlotIndex::new(12345));
        assert_eq!(path.siblings()[..], empty[..TREE_DEPTH]);
        assert!(path.verify(empty_root(), SlotIndex::new(12345), Fr::ZERO));
        assert!(path.verify(empty_root(), SlotIndex::MAX, Fr::ZERO));
    }

    #[test]
    fn single_leaf_root_and_layout() {
        let mut tree = StateTree::new();
        tree.set(SlotIndex::new(0), leaf(0)).expect("set");
        let empty = empty_subtree_roots();
        let expected = (0..TREE_DEPTH).fold(leaf(0), |node, level| hash2(node, empty[level]));
        assert_eq!(tree.root(), expected);
        assert_eq!(tree.len(), 1);
        assert!(tree.levels.iter().all(|level| level.len() == 1));
    }

    #[test]
    fn levels_round_trip_and_misshapen_levels_are_refused() {
        for slots in [0u64, 1, 2, 11, 300] {
            let tree = StateTree::from_leaves((0..slots).map(leaf).collect()).expect("tree");
            let copy = StateTree::from_levels(tree.levels().to_vec()).expect("same shape");
            assert_eq!(copy, tree);
            assert_eq!(copy.root(), tree.root());
        }
        let tree = StateTree::from_leaves((0..11).map(leaf).collect()).expect("tree");
        let mut short = tree.levels().to_vec();
        short[2].pop();
        assert_eq!(
            StateTree::from_levels(short),
            Err(Error::TreeShape {
                level: 2,
                got: 2,
                expected: 3,
                slots: 11
            })
        );
        let mut extra = tree.levels().to_vec();
        extra[TREE_DEPTH].push(Fr::ZERO);
        assert!(matches!(
            StateTree::from_levels(extra),
            Err(Error::TreeShape {
                level: TREE_DEPTH,
                ..
            })
        ));
        let mut deep = tree.levels().to_vec();
        deep.push(Vec::new());
        assert_eq!(
            StateTree::from_levels(deep),
            Err(Error::TreeDepth {
                got: TREE_DEPTH + 2,
                expected: TREE_DEPTH + 1
            })
        );
    }

    #[test]
    fn growth_and_paths_on_a_small_tree() {
        let mut tree = StateTree::new();
        let mut leaves = vec![Fr::ZERO; 11];
        for i in [3u32, 0, 10, 7] {
            tree.set(SlotIndex::new(i), leaf(i.into())).expect("set");
            leaves[i as usize] = leaf(i.into());
        }
        assert_eq!(tree.len(), 11);
        assert_eq!(tree.levels[1].len(), 6);
        assert_eq!(tree.levels[3].len(), 2);
        assert_eq!(tree.levels[4].len(), 1);
        assert_eq!(tree.root(), naive_root(&leaves));
        for i in 0..16u32 {
            let index = SlotIndex::new(i);
            let path = tree.path(index);
            assert!(
                path.verify(tree.root(), index, tree.leaf(index)),
                "slot {i}"
            );
            assert!(!path.verify(tree.root(), index, Fr::from(5u64)), "slot {i}");
        }
    }

    #[test]
    fn batch_keeps_last_change_per_slot_and_ignores_empty_batches() {
        let mut batched = StateTree::new();
        batched
            .update_batch(&[
                (SlotIndex::new(2), leaf(1)),
                (SlotIndex::new(1), leaf(9)),
                (SlotIndex::new(2), leaf(2)),
            ])
            .expect("batch");
        let mut single = StateTree::new();
        single.set(SlotIndex::new(1), leaf(9)).expect("set");
        single.set(SlotIndex::new(2), leaf(2)).expect("set");
        assert_eq!(batched, single);
        assert_eq!(batched.update_batch(&[]).expect("empty batch"), 0);
        assert_eq!(batched, single);
    }

    #[test]
    fn update_batch_counts_each_inner_node_it_hashes_once() {
        let mut tree = StateTree::new();
        // One leaf: its 32 ancestors.
        assert_eq!(tree.update_batch(&[(SlotIndex::new(5), leaf(1))]), Ok(32));
        // Siblings 0 and 1 share every ancestor; slot 2 joins them at level 2.
        let pair = [(SlotIndex::new(0), leaf(2)), (SlotIndex::new(1), leaf(3))];
        assert_eq!(tree.update_batch(&pair), Ok(32));
        let three = [
            (SlotIndex::new(0), leaf(4)),
            (SlotIndex::new(1), leaf(5)),
            (SlotIndex::new(2), leaf(6)),
        ];
        assert_eq!(tree.update_batch(&three), Ok(33));
        // Enough changes for the parallel split: the count does not depend on it. Slots
        // 0..2048 change, so every node of levels 1..=11 below the root of that span is
        // rehashed (1024 + 512 + ... + 1 = 2047), then the 21 levels above.
        let wide: Vec<(SlotIndex, Fr)> = (0..2_048u32)
            .map(|i| (SlotIndex::new(i), leaf(i.into())))
            .collect();
        assert_eq!(tree.update_batch(&wide), Ok(2_047 + 21));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 12,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// The subtree split gives the same nodes as the single-threaded walk, whatever the
        /// spread of the changes (the batch-size threshold is bypassed here).
        #[test]
        fn subtree_split_equals_single_walk(
            indices in proptest::collection::btree_set(0u32..3_000, 1..12),
            stored in 0u32..600,
        ) {
            let mut tree = StateTree::from_leaves((0..u64::from(stored)).map(leaf).collect())
                .expect("tree");
            let changes: LevelUpdates = indices.iter().map(|&i| (i, Fr::from(i))).collect();
            let last = changes.last().map_or(0, |c| c.0);
            tree.grow(u64::from(last) + 1).expect("grow");
            proptest::prop_assert_eq!(
                rehash_parallel(&tree.levels, &changes),
                rehash(&tree.levels, 0, TREE_DEPTH, &changes)
            );
        }
    }

    #[test]
    fn parallel_split_equals_sequential() {
        // Enough changes to take the parallel path, spread over several subtrees.
        let changes: Vec<(SlotIndex, Fr)> = (0..300u32)
            .map(|i| (SlotIndex::new(i * 13 % 4_000), leaf(i.into())))
            .collect();
        let mut parallel = StateTree::new();
        parallel.update_batch(&changes).expect("batch");
        let mut leaves = vec![Fr::ZERO; 4_000];
        for (index, value) in &changes {
            leaves[index.get() as usize] = *value;
        }
        let last = changes.iter().map(|(i, _)| i.get()).max().unwrap_or(0) as usize;
        leaves.truncate(last + 1);
        let rebuilt = StateTree::from_leaves(leaves).expect("from_leaves");
        assert_eq!(parallel.root(), rebuilt.root());
        assert_eq!(parallel, rebuilt);
    }

    #[test]
    fn from_leaves_rejects_nothing_small_and_matches_sets() {
        let tree = StateTree::from_leaves(Vec::new()).expect("empty");
        assert_eq!(tree.root(), empty_root());
        let leaves: Vec<Fr> = (0..5).map(leaf).collect();
        let mut by_set = StateTree::new();
        for (i, value) in leaves.iter().enumerate() {
            by_set.set(SlotIndex::new(i as u32), *value).expect("set");
        }
        assert_eq!(StateTree::from_leaves(leaves).expect("5 leaves"), by_set);
    }

    #[test]
    fn copied_paths_make_a_stale_copy_equal_and_keep_what_it_takes_to_read_it_again() {
        let mut live = StateTree::from_leaves((0..40).map(leaf).collect()).expect("tree");
        let mut copy = live.clone();
        let old_root = copy.root();
        let old_paths: Vec<MerklePath> = (0..45).map(|i| copy.path(SlotIndex::new(i))).collect();
        // Change two slots, one of them twice, and create one beyond the end.
        let changed = [3u32, 17, 3, 44].map(SlotIndex::new);
        for (k, slot) in changed.iter().enumerate() {
            live.set(*slot, Fr::from(7_000 + k as u64)).expect("set");
        }
        let previous = copy.copy_paths_from(&live, &changed).expect("copy");
        assert_eq!(copy, live, "equal after the copy, without hashing");
        // Each node at most once, and every changed node listed: the old paths read back.
        let mut seen = std::collections::HashSet::new();
        assert!(previous.iter().all(|&(l, p, _)| seen.insert((l, p))));
        let old_node = |level: usize, position: u32| {
            previous
                .iter()
                .find(|&&(l, p, _)| l as usize == level && p == position)
                .map_or_else(|| copy.node_at(level, position), |&(_, _, v)| v)
        };
        assert_eq!(old_node(TREE_DEPTH, 0), old_root);
        for (i, old_path) in old_paths.iter().enumerate() {
            let index = SlotIndex::new(i as u32);
            let siblings: [Fr; TREE_DEPTH] =
                std::array::from_fn(|level| old_node(level, (index.get() >> level) ^ 1));
            assert_eq!(&MerklePath::new(siblings), old_path, "slot {i}");
        }
        assert!(copy
            .copy_paths_from(&live, &[])
            .expect("nothing")
            .is_empty());
    }

    #[test]
    fn slot_index_conversions() {
        assert_eq!(SlotIndex::try_from(u64::from(u32::MAX)), Ok(SlotIndex::MAX));
        assert!(SlotIndex::try_from(1u64 << 32).is_err());
        assert_eq!(u64::from(SlotIndex::new(7)), 7);
        assert_eq!(SlotIndex::from(9).to_string(), "9");
    }

    #[test]
    fn heap_bytes_is_about_two_elements_per_slot() {
        let tree = StateTree::from_leaves(vec![Fr::ZERO; 1_024]).expect("tree");
        let per_slot = tree.heap_bytes() as f64 / 1_024.0;
        assert!(
            (64.0..70.0).contains(&per_slot),
            "{per_slot} bytes per slot"
        );
    }
}
