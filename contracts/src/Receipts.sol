// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

/// @title Receipts signed by the receipt signer, for receipt challenges
/// @notice Design section 9: per group commit the operator's receipt signer signs a Merkle root
///         over the receipts of the group, one entry per slot a transaction (or a deposit
///         credit, or a forced payout) changed, and each wallet gets its entries with their
///         inclusion paths. This library checks one such receipt: that `entry` is leaf
///         `index` of `group`'s tree and that the receipt signer signed `group`. It proves
///         authenticity only; what an entry means for a challenge is for the challenge to
///         decide (an unknown `kind` is not refused here).
/// @dev The format is fixed; the Rust node produces exactly this, and
///      `test/fixtures/receipt_vector.json` pins it:
///      - EIP-712 domain: the lane's, `EIP712Domain(string name,string version,uint256 chainId,
///        address verifyingContract)` with name "Stablelane", version "1", the chain id and
///        the settlement contract (`domainSeparator`).
///      - leaf = hashStruct(ReceiptEntry) = keccak256(abi.encode(ENTRY_TYPEHASH, fields…)).
///      - tree over `count >= 1` leaves, the withdrawal tree's scheme of `Settlement`: at every
///        level a node without a right sibling pairs with bytes32(0); depth ceil(log2 count);
///        node = keccak256(left ‖ right); count 1: root = leaf, empty path. Bit i of the
///        leaf's index says whether the level-i node is a right child.
///      - the receipt signer signs the EIP-712 digest of the group,
///        keccak256("\x19\x01" ‖ domainSeparator ‖ hashStruct(ReceiptGroup)), as 65 bytes
///        r ‖ s ‖ v with v ∈ {27, 28} and a low s (OpenZeppelin `ECDSA`).
library Receipts {
    /// @notice One slot's state after a ledger event, as the receipt signer signs it.
    struct ReceiptEntry {
        /// Sequence number of the event (transaction, deposit credit or forced payout).
        uint64 sequence;
        /// Hash of the transaction (or the event's id).
        bytes32 txHash;
        /// `KIND_SENDER`, `KIND_RECIPIENT`, `KIND_DEPOSIT` or `KIND_FORCED_PAYOUT`.
        uint8 kind;
        /// The slot's owner and token.
        address owner;
        address token;
        /// The slot's index in the state tree.
        uint32 slot;
        /// The slot's balance and nonce after the event.
        uint128 balance;
        uint64 nonce;
        /// Deposit- and forced-queue prefixes the ledger had consumed after the event.
        uint64 depositsConsumed;
        uint64 forcedConsumed;
    }

    /// @notice A group commit's receipts: the root of their tree and the events they cover.
    struct ReceiptGroup {
        bytes32 root;
        uint64 firstSequence;
        uint64 lastSequence;
        /// Number of entries (leaves), at least 1.
        uint32 count;
    }

    /// @notice Entry kinds: the sender of a transfer or withdrawal, the recipient of a
    ///         transfer, a deposit credited, a forced payout debited.
    uint8 internal constant KIND_SENDER = 0;
    uint8 internal constant KIND_RECIPIENT = 1;
    uint8 internal constant KIND_DEPOSIT = 2;
    uint8 internal constant KIND_FORCED_PAYOUT = 3;

    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant NAME_HASH = keccak256("Stablelane");
    bytes32 internal constant VERSION_HASH = keccak256("1");
    bytes32 internal constant ENTRY_TYPEHASH = keccak256(
        "ReceiptEntry(uint64 sequence,bytes32 txHash,uint8 kind,address owner,address token,uint32 slot,uint128 balance,uint64 nonce,uint64 depositsConsumed,uint64 forcedConsumed)"
    );
    bytes32 internal constant GROUP_TYPEHASH =
        keccak256("ReceiptGroup(bytes32 root,uint64 firstSequence,uint64 lastSequence,uint32 count)");

    /// @notice `index` is not below the group's `count` (also for a group of 0 entries).
    error ReceiptIndexOutOfRange(uint256 index, uint32 count);
    /// @notice The path does not have the tree's depth, ceil(log2 count).
    error ReceiptPathLength(uint256 length, uint256 depth);
    /// @notice Entry and path give another root than the group's.
    error ReceiptRootMismatch(bytes32 computed, bytes32 root);
    /// @notice The entry's sequence is outside the group's `[firstSequence, lastSequence]`.
    error ReceiptSequenceOutOfRange(uint64 sequence, uint64 firstSequence, uint64 lastSequence);
    /// @notice The signature is malformed (length, high s, v) or recovers to no address.
    error ReceiptSignatureInvalid();
    /// @notice The signature is valid but by another account than the receipt signer.
    error ReceiptWrongSigner(address recovered, address signer);

    /// @notice The lane's EIP-712 domain separator on `chainId` for the settlement contract
    ///         `verifyingContract`.
    function domainSeparator(uint256 chainId, address verifyingContract) internal pure returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chainId, verifyingContract));
    }

    /// @notice The leaf of `entry`: its EIP-712 hashStruct.
    function hashEntry(ReceiptEntry memory entry) internal pure returns (bytes32) {
        // Two encodings of static values concatenate to the one of all of them.
        return keccak256(
            bytes.concat(
                abi.encode(ENTRY_TYPEHASH, entry.sequence, entry.txHash, entry.kind, entry.owner, entry.token),
                abi.encode(entry.slot, entry.balance, entry.nonce, entry.depositsConsumed, entry.forcedConsumed)
            )
        );
    }

    /// @notice The EIP-712 hashStruct of `group`.
    function hashGroup(ReceiptGroup memory group) internal pure returns (bytes32) {
        return keccak256(abi.encode(GROUP_TYPEHASH, group.root, group.firstSequence, group.lastSequence, group.count));
    }

    /// @notice What the receipt signer signs: the EIP-712 digest of `group` in the domain
    ///         `separator`.
    function groupDigest(bytes32 separator, ReceiptGroup memory group) internal pure returns (bytes32) {
        return MessageHashUtils.toTypedDataHash(separator, hashGroup(group));
    }

    /// @notice Depth of a tree over `count` leaves: ceil(log2 count) (0 for 0 or 1).
    function depth(uint256 count) internal pure returns (uint256 d) {
        uint256 width = 1;
        while (width < count) {
            width <<= 1;
            ++d;
        }
    }

    /// @notice The root reached from `leaf` at `index` along `path` (siblings, leaf level
    ///         first): at level i the node is the right child iff bit i of `index` is set.
    function rootOf(bytes32 leaf, uint256 index, bytes32[] memory path) internal pure returns (bytes32 node) {
        node = leaf;
        for (uint256 i = 0; i < path.length; ++i) {
            node = (index >> i) & 1 == 0 ? _hashPair(node, path[i]) : _hashPair(path[i], node);
        }
    }

    /// @notice Reverts unless `entry` is leaf `index` of `group` (by `path`), its sequence lies
    ///         in the group's range and `signature` is `signer`'s over the group's digest in
    ///         the domain `separator`. Checks, in order: index < count, path length = depth,
    ///         root, sequence range, signature.
    function verify(
        bytes32 separator,
        address signer,
        ReceiptEntry memory entry,
        ReceiptGroup memory group,
        uint256 index,
        bytes32[] memory path,
        bytes memory signature
    ) internal pure {
        if (index >= group.count) revert ReceiptIndexOutOfRange(index, group.count);
        uint256 expectedDepth = depth(group.count);
        if (path.length != expectedDepth) revert ReceiptPathLength(path.length, expectedDepth);
        bytes32 computed = rootOf(hashEntry(entry), index, path);
        if (computed != group.root) revert ReceiptRootMismatch(computed, group.root);
        if (entry.sequence < group.firstSequence || entry.sequence > group.lastSequence) {
            revert ReceiptSequenceOutOfRange(entry.sequence, group.firstSequence, group.lastSequence);
        }
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(groupDigest(separator, group), signature);
        if (err != ECDSA.RecoverError.NoError) revert ReceiptSignatureInvalid();
        if (recovered != signer) revert ReceiptWrongSigner(recovered, signer);
    }

    function _hashPair(bytes32 left, bytes32 right) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            mstore(0x00, left)
            mstore(0x20, right)
            h := keccak256(0x00, 0x40)
        }
    }
}
