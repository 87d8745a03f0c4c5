// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title One-owner call forwarder
/// @notice Forwards calls from its owner, the way a Safe or another multisig executes a
///         transaction: the target sees this contract as `msg.sender`. Stablelane's tests make
///         it the settlement operator to check that tools reading commits from the chain
///         (chain sync, the exit tool) work when batches are committed through a contract.
///         It is not part of a deployment.
contract CallForwarder {
    /// @notice The only account that may forward calls.
    address public immutable owner;

    /// @notice A call was forwarded.
    event Forwarded(address indexed target, bytes4 selector);

    error NotOwner(address caller);
    error ZeroAddress();

    /// @param owner_ the account allowed to forward calls
    constructor(address owner_) {
        if (owner_ == address(0)) revert ZeroAddress();
        owner = owner_;
    }

    /// @notice Calls `target` with `data` as this contract; bubbles up a revert unchanged.
    function forward(address target, bytes calldata data) external returns (bytes memory result) {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        bool ok;
        (ok, result) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
        // Only the selector is logged: the first four bytes (zero-padded when shorter).
        // forge-lint: disable-next-line(unsafe-typecast)
        emit Forwarded(target, bytes4(data));
    }
}
