// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {Settlement} from "../src/Settlement.sol";
import {SettlementFixture} from "./utils/SettlementFixture.sol";

/// @notice The receipt signer: a role apart from the committer (design section 9, "committer
///         key, receipt key and salt secret are separate and rotatable"), set at deployment
///         and rotated by the owner only through the same timelock as the operator. These
///         tests mirror the operator's in `SettlementAdmin.t.sol`.
contract SettlementReceiptSignerTest is SettlementFixture {
    function test_constructor_setsTheReceiptSigner() public view {
        assertEq(settlement.receiptSigner(), receiptSigner, "receiptSigner");
        assertEq(settlement.pendingReceiptSigner(), address(0), "nothing pending");
        assertEq(settlement.receiptSignerExecutableAt(), 0, "executableAt");
    }

    function test_constructor_emitsReceiptSignerChanged() public {
        vm.expectEmit(true, true, false, true);
        emit Settlement.ReceiptSignerChanged(address(0), receiptSigner);
        _deploy(verifier);
    }

    function test_constructor_revertsOnZeroReceiptSigner() public {
        receiptSigner = address(0);
        vm.expectRevert(Settlement.ZeroAddress.selector);
        _deploy(verifier);
    }

    function test_proposeReceiptSigner_executesOnlyAfterTimelock() public {
        uint64 executableAt = uint64(block.timestamp) + FINALIZATION_DELAY;
        vm.expectEmit(true, false, false, true, address(settlement));
        emit Settlement.ReceiptSignerProposed(bob, executableAt);
        vm.prank(owner);
        settlement.proposeReceiptSigner(bob);
        assertEq(settlement.pendingReceiptSigner(), bob, "pendingReceiptSigner");
        assertEq(settlement.receiptSignerExecutableAt(), executableAt, "receiptSignerExecutableAt");
        // The operator's proposal slot is untouched.
        assertEq(settlement.pendingOperator(), address(0), "no operator proposal");
        assertEq(settlement.operatorExecutableAt(), 0, "no operator executableAt");

        vm.expectRevert(abi.encodeWithSelector(Settlement.TimelockNotElapsed.selector, executableAt));
        vm.prank(owner);
        settlement.executeReceiptSigner();
        vm.warp(executableAt - 1);
        vm.expectRevert(abi.encodeWithSelector(Settlement.TimelockNotElapsed.selector, executableAt));
        settlement.executeReceiptSigner();
        assertEq(settlement.receiptSigner(), receiptSigner, "unchanged before the timelock");

        vm.warp(executableAt);
        vm.expectEmit(true, true, false, true, address(settlement));
        emit Settlement.ReceiptSignerChanged(receiptSigner, bob);
        vm.prank(stranger); // anyone may execute
        settlement.executeReceiptSigner();
        assertEq(settlement.receiptSigner(), bob, "receiptSigner");
        assertEq(settlement.pendingReceiptSigner(), address(0), "pending cleared");
        assertEq(settlement.receiptSignerExecutableAt(), 0, "executableAt cleared");
        assertEq(settlement.operator(), operator, "operator unchanged");

        vm.expectRevert(Settlement.NothingProposed.selector);
        settlement.executeReceiptSigner();
    }

    function test_cancelReceiptSigner_withdrawsTheProposal() public {
        vm.prank(owner);
        settlement.proposeReceiptSigner(bob);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, bob));
        vm.prank(bob);
        settlement.cancelReceiptSigner();
        vm.expectEmit(true, false, false, true, address(settlement));
        emit Settlement.ReceiptSignerProposalCancelled(bob);
        vm.prank(owner);
        settlement.cancelReceiptSigner();
        vm.warp(block.timestamp + FINALIZATION_DELAY);
        vm.expectRevert(Settlement.NothingProposed.selector);
        settlement.executeReceiptSigner();
        assertEq(settlement.receiptSigner(), receiptSigner, "unchanged");
        vm.expectRevert(Settlement.NothingProposed.selector);
        vm.prank(owner);
        settlement.cancelReceiptSigner();
    }

    function test_proposeReceiptSigner_againReplacesAndRestarts() public {
        vm.prank(owner);
        settlement.proposeReceiptSigner(bob);
        vm.warp(block.timestamp + FINALIZATION_DELAY - 1);
        vm.prank(owner);
        settlement.proposeReceiptSigner(carol);
        uint64 executableAt = uint64(block.timestamp) + FINALIZATION_DELAY;
        vm.warp(block.timestamp + 1);
        vm.expectRevert(abi.encodeWithSelector(Settlement.TimelockNotElapsed.selector, executableAt));
        settlement.executeReceiptSigner();
        vm.warp(executableAt);
        settlement.executeReceiptSigner();
        assertEq(settlement.receiptSigner(), carol, "latest proposal");
    }

    /// @dev Neither the operator, the receipt signer itself nor the guardian can rotate it.
    function test_proposeReceiptSigner_revertsForNonOwner() public {
        address[3] memory others = [operator, receiptSigner, guardian];
        for (uint256 i = 0; i < others.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, others[i]));
            vm.prank(others[i]);
            settlement.proposeReceiptSigner(others[i]);
        }
    }

    function test_proposeReceiptSigner_revertsOnZeroAddress() public {
        vm.expectRevert(Settlement.ZeroAddress.selector);
        vm.prank(owner);
        settlement.proposeReceiptSigner(address(0));
    }

    function test_executeReceiptSigner_revertsWhenNothingProposed() public {
        vm.expectRevert(Settlement.NothingProposed.selector);
        settlement.executeReceiptSigner();
    }

    /// @dev The two timelocks run apart: executing, cancelling or replacing one leaves the
    ///      other's proposal as it was.
    function test_operatorAndReceiptSignerProposals_areIndependent() public {
        vm.startPrank(owner);
        settlement.proposeOperator(bob);
        vm.warp(block.timestamp + 10);
        settlement.proposeReceiptSigner(carol);
        uint64 signerAt = uint64(block.timestamp) + FINALIZATION_DELAY;
        vm.stopPrank();

        vm.warp(signerAt - 10);
        settlement.executeOperator();
        assertEq(settlement.operator(), bob, "operator rotated");
        assertEq(settlement.pendingReceiptSigner(), carol, "signer proposal kept");
        assertEq(settlement.receiptSignerExecutableAt(), signerAt, "signer timelock kept");
        vm.expectRevert(abi.encodeWithSelector(Settlement.TimelockNotElapsed.selector, signerAt));
        settlement.executeReceiptSigner();

        vm.prank(owner);
        settlement.proposeOperator(stranger);
        vm.prank(owner);
        settlement.cancelOperator();
        assertEq(settlement.pendingReceiptSigner(), carol, "signer proposal survives an operator cancel");
        vm.warp(signerAt);
        settlement.executeReceiptSigner();
        assertEq(settlement.receiptSigner(), carol, "signer rotated");
        assertEq(settlement.operator(), bob, "operator unchanged");
    }
}
