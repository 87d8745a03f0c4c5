// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Receipts} from "../../src/Receipts.sol";
import {BatchData} from "./BatchData.sol";

/// @title Receipt groups built independently of the `Receipts` library
/// @notice What a receipt signer does: hash each entry (EIP-712 hashStruct, written out word
///         by word from the type string rather than with the library's encoding), build the
///         tree keeping every level (a node without a right sibling pairs with bytes32(0)),
///         hand out sibling paths, and compute the group digest it signs. The library only
///         folds a path, so the two agree only if the format does.
library ReceiptTree {
    string internal constant ENTRY_TYPE =
        "ReceiptEntry(uint64 sequence,bytes32 txHash,uint8 kind,address owner,address token,uint32 slot,uint128 balance,uint64 nonce,uint64 depositsConsumed,uint64 forcedConsumed)";
    string internal constant GROUP_TYPE =
        "ReceiptGroup(bytes32 root,uint64 firstSequence,uint64 lastSequence,uint32 count)";
    string internal constant DOMAIN_TYPE =
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";

    function domainSeparator(uint256 chainId, address verifyingContract) internal pure returns (bytes32) {
        return keccak256(
            bytes.concat(
                keccak256(bytes(DOMAIN_TYPE)),
                keccak256("Stablelane"),
                keccak256("1"),
                bytes32(chainId),
                bytes32(uint256(uint160(verifyingContract)))
            )
        );
    }

    function leaf(Receipts.ReceiptEntry memory e) internal pure returns (bytes32) {
        bytes memory head = bytes.concat(
            keccak256(bytes(ENTRY_TYPE)),
            bytes32(uint256(e.sequence)),
            e.txHash,
            bytes32(uint256(e.kind)),
            bytes32(uint256(uint160(e.owner))),
            bytes32(uint256(uint160(e.token)))
        );
        bytes memory tail = bytes.concat(
            bytes32(uint256(e.slot)),
            bytes32(uint256(e.balance)),
            bytes32(uint256(e.nonce)),
            bytes32(uint256(e.depositsConsumed)),
            bytes32(uint256(e.forcedConsumed))
        );
        return keccak256(bytes.concat(head, tail));
    }

    function leaves(Receipts.ReceiptEntry[] memory entries) internal pure returns (bytes32[] memory out) {
        out = new bytes32[](entries.length);
        for (uint256 i = 0; i < entries.length; ++i) {
            out[i] = leaf(entries[i]);
        }
    }

    /// @notice Every level of the tree over `ls` (the withdrawal tree's scheme), leaves first;
    ///         the last holds the root.
    function levels(bytes32[] memory ls) internal pure returns (bytes32[][] memory) {
        return BatchData.levelsOf(ls);
    }

    function root(bytes32[] memory ls) internal pure returns (bytes32) {
        bytes32[][] memory lv = levels(ls);
        return lv[lv.length - 1][0];
    }

    /// @notice Sibling path of leaf `index`, leaf level first.
    function proof(bytes32[] memory ls, uint256 index) internal pure returns (bytes32[] memory) {
        require(index < ls.length, "ReceiptTree: index out of range");
        return BatchData.pathOf(levels(ls), index);
    }

    function groupHash(Receipts.ReceiptGroup memory g) internal pure returns (bytes32) {
        return keccak256(
            bytes.concat(
                keccak256(bytes(GROUP_TYPE)),
                g.root,
                bytes32(uint256(g.firstSequence)),
                bytes32(uint256(g.lastSequence)),
                bytes32(uint256(g.count))
            )
        );
    }

    function digest(bytes32 separator, Receipts.ReceiptGroup memory g) internal pure returns (bytes32) {
        return keccak256(bytes.concat(hex"1901", separator, groupHash(g)));
    }
}
