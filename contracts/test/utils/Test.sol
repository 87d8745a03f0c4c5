// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "./Vm.sol";

/// @title Minimal test base
/// @notice What the suite needs from a test framework: the cheatcode handle, typed
///         assertion helpers (forwarded to forge's assertion cheatcodes, which revert with a
///         readable message), `bound` for fuzz inputs, named addresses and a console line.
abstract contract Test {
    /// @dev forge's cheatcode address, `address(bytes20(uint160(uint256(keccak256("hevm cheat code")))))`.
    Vm internal constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);

    /// @dev forge decodes calls to this address as console output (`forge test -vv`).
    address private constant CONSOLE = 0x000000000000000000636F6e736F6c652e6c6f67;

    // ------------------------------------------------------------- assertions

    function assertTrue(bool condition, string memory message) internal pure {
        vm.assertTrue(condition, message);
    }

    function assertFalse(bool condition, string memory message) internal pure {
        vm.assertFalse(condition, message);
    }

    function assertEq(bool left, bool right, string memory message) internal pure {
        vm.assertEq(left, right, message);
    }

    function assertEq(uint256 left, uint256 right, string memory message) internal pure {
        vm.assertEq(left, right, message);
    }

    function assertEq(address left, address right, string memory message) internal pure {
        vm.assertEq(left, right, message);
    }

    function assertEq(bytes32 left, bytes32 right, string memory message) internal pure {
        vm.assertEq(left, right, message);
    }

    function assertNotEq(uint256 left, uint256 right, string memory message) internal pure {
        vm.assertNotEq(left, right, message);
    }

    function assertGe(uint256 left, uint256 right, string memory message) internal pure {
        vm.assertGe(left, right, message);
    }

    function assertLt(uint256 left, uint256 right, string memory message) internal pure {
        vm.assertLt(left, right, message);
    }

    function assertLe(uint256 left, uint256 right, string memory message) internal pure {
        vm.assertLe(left, right, message);
    }

    // ------------------------------------------------------------ fuzz inputs

    /// @notice Maps `x` into `[min, max]`, leaving values already inside unchanged (so the
    ///         fuzzer's dictionary values and edge cases survive).
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: min > max");
        if (x >= min && x <= max) return x;
        // Here [min, max] is not the whole uint256 range, so `size` cannot overflow.
        uint256 size = max - min + 1;
        return min + (x % size);
    }

    // -------------------------------------------------------------- accounts

    /// @notice A deterministic address for `name`, labelled in traces.
    function makeAddr(string memory name) internal returns (address account) {
        (account,) = makeAccount(name);
    }

    /// @notice A deterministic key pair for `name`, labelled in traces.
    function makeAccount(string memory name) internal returns (address account, uint256 privateKey) {
        privateKey = uint256(keccak256(bytes(name))) % SECP256K1_ORDER;
        account = vm.addr(privateKey);
        vm.label(account, name);
    }

    uint256 private constant SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    // --------------------------------------------------------------- console

    /// @notice Prints `line` in `forge test -vv` output.
    function log(string memory line) internal view {
        (bool ok,) = CONSOLE.staticcall(abi.encodeWithSignature("log(string)", line));
        ok;
    }

    /// @notice Prints `label value` in `forge test -vv` output.
    function log(string memory label, uint256 value) internal view {
        // Same calldata as hardhat's `console.log(string,uint256)`, which forge decodes.
        (bool ok,) = CONSOLE.staticcall(abi.encodeWithSignature("log(string,uint256)", label, value));
        ok; // The console address has no code; the call only exists to be traced.
    }
}
