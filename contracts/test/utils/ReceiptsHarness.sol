// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Receipts} from "../../src/Receipts.sol";

/// @title External entry points over the `Receipts` library
/// @notice The library's functions are internal; tests call them through this contract so
///         that `vm.expectRevert` sees the library's custom errors (a revert needs a call to
///         be expected on).
contract ReceiptsHarness {
    function verify(
        bytes32 separator,
        address signer,
        Receipts.ReceiptEntry memory entry,
        Receipts.ReceiptGroup memory group,
        uint256 index,
        bytes32[] memory path,
        bytes memory signature
    ) external pure {
        Receipts.verify(separator, signer, entry, group, index, path, signature);
    }

    function domainSeparator(uint256 chainId, address verifyingContract) external pure returns (bytes32) {
        return Receipts.domainSeparator(chainId, verifyingContract);
    }

    function hashEntry(Receipts.ReceiptEntry memory entry) external pure returns (bytes32) {
        return Receipts.hashEntry(entry);
    }

    function hashGroup(Receipts.ReceiptGroup memory group) external pure returns (bytes32) {
        return Receipts.hashGroup(group);
    }

    function groupDigest(bytes32 separator, Receipts.ReceiptGroup memory group) external pure returns (bytes32) {
        return Receipts.groupDigest(separator, group);
    }

    function depth(uint256 count) external pure returns (uint256) {
        return Receipts.depth(count);
    }

    function rootOf(bytes32 leaf, uint256 index, bytes32[] memory path) external pure returns (bytes32) {
        return Receipts.rootOf(leaf, index, path);
    }
}
