// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Settlement} from "../src/Settlement.sol";
import {DisabledVerifier} from "../src/DisabledVerifier.sol";
import {SettlementFixture} from "./utils/SettlementFixture.sol";
import {Withdrawal} from "./utils/BatchData.sol";
import {BlacklistingToken} from "./mocks/BlacklistingToken.sol";

/// @notice `activateExodus`, `exit`, `refundDeposit` and `verifyAttestation`.
contract SettlementExodusTest is SettlementFixture {
    bytes32 internal constant ROOT_1 = bytes32(uint256(0xaaaa));
    bytes32 internal constant ROOT_2 = bytes32(uint256(0xbbbb));

    // -------------------------------------------------------- activateExodus

    function test_activateExodus_revertsWhenNothingQueued() public {
        vm.warp(block.timestamp + 365 days);
        vm.expectRevert(Settlement.NothingOverdue.selector);
        settlement.activateExodus();
    }

    function test_activateExodus_viaOverdueDeposit() public {
        uint64 index = _deposit(alice, usdc, 10, alice);
        uint64 deadline = settlement.depositEntry(index).deadline;

        // The deadline itself is still in time.
        vm.warp(deadline);
        vm.expectRevert(Settlement.NothingOverdue.selector);
        settlement.activateExodus();

        vm.warp(deadline + 1);
        vm.expectEmit(true, false, false, true, address(settlement));
        emit Settlement.ExodusActivated(stranger, 0, type(uint64).max, 0);
        vm.prank(stranger);
        settlement.activateExodus();
        assertTrue(settlement.exodus(), "exodus");
    }

    function test_activateExodus_viaOverdueForcedRequest() public {
        uint64 index = _requestForced(alice, address(dai));
        uint64 deadline = settlement.forcedEntry(index).deadline;
        vm.warp(deadline);
        vm.expectRevert(Settlement.NothingOverdue.selector);
        settlement.activateExodus();

        vm.warp(deadline + 1);
        vm.expectEmit(true, false, false, true, address(settlement));
        emit Settlement.ExodusActivated(bob, type(uint64).max, 0, 0);
        vm.prank(bob);
        settlement.activateExodus();
        assertTrue(settlement.exodus(), "exodus");
    }

    function test_activateExodus_reportsBothOverdueQueues() public {
        _deposit(alice, usdc, 10, alice);
        _deposit(alice, usdc, 20, alice);
        _requestForced(bob, address(usdc));
        _requestForced(carol, address(usdc));
        _commitPrefix(ROOT_1, 1, 1, new Withdrawal[](0), "");
        vm.warp(block.timestamp + FORCED_DEADLINE + 1);
        // The oldest unconsumed entries are deposit 1 and forced request 1.
        vm.expectEmit(true, false, false, true, address(settlement));
        emit Settlement.ExodusActivated(address(this), 1, 1, 1);
        settlement.activateExodus();
    }

    function test_activateExodus_ignoresConsumedEntries() public {
        _deposit(alice, usdc, 10, alice);
        _requestForced(alice, address(usdc));
        _commit(ROOT_1, new Withdrawal[](0));
        vm.warp(block.timestamp + FORCED_DEADLINE + 1);
        vm.expectRevert(Settlement.NothingOverdue.selector);
        settlement.activateExodus();
    }

    function test_activateExodus_servingTheQueueInTimePreventsIt() public {
        _deposit(alice, usdc, 10, alice);
        vm.warp(block.timestamp + DEPOSIT_DEADLINE); // last second in time
        _commit(ROOT_1, new Withdrawal[](0));
        vm.warp(block.timestamp + 1);
        vm.expectRevert(Settlement.NothingOverdue.selector);
        settlement.activateExodus();
    }

    function test_activateExodus_revertsWhenAlreadyActive() public {
        _enterExodus();
        vm.expectRevert(Settlement.ExodusActive.selector);
        settlement.activateExodus();
    }

    // ------------------------------------------------------------------ exit

    /// @dev alice and bob hold usdc on the ledger (root ROOT_1), then the operator vanishes.
    function _fundedExodus() internal {
        _deposit(alice, usdc, 700, alice);
        _deposit(bob, usdc, 300, bob);
        _deposit(alice, dai, 2 ether, alice);
        _commit(ROOT_1, new Withdrawal[](0));
        _enterExodus();
    }

    function test_exit_paysProvenAmountOnce() public {
        _fundedExodus();
        uint256[8] memory proof = _proof(1);
        uint256[5] memory input = _exitInput(ROOT_1, alice, address(usdc), 700);
        verifier.expectProof(proof, input);

        vm.expectEmit(true, true, true, true, address(settlement));
        emit Settlement.Exited(alice, address(usdc), alice, 700);
        vm.prank(alice);
        settlement.exit(address(usdc), 700, alice, proof);

        assertEq(usdc.balanceOf(alice), 700, "paid");
        assertEq(settlement.ledgerSupply(address(usdc)), 300, "ledger");
        assertTrue(settlement.exited(alice, address(usdc)), "exited flag");
        assertFalse(settlement.exited(alice, address(dai)), "other slot untouched");

        vm.expectRevert(abi.encodeWithSelector(Settlement.AlreadyExited.selector, alice, address(usdc)));
        vm.prank(alice);
        settlement.exit(address(usdc), 700, alice, proof);
        // Not even to another recipient.
        verifier.expectProof(proof, _exitInputTo(ROOT_1, alice, address(usdc), 700, bob));
        vm.expectRevert(abi.encodeWithSelector(Settlement.AlreadyExited.selector, alice, address(usdc)));
        vm.prank(alice);
        settlement.exit(address(usdc), 700, bob, proof);
    }

    function test_exit_paysTheNamedRecipient() public {
        _fundedExodus();
        uint256[8] memory proof = _proof(9);
        verifier.expectProof(proof, _exitInputTo(ROOT_1, alice, address(usdc), 700, carol));

        vm.expectEmit(true, true, true, true, address(settlement));
        emit Settlement.Exited(alice, address(usdc), carol, 700);
        vm.prank(alice);
        settlement.exit(address(usdc), 700, carol, proof);

        assertEq(usdc.balanceOf(carol), 700, "paid to the recipient");
        assertEq(usdc.balanceOf(alice), 0, "not to the owner");
        assertEq(settlement.ledgerSupply(address(usdc)), 300, "ledger");
        assertTrue(settlement.exited(alice, address(usdc)), "the owner's slot exited");
        assertFalse(settlement.exited(carol, address(usdc)), "not the recipient's");
    }

    function test_exit_proofForOneRecipientDoesNotVerifyForAnother() public {
        _fundedExodus();
        uint256[8] memory proof = _proof(10);
        // Proven for alice paying bob: paying alice herself, carol, or a caller other than
        // alice naming bob are all other contexts.
        verifier.expectProof(proof, _exitInputTo(ROOT_1, alice, address(usdc), 700, bob));
        _expectInvalidExitTo(alice, address(usdc), 700, alice, proof);
        _expectInvalidExitTo(alice, address(usdc), 700, carol, proof);
        _expectInvalidExitTo(bob, address(usdc), 700, bob, proof);
        _expectInvalidExitTo(carol, address(usdc), 700, bob, proof);

        vm.prank(alice);
        settlement.exit(address(usdc), 700, bob, proof);
        assertEq(usdc.balanceOf(bob), 700, "paid to the proven recipient");
    }

    function test_exit_revertsOnZeroRecipient() public {
        _fundedExodus();
        uint256[8] memory proof = _proof(11);
        verifier.expectProof(proof, _exitInputTo(ROOT_1, alice, address(usdc), 700, address(0)));
        vm.expectRevert(Settlement.ZeroAddress.selector);
        vm.prank(alice);
        settlement.exit(address(usdc), 700, address(0), proof);
    }

    /// @dev The case the recipient exists for: a USDC-blacklisted owner cannot receive the
    ///      token, so an exit paying it reverts whatever the proof; it names another address.
    function test_exit_blacklistedOwnerExitsToAnotherAddress() public {
        BlacklistingToken token = new BlacklistingToken();
        _addTokenNow(address(token));
        token.mint(alice, 900);
        vm.startPrank(alice);
        token.approve(address(settlement), 900);
        settlement.deposit(address(token), 900, alice);
        vm.stopPrank();
        depositHashes.push(_depositHash(depositHashes[0], alice, address(token), 900));
        _commitPrefix(ROOT_1, 1, 0, new Withdrawal[](0), "");
        _enterExodus();
        token.setBlacklisted(alice, true);

        uint256[8] memory proof = _proof(12);
        verifier.expectProof(proof, _exitInputTo(ROOT_1, alice, address(token), 900, alice));
        vm.expectRevert(abi.encodeWithSelector(BlacklistingToken.Blacklisted.selector, alice));
        vm.prank(alice);
        settlement.exit(address(token), 900, alice, proof);

        verifier.expectProof(proof, _exitInputTo(ROOT_1, alice, address(token), 900, carol));
        vm.prank(alice);
        settlement.exit(address(token), 900, carol, proof);
        assertEq(token.balanceOf(carol), 900, "paid to the named recipient");
        assertTrue(settlement.exited(alice, address(token)), "exited");
    }

    function test_exit_passesRootOwnerTokenAmountAndContext() public {
        _fundedExodus();
        uint256[8] memory proof = _proof(2);
        // Armed with exactly [ROOT_1, alice, dai, 1.5 ether, exitContext(alice)], built here.
        verifier.expectProof(proof, _exitInput(ROOT_1, alice, address(dai), 1.5 ether));

        // Every deviation from that vector is rejected.
        _expectInvalidExit(alice, address(dai), 1.5 ether + 1, proof); // amount
        _expectInvalidExit(alice, address(usdc), 1.5 ether, proof); // token
        _expectInvalidExit(bob, address(dai), 1.5 ether, proof); // owner (and context)
        _expectInvalidExit(alice, address(dai), 1.5 ether, _proof(3)); // proof

        vm.prank(alice);
        settlement.exit(address(dai), 1.5 ether, alice, proof);
        assertEq(dai.balanceOf(alice), 1.5 ether, "paid");
    }

    function test_exit_usesLastCommittedRoot() public {
        _deposit(alice, usdc, 500, alice);
        _commit(ROOT_1, new Withdrawal[](0));
        _commit(ROOT_2, new Withdrawal[](0));
        _enterExodus();
        uint256[8] memory proof = _proof(4);
        // A proof against the older root does not verify.
        verifier.expectProof(proof, _exitInput(ROOT_1, alice, address(usdc), 500));
        _expectInvalidExit(alice, address(usdc), 500, proof);

        verifier.expectProof(proof, _exitInput(ROOT_2, alice, address(usdc), 500));
        vm.prank(alice);
        settlement.exit(address(usdc), 500, alice, proof);
        assertEq(usdc.balanceOf(alice), 500, "paid against the last root");
    }

    function test_exit_contextDependsOnChain() public {
        _fundedExodus();
        uint256[8] memory proof = _proof(5);
        verifier.expectProof(proof, _exitInput(ROOT_1, bob, address(usdc), 300));
        // The same proof replayed on another chain (same address) binds another context.
        vm.chainId(block.chainid + 1);
        _expectInvalidExit(bob, address(usdc), 300, proof);
    }

    function test_exit_revertsBeforeExodus() public {
        vm.expectRevert(Settlement.ExodusNotActive.selector);
        vm.prank(alice);
        settlement.exit(address(usdc), 1, alice, _proof(0));
    }

    function test_exit_revertsOnZeroAmount() public {
        _fundedExodus();
        vm.expectRevert(Settlement.ZeroAmount.selector);
        vm.prank(alice);
        settlement.exit(address(usdc), 0, alice, _proof(0));
    }

    function test_exit_revertsOnInvalidProof() public {
        _fundedExodus();
        // The verifier is not armed: nothing verifies.
        _expectInvalidExit(alice, address(usdc), 700, _proof(0));
    }

    function test_exit_revertsWhenLedgerSupplyExceeded() public {
        _fundedExodus();
        uint256[8] memory proof = _proof(6);
        // A proof (say, from an inconsistent root) claiming more than the ledger holds.
        verifier.expectProof(proof, _exitInput(ROOT_1, alice, address(usdc), 1001));
        vm.expectRevert(abi.encodeWithSelector(Settlement.LedgerSupplyExceeded.selector, address(usdc), 1001, 1000));
        vm.prank(alice);
        settlement.exit(address(usdc), 1001, alice, proof);
    }

    function test_exit_revertsWithDisabledVerifier() public {
        settlement = _deploy(new DisabledVerifier());
        _deposit(alice, usdc, 10, alice);
        _commit(ROOT_1, new Withdrawal[](0));
        _enterExodus();
        _expectInvalidExit(alice, address(usdc), 10, _proof(0));
    }

    // ---------------------------------------------------------- refundDeposit

    function test_refundDeposit_returnsUnconsumedDepositToRecipient() public {
        _deposit(alice, usdc, 100, alice); // consumed below
        _commit(ROOT_1, new Withdrawal[](0));
        uint64 i1 = _deposit(alice, usdc, 40, bob); // deposited by alice for bob
        uint64 i2 = _deposit(carol, dai, 3 ether, carol);
        vm.warp(block.timestamp + DEPOSIT_DEADLINE + 1);
        settlement.activateExodus();

        vm.expectEmit(true, true, true, true, address(settlement));
        emit Settlement.DepositRefunded(i1, bob, address(usdc), 40, bob);
        vm.prank(stranger); // anyone may trigger it
        settlement.refundDeposit(i1, bob, bob);
        assertEq(usdc.balanceOf(bob), 40, "refunded to the recipient");
        assertEq(usdc.balanceOf(alice), 0, "not to the depositor");
        assertEq(settlement.pendingDeposits(address(usdc)), 0, "pending usdc");
        assertEq(settlement.depositEntry(i1).amount, 0, "entry zeroed");
        assertEq(settlement.depositEntry(i1).rollingHash, depositHashes[i1 + 1], "hash kept for the next entry");

        // The next entry still checks against the refunded entry's hash.
        settlement.refundDeposit(i2, carol, carol);
        assertEq(dai.balanceOf(carol), 3 ether, "second refund");
        assertEq(settlement.pendingDeposits(address(dai)), 0, "pending dai");
        assertEq(settlement.ledgerSupply(address(usdc)), 100, "ledger untouched");
    }

    function test_refundDeposit_outOfOrder() public {
        uint64 i0 = _deposit(alice, usdc, 1, alice);
        uint64 i1 = _deposit(bob, usdc, 2, bob);
        vm.warp(block.timestamp + DEPOSIT_DEADLINE + 1);
        settlement.activateExodus();
        settlement.refundDeposit(i1, bob, bob);
        settlement.refundDeposit(i0, alice, alice);
        assertEq(usdc.balanceOf(alice), 1, "alice");
        assertEq(usdc.balanceOf(bob), 2, "bob");
    }

    function test_refundDeposit_revertsBeforeExodus() public {
        uint64 i = _deposit(alice, usdc, 1, alice);
        vm.expectRevert(Settlement.ExodusNotActive.selector);
        settlement.refundDeposit(i, alice, alice);
    }

    function test_refundDeposit_revertsForConsumedDeposit() public {
        uint64 i = _deposit(alice, usdc, 1, alice);
        _commit(ROOT_1, new Withdrawal[](0));
        _enterExodus();
        vm.expectRevert(abi.encodeWithSelector(Settlement.DepositAlreadyConsumed.selector, i));
        settlement.refundDeposit(i, alice, alice);
    }

    function test_refundDeposit_revertsWhenRefundedTwice() public {
        uint64 i = _deposit(alice, usdc, 5, alice);
        vm.warp(block.timestamp + DEPOSIT_DEADLINE + 1);
        settlement.activateExodus();
        settlement.refundDeposit(i, alice, alice);
        vm.expectRevert(abi.encodeWithSelector(Settlement.DepositAlreadyRefunded.selector, i));
        settlement.refundDeposit(i, alice, alice);
    }

    function test_refundDeposit_revertsOnRecipientMismatch() public {
        uint64 i = _deposit(alice, usdc, 5, bob);
        vm.warp(block.timestamp + DEPOSIT_DEADLINE + 1);
        settlement.activateExodus();
        // The depositor is not the recipient.
        vm.expectRevert(abi.encodeWithSelector(Settlement.DepositMismatch.selector, i));
        settlement.refundDeposit(i, alice, alice);
        vm.expectRevert(abi.encodeWithSelector(Settlement.DepositMismatch.selector, i));
        settlement.refundDeposit(i, stranger, stranger);
    }

    function test_refundDeposit_revertsOutOfRange() public {
        _enterExodus(); // one deposit queued
        vm.expectRevert(abi.encodeWithSelector(Settlement.IndexOutOfRange.selector, uint256(1), uint256(1)));
        settlement.refundDeposit(1, stranger, stranger);
        vm.expectRevert(
            abi.encodeWithSelector(Settlement.IndexOutOfRange.selector, uint256(type(uint64).max), uint256(1))
        );
        settlement.refundDeposit(type(uint64).max, stranger, stranger);
    }

    // ------------------------------------------------------ verifyAttestation

    function test_verifyAttestation_againstGenesis() public {
        uint256[8] memory proof = _proof(7);
        uint256 context = 0xc0ffee;
        verifier.expectProof(proof, _attestationInput(GENESIS_ROOT, alice, address(usdc), 1, context));
        assertTrue(settlement.verifyAttestation(0, 0, alice, address(usdc), 1, context, proof), "valid");
        assertFalse(settlement.verifyAttestation(0, 0, alice, address(usdc), 1, context + 1, proof), "other context");
        assertFalse(settlement.verifyAttestation(0, 0, alice, address(usdc), 2, context, proof), "other threshold");
        assertFalse(settlement.verifyAttestation(0, 0, bob, address(usdc), 1, context, proof), "other owner");
        assertFalse(settlement.verifyAttestation(0, 0, alice, address(dai), 1, context, proof), "other token");
    }

    function test_verifyAttestation_againstEarlierAndLatestRoots() public {
        _commit(ROOT_1, new Withdrawal[](0));
        _commit(ROOT_2, new Withdrawal[](0));
        _warpToFinal(2);
        uint256[8] memory proof = _proof(8);
        verifier.expectProof(proof, _attestationInput(ROOT_1, bob, address(dai), 1 ether, 42));
        assertTrue(settlement.verifyAttestation(1, 0, bob, address(dai), 1 ether, 42, proof), "batch 1");
        assertFalse(settlement.verifyAttestation(2, 0, bob, address(dai), 1 ether, 42, proof), "not batch 2's root");
        assertFalse(settlement.verifyAttestation(0, 0, bob, address(dai), 1 ether, 42, proof), "not genesis");

        verifier.expectProof(proof, _attestationInput(ROOT_2, bob, address(dai), 1 ether, 42));
        assertTrue(settlement.verifyAttestation(2, 0, bob, address(dai), 1 ether, 42, proof), "batch 2");

        // Attestations stay verifiable in exodus.
        _enterExodus();
        assertTrue(settlement.verifyAttestation(2, 0, bob, address(dai), 1 ether, 42, proof), "in exodus");
    }

    function test_verifyAttestation_revertsForUnknownBatch() public {
        _commit(ROOT_1, new Withdrawal[](0));
        vm.expectRevert(abi.encodeWithSelector(Settlement.UnknownBatch.selector, uint64(2)));
        settlement.verifyAttestation(2, 0, alice, address(usdc), 1, 0, _proof(0));
    }

    function test_verifyAttestation_revertsBelowTheMinimumBatch() public {
        _commit(ROOT_1, new Withdrawal[](0));
        _commit(ROOT_2, new Withdrawal[](0));
        _warpToFinal(2);
        uint256[8] memory proof = _proof(9);
        verifier.expectProof(proof, _attestationInput(ROOT_1, bob, address(dai), 1 ether, 42));
        assertTrue(settlement.verifyAttestation(1, 1, bob, address(dai), 1 ether, 42, proof), "at the minimum");
        vm.expectRevert(abi.encodeWithSelector(Settlement.BatchTooOld.selector, uint64(1), uint64(2)));
        settlement.verifyAttestation(1, 2, bob, address(dai), 1 ether, 42, proof);
        vm.expectRevert(abi.encodeWithSelector(Settlement.BatchTooOld.selector, uint64(0), uint64(1)));
        settlement.verifyAttestation(0, 1, bob, address(dai), 1 ether, 42, proof);
        // An unknown batch is unknown whatever the minimum.
        vm.expectRevert(abi.encodeWithSelector(Settlement.UnknownBatch.selector, uint64(3)));
        settlement.verifyAttestation(3, 3, bob, address(dai), 1 ether, 42, proof);
    }

    function test_verifyAttestation_falseWithDisabledVerifier() public {
        settlement = _deploy(new DisabledVerifier());
        assertFalse(settlement.verifyAttestation(0, 0, alice, address(usdc), 1, 0, _proof(0)), "disabled");
    }

    // --------------------------------------------------------------- helpers

    function _expectInvalidExit(address who, address token, uint128 amount, uint256[8] memory proof) internal {
        _expectInvalidExitTo(who, token, amount, who, proof);
    }

    function _expectInvalidExitTo(
        address who,
        address token,
        uint128 amount,
        address recipient,
        uint256[8] memory proof
    ) internal {
        vm.expectRevert(Settlement.InvalidProof.selector);
        vm.prank(who);
        settlement.exit(token, amount, recipient, proof);
    }

    function _attestationInput(bytes32 root, address who, address token, uint128 threshold, uint256 context)
        internal
        pure
        returns (uint256[5] memory)
    {
        return [uint256(root), uint256(uint160(who)), uint256(uint160(token)), uint256(threshold), context];
    }
}
