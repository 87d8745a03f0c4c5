// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Settlement} from "../src/Settlement.sol";
import {TestStablecoin} from "../src/TestStablecoin.sol";
import {SettlementFixture} from "./utils/SettlementFixture.sol";
import {Withdrawal} from "./utils/BatchData.sol";
import {Vm} from "./utils/Vm.sol";

/// @notice The per-token outflow limit (design section 9: "a per-token outflow limit per
///         period slows a drain"): a batch whose withdrawals take a token's outflow in the
///         current window past `outflowLimitBps` of the token's ledger supply at the window's
///         start finalizes `outflowDelay` later, and no batch finalizes before an earlier one.
///         The fixture's deployment here has the deploy tool's defaults: 10% per day, 7 days.
contract SettlementOutflowTest is SettlementFixture {
    uint16 internal constant LIMIT_BPS = 1_000;
    uint64 internal constant PERIOD = 1 days;
    uint64 internal constant OUTFLOW_DELAY = 7 days;
    uint128 internal constant SUPPLY = 1_000_000e6;

    address internal attacker;

    function _outflowConfig() internal pure override returns (Settlement.OutflowConfig memory) {
        return Settlement.OutflowConfig({limitBps: LIMIT_BPS, period: PERIOD, delay: OUTFLOW_DELAY});
    }

    function setUp() public override {
        super.setUp();
        attacker = makeAddr("attacker");
    }

    // ---------------------------------------------------------------- helpers

    /// @notice Warps to the first second of the next outflow window.
    function _warpToNextWindow() internal {
        vm.warp((block.timestamp / PERIOD + 1) * PERIOD);
    }

    /// @dev Alice deposits `SUPPLY` tUSDC and 1,000 tDAI, batch 1 credits them, and time moves
    ///      to the next window, whose limits are 10% of that: 100,000 tUSDC and 100 tDAI.
    function _funded() internal {
        _deposit(alice, usdc, SUPPLY, alice);
        _deposit(alice, dai, 1_000e18, alice);
        _commit(bytes32(uint256(1)), _noWithdrawals());
        _warpToNextWindow();
    }

    function _limit(uint256 supply) internal pure returns (uint256) {
        return supply * LIMIT_BPS / 10_000;
    }

    // ------------------------------------------------------------ constructor

    function test_constructor_recordsTheOutflowConfig() public view {
        assertEq(settlement.outflowLimitBps(), LIMIT_BPS, "limit");
        assertEq(settlement.outflowPeriod(), PERIOD, "period");
        assertEq(settlement.outflowDelay(), OUTFLOW_DELAY, "delay");
    }

    function _deployOutflow(Settlement.OutflowConfig memory outflow, bool allowShort) internal returns (Settlement) {
        return new Settlement(
            owner,
            operator,
            guardian,
            receiptSigner,
            verifier,
            GENESIS_ROOT,
            new address[](0),
            Settlement.Periods(FINALIZATION_DELAY, DEPOSIT_DEADLINE, FORCED_DEADLINE, allowShort),
            outflow
        );
    }

    function test_constructor_checksTheOutflowConfig() public {
        vm.expectRevert(abi.encodeWithSelector(Settlement.OutflowLimitTooHigh.selector, uint16(10_001)));
        _deployOutflow(Settlement.OutflowConfig(10_001, PERIOD, OUTFLOW_DELAY), false);
        // Period and delay: at least one finalization window, at most MAX_PERIOD.
        vm.expectRevert(
            abi.encodeWithSelector(Settlement.PeriodTooShort.selector, FINALIZATION_DELAY - 1, FINALIZATION_DELAY)
        );
        _deployOutflow(Settlement.OutflowConfig(LIMIT_BPS, FINALIZATION_DELAY - 1, OUTFLOW_DELAY), false);
        vm.expectRevert(
            abi.encodeWithSelector(Settlement.PeriodTooShort.selector, FINALIZATION_DELAY - 1, FINALIZATION_DELAY)
        );
        _deployOutflow(Settlement.OutflowConfig(LIMIT_BPS, PERIOD, FINALIZATION_DELAY - 1), false);
        vm.expectRevert(abi.encodeWithSelector(Settlement.PeriodTooLong.selector, uint64(365 days + 1)));
        _deployOutflow(Settlement.OutflowConfig(LIMIT_BPS, 365 days + 1, OUTFLOW_DELAY), false);
        vm.expectRevert(abi.encodeWithSelector(Settlement.PeriodTooLong.selector, uint64(365 days + 1)));
        _deployOutflow(Settlement.OutflowConfig(LIMIT_BPS, PERIOD, 365 days + 1), false);
        // The bounds themselves are accepted.
        Settlement s = _deployOutflow(Settlement.OutflowConfig(10_000, FINALIZATION_DELAY, FINALIZATION_DELAY), false);
        assertEq(s.outflowDelay(), FINALIZATION_DELAY, "delay == finalization delay");
        _deployOutflow(Settlement.OutflowConfig(1, 365 days, 365 days), false);
    }

    /// @dev No limit (0) only where short periods are allowed: a test deployment.
    function test_constructor_noLimitOnlyForTestDeployments() public {
        Settlement.OutflowConfig memory none = Settlement.OutflowConfig(0, PERIOD, OUTFLOW_DELAY);
        vm.chainId(1);
        vm.expectRevert(Settlement.OutflowLimitRequired.selector);
        _deployOutflow(none, false);
        assertEq(_deployOutflow(none, true).outflowLimitBps(), 0, "allowShortPeriods waives it");
        vm.chainId(31337);
        Settlement s = _deployOutflow(none, false);
        assertEq(s.outflowAllowance(address(usdc)), type(uint256).max, "no limit: unlimited allowance");
    }

    // ---------------------------------------------------------------- the drain

    /// @dev A stolen operator key commits a batch paying most of the ledger supply to the
    ///      attacker. It is over the limit, so it finalizes `outflowDelay` after the usual
    ///      delay; the guardian, waking up days later (long after `finalizationDelay`), still
    ///      voids it, and the attacker's withdrawals are never claimable while alice exits in full.
    function test_drainWithStolenOperatorKey_isDelayedAndVoidedByTheGuardian() public {
        _funded();
        Withdrawal[] memory ws = new Withdrawal[](2);
        ws[0] = Withdrawal(attacker, address(usdc), SUPPLY * 9 / 10);
        ws[1] = Withdrawal(attacker, address(usdc), SUPPLY / 10 - 1);
        uint64 finalizedAt = uint64(block.timestamp) + FINALIZATION_DELAY + OUTFLOW_DELAY;
        vm.expectEmit(true, true, false, true, address(settlement));
        emit Settlement.OutflowDelayed(2, address(usdc), SUPPLY - 1, _limit(SUPPLY), finalizedAt);
        uint64 b = _commit(bytes32(uint256(0xbad)), ws);
        assertEq(settlement.batch(b).finalizedAt, finalizedAt, "finalizedAt extended");
        assertEq(settlement.outflowAllowance(address(usdc)), 0, "allowance used up");

        // The usual window is over: not final, not claimable.
        vm.warp(block.timestamp + FINALIZATION_DELAY + 1);
        assertFalse(settlement.isFinalized(b), "not final after finalizationDelay");
        assertEq(settlement.lastFinalizedBatchNumber(), 1, "last finalized");
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotFinalized.selector, finalizedAt));
        _claim(b, 0);

        // Three days later the guardian stops the contract.
        vm.warp(block.timestamp + 3 days);
        vm.expectEmit(true, false, false, true, address(settlement));
        emit Settlement.BatchesVoided(b, b);
        vm.prank(guardian);
        settlement.guardianExodus();
        assertEq(settlement.exodusBatchNumber(), 1, "exodus against batch 1");
        assertEq(settlement.ledgerSupply(address(usdc)), SUPPLY, "withdrawals back in the ledger");
        assertEq(settlement.unclaimedWithdrawals(address(usdc)), 0, "nothing unclaimed");

        // Never claimable, not even after the extended window.
        vm.warp(finalizedAt + 1);
        assertFalse(settlement.isFinalized(b), "void stays void");
        vm.expectRevert(abi.encodeWithSelector(Settlement.BatchVoided.selector, b));
        _claim(b, 0);
        vm.expectRevert(abi.encodeWithSelector(Settlement.BatchVoided.selector, b));
        _claim(b, 1);

        // Alice exits her whole balance of batch 1's root.
        uint256[8] memory proof = _proof(1);
        verifier.expectProof(proof, _exitInput(bytes32(uint256(1)), alice, address(usdc), SUPPLY));
        vm.prank(alice);
        settlement.exit(address(usdc), SUPPLY, alice, proof);
        assertEq(usdc.balanceOf(alice), SUPPLY, "alice paid in full");
        assertEq(usdc.balanceOf(attacker), 0, "attacker paid nothing");
    }

    /// @dev The same drain split over many small batches: only the first `LIMIT_BPS` pass
    ///      undelayed, so the guardian has `outflowDelay` to react to the rest.
    function test_drainInSmallBatches_isDelayedOnceOverTheLimit() public {
        _funded();
        uint128 step = SUPPLY / 40; // 2.5% each
        for (uint64 i = 0; i < 8; ++i) {
            uint64 b = _commit(bytes32(uint256(0x100 + i)), _one(attacker, address(usdc), step));
            uint256 expected = block.timestamp + FINALIZATION_DELAY + (i < 4 ? 0 : OUTFLOW_DELAY);
            assertEq(settlement.batch(b).finalizedAt, expected, "delayed from the fifth batch on");
        }
        vm.warp(block.timestamp + FINALIZATION_DELAY);
        assertEq(settlement.lastFinalizedBatchNumber(), 5, "the four under the limit finalized");
        vm.prank(guardian);
        settlement.guardianExodus();
        assertEq(settlement.ledgerSupply(address(usdc)), SUPPLY - 4 * step, "only 10% left the ledger");
    }

    // -------------------------------------------------------- under the limit

    function test_withdrawalsUnderTheLimit_finalizeAfterTheFinalizationDelay() public {
        _funded();
        assertEq(settlement.outflowAllowance(address(usdc)), _limit(SUPPLY), "allowance before");
        uint64 b1 = _commit(bytes32(uint256(2)), _one(bob, address(usdc), 60_000e6));
        assertEq(settlement.outflowAllowance(address(usdc)), 40_000e6, "allowance left");
        // Exactly at the limit is not over it.
        uint64 b2 = _commit(bytes32(uint256(3)), _one(carol, address(usdc), 40_000e6));
        assertEq(settlement.outflowAllowance(address(usdc)), 0, "allowance used up");
        assertEq(settlement.batch(b1).finalizedAt, block.timestamp + FINALIZATION_DELAY, "b1 not delayed");
        assertEq(settlement.batch(b2).finalizedAt, block.timestamp + FINALIZATION_DELAY, "b2 not delayed");
        _warpToFinal(b2);
        _claim(b1, 0);
        _claim(b2, 0);
        assertEq(usdc.balanceOf(bob), 60_000e6, "bob paid");
        assertEq(usdc.balanceOf(carol), 40_000e6, "carol paid");

        // One unit more in the same window is over.
        uint64 b3 = _commit(bytes32(uint256(4)), _one(bob, address(usdc), 1));
        assertEq(
            settlement.batch(b3).finalizedAt,
            block.timestamp + FINALIZATION_DELAY + OUTFLOW_DELAY,
            "one unit over: delayed"
        );
    }

    /// @dev Each token has its own limit: the batch is delayed by the token over it, and
    ///      emits for that token only.
    function test_limitIsPerToken() public {
        _funded();
        Withdrawal[] memory ws = new Withdrawal[](3);
        ws[0] = Withdrawal(bob, address(dai), 100e18); // dai at its limit
        ws[1] = Withdrawal(bob, address(usdc), 50_000e6);
        ws[2] = Withdrawal(carol, address(usdc), 50_001e6); // usdc 1 over
        vm.recordLogs();
        uint64 b = _commit(bytes32(uint256(2)), ws);
        assertEq(_delayedTokens(), address(usdc), "usdc over, dai at its limit");
        assertEq(settlement.batch(b).finalizedAt, block.timestamp + FINALIZATION_DELAY + OUTFLOW_DELAY, "delayed");
        assertEq(settlement.outflowAllowance(address(dai)), 0, "dai used up");
        assertEq(settlement.outflowAllowance(address(usdc)), 0, "usdc over");

        _warpToNextWindow();
        ws = new Withdrawal[](2);
        ws[0] = Withdrawal(bob, address(dai), 90e18 + 1); // over 10% of 900
        ws[1] = Withdrawal(bob, address(usdc), 1e6);
        vm.recordLogs();
        _commit(bytes32(uint256(3)), ws);
        assertEq(_delayedTokens(), address(dai), "dai over, usdc under");
    }

    /// @dev The token of the one `OutflowDelayed` event recorded (fails on any other count).
    function _delayedTokens() internal returns (address token) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bytes32 topic = Settlement.OutflowDelayed.selector;
        uint256 found = 0;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics[0] == topic) {
                ++found;
                token = address(uint160(uint256(logs[i].topics[2])));
            }
        }
        assertEq(found, 1, "one OutflowDelayed event");
    }

    // ------------------------------------------------------------- windows

    function test_limitResetsEachPeriod() public {
        _funded();
        uint64 b1 = _commit(bytes32(uint256(2)), _one(bob, address(usdc), 100_000e6));
        assertEq(settlement.batch(b1).finalizedAt, block.timestamp + FINALIZATION_DELAY, "first window: at limit");
        assertEq(settlement.outflowAllowance(address(usdc)), 0, "used up");

        vm.warp((block.timestamp / PERIOD + 1) * PERIOD - 1); // last second of the window
        assertEq(settlement.outflowAllowance(address(usdc)), 0, "still used up");
        _warpToNextWindow();
        // The new window's base is the supply at its start: 900,000, so 90,000.
        assertEq(settlement.outflowAllowance(address(usdc)), 90_000e6, "reset to 10% of the new supply");
        uint64 b2 = _commit(bytes32(uint256(3)), _one(bob, address(usdc), 90_000e6));
        assertEq(settlement.batch(b2).finalizedAt, block.timestamp + FINALIZATION_DELAY, "second window: at limit");
        uint64 b3 = _commit(bytes32(uint256(4)), _one(bob, address(usdc), 1));
        assertEq(settlement.batch(b3).finalizedAt, block.timestamp + FINALIZATION_DELAY + OUTFLOW_DELAY, "over");
    }

    /// @dev Deposits consumed in a window do not raise that window's limit, whether the same
    ///      batch or an earlier one consumed them: an attacker cannot bring its own money in
    ///      to widen the door for the users' money.
    function test_depositsInAWindow_doNotRaiseItsLimit() public {
        _funded();
        _deposit(attacker, usdc, 9 * uint256(SUPPLY), attacker);
        uint64 b1 = _commit(bytes32(uint256(2)), _one(attacker, address(usdc), SUPPLY));
        assertEq(
            settlement.batch(b1).finalizedAt,
            block.timestamp + FINALIZATION_DELAY + OUTFLOW_DELAY,
            "same batch: the window's base is 1,000,000"
        );

        _warpToNextWindow();
        // The window opens with the supply at its start (9,000,000); a deposit consumed
        // first in the window leaves the limit at 900,000.
        _deposit(attacker, usdc, 9 * uint256(SUPPLY), attacker);
        _commit(bytes32(uint256(3)), _noWithdrawals());
        assertEq(settlement.outflowAllowance(address(usdc)), 900_000e6, "deposit did not raise it");
        uint64 b3 = _commit(bytes32(uint256(4)), _one(attacker, address(usdc), 900_000e6 + 1));
        assertGe(settlement.batch(b3).finalizedAt, block.timestamp + FINALIZATION_DELAY + OUTFLOW_DELAY, "over");

        // The next window counts it.
        _warpToNextWindow();
        assertEq(settlement.outflowAllowance(address(usdc)), (18 * uint256(SUPPLY) - 900_000e6 - 1) / 10, "next");
    }

    /// @dev A fresh deployment's first window starts from an empty ledger: every withdrawal
    ///      in it is delayed.
    function test_firstWindow_startsFromTheEmptyLedger() public {
        _deposit(alice, usdc, 100e6, alice);
        uint64 b = _commit(bytes32(uint256(1)), _one(alice, address(usdc), 1));
        assertEq(settlement.batch(b).finalizedAt, block.timestamp + FINALIZATION_DELAY + OUTFLOW_DELAY, "delayed");
    }

    // ------------------------------------------------------ monotone finality

    /// @dev After a delayed batch, a normal one finalizes no earlier; claims, attestations and
    ///      `lastFinalizedBatchNumber` wait for both.
    function test_laterNormalBatch_cannotFinalizeBeforeTheDelayedOne() public {
        _funded();
        uint64 delayed = _commit(bytes32(uint256(2)), _one(bob, address(usdc), 200_000e6));
        uint64 delayedAt = settlement.batch(delayed).finalizedAt;
        assertEq(delayedAt, block.timestamp + FINALIZATION_DELAY + OUTFLOW_DELAY, "delayed");

        vm.warp(block.timestamp + 2 * PERIOD); // a fresh window: the next batch is under the limit
        uint64 normal = _commit(bytes32(uint256(3)), _one(carol, address(usdc), 1e6));
        assertEq(settlement.batch(normal).finalizedAt, delayedAt, "waits for the delayed batch");

        vm.warp(block.timestamp + FINALIZATION_DELAY);
        assertFalse(settlement.isFinalized(normal), "not final at its own delay");
        assertEq(settlement.lastFinalizedBatchNumber(), 1, "last finalized");
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotFinalized.selector, delayedAt));
        _claim(normal, 0);
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotFinalized.selector, delayedAt));
        settlement.verifyAttestation(normal, 0, alice, address(usdc), 1, 0, _proof(0));

        vm.warp(delayedAt - 1);
        assertEq(settlement.lastFinalizedBatchNumber(), 1, "last second");
        vm.warp(delayedAt);
        assertEq(settlement.lastFinalizedBatchNumber(), normal, "both final");
        _claim(delayed, 0);
        _claim(normal, 0);
        assertEq(usdc.balanceOf(carol), 1e6, "carol paid");
    }

    /// @dev An overdue deposit lets anyone activate exodus; it voids the delayed batch too.
    function test_activateExodus_voidsTheDelayedBatch() public {
        _funded();
        uint64 b = _commit(bytes32(uint256(2)), _one(attacker, address(usdc), SUPPLY));
        _deposit(stranger, usdc, 1, stranger);
        vm.warp(block.timestamp + DEPOSIT_DEADLINE + 1);
        assertFalse(settlement.isFinalized(b), "still delayed");
        settlement.activateExodus();
        assertEq(settlement.exodusBatchNumber(), 1, "void from batch 2");
        vm.expectRevert(abi.encodeWithSelector(Settlement.BatchVoided.selector, b));
        _claim(b, 0);
    }

    /// @dev Random commits (gaps, withdrawal amounts, two tokens) against an independent model
    ///      of windows and limits: `finalizedAt` is what the model predicts, never decreases,
    ///      and `lastFinalizedBatchNumber` matches a linear scan at random times.
    function testFuzz_finalizationIsMonotone(uint32[10] memory gaps, uint64[10] memory amounts, uint32 probe) public {
        _deposit(alice, usdc, SUPPLY, alice);
        _deposit(alice, dai, SUPPLY, alice);
        _commit(bytes32(uint256(1)), _noWithdrawals());
        // Model: per token, window, limit, outflow (the first window opened at batch 1).
        uint256[2] memory window;
        uint256[2] memory limit;
        uint256[2] memory outflow;
        window[0] = block.timestamp / PERIOD;
        window[1] = window[0];
        uint256[2] memory supply = [uint256(SUPPLY), uint256(SUPPLY)];
        address[2] memory tokens = [address(usdc), address(dai)];
        uint64 previous = settlement.batch(1).finalizedAt;
        for (uint256 i = 0; i < 10; ++i) {
            vm.warp(block.timestamp + bound(gaps[i], 0, 2 * PERIOD));
            uint256 t = amounts[i] % 2;
            uint256 amount = bound(amounts[i] >> 1, 1, supply[t] / 8 + 1);
            if (amount > supply[t]) amount = supply[t];
            if (amount == 0) continue;
            uint256 w = block.timestamp / PERIOD;
            if (window[t] != w) {
                window[t] = w;
                limit[t] = supply[t] * LIMIT_BPS / 10_000;
                outflow[t] = 0;
            }
            outflow[t] += amount;
            supply[t] -= amount;
            bool over = outflow[t] > limit[t];
            uint64 b = _commit(bytes32(uint256(0x100 + i)), _one(bob, tokens[t], uint128(amount)));
            uint256 expected = block.timestamp + FINALIZATION_DELAY + (over ? OUTFLOW_DELAY : 0);
            if (expected < previous) expected = previous;
            uint64 finalizedAt = settlement.batch(b).finalizedAt;
            assertEq(finalizedAt, expected, "finalizedAt == model");
            assertGe(finalizedAt, previous, "monotone");
            previous = finalizedAt;
        }
        vm.warp(block.timestamp + bound(probe, 0, OUTFLOW_DELAY + 2 * FINALIZATION_DELAY));
        uint64 scan = 0;
        uint64 last = settlement.lastBatchNumber();
        for (uint64 b = 0; b <= last; ++b) {
            bool final_ = settlement.batch(b).finalizedAt <= block.timestamp;
            assertEq(settlement.isFinalized(b), final_, "isFinalized == finalizedAt <= now");
            if (final_) {
                assertEq(scan, b == 0 ? 0 : b - 1, "finalized batches form a prefix");
                scan = b;
            }
        }
        assertEq(settlement.lastFinalizedBatchNumber(), scan, "binary search == scan");
    }
}
