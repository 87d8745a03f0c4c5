// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Settlement} from "../src/Settlement.sol";
import {TestStablecoin} from "../src/TestStablecoin.sol";
import {SettlementFixture} from "./utils/SettlementFixture.sol";
import {QuirkyToken} from "./mocks/QuirkyToken.sol";

/// @notice `deposit`, `depositWithPermit` and `requestForcedWithdrawal`.
contract SettlementDepositTest is SettlementFixture {
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    // --------------------------------------------------------------- deposit

    function test_deposit_queuesEntryAndMovesTokens() public {
        uint256 amount = 250_000_000; // 250 tUSDC
        _mint(usdc, alice, amount);
        vm.prank(alice);
        usdc.approve(address(settlement), amount);

        bytes32 expectedHash = _depositHash(bytes32(0), bob, address(usdc), uint128(amount));
        uint64 deadline = uint64(block.timestamp) + DEPOSIT_DEADLINE;
        vm.expectEmit(true, true, true, true, address(settlement));
        emit Settlement.Deposited(0, bob, address(usdc), uint128(amount), alice, expectedHash, deadline);
        vm.prank(alice);
        settlement.deposit(address(usdc), amount, bob);

        assertEq(usdc.balanceOf(alice), 0, "depositor debited");
        assertEq(usdc.balanceOf(address(settlement)), amount, "contract credited");
        assertEq(settlement.depositCount(), 1, "depositCount");
        assertEq(settlement.depositsConsumed(), 0, "nothing consumed");
        assertEq(settlement.pendingDeposits(address(usdc)), amount, "pendingDeposits");
        assertEq(settlement.ledgerSupply(address(usdc)), 0, "ledgerSupply untouched");

        Settlement.DepositEntry memory entry = settlement.depositEntry(0);
        assertEq(entry.rollingHash, expectedHash, "rollingHash");
        assertEq(entry.token, address(usdc), "token");
        assertEq(entry.deadline, deadline, "deadline");
        assertEq(entry.amount, amount, "amount");
        assertEq(settlement.depositHashAt(1), expectedHash, "depositHashAt(1)");
    }

    function test_deposit_rollingHashChainsAcrossTokensAndRecipients() public {
        _deposit(alice, usdc, 1, alice);
        _deposit(bob, dai, 3 ether, carol);
        vm.warp(block.timestamp + 100);
        _deposit(alice, usdc, 7_000_000, bob);

        // Chain computed by hand, independent of the fixture's model.
        bytes32 h1 = keccak256(abi.encodePacked(bytes32(0), alice, address(usdc), uint128(1)));
        bytes32 h2 = keccak256(abi.encodePacked(h1, carol, address(dai), uint128(3 ether)));
        bytes32 h3 = keccak256(abi.encodePacked(h2, bob, address(usdc), uint128(7_000_000)));
        assertEq(settlement.depositHashAt(0), bytes32(0), "prefix 0");
        assertEq(settlement.depositHashAt(1), h1, "prefix 1");
        assertEq(settlement.depositHashAt(2), h2, "prefix 2");
        assertEq(settlement.depositHashAt(3), h3, "prefix 3");
        assertEq(depositHashes[3], h3, "fixture model agrees");
        assertEq(settlement.depositEntry(2).deadline, START_TIME + 100 + DEPOSIT_DEADLINE, "later deadline");
        assertEq(settlement.pendingDeposits(address(usdc)), 7_000_001, "usdc pending");
        assertEq(settlement.pendingDeposits(address(dai)), 3 ether, "dai pending");
    }

    function test_deposit_revertsForUnsupportedToken() public {
        TestStablecoin other = new TestStablecoin("Other", "OTH", 6, owner);
        _mint(other, alice, 10);
        vm.startPrank(alice);
        other.approve(address(settlement), 10);
        vm.expectRevert(abi.encodeWithSelector(Settlement.UnsupportedToken.selector, address(other)));
        settlement.deposit(address(other), 10, alice);
        vm.stopPrank();
    }

    function test_deposit_revertsForZeroRecipient() public {
        _fundAndApprove(alice, usdc, 10);
        vm.expectRevert(Settlement.ZeroAddress.selector);
        vm.prank(alice);
        settlement.deposit(address(usdc), 10, address(0));
    }

    function test_deposit_revertsForZeroAmount() public {
        _fundAndApprove(alice, usdc, 10);
        vm.expectRevert(Settlement.ZeroAmount.selector);
        vm.prank(alice);
        settlement.deposit(address(usdc), 0, alice);
    }

    function test_deposit_revertsAboveLedgerBound() public {
        // The ledger holds at most 2^96 - 1 base units per slot: one more is refused here
        // rather than stopping the node's deposit queue.
        uint256 amount = 2 ** 96;
        _fundAndApprove(alice, dai, amount);
        vm.expectRevert(abi.encodeWithSelector(Settlement.DepositTooLarge.selector, amount, 2 ** 96 - 1));
        vm.prank(alice);
        settlement.deposit(address(dai), amount, alice);
        amount = uint256(type(uint128).max);
        _fundAndApprove(alice, dai, amount);
        vm.expectRevert(abi.encodeWithSelector(Settlement.DepositTooLarge.selector, amount, 2 ** 96 - 1));
        vm.prank(alice);
        settlement.deposit(address(dai), amount, alice);
    }

    function test_deposit_acceptsLedgerBound() public {
        uint256 amount = 2 ** 96 - 1;
        _fundAndApprove(alice, dai, amount);
        vm.prank(alice);
        settlement.deposit(address(dai), amount, alice);
        assertEq(settlement.pendingDeposits(address(dai)), amount, "pending");
    }

    function test_deposit_revertsWithoutAllowance() public {
        _mint(usdc, alice, 10);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(settlement), 0, 10)
        );
        vm.prank(alice);
        settlement.deposit(address(usdc), 10, alice);
    }

    function test_deposit_revertsWithoutBalance() public {
        vm.prank(alice);
        usdc.approve(address(settlement), 10);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, alice, 0, 10));
        vm.prank(alice);
        settlement.deposit(address(usdc), 10, alice);
    }

    function test_deposit_revertsInExodus() public {
        _enterExodus();
        _fundAndApprove(alice, usdc, 10);
        vm.expectRevert(Settlement.ExodusActive.selector);
        vm.prank(alice);
        settlement.deposit(address(usdc), 10, alice);
    }

    function test_deposit_creditsWhatWasReceived() public {
        QuirkyToken fee = _quirky();
        fee.setFeeBps(100); // 1% burnt on transfer
        fee.mint(alice, 1000);
        vm.startPrank(alice);
        fee.approve(address(settlement), 1000);
        vm.expectEmit(true, true, true, true, address(settlement));
        emit Settlement.Deposited(
            0,
            bob,
            address(fee),
            990,
            alice,
            _depositHash(bytes32(0), bob, address(fee), 990),
            uint64(block.timestamp) + DEPOSIT_DEADLINE
        );
        settlement.deposit(address(fee), 1000, bob);
        vm.stopPrank();
        assertEq(settlement.pendingDeposits(address(fee)), 990, "pending = received");
        assertEq(settlement.depositEntry(0).amount, 990, "entry = received");
        assertEq(fee.balanceOf(address(settlement)), 990, "balance");
    }

    function test_deposit_revertsWhenNothingReceived() public {
        QuirkyToken fee = _quirky();
        fee.setFeeBps(10_000); // everything burnt
        fee.mint(alice, 1000);
        vm.startPrank(alice);
        fee.approve(address(settlement), 1000);
        vm.expectRevert(Settlement.NoTokensReceived.selector);
        settlement.deposit(address(fee), 1000, alice);
        vm.stopPrank();
    }

    function test_deposit_revertsWhenReceivedExceedsLedgerBound() public {
        QuirkyToken inflating = _quirky();
        inflating.setBonus(2 ** 96 - 1); // the recipient gets far more than sent
        inflating.mint(alice, 1000);
        vm.startPrank(alice);
        inflating.approve(address(settlement), 1000);
        vm.expectRevert(abi.encodeWithSelector(Settlement.DepositTooLarge.selector, 2 ** 96 - 1 + 1000, 2 ** 96 - 1));
        settlement.deposit(address(inflating), 1000, alice);
        vm.stopPrank();
    }

    function test_deposit_isNonReentrant() public {
        QuirkyToken reentrant = _quirky();
        reentrant.mint(alice, 1000);
        reentrant.setHook(address(settlement), abi.encodeCall(Settlement.deposit, (address(reentrant), 1, alice)));
        vm.startPrank(alice);
        reentrant.approve(address(settlement), 1000);
        vm.expectRevert(ReentrancyGuard.ReentrancyGuardReentrantCall.selector);
        settlement.deposit(address(reentrant), 1000, alice);
        vm.stopPrank();
    }

    // ----------------------------------------------------- depositWithPermit

    function test_depositWithPermit_usesSignedPermit() public {
        uint256 amount = 42_000_000;
        _mint(usdc, alice, amount);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(usdc, aliceKey, alice, amount, deadline);

        vm.expectEmit(true, true, true, true, address(settlement));
        emit Settlement.Deposited(
            0,
            bob,
            address(usdc),
            uint128(amount),
            alice,
            _depositHash(bytes32(0), bob, address(usdc), uint128(amount)),
            uint64(block.timestamp) + DEPOSIT_DEADLINE
        );
        vm.prank(alice);
        settlement.depositWithPermit(address(usdc), amount, bob, deadline, v, r, s);

        assertEq(usdc.nonces(alice), 1, "permit consumed");
        assertEq(usdc.allowance(alice, address(settlement)), 0, "allowance spent");
        assertEq(usdc.balanceOf(address(settlement)), amount, "received");
        assertEq(settlement.pendingDeposits(address(usdc)), amount, "pending");
    }

    function test_depositWithPermit_frontRunPermitFallsBackToAllowance() public {
        uint256 amount = 5 ether;
        _mint(dai, alice, amount);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(dai, aliceKey, alice, amount, deadline);

        // A front-runner submits the permit from the mempool first.
        vm.prank(stranger);
        dai.permit(alice, address(settlement), amount, deadline, v, r, s);
        assertEq(dai.allowance(alice, address(settlement)), amount, "allowance from front-run permit");

        // The failing permit is ignored and the allowance it created is used.
        vm.prank(alice);
        settlement.depositWithPermit(address(dai), amount, alice, deadline, v, r, s);
        assertEq(dai.nonces(alice), 1, "nonce used once");
        assertEq(dai.allowance(alice, address(settlement)), 0, "allowance spent");
        assertEq(settlement.depositEntry(0).amount, amount, "deposited");
    }

    function test_depositWithPermit_cannotSpendSomeoneElsesPermit() public {
        uint256 amount = 1_000_000;
        _mint(usdc, alice, amount);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(usdc, aliceKey, alice, amount, deadline);
        // The permit is checked for the caller, so alice's signature does not let a
        // stranger move alice's tokens to a recipient of the stranger's choice.
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(settlement), 0, amount)
        );
        vm.prank(stranger);
        settlement.depositWithPermit(address(usdc), amount, stranger, deadline, v, r, s);
        assertEq(usdc.balanceOf(alice), amount, "alice keeps her tokens");
        assertEq(usdc.nonces(alice), 0, "alice's permit unused");
    }

    function test_depositWithPermit_revertsWithBadPermitAndNoAllowance() public {
        uint256 amount = 1_000_000;
        _mint(usdc, alice, amount);
        uint256 deadline = block.timestamp + 1 hours;
        // Signed by the wrong key: the permit fails, and there is no allowance to fall back on.
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(usdc, aliceKey + 1, alice, amount, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(settlement), 0, amount)
        );
        vm.prank(alice);
        settlement.depositWithPermit(address(usdc), amount, alice, deadline, v, r, s);
    }

    function test_depositWithPermit_expiredPermitWithAllowanceSucceeds() public {
        uint256 amount = 1_000_000;
        _fundAndApprove(alice, usdc, amount);
        uint256 deadline = block.timestamp - 1;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(usdc, aliceKey, alice, amount, deadline);
        vm.prank(alice);
        settlement.depositWithPermit(address(usdc), amount, alice, deadline, v, r, s);
        assertEq(usdc.nonces(alice), 0, "expired permit not applied");
        assertEq(settlement.depositCount(), 1, "deposited with the allowance");
    }

    function test_depositWithPermit_revertsForUnsupportedToken() public {
        TestStablecoin other = new TestStablecoin("Other", "OTH", 6, owner);
        _mint(other, alice, 10);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(other, aliceKey, alice, 10, deadline);
        vm.expectRevert(abi.encodeWithSelector(Settlement.UnsupportedToken.selector, address(other)));
        vm.prank(alice);
        settlement.depositWithPermit(address(other), 10, alice, deadline, v, r, s);
        // The contract did not even call the unsupported token's permit.
        assertEq(other.nonces(alice), 0, "permit untouched");
    }

    function test_depositWithPermit_revertsForZeroRecipient() public {
        _mint(usdc, alice, 10);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(usdc, aliceKey, alice, 10, deadline);
        vm.expectRevert(Settlement.ZeroAddress.selector);
        vm.prank(alice);
        settlement.depositWithPermit(address(usdc), 10, address(0), deadline, v, r, s);
    }

    function test_depositWithPermit_revertsInExodus() public {
        _enterExodus();
        _mint(usdc, alice, 10);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(usdc, aliceKey, alice, 10, deadline);
        vm.expectRevert(Settlement.ExodusActive.selector);
        vm.prank(alice);
        settlement.depositWithPermit(address(usdc), 10, alice, deadline, v, r, s);
    }

    // ----------------------------------------------- requestForcedWithdrawal

    function test_requestForcedWithdrawal_queuesRequest() public {
        bytes32 h1 = keccak256(abi.encodePacked(bytes32(0), alice, address(usdc), alice));
        uint64 deadline = uint64(block.timestamp) + FORCED_DEADLINE;
        vm.expectEmit(true, true, true, true, address(settlement));
        emit Settlement.ForcedWithdrawalRequested(0, alice, address(usdc), alice, h1, deadline);
        vm.prank(alice);
        settlement.requestForcedWithdrawal(address(usdc), alice);

        vm.warp(block.timestamp + 10);
        // bob names carol as the recipient: the rolling hash binds her.
        vm.expectEmit(true, true, true, true, address(settlement));
        bytes32 h2 = keccak256(abi.encodePacked(h1, bob, address(dai), carol));
        emit Settlement.ForcedWithdrawalRequested(1, bob, address(dai), carol, h2, deadline + 10);
        vm.prank(bob);
        settlement.requestForcedWithdrawal(address(dai), carol);
        assertNotEq(uint256(h2), uint256(keccak256(abi.encodePacked(h1, bob, address(dai), bob))), "recipient bound");

        assertEq(settlement.forcedCount(), 2, "forcedCount");
        assertEq(settlement.forcedConsumed(), 0, "forcedConsumed");
        Settlement.ForcedEntry memory first = settlement.forcedEntry(0);
        Settlement.ForcedEntry memory second = settlement.forcedEntry(1);
        assertEq(first.rollingHash, h1, "hash 1");
        assertEq(first.deadline, deadline, "deadline 1");
        assertEq(second.rollingHash, h2, "hash 2");
        assertEq(second.deadline, deadline + 10, "deadline 2");
        assertEq(settlement.forcedHashAt(2), h2, "forcedHashAt(2)");
    }

    function test_requestForcedWithdrawal_revertsForUnsupportedToken() public {
        vm.expectRevert(abi.encodeWithSelector(Settlement.UnsupportedToken.selector, stranger));
        vm.prank(alice);
        settlement.requestForcedWithdrawal(stranger, alice);
    }

    function test_requestForcedWithdrawal_revertsForZeroRecipient() public {
        vm.expectRevert(Settlement.ZeroAddress.selector);
        vm.prank(alice);
        settlement.requestForcedWithdrawal(address(usdc), address(0));
    }

    function test_requestForcedWithdrawal_revertsInExodus() public {
        _enterExodus();
        vm.expectRevert(Settlement.ExodusActive.selector);
        vm.prank(alice);
        settlement.requestForcedWithdrawal(address(usdc), alice);
    }

    // --------------------------------------------------------------- helpers

    function _fundAndApprove(address who, TestStablecoin token, uint256 amount) internal {
        _mint(token, who, amount);
        vm.prank(who);
        token.approve(address(settlement), amount);
    }

    function _quirky() internal returns (QuirkyToken token) {
        token = new QuirkyToken("Quirky", "QRK");
        _addTokenNow(address(token));
    }

    function _signPermit(TestStablecoin token, uint256 key, address holder, uint256 value, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        bytes32 structHash = keccak256(
            abi.encode(PERMIT_TYPEHASH, holder, address(settlement), value, token.nonces(holder), deadline)
        );
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
        (v, r, s) = vm.sign(key, digest);
    }
}
