// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Settlement} from "../src/Settlement.sol";
import {TestStablecoin} from "../src/TestStablecoin.sol";
import {SettlementFixture} from "./utils/SettlementFixture.sol";
import {BatchData, Withdrawal} from "./utils/BatchData.sol";

/// @notice Finalized batches (`isFinalized`, `lastFinalizedBatchNumber`), voiding at exodus,
///         the guardian, and the review's attacks replayed: a draining commit, an unopenable
///         root, and an overdue deposit while batches are still in their window.
contract SettlementVoidingTest is SettlementFixture {
    bytes32 internal constant ROOT_1 = bytes32(uint256(0xaaaa));
    bytes32 internal constant ROOT_BAD = bytes32(uint256(0xbad));

    // ---------------------------------------------------------------- helpers

    function _assertAccounting(TestStablecoin token) internal view {
        address t = address(token);
        assertEq(
            token.balanceOf(address(settlement)),
            settlement.pendingDeposits(t) + settlement.ledgerSupply(t) + settlement.unclaimedWithdrawals(t)
                + settlement.refusedDeposits(t),
            "held == pending + ledger + unclaimed + refused"
        );
    }

    function _exit(address who, TestStablecoin token, uint128 amount, bytes32 root, uint256 seed) internal {
        uint256[8] memory proof = _proof(seed);
        verifier.expectProof(proof, _exitInput(root, who, address(token), amount));
        uint256 before = token.balanceOf(who);
        vm.prank(who);
        settlement.exit(address(token), amount, who, proof);
        assertEq(token.balanceOf(who), before + amount, "exit paid in full");
    }

    function _refund(uint64 index, address recipient) internal {
        vm.prank(recipient);
        settlement.refundDeposit(index, recipient, recipient);
    }

    /// @dev Alice deposits 1,000 tUSDC and bob 500 tDAI; batch 1 credits them (ROOT_1) and
    ///      finalizes.
    function _honestStart() internal {
        _deposit(alice, usdc, 1000, alice);
        _deposit(bob, dai, 500, bob);
        _commit(ROOT_1, _noWithdrawals());
        _warpToFinal(1);
    }

    // ------------------------------------------------------ finalized views

    function test_isFinalized_followsTheDelay() public {
        assertTrue(settlement.isFinalized(0), "genesis at once");
        assertFalse(settlement.isFinalized(1), "uncommitted");
        assertEq(settlement.lastFinalizedBatchNumber(), 0, "genesis");
        _commit(ROOT_1, _noWithdrawals());
        uint64 finalAt = settlement.batch(1).committedAt + FINALIZATION_DELAY;
        assertFalse(settlement.isFinalized(1), "in its window");
        assertEq(settlement.lastFinalizedBatchNumber(), 0, "still genesis");
        vm.warp(finalAt - 1);
        assertFalse(settlement.isFinalized(1), "last second of the window");
        vm.warp(finalAt);
        assertTrue(settlement.isFinalized(1), "window over");
        assertEq(settlement.lastFinalizedBatchNumber(), 1, "batch 1");
        assertEq(settlement.batch(1).depositsConsumed, 0, "depositsConsumed recorded");
    }

    /// @dev Commit times vs. activation time: the binary search matches a linear scan, before
    ///      and after exodus, and exodus voids exactly the batches after it.
    function testFuzz_lastFinalizedBatchNumber_matchesLinearScan(
        uint32[8] memory gaps,
        uint32 waitAfter,
        uint8 count,
        bool byGuardian
    ) public {
        count = uint8(bound(count, 0, 8));
        for (uint256 i = 0; i < count; ++i) {
            vm.warp(block.timestamp + bound(gaps[i], 0, 2 * FINALIZATION_DELAY));
            _deposit(alice, usdc, 10, alice);
            Withdrawal[] memory ws = _one(bob, address(usdc), 3);
            _commit(bytes32(uint256(0x1000 + i)), ws);
        }
        vm.warp(block.timestamp + bound(waitAfter, 0, 2 * FINALIZATION_DELAY));
        uint64 scan = 0;
        for (uint64 b = 1; b <= count; ++b) {
            if (settlement.batch(b).committedAt + FINALIZATION_DELAY <= block.timestamp) scan = b;
        }
        assertEq(settlement.lastFinalizedBatchNumber(), scan, "binary search == scan");

        if (byGuardian) {
            vm.prank(guardian);
            settlement.guardianExodus();
        } else {
            _deposit(stranger, usdc, 1, stranger);
            vm.warp(block.timestamp + DEPOSIT_DEADLINE + 1);
            // The warp finalizes every batch; exodus is against all of them.
            scan = count;
            settlement.activateExodus();
        }
        assertEq(settlement.exodusBatchNumber(), scan, "exodus batch");
        assertEq(settlement.lastFinalizedBatchNumber(), scan, "in exodus");
        for (uint64 b = 0; b <= count; ++b) {
            assertEq(settlement.isFinalized(b), b <= scan, "finalized iff not void");
        }
        // Each void batch withdrew 3 tUSDC: it is back in the ledger supply.
        assertEq(settlement.unclaimedWithdrawals(address(usdc)), 3 * uint256(scan), "unclaimed: finalized only");
        assertEq(settlement.depositsConsumed(), settlement.batch(scan).depositsConsumed, "reset to the void point");
        _assertAccounting(usdc);
    }

    function test_withdrawalCheckpoints_perTokenPaid() public {
        _deposit(alice, usdc, 100, alice);
        _deposit(alice, dai, 100, alice);
        Withdrawal[] memory ws = new Withdrawal[](3);
        ws[0] = Withdrawal(bob, address(usdc), 10);
        ws[1] = Withdrawal(bob, address(dai), 20);
        ws[2] = Withdrawal(carol, address(usdc), 5);
        _commit(ROOT_1, ws);
        _commit(bytes32(uint256(2)), _noWithdrawals());
        _commit(bytes32(uint256(3)), _one(bob, address(usdc), 1));
        Settlement.WithdrawalCheckpoint[] memory u = settlement.withdrawalCheckpoints(address(usdc));
        assertEq(u.length, 2, "usdc checkpoints");
        assertEq(u[0].batchNumber, 1, "usdc 0 batch");
        assertEq(u[0].cumulative, 15, "usdc 0 cumulative");
        assertEq(u[1].batchNumber, 3, "usdc 1 batch");
        assertEq(u[1].cumulative, 16, "usdc 1 cumulative");
        Settlement.WithdrawalCheckpoint[] memory d = settlement.withdrawalCheckpoints(address(dai));
        assertEq(d.length, 1, "dai checkpoints");
        assertEq(d[0].cumulative, 20, "dai cumulative");
    }

    // --------------------------------------------------------------- guardian

    function test_guardianExodus_onlyTheGuardian() public {
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotGuardian.selector, owner));
        vm.prank(owner);
        settlement.guardianExodus();
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotGuardian.selector, operator));
        vm.prank(operator);
        settlement.guardianExodus();

        vm.expectEmit(true, false, false, true, address(settlement));
        emit Settlement.ExodusActivated(guardian, type(uint64).max, type(uint64).max, 0);
        vm.prank(guardian);
        settlement.guardianExodus();
        assertTrue(settlement.exodus(), "exodus");

        vm.expectRevert(Settlement.ExodusActive.selector);
        vm.prank(guardian);
        settlement.guardianExodus();
    }

    function test_guardianExodus_nobodyWithoutAGuardian() public {
        guardian = address(0);
        settlement = _deploy(verifier);
        assertEq(settlement.guardian(), address(0), "no guardian");
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotGuardian.selector, stranger));
        vm.prank(stranger);
        settlement.guardianExodus();
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotGuardian.selector, owner));
        vm.prank(owner);
        settlement.guardianExodus();
    }

    function test_guardian_canDoNothingElse() public {
        bytes memory data = BatchData.encode(_noWithdrawals(), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 0, 0, data);
        vm.startPrank(guardian);
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotOperator.selector, guardian));
        settlement.commitBatch(header, data);
        vm.expectRevert();
        settlement.proposeOperator(guardian);
        vm.expectRevert();
        settlement.proposeToken(stranger);
        vm.expectRevert();
        settlement.cancelOperator();
        vm.stopPrank();
    }

    // ------------------------------------------------- attack 1: the drain

    /// @dev A malicious commit withdraws the whole ledger supply to the attacker; the guardian
    ///      activates exodus inside the window. The claim reverts, every user exits its balance
    ///      of the last finalized root in full, and the deposit the void batch consumed is
    ///      refunded.
    function test_attack_drainVoidedByGuardian() public {
        _honestStart();
        uint64 carolDeposit = _deposit(carol, usdc, 300, carol);
        address attacker = makeAddr("attacker");
        Withdrawal[] memory ws = new Withdrawal[](2);
        ws[0] = Withdrawal(attacker, address(usdc), 1300);
        ws[1] = Withdrawal(attacker, address(dai), 500);
        uint64 b = _commit(ROOT_BAD, ws);
        assertEq(settlement.ledgerSupply(address(usdc)), 0, "drained on paper");
        assertEq(settlement.depositsConsumed(), 3, "carol's deposit consumed");

        vm.warp(block.timestamp + FINALIZATION_DELAY - 1); // still in its window
        vm.expectEmit(true, false, false, true, address(settlement));
        emit Settlement.WithdrawalsVoided(address(usdc), 1300);
        vm.expectEmit(true, false, false, true, address(settlement));
        emit Settlement.WithdrawalsVoided(address(dai), 500);
        vm.expectEmit(false, false, false, true, address(settlement));
        emit Settlement.BatchesVoided(2, 2);
        vm.expectEmit(true, false, false, true, address(settlement));
        emit Settlement.ExodusActivated(guardian, type(uint64).max, type(uint64).max, 1);
        vm.prank(guardian);
        settlement.guardianExodus();

        assertEq(settlement.exodusBatchNumber(), 1, "exodus batch");
        assertEq(settlement.exitRoot(), ROOT_1, "exit root");
        assertEq(settlement.stateRoot(), ROOT_BAD, "stateRoot still records the last commit");
        assertEq(settlement.unclaimedWithdrawals(address(usdc)), 0, "usdc unclaimed voided");
        assertEq(settlement.unclaimedWithdrawals(address(dai)), 0, "dai unclaimed voided");
        assertEq(settlement.ledgerSupply(address(usdc)), 1300, "usdc back");
        assertEq(settlement.ledgerSupply(address(dai)), 500, "dai back");
        assertEq(settlement.depositsConsumed(), 2, "reset to batch 1's prefix");
        assertEq(settlement.voidedDepositsEnd(), 3, "void range end");
        _assertAccounting(usdc);
        _assertAccounting(dai);

        // The claim reverts, however long the attacker waits.
        vm.warp(block.timestamp + 30 days);
        bytes32[] memory path = BatchData.proof(ws, 0);
        vm.expectRevert(abi.encodeWithSelector(Settlement.BatchVoided.selector, b));
        settlement.claimWithdrawal(b, 0, attacker, address(usdc), 1300, path);

        // Deposits the void batch consumed are refundable; earlier ones are not.
        vm.expectRevert(abi.encodeWithSelector(Settlement.DepositAlreadyConsumed.selector, uint64(0)));
        _refund(0, alice);
        vm.expectEmit(true, true, true, true, address(settlement));
        emit Settlement.DepositRefunded(carolDeposit, carol, address(usdc), 300, carol);
        _refund(carolDeposit, carol);
        assertEq(usdc.balanceOf(carol), 300, "carol refunded");
        vm.expectRevert(abi.encodeWithSelector(Settlement.DepositAlreadyRefunded.selector, carolDeposit));
        _refund(carolDeposit, carol);
        _assertAccounting(usdc);

        // Exits against the last finalized root pay in full; one against the void root fails.
        uint256[8] memory badProof = _proof(66);
        verifier.expectProof(badProof, _exitInput(ROOT_BAD, attacker, address(usdc), 1));
        vm.expectRevert(Settlement.InvalidProof.selector);
        vm.prank(attacker);
        settlement.exit(address(usdc), 1, attacker, badProof);

        _exit(alice, usdc, 1000, ROOT_1, 1);
        _exit(bob, dai, 500, ROOT_1, 2);
        assertEq(usdc.balanceOf(address(settlement)), 0, "usdc emptied to its owners");
        assertEq(dai.balanceOf(address(settlement)), 0, "dai emptied to its owners");
        assertEq(usdc.balanceOf(attacker) + dai.balanceOf(attacker), 0, "attacker got nothing");
        _assertAccounting(usdc);
        _assertAccounting(dai);
    }

    /// @dev A finalized batch's withdrawals survive exodus; only the void batch's go back.
    function test_exodus_keepsFinalizedWithdrawalsClaimable() public {
        _deposit(alice, usdc, 1000, alice);
        uint64 good = _commit(ROOT_1, _one(bob, address(usdc), 100));
        _warpToFinal(good);
        uint64 bad = _commit(ROOT_BAD, _one(carol, address(usdc), 900));
        vm.prank(guardian);
        settlement.guardianExodus();
        assertEq(settlement.unclaimedWithdrawals(address(usdc)), 100, "finalized withdrawal kept");
        assertEq(settlement.ledgerSupply(address(usdc)), 900, "void withdrawal back");
        _claim(good, 0);
        assertEq(usdc.balanceOf(bob), 100, "bob claimed");
        Withdrawal[] memory ws = _withdrawalsOf(bad);
        vm.expectRevert(abi.encodeWithSelector(Settlement.BatchVoided.selector, bad));
        settlement.claimWithdrawal(bad, 0, carol, address(usdc), 900, BatchData.proof(ws, 0));
        _assertAccounting(usdc);
    }

    /// @dev A deposit a void batch refused is refunded from the refused pool as before; the
    ///      accounting holds.
    function test_exodus_refusedDepositOfVoidBatch() public {
        _honestStart();
        uint64 index = _deposit(carol, usdc, 70, carol);
        uint64[] memory refused = new uint64[](1);
        refused[0] = index;
        bytes memory data = BatchData.encodeRefused(_noWithdrawals(), refused, "body");
        Settlement.BatchHeader memory header = _header(ROOT_BAD, index + 1, 0, data);
        vm.prank(operator);
        settlement.commitBatch(header, data);
        batchWithdrawals.push();
        vm.prank(guardian);
        settlement.guardianExodus();
        assertEq(settlement.refusedDeposits(address(usdc)), 70, "still refused");
        _refund(index, carol);
        assertEq(usdc.balanceOf(carol), 70, "refunded");
        assertEq(settlement.refusedDeposits(address(usdc)), 0, "refused pool");
        assertEq(settlement.ledgerSupply(address(usdc)), 1000, "ledger untouched");
        _assertAccounting(usdc);
    }

    // -------------------------------------------- attack 2: an unopenable root

    /// @dev The operator commits a root nobody can open (no exit proof can ever be built
    ///      against it) and disappears. The guardian voids it: exits prove against the last
    ///      finalized root.
    function test_attack_brickingRootVoidedByGuardian() public {
        _honestStart();
        _commit(ROOT_BAD, _noWithdrawals());
        vm.prank(guardian);
        settlement.guardianExodus();
        assertEq(settlement.exitRoot(), ROOT_1, "exit root");
        _exit(alice, usdc, 1000, ROOT_1, 3);
        _exit(bob, dai, 500, ROOT_1, 4);
        assertEq(usdc.balanceOf(address(settlement)) + dai.balanceOf(address(settlement)), 0, "all exited");
    }

    // --------------------------- attack 4: an overdue deposit, batches in window

    /// @dev Anyone activates exodus on an overdue deposit right after the operator committed a
    ///      batch (withdrawals, one deposit consumed) that is still in its window: it is void.
    function test_activateExodus_onOverdueDepositVoidsBatchesInWindow() public {
        _honestStart();
        uint64 d1 = _deposit(carol, usdc, 40, carol);
        uint64 d2 = _deposit(carol, usdc, 60, carol);
        vm.warp(block.timestamp + DEPOSIT_DEADLINE + 1);
        // Batch 2 consumes d1 only and pays bob; d2 stays overdue.
        Withdrawal[] memory ws = _one(bob, address(usdc), 500);
        uint64 b = _commitPrefix(ROOT_BAD, d1 + 1, 0, ws, "");

        vm.expectEmit(false, false, false, true, address(settlement));
        emit Settlement.BatchesVoided(2, 2);
        vm.expectEmit(true, false, false, true, address(settlement));
        emit Settlement.ExodusActivated(stranger, d2, type(uint64).max, 1);
        vm.prank(stranger);
        settlement.activateExodus();

        assertEq(settlement.exodusBatchNumber(), 1, "batch 2 void");
        assertFalse(settlement.isFinalized(b), "void batch never finalizes");
        vm.warp(block.timestamp + FINALIZATION_DELAY);
        assertFalse(settlement.isFinalized(b), "not even later");
        assertEq(settlement.unclaimedWithdrawals(address(usdc)), 0, "voided");
        assertEq(settlement.depositsConsumed(), 2, "reset");
        vm.expectRevert(abi.encodeWithSelector(Settlement.BatchVoided.selector, b));
        _claim(b, 0);

        // d1 (consumed by the void batch) is paid from the ledger supply, d2 from pending.
        _refund(d1, carol);
        assertEq(settlement.ledgerSupply(address(usdc)), 1000, "ledger after d1");
        _refund(d2, carol);
        assertEq(settlement.pendingDeposits(address(usdc)), 0, "pending after d2");
        assertEq(usdc.balanceOf(carol), 100, "carol refunded both");
        _exit(alice, usdc, 1000, ROOT_1, 5);
        _assertAccounting(usdc);
        assertEq(usdc.balanceOf(address(settlement)), 0, "emptied");
    }

    function test_activateExodus_withoutVoidBatchesEmitsNoBatchesVoided() public {
        _honestStart();
        _deposit(carol, usdc, 40, carol);
        vm.warp(block.timestamp + DEPOSIT_DEADLINE + 1);
        vm.recordLogs();
        settlement.activateExodus();
        assertEq(vm.getRecordedLogs().length, 1, "only ExodusActivated");
        assertEq(settlement.exodusBatchNumber(), 1, "exodus batch");
        assertEq(settlement.voidedDepositsEnd(), 2, "no void range beyond depositsConsumed");
        assertEq(settlement.depositsConsumed(), 2, "unchanged");
    }

    // ----------------------------------------------------------- attestations

    function test_verifyAttestation_refusesUnfinalizedAndVoidBatches() public {
        _honestStart();
        uint64 b = _commit(ROOT_BAD, _noWithdrawals());
        uint256[8] memory proof = _proof(7);
        uint64 finalAt = settlement.batch(b).committedAt + FINALIZATION_DELAY;
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotFinalized.selector, finalAt));
        settlement.verifyAttestation(b, 0, bob, address(dai), 1, 42, proof);
        // Genesis and finalized batches serve.
        verifier.expectProof(proof, [uint256(ROOT_1), uint256(uint160(bob)), uint256(uint160(address(dai))), 1, 42]);
        assertTrue(settlement.verifyAttestation(1, 0, bob, address(dai), 1, 42, proof), "finalized batch");
        assertFalse(settlement.verifyAttestation(0, 0, bob, address(dai), 1, 42, proof), "genesis: other root");

        vm.prank(guardian);
        settlement.guardianExodus();
        vm.warp(finalAt);
        vm.expectRevert(abi.encodeWithSelector(Settlement.BatchVoided.selector, b));
        settlement.verifyAttestation(b, 0, bob, address(dai), 1, 42, proof);
        assertTrue(settlement.verifyAttestation(1, 1, bob, address(dai), 1, 42, proof), "exodus batch serves");
        vm.expectRevert(abi.encodeWithSelector(Settlement.BatchTooOld.selector, uint64(1), uint64(2)));
        settlement.verifyAttestation(1, 2, bob, address(dai), 1, 42, proof);
    }
}
