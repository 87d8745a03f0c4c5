// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {IGroth16Verifier} from "./IGroth16Verifier.sol";

/// @title Verifier that accepts nothing
/// @notice Deployed on devnets until the verifier generated from the circuit's verifying
///         key exists: every proof is rejected, so exits and attestations fail closed
///         instead of trusting anyone.
contract DisabledVerifier is IGroth16Verifier {
    /// @inheritdoc IGroth16Verifier
    function verifyProof(uint256[8] calldata, uint256[5] calldata) external pure returns (bool) {
        return false;
    }
}
