// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Receipts} from "../src/Receipts.sol";
import {Test} from "./utils/Test.sol";
import {ReceiptsHarness} from "./utils/ReceiptsHarness.sol";
import {ReceiptTree} from "./utils/ReceiptTree.sol";

/// @notice The file, environment and formatting cheatcodes this test needs (not in
///         `utils/Vm.sol`). Only the signatures matter: forge dispatches on the selector.
interface VectorVm {
    function readFile(string calldata path) external view returns (string memory data);
    function writeFile(string calldata path, string calldata data) external;
    function envOr(string calldata name, string calldata defaultValue) external view returns (string memory value);
    function toString(address value) external pure returns (string memory);
    function toString(bytes calldata value) external pure returns (string memory);
    function toString(bytes32 value) external pure returns (string memory);
    function toString(uint256 value) external pure returns (string memory);
}

/// @title The receipt test vector shared with the Rust node
/// @notice `test/fixtures/receipt_vector.json` is one receipt group, built and signed here, that
///         the Rust side (which produces receipts) must reproduce byte for byte. This test
///         rebuilds the vector, checks it with the `Receipts` library (every entry verifies),
///         and fails unless the committed file is exactly what it builds;
///         `STABLELANE_BLESS=1 forge test --match-contract ReceiptVector` rewrites the file.
///
///         Format (one JSON object; hex is 0x-prefixed lowercase except addresses, which are
///         EIP-55 checksummed; integers are JSON numbers except `balance`, a decimal string):
///         - `_generated`: provenance, not data.
///         - `domain`: `{name, version, chainId, verifyingContract}` of the EIP-712 domain
///           (`EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)`),
///           and `domainSeparator`: its hashStruct.
///         - `entryType`, `entryTypeHash`, `groupType`, `groupTypeHash`: the EIP-712 type
///           strings and their keccak-256.
///         - `signerPrivateKey`, `signer`: the receipt signer's (test) secp256k1 key and address.
///         - `entries`: the group's entries in leaf order, each
///           `{sequence, txHash, kind, owner, token, slot, balance, nonce, depositsConsumed,
///           forcedConsumed}` (kind 0 sender, 1 recipient, 2 deposit credited, 3 forced payout).
///         - `leaves`: hashStruct(ReceiptEntry) of each entry.
///         - `paths`: each entry's sibling path, leaf level first (bit i of the entry's index
///           says whether its level-i node is a right child; a missing sibling is bytes32(0)).
///         - `group`: `{root, firstSequence, lastSequence, count}`, `groupHash`: its
///           hashStruct, `digest`: keccak256("\x19\x01" ‖ domainSeparator ‖ groupHash).
///         - `signature`: 65 bytes r ‖ s ‖ v (v = 27 or 28, low s) by `signer` over `digest`
///           (RFC 6979 deterministic, so reproducible).
contract ReceiptVectorTest is Test {
    VectorVm internal constant vectorVm = VectorVm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);

    string internal constant PATH = "test/fixtures/receipt_vector.json";
    uint256 internal constant CHAIN_ID = 31337;
    /// @dev The first contract anvil's first account deploys.
    address internal constant SETTLEMENT = 0x5FbDB2315678afecb367f032d93F642f64180aa3;
    /// @dev keccak256("stablelane receipt vector signer"); a test key, never a real one.
    uint256 internal constant SIGNER_KEY = uint256(keccak256("stablelane receipt vector signer"));
    address internal constant TOKEN = 0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512;
    address internal constant ALICE = 0x70997970C51812dc3A010C7d01b50e0d17dc79C8;
    address internal constant BOB = 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC;
    address internal constant CAROL = 0x90F79bf6EB2c4f870365E785982E1f101E93b906;

    /// @dev The vector's group: alice pays bob 0.25 (transaction 41), then carol's deposit of
    ///      10 is credited (event 42).
    function _entries() internal pure returns (Receipts.ReceiptEntry[] memory es) {
        es = new Receipts.ReceiptEntry[](3);
        es[0] = Receipts.ReceiptEntry({
            sequence: 41,
            txHash: keccak256("stablelane receipt vector tx 41"),
            kind: Receipts.KIND_SENDER,
            owner: ALICE,
            token: TOKEN,
            slot: 3,
            balance: 750_000,
            nonce: 5,
            depositsConsumed: 2,
            forcedConsumed: 0
        });
        es[1] = Receipts.ReceiptEntry({
            sequence: 41,
            txHash: keccak256("stablelane receipt vector tx 41"),
            kind: Receipts.KIND_RECIPIENT,
            owner: BOB,
            token: TOKEN,
            slot: 7,
            balance: 1_250_000,
            nonce: 0,
            depositsConsumed: 2,
            forcedConsumed: 0
        });
        es[2] = Receipts.ReceiptEntry({
            sequence: 42,
            txHash: keccak256("stablelane receipt vector deposit 2"),
            kind: Receipts.KIND_DEPOSIT,
            owner: CAROL,
            token: TOKEN,
            slot: 9,
            balance: 10_000_000,
            nonce: 0,
            depositsConsumed: 3,
            forcedConsumed: 0
        });
    }

    /// @dev Everything the vector holds.
    struct Vector {
        Receipts.ReceiptEntry[] entries;
        bytes32[] leaves;
        Receipts.ReceiptGroup group;
        bytes32 separator;
        bytes32 groupHash;
        bytes32 digest;
        address signer;
        bytes signature;
    }

    function test_receiptVector() public {
        ReceiptsHarness harness = new ReceiptsHarness();
        Vector memory vec = _build(harness);
        for (uint256 i = 0; i < vec.entries.length; ++i) {
            harness.verify(
                vec.separator, vec.signer, vec.entries[i], vec.group, i, ReceiptTree.proof(vec.leaves, i), vec.signature
            );
        }
        string memory json = _json(vec);
        if (keccak256(bytes(vectorVm.envOr("STABLELANE_BLESS", string("")))) == keccak256("1")) {
            vectorVm.writeFile(PATH, json);
        }
        assertEq(
            keccak256(bytes(vectorVm.readFile(PATH))),
            keccak256(bytes(json)),
            "test/fixtures/receipt_vector.json is stale: STABLELANE_BLESS=1 forge test --match-contract ReceiptVector"
        );
    }

    function _build(ReceiptsHarness harness) internal pure returns (Vector memory vec) {
        vec.entries = _entries();
        vec.leaves = ReceiptTree.leaves(vec.entries);
        vec.group = Receipts.ReceiptGroup({
            root: ReceiptTree.root(vec.leaves), firstSequence: 41, lastSequence: 42, count: uint32(vec.entries.length)
        });
        vec.separator = harness.domainSeparator(CHAIN_ID, SETTLEMENT);
        vec.groupHash = harness.hashGroup(vec.group);
        vec.digest = harness.groupDigest(vec.separator, vec.group);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(SIGNER_KEY, vec.digest);
        vec.signature = abi.encodePacked(r, s, v);
        vec.signer = vm.addr(SIGNER_KEY);
    }

    function _json(Vector memory vec) internal pure returns (string memory) {
        return string.concat(
            "{\n",
            '  "_generated": "by contracts/test/ReceiptVector.t.sol (STABLELANE_BLESS=1 forge test --match-contract ReceiptVector); do not edit",\n',
            _domain(vec.separator),
            _types(),
            '  "signerPrivateKey": "',
            vectorVm.toString(bytes32(SIGNER_KEY)),
            '",\n  "signer": "',
            vectorVm.toString(vec.signer),
            '",\n',
            _entriesJson(vec.entries),
            _leavesAndPaths(vec.leaves),
            _groupJson(vec.group, vec.groupHash, vec.digest),
            '  "signature": "',
            vectorVm.toString(vec.signature),
            '"\n}\n'
        );
    }

    // ------------------------------------------------------------ JSON pieces

    function _domain(bytes32 separator) internal pure returns (string memory) {
        return string.concat(
            '  "domain": {\n    "name": "Stablelane",\n    "version": "1",\n    "chainId": ',
            vectorVm.toString(CHAIN_ID),
            ',\n    "verifyingContract": "',
            vectorVm.toString(SETTLEMENT),
            '"\n  },\n  "domainSeparator": "',
            vectorVm.toString(separator),
            '",\n'
        );
    }

    function _types() internal pure returns (string memory) {
        return string.concat(
            '  "entryType": "',
            ReceiptTree.ENTRY_TYPE,
            '",\n  "entryTypeHash": "',
            vectorVm.toString(Receipts.ENTRY_TYPEHASH),
            '",\n  "groupType": "',
            ReceiptTree.GROUP_TYPE,
            '",\n  "groupTypeHash": "',
            vectorVm.toString(Receipts.GROUP_TYPEHASH),
            '",\n'
        );
    }

    function _entriesJson(Receipts.ReceiptEntry[] memory es) internal pure returns (string memory out) {
        out = '  "entries": [\n';
        for (uint256 i = 0; i < es.length; ++i) {
            out = string.concat(out, _entryJson(es[i]), i + 1 < es.length ? ",\n" : "\n");
        }
        out = string.concat(out, "  ],\n");
    }

    function _entryJson(Receipts.ReceiptEntry memory e) internal pure returns (string memory) {
        string memory head = string.concat(
            '    {\n      "sequence": ',
            vectorVm.toString(uint256(e.sequence)),
            ',\n      "txHash": "',
            vectorVm.toString(e.txHash),
            '",\n      "kind": ',
            vectorVm.toString(uint256(e.kind)),
            ',\n      "owner": "',
            vectorVm.toString(e.owner),
            '",\n      "token": "',
            vectorVm.toString(e.token),
            '",\n'
        );
        return string.concat(
            head,
            '      "slot": ',
            vectorVm.toString(uint256(e.slot)),
            ',\n      "balance": "',
            vectorVm.toString(uint256(e.balance)),
            '",\n      "nonce": ',
            vectorVm.toString(uint256(e.nonce)),
            ',\n      "depositsConsumed": ',
            vectorVm.toString(uint256(e.depositsConsumed)),
            ',\n      "forcedConsumed": ',
            vectorVm.toString(uint256(e.forcedConsumed)),
            "\n    }"
        );
    }

    function _hashList(bytes32[] memory hs, string memory indent) internal pure returns (string memory out) {
        out = "[";
        for (uint256 i = 0; i < hs.length; ++i) {
            out = string.concat(out, "\n", indent, '  "', vectorVm.toString(hs[i]), i + 1 < hs.length ? '",' : '"');
        }
        out = string.concat(out, hs.length == 0 ? "]" : string.concat("\n", indent, "]"));
    }

    function _leavesAndPaths(bytes32[] memory leaves) internal pure returns (string memory out) {
        out = string.concat('  "leaves": ', _hashList(leaves, "  "), ',\n  "paths": [\n');
        for (uint256 i = 0; i < leaves.length; ++i) {
            out = string.concat(
                out, "    ", _hashList(ReceiptTree.proof(leaves, i), "    "), i + 1 < leaves.length ? ",\n" : "\n"
            );
        }
        out = string.concat(out, "  ],\n");
    }

    function _groupJson(Receipts.ReceiptGroup memory g, bytes32 groupHash, bytes32 digest)
        internal
        pure
        returns (string memory)
    {
        return string.concat(
            '  "group": {\n    "root": "',
            vectorVm.toString(g.root),
            '",\n    "firstSequence": ',
            vectorVm.toString(uint256(g.firstSequence)),
            ',\n    "lastSequence": ',
            vectorVm.toString(uint256(g.lastSequence)),
            ',\n    "count": ',
            vectorVm.toString(uint256(g.count)),
            '\n  },\n  "groupHash": "',
            vectorVm.toString(groupHash),
            '",\n  "digest": "',
            vectorVm.toString(digest),
            '",\n'
        );
    }
}
