// SPDX-License-Identifier: MIT OR Apache-2.0
// GENERATED FILE, DO NOT EDIT. Rendered by the stablelane-circuits crate
// (circuits/src/solidity.rs) from the attestation circuit's verifying key.
// Regenerate: STABLELANE_BLESS=1 cargo test -p stablelane-circuits --test integration generated_files
//
// Setup: INSECURE deterministic dev setup (keys::insecure_dev_setup, seed "stablelane INSECURE
// dev setup v1"): anyone can recompute its secrets and forge proofs. For devnets and tests
// only.
// Verifying key hash (keccak256 of its compressed arkworks encoding):
// 0xb6130f280ee69903fb35dde0abb44abd39ddd7c4dc63ae27dab97e52c57cda86
pragma solidity ^0.8.24;

import {IGroth16Verifier} from "./IGroth16Verifier.sol";

/// @title Groth16 verifier of Stablelane's balance-attestation circuit (BN254)
/// @notice Generated from the circuit's verifying key (see the header); public inputs are
///         `[root, owner, token, threshold, context]`.
/// @dev Returns false, never reverts, for an input >= R, a proof coordinate >= Q, or a proof
///      point off its curve. Then checks e(-A, B) e(alpha, beta) e(vk_x, gamma) e(C, delta)
///      == 1 with the precompiles ecAdd (0x06), ecMul (0x07) and pairing (0x08), where
///      vk_x = IC0 + sum input[i] * IC(i+1). A B on the twist but outside G2 (only a
///      deliberate attacker makes one) makes the pairing precompile fail: the function
///      returns false, and that failure consumes the gas forwarded to the precompile (all but
///      1/64 of what is left).
contract Groth16Verifier is IGroth16Verifier {
    /// @notice keccak256 of the verifying key this contract was generated from
    ///         (compressed arkworks encoding): compare it with the hash of your
    ///         proving key's verifying key before trusting proofs to verify here.
    bytes32 public constant VERIFYING_KEY_HASH = 0xb6130f280ee69903fb35dde0abb44abd39ddd7c4dc63ae27dab97e52c57cda86;

    /// @dev BN254 scalar field modulus: every public input must be below it.
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @dev BN254 base field modulus: every proof coordinate must be below it.
    uint256 internal constant Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583;
    /// @dev B2 = 3 / (9 + i), the constant of the twist y^2 = x^3 + B2 that holds G2.
    uint256 internal constant B2_1 = 0x009713b03af0fed4cd2cafadeed8fdf4a74fa084e52d1852e4a2bd0685c315d2;
    uint256 internal constant B2_0 = 0x2b149d40ceb8aaae81be18991be06ac3b5b4c5e559dbefa33267e6dc24a138e5;

    // Verifying key. G2 points as (x.c1, x.c0, y.c1, y.c0): the precompile's order.
    uint256 internal constant ALPHA_X = 0x2d03e213448ab25e4d5110656886a103cd8bd0a9bb590fc3a2c56cad869fc1c1;
    uint256 internal constant ALPHA_Y = 0x1147a842b449b802a1f815358b2537e8e13ec1d619f21622d4cd0af296d28f4c;
    uint256 internal constant BETA_X1 = 0x155bc1352f4805e0a9d28361bc893cb4312ac7745a2fdab8190d793d6791a218;
    uint256 internal constant BETA_X0 = 0x143131cc63650bb3bcb645d2d49d04dc36329bf265ba05f32eaba6df3fa08287;
    uint256 internal constant BETA_Y1 = 0x14e28537e0a0bf79dd70e6b8e79ba7a37addd096e872e1359ea49608b13496fa;
    uint256 internal constant BETA_Y0 = 0x126ba7aacba1f55e91b4cbebddf8753378a14e974a54bf1fea4aba620a5bda64;
    uint256 internal constant GAMMA_X1 = 0x1502f057c480d37b6ec00274cc2c3db40658105c876384bd6da63740014af9ae;
    uint256 internal constant GAMMA_X0 = 0x0634628d817286f83aa57479946d3c12d109414a2476a977f198d0a5562eaca1;
    uint256 internal constant GAMMA_Y1 = 0x17f68e19679e8a4b6bcb0f4ec9a98d9751cfcfe3dcdf09b0fbe2dd0474e89cc0;
    uint256 internal constant GAMMA_Y0 = 0x13b3252977bc989838b64f7231c15cbfda670ae0e78b216870ca97e43b028312;
    uint256 internal constant DELTA_X1 = 0x17ab0822c039154b9d43a3a6a357560860633a05bcfa3e545bd3cb197b733b7f;
    uint256 internal constant DELTA_X0 = 0x2a236eef1ab37510bfa3db113cbf45b5aa772794a4b2967ec6df5c8456e4c272;
    uint256 internal constant DELTA_Y1 = 0x1dbcbb2db10f69d06324e85ac08642ffea4fe50e619a3a3ff4716d24a0cac8c5;
    uint256 internal constant DELTA_Y0 = 0x1ae045efbd588f4d2507a6a28923c2b74c41d6c57a32be89219b97522d97768f;
    uint256 internal constant IC0_X = 0x00212c0b141ef129a95aa24fba6ceaf9fb580421e4a1f979f9ba4e5ccb22bc7f;
    uint256 internal constant IC0_Y = 0x2c90cdcb6096fc9937ae1457b9f0406081b235f8c861cf79962e1b10396e811b;
    uint256 internal constant IC1_X = 0x2244d4f6cdb5915c5d2f48a987d2db8af6a59980536a1adc743d199f17b8614c;
    uint256 internal constant IC1_Y = 0x2493b75e5e6e6b3339d8637b76a9e2af9c8a3f6c5dd2d19061de13145f55b79a;
    uint256 internal constant IC2_X = 0x17e0062975fbf46655018956be15f492e227fa5bcdfaedbae9aa839d676b5f8c;
    uint256 internal constant IC2_Y = 0x2eeb5a683be4abaf92e4574c9502368c087742d49c416e5a5ad1a4c949761880;
    uint256 internal constant IC3_X = 0x05136dae1f6433d053e94a4a3524da70bd42fe969bfd18f07272380e652af2fc;
    uint256 internal constant IC3_Y = 0x23b27c5772b12d48d6d1346d35531a4a0934e357f89c52776cb8965c3b5e728a;
    uint256 internal constant IC4_X = 0x2e142bc99afed7b41c8cab95570cd66ebd411ca98117a98a6228a1cf1f7dbce0;
    uint256 internal constant IC4_Y = 0x15729762200814b21cc06f85511008f616ada9c16908ce6c43df778c9a71ad1c;
    uint256 internal constant IC5_X = 0x00aef79d7ba6d48a7e8b87f19bdfc9bdafc9414e0b5952bd09ae93c6486b0097;
    uint256 internal constant IC5_Y = 0x069e8256690c41a600fb3d495b1a96b652b6c69735b7bb41de8f97e43cf12778;

    /// @inheritdoc IGroth16Verifier
    function verifyProof(uint256[8] calldata proof, uint256[5] calldata input) external view returns (bool) {
        for (uint256 i = 0; i < 8; ++i) {
            if (proof[i] >= Q) return false;
        }
        for (uint256 i = 0; i < 5; ++i) {
            if (input[i] >= R) return false;
        }
        if (!_isOnCurveG1(proof[0], proof[1]) || !_isOnCurveG1(proof[6], proof[7])) return false;
        if (!_isOnCurveG2(proof[2], proof[3], proof[4], proof[5])) return false;

        uint256[2] memory vkX = [IC0_X, IC0_Y];
        if (!_mulAdd(vkX, IC1_X, IC1_Y, input[0])) return false;
        if (!_mulAdd(vkX, IC2_X, IC2_Y, input[1])) return false;
        if (!_mulAdd(vkX, IC3_X, IC3_Y, input[2])) return false;
        if (!_mulAdd(vkX, IC4_X, IC4_Y, input[3])) return false;
        if (!_mulAdd(vkX, IC5_X, IC5_Y, input[4])) return false;

        uint256[24] memory pairing = [
            proof[0],
            (Q - proof[1]) % Q,
            proof[2],
            proof[3],
            proof[4],
            proof[5],
            ALPHA_X,
            ALPHA_Y,
            BETA_X1,
            BETA_X0,
            BETA_Y1,
            BETA_Y0,
            vkX[0],
            vkX[1],
            GAMMA_X1,
            GAMMA_X0,
            GAMMA_Y1,
            GAMMA_Y0,
            proof[6],
            proof[7],
            DELTA_X1,
            DELTA_X0,
            DELTA_Y1,
            DELTA_Y0
        ];
        uint256[1] memory result;
        bool ok;
        assembly ("memory-safe") {
            ok := staticcall(gas(), 0x08, pairing, 768, result, 0x20)
        }
        return ok && result[0] == 1;
    }

    /// @dev Whether (x, y) is on y^2 = x^3 + 3 or is the point at infinity (0, 0). G1 has
    ///      cofactor 1: on the curve is in the group. Coordinates are already below Q.
    function _isOnCurveG1(uint256 x, uint256 y) private pure returns (bool) {
        if (x == 0 && y == 0) return true;
        return mulmod(y, y, Q) == addmod(mulmod(x, mulmod(x, x, Q), Q), 3, Q);
    }

    /// @dev Whether (x, y) is on the twist y^2 = x^3 + B2 over Fq2 = Fq[i]/(i^2 + 1), or is the
    ///      point at infinity (0, 0). Elements as (c1, c0); coordinates are already below Q.
    ///      Membership of the subgroup G2 is left to the pairing precompile.
    function _isOnCurveG2(uint256 x1, uint256 x0, uint256 y1, uint256 y0) private pure returns (bool) {
        if ((x1 | x0 | y1 | y0) == 0) return true;
        // x^2
        uint256 s0 = addmod(mulmod(x0, x0, Q), Q - mulmod(x1, x1, Q), Q);
        uint256 s1 = mulmod(addmod(x0, x0, Q), x1, Q);
        // x^3 + B2
        uint256 r0 = addmod(addmod(mulmod(s0, x0, Q), Q - mulmod(s1, x1, Q), Q), B2_0, Q);
        uint256 r1 = addmod(addmod(mulmod(s0, x1, Q), mulmod(s1, x0, Q), Q), B2_1, Q);
        // y^2
        uint256 t0 = addmod(mulmod(y0, y0, Q), Q - mulmod(y1, y1, Q), Q);
        uint256 t1 = mulmod(addmod(y0, y0, Q), y1, Q);
        return t0 == r0 && t1 == r1;
    }

    /// @dev acc += s * (x, y) with ecMul and ecAdd; false if a precompile fails (it cannot
    ///      for the key's points and any scalar).
    function _mulAdd(uint256[2] memory acc, uint256 x, uint256 y, uint256 s) private view returns (bool ok) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, x)
            mstore(add(p, 0x20), y)
            mstore(add(p, 0x40), s)
            ok := staticcall(gas(), 0x07, p, 0x60, p, 0x40)
            if ok {
                mstore(add(p, 0x40), mload(acc))
                mstore(add(p, 0x60), mload(add(acc, 0x20)))
                ok := staticcall(gas(), 0x06, p, 0x80, acc, 0x40)
            }
        }
    }
}
