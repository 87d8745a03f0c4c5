// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Receipts} from "../src/Receipts.sol";
import {Test} from "./utils/Test.sol";
import {ReceiptsHarness} from "./utils/ReceiptsHarness.sol";
import {ReceiptTree} from "./utils/ReceiptTree.sol";
import {BatchData, Withdrawal} from "./utils/BatchData.sol";

/// @notice The receipt verification library against groups a receipt signer builds in
///         Solidity (`ReceiptTree`, an independent implementation of the format): every entry
///         of groups of 1, 2, 3, 5, 8 and a fuzzed number of entries verifies, and each way a
///         receipt can be wrong reverts with its own error.
contract ReceiptsTest is Test {
    /// @dev secp256k1 group order; a signature with s > N/2 is malleable and refused.
    uint256 internal constant N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    address internal constant SETTLEMENT = 0x5FbDB2315678afecb367f032d93F642f64180aa3;
    uint64 internal constant FIRST_SEQUENCE = 1_000;

    ReceiptsHarness internal harness;
    address internal signer;
    uint256 internal signerKey;
    address internal other;
    uint256 internal otherKey;
    bytes32 internal separator;

    function setUp() public {
        harness = new ReceiptsHarness();
        (signer, signerKey) = makeAccount("receipt signer");
        (other, otherKey) = makeAccount("someone else");
        separator = ReceiptTree.domainSeparator(block.chainid, SETTLEMENT);
    }

    // ---------------------------------------------------------------- helpers

    /// @dev `count` entries, two per sequence number (a transfer's sender and recipient),
    ///      starting at `FIRST_SEQUENCE`; fields vary with `seed`.
    function _entries(uint256 count, uint256 seed) internal pure returns (Receipts.ReceiptEntry[] memory es) {
        es = new Receipts.ReceiptEntry[](count);
        for (uint256 i = 0; i < count; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            es[i] = Receipts.ReceiptEntry({
                sequence: FIRST_SEQUENCE + uint64(i / 2),
                txHash: keccak256(abi.encode("tx", seed, i / 2)),
                kind: uint8(i % 2),
                owner: address(uint160(r)),
                token: address(uint160(r >> 96)),
                slot: uint32(r >> 160),
                balance: uint128(r >> 64),
                nonce: uint64(r >> 192),
                depositsConsumed: uint64(r >> 32),
                forcedConsumed: uint64(r >> 128)
            });
        }
    }

    function _group(Receipts.ReceiptEntry[] memory es) internal pure returns (Receipts.ReceiptGroup memory) {
        return Receipts.ReceiptGroup({
            root: ReceiptTree.root(ReceiptTree.leaves(es)),
            firstSequence: es[0].sequence,
            lastSequence: es[es.length - 1].sequence,
            count: uint32(es.length)
        });
    }

    function _sign(uint256 key, bytes32 sep, Receipts.ReceiptGroup memory g) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, ReceiptTree.digest(sep, g));
        return abi.encodePacked(r, s, v);
    }

    /// @dev Verifies every entry of a fresh group of `count` entries.
    function _verifyAll(uint256 count, uint256 seed) internal view {
        Receipts.ReceiptEntry[] memory es = _entries(count, seed);
        Receipts.ReceiptGroup memory g = _group(es);
        bytes memory sig = _sign(signerKey, separator, g);
        bytes32[] memory ls = ReceiptTree.leaves(es);
        for (uint256 i = 0; i < count; ++i) {
            bytes32[] memory path = ReceiptTree.proof(ls, i);
            assertEq(path.length, harness.depth(count), "path length == depth");
            harness.verify(separator, signer, es[i], g, i, path, sig);
        }
    }

    /// @dev A valid receipt: entry 1 of a group of 5.
    function _valid()
        internal
        view
        returns (
            Receipts.ReceiptEntry memory entry,
            Receipts.ReceiptGroup memory g,
            bytes32[] memory path,
            bytes memory sig
        )
    {
        Receipts.ReceiptEntry[] memory es = _entries(5, 7);
        entry = es[1];
        g = _group(es);
        path = ReceiptTree.proof(ReceiptTree.leaves(es), 1);
        sig = _sign(signerKey, separator, g);
        harness.verify(separator, signer, entry, g, 1, path, sig);
    }

    // ------------------------------------------------------------ format

    function test_typeHashesAndDomain() public view {
        assertEq(Receipts.ENTRY_TYPEHASH, keccak256(bytes(ReceiptTree.ENTRY_TYPE)), "entry type hash");
        assertEq(Receipts.GROUP_TYPEHASH, keccak256(bytes(ReceiptTree.GROUP_TYPE)), "group type hash");
        assertEq(harness.domainSeparator(block.chainid, SETTLEMENT), separator, "domain separator");
        Receipts.ReceiptEntry[] memory es = _entries(3, 1);
        assertEq(harness.hashEntry(es[2]), ReceiptTree.leaf(es[2]), "leaf = hashStruct(entry)");
        Receipts.ReceiptGroup memory g = _group(es);
        assertEq(harness.hashGroup(g), ReceiptTree.groupHash(g), "hashStruct(group)");
        assertEq(harness.groupDigest(separator, g), ReceiptTree.digest(separator, g), "digest");
    }

    function test_depth() public view {
        uint256[10] memory counts = [uint256(0), 1, 2, 3, 4, 5, 8, 9, 1024, 1025];
        uint256[10] memory depths = [uint256(0), 0, 1, 2, 2, 3, 3, 4, 10, 11];
        for (uint256 i = 0; i < counts.length; ++i) {
            assertEq(harness.depth(counts[i]), depths[i], "ceil(log2 count)");
        }
    }

    /// @dev The receipt tree is the withdrawal tree's scheme: the library folds a withdrawal
    ///      path to the root `Settlement` records (built by the independent `BatchData`).
    function test_treeIsTheWithdrawalTreeScheme() public view {
        for (uint256 n = 1; n <= 9; ++n) {
            Withdrawal[] memory ws = new Withdrawal[](n);
            for (uint256 i = 0; i < n; ++i) {
                ws[i] = Withdrawal(address(uint160(0x100 + i)), address(uint160(0x200)), uint128(1 + i));
            }
            for (uint256 i = 0; i < n; ++i) {
                bytes32 root = harness.rootOf(BatchData.leaf(uint32(i), ws[i]), i, BatchData.proof(ws, i));
                assertEq(root, BatchData.root(ws), "same root as the withdrawal tree");
            }
        }
    }

    // ---------------------------------------------------------- valid groups

    function test_verify_groupOf1() public view {
        // One entry: root = leaf, empty path.
        Receipts.ReceiptEntry[] memory es = _entries(1, 11);
        assertEq(_group(es).root, ReceiptTree.leaf(es[0]), "root = leaf");
        _verifyAll(1, 11);
    }

    function test_verify_groupOf2() public view {
        _verifyAll(2, 12);
    }

    function test_verify_groupOf3() public view {
        _verifyAll(3, 13);
    }

    function test_verify_groupOf5() public view {
        _verifyAll(5, 15);
    }

    function test_verify_groupOf8() public view {
        _verifyAll(8, 18);
    }

    function testFuzz_verify_anyCount(uint16 count, uint256 index, uint256 seed) public view {
        count = uint16(bound(count, 1, 300));
        index = bound(index, 0, count - 1);
        Receipts.ReceiptEntry[] memory es = _entries(count, seed);
        Receipts.ReceiptGroup memory g = _group(es);
        bytes32[] memory ls = ReceiptTree.leaves(es);
        harness.verify(
            separator, signer, es[index], g, index, ReceiptTree.proof(ls, index), _sign(signerKey, separator, g)
        );
    }

    // ------------------------------------------------------------ rejections

    function test_verify_revertsOnIndexOutOfRange() public {
        (Receipts.ReceiptEntry memory e, Receipts.ReceiptGroup memory g, bytes32[] memory path, bytes memory sig) =
            _valid();
        vm.expectRevert(abi.encodeWithSelector(Receipts.ReceiptIndexOutOfRange.selector, uint256(5), uint32(5)));
        harness.verify(separator, signer, e, g, 5, path, sig);
        g.count = 0;
        vm.expectRevert(abi.encodeWithSelector(Receipts.ReceiptIndexOutOfRange.selector, uint256(0), uint32(0)));
        harness.verify(separator, signer, e, g, 0, new bytes32[](0), sig);
    }

    /// @dev The right path at another index (in range) gives another root.
    function test_verify_revertsOnWrongIndex() public {
        (Receipts.ReceiptEntry memory e, Receipts.ReceiptGroup memory g, bytes32[] memory path, bytes memory sig) =
            _valid();
        for (uint256 i = 0; i < 5; ++i) {
            if (i == 1) continue;
            bytes32 computed = _rootAt(ReceiptTree.leaf(e), i, path);
            vm.expectRevert(abi.encodeWithSelector(Receipts.ReceiptRootMismatch.selector, computed, g.root));
            harness.verify(separator, signer, e, g, i, path, sig);
        }
    }

    function test_verify_revertsOnWrongPath() public {
        (Receipts.ReceiptEntry memory e, Receipts.ReceiptGroup memory g, bytes32[] memory path, bytes memory sig) =
            _valid();
        for (uint256 level = 0; level < path.length; ++level) {
            bytes32[] memory bad = new bytes32[](path.length);
            for (uint256 j = 0; j < path.length; ++j) {
                bad[j] = path[j];
            }
            bad[level] = bytes32(uint256(bad[level]) ^ 1);
            bytes32 computed = _rootAt(ReceiptTree.leaf(e), 1, bad);
            vm.expectRevert(abi.encodeWithSelector(Receipts.ReceiptRootMismatch.selector, computed, g.root));
            harness.verify(separator, signer, e, g, 1, bad, sig);
        }
        // A path of another length, even one that extends the right one.
        bytes32[] memory longer = new bytes32[](path.length + 1);
        for (uint256 j = 0; j < path.length; ++j) {
            longer[j] = path[j];
        }
        vm.expectRevert(abi.encodeWithSelector(Receipts.ReceiptPathLength.selector, path.length + 1, path.length));
        harness.verify(separator, signer, e, g, 1, longer, sig);
        bytes32[] memory shorter = new bytes32[](path.length - 1);
        vm.expectRevert(abi.encodeWithSelector(Receipts.ReceiptPathLength.selector, path.length - 1, path.length));
        harness.verify(separator, signer, e, g, 1, shorter, sig);
    }

    /// @dev Changing any one field of the entry changes its leaf.
    function test_verify_revertsOnTamperedEntry() public {
        (Receipts.ReceiptEntry memory e, Receipts.ReceiptGroup memory g, bytes32[] memory path, bytes memory sig) =
            _valid();
        for (uint256 field = 0; field < 10; ++field) {
            Receipts.ReceiptEntry memory t = _tamper(e, field);
            bytes32 computed = _rootAt(ReceiptTree.leaf(t), 1, path);
            vm.expectRevert(abi.encodeWithSelector(Receipts.ReceiptRootMismatch.selector, computed, g.root));
            harness.verify(separator, signer, t, g, 1, path, sig);
        }
    }

    function _tamper(Receipts.ReceiptEntry memory e, uint256 field)
        internal
        pure
        returns (Receipts.ReceiptEntry memory t)
    {
        t = Receipts.ReceiptEntry(
            e.sequence,
            e.txHash,
            e.kind,
            e.owner,
            e.token,
            e.slot,
            e.balance,
            e.nonce,
            e.depositsConsumed,
            e.forcedConsumed
        );
        if (field == 0) t.sequence ^= 1;
        else if (field == 1) t.txHash ^= bytes32(uint256(1));
        else if (field == 2) t.kind ^= 1;
        else if (field == 3) t.owner = address(uint160(t.owner) ^ 1);
        else if (field == 4) t.token = address(uint160(t.token) ^ 1);
        else if (field == 5) t.slot ^= 1;
        else if (field == 6) t.balance += 1;
        else if (field == 7) t.nonce ^= 1;
        else if (field == 8) t.depositsConsumed ^= 1;
        else t.forcedConsumed ^= 1;
    }

    /// @dev A correctly signed group whose range leaves out a correctly included entry.
    function test_verify_revertsOnSequenceOutsideTheGroup() public {
        Receipts.ReceiptEntry[] memory es = _entries(4, 21);
        bytes32[] memory ls = ReceiptTree.leaves(es);
        Receipts.ReceiptGroup memory g = _group(es);
        // Entries 0..3 have sequences FIRST, FIRST, FIRST+1, FIRST+1.
        Receipts.ReceiptGroup memory above = g;
        above.firstSequence = FIRST_SEQUENCE + 1;
        bytes memory sig = _sign(signerKey, separator, above);
        vm.expectRevert(
            abi.encodeWithSelector(
                Receipts.ReceiptSequenceOutOfRange.selector, FIRST_SEQUENCE, FIRST_SEQUENCE + 1, FIRST_SEQUENCE + 1
            )
        );
        harness.verify(separator, signer, es[0], above, 0, ReceiptTree.proof(ls, 0), sig);
        harness.verify(separator, signer, es[2], above, 2, ReceiptTree.proof(ls, 2), sig);

        Receipts.ReceiptGroup memory below = _group(es);
        below.lastSequence = FIRST_SEQUENCE;
        sig = _sign(signerKey, separator, below);
        vm.expectRevert(
            abi.encodeWithSelector(
                Receipts.ReceiptSequenceOutOfRange.selector, FIRST_SEQUENCE + 1, FIRST_SEQUENCE, FIRST_SEQUENCE
            )
        );
        harness.verify(separator, signer, es[3], below, 3, ReceiptTree.proof(ls, 3), sig);
    }

    function test_verify_revertsOnWrongSigner() public {
        (Receipts.ReceiptEntry memory e, Receipts.ReceiptGroup memory g, bytes32[] memory path, bytes memory sig) =
            _valid();
        // Signed by someone else.
        bytes memory otherSig = _sign(otherKey, separator, g);
        vm.expectRevert(abi.encodeWithSelector(Receipts.ReceiptWrongSigner.selector, other, signer));
        harness.verify(separator, signer, e, g, 1, path, otherSig);
        // The signer's signature, checked against another expected signer (a rotated key).
        vm.expectRevert(abi.encodeWithSelector(Receipts.ReceiptWrongSigner.selector, signer, other));
        harness.verify(separator, other, e, g, 1, path, sig);
    }

    /// @dev A signature for another group or another domain recovers to some other address.
    function test_verify_revertsOnSignatureForAnotherGroupOrDomain() public {
        (Receipts.ReceiptEntry memory e, Receipts.ReceiptGroup memory g, bytes32[] memory path, bytes memory sig) =
            _valid();
        Receipts.ReceiptGroup memory wider = Receipts.ReceiptGroup(g.root, g.firstSequence - 1, g.lastSequence, g.count);
        vm.expectRevert(
            abi.encodeWithSelector(
                Receipts.ReceiptWrongSigner.selector, _recover(ReceiptTree.digest(separator, wider), sig), signer
            )
        );
        harness.verify(separator, signer, e, wider, 1, path, sig);

        bytes32[2] memory others = [
            ReceiptTree.domainSeparator(block.chainid + 1, SETTLEMENT),
            ReceiptTree.domainSeparator(block.chainid, address(1))
        ];
        for (uint256 i = 0; i < 2; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    Receipts.ReceiptWrongSigner.selector, _recover(ReceiptTree.digest(others[i], g), sig), signer
                )
            );
            harness.verify(others[i], signer, e, g, 1, path, sig);
        }
    }

    /// @dev Malformed signatures: wrong length, the high-s twin of a valid one, v not 27/28.
    function test_verify_revertsOnMalformedSignature() public {
        (Receipts.ReceiptEntry memory e, Receipts.ReceiptGroup memory g, bytes32[] memory path, bytes memory sig) =
            _valid();
        (bytes32 r, bytes32 s, uint8 v) = _split(sig);
        bytes[4] memory bad = [
            abi.encodePacked(r, s),
            abi.encodePacked(r, s, v, uint8(0)),
            abi.encodePacked(r, bytes32(N - uint256(s)), v == 27 ? uint8(28) : uint8(27)),
            abi.encodePacked(r, s, v - 27)
        ];
        // The high-s twin is a valid ECDSA signature by the same key: ecrecover accepts it.
        assertEq(_recover(ReceiptTree.digest(separator, g), bad[2]), signer, "high-s twin recovers");
        for (uint256 i = 0; i < bad.length; ++i) {
            vm.expectRevert(Receipts.ReceiptSignatureInvalid.selector);
            harness.verify(separator, signer, e, g, 1, path, bad[i]);
        }
    }

    // ---------------------------------------------------------------- utils

    /// @dev The root from `leaf` at `index` along `path`, folded here (not by the library).
    function _rootAt(bytes32 leaf, uint256 index, bytes32[] memory path) internal pure returns (bytes32 node) {
        node = leaf;
        for (uint256 i = 0; i < path.length; ++i) {
            node =
                (index >> i) & 1 == 0 ? keccak256(bytes.concat(node, path[i])) : keccak256(bytes.concat(path[i], node));
        }
    }

    function _split(bytes memory sig) internal pure returns (bytes32 r, bytes32 s, uint8 v) {
        assembly {
            r := mload(add(sig, 0x20))
            s := mload(add(sig, 0x40))
            v := byte(0, mload(add(sig, 0x60)))
        }
    }

    function _recover(bytes32 digest, bytes memory sig) internal pure returns (address) {
        (bytes32 r, bytes32 s, uint8 v) = _split(sig);
        return ecrecover(digest, v, r, s);
    }
}
