// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Settlement} from "../src/Settlement.sol";
import {TestStablecoin} from "../src/TestStablecoin.sol";
import {SettlementFixture} from "./utils/SettlementFixture.sol";
import {BatchData, Withdrawal} from "./utils/BatchData.sol";

/// @notice Property tests over random deposits, headers, data and withdrawal lists.
contract SettlementFuzzTest is SettlementFixture {
    bytes32 internal constant ROOT_1 = bytes32(uint256(0x1111));

    // -------------------------------------------------------------- deposits

    function testFuzz_deposit_anyAmountAndRecipient(uint256 amount, address recipient, bool useDai) public {
        amount = bound(amount, 1, 2 ** 96 - 1);
        vm.assume(recipient != address(0));
        TestStablecoin token = useDai ? dai : usdc;
        uint64 index = _deposit(alice, token, amount, recipient);

        Settlement.DepositEntry memory entry = settlement.depositEntry(index);
        assertEq(entry.amount, amount, "amount");
        assertEq(entry.token, address(token), "token");
        assertEq(
            entry.rollingHash,
            keccak256(abi.encodePacked(bytes32(0), recipient, address(token), uint128(amount))),
            "rolling hash"
        );
        assertEq(settlement.pendingDeposits(address(token)), amount, "pending");
        assertEq(token.balanceOf(address(settlement)), amount, "held");
    }

    function testFuzz_deposit_revertsAboveLedgerBound(uint256 amount) public {
        amount = bound(amount, 2 ** 96, type(uint256).max);
        _mint(dai, alice, amount);
        vm.prank(alice);
        dai.approve(address(settlement), amount);
        vm.expectRevert(abi.encodeWithSelector(Settlement.DepositTooLarge.selector, amount, 2 ** 96 - 1));
        vm.prank(alice);
        settlement.deposit(address(dai), amount, alice);
    }

    function testFuzz_deposit_sequenceChainsHashes(uint256 seed, uint8 count) public {
        count = uint8(bound(count, 1, 12));
        bytes32 expected = bytes32(0);
        uint256 usdcTotal;
        for (uint256 i = 0; i < count; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            address recipient = address(uint160(r | 1));
            bool isDai = (r >> 200) & 1 == 1;
            uint256 amount = bound(r >> 128, 1, 1e28);
            _deposit(bob, isDai ? dai : usdc, amount, recipient);
            expected =
                keccak256(abi.encodePacked(expected, recipient, isDai ? address(dai) : address(usdc), uint128(amount)));
            assertEq(settlement.depositHashAt(uint64(i + 1)), expected, "prefix hash");
            if (!isDai) usdcTotal += amount;
        }
        assertEq(settlement.depositCount(), count, "count");
        assertEq(settlement.pendingDeposits(address(usdc)), usdcTotal, "usdc pending");
    }

    // ----------------------------------------------------- malformed headers

    function testFuzz_commitBatch_rejectsWrongBatchNumber(uint64 batchNumber, uint8 committed) public {
        committed = uint8(bound(committed, 0, 3));
        for (uint256 i = 0; i < committed; ++i) {
            _commit(bytes32(i + 1), _noWithdrawals());
        }
        vm.assume(batchNumber != committed + 1);
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 0, 0, data);
        header.batchNumber = batchNumber;
        vm.expectRevert(abi.encodeWithSelector(Settlement.BadBatchNumber.selector, committed + 1, batchNumber));
        vm.prank(operator);
        settlement.commitBatch(header, data);
    }

    function testFuzz_commitBatch_rejectsWrongPrevRoot(bytes32 prevRoot) public {
        _commit(ROOT_1, _noWithdrawals());
        vm.assume(prevRoot != ROOT_1);
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(bytes32(uint256(2)), 0, 0, data);
        header.prevRoot = prevRoot;
        vm.expectRevert(abi.encodeWithSelector(Settlement.PrevRootMismatch.selector, ROOT_1, prevRoot));
        vm.prank(operator);
        settlement.commitBatch(header, data);
    }

    function testFuzz_commitBatch_rootMustBeFieldElement(uint256 root) public {
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(bytes32(root), 0, 0, data);
        if (root >= R) {
            vm.expectRevert(abi.encodeWithSelector(Settlement.RootNotInField.selector, bytes32(root)));
        }
        vm.prank(operator);
        settlement.commitBatch(header, data);
        assertEq(settlement.stateRoot(), root < R ? bytes32(root) : GENESIS_ROOT, "root");
    }

    function testFuzz_commitBatch_rejectsWrongDataHash(bytes memory data, bytes32 dataHash) public {
        vm.assume(dataHash != keccak256(data));
        Settlement.BatchHeader memory header = _header(ROOT_1, 0, 0, data);
        header.dataHash = dataHash;
        vm.expectRevert(abi.encodeWithSelector(Settlement.DataHashMismatch.selector, keccak256(data), dataHash));
        vm.prank(operator);
        settlement.commitBatch(header, data);
    }

    /// @dev With `queued` deposits of which `consumed` are already in the ledger, a header
    ///      naming prefix `target` with hash `hash` commits iff the prefix is in range and
    ///      the hash is the queue's hash at that prefix.
    function testFuzz_commitBatch_depositPrefix(
        uint8 queued,
        uint8 consumed,
        uint64 target,
        bytes32 hash,
        bool honestHash
    ) public {
        queued = uint8(bound(queued, 0, 6));
        consumed = uint8(bound(consumed, 0, queued));
        for (uint256 i = 0; i < queued; ++i) {
            _deposit(alice, usdc, i + 1, alice);
        }
        if (consumed > 0) _commitPrefix(ROOT_1, consumed, 0, _noWithdrawals(), "");
        target = uint64(bound(target, 0, uint256(queued) + 2));
        bool inRange = target >= consumed && target <= queued;
        if (honestHash && inRange) hash = depositHashes[target];

        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 0, 0, data);
        header.depositsConsumed = target;
        header.depositsHash = hash;
        if (!inRange) {
            vm.expectRevert(
                abi.encodeWithSelector(Settlement.DepositPrefixOutOfRange.selector, consumed, target, queued)
            );
        } else if (hash != depositHashes[target]) {
            vm.expectRevert(
                abi.encodeWithSelector(Settlement.DepositHashMismatch.selector, depositHashes[target], hash)
            );
        }
        vm.prank(operator);
        settlement.commitBatch(header, data);
        bool committed = inRange && hash == depositHashes[target];
        assertEq(settlement.depositsConsumed(), committed ? target : consumed, "depositsConsumed");
    }

    function testFuzz_commitBatch_forcedPrefix(uint8 queued, uint64 target, bytes32 hash, bool honestHash) public {
        queued = uint8(bound(queued, 0, 6));
        for (uint256 i = 0; i < queued; ++i) {
            _requestForced(i % 2 == 0 ? alice : bob, i % 3 == 0 ? address(dai) : address(usdc));
        }
        target = uint64(bound(target, 0, uint256(queued) + 2));
        bool inRange = target <= queued;
        if (honestHash && inRange) hash = forcedHashes[target];

        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 0, 0, data);
        header.forcedConsumed = target;
        header.forcedHash = hash;
        if (!inRange) {
            vm.expectRevert(abi.encodeWithSelector(Settlement.ForcedPrefixOutOfRange.selector, 0, target, queued));
        } else if (hash != forcedHashes[target]) {
            vm.expectRevert(abi.encodeWithSelector(Settlement.ForcedHashMismatch.selector, forcedHashes[target], hash));
        }
        vm.prank(operator);
        settlement.commitBatch(header, data);
    }

    /// @dev Arbitrary bytes with an otherwise valid header either commit or fail with one
    ///      of the data errors; never a panic or an unexpected error.
    function testFuzz_commitBatch_arbitraryDataFailsCleanly(bytes memory data) public {
        _deposit(alice, usdc, 1e12, alice);
        _commit(ROOT_1, _noWithdrawals());
        Settlement.BatchHeader memory header = _header(bytes32(uint256(2)), 1, 0, data);
        vm.prank(operator);
        try settlement.commitBatch(header, data) {
            assertEq(uint8(data[0]), 3, "only version 3 commits");
        } catch (bytes memory reason) {
            bytes4 selector = bytes4(reason);
            assertTrue(
                selector == Settlement.MalformedData.selector || selector == Settlement.UnsupportedDataVersion.selector
                    || selector == Settlement.TooManyWithdrawals.selector || selector == Settlement.ZeroAddress.selector
                    || selector == Settlement.ZeroAmount.selector
                    || selector == Settlement.LedgerSupplyExceeded.selector
                    || selector == Settlement.TooManyRefusedDeposits.selector
                    || selector == Settlement.RefusedDepositOutOfRange.selector
                    || selector == Settlement.RefusedDepositsNotIncreasing.selector,
                "unexpected revert"
            );
        }
    }

    /// @dev Near-valid data (mostly version 3, small counts, withdrawals of the funded
    ///      token, 0-2 changed-leaf records after them, the whole cut short at random)
    ///      checked against a reference parser written here: the contract commits exactly
    ///      when the parser accepts, and otherwise reverts with the parser's error.
    function testFuzz_commitBatch_dataMatchesReferenceParser(
        uint8 version,
        uint32 count,
        uint256 seed,
        int8 lengthDelta,
        uint8 mode
    ) public {
        uint256 funded = 1000;
        _deposit(alice, usdc, funded, alice);
        _commit(ROOT_1, _noWithdrawals());

        if (mode % 4 != 0) version = BatchData.VERSION; // mostly the right version
        if (mode % 8 != 1) count = uint32(bound(count, 0, 6)); // mostly small counts
        uint256 entries = count > 6 ? 6 : count;
        Withdrawal[] memory ws = new Withdrawal[](entries);
        for (uint256 i = 0; i < entries; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            // Zero recipients, zero amounts, other tokens and large amounts now and then.
            address recipient = r % 11 == 0 ? address(0) : address(uint160(r >> 96));
            address token = r % 13 == 0 ? address(dai) : address(usdc);
            uint128 amount = uint128(r % 17 == 0 ? 0 : bound(r >> 32, 1, funded / 2));
            ws[i] = Withdrawal(recipient, token, amount);
        }
        bytes memory data = BatchData.encodeRaw(version, count, ws, BatchData.leafUpdates(seed % 3, bytes32(seed)));
        // Cut or keep the tail.
        if (lengthDelta < 0) {
            uint256 cut = uint256(-int256(lengthDelta)) % (data.length + 1);
            assembly ("memory-safe") {
                mstore(data, sub(mload(data), cut))
            }
        }

        bytes memory expected = _referenceParse(data, funded);
        Settlement.BatchHeader memory header = _header(bytes32(uint256(2)), 1, 0, data);
        if (expected.length != 0) vm.expectRevert(expected);
        vm.prank(operator);
        settlement.commitBatch(header, data);
        assertEq(settlement.lastBatchNumber(), expected.length == 0 ? 2 : 1, "committed iff parser accepts");
    }

    /// @dev The revert the contract must raise for `data`, or empty bytes if it must commit.
    function _referenceParse(bytes memory data, uint256 usdcLedger) internal view returns (bytes memory) {
        if (data.length < 5) return abi.encodeWithSelector(Settlement.MalformedData.selector);
        if (uint8(data[0]) != 3) {
            return abi.encodeWithSelector(Settlement.UnsupportedDataVersion.selector, uint8(data[0]));
        }
        uint256 n = uint32(bytes4(bytes.concat(data[1], data[2], data[3], data[4])));
        if (n > 1024) return abi.encodeWithSelector(Settlement.TooManyWithdrawals.selector, n);
        if (data.length < 5 + n * 56 + 4) return abi.encodeWithSelector(Settlement.MalformedData.selector);
        uint256 r = 5 + n * 56;
        uint256 m = uint32(bytes4(bytes.concat(data[r], data[r + 1], data[r + 2], data[r + 3])));
        if (m > 1024) return abi.encodeWithSelector(Settlement.TooManyRefusedDeposits.selector, m);
        if (data.length < r + 4 + m * 8) return abi.encodeWithSelector(Settlement.MalformedData.selector);
        // This batch consumes no deposit (the queue's one deposit went in batch 1).
        if (m > 0) {
            uint64 first = uint64(bytes8(_slice(data, r + 4, 8)));
            return abi.encodeWithSelector(Settlement.RefusedDepositOutOfRange.selector, first, 1, 1);
        }
        uint256 daiLedger = 0;
        for (uint256 i = 0; i < n; ++i) {
            uint256 o = 5 + i * 56;
            address recipient = address(bytes20(_slice(data, o, 20)));
            address token = address(bytes20(_slice(data, o + 20, 20)));
            uint128 amount = uint128(bytes16(_slice(data, o + 40, 16)));
            if (recipient == address(0)) return abi.encodeWithSelector(Settlement.ZeroAddress.selector);
            if (amount == 0) return abi.encodeWithSelector(Settlement.ZeroAmount.selector);
            uint256 available = token == address(usdc) ? usdcLedger : token == address(dai) ? daiLedger : 0;
            if (amount > available) {
                return abi.encodeWithSelector(Settlement.LedgerSupplyExceeded.selector, token, amount, available);
            }
            if (token == address(usdc)) usdcLedger -= amount;
        }
        return "";
    }

    function _slice(bytes memory data, uint256 offset, uint256 length) internal pure returns (bytes memory out) {
        out = new bytes(length);
        for (uint256 i = 0; i < length; ++i) {
            out[i] = data[offset + i];
        }
    }

    // ------------------------------------------------- withdrawal round trip

    /// @dev Random withdrawal lists commit, every entry claims with a proof from the
    ///      independent tree, in random order, and nothing can be claimed twice.
    function testFuzz_withdrawals_roundTripThroughCommitAndClaim(uint256 seed, uint16 count) public {
        count = uint16(bound(count, 1, 40));
        address[4] memory people = [alice, bob, carol, stranger];
        Withdrawal[] memory ws = new Withdrawal[](count);
        uint256[2] memory totals;
        for (uint256 i = 0; i < count; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            uint256 t = r & 1;
            uint128 amount = uint128(bound(r >> 8, 1, 1e24));
            ws[i] = Withdrawal(
                (r >> 200) % 5 == 4 ? address(uint160(r >> 1 | 1)) : people[(r >> 200) % 5 % 4],
                t == 0 ? address(usdc) : address(dai),
                amount
            );
            totals[t] += amount;
        }
        // The ledger holds exactly what leaves, plus a remainder that stays.
        _deposit(alice, usdc, totals[0] + 7, alice);
        _deposit(alice, dai, totals[1] + 7, alice);
        uint64 b = _commit(ROOT_1, ws);
        assertEq(settlement.batch(b).withdrawalsRoot, BatchData.root(ws), "root");
        assertEq(settlement.unclaimedWithdrawals(address(usdc)), totals[0], "usdc unclaimed");
        assertEq(settlement.ledgerSupply(address(usdc)), 7, "usdc ledger");

        _warpToFinal(b);
        uint256 start = seed % count;
        for (uint256 k = 0; k < count; ++k) {
            uint32 i = uint32((start + k * 7) % count);
            if (settlement.isClaimed(b, i)) continue; // 7 and count may share factors
            TestStablecoin token = ws[i].token == address(usdc) ? usdc : dai;
            uint256 before = token.balanceOf(ws[i].recipient);
            _claim(b, i);
            assertEq(token.balanceOf(ws[i].recipient), before + ws[i].amount, "paid");
        }
        for (uint32 i = 0; i < count; ++i) {
            if (!settlement.isClaimed(b, i)) _claim(b, i);
        }
        assertEq(settlement.unclaimedWithdrawals(address(usdc)), 0, "usdc drained");
        assertEq(settlement.unclaimedWithdrawals(address(dai)), 0, "dai drained");
        assertEq(usdc.balanceOf(address(settlement)), 7, "usdc left = ledger");
        assertEq(dai.balanceOf(address(settlement)), 7, "dai left = ledger");

        uint32 again = uint32(seed % count);
        bytes32[] memory path = BatchData.proof(ws, again);
        vm.expectRevert(abi.encodeWithSelector(Settlement.AlreadyClaimed.selector, b, again));
        settlement.claimWithdrawal(b, again, ws[again].recipient, ws[again].token, ws[again].amount, path);
    }

    function testFuzz_claim_doubleClaimReverts(uint16 count, uint16 index) public {
        count = uint16(bound(count, 1, 64));
        index = uint16(bound(index, 0, count - 1));
        Withdrawal[] memory ws = new Withdrawal[](count);
        for (uint256 i = 0; i < count; ++i) {
            ws[i] = Withdrawal(bob, address(usdc), uint128(i + 1));
        }
        _deposit(alice, usdc, uint256(count) * (count + 1) / 2, alice);
        uint64 b = _commit(ROOT_1, ws);
        _warpToFinal(b);
        _claim(b, index);
        vm.expectRevert(abi.encodeWithSelector(Settlement.AlreadyClaimed.selector, b, uint32(index)));
        _claim(b, index);
        assertEq(usdc.balanceOf(bob), uint256(index) + 1, "paid once");
    }

    function testFuzz_claim_tamperedClaimReverts(uint16 count, uint16 index, uint128 amount, address recipient) public {
        count = uint16(bound(count, 2, 64));
        index = uint16(bound(index, 0, count - 1));
        Withdrawal[] memory ws = new Withdrawal[](count);
        for (uint256 i = 0; i < count; ++i) {
            ws[i] = Withdrawal(bob, address(usdc), uint128(i + 1));
        }
        vm.assume(amount != ws[index].amount || recipient != bob);
        _deposit(alice, usdc, uint256(count) * (count + 1) / 2, alice);
        uint64 b = _commit(ROOT_1, ws);
        _warpToFinal(b);
        bytes32[] memory path = BatchData.proof(ws, index);
        vm.expectRevert(Settlement.InvalidMerkleProof.selector);
        settlement.claimWithdrawal(b, index, recipient, address(usdc), amount, path);
    }

    function testFuzz_claim_notBeforeFinalization(uint256 elapsed) public {
        elapsed = bound(elapsed, 0, FINALIZATION_DELAY - 1);
        _deposit(alice, usdc, 10, alice);
        uint64 b = _commit(ROOT_1, _one(bob, address(usdc), 10));
        vm.warp(block.timestamp + elapsed);
        vm.expectRevert(
            abi.encodeWithSelector(Settlement.NotFinalized.selector, uint64(START_TIME + FINALIZATION_DELAY))
        );
        settlement.claimWithdrawal(b, 0, bob, address(usdc), 10, new bytes32[](0));
    }

    // ----------------------------------------------------------------- exodus

    function testFuzz_exit_acceptsExactlyTheBoundInput(
        address who,
        uint128 amount,
        uint128 claimed,
        address to,
        bool otherRecipient
    ) public {
        vm.assume(who != address(0) && who != address(settlement) && who != address(vm));
        vm.assume(to != address(0) && to != address(settlement) && to != address(vm));
        // The recipient the caller names: the proven one, or another (a different context).
        address named = otherRecipient ? address(uint160(to) ^ 1) : to;
        vm.assume(named != address(0) && named != address(settlement) && named != address(vm));
        uint256 supply = 1e28;
        amount = uint128(bound(amount, 1, supply));
        _deposit(alice, dai, supply, alice);
        _commit(ROOT_1, _noWithdrawals());
        _enterExodus();

        uint256[8] memory proof = _proof(uint256(uint160(who)));
        verifier.expectProof(proof, _exitInputTo(ROOT_1, who, address(dai), amount, to));
        if (claimed == 0) {
            vm.expectRevert(Settlement.ZeroAmount.selector);
        } else if (claimed != amount || named != to) {
            vm.expectRevert(Settlement.InvalidProof.selector);
        }
        vm.prank(who);
        settlement.exit(address(dai), claimed, named, proof);
        bool paid = claimed == amount && named == to;
        assertEq(dai.balanceOf(named), paid ? amount : 0, "paid to the proven recipient iff proven");
        assertEq(settlement.ledgerSupply(address(dai)), paid ? supply - amount : supply, "ledger");
        assertEq(settlement.exited(who, address(dai)), paid, "exited");
    }

    function testFuzz_refundDeposit_onlyToRecipient(address claimed) public {
        uint64 i = _deposit(alice, usdc, 99, bob);
        vm.warp(block.timestamp + DEPOSIT_DEADLINE + 1);
        settlement.activateExodus();
        if (claimed == address(0)) {
            vm.expectRevert(abi.encodeWithSelector(Settlement.ZeroAddress.selector));
        } else if (claimed != bob) {
            vm.expectRevert(abi.encodeWithSelector(Settlement.DepositMismatch.selector, i));
        }
        settlement.refundDeposit(i, claimed, claimed);
        assertEq(usdc.balanceOf(bob), claimed == bob ? 99 : 0, "refunded iff recipient matches");
    }
}
