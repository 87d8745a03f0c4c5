// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Settlement} from "../src/Settlement.sol";
import {SettlementFixture} from "./utils/SettlementFixture.sol";
import {BatchData, Withdrawal} from "./utils/BatchData.sol";

/// @notice Deposits a batch consumes as refused (the ledger cannot hold them), their refunds
///         to the recipient or a payee it names, and the constructor's period minimums.
contract SettlementRefusedTest is SettlementFixture {
    bytes32 internal constant ROOT_1 = bytes32(uint256(0xaaaa));
    bytes32 internal constant ROOT_2 = bytes32(uint256(0xbbbb));

    function _refused1(uint64 a) internal pure returns (uint64[] memory r) {
        r = new uint64[](1);
        r[0] = a;
    }

    function _refused2(uint64 a, uint64 b) internal pure returns (uint64[] memory r) {
        r = new uint64[](2);
        r[0] = a;
        r[1] = b;
    }

    /// @notice Commits the next batch consuming every queued deposit, refusing `refused`.
    function _commitRefusing(bytes32 newRoot, uint64[] memory refused, Withdrawal[] memory ws) internal {
        bytes memory data = BatchData.encodeRefused(ws, refused, "body");
        Settlement.BatchHeader memory header = _header(newRoot, uint64(depositHashes.length - 1), 0, data);
        vm.prank(operator);
        settlement.commitBatch(header, data);
        batchWithdrawals.push();
    }

    function _expectCommitRevert(uint64 depositsTo, uint64[] memory refused, bytes memory reason) internal {
        bytes memory data = BatchData.encodeRefused(_noWithdrawals(), refused, "");
        Settlement.BatchHeader memory header = _header(ROOT_2, depositsTo, 0, data);
        vm.expectRevert(reason);
        vm.prank(operator);
        settlement.commitBatch(header, data);
    }

    // ------------------------------------------------------- refused in a batch

    function test_commitBatch_consumesRefusedDepositWithoutCrediting() public {
        _deposit(alice, usdc, 100, alice);
        uint64 big = _deposit(bob, usdc, 40, bob);
        _deposit(carol, dai, 3 ether, carol);

        vm.expectEmit(true, true, true, true, address(settlement));
        emit Settlement.DepositRefused(big, 1, address(usdc), 40);
        _commitRefusing(ROOT_1, _refused1(big), _noWithdrawals());

        assertEq(settlement.depositsConsumed(), 3, "the queue moved on past the refused deposit");
        assertEq(settlement.ledgerSupply(address(usdc)), 100, "refused amount not in the ledger");
        assertEq(settlement.ledgerSupply(address(dai)), 3 ether, "later deposit credited");
        assertEq(settlement.refusedDeposits(address(usdc)), 40, "refused pool");
        assertEq(settlement.pendingDeposits(address(usdc)), 0, "nothing pending");
        assertTrue(settlement.depositEntry(big).refused, "entry marked refused");
        assertFalse(settlement.depositEntry(0).refused, "credited entry not marked");

        // Nothing is overdue: the refused deposit does not hold the queue.
        vm.warp(block.timestamp + DEPOSIT_DEADLINE + 1);
        vm.expectRevert(Settlement.NothingOverdue.selector);
        settlement.activateExodus();
    }

    function test_commitBatch_refusedAmountCannotBeWithdrawn() public {
        _deposit(alice, usdc, 100, alice);
        uint64 big = _deposit(bob, usdc, 40, bob);
        bytes memory data = BatchData.encodeRefused(_one(bob, address(usdc), 101), _refused1(big), "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 2, 0, data);
        vm.expectRevert(abi.encodeWithSelector(Settlement.LedgerSupplyExceeded.selector, address(usdc), 101, 100));
        vm.prank(operator);
        settlement.commitBatch(header, data);
    }

    function test_commitBatch_revertsOnRefusedIndexOutOfRange() public {
        _deposit(alice, usdc, 1, alice);
        _commit(ROOT_1, _noWithdrawals()); // deposit 0 consumed in batch 1
        _deposit(bob, usdc, 2, bob);
        _deposit(carol, usdc, 3, carol);
        // Before the batch's range (already consumed), at its end, far beyond.
        _expectCommitRevert(
            3, _refused1(0), abi.encodeWithSelector(Settlement.RefusedDepositOutOfRange.selector, 0, 1, 3)
        );
        _expectCommitRevert(
            3, _refused1(3), abi.encodeWithSelector(Settlement.RefusedDepositOutOfRange.selector, 3, 1, 3)
        );
        // A deposit queued but not consumed by this batch.
        _expectCommitRevert(
            2, _refused1(2), abi.encodeWithSelector(Settlement.RefusedDepositOutOfRange.selector, 2, 1, 2)
        );
        _expectCommitRevert(
            3,
            _refused2(1, type(uint64).max),
            abi.encodeWithSelector(Settlement.RefusedDepositOutOfRange.selector, type(uint64).max, 1, 3)
        );
    }

    function test_commitBatch_revertsOnUnorderedOrRepeatedRefusedIndices() public {
        _deposit(alice, usdc, 1, alice);
        _deposit(bob, usdc, 2, bob);
        _deposit(carol, usdc, 3, carol);
        _expectCommitRevert(
            3, _refused2(2, 1), abi.encodeWithSelector(Settlement.RefusedDepositsNotIncreasing.selector, 2, 1)
        );
        _expectCommitRevert(
            3, _refused2(1, 1), abi.encodeWithSelector(Settlement.RefusedDepositsNotIncreasing.selector, 1, 1)
        );
        // In order, it commits.
        _commitRefusing(ROOT_1, _refused2(0, 2), _noWithdrawals());
        assertEq(settlement.ledgerSupply(address(usdc)), 2, "only deposit 1 credited");
        assertEq(settlement.refusedDeposits(address(usdc)), 4, "deposits 0 and 2 refused");
    }

    function test_commitBatch_revertsOnMalformedRefusedSection() public {
        _deposit(alice, usdc, 1, alice);
        // Count 2, one index present.
        bytes memory section = bytes.concat(bytes4(uint32(2)), bytes8(uint64(0)));
        bytes memory data = BatchData.encodeRawSections(BatchData.VERSION, 0, _noWithdrawals(), section, "");
        Settlement.BatchHeader memory header = _header(ROOT_1, 1, 0, data);
        vm.expectRevert(Settlement.MalformedData.selector);
        vm.prank(operator);
        settlement.commitBatch(header, data);
        // More than a batch may consume; checked before the length.
        section = bytes.concat(bytes4(uint32(1025)));
        data = BatchData.encodeRawSections(BatchData.VERSION, 0, _noWithdrawals(), section, "");
        header = _header(ROOT_1, 1, 0, data);
        vm.expectRevert(abi.encodeWithSelector(Settlement.TooManyRefusedDeposits.selector, 1025));
        vm.prank(operator);
        settlement.commitBatch(header, data);
    }

    // ------------------------------------------------------ refunds of refused

    function test_refundDeposit_paysRefusedDepositWithoutExodus() public {
        uint64 i = _deposit(alice, usdc, 40, bob); // deposited by alice for bob
        _commitRefusing(ROOT_1, _refused1(i), _noWithdrawals());

        vm.expectEmit(true, true, true, true, address(settlement));
        emit Settlement.DepositRefunded(i, bob, address(usdc), 40, bob);
        vm.prank(stranger); // anyone may pay it to the recipient
        settlement.refundDeposit(i, bob, bob);
        assertEq(usdc.balanceOf(bob), 40, "refunded to the recipient");
        assertEq(settlement.refusedDeposits(address(usdc)), 0, "refused pool emptied");
        assertEq(usdc.balanceOf(address(settlement)), 0, "nothing left behind");
        assertFalse(settlement.exodus(), "no exodus needed");

        vm.expectRevert(abi.encodeWithSelector(Settlement.DepositAlreadyRefunded.selector, i));
        settlement.refundDeposit(i, bob, bob);
    }

    function test_refundDeposit_refusedDepositStillRefundableInExodus() public {
        uint64 i = _deposit(alice, usdc, 40, bob);
        _commitRefusing(ROOT_1, _refused1(i), _noWithdrawals());
        _enterExodus();
        settlement.refundDeposit(i, bob, bob);
        assertEq(usdc.balanceOf(bob), 40, "refunded in exodus");
    }

    function test_refundDeposit_revertsOnRecipientMismatchForRefused() public {
        uint64 i = _deposit(alice, usdc, 40, bob);
        _commitRefusing(ROOT_1, _refused1(i), _noWithdrawals());
        vm.expectRevert(abi.encodeWithSelector(Settlement.DepositMismatch.selector, i));
        vm.prank(alice);
        settlement.refundDeposit(i, alice, alice);
    }

    function test_refundDeposit_revertsForCreditedDeposit() public {
        uint64 credited = _deposit(alice, usdc, 10, alice);
        uint64 refused = _deposit(bob, usdc, 20, bob);
        _commitRefusing(ROOT_1, _refused1(refused), _noWithdrawals());
        vm.expectRevert(abi.encodeWithSelector(Settlement.DepositAlreadyConsumed.selector, credited));
        settlement.refundDeposit(credited, alice, alice);
    }

    function test_refundDeposit_namedPayeeOnlyByRecipient() public {
        uint64 i = _deposit(alice, usdc, 40, bob);
        _commitRefusing(ROOT_1, _refused1(i), _noWithdrawals());

        // Nobody but bob may send bob's refund elsewhere.
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotDepositRecipient.selector, stranger, bob));
        vm.prank(stranger);
        settlement.refundDeposit(i, bob, stranger);
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotDepositRecipient.selector, alice, bob));
        vm.prank(alice); // not even the depositor
        settlement.refundDeposit(i, bob, alice);
        vm.expectRevert(Settlement.ZeroAddress.selector);
        vm.prank(bob);
        settlement.refundDeposit(i, bob, address(0));

        vm.expectEmit(true, true, true, true, address(settlement));
        emit Settlement.DepositRefunded(i, bob, address(usdc), 40, carol);
        vm.prank(bob);
        settlement.refundDeposit(i, bob, carol);
        assertEq(usdc.balanceOf(carol), 40, "paid to the payee bob named");
        assertEq(usdc.balanceOf(bob), 0, "not to bob");
    }

    function test_refundDeposit_namedPayeeInExodus() public {
        uint64 i = _deposit(alice, usdc, 7, bob);
        vm.warp(block.timestamp + DEPOSIT_DEADLINE + 1);
        settlement.activateExodus();
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotDepositRecipient.selector, carol, bob));
        vm.prank(carol);
        settlement.refundDeposit(i, bob, carol);
        vm.prank(bob);
        settlement.refundDeposit(i, bob, carol);
        assertEq(usdc.balanceOf(carol), 7, "unconsumed deposit paid to the named payee");
        assertEq(settlement.pendingDeposits(address(usdc)), 0, "pending");
    }

    // ------------------------------------------------------------ periods

    function _deployWith(uint64 delay, uint64 depositPeriod, uint64 forcedPeriod, bool allowShort)
        internal
        returns (Settlement)
    {
        return new Settlement(
            owner,
            operator,
            guardian,
            receiptSigner,
            verifier,
            GENESIS_ROOT,
            new address[](0),
            Settlement.Periods(delay, depositPeriod, forcedPeriod, allowShort),
            Settlement.OutflowConfig(1_000, delay, delay)
        );
    }

    function test_constructor_enforcesPeriodMinimumsOffDevnet() public {
        vm.chainId(1);
        uint64 delay = 1 hours;
        uint64 day = 1 days;
        vm.expectRevert(abi.encodeWithSelector(Settlement.PeriodTooShort.selector, delay - 1, delay));
        _deployWith(delay - 1, day, day, false);
        vm.expectRevert(abi.encodeWithSelector(Settlement.PeriodTooShort.selector, day - 1, day));
        _deployWith(delay, day - 1, day, false);
        vm.expectRevert(abi.encodeWithSelector(Settlement.PeriodTooShort.selector, day - 1, day));
        _deployWith(delay, day, day - 1, false);
        vm.expectRevert(abi.encodeWithSelector(Settlement.PeriodTooShort.selector, 1, delay));
        _deployWith(1, 2, 3, false);

        Settlement s = _deployWith(delay, day, day, false);
        assertEq(s.finalizationDelay(), delay, "minimum delay accepted");
        assertFalse(s.allowShortPeriods(), "flag");
    }

    function test_constructor_flagAllowsShortPeriods() public {
        vm.chainId(1);
        Settlement s = _deployWith(1, 1, 1, true);
        assertTrue(s.allowShortPeriods(), "flag visible");
        assertEq(s.depositDeadlinePeriod(), 1, "short period kept");
    }

    function test_constructor_devnetChainAllowsShortPeriods() public {
        vm.chainId(31337);
        Settlement s = _deployWith(1, 2, 3, false);
        assertFalse(s.allowShortPeriods(), "flag not set: the chain id waives the minimums");
        assertEq(s.forcedDeadlinePeriod(), 3, "short period kept");
    }

    function test_constructor_refusesZeroPeriodsAlways() public {
        for (uint256 c = 0; c < 2; ++c) {
            vm.chainId(c == 0 ? 31337 : 1);
            vm.expectRevert(abi.encodeWithSelector(Settlement.PeriodTooShort.selector, 0, 1));
            _deployWith(0, 1, 1, true);
            vm.expectRevert(abi.encodeWithSelector(Settlement.PeriodTooShort.selector, 0, 1));
            _deployWith(1, 0, 1, true);
            vm.expectRevert(abi.encodeWithSelector(Settlement.PeriodTooShort.selector, 0, 1));
            _deployWith(1, 1, 0, true);
        }
    }
}
