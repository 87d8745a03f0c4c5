// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Settlement} from "../src/Settlement.sol";
import {IGroth16Verifier} from "../src/IGroth16Verifier.sol";
import {SettlementFixture} from "./utils/SettlementFixture.sol";
import {Withdrawal} from "./utils/BatchData.sol";

/// @notice Constructor, governance (token allowlist, operator, Ownable2Step) and the pure
///         and view helpers of the settlement contract.
contract SettlementAdminTest is SettlementFixture {
    // ----------------------------------------------------------- constructor

    function test_constructor_setsInitialState() public view {
        assertEq(settlement.owner(), owner, "owner");
        assertEq(settlement.pendingOwner(), address(0), "pendingOwner");
        assertEq(settlement.operator(), operator, "operator");
        assertEq(address(settlement.verifier()), address(verifier), "verifier");
        assertEq(settlement.finalizationDelay(), FINALIZATION_DELAY, "finalizationDelay");
        assertEq(settlement.depositDeadlinePeriod(), DEPOSIT_DEADLINE, "depositDeadlinePeriod");
        assertEq(settlement.forcedDeadlinePeriod(), FORCED_DEADLINE, "forcedDeadlinePeriod");
        assertEq(settlement.stateRoot(), GENESIS_ROOT, "stateRoot");
        assertEq(settlement.lastBatchNumber(), 0, "lastBatchNumber");
        assertFalse(settlement.exodus(), "exodus");
        assertEq(settlement.depositCount(), 0, "depositCount");
        assertEq(settlement.depositsConsumed(), 0, "depositsConsumed");
        assertEq(settlement.forcedCount(), 0, "forcedCount");
        assertEq(settlement.forcedConsumed(), 0, "forcedConsumed");
        assertTrue(settlement.supportedToken(address(usdc)), "usdc supported");
        assertTrue(settlement.supportedToken(address(dai)), "dai supported");
        assertFalse(settlement.supportedToken(stranger), "random address unsupported");

        address[] memory list = settlement.tokens();
        assertEq(list.length, 2, "tokens length");
        assertEq(list[0], address(usdc), "tokens[0]");
        assertEq(list[1], address(dai), "tokens[1]");

        Settlement.Batch memory genesis = settlement.batch(0);
        assertEq(genesis.root, GENESIS_ROOT, "genesis root");
        assertEq(genesis.withdrawalsRoot, bytes32(0), "genesis withdrawalsRoot");
        assertEq(genesis.committedAt, START_TIME, "genesis committedAt");
        assertEq(genesis.withdrawalCount, 0, "genesis withdrawalCount");
        assertEq(genesis.depositsConsumed, 0, "genesis depositsConsumed");
        assertEq(settlement.guardian(), guardian, "guardian");
        assertEq(settlement.timelockDelay(), FINALIZATION_DELAY, "timelockDelay");
        assertEq(settlement.exodusBatchNumber(), 0, "exodusBatchNumber");
        assertEq(settlement.pendingOperator(), address(0), "pendingOperator");
    }

    function test_constructor_emitsOperatorAndTokenEvents() public {
        address[] memory tokens = new address[](2);
        tokens[0] = address(usdc);
        tokens[1] = address(dai);
        // The deployment address is not known in advance: check topics and data only.
        vm.expectEmit(true, true, false, true);
        emit Settlement.OperatorChanged(address(0), operator);
        vm.expectEmit(true, false, false, true);
        emit Settlement.TokenAdded(address(usdc));
        vm.expectEmit(true, false, false, true);
        emit Settlement.TokenAdded(address(dai));
        new Settlement(
            owner,
            operator,
            guardian,
            receiptSigner,
            verifier,
            GENESIS_ROOT,
            tokens,
            Settlement.Periods(1, 2, 3, false),
            _noOutflowLimit()
        );
    }

    function test_constructor_acceptsLargestFieldElementAsGenesis() public {
        Settlement s = new Settlement(
            owner,
            operator,
            guardian,
            receiptSigner,
            verifier,
            bytes32(R - 1),
            new address[](0),
            Settlement.Periods(1, 2, 3, false),
            _noOutflowLimit()
        );
        assertEq(s.stateRoot(), bytes32(R - 1), "genesis r-1");
        assertEq(s.tokens().length, 0, "no tokens");
    }

    function test_constructor_revertsOnZeroOperator() public {
        vm.expectRevert(Settlement.ZeroAddress.selector);
        new Settlement(
            owner,
            address(0),
            guardian,
            receiptSigner,
            verifier,
            GENESIS_ROOT,
            new address[](0),
            Settlement.Periods(1, 2, 3, false),
            _noOutflowLimit()
        );
    }

    function test_constructor_revertsOnZeroVerifier() public {
        vm.expectRevert(Settlement.ZeroAddress.selector);
        new Settlement(
            owner,
            operator,
            guardian,
            receiptSigner,
            IGroth16Verifier(address(0)),
            GENESIS_ROOT,
            new address[](0),
            Settlement.Periods(1, 2, 3, false),
            _noOutflowLimit()
        );
    }

    function test_constructor_revertsOnZeroOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new Settlement(
            address(0),
            operator,
            guardian,
            receiptSigner,
            verifier,
            GENESIS_ROOT,
            new address[](0),
            Settlement.Periods(1, 2, 3, false),
            _noOutflowLimit()
        );
    }

    function test_constructor_revertsOnGenesisRootOutsideField() public {
        vm.expectRevert(abi.encodeWithSelector(Settlement.RootNotInField.selector, bytes32(R)));
        new Settlement(
            owner,
            operator,
            guardian,
            receiptSigner,
            verifier,
            bytes32(R),
            new address[](0),
            Settlement.Periods(1, 2, 3, false),
            _noOutflowLimit()
        );
    }

    function test_constructor_acceptsLongestPeriods() public {
        uint64 max = 365 days;
        Settlement s = new Settlement(
            owner,
            operator,
            guardian,
            receiptSigner,
            verifier,
            GENESIS_ROOT,
            new address[](0),
            Settlement.Periods(max, max, max, false),
            Settlement.OutflowConfig(0, max, max)
        );
        assertEq(s.finalizationDelay(), max, "finalization");
        assertEq(s.forcedDeadlinePeriod(), max, "forced");
    }

    function test_constructor_revertsOnTooLongPeriods() public {
        uint64 tooLong = 365 days + 1;
        vm.expectRevert(abi.encodeWithSelector(Settlement.PeriodTooLong.selector, tooLong));
        new Settlement(
            owner,
            operator,
            guardian,
            receiptSigner,
            verifier,
            GENESIS_ROOT,
            new address[](0),
            Settlement.Periods(tooLong, 2, 3, false),
            _noOutflowLimit()
        );
        vm.expectRevert(abi.encodeWithSelector(Settlement.PeriodTooLong.selector, tooLong));
        new Settlement(
            owner,
            operator,
            guardian,
            receiptSigner,
            verifier,
            GENESIS_ROOT,
            new address[](0),
            Settlement.Periods(1, tooLong, 3, false),
            _noOutflowLimit()
        );
        vm.expectRevert(abi.encodeWithSelector(Settlement.PeriodTooLong.selector, type(uint64).max));
        new Settlement(
            owner,
            operator,
            guardian,
            receiptSigner,
            verifier,
            GENESIS_ROOT,
            new address[](0),
            Settlement.Periods(1, 2, type(uint64).max, false),
            _noOutflowLimit()
        );
    }

    function test_constructor_revertsOnZeroToken() public {
        address[] memory tokens = new address[](1);
        vm.expectRevert(Settlement.ZeroAddress.selector);
        new Settlement(
            owner,
            operator,
            guardian,
            receiptSigner,
            verifier,
            GENESIS_ROOT,
            tokens,
            Settlement.Periods(1, 2, 3, false),
            _noOutflowLimit()
        );
    }

    function test_constructor_revertsOnDuplicateToken() public {
        address[] memory tokens = new address[](2);
        tokens[0] = address(usdc);
        tokens[1] = address(usdc);
        vm.expectRevert(abi.encodeWithSelector(Settlement.TokenAlreadySupported.selector, address(usdc)));
        new Settlement(
            owner,
            operator,
            guardian,
            receiptSigner,
            verifier,
            GENESIS_ROOT,
            tokens,
            Settlement.Periods(1, 2, 3, false),
            _noOutflowLimit()
        );
    }

    // ------------------------------------------------------- token timelock

    function test_proposeToken_thenExecuteAfterTimelock() public {
        address token = makeAddr("newToken");
        uint64 executableAt = uint64(block.timestamp) + FINALIZATION_DELAY;
        assertEq(settlement.timelockDelay(), FINALIZATION_DELAY, "timelock = finalization delay");
        vm.expectEmit(true, false, false, true, address(settlement));
        emit Settlement.TokenProposed(token, executableAt);
        vm.prank(owner);
        settlement.proposeToken(token);
        assertEq(settlement.tokenExecutableAt(token), executableAt, "executableAt");
        assertFalse(settlement.supportedToken(token), "not supported while proposed");

        vm.warp(executableAt - 1);
        vm.expectRevert(abi.encodeWithSelector(Settlement.TimelockNotElapsed.selector, executableAt));
        settlement.executeToken(token);

        vm.warp(executableAt);
        vm.expectEmit(true, false, false, true, address(settlement));
        emit Settlement.TokenAdded(token);
        vm.prank(stranger); // anyone may execute
        settlement.executeToken(token);
        assertTrue(settlement.supportedToken(token), "supported");
        assertEq(settlement.tokenExecutableAt(token), 0, "proposal cleared");
        address[] memory list = settlement.tokens();
        assertEq(list.length, 3, "tokens length");
        assertEq(list[2], token, "appended last");

        vm.expectRevert(Settlement.NothingProposed.selector);
        settlement.executeToken(token);
    }

    function test_cancelToken_withdrawsTheProposal() public {
        address token = makeAddr("newToken");
        vm.prank(owner);
        settlement.proposeToken(token);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, operator));
        vm.prank(operator);
        settlement.cancelToken(token);
        vm.expectEmit(true, false, false, true, address(settlement));
        emit Settlement.TokenProposalCancelled(token);
        vm.prank(owner);
        settlement.cancelToken(token);
        vm.warp(block.timestamp + FINALIZATION_DELAY);
        vm.expectRevert(Settlement.NothingProposed.selector);
        settlement.executeToken(token);
        vm.expectRevert(Settlement.NothingProposed.selector);
        vm.prank(owner);
        settlement.cancelToken(token);
    }

    function test_proposeToken_againRestartsTheTimelock() public {
        address token = makeAddr("newToken");
        vm.prank(owner);
        settlement.proposeToken(token);
        vm.warp(block.timestamp + FINALIZATION_DELAY - 1);
        vm.prank(owner);
        settlement.proposeToken(token);
        uint64 executableAt = uint64(block.timestamp) + FINALIZATION_DELAY;
        vm.warp(block.timestamp + 1);
        vm.expectRevert(abi.encodeWithSelector(Settlement.TimelockNotElapsed.selector, executableAt));
        settlement.executeToken(token);
    }

    function test_proposeToken_revertsForNonOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, operator));
        vm.prank(operator);
        settlement.proposeToken(makeAddr("newToken"));
    }

    function test_proposeToken_revertsOnZeroAddress() public {
        vm.expectRevert(Settlement.ZeroAddress.selector);
        vm.prank(owner);
        settlement.proposeToken(address(0));
    }

    function test_proposeToken_revertsWhenAlreadySupported() public {
        vm.expectRevert(abi.encodeWithSelector(Settlement.TokenAlreadySupported.selector, address(dai)));
        vm.prank(owner);
        settlement.proposeToken(address(dai));
    }

    function test_proposeToken_revertsOnceAdded() public {
        address token = makeAddr("newToken");
        vm.prank(owner);
        settlement.proposeToken(token);
        vm.warp(block.timestamp + FINALIZATION_DELAY);
        settlement.executeToken(token);
        vm.expectRevert(abi.encodeWithSelector(Settlement.TokenAlreadySupported.selector, token));
        vm.prank(owner);
        settlement.proposeToken(token);
    }

    function test_tokens_areCappedAtMaxTokens() public {
        uint256 max = settlement.MAX_TOKENS();
        address[] memory many = new address[](max + 1);
        for (uint256 i = 0; i < many.length; ++i) {
            many[i] = address(uint160(0x1000 + i));
        }
        vm.expectRevert(abi.encodeWithSelector(Settlement.TooManyTokens.selector, max));
        new Settlement(
            owner,
            operator,
            guardian,
            receiptSigner,
            verifier,
            GENESIS_ROOT,
            many,
            Settlement.Periods(1, 2, 3, false),
            _noOutflowLimit()
        );

        // Filling the list through proposals: the one after the cap is refused at proposal
        // and, if proposed before the list filled, at execution.
        address late = address(uint160(0x9999));
        vm.prank(owner);
        settlement.proposeToken(late);
        for (uint256 i = 2; i < max; ++i) {
            _addTokenNow(many[i]);
        }
        assertEq(settlement.tokens().length, max, "full");
        vm.expectRevert(abi.encodeWithSelector(Settlement.TooManyTokens.selector, max));
        vm.prank(owner);
        settlement.proposeToken(many[max]);
        vm.expectRevert(abi.encodeWithSelector(Settlement.TooManyTokens.selector, max));
        settlement.executeToken(late);
    }

    // ---------------------------------------------------- operator timelock

    function test_proposeOperator_executesOnlyAfterTimelock() public {
        uint64 executableAt = uint64(block.timestamp) + FINALIZATION_DELAY;
        vm.expectEmit(true, false, false, true, address(settlement));
        emit Settlement.OperatorProposed(bob, executableAt);
        vm.prank(owner);
        settlement.proposeOperator(bob);
        assertEq(settlement.pendingOperator(), bob, "pendingOperator");
        assertEq(settlement.operatorExecutableAt(), executableAt, "operatorExecutableAt");

        // Executing early reverts, whoever calls; the old operator still commits meanwhile.
        vm.expectRevert(abi.encodeWithSelector(Settlement.TimelockNotElapsed.selector, executableAt));
        vm.prank(owner);
        settlement.executeOperator();
        vm.warp(executableAt - 1);
        vm.expectRevert(abi.encodeWithSelector(Settlement.TimelockNotElapsed.selector, executableAt));
        settlement.executeOperator();
        assertEq(settlement.operator(), operator, "unchanged before the timelock");

        vm.warp(executableAt);
        vm.expectEmit(true, true, false, true, address(settlement));
        emit Settlement.OperatorChanged(operator, bob);
        vm.prank(stranger); // anyone may execute
        settlement.executeOperator();
        assertEq(settlement.operator(), bob, "operator");
        assertEq(settlement.pendingOperator(), address(0), "pending cleared");
        assertEq(settlement.operatorExecutableAt(), 0, "executableAt cleared");

        // The old operator can no longer commit; the new one can.
        bytes memory data = hex"030000000000000000";
        Settlement.BatchHeader memory header = _header(bytes32(uint256(7)), 0, 0, data);
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotOperator.selector, operator));
        vm.prank(operator);
        settlement.commitBatch(header, data);
        vm.prank(bob);
        settlement.commitBatch(header, data);
        assertEq(settlement.lastBatchNumber(), 1, "committed by new operator");

        vm.expectRevert(Settlement.NothingProposed.selector);
        settlement.executeOperator();
    }

    function test_cancelOperator_withdrawsTheProposal() public {
        vm.prank(owner);
        settlement.proposeOperator(bob);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, bob));
        vm.prank(bob);
        settlement.cancelOperator();
        vm.expectEmit(true, false, false, true, address(settlement));
        emit Settlement.OperatorProposalCancelled(bob);
        vm.prank(owner);
        settlement.cancelOperator();
        vm.warp(block.timestamp + FINALIZATION_DELAY);
        vm.expectRevert(Settlement.NothingProposed.selector);
        settlement.executeOperator();
        assertEq(settlement.operator(), operator, "unchanged");
        vm.expectRevert(Settlement.NothingProposed.selector);
        vm.prank(owner);
        settlement.cancelOperator();
    }

    function test_proposeOperator_againReplacesAndRestarts() public {
        vm.prank(owner);
        settlement.proposeOperator(bob);
        vm.warp(block.timestamp + FINALIZATION_DELAY - 1);
        vm.prank(owner);
        settlement.proposeOperator(carol);
        uint64 executableAt = uint64(block.timestamp) + FINALIZATION_DELAY;
        vm.warp(block.timestamp + 1);
        vm.expectRevert(abi.encodeWithSelector(Settlement.TimelockNotElapsed.selector, executableAt));
        settlement.executeOperator();
        vm.warp(executableAt);
        settlement.executeOperator();
        assertEq(settlement.operator(), carol, "latest proposal");
    }

    function test_proposeOperator_revertsForNonOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, operator));
        vm.prank(operator);
        settlement.proposeOperator(operator);
    }

    function test_proposeOperator_revertsOnZeroAddress() public {
        vm.expectRevert(Settlement.ZeroAddress.selector);
        vm.prank(owner);
        settlement.proposeOperator(address(0));
    }

    function test_executeOperator_revertsWhenNothingProposed() public {
        vm.expectRevert(Settlement.NothingProposed.selector);
        settlement.executeOperator();
    }

    // ------------------------------------------------------------ ownership

    function test_ownership_isTransferredInTwoSteps() public {
        vm.prank(owner);
        settlement.transferOwnership(bob);
        assertEq(settlement.owner(), owner, "owner unchanged until accepted");
        assertEq(settlement.pendingOwner(), bob, "pendingOwner");

        // Only the pending owner may accept.
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, carol));
        vm.prank(carol);
        settlement.acceptOwnership();

        vm.prank(bob);
        settlement.acceptOwnership();
        assertEq(settlement.owner(), bob, "new owner");
        assertEq(settlement.pendingOwner(), address(0), "pending cleared");

        // The previous owner lost its powers, the new one has them.
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, owner));
        vm.prank(owner);
        settlement.proposeOperator(carol);
        vm.prank(bob);
        settlement.proposeOperator(carol);
        assertEq(settlement.pendingOperator(), carol, "operator proposed by new owner");
    }

    function test_transferOwnership_revertsForNonOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, bob));
        vm.prank(bob);
        settlement.transferOwnership(bob);
    }

    function test_renounceOwnership_revertsForNonOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, operator));
        vm.prank(operator);
        settlement.renounceOwnership();
    }

    function test_renounceOwnership_freezesGovernance() public {
        vm.prank(owner);
        settlement.renounceOwnership();
        assertEq(settlement.owner(), address(0), "no owner");
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, owner));
        vm.prank(owner);
        settlement.proposeToken(makeAddr("newToken"));
    }

    // ------------------------------------------------------- pure helpers

    function test_constants() public view {
        assertEq(settlement.SNARK_SCALAR_FIELD(), R, "field order");
        assertEq(settlement.DATA_VERSION(), 3, "data version");
        assertEq(settlement.MAX_DEPOSIT(), 2 ** 96 - 1, "max deposit");
        assertEq(settlement.MIN_FINALIZATION_DELAY(), 1 hours, "min finalization delay");
        assertEq(settlement.MIN_DEADLINE_PERIOD(), 1 days, "min deadline period");
        assertEq(settlement.MAX_WITHDRAWALS_PER_BATCH(), 1024, "max withdrawals");
        assertEq(settlement.MAX_DEPOSITS_PER_BATCH(), 1024, "max deposits");
        assertEq(settlement.MAX_PERIOD(), 365 days, "max period");
        // `cast keccak "Stablelane.exit.v2"`
        assertEq(
            settlement.EXIT_DOMAIN(), 0xe550b4c76d58a4bf8fd39269790089a9acd114498e5c6dc05f2d007ab93e5ed5, "exit domain"
        );
    }

    /// @dev Vectors computed outside Solidity with `cast keccak` over the packed bytes, so
    ///      the contract, this suite and the Rust bindings are pinned to one byte layout.
    function test_hashLayouts_matchExternalVectors() public view {
        address r = address(0x1111111111111111111111111111111111111111);
        address t = address(0x2222222222222222222222222222222222222222);
        address o = address(0x3333333333333333333333333333333333333333);
        assertEq(
            settlement.depositHash(bytes32(0), r, t, 1_000_000),
            0x432dee3a3a5a00833891ab7ee53f6852576c5e1b55fe9658f09318a88f864618,
            "depositHash"
        );
        // keccak256(0x00…00 ‖ owner o ‖ token t ‖ recipient r)
        assertEq(
            settlement.forcedHash(bytes32(0), o, t, r),
            0x1f8152d0ed0767f1b281b94b1b871429a3795a7467438ad7f59571336177e60c,
            "forcedHash"
        );
        assertEq(
            settlement.withdrawalLeaf(7, r, t, 1_000_000),
            0xfa067900169a6eafaf33b10ccd6cdbbb5d5ff697af33e56c310a6d829df7eeca,
            "withdrawalLeaf"
        );
    }

    function testFuzz_hashHelpers_matchIndependentEncoding(
        bytes32 prev,
        address a,
        address b,
        uint128 amount,
        uint32 index
    ) public view {
        assertEq(settlement.depositHash(prev, a, b, amount), _depositHash(prev, a, b, amount), "depositHash");
        assertEq(settlement.forcedHash(prev, a, b, a), _forcedHash(prev, a, b, a), "forcedHash");
        assertEq(settlement.forcedHash(prev, a, b, b), _forcedHash(prev, a, b, b), "forcedHash, other recipient");
        assertEq(
            settlement.withdrawalLeaf(index, a, b, amount),
            keccak256(bytes.concat(bytes4(index), bytes20(a), bytes20(b), bytes16(amount))),
            "withdrawalLeaf"
        );
    }

    function test_exitContext_bindsChainContractOwnerAndRecipient() public {
        uint256 ctxAlice = settlement.exitContext(alice, alice);
        assertEq(ctxAlice, _exitContext(alice, alice), "independent computation");
        assertLt(ctxAlice, R, "in field");
        assertNotEq(ctxAlice, settlement.exitContext(bob, alice), "differs per owner");
        assertNotEq(ctxAlice, settlement.exitContext(alice, bob), "differs per recipient");
        assertEq(settlement.exitContext(alice, bob), _exitContext(alice, bob), "independent computation, recipient");
        assertNotEq(settlement.exitContext(alice, bob), settlement.exitContext(bob, alice), "owner and recipient apart");

        Settlement other = _deploy(verifier);
        assertNotEq(ctxAlice, other.exitContext(alice, alice), "differs per contract");

        vm.chainId(31337 + 1);
        assertNotEq(ctxAlice, settlement.exitContext(alice, alice), "differs per chain");
        assertEq(
            settlement.exitContext(alice, alice), _exitContext(alice, alice), "independent computation, other chain"
        );
    }

    /// @dev The vector of the Rust bindings' `exit_context` test, computed with `cast
    ///      abi-encode` and `cast keccak` (the hash is above r, so the reduction matters).
    function test_exitContext_matchesTheRustVector() public {
        address where = address(0x4444444444444444444444444444444444444444);
        vm.etch(where, address(settlement).code);
        vm.chainId(31337);
        assertEq(
            Settlement(where)
                .exitContext(
                    address(0x3333333333333333333333333333333333333333),
                    address(0x1111111111111111111111111111111111111111)
                ),
            0x2f1859e896a6cbff0ba3e478945e7270f567b034a4f0ccef4e42693289887b77,
            "vector"
        );
    }

    function test_attestationContext_matchesTheRustVectorAndDiffersFromExitContexts() public view {
        // keccak256("Stablelane.attestation.v1" ‖ 0x00…00) mod r, the vector of the Rust
        // crate's attestation_context test.
        assertEq(
            settlement.attestationContext(bytes32(0)),
            0x1b209f005935716525b70b5f12b01c88031ef86bd4e8dd1203d0db9f8590b30c,
            "vector"
        );
        bytes32 challenge = keccak256("a verifier's challenge");
        uint256 ctx = settlement.attestationContext(challenge);
        assertLt(ctx, R, "in field");
        assertEq(ctx, uint256(keccak256(bytes.concat("Stablelane.attestation.v1", challenge))) % R, "independent");
        assertNotEq(ctx, settlement.exitContext(alice, alice), "not an exit context");
    }

    function testFuzz_attestationContext_isInField(bytes32 challenge) public view {
        assertLt(settlement.attestationContext(challenge), R, "in field");
    }

    // ----------------------------------------------------------- view reverts

    function test_batch_revertsForUncommittedBatch() public {
        vm.expectRevert(abi.encodeWithSelector(Settlement.UnknownBatch.selector, uint64(1)));
        settlement.batch(1);
    }

    function test_queueViews_revertOutOfRange() public {
        vm.expectRevert(abi.encodeWithSelector(Settlement.IndexOutOfRange.selector, uint256(0), uint256(0)));
        settlement.depositEntry(0);
        vm.expectRevert(abi.encodeWithSelector(Settlement.IndexOutOfRange.selector, uint256(0), uint256(0)));
        settlement.forcedEntry(0);
        vm.expectRevert(abi.encodeWithSelector(Settlement.IndexOutOfRange.selector, uint256(1), uint256(0)));
        settlement.depositHashAt(1);
        vm.expectRevert(abi.encodeWithSelector(Settlement.IndexOutOfRange.selector, uint256(1), uint256(0)));
        settlement.forcedHashAt(1);
        assertEq(settlement.depositHashAt(0), bytes32(0), "empty deposit prefix");
        assertEq(settlement.forcedHashAt(0), bytes32(0), "empty forced prefix");

        _deposit(alice, usdc, 5, alice);
        _requestForced(bob, address(dai));
        assertEq(settlement.depositHashAt(1), depositHashes[1], "deposit prefix 1");
        assertEq(settlement.forcedHashAt(1), forcedHashes[1], "forced prefix 1");
        vm.expectRevert(abi.encodeWithSelector(Settlement.IndexOutOfRange.selector, uint256(1), uint256(1)));
        settlement.depositEntry(1);
        vm.expectRevert(abi.encodeWithSelector(Settlement.IndexOutOfRange.selector, uint256(1), uint256(1)));
        settlement.forcedEntry(1);
        vm.expectRevert(abi.encodeWithSelector(Settlement.IndexOutOfRange.selector, uint256(2), uint256(1)));
        settlement.depositHashAt(2);
        vm.expectRevert(abi.encodeWithSelector(Settlement.IndexOutOfRange.selector, uint256(2), uint256(1)));
        settlement.forcedHashAt(2);
    }

    function test_isClaimed_falseForUnknownBatches() public view {
        assertFalse(settlement.isClaimed(0, 0), "genesis");
        assertFalse(settlement.isClaimed(99, 12345), "future batch");
    }

    function test_batch_returnsCommittedBatches() public {
        _deposit(alice, usdc, 1000, alice);
        Withdrawal[] memory ws = _one(bob, address(usdc), 400);
        vm.warp(START_TIME + 55);
        _commit(bytes32(uint256(11)), ws);
        Settlement.Batch memory b = settlement.batch(1);
        assertEq(b.root, bytes32(uint256(11)), "root");
        assertEq(b.committedAt, START_TIME + 55, "committedAt");
        assertEq(b.withdrawalCount, 1, "count");
        assertEq(b.withdrawalsRoot, settlement.withdrawalLeaf(0, bob, address(usdc), 400), "single-leaf root");
        assertEq(settlement.batch(0).root, GENESIS_ROOT, "genesis kept");
    }
}
