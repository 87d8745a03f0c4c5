// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title ERC-20 with the behaviours a settlement contract must survive
/// @notice Freely mintable. Optionally:
///         - burns `feeBps` of every transfer between two accounts (fee-on-transfer; at
///           10_000 the recipient receives nothing at all),
///         - mints `bonus` extra to the recipient of every transfer (a balance that grows
///           by more than the amount sent),
///         - calls `hookTarget` with `hookData` before every transfer, bubbling a revert
///           (to exercise reentrancy guards).
contract QuirkyToken is ERC20 {
    uint256 public feeBps;
    uint256 public bonus;
    address public hookTarget;
    bytes public hookData;

    constructor(string memory name_, string memory symbol_) ERC20(name_, symbol_) {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setFeeBps(uint256 feeBps_) external {
        require(feeBps_ <= 10_000, "fee > 100%");
        feeBps = feeBps_;
    }

    function setBonus(uint256 bonus_) external {
        bonus = bonus_;
    }

    function setHook(address target, bytes calldata data) external {
        hookTarget = target;
        hookData = data;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) {
            super._update(from, to, value);
            return;
        }
        address target = hookTarget;
        if (target != address(0)) {
            hookTarget = address(0); // one shot
            (bool ok, bytes memory ret) = target.call(hookData);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
        }
        uint256 fee = value * feeBps / 10_000;
        super._update(from, to, value - fee);
        if (fee != 0) super._update(from, address(0), fee);
        if (bonus != 0) super._update(address(0), to, bonus);
    }
}
