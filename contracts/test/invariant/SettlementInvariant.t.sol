// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Settlement} from "../../src/Settlement.sol";
import {TestStablecoin} from "../../src/TestStablecoin.sol";
import {MockGroth16Verifier} from "../mocks/MockGroth16Verifier.sol";
import {QuirkyToken} from "../mocks/QuirkyToken.sol";
import {InvariantTest, FuzzSelector} from "../utils/InvariantTest.sol";
import {SettlementHandler} from "./SettlementHandler.sol";

/// @title Invariants of the settlement contract under random operation
/// @notice The fuzzer calls the handler's steps (deposits, forced requests, valid and broken
///         commits, claims, exodus, exits, refunds) and, interleaved, the settlement
///         contract's own state-changing functions directly with random arguments from a
///         fixed set of senders that includes the owner and the operator. The direct calls
///         almost always revert; they are there so that "only a valid commit changes the
///         root" is tested against every entry point, not just the handler's.
///         Tokens: a 6- and an 18-decimal test stablecoin and a 1% fee-on-transfer token.
contract SettlementInvariantTest is InvariantTest {
    bytes32 internal constant GENESIS_ROOT = bytes32(uint256(0x5eed));

    Settlement internal settlement;
    SettlementHandler internal handler;
    MockGroth16Verifier internal verifier;
    address internal owner;
    address internal operator;
    address internal guardian;
    address internal receiptSigner;

    function setUp() public {
        vm.warp(1_700_000_000);
        owner = makeAddr("owner");
        operator = makeAddr("operator");
        guardian = makeAddr("guardian");
        receiptSigner = makeAddr("receiptSigner");
        verifier = new MockGroth16Verifier();

        address[] memory tokens = new address[](3);
        QuirkyToken fee = new QuirkyToken("Fee token", "FEE");
        fee.setFeeBps(100);
        TestStablecoin usdc = new TestStablecoin("Test USD Coin", "tUSDC", 6, address(this));
        TestStablecoin dai = new TestStablecoin("Test Dai", "tDAI", 18, address(this));
        tokens[0] = address(usdc);
        tokens[1] = address(dai);
        tokens[2] = address(fee);
        settlement = new Settlement(
            owner,
            operator,
            guardian,
            receiptSigner,
            verifier,
            GENESIS_ROOT,
            tokens,
            Settlement.Periods(1 hours, 1 days, 7 days, false),
            Settlement.OutflowConfig({limitBps: 1_000, period: 1 days, delay: 2 days})
        );

        address[] memory actors = new address[](4);
        actors[0] = makeAddr("alice");
        actors[1] = makeAddr("bob");
        actors[2] = makeAddr("carol");
        actors[3] = makeAddr("dave");
        handler = new SettlementHandler(settlement, verifier, tokens, actors, GENESIS_ROOT);
        // The handler mints the stablecoins it deposits.
        usdc.transferOwnership(address(handler));
        dai.transferOwnership(address(handler));

        // forge picks uniformly among all targeted (contract, selector) entries: listing a
        // step twice makes it twice as likely. The handler's steps get about two thirds of
        // the calls, valid commits and deposits the most.
        bytes4[] memory steps = new bytes4[](24);
        for (uint256 i = 0; i < 24; i += 12) {
            steps[i] = SettlementHandler.deposit.selector;
            steps[i + 1] = SettlementHandler.deposit.selector;
            steps[i + 2] = SettlementHandler.requestForcedWithdrawal.selector;
            steps[i + 3] = SettlementHandler.commitBatch.selector;
            steps[i + 4] = SettlementHandler.commitBatch.selector;
            steps[i + 5] = SettlementHandler.commitBatch.selector;
            steps[i + 6] = SettlementHandler.commitInvalid.selector;
            steps[i + 7] = SettlementHandler.claim.selector;
            steps[i + 8] = SettlementHandler.claim.selector;
            steps[i + 9] =
                i == 0 ? SettlementHandler.activateExodus.selector : SettlementHandler.guardianExodus.selector;
            steps[i + 10] = SettlementHandler.exit.selector;
            steps[i + 11] = SettlementHandler.refundDeposit.selector;
        }
        targetContract(address(handler));
        targetSelector(FuzzSelector(address(handler), steps));

        bytes4[] memory direct = new bytes4[](21);
        direct[0] = Settlement.deposit.selector;
        direct[1] = Settlement.depositWithPermit.selector;
        direct[2] = Settlement.requestForcedWithdrawal.selector;
        direct[3] = Settlement.commitBatch.selector;
        direct[4] = Settlement.claimWithdrawal.selector;
        direct[5] = Settlement.activateExodus.selector;
        direct[6] = Settlement.exit.selector;
        direct[7] = Settlement.refundDeposit.selector;
        direct[8] = Settlement.proposeToken.selector;
        direct[9] = Settlement.proposeOperator.selector;
        direct[10] = settlement.transferOwnership.selector;
        direct[11] = settlement.acceptOwnership.selector;
        direct[12] = settlement.renounceOwnership.selector;
        direct[13] = Settlement.executeToken.selector;
        direct[14] = Settlement.cancelToken.selector;
        direct[15] = Settlement.executeOperator.selector;
        direct[16] = Settlement.cancelOperator.selector;
        direct[17] = Settlement.guardianExodus.selector;
        direct[18] = Settlement.proposeReceiptSigner.selector;
        direct[19] = Settlement.executeReceiptSigner.selector;
        direct[20] = Settlement.cancelReceiptSigner.selector;
        targetContract(address(settlement));
        targetSelector(FuzzSelector(address(settlement), direct));

        targetSender(owner);
        targetSender(operator);
        for (uint256 i = 0; i < actors.length; ++i) {
            targetSender(actors[i]);
        }
        targetSender(guardian);
        targetSender(makeAddr("stranger"));
    }

    function invariant_tokensHeldEqualObligations() public view {
        address[] memory tokens = handler.tokens();
        for (uint256 i = 0; i < tokens.length; ++i) {
            address token = tokens[i];
            uint256 held = TestStablecoin(token).balanceOf(address(settlement));
            uint256 unclaimed = settlement.unclaimedWithdrawals(token);
            uint256 pending = settlement.pendingDeposits(token);
            uint256 ledger = settlement.ledgerSupply(token);
            uint256 refused = settlement.refusedDeposits(token);
            assertGe(held, unclaimed + pending + refused, "held >= unclaimed withdrawals + pending + refused deposits");
            assertEq(
                held, unclaimed + pending + refused + ledger, "held == unclaimed + pending + refused + ledger supply"
            );
        }
    }

    function invariant_pendingDepositsMatchQueue() public view {
        address[] memory tokens = handler.tokens();
        uint256[] memory sums = new uint256[](tokens.length);
        uint64 count = settlement.depositCount();
        uint64 consumed = settlement.depositsConsumed();
        assertLe(consumed, count, "consumed <= queued");
        // In exodus, deposits in [depositsConsumed, voidedDepositsEnd) were consumed by void
        // batches: their money sits in the ledger supply, not in the pending pool.
        uint64 voidedEnd = settlement.voidedDepositsEnd();
        assertLe(voidedEnd, count, "voided end <= queued");
        for (uint64 i = consumed > voidedEnd ? consumed : voidedEnd; i < count; ++i) {
            Settlement.DepositEntry memory entry = settlement.depositEntry(i);
            for (uint256 t = 0; t < tokens.length; ++t) {
                if (entry.token == tokens[t]) sums[t] += entry.amount;
            }
        }
        for (uint256 t = 0; t < tokens.length; ++t) {
            assertEq(settlement.pendingDeposits(tokens[t]), sums[t], "pending == unconsumed, unrefunded entries");
        }
        assertLe(settlement.forcedConsumed(), settlement.forcedCount(), "forced consumed <= queued");
    }

    /// @notice No claim, exit or refund ever pays out more than deposits brought in, and
    ///         the contract holds exactly the difference.
    function invariant_payoutsNeverExceedDeposits() public view {
        address[] memory tokens = handler.tokens();
        for (uint256 i = 0; i < tokens.length; ++i) {
            address token = tokens[i];
            uint256 paid = handler.ghostPaidOut(token);
            uint256 deposited = handler.ghostDeposited(token);
            assertLe(paid, deposited, "paid out <= deposited");
            assertEq(TestStablecoin(token).balanceOf(address(settlement)), deposited - paid, "held == in - out");
        }
    }

    /// @notice Batches after the exodus batch are void: never finalized, and the exodus batch
    ///         is the last finalized one.
    function invariant_voidBatchesStayVoid() public view {
        if (!settlement.exodus()) return;
        uint64 e = settlement.exodusBatchNumber();
        assertEq(settlement.lastFinalizedBatchNumber(), e, "last finalized == exodus batch");
        assertEq(settlement.exitRoot(), settlement.batch(e).root, "exit root");
        if (e < settlement.lastBatchNumber()) assertFalse(settlement.isFinalized(e + 1), "void batch finalized");
        assertTrue(settlement.isFinalized(e), "exodus batch finalized");
    }

    /// @notice `finalizedAt` never decreases with the batch number and is never before
    ///         `committedAt + finalizationDelay` (the handler checks each commit against its
    ///         own model of the outflow limit).
    function invariant_finalizationIsMonotone() public view {
        uint64 last = settlement.lastBatchNumber();
        uint64 delay = settlement.finalizationDelay();
        uint64 previous = 0;
        for (uint64 b = 1; b <= last; ++b) {
            Settlement.Batch memory batch = settlement.batch(b);
            assertGe(batch.finalizedAt, previous, "finalizedAt never decreases");
            assertGe(batch.finalizedAt, batch.committedAt + delay, "not before the finalization delay");
            previous = batch.finalizedAt;
        }
    }

    function invariant_noDoubleExitOrClaim() public view {
        assertLe(handler.ghostMaxExitCount(), 1, "an (owner, token) slot exited twice");
        assertLe(handler.ghostMaxClaimCount(), 1, "a withdrawal was paid twice");
    }

    function invariant_rootChangesOnlyThroughCommits() public view {
        assertEq(settlement.stateRoot(), handler.ghostLastRoot(), "stateRoot == last root the handler committed");
        assertEq(settlement.lastBatchNumber(), handler.ghostCommits(), "lastBatchNumber == successful commits");
        assertEq(settlement.batch(handler.ghostCommits()).root, handler.ghostLastRoot(), "last batch's root");
    }

    function invariant_exodusIsFinal() public view {
        if (handler.ghostExodusSeen()) assertTrue(settlement.exodus(), "exodus switched off");
    }

    function invariant_handlerPredictedEveryOutcome() public view {
        assertEq(handler.unexpectedFailures(), 0, handler.lastFailure());
    }
}
