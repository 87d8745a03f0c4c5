// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title The cheatcodes this test suite uses, and nothing more
/// @notice forge answers calls to 0x7109709ECfa91a80626fF3989D68f67F5b1DD12D (the address
///         derived from `keccak256("hevm cheat code")`). Only the signatures matter: forge dispatches on
///         the 4-byte selector, so every declaration below must match forge's cheatcode
///         exactly. forge-std is not available in this repository, hence this file.
interface Vm {
    /// A log recorded since `recordLogs`.
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    // ------------------------------------------------------------ environment

    /// Sets `msg.sender` of the next call.
    function prank(address msgSender) external;
    /// Sets `msg.sender` of every following call until `stopPrank`.
    function startPrank(address msgSender) external;
    /// Ends a `startPrank`.
    function stopPrank() external;
    /// Sets `block.timestamp`.
    function warp(uint256 newTimestamp) external;
    /// Sets `block.chainid`.
    function chainId(uint256 newChainId) external;
    /// Labels an address in traces.
    function label(address account, string calldata newLabel) external;
    /// Stops charging gas until `resumeGasMetering` (for set-up beyond the per-test gas limit).
    function pauseGasMetering() external;
    /// Resumes charging gas.
    function resumeGasMetering() external;
    /// Sets the runtime code at `target`.
    function etch(address target, bytes calldata newRuntimeBytecode) external;

    // ------------------------------------------------------------------ keys

    /// Address of the secp256k1 key `privateKey`.
    function addr(uint256 privateKey) external pure returns (address keyAddr);
    /// Signs `digest` with `privateKey`.
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);

    // ---------------------------------------------------------- expectations

    /// The next call must revert (with anything).
    function expectRevert() external;
    /// Records every log emitted from now on.
    function recordLogs() external;
    /// The logs recorded since `recordLogs` (and clears them).
    function getRecordedLogs() external returns (Log[] memory logs);
    /// The next call must revert with exactly this selector (no arguments).
    function expectRevert(bytes4 revertData) external;
    /// The next call must revert with exactly these bytes.
    function expectRevert(bytes calldata revertData) external;
    /// The next event emitted must match the event emitted right after this call.
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData) external;
    /// The next event emitted by `emitter` must match the event emitted right after this call.
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter) external;
    /// Discards the current fuzz input unless `condition` holds.
    function assume(bool condition) external pure;

    // ------------------------------------------------------------- assertions

    function assertTrue(bool condition, string calldata message) external pure;
    function assertFalse(bool condition, string calldata message) external pure;
    function assertEq(bool left, bool right, string calldata message) external pure;
    function assertEq(uint256 left, uint256 right, string calldata message) external pure;
    function assertEq(address left, address right, string calldata message) external pure;
    function assertEq(bytes32 left, bytes32 right, string calldata message) external pure;
    function assertNotEq(uint256 left, uint256 right, string calldata message) external pure;
    function assertGe(uint256 left, uint256 right, string calldata message) external pure;
    function assertLt(uint256 left, uint256 right, string calldata message) external pure;
    function assertLe(uint256 left, uint256 right, string calldata message) external pure;
}
