// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Settlement} from "../src/Settlement.sol";
import {SettlementFixture} from "./utils/SettlementFixture.sol";
import {BatchData, Withdrawal} from "./utils/BatchData.sol";
import {QuirkyToken} from "./mocks/QuirkyToken.sol";

/// @notice `claimWithdrawal`: Merkle proofs, the finalization delay and the claimed bitmap.
contract SettlementClaimTest is SettlementFixture {
    bytes32 internal constant ROOT_1 = bytes32(uint256(0x1111));

    /// @dev Commits one batch with `n` withdrawals split over usdc and dai and several recipients.
    function _batchOf(uint256 n) internal returns (uint64 batchNumber, Withdrawal[] memory ws) {
        address[3] memory people = [alice, bob, carol];
        ws = new Withdrawal[](n);
        uint256 usdcTotal;
        uint256 daiTotal;
        for (uint256 i = 0; i < n; ++i) {
            bool isDai = i % 2 == 1;
            uint256 amount = isDai ? (i + 1) * 0.5 ether : (i + 1) * 1000;
            ws[i] = Withdrawal(people[i % 3], isDai ? address(dai) : address(usdc), uint128(amount));
            if (isDai) daiTotal += amount;
            else usdcTotal += amount;
        }
        // Exactly what the withdrawals need, plus one unit that stays in the ledger.
        _deposit(alice, usdc, usdcTotal + 1, alice);
        _deposit(alice, dai, daiTotal + 1, alice);
        batchNumber = _commit(ROOT_1, ws);
    }

    function test_claimWithdrawal_paysRecipientAfterDelay() public {
        (uint64 b, Withdrawal[] memory ws) = _batchOf(3);
        _warpToFinal(b);
        bytes32[] memory path = BatchData.proof(ws, 2);
        assertEq(path.length, 2, "depth 2 for 3 leaves");
        assertEq(path[0], bytes32(0), "leaf 2 has no right sibling: paired with zero");

        uint256 unclaimedBefore = settlement.unclaimedWithdrawals(address(usdc));
        vm.expectEmit(true, true, true, true, address(settlement));
        emit Settlement.WithdrawalClaimed(b, 2, carol, address(usdc), 3000);
        // Anyone may submit the claim; the money goes to the recipient.
        vm.prank(stranger);
        settlement.claimWithdrawal(b, 2, carol, address(usdc), 3000, path);

        assertEq(usdc.balanceOf(carol), 3000, "recipient paid");
        assertEq(usdc.balanceOf(stranger), 0, "caller not paid");
        assertEq(settlement.unclaimedWithdrawals(address(usdc)), unclaimedBefore - 3000, "unclaimed");
        assertTrue(settlement.isClaimed(b, 2), "claimed bit set");
        assertFalse(settlement.isClaimed(b, 0), "neighbour 0 untouched");
        assertFalse(settlement.isClaimed(b, 1), "neighbour 1 untouched");
    }

    function test_claimWithdrawal_everyLeafOfEveryTreeShape() public {
        uint256[6] memory sizes = [uint256(1), 2, 3, 5, 8, 13];
        for (uint256 s = 0; s < sizes.length; ++s) {
            (uint64 b, Withdrawal[] memory ws) = _batchOf(sizes[s]);
            _warpToFinal(b);
            for (uint256 i = 0; i < ws.length; ++i) {
                uint256 before = _balance(ws[i].token, ws[i].recipient);
                _claim(b, uint32(i));
                assertEq(_balance(ws[i].token, ws[i].recipient), before + ws[i].amount, "paid");
            }
        }
        assertEq(settlement.unclaimedWithdrawals(address(usdc)), 0, "usdc all claimed");
        assertEq(settlement.unclaimedWithdrawals(address(dai)), 0, "dai all claimed");
    }

    function test_claimWithdrawal_singleLeafTakesEmptyProof() public {
        _deposit(alice, usdc, 100, alice);
        uint64 b = _commit(ROOT_1, _one(bob, address(usdc), 100));
        _warpToFinal(b);
        settlement.claimWithdrawal(b, 0, bob, address(usdc), 100, new bytes32[](0));
        assertEq(usdc.balanceOf(bob), 100, "paid");
    }

    function test_claimWithdrawal_bitmapBeyondFirstWord() public {
        (uint64 b,) = _batchOf(300);
        _warpToFinal(b);
        _claim(b, 257);
        _claim(b, 1);
        assertTrue(settlement.isClaimed(b, 257), "257");
        assertTrue(settlement.isClaimed(b, 1), "1");
        assertFalse(settlement.isClaimed(b, 256), "256");
        assertFalse(settlement.isClaimed(b, 258), "258");
        assertFalse(settlement.isClaimed(b, 0), "0");
        vm.expectRevert(abi.encodeWithSelector(Settlement.AlreadyClaimed.selector, b, uint32(257)));
        _claim(b, 257);
    }

    function test_claimWithdrawal_finalizationBoundary() public {
        (uint64 b, Withdrawal[] memory ws) = _batchOf(2);
        uint64 claimableAt = uint64(settlement.batch(b).committedAt + FINALIZATION_DELAY);
        bytes32[] memory path = BatchData.proof(ws, 0);

        vm.expectRevert(abi.encodeWithSelector(Settlement.NotFinalized.selector, claimableAt));
        settlement.claimWithdrawal(b, 0, ws[0].recipient, ws[0].token, ws[0].amount, path);

        vm.warp(claimableAt - 1);
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotFinalized.selector, claimableAt));
        settlement.claimWithdrawal(b, 0, ws[0].recipient, ws[0].token, ws[0].amount, path);

        vm.warp(claimableAt);
        settlement.claimWithdrawal(b, 0, ws[0].recipient, ws[0].token, ws[0].amount, path);
        assertTrue(settlement.isClaimed(b, 0), "claimed at claimableAt");
    }

    function test_claimWithdrawal_revertsOnDoubleClaim() public {
        (uint64 b, Withdrawal[] memory ws) = _batchOf(4);
        _warpToFinal(b);
        _claim(b, 3);
        bytes32[] memory path = BatchData.proof(ws, 3);
        vm.expectRevert(abi.encodeWithSelector(Settlement.AlreadyClaimed.selector, b, uint32(3)));
        settlement.claimWithdrawal(b, 3, ws[3].recipient, ws[3].token, ws[3].amount, path);
    }

    function test_claimWithdrawal_revertsOnWrongProof() public {
        (uint64 b, Withdrawal[] memory ws) = _batchOf(5);
        _warpToFinal(b);
        bytes32[] memory path = BatchData.proof(ws, 1);
        Withdrawal memory w = ws[1];

        // A flipped sibling.
        bytes32[] memory bad = BatchData.proof(ws, 1);
        bad[1] = bytes32(uint256(bad[1]) ^ 1);
        _expectInvalid(b, 1, w, bad);
        // Another leaf's proof.
        _expectInvalid(b, 1, w, BatchData.proof(ws, 2));
        // The right proof for other values.
        _expectInvalid(b, 1, Withdrawal(w.recipient, w.token, w.amount + 1), path);
        _expectInvalid(b, 1, Withdrawal(stranger, w.token, w.amount), path);
        _expectInvalid(b, 1, Withdrawal(w.recipient, ws[0].token, w.amount), path);
        // The right values at another index.
        _expectInvalid(b, 0, w, path);
        // Still claimable with the right proof afterwards.
        settlement.claimWithdrawal(b, 1, w.recipient, w.token, w.amount, path);
    }

    function test_claimWithdrawal_revertsOnWrongProofLength() public {
        (uint64 b, Withdrawal[] memory ws) = _batchOf(4);
        _warpToFinal(b);
        bytes32[] memory path = BatchData.proof(ws, 0); // depth 2
        bytes32[] memory shorter = new bytes32[](1);
        shorter[0] = path[0];
        _expectInvalid(b, 0, ws[0], shorter);
        bytes32[] memory longer = new bytes32[](3);
        longer[0] = path[0];
        longer[1] = path[1];
        _expectInvalid(b, 0, ws[0], longer);
        _expectInvalid(b, 0, ws[0], new bytes32[](0));
    }

    function test_claimWithdrawal_revertsOnInternalNodeAsLeaf() public {
        // A two-leaf tree: claiming the root itself with an empty proof must fail, the
        // proof length pins the depth.
        (uint64 b, Withdrawal[] memory ws) = _batchOf(2);
        _warpToFinal(b);
        bytes32[] memory oneLevelUp = new bytes32[](0);
        _expectInvalid(b, 0, ws[0], oneLevelUp);
    }

    function test_claimWithdrawal_revertsForUnknownBatch() public {
        (uint64 b, Withdrawal[] memory ws) = _batchOf(1);
        _warpToFinal(b);
        vm.expectRevert(abi.encodeWithSelector(Settlement.UnknownBatch.selector, uint64(0)));
        settlement.claimWithdrawal(0, 0, ws[0].recipient, ws[0].token, ws[0].amount, new bytes32[](0));
        vm.expectRevert(abi.encodeWithSelector(Settlement.UnknownBatch.selector, b + 1));
        settlement.claimWithdrawal(b + 1, 0, ws[0].recipient, ws[0].token, ws[0].amount, new bytes32[](0));
    }

    function test_claimWithdrawal_revertsForIndexOutOfRange() public {
        (uint64 b, Withdrawal[] memory ws) = _batchOf(3);
        _warpToFinal(b);
        // Index 3 would be the zero padding of the last pair.
        bytes32[] memory path = BatchData.proof(ws, 2);
        vm.expectRevert(abi.encodeWithSelector(Settlement.IndexOutOfRange.selector, uint256(3), uint256(3)));
        settlement.claimWithdrawal(b, 3, ws[2].recipient, ws[2].token, ws[2].amount, path);

        uint64 empty = _commit(bytes32(uint256(5)), _noWithdrawals());
        _warpToFinal(empty);
        vm.expectRevert(abi.encodeWithSelector(Settlement.IndexOutOfRange.selector, uint256(0), uint256(0)));
        settlement.claimWithdrawal(empty, 0, alice, address(usdc), 1, new bytes32[](0));
    }

    function test_claimWithdrawal_stillWorksInExodus() public {
        (uint64 b,) = _batchOf(2);
        _enterExodus();
        assertTrue(settlement.exodus(), "exodus");
        _warpToFinal(b);
        _claim(b, 0);
        _claim(b, 1);
        assertTrue(settlement.isClaimed(b, 1), "claimed in exodus");
    }

    function test_claimWithdrawal_isNonReentrant() public {
        QuirkyToken token = new QuirkyToken("Quirky", "QRK");
        _addTokenNow(address(token));
        token.mint(alice, 10);
        vm.startPrank(alice);
        token.approve(address(settlement), 10);
        settlement.deposit(address(token), 10, alice);
        vm.stopPrank();
        depositHashes.push(_depositHash(depositHashes[depositHashes.length - 1], alice, address(token), 10));
        Withdrawal[] memory ws = new Withdrawal[](2);
        ws[0] = Withdrawal(alice, address(token), 5);
        ws[1] = Withdrawal(bob, address(token), 5);
        uint64 b = _commit(ROOT_1, ws);
        _warpToFinal(b);

        // The token calls back into the claim of the other withdrawal while paying out.
        token.setHook(
            address(settlement),
            abi.encodeCall(Settlement.claimWithdrawal, (b, 1, bob, address(token), 5, BatchData.proof(ws, 1)))
        );
        bytes32[] memory path = BatchData.proof(ws, 0);
        vm.expectRevert(ReentrancyGuard.ReentrancyGuardReentrantCall.selector);
        settlement.claimWithdrawal(b, 0, alice, address(token), 5, path);
    }

    // --------------------------------------------------------------- helpers

    function _expectInvalid(uint64 b, uint32 index, Withdrawal memory w, bytes32[] memory path) internal {
        vm.expectRevert(Settlement.InvalidMerkleProof.selector);
        settlement.claimWithdrawal(b, index, w.recipient, w.token, w.amount, path);
    }

    function _balance(address token, address who) internal view returns (uint256) {
        return token == address(usdc) ? usdc.balanceOf(who) : dai.balanceOf(who);
    }
}
