//! Checks every value of `vectors/circomlib.json` (computed by circomlibjs, see
//! `vectors/generate.js`) against this crate.

use std::str::FromStr;

use ark_ff::PrimeField;
use serde::Deserialize;
use stablelane_circuits::tree::empty_subtree_roots;
use stablelane_circuits::{
    empty_root, leaf_hash, poseidon, Fr, MerklePath, SlotIndex, StateTree, TREE_DEPTH,
};

const VECTORS: &str = include_str!("../../vectors/circomlib.json");

#[derive(Deserialize)]
struct Vectors {
    field_modulus: String,
    poseidon: Vec<PoseidonVector>,
    leaves: Vec<LeafVector>,
    tree: TreeVectors,
}

#[derive(Deserialize)]
struct PoseidonVector {
    inputs: Vec<String>,
    output: String,
}

#[derive(Deserialize)]
struct LeafVector {
    owner: String,
    token: String,
    balance: String,
    nonce: String,
    salt: String,
    hash: String,
}

#[derive(Deserialize)]
struct TreeVectors {
    depth: usize,
    empty_subtree_roots: Vec<String>,
    empty_root: String,
    leaves: Vec<TreeLeaf>,
    root: String,
    paths: Vec<PathVector>,
}

#[derive(Deserialize)]
struct TreeLeaf {
    index: u32,
    owner: String,
    token: String,
    balance: String,
    nonce: String,
    salt: String,
    leaf: String,
}

#[derive(Deserialize)]
struct PathVector {
    index: u32,
    leaf: String,
    siblings: Vec<String>,
}

fn vectors() -> Vectors {
    serde_json::from_str(VECTORS).expect("vectors/circomlib.json parses")
}

/// Strict decimal parse: the string must be the canonical form of a field element
/// (`Fr::from_str` alone would silently reduce values at or above the modulus).
fn fr(decimal: &str) -> Fr {
    let value = Fr::from_str(decimal).unwrap_or_else(|()| panic!("{decimal} is not a number"));
    assert_eq!(
        value.to_string(),
        decimal,
        "{decimal} is not a canonical field element"
    );
    value
}

fn address(hex: &str) -> [u8; 20] {
    let digits = hex.strip_prefix("0x").expect("0x prefix");
    assert_eq!(digits.len(), 40, "{hex} is not a 20-byte address");
    let mut out = [0u8; 20];
    for (byte, pair) in out.iter_mut().zip(digits.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).expect("ascii");
        *byte = u8::from_str_radix(pair, 16).expect("hex digit");
    }
    out
}

fn leaf_from_fields(owner: &str, token: &str, balance: &str, nonce: &str, salt: &str) -> Fr {
    leaf_hash(
        address(owner),
        address(token),
        balance.parse().expect("balance fits u128"),
        nonce.parse().expect("nonce fits u64"),
        fr(salt),
    )
}

#[test]
fn field_modulus_is_bn254_r() {
    assert_eq!(Fr::MODULUS.to_string(), vectors().field_modulus);
}

#[test]
fn poseidon_matches_circomlibjs_for_1_to_12_inputs() {
    let v = vectors();
    let mut counts = [0usize; poseidon::INPUTS_MAX + 1];
    for vector in &v.poseidon {
        let inputs: Vec<Fr> = vector.inputs.iter().map(|x| fr(x)).collect();
        let output = poseidon::hash_slice(&inputs).expect("supported input count");
        assert_eq!(output, fr(&vector.output), "Poseidon({:?})", vector.inputs);
        counts[inputs.len()] += 1;
        if let [left, right] = inputs[..] {
            assert_eq!(poseidon::hash2(left, right), output);
        }
        if let Ok(five) = <[Fr; 5]>::try_from(inputs.as_slice()) {
            assert_eq!(poseidon::hash(five), output);
        }
    }
    assert!(
        counts[1..].iter().all(|&c| c >= 2),
        "every input count is covered: {counts:?}"
    );
}

#[test]
fn leaf_hash_matches_circomlibjs() {
    let v = vectors();
    assert!(!v.leaves.is_empty());
    for leaf in &v.leaves {
        let ours = leaf_from_fields(
            &leaf.owner,
            &leaf.token,
            &leaf.balance,
            &leaf.nonce,
            &leaf.salt,
        );
        assert_eq!(
            ours,
            fr(&leaf.hash),
            "leaf of {} / {}",
            leaf.owner,
            leaf.token
        );
    }
}

#[test]
fn empty_tree_matches_circomlibjs() {
    let v = vectors();
    assert_eq!(v.tree.depth, TREE_DEPTH);
    let expected: Vec<Fr> = v.tree.empty_subtree_roots.iter().map(|x| fr(x)).collect();
    assert_eq!(expected[..], empty_subtree_roots()[..]);
    assert_eq!(empty_root(), fr(&v.tree.empty_root));
    assert_eq!(StateTree::new().root(), fr(&v.tree.empty_root));
}

#[test]
fn populated_tree_and_paths_match_circomlibjs() {
    let v = vectors();
    let mut changes = Vec::new();
    for leaf in &v.tree.leaves {
        let value = fr(&leaf.leaf);
        let ours = leaf_from_fields(
            &leaf.owner,
            &leaf.token,
            &leaf.balance,
            &leaf.nonce,
            &leaf.salt,
        );
        assert_eq!(ours, value, "leaf of slot {}", leaf.index);
        changes.push((SlotIndex::new(leaf.index), value));
    }
    let root = fr(&v.tree.root);

    let mut batched = StateTree::new();
    batched.update_batch(&changes).expect("batch");
    assert_eq!(batched.root(), root);

    let mut one_by_one = StateTree::new();
    for &(index, value) in changes.iter().rev() {
        one_by_one.set(index, value).expect("set");
    }
    assert_eq!(one_by_one.root(), root);

    assert!(!v.tree.paths.is_empty());
    for path in &v.tree.paths {
        let index = SlotIndex::new(path.index);
        let leaf = fr(&path.leaf);
        let siblings: Vec<Fr> = path.siblings.iter().map(|x| fr(x)).collect();
        let siblings: [Fr; TREE_DEPTH] = siblings.try_into().expect("32 siblings");
        let ours = batched.path(index);
        assert_eq!(
            ours.siblings(),
            &siblings,
            "siblings of slot {}",
            path.index
        );
        assert_eq!(batched.leaf(index), leaf);
        assert!(MerklePath::new(siblings).verify(root, index, leaf));
    }
}
