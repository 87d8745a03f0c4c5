// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title Groth16 verifier interface used by the settlement contract.
/// @notice The real implementation is generated from the circuit's verifying key by the
///         `circuits` crate; nothing in this repository writes a verifier by hand.
/// @dev Public inputs, in order: `[root, owner, token, threshold, context]`, each a BN254
///      scalar-field element. `owner` and `token` are addresses as integers, `threshold` a
///      base-unit amount, `context` a verifier-chosen challenge reduced into the field.
///      `proof` is `[a.x, a.y, b.x.c1, b.x.c0, b.y.c1, b.y.c0, c.x, c.y]` (G2 in EVM order).
///      Implementations return false for any invalid proof or any input `>= r`; they revert
///      only on programming errors.
interface IGroth16Verifier {
    /// @notice Whether `proof` is a valid proof for `input`.
    function verifyProof(uint256[8] calldata proof, uint256[5] calldata input) external view returns (bool);
}
