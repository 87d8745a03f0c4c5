// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {IGroth16Verifier} from "../../src/IGroth16Verifier.sol";

/// @title Test double of the Groth16 verifier
/// @notice Accepts exactly one (proof, public input) pair, set with `expectProof`, and
///         rejects everything else. A test arms it with the input it expects the settlement
///         contract to build, so a passing exit or attestation also proves the contract passed
///         `[root, owner, token, amount, context]` in that order.
contract MockGroth16Verifier is IGroth16Verifier {
    uint256 internal constant SNARK_SCALAR_FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    bool public armed;
    bytes32 public expectedProofHash;
    uint256[5] internal _expectedInput;

    /// @notice From now on, accept `proof` for `input` only.
    function expectProof(uint256[8] calldata proof, uint256[5] calldata input) external {
        armed = true;
        expectedProofHash = keccak256(abi.encode(proof));
        _expectedInput = input;
    }

    /// @notice From now on, accept nothing.
    function disarm() external {
        armed = false;
    }

    function expectedInput() external view returns (uint256[5] memory) {
        return _expectedInput;
    }

    /// @inheritdoc IGroth16Verifier
    function verifyProof(uint256[8] calldata proof, uint256[5] calldata input) external view returns (bool) {
        if (!armed || keccak256(abi.encode(proof)) != expectedProofHash) return false;
        for (uint256 i = 0; i < 5; ++i) {
            // Like a real verifier: public inputs must be field elements.
            if (input[i] >= SNARK_SCALAR_FIELD || input[i] != _expectedInput[i]) return false;
        }
        return true;
    }
}
