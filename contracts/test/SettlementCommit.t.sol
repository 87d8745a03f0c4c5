// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Settlement} from "../src/Settlement.sol";
import {SettlementFixture} from "./utils/SettlementFixture.sol";
import {BatchData, Withdrawal} from "./utils/BatchData.sol";

/// @notice `commitBatch`: every check of the header and the data, and what a commit records.
contract SettlementCommitTest is SettlementFixture {
    bytes32 internal constant ROOT_1 = bytes32(uint256(0x1111));
    bytes32 internal constant ROOT_2 = bytes32(uint256(0x2222));

    // ------------------------------------------------------------- success

    function test_commitBatch_emptyBatchRecordsRoot() public {
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 0, 0, data);
        assertEq(header.batchNumber, 1, "first batch is 1");
        assertEq(header.prevRoot, GENESIS_ROOT, "on top of genesis");

        vm.expectEmit(true, true, true, true, address(settlement));
        emit Settlement.BatchCommitted(1, ROOT_1, keccak256(data), 0, 0, 0, bytes32(0));
        vm.prank(operator);
        settlement.commitBatch(header, data);

        assertEq(settlement.stateRoot(), ROOT_1, "stateRoot");
        assertEq(settlement.lastBatchNumber(), 1, "lastBatchNumber");
        Settlement.Batch memory b = settlement.batch(1);
        assertEq(b.root, ROOT_1, "batch root");
        assertEq(b.withdrawalsRoot, bytes32(0), "no withdrawals root");
        assertEq(b.withdrawalCount, 0, "no withdrawals");
        assertEq(b.committedAt, block.timestamp, "committedAt");
    }

    function test_commitBatch_chainsBatches() public {
        _commit(ROOT_1, _noWithdrawals());
        vm.warp(block.timestamp + 12);
        _commit(ROOT_2, _noWithdrawals());
        assertEq(settlement.lastBatchNumber(), 2, "two batches");
        assertEq(settlement.stateRoot(), ROOT_2, "latest root");
        assertEq(settlement.batch(1).root, ROOT_1, "batch 1 kept");
        assertEq(settlement.batch(2).committedAt, START_TIME + 12, "batch 2 time");
    }

    function test_commitBatch_acceptsRootJustBelowField() public {
        _commit(bytes32(R - 1), _noWithdrawals());
        assertEq(settlement.stateRoot(), bytes32(R - 1), "r - 1");
        _commit(bytes32(0), _noWithdrawals());
        assertEq(settlement.stateRoot(), bytes32(0), "zero root");
    }

    function test_commitBatch_consumesDepositPrefixes() public {
        _deposit(alice, usdc, 100, alice);
        _deposit(bob, dai, 2 ether, bob);
        _deposit(carol, usdc, 30, carol);

        // First batch consumes two of three deposits.
        _commitPrefix(ROOT_1, 2, 0, _noWithdrawals(), "");
        assertEq(settlement.depositsConsumed(), 2, "consumed 2");
        assertEq(settlement.pendingDeposits(address(usdc)), 30, "usdc pending");
        assertEq(settlement.ledgerSupply(address(usdc)), 100, "usdc ledger");
        assertEq(settlement.pendingDeposits(address(dai)), 0, "dai pending");
        assertEq(settlement.ledgerSupply(address(dai)), 2 ether, "dai ledger");

        // A batch may consume nothing new.
        _commitPrefix(ROOT_2, 2, 0, _noWithdrawals(), "");
        assertEq(settlement.depositsConsumed(), 2, "still 2");

        // Then the rest.
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 3, 0, data);
        vm.expectEmit(true, true, true, true, address(settlement));
        emit Settlement.BatchCommitted(3, ROOT_1, keccak256(data), 3, 0, 0, bytes32(0));
        vm.prank(operator);
        settlement.commitBatch(header, data);
        assertEq(settlement.depositsConsumed(), 3, "consumed 3");
        assertEq(settlement.pendingDeposits(address(usdc)), 0, "usdc pending drained");
        assertEq(settlement.ledgerSupply(address(usdc)), 130, "usdc ledger");
        assertEq(usdc.balanceOf(address(settlement)), 130, "tokens stayed");
    }

    function test_commitBatch_consumesForcedPrefixes() public {
        _requestForced(alice, address(usdc));
        _requestForced(bob, address(dai));
        _commitPrefix(ROOT_1, 0, 1, _noWithdrawals(), "");
        assertEq(settlement.forcedConsumed(), 1, "one served");
        _commitPrefix(ROOT_2, 0, 2, _noWithdrawals(), "");
        assertEq(settlement.forcedConsumed(), 2, "both served");
    }

    function test_commitBatch_recordsWithdrawals() public {
        _deposit(alice, usdc, 1_000, alice);
        _deposit(bob, dai, 5 ether, bob);
        _commit(ROOT_1, _noWithdrawals());

        Withdrawal[] memory ws = new Withdrawal[](3);
        ws[0] = Withdrawal(carol, address(usdc), 400);
        ws[1] = Withdrawal(bob, address(dai), 5 ether);
        ws[2] = Withdrawal(alice, address(usdc), 600);
        bytes memory data = BatchData.encode(ws, hex"deadbeef");
        Settlement.BatchHeader memory header = _header(ROOT_2, 2, 0, data);
        bytes32 expectedRoot = keccak256(
            abi.encodePacked(
                keccak256(
                    abi.encodePacked(
                        settlement.withdrawalLeaf(0, carol, address(usdc), 400),
                        settlement.withdrawalLeaf(1, bob, address(dai), 5 ether)
                    )
                ),
                keccak256(abi.encodePacked(settlement.withdrawalLeaf(2, alice, address(usdc), 600), bytes32(0)))
            )
        );
        assertEq(BatchData.root(ws), expectedRoot, "helper tree agrees with hand-built tree");

        vm.expectEmit(true, true, true, true, address(settlement));
        emit Settlement.BatchCommitted(2, ROOT_2, keccak256(data), 2, 0, 3, expectedRoot);
        vm.prank(operator);
        settlement.commitBatch(header, data);

        Settlement.Batch memory b = settlement.batch(2);
        assertEq(b.withdrawalsRoot, expectedRoot, "withdrawalsRoot");
        assertEq(b.withdrawalCount, 3, "withdrawalCount");
        assertEq(settlement.ledgerSupply(address(usdc)), 0, "usdc ledger");
        assertEq(settlement.unclaimedWithdrawals(address(usdc)), 1_000, "usdc unclaimed");
        assertEq(settlement.ledgerSupply(address(dai)), 0, "dai ledger");
        assertEq(settlement.unclaimedWithdrawals(address(dai)), 5 ether, "dai unclaimed");
        assertEq(usdc.balanceOf(carol), 0, "nothing paid before the claim");
    }

    function test_commitBatch_withdrawalsCanSpendDepositsConsumedInSameBatch() public {
        _deposit(alice, usdc, 500, alice);
        _commit(ROOT_1, _one(alice, address(usdc), 500));
        assertEq(settlement.ledgerSupply(address(usdc)), 0, "ledger");
        assertEq(settlement.unclaimedWithdrawals(address(usdc)), 500, "unclaimed");
    }

    /// @dev The gas model's rest data is a well-formed version 2 body: counts, then entries
    ///      of a canonical 2-byte gap varint, a leaf hash and a 17-byte note, nothing after.
    function test_leafUpdates_isAVersion2Body() public pure {
        uint256[3] memory counts = [uint256(0), 1, 7];
        for (uint256 c = 0; c < counts.length; ++c) {
            bytes memory rest = BatchData.leafUpdates(counts[c], "model");
            assertEq(rest.length, 12 + counts[c] * 51, "length");
            assertEq(uint32(bytes4(_at4(rest, 0))), 0, "first_slot");
            assertEq(uint32(bytes4(_at4(rest, 4))), 0, "new slots");
            assertEq(uint32(bytes4(_at4(rest, 8))), counts[c], "changed leaves");
            for (uint256 i = 0; i < counts[c]; ++i) {
                uint256 o = 12 + i * 51;
                uint8 low = uint8(rest[o]);
                uint8 high = uint8(rest[o + 1]);
                assertTrue(low >= 0x80 && high > 0 && high < 0x80, "canonical 2-byte varint");
            }
        }
    }

    function _at4(bytes memory b, uint256 o) private pure returns (bytes memory) {
        return bytes.concat(b[o], b[o + 1], b[o + 2], b[o + 3]);
    }

    function test_commitBatch_restDataIsOpaqueButBound() public {
        bytes memory rest = BatchData.leafUpdates(3, "rest");
        bytes memory data = BatchData.encode(_noWithdrawals(), rest);
        Settlement.BatchHeader memory header = _header(ROOT_1, 0, 0, data);
        // The same header with other rest data is rejected.
        bytes memory tampered = BatchData.encode(_noWithdrawals(), BatchData.leafUpdates(3, "other"));
        vm.expectRevert(
            abi.encodeWithSelector(Settlement.DataHashMismatch.selector, keccak256(tampered), keccak256(data))
        );
        vm.prank(operator);
        settlement.commitBatch(header, tampered);

        vm.prank(operator);
        settlement.commitBatch(header, data);
        assertEq(settlement.stateRoot(), ROOT_1, "committed");
    }

    function test_commitBatch_acceptsMaxWithdrawals() public {
        _deposit(alice, usdc, 1024, alice);
        Withdrawal[] memory ws = new Withdrawal[](1024);
        for (uint256 i = 0; i < ws.length; ++i) {
            ws[i] = Withdrawal(alice, address(usdc), 1);
        }
        _commit(ROOT_1, ws);
        assertEq(settlement.batch(1).withdrawalCount, 1024, "count");
        assertEq(settlement.batch(1).withdrawalsRoot, BatchData.root(ws), "root");
        assertEq(settlement.unclaimedWithdrawals(address(usdc)), 1024, "unclaimed");
    }

    function test_commitBatch_consumesUpToMaxDeposits() public {
        _manyDeposits(1025);
        _commitPrefix(ROOT_1, 1024, 0, _noWithdrawals(), "");
        assertEq(settlement.depositsConsumed(), 1024, "consumed");
        assertEq(settlement.ledgerSupply(address(usdc)), 1024, "ledger");
        assertEq(settlement.pendingDeposits(address(usdc)), 1, "pending");
    }

    // ------------------------------------------------------- header reverts

    function test_commitBatch_revertsForNonOperator() public {
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 0, 0, data);
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotOperator.selector, owner));
        vm.prank(owner);
        settlement.commitBatch(header, data);
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotOperator.selector, stranger));
        vm.prank(stranger);
        settlement.commitBatch(header, data);
    }

    function test_commitBatch_revertsInExodus() public {
        _enterExodus();
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 0, 0, data);
        vm.expectRevert(Settlement.ExodusActive.selector);
        vm.prank(operator);
        settlement.commitBatch(header, data);
    }

    function test_commitBatch_revertsOnBadBatchNumber() public {
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 0, 0, data);
        header.batchNumber = 0;
        _expectCommitRevert(header, data, abi.encodeWithSelector(Settlement.BadBatchNumber.selector, 1, 0));
        header.batchNumber = 2;
        _expectCommitRevert(header, data, abi.encodeWithSelector(Settlement.BadBatchNumber.selector, 1, 2));

        _commit(ROOT_1, _noWithdrawals());
        header = _header(ROOT_2, 0, 0, data);
        header.batchNumber = 1; // replay of the number just used
        _expectCommitRevert(header, data, abi.encodeWithSelector(Settlement.BadBatchNumber.selector, 2, 1));
    }

    function test_commitBatch_revertsOnPrevRootMismatch() public {
        _commit(ROOT_1, _noWithdrawals());
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_2, 0, 0, data);
        header.prevRoot = GENESIS_ROOT; // stale root
        _expectCommitRevert(
            header, data, abi.encodeWithSelector(Settlement.PrevRootMismatch.selector, ROOT_1, GENESIS_ROOT)
        );
    }

    function test_commitBatch_revertsOnRootOutsideField() public {
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(bytes32(R), 0, 0, data);
        _expectCommitRevert(header, data, abi.encodeWithSelector(Settlement.RootNotInField.selector, bytes32(R)));
        header.newRoot = bytes32(type(uint256).max);
        _expectCommitRevert(header, data, abi.encodeWithSelector(Settlement.RootNotInField.selector, header.newRoot));
    }

    function test_commitBatch_revertsOnDataHashMismatch() public {
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 0, 0, data);
        header.dataHash = keccak256("something else");
        _expectCommitRevert(
            header, data, abi.encodeWithSelector(Settlement.DataHashMismatch.selector, keccak256(data), header.dataHash)
        );
    }

    function test_commitBatch_revertsOnDepositPrefixBeyondQueue() public {
        _deposit(alice, usdc, 1, alice);
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 1, 0, data);
        header.depositsConsumed = 2;
        _expectCommitRevert(header, data, abi.encodeWithSelector(Settlement.DepositPrefixOutOfRange.selector, 0, 2, 1));
    }

    function test_commitBatch_revertsOnDepositPrefixGoingBack() public {
        _deposit(alice, usdc, 1, alice);
        _deposit(alice, usdc, 2, alice);
        _commitPrefix(ROOT_1, 2, 0, _noWithdrawals(), "");
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_2, 1, 0, data);
        _expectCommitRevert(header, data, abi.encodeWithSelector(Settlement.DepositPrefixOutOfRange.selector, 2, 1, 2));
    }

    function test_commitBatch_revertsOnDepositHashMismatch() public {
        _deposit(alice, usdc, 10, alice);
        _deposit(bob, usdc, 20, bob);
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 2, 0, data);

        // The hash of a shorter prefix.
        header.depositsHash = depositHashes[1];
        _expectCommitRevert(
            header,
            data,
            abi.encodeWithSelector(Settlement.DepositHashMismatch.selector, depositHashes[2], depositHashes[1])
        );
        // A queue where bob's deposit went to someone else.
        bytes32 forged = _depositHash(depositHashes[1], carol, address(usdc), 20);
        header.depositsHash = forged;
        _expectCommitRevert(
            header, data, abi.encodeWithSelector(Settlement.DepositHashMismatch.selector, depositHashes[2], forged)
        );
        // Consuming nothing must come with the zero hash.
        header = _header(ROOT_1, 0, 0, data);
        header.depositsHash = depositHashes[2];
        _expectCommitRevert(
            header, data, abi.encodeWithSelector(Settlement.DepositHashMismatch.selector, bytes32(0), depositHashes[2])
        );
    }

    function test_commitBatch_revertsOnTooManyDeposits() public {
        _manyDeposits(1025);
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 1025, 0, data);
        _expectCommitRevert(header, data, abi.encodeWithSelector(Settlement.TooManyDeposits.selector, 1025));
    }

    function test_commitBatch_revertsOnForcedPrefixBeyondQueue() public {
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 0, 0, data);
        header.forcedConsumed = 1;
        _expectCommitRevert(header, data, abi.encodeWithSelector(Settlement.ForcedPrefixOutOfRange.selector, 0, 1, 0));
    }

    function test_commitBatch_revertsOnForcedPrefixGoingBack() public {
        _requestForced(alice, address(usdc));
        _commitPrefix(ROOT_1, 0, 1, _noWithdrawals(), "");
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_2, 0, 0, data);
        _expectCommitRevert(header, data, abi.encodeWithSelector(Settlement.ForcedPrefixOutOfRange.selector, 1, 0, 1));
    }

    function test_commitBatch_revertsOnForcedHashMismatch() public {
        _requestForced(alice, address(usdc));
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 0, 1, data);
        bytes32 forged = _forcedHash(bytes32(0), alice, address(dai), alice); // other token
        header.forcedHash = forged;
        _expectCommitRevert(
            header, data, abi.encodeWithSelector(Settlement.ForcedHashMismatch.selector, forcedHashes[1], forged)
        );
    }

    /// @dev The prefix hash binds the recipient the owner named: a batch presenting the
    ///      request with the owner (or anyone else) in its place is refused.
    function test_commitBatch_revertsOnForcedHashWithAnotherRecipient() public {
        _requestForcedTo(alice, address(usdc), bob);
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 0, 1, data);
        address[2] memory others = [alice, carol];
        for (uint256 i = 0; i < others.length; ++i) {
            bytes32 forged = _forcedHash(bytes32(0), alice, address(usdc), others[i]);
            header.forcedHash = forged;
            _expectCommitRevert(
                header, data, abi.encodeWithSelector(Settlement.ForcedHashMismatch.selector, forcedHashes[1], forged)
            );
        }
        header.forcedHash = _forcedHash(bytes32(0), alice, address(usdc), bob);
        vm.prank(operator);
        settlement.commitBatch(header, data);
        assertEq(settlement.forcedConsumed(), 1, "served with the named recipient");
    }

    // --------------------------------------------------------- data reverts

    function test_commitBatch_revertsOnTruncatedHeader() public {
        // Empty, no count, a short count, no refused-deposit count, a short one.
        bytes[5] memory short =
            [bytes(""), bytes(hex"03"), bytes(hex"03000000"), bytes(hex"0300000000"), bytes(hex"03000000000000")];
        for (uint256 i = 0; i < short.length; ++i) {
            Settlement.BatchHeader memory header = _header(ROOT_1, 0, 0, short[i]);
            _expectCommitRevert(header, short[i], abi.encodeWithSelector(Settlement.MalformedData.selector));
        }
    }

    function test_commitBatch_revertsOnTruncatedWithdrawals() public {
        _deposit(alice, usdc, 100, alice);
        Withdrawal[] memory ws = _one(alice, address(usdc), 10);
        // Count says 2, one withdrawal present.
        bytes memory data = BatchData.encodeRaw(BatchData.VERSION, 2, ws, "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 1, 0, data);
        _expectCommitRevert(header, data, abi.encodeWithSelector(Settlement.MalformedData.selector));
        // One byte short of one withdrawal.
        data = BatchData.encode(ws, "");
        assembly ("memory-safe") {
            mstore(data, sub(mload(data), 1))
        }
        header = _header(ROOT_1, 1, 0, data);
        _expectCommitRevert(header, data, abi.encodeWithSelector(Settlement.MalformedData.selector));
    }

    function test_commitBatch_revertsOnUnsupportedVersion() public {
        // 0, the retired versions 1 (fixed-width body) and 2 (no refused deposits), the next one.
        uint8[4] memory versions = [0, 1, 2, 4];
        for (uint256 i = 0; i < versions.length; ++i) {
            bytes memory data = BatchData.encodeRaw(versions[i], 0, _noWithdrawals(), "");
            Settlement.BatchHeader memory header = _header(ROOT_1, 0, 0, data);
            _expectCommitRevert(
                header, data, abi.encodeWithSelector(Settlement.UnsupportedDataVersion.selector, versions[i])
            );
        }
    }

    function test_commitBatch_revertsOnTooManyWithdrawals() public {
        // The count is checked before the length, so the header alone is enough.
        bytes memory data = BatchData.encodeRaw(BatchData.VERSION, 1025, _noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 0, 0, data);
        _expectCommitRevert(header, data, abi.encodeWithSelector(Settlement.TooManyWithdrawals.selector, 1025));
        data = BatchData.encodeRaw(BatchData.VERSION, type(uint32).max, _noWithdrawals(), "");
        header = _header(ROOT_1, 0, 0, data);
        _expectCommitRevert(
            header, data, abi.encodeWithSelector(Settlement.TooManyWithdrawals.selector, type(uint32).max)
        );
    }

    function test_commitBatch_revertsOnZeroRecipient() public {
        _deposit(alice, usdc, 100, alice);
        bytes memory data = BatchData.encode(_one(address(0), address(usdc), 10), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 1, 0, data);
        _expectCommitRevert(header, data, abi.encodeWithSelector(Settlement.ZeroAddress.selector));
    }

    function test_commitBatch_revertsOnZeroAmountWithdrawal() public {
        _deposit(alice, usdc, 100, alice);
        bytes memory data = BatchData.encode(_one(alice, address(usdc), 0), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 1, 0, data);
        _expectCommitRevert(header, data, abi.encodeWithSelector(Settlement.ZeroAmount.selector));
    }

    function test_commitBatch_revertsOnWithdrawalExceedingLedgerSupply() public {
        _deposit(alice, usdc, 100, alice);
        _deposit(bob, usdc, 50, bob); // pending, not in the ledger

        // More than the ledger holds, even though the contract holds more (pending deposits).
        bytes memory data = BatchData.encode(_one(alice, address(usdc), 101), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 1, 0, data);
        _expectCommitRevert(
            header, data, abi.encodeWithSelector(Settlement.LedgerSupplyExceeded.selector, address(usdc), 101, 100)
        );

        // Cumulatively too much: 60 + 60 of 100.
        Withdrawal[] memory ws = new Withdrawal[](2);
        ws[0] = Withdrawal(alice, address(usdc), 60);
        ws[1] = Withdrawal(bob, address(usdc), 60);
        data = BatchData.encode(ws, "");
        header = _header(ROOT_1, 1, 0, data);
        _expectCommitRevert(
            header, data, abi.encodeWithSelector(Settlement.LedgerSupplyExceeded.selector, address(usdc), 60, 40)
        );

        // Another token's supply does not count.
        data = BatchData.encode(_one(alice, address(dai), 1), "");
        header = _header(ROOT_1, 1, 0, data);
        _expectCommitRevert(
            header, data, abi.encodeWithSelector(Settlement.LedgerSupplyExceeded.selector, address(dai), 1, 0)
        );

        // A failed commit changed nothing.
        assertEq(settlement.depositsConsumed(), 0, "no deposit consumed");
        assertEq(settlement.ledgerSupply(address(usdc)), 0, "ledger untouched");
        assertEq(settlement.lastBatchNumber(), 0, "no batch");
    }

    // --------------------------------------------------------------- helpers

    function _expectCommitRevert(Settlement.BatchHeader memory header, bytes memory data, bytes memory reason)
        internal
    {
        vm.expectRevert(reason);
        vm.prank(operator);
        settlement.commitBatch(header, data);
    }

    /// @dev `n` deposits of 1 tUSDC base unit, with the fixture's hash model kept up to date.
    function _manyDeposits(uint256 n) internal {
        _mint(usdc, alice, n);
        vm.startPrank(alice);
        usdc.approve(address(settlement), n);
        for (uint256 i = 0; i < n; ++i) {
            settlement.deposit(address(usdc), 1, alice);
            depositHashes.push(_depositHash(depositHashes[depositHashes.length - 1], alice, address(usdc), 1));
        }
        vm.stopPrank();
    }
}
