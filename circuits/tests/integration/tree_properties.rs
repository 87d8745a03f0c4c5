//! Property tests of the state tree: batched updates, one-by-one updates and a naive full
//! recomputation agree, and every path verifies while wrong leaves and indices do not.

use proptest::collection::vec;
use proptest::prelude::*;
use stablelane_circuits::poseidon::hash2;
use stablelane_circuits::tree::empty_subtree_roots;
use stablelane_circuits::{Fr, SlotIndex, StateTree, TREE_DEPTH};

/// Root recomputed from scratch from the dense leaves (independent of `StateTree`).
fn naive_root(leaves: &[Fr]) -> Fr {
    let empty = empty_subtree_roots();
    let mut level = leaves.to_vec();
    for empty_below in empty.iter().take(TREE_DEPTH) {
        level = level
            .chunks(2)
            .map(|pair| hash2(pair[0], pair.get(1).copied().unwrap_or(*empty_below)))
            .collect();
    }
    level.first().copied().unwrap_or(empty[TREE_DEPTH])
}

/// Dense leaves after applying `batches` in order (last change per slot wins).
fn dense_leaves(batches: &[Vec<(SlotIndex, Fr)>]) -> Vec<Fr> {
    let mut leaves = Vec::new();
    for &(index, value) in batches.iter().flatten() {
        let i = index.get() as usize;
        if leaves.len() <= i {
            leaves.resize(i + 1, Fr::from(0u64));
        }
        leaves[i] = value;
    }
    leaves
}

fn changes(
    index_max: u32,
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<(SlotIndex, Fr)>> {
    // Small values (including 0, the empty leaf) make equal leaves and overwrites likely.
    vec((0..index_max, 0u64..8), len).prop_map(|changes| {
        changes
            .into_iter()
            .map(|(i, v)| (SlotIndex::new(i), Fr::from(v)))
            .collect()
    })
}

proptest! {
    // Our crate is unoptimised in test builds (a hash costs ~0.1 ms): keep the trees small.
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn batches_equal_sets_and_naive_recomputation(
        batches in vec(changes(48, 0..20), 1..4),
    ) {
        let mut batched = StateTree::new();
        let mut one_by_one = StateTree::new();
        for batch in &batches {
            batched.update_batch(batch).expect("batch");
            for &(index, value) in batch {
                one_by_one.set(index, value).expect("set");
            }
        }
        let leaves = dense_leaves(&batches);
        prop_assert_eq!(&batched, &one_by_one);
        prop_assert_eq!(batched.root(), naive_root(&leaves));
        prop_assert_eq!(batched.leaves(), &leaves[..]);
        prop_assert_eq!(&batched, &StateTree::from_leaves(leaves).expect("from_leaves"));
    }
}

proptest! {
    // Batches large enough to take the parallel path: at least 128 changes over at least two
    // subtrees of 1,024 leaves (the split itself is tested more widely in `tree::tests`).
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

    #[test]
    fn parallel_batches_equal_naive_recomputation(
        first in changes(2_048, 128..160),
        second in changes(2_048, 128..160),
    ) {
        let mut tree = StateTree::new();
        tree.update_batch(&first).expect("first batch");
        tree.update_batch(&second).expect("second batch");
        let leaves = dense_leaves(&[first, second]);
        prop_assert_eq!(tree.root(), naive_root(&leaves));
        prop_assert_eq!(&tree, &StateTree::from_leaves(leaves).expect("from_leaves"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn every_path_verifies_and_wrong_leaves_or_indices_fail(
        slots in 1u32..16,
        seed in any::<u64>(),
        other in 0u32..64,
    ) {
        // Distinct non-zero leaves: then no other slot or value can share a path.
        let leaves: Vec<Fr> = (0..u64::from(slots)).map(|i| Fr::from(seed) + Fr::from(i + 1)).collect();
        let leaves: Vec<Fr> = leaves.into_iter().filter(|x| *x != Fr::from(0u64)).collect();
        let tree = StateTree::from_leaves(leaves.clone()).expect("tree");
        let root = tree.root();
        for (i, &leaf) in leaves.iter().enumerate() {
            let index = SlotIndex::new(i as u32);
            let path = tree.path(index);
            prop_assert!(path.verify(root, index, leaf));
            prop_assert!(!path.verify(root, index, leaf + Fr::from(1u64)));
            if other as usize != i {
                prop_assert!(!path.verify(root, SlotIndex::new(other), leaf));
            }
            prop_assert!(!path.verify(root, SlotIndex::new(i as u32 | 1 << 31), leaf));
        }
        // A slot never set is proven to hold 0.
        let unset = SlotIndex::new(slots + other);
        prop_assert!(tree.path(unset).verify(root, unset, Fr::from(0u64)));
    }
}
