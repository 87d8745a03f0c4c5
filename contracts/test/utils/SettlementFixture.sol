// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Settlement} from "../../src/Settlement.sol";
import {TestStablecoin} from "../../src/TestStablecoin.sol";
import {IGroth16Verifier} from "../../src/IGroth16Verifier.sol";
import {MockGroth16Verifier} from "../mocks/MockGroth16Verifier.sol";
import {Test} from "./Test.sol";
import {BatchData, Withdrawal} from "./BatchData.sol";

/// @title Shared fixture of the settlement tests
/// @notice A settlement contract with two test stablecoins (6 and 18 decimals), a mock
///         verifier, named accounts, and helpers that deposit, commit and claim the way an
///         operator and users would. Every expected value the helpers compute (rolling
///         hashes, exit context) is computed here, independently of the contract's own views.
abstract contract SettlementFixture is Test {
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    bytes32 internal constant GENESIS_ROOT = bytes32(uint256(0x2a3b4c5d));
    uint64 internal constant FINALIZATION_DELAY = 1 hours;
    uint64 internal constant DEPOSIT_DEADLINE = 1 days;
    uint64 internal constant FORCED_DEADLINE = 7 days;
    uint256 internal constant START_TIME = 1_700_000_000;

    Settlement internal settlement;
    MockGroth16Verifier internal verifier;
    TestStablecoin internal usdc;
    TestStablecoin internal dai;

    address internal owner;
    address internal operator;
    address internal guardian;
    address internal receiptSigner;
    address internal alice;
    uint256 internal aliceKey;
    address internal bob;
    address internal carol;
    address internal stranger;

    /// @dev Independent model of the deposit queue's rolling hashes, by prefix length.
    bytes32[] internal depositHashes;
    /// @dev Independent model of the forced-request queue's rolling hashes, by prefix length.
    bytes32[] internal forcedHashes;
    /// @dev Withdrawal lists of committed batches, by batch number (index 0 = genesis).
    Withdrawal[][] internal batchWithdrawals;

    function setUp() public virtual {
        vm.warp(START_TIME);
        owner = makeAddr("owner");
        operator = makeAddr("operator");
        guardian = makeAddr("guardian");
        receiptSigner = makeAddr("receiptSigner");
        (alice, aliceKey) = makeAccount("alice");
        bob = makeAddr("bob");
        carol = makeAddr("carol");
        stranger = makeAddr("stranger");

        usdc = new TestStablecoin("Test USD Coin", "tUSDC", 6, owner);
        dai = new TestStablecoin("Test Dai", "tDAI", 18, owner);
        verifier = new MockGroth16Verifier();
        vm.label(address(usdc), "tUSDC");
        vm.label(address(dai), "tDAI");
        vm.label(address(verifier), "MockGroth16Verifier");

        settlement = _deploy(verifier);
        vm.label(address(settlement), "Settlement");

        depositHashes.push(bytes32(0));
        forcedHashes.push(bytes32(0));
        batchWithdrawals.push();
    }

    function _deploy(IGroth16Verifier verifier_) internal returns (Settlement) {
        address[] memory tokens = new address[](2);
        tokens[0] = address(usdc);
        tokens[1] = address(dai);
        return new Settlement(
            owner,
            operator,
            guardian,
            receiptSigner,
            verifier_,
            GENESIS_ROOT,
            tokens,
            Settlement.Periods(FINALIZATION_DELAY, DEPOSIT_DEADLINE, FORCED_DEADLINE, false),
            _outflowConfig()
        );
    }

    /// @notice The outflow limit of the fixture's deployment: none, so that the suites about
    ///         other features are not delayed by it (`SettlementOutflow.t.sol` overrides it).
    function _outflowConfig() internal pure virtual returns (Settlement.OutflowConfig memory) {
        return _noOutflowLimit();
    }

    /// @notice No outflow limit (allowed on chain id 31337, where the tests run).
    function _noOutflowLimit() internal pure returns (Settlement.OutflowConfig memory) {
        return Settlement.OutflowConfig({limitBps: 0, period: 1 days, delay: 1 days});
    }

    // ------------------------------------------------------------- hashes

    function _depositHash(bytes32 prev, address recipient, address token, uint128 amount)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(bytes.concat(prev, bytes20(recipient), bytes20(token), bytes16(amount)));
    }

    function _forcedHash(bytes32 prev, address who, address token, address recipient) internal pure returns (bytes32) {
        return keccak256(bytes.concat(prev, bytes20(who), bytes20(token), bytes20(recipient)));
    }

    function _exitContext(address who, address recipient) internal view returns (uint256) {
        bytes32 domain = keccak256("Stablelane.exit.v2");
        return uint256(keccak256(abi.encode(domain, block.chainid, address(settlement), who, recipient))) % R;
    }

    // ------------------------------------------------------------- actions

    function _mint(TestStablecoin token, address to, uint256 amount) internal {
        vm.prank(owner);
        token.mint(to, amount);
    }

    /// @notice `from` mints, approves and deposits `amount` for `recipient`; records the
    ///         expected rolling hash.
    function _deposit(address from, TestStablecoin token, uint256 amount, address recipient)
        internal
        returns (uint64 index)
    {
        _mint(token, from, amount);
        vm.startPrank(from);
        token.approve(address(settlement), amount);
        settlement.deposit(address(token), amount, recipient);
        vm.stopPrank();
        index = uint64(depositHashes.length - 1);
        depositHashes.push(_depositHash(depositHashes[index], recipient, address(token), uint128(amount)));
    }

    function _requestForced(address who, address token) internal returns (uint64 index) {
        return _requestForcedTo(who, token, who);
    }

    /// @notice `who` requests a forced withdrawal of its `token` paid to `recipient`;
    ///         records the expected rolling hash.
    function _requestForcedTo(address who, address token, address recipient) internal returns (uint64 index) {
        vm.prank(who);
        settlement.requestForcedWithdrawal(token, recipient);
        index = uint64(forcedHashes.length - 1);
        forcedHashes.push(_forcedHash(forcedHashes[index], who, token, recipient));
    }

    /// @notice A header for the next batch that consumes the first `depositsTo` deposits
    ///         and `forcedTo` forced requests, with hashes from the independent model.
    function _header(bytes32 newRoot, uint64 depositsTo, uint64 forcedTo, bytes memory data)
        internal
        view
        returns (Settlement.BatchHeader memory)
    {
        return Settlement.BatchHeader({
            batchNumber: settlement.lastBatchNumber() + 1,
            prevRoot: settlement.stateRoot(),
            newRoot: newRoot,
            depositsConsumed: depositsTo,
            depositsHash: depositHashes[depositsTo],
            forcedConsumed: forcedTo,
            forcedHash: forcedHashes[forcedTo],
            dataHash: keccak256(data)
        });
    }

    /// @notice Commits the next batch as the operator, consuming every queued deposit and
    ///         forced request, with `ws` as its withdrawals.
    function _commit(bytes32 newRoot, Withdrawal[] memory ws) internal returns (uint64 batchNumber) {
        return _commitPrefix(newRoot, uint64(depositHashes.length - 1), uint64(forcedHashes.length - 1), ws, "");
    }

    function _commitPrefix(
        bytes32 newRoot,
        uint64 depositsTo,
        uint64 forcedTo,
        Withdrawal[] memory ws,
        bytes memory rest
    ) internal returns (uint64 batchNumber) {
        bytes memory data = BatchData.encode(ws, rest);
        Settlement.BatchHeader memory header = _header(newRoot, depositsTo, forcedTo, data);
        vm.prank(operator);
        settlement.commitBatch(header, data);
        batchNumber = header.batchNumber;
        Withdrawal[] storage recorded = batchWithdrawals.push();
        for (uint256 i = 0; i < ws.length; ++i) {
            recorded.push(ws[i]);
        }
    }

    function _noWithdrawals() internal pure returns (Withdrawal[] memory) {
        return new Withdrawal[](0);
    }

    function _one(address recipient, address token, uint128 amount) internal pure returns (Withdrawal[] memory ws) {
        ws = new Withdrawal[](1);
        ws[0] = Withdrawal(recipient, token, amount);
    }

    /// @notice Claims withdrawal `index` of `batchNumber` with a proof from the model.
    function _claim(uint64 batchNumber, uint32 index) internal {
        Withdrawal[] memory ws = batchWithdrawals[batchNumber];
        bytes32[] memory path = BatchData.proof(ws, index);
        settlement.claimWithdrawal(batchNumber, index, ws[index].recipient, ws[index].token, ws[index].amount, path);
    }

    function _withdrawalsOf(uint64 batchNumber) internal view returns (Withdrawal[] memory) {
        return batchWithdrawals[batchNumber];
    }

    /// @notice Warps to the first second at which batch `batchNumber` is claimable.
    function _warpToFinal(uint64 batchNumber) internal {
        vm.warp(settlement.batch(batchNumber).finalizedAt);
    }

    /// @notice Adds `token` through the owner's timelocked proposal (warps `timelockDelay`).
    function _addTokenNow(address token) internal {
        vm.prank(owner);
        settlement.proposeToken(token);
        vm.warp(block.timestamp + settlement.timelockDelay());
        settlement.executeToken(token);
    }

    /// @notice Replaces the operator through the owner's timelocked proposal (warps `timelockDelay`).
    function _setOperatorNow(address newOperator) internal {
        vm.prank(owner);
        settlement.proposeOperator(newOperator);
        vm.warp(block.timestamp + settlement.timelockDelay());
        settlement.executeOperator();
    }

    /// @notice Queues a deposit, lets it go overdue and activates exodus.
    function _enterExodus() internal {
        _deposit(stranger, usdc, 1, stranger);
        vm.warp(block.timestamp + DEPOSIT_DEADLINE + 1);
        settlement.activateExodus();
    }

    /// @notice A proof value the mock verifier is armed with; its content is irrelevant.
    function _proof(uint256 seed) internal pure returns (uint256[8] memory p) {
        for (uint256 i = 0; i < 8; ++i) {
            p[i] = uint256(keccak256(abi.encode(seed, i))) % R;
        }
    }

    /// @notice The public input of an exit of `who` paying itself.
    function _exitInput(bytes32 root, address who, address token, uint128 amount)
        internal
        view
        returns (uint256[5] memory)
    {
        return _exitInputTo(root, who, token, amount, who);
    }

    /// @notice The public input of an exit of `who` paying `recipient`.
    function _exitInputTo(bytes32 root, address who, address token, uint128 amount, address recipient)
        internal
        view
        returns (uint256[5] memory)
    {
        return [
            uint256(root), uint256(uint160(who)), uint256(uint160(token)), uint256(amount), _exitContext(who, recipient)
        ];
    }
}
