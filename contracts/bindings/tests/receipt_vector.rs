//! The receipt test vector written by the Solidity side
//! (`contracts/test/fixtures/receipt_vector.json`, from `contracts/test/ReceiptVector.t.sol`)
//! recomputed with alloy's EIP-712 implementation: type hashes, domain separator, leaves,
//! tree, group digest and signature. A second implementation of the format the Rust node
//! must produce for receipt groups; the node's own receipt code should check the same file.

use alloy::{
    primitives::{keccak256, Address, B256, U256},
    signers::{local::PrivateKeySigner, SignerSync},
    sol,
    sol_types::{eip712_domain, SolStruct},
};
use serde_json::Value;

sol! {
    struct ReceiptEntry {
        uint64 sequence;
        bytes32 txHash;
        uint8 kind;
        address owner;
        address token;
        uint32 slot;
        uint128 balance;
        uint64 nonce;
        uint64 depositsConsumed;
        uint64 forcedConsumed;
    }

    struct ReceiptGroup {
        bytes32 root;
        uint64 firstSequence;
        uint64 lastSequence;
        uint32 count;
    }
}

const VECTOR: &str = include_str!("../../test/fixtures/receipt_vector.json");

fn b256(v: &Value) -> B256 {
    v.as_str().expect("hex string").parse().expect("bytes32")
}

fn address(v: &Value) -> Address {
    v.as_str().expect("hex string").parse().expect("address")
}

fn int(v: &Value) -> u64 {
    v.as_u64().expect("integer")
}

fn entry(v: &Value) -> ReceiptEntry {
    ReceiptEntry {
        sequence: int(&v["sequence"]),
        txHash: b256(&v["txHash"]),
        kind: u8::try_from(int(&v["kind"])).expect("kind"),
        owner: address(&v["owner"]),
        token: address(&v["token"]),
        slot: u32::try_from(int(&v["slot"])).expect("slot"),
        balance: v["balance"]
            .as_str()
            .expect("decimal string")
            .parse()
            .expect("uint128"),
        nonce: int(&v["nonce"]),
        depositsConsumed: int(&v["depositsConsumed"]),
        forcedConsumed: int(&v["forcedConsumed"]),
    }
}

fn hash_pair(left: B256, right: B256) -> B256 {
    keccak256([left.as_slice(), right.as_slice()].concat())
}

/// Root of the tree over `leaves`, a node without a right sibling paired with zero.
fn root(mut level: Vec<B256>) -> B256 {
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| hash_pair(pair[0], pair.get(1).copied().unwrap_or(B256::ZERO)))
            .collect();
    }
    level[0]
}

#[test]
fn receipt_vector_matches_alloy_eip712() {
    let v: Value = serde_json::from_str(VECTOR).expect("vector is JSON");

    assert_eq!(
        v["entryType"].as_str(),
        Some(ReceiptEntry::eip712_encode_type().as_ref())
    );
    assert_eq!(
        v["groupType"].as_str(),
        Some(ReceiptGroup::eip712_encode_type().as_ref())
    );
    assert_eq!(
        b256(&v["entryTypeHash"]),
        keccak256(ReceiptEntry::eip712_encode_type().as_bytes())
    );
    assert_eq!(
        b256(&v["groupTypeHash"]),
        keccak256(ReceiptGroup::eip712_encode_type().as_bytes())
    );

    let domain = eip712_domain! {
        name: "Stablelane",
        version: "1",
        chain_id: int(&v["domain"]["chainId"]),
        verifying_contract: address(&v["domain"]["verifyingContract"]),
    };
    assert_eq!(v["domain"]["name"].as_str(), Some("Stablelane"));
    assert_eq!(v["domain"]["version"].as_str(), Some("1"));
    assert_eq!(b256(&v["domainSeparator"]), domain.separator());

    let entries: Vec<ReceiptEntry> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(entry)
        .collect();
    let leaves: Vec<B256> = entries.iter().map(SolStruct::eip712_hash_struct).collect();
    let listed: Vec<B256> = v["leaves"]
        .as_array()
        .expect("leaves")
        .iter()
        .map(b256)
        .collect();
    assert_eq!(leaves, listed, "leaf = hashStruct(ReceiptEntry)");

    let group = ReceiptGroup {
        root: b256(&v["group"]["root"]),
        firstSequence: int(&v["group"]["firstSequence"]),
        lastSequence: int(&v["group"]["lastSequence"]),
        count: u32::try_from(int(&v["group"]["count"])).expect("count"),
    };
    assert_eq!(group.root, root(leaves.clone()), "tree root");
    assert_eq!(group.count as usize, entries.len());
    for (index, (leaf, path)) in leaves
        .iter()
        .zip(v["paths"].as_array().expect("paths"))
        .enumerate()
    {
        let mut node = *leaf;
        for (level, sibling) in path.as_array().expect("path").iter().map(b256).enumerate() {
            node = if (index >> level) & 1 == 0 {
                hash_pair(node, sibling)
            } else {
                hash_pair(sibling, node)
            };
        }
        assert_eq!(node, group.root, "path of entry {index}");
    }

    assert_eq!(b256(&v["groupHash"]), group.eip712_hash_struct());
    let digest = group.eip712_signing_hash(&domain);
    assert_eq!(b256(&v["digest"]), digest);

    let key = b256(&v["signerPrivateKey"]);
    let signer = PrivateKeySigner::from_bytes(&key).expect("key");
    assert_eq!(signer.address(), address(&v["signer"]));
    let signature = signer.sign_hash_sync(&digest).expect("sign");
    let expected = v["signature"].as_str().expect("signature");
    assert_eq!(
        format!("0x{}", alloy::hex::encode(signature.as_bytes())),
        expected,
        "RFC 6979 signature, r ‖ s ‖ v with v 27/28"
    );
    // secp256k1's n / 2: OpenZeppelin's ECDSA refuses a higher s.
    let half_n = U256::from_be_slice(&alloy::hex!(
        "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0"
    ));
    assert!(signature.s() <= half_n, "low s");
}
