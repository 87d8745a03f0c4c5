//! The keccak Merkle tree the contracts check: `Settlement`'s withdrawal trees and the
//! receipt groups (`Receipts.sol`). At every level a node without a right sibling is paired
//! with `bytes32(0)`; a tree over `n ≥ 1` leaves has depth ⌈log₂ n⌉ (one leaf is its own
//! root, with an empty path); an inner node is `keccak256(left ‖ right)`. Bit `i` of a
//! leaf's index says whether its ancestor at level `i` is a right child.

use alloy::primitives::{keccak256, B256};

/// `keccak256(left ‖ right)`.
pub fn hash_pair(left: B256, right: B256) -> B256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(left.as_slice());
    buf[32..].copy_from_slice(right.as_slice());
    keccak256(buf)
}

/// The depth of a tree over `count` leaves: ⌈log₂ count⌉ (0 for one leaf).
pub fn depth(count: usize) -> usize {
    let mut width = 1usize;
    let mut depth = 0;
    while width < count {
        width <<= 1;
        depth += 1;
    }
    depth
}

/// Every level of a tree, leaves first; the last level holds the root alone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MerkleTree {
    levels: Vec<Vec<B256>>,
}

impl MerkleTree {
    /// The tree over `leaves` (empty for no leaves).
    pub fn new(leaves: Vec<B256>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().map_or(0, Vec::len) > 1 {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let above = below
                .chunks(2)
                .map(|pair| hash_pair(pair[0], pair.get(1).copied().unwrap_or(B256::ZERO)))
                .collect();
            levels.push(above);
        }
        Self { levels }
    }

    /// The leaves.
    pub fn leaves(&self) -> &[B256] {
        self.levels.first().map(Vec::as_slice).unwrap_or_default()
    }

    /// The root; zero for an empty tree.
    pub fn root(&self) -> B256 {
        self.levels
            .last()
            .and_then(|top| top.first().copied())
            .unwrap_or(B256::ZERO)
    }

    /// The sibling path of leaf `index`, from the leaf up; `None` when out of range.
    pub fn path(&self, index: usize) -> Option<Vec<B256>> {
        if index >= self.leaves().len() {
            return None;
        }
        let mut position = index;
        let mut path = Vec::with_capacity(self.levels.len().saturating_sub(1));
        for level in self.levels.iter().take(self.levels.len().saturating_sub(1)) {
            path.push(level.get(position ^ 1).copied().unwrap_or(B256::ZERO));
            position >>= 1;
        }
        Some(path)
    }
}

/// The root that `leaf` at `index` and its sibling `path` lead to.
pub fn root_from_path(leaf: B256, index: usize, path: &[B256]) -> B256 {
    let mut node = leaf;
    let mut position = index;
    for sibling in path {
        node = if position & 1 == 0 {
            hash_pair(node, *sibling)
        } else {
            hash_pair(*sibling, node)
        };
        position >>= 1;
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u8) -> Vec<B256> {
        (0..n).map(|i| keccak256([i])).collect()
    }

    #[test]
    fn every_leaf_proves_against_the_root_with_a_path_of_the_tree_depth() {
        for n in 1..=17u8 {
            let tree = MerkleTree::new(leaves(n));
            for (i, leaf) in tree.leaves().iter().enumerate() {
                let path = tree.path(i).unwrap();
                assert_eq!(path.len(), depth(usize::from(n)), "n {n}");
                assert_eq!(
                    root_from_path(*leaf, i, &path),
                    tree.root(),
                    "n {n} leaf {i}"
                );
                // Another index with the same path leads elsewhere.
                if n > 1 {
                    assert_ne!(root_from_path(*leaf, i ^ 1, &path), tree.root());
                }
            }
            assert!(tree.path(usize::from(n)).is_none());
        }
    }

    #[test]
    fn small_trees_are_the_documented_hashes() {
        let l = leaves(3);
        assert_eq!(MerkleTree::new(vec![l[0]]).root(), l[0]);
        assert_eq!(
            MerkleTree::new(l[..2].to_vec()).root(),
            hash_pair(l[0], l[1])
        );
        assert_eq!(
            MerkleTree::new(l.clone()).root(),
            hash_pair(hash_pair(l[0], l[1]), hash_pair(l[2], B256::ZERO))
        );
        assert_eq!(MerkleTree::new(Vec::new()).root(), B256::ZERO);
    }
}
