// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {CallForwarder} from "../src/CallForwarder.sol";

contract Target {
    uint256 public value;
    address public caller;

    error Refused(uint256 value);

    function set(uint256 v) external returns (uint256) {
        if (v == 13) revert Refused(v);
        value = v;
        caller = msg.sender;
        return v + 1;
    }
}

/// @notice The forwarder tests commit through: only its owner forwards, the target sees the
///         forwarder as caller, reverts come back unchanged.
contract CallForwarderTest is Test {
    CallForwarder internal forwarder;
    Target internal target;
    address internal owner = address(0xA11CE);

    function setUp() public {
        forwarder = new CallForwarder(owner);
        target = new Target();
    }

    function test_forwardsAsItself() public {
        vm.prank(owner);
        bytes memory result = forwarder.forward(address(target), abi.encodeCall(Target.set, (7)));
        assertEq(abi.decode(result, (uint256)), 8, "result");
        assertEq(target.value(), 7, "value");
        assertEq(target.caller(), address(forwarder), "caller");
    }

    function test_onlyTheOwnerForwards() public {
        vm.expectRevert(abi.encodeWithSelector(CallForwarder.NotOwner.selector, address(this)));
        forwarder.forward(address(target), abi.encodeCall(Target.set, (7)));
    }

    function test_bubblesRevertsUp() public {
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(Target.Refused.selector, uint256(13)));
        forwarder.forward(address(target), abi.encodeCall(Target.set, (13)));
    }

    function test_refusesTheZeroOwner() public {
        vm.expectRevert(CallForwarder.ZeroAddress.selector);
        new CallForwarder(address(0));
    }
}
