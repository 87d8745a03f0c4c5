// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @notice One withdrawal of a batch, as the settlement contract pays it out.
struct Withdrawal {
    address recipient;
    address token;
    uint128 amount;
}

/// @title Batch data and withdrawal trees, built independently of the contract
/// @notice Mirrors the layout documented in `Settlement.sol` and `bindings/src/batch_data.rs`:
///         data = version u8 ‖ n u32 BE ‖ n × (recipient ‖ token ‖ amount u128 BE)
///                ‖ m u32 BE ‖ m × refused deposit index u64 BE ‖ rest;
///         leaf = keccak256(index u32 ‖ recipient ‖ token ‖ amount u128); every level of the
///         tree pairs a node without a right sibling with bytes32(0). Unlike the contract
///         (which folds one array in place), this keeps every level and is written with
///         `bytes.concat`, so the two implementations only agree if the layout does.
library BatchData {
    uint8 internal constant VERSION = 3;
    uint256 internal constant WITHDRAWAL_BYTES = 56;
    /// @notice Bytes of a body's counts: first_slot (4) ‖ new slots r (4) ‖ changed leaves u (4).
    uint256 internal constant BODY_HEADER_BYTES = 12;
    /// @notice Bytes per changed leaf in the gas model: slot gap as a 2-byte LEB128 varint
    ///         (slots 128 to 16,383 apart) ‖ leaf hash (32) ‖ encrypted (balance, nonce)
    ///         note (17). The format takes 1 to 5 gap bytes (50 to 54 per leaf).
    uint256 internal constant LEAF_UPDATE_BYTES = 51;

    function leaf(uint32 index, Withdrawal memory w) internal pure returns (bytes32) {
        return keccak256(bytes.concat(bytes4(index), bytes20(w.recipient), bytes20(w.token), bytes16(w.amount)));
    }

    function hashPair(bytes32 left, bytes32 right) internal pure returns (bytes32) {
        return keccak256(bytes.concat(left, right));
    }

    /// @notice Every level of the withdrawal tree, leaves first; the last level has the root alone.
    function levels(Withdrawal[] memory ws) internal pure returns (bytes32[][] memory) {
        bytes32[] memory ls = new bytes32[](ws.length);
        for (uint256 i = 0; i < ws.length; ++i) {
            ls[i] = leaf(uint32(i), ws[i]);
        }
        return levelsOf(ls);
    }

    /// @notice Every level of the tree over `ls` (the scheme the withdrawal and receipt trees
    ///         share), leaves first; the last level has the root alone.
    function levelsOf(bytes32[] memory ls) internal pure returns (bytes32[][] memory out) {
        uint256 n = ls.length;
        require(n > 0, "BatchData: empty tree");
        uint256 depth = 0;
        while ((uint256(1) << depth) < n) ++depth;
        out = new bytes32[][](depth + 1);
        out[0] = ls;
        for (uint256 level = 1; level <= depth; ++level) {
            bytes32[] memory below = out[level - 1];
            bytes32[] memory above = new bytes32[]((below.length + 1) / 2);
            for (uint256 i = 0; i < above.length; ++i) {
                bytes32 right = 2 * i + 1 < below.length ? below[2 * i + 1] : bytes32(0);
                above[i] = hashPair(below[2 * i], right);
            }
            out[level] = above;
        }
        require(out[depth].length == 1, "BatchData: tree did not close");
    }

    /// @notice Sibling path of leaf `index` in the tree whose `levels` are given, leaf level first.
    function pathOf(bytes32[][] memory lv, uint256 index) internal pure returns (bytes32[] memory path) {
        require(index < lv[0].length, "BatchData: index out of range");
        path = new bytes32[](lv.length - 1);
        uint256 position = index;
        for (uint256 level = 0; level + 1 < lv.length; ++level) {
            uint256 sibling = position ^ 1;
            path[level] = sibling < lv[level].length ? lv[level][sibling] : bytes32(0);
            position >>= 1;
        }
    }

    /// @notice The withdrawals root the contract records (zero for no withdrawals).
    function root(Withdrawal[] memory ws) internal pure returns (bytes32) {
        if (ws.length == 0) return bytes32(0);
        bytes32[][] memory lv = levels(ws);
        return lv[lv.length - 1][0];
    }

    /// @notice Sibling path of withdrawal `index`, leaf level first.
    function proof(Withdrawal[] memory ws, uint256 index) internal pure returns (bytes32[] memory) {
        require(index < ws.length, "BatchData: index out of range");
        return pathOf(levels(ws), index);
    }

    /// @notice Batch data: version, withdrawal section, no refused deposits, then `rest`.
    function encode(Withdrawal[] memory ws, bytes memory rest) internal pure returns (bytes memory data) {
        return encodeRaw(VERSION, uint32(ws.length), ws, rest);
    }

    /// @notice Batch data: version, withdrawal section, the refused-deposit section listing
    ///         `refused` (as given: unordered lists are for the malformed cases), then `rest`.
    function encodeRefused(Withdrawal[] memory ws, uint64[] memory refused, bytes memory rest)
        internal
        pure
        returns (bytes memory data)
    {
        bytes memory section = bytes.concat(bytes4(uint32(refused.length)));
        for (uint256 i = 0; i < refused.length; ++i) {
            section = bytes.concat(section, bytes8(refused[i]));
        }
        return encodeRawSections(VERSION, uint32(ws.length), ws, section, rest);
    }

    /// @notice Batch data with a chosen version byte and count field (for malformed data),
    ///         an empty refused-deposit section, then `rest`.
    function encodeRaw(uint8 version, uint32 count, Withdrawal[] memory ws, bytes memory rest)
        internal
        pure
        returns (bytes memory data)
    {
        return encodeRawSections(version, count, ws, hex"00000000", rest);
    }

    /// @notice Batch data with a chosen version byte, count field and refused section bytes.
    ///         Writes into one allocation: the 1,000-leaf gas cases would be quadratic with
    ///         repeated `bytes.concat`.
    function encodeRawSections(
        uint8 version,
        uint32 count,
        Withdrawal[] memory ws,
        bytes memory refusedSection,
        bytes memory rest
    ) internal pure returns (bytes memory data) {
        data = new bytes(5 + ws.length * WITHDRAWAL_BYTES + refusedSection.length + rest.length);
        data[0] = bytes1(version);
        bytes4 countBytes = bytes4(count);
        for (uint256 i = 0; i < 4; ++i) {
            data[1 + i] = countBytes[i];
        }
        uint256 offset = 5;
        for (uint256 i = 0; i < ws.length; ++i) {
            bytes memory entry = bytes.concat(bytes20(ws[i].recipient), bytes20(ws[i].token), bytes16(ws[i].amount));
            _copy(entry, data, offset);
            offset += WITHDRAWAL_BYTES;
        }
        _copy(refusedSection, data, offset);
        offset += refusedSection.length;
        _copy(rest, data, offset);
    }

    /// @notice A node-defined body (batch data version 3) with no new slots and `count`
    ///         changed leaves (gas model; the contract only hashes it): first_slot 0, r = 0,
    ///         u = count, then per leaf a 2-byte gap varint, a 32-byte leaf hash and a
    ///         17-byte encrypted note, the last two pseudo-random (high-entropy, like real
    ///         hashes and ciphertexts).
    function leafUpdates(uint256 count, bytes32 seed) internal pure returns (bytes memory rest) {
        // Allocated with 32 bytes to spare, then shortened: entries are written in order with
        // 32-byte stores, each store's overhang overwritten by the next and the last one's
        // landing in the spare bytes.
        uint256 length = BODY_HEADER_BYTES + count * LEAF_UPDATE_BYTES;
        rest = new bytes(length + 32);
        assembly ("memory-safe") {
            mstore(rest, length)
            mstore(add(rest, 0x28), shl(224, count))
        }
        for (uint256 i = 0; i < count; ++i) {
            bytes32 leafHash = keccak256(abi.encode(seed, i));
            bytes32 note = keccak256(abi.encode(leafHash));
            uint256 gap = 128 + uint256(keccak256(abi.encode(note))) % (16_384 - 128);
            // LEB128: low 7 bits with the continuation bit, then the high 7 bits.
            uint256 varint = ((gap & 0x7f) | 0x80) << 8 | (gap >> 7);
            assembly ("memory-safe") {
                let p := add(add(rest, 0x2c), mul(i, 51))
                mstore(p, shl(240, varint))
                mstore(add(p, 2), leafHash)
                mstore(add(p, 34), note)
            }
        }
    }

    function _copy(bytes memory src, bytes memory dst, uint256 offset) private pure {
        require(offset + src.length <= dst.length, "BatchData: copy out of bounds");
        for (uint256 i = 0; i < src.length; ++i) {
            dst[offset + i] = src[i];
        }
    }
}
