// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./Test.sol";

/// @notice A contract and the functions of it that the invariant fuzzer may call.
/// @dev Layout fixed by forge: `targetSelectors()` must return `(address, bytes4[])[]`.
struct FuzzSelector {
    address addr;
    bytes4[] selectors;
}

/// @title Target selection for forge's invariant fuzzer
/// @notice forge calls these view functions on the test contract after `setUp` to learn
///         which contracts, functions and senders to fuzz.
abstract contract InvariantTest is Test {
    address[] private _targetedContracts;
    FuzzSelector[] private _targetedSelectors;
    address[] private _targetedSenders;

    function targetContract(address target) internal {
        _targetedContracts.push(target);
    }

    function targetSelector(FuzzSelector memory selection) internal {
        _targetedSelectors.push(selection);
    }

    function targetSender(address sender) internal {
        _targetedSenders.push(sender);
    }

    /// @notice Contracts the fuzzer calls.
    function targetContracts() public view returns (address[] memory) {
        return _targetedContracts;
    }

    /// @notice Per contract, the only functions the fuzzer calls.
    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetedSelectors;
    }

    /// @notice Senders the fuzzer uses (random when empty).
    function targetSenders() public view returns (address[] memory) {
        return _targetedSenders;
    }
}
