// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Settlement} from "../src/Settlement.sol";
import {SettlementFixture} from "./utils/SettlementFixture.sol";
import {BatchData, Withdrawal} from "./utils/BatchData.sol";

/// @notice Performs set-up calls so that they stay out of forge's gas report, which only
///         lists calls made directly by the test contract.
contract Relay {
    function exec(address target, bytes memory data) external returns (bytes memory ret) {
        bool ok;
        (ok, ret) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }
}

/// @title Gas scenarios of the settlement contract
/// @notice One test per scenario. Each makes exactly one direct call to the function it
///         measures; all set-up goes through `Relay` (also the operator), so that
///         `forge test --match-contract SettlementGasTest --match-test <test> --gas-report`
///         lists that call alone. forge 1.x runs gas reports in isolation mode: each direct
///         call is its own transaction, with cold storage and the intrinsic cost (21,000 +
///         16 per non-zero and 4 per zero calldata byte, pre-EIP-7623 as on our `cancun`
///         target) included. Each test logs (`-vv`) its calldata size and intrinsic gas so
///         that the calldata share of a figure can be read off.
///
///         Batch data model: the contract reads only the withdrawal section; the rest is
///         opaque and only hashed. A "changed leaf" is modelled as 51 bytes of rest data
///         (batch data version 2): a 2-byte slot-gap varint, a 32-byte leaf hash and a
///         17-byte encrypted (balance, nonce) note, the last two high-entropy, after 12 bytes
///         of body counts (see `BatchData.leafUpdates`).
///
///         The Groth16 verifier in `exit` is the mock; a generated BN254 verifier adds the
///         pairing check (not measured here).
contract SettlementGasTest is SettlementFixture {
    bytes32 internal constant ROOT_1 = bytes32(uint256(0x1111));
    Relay internal relay;

    function setUp() public virtual override {
        super.setUp();
        relay = new Relay();
        vm.label(address(relay), "Relay");
        operator = address(relay);
        settlement = _deploy(verifier);
        vm.label(address(settlement), "Settlement");

        // A funded ledger and one committed batch, so no scenario pays first-use costs that
        // a running system would not (e.g. the first write of lastBatchNumber).
        _relayDeposit(1_000_000_000_000, bob);
        _relayCommit(ROOT_1, _noWithdrawals());
        _mint(usdc, alice, 1_000_000_000);
        vm.prank(alice);
        usdc.approve(address(settlement), type(uint256).max);
    }

    // -------------------------------------------------------------- deposits

    function test_gas_deposit() public {
        bytes memory callData = abi.encodeCall(Settlement.deposit, (address(usdc), 1_000_000, alice));
        vm.prank(alice);
        settlement.deposit(address(usdc), 1_000_000, alice);
        _report("deposit", callData);
    }

    function test_gas_depositWithPermit() public {
        (address signer, uint256 key) = makeAccount("permitSigner");
        _mint(usdc, signer, 1_000_000);
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                signer,
                address(settlement),
                1_000_000,
                0,
                deadline
            )
        );
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(key, keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash)));
        vm.prank(signer);
        settlement.depositWithPermit(address(usdc), 1_000_000, signer, deadline, v, r, s);
        _report(
            "depositWithPermit",
            abi.encodeCall(Settlement.depositWithPermit, (address(usdc), 1_000_000, signer, deadline, v, r, s))
        );
    }

    function test_gas_requestForcedWithdrawal() public {
        vm.prank(alice);
        settlement.requestForcedWithdrawal(address(usdc), bob);
        _report("requestForcedWithdrawal", abi.encodeCall(Settlement.requestForcedWithdrawal, (address(usdc), bob)));
    }

    // ---------------------------------------------------------- commitBatch

    function test_gas_commitBatch_1Leaf() public {
        _commitScenario("commitBatch, 1 changed leaf", 1, _noWithdrawals());
    }

    function test_gas_commitBatch_100Leaves() public {
        _commitScenario("commitBatch, 100 changed leaves", 100, _noWithdrawals());
    }

    function test_gas_commitBatch_1000Leaves() public {
        _commitScenario("commitBatch, 1000 changed leaves", 1000, _noWithdrawals());
    }

    function test_gas_commitBatch_100Leaves_100Deposits() public {
        for (uint256 i = 0; i < 100; ++i) {
            _relayDeposit(1_000 + i, address(uint160(0x1000 + i)));
        }
        _commitScenario("commitBatch, 100 changed leaves, 100 deposits consumed", 100, _noWithdrawals());
    }

    /// @dev The per-batch limit: MAX_DEPOSITS_PER_BATCH deposits consumed at once.
    function test_gas_commitBatch_1024Deposits() public {
        // 1024 relayed deposits exceed forge's per-test gas limit; the set-up is not measured.
        vm.pauseGasMetering();
        for (uint256 i = 0; i < 1024; ++i) {
            _relayDeposit(1_000 + i, address(uint160(0x1000 + i)));
        }
        vm.resumeGasMetering();
        _commitScenario("commitBatch, 1024 deposits consumed (limit)", 0, _noWithdrawals());
    }

    /// @dev The per-batch limit: MAX_WITHDRAWALS_PER_BATCH withdrawals.
    function test_gas_commitBatch_1024Withdrawals() public {
        _commitScenario("commitBatch, 1024 withdrawals (limit)", 0, _withdrawals(1024));
    }

    function test_gas_commitBatch_10Withdrawals() public {
        _commitScenario("commitBatch, 10 withdrawals, 10 changed leaves", 10, _withdrawals(10));
    }

    function test_gas_commitBatch_100Withdrawals() public {
        _commitScenario("commitBatch, 100 withdrawals, 100 changed leaves", 100, _withdrawals(100));
    }

    // ------------------------------------------------------------- claiming

    function test_gas_claimWithdrawal_batchOf1() public {
        uint64 b = _relayCommit(bytes32(uint256(2)), _withdrawals(1));
        _claimScenario("claimWithdrawal, batch of 1 (empty proof)", b, 0);
    }

    function test_gas_claimWithdrawal_batchOf100() public {
        uint64 b = _relayCommit(bytes32(uint256(2)), _withdrawals(100));
        _claimScenario("claimWithdrawal, batch of 100 (7 siblings)", b, 37);
    }

    // --------------------------------------------------------------- exodus

    function test_gas_activateExodus() public {
        _relayDeposit(5, alice);
        vm.warp(block.timestamp + DEPOSIT_DEADLINE + 1);
        settlement.activateExodus();
        _report("activateExodus", abi.encodeCall(Settlement.activateExodus, ()));
    }

    /// @dev The guardian voids the two batches still in their window (one with withdrawals).
    function test_gas_guardianExodus_voidingBatches() public {
        _relayCommit(bytes32(uint256(2)), _withdrawals(10));
        vm.prank(guardian);
        settlement.guardianExodus();
        _report("guardianExodus, voiding 2 batches", abi.encodeCall(Settlement.guardianExodus, ()));
    }

    function test_gas_exit() public {
        _relayExodus();
        uint256[8] memory proof = _proof(1);
        verifier.expectProof(proof, _exitInput(ROOT_1, bob, address(usdc), 500_000_000));
        vm.prank(bob);
        settlement.exit(address(usdc), 500_000_000, bob, proof);
        _report("exit (mock verifier)", abi.encodeCall(Settlement.exit, (address(usdc), 500_000_000, bob, proof)));
    }

    function test_gas_refundDeposit() public {
        uint64 i = _relayExodus();
        settlement.refundDeposit(i, carol, carol);
        _report("refundDeposit", abi.encodeCall(Settlement.refundDeposit, (i, carol, carol)));
    }

    // ------------------------------------------------------- set-up (relayed)

    function _relayDeposit(uint256 amount, address recipient) internal returns (uint64 index) {
        _mint(usdc, address(relay), amount);
        relay.exec(address(usdc), abi.encodeCall(usdc.approve, (address(settlement), amount)));
        relay.exec(address(settlement), abi.encodeCall(Settlement.deposit, (address(usdc), amount, recipient)));
        index = uint64(depositHashes.length - 1);
        depositHashes.push(_depositHash(depositHashes[index], recipient, address(usdc), uint128(amount)));
    }

    function _relayCommit(bytes32 newRoot, Withdrawal[] memory ws) internal returns (uint64 batchNumber) {
        bytes memory data = BatchData.encode(ws, "");
        Settlement.BatchHeader memory header = _header(newRoot, uint64(depositHashes.length - 1), 0, data);
        relay.exec(address(settlement), abi.encodeCall(Settlement.commitBatch, (header, data)));
        batchNumber = header.batchNumber;
        Withdrawal[] storage recorded = batchWithdrawals.push();
        for (uint256 i = 0; i < ws.length; ++i) {
            recorded.push(ws[i]);
        }
    }

    /// @dev Queues a deposit for carol, lets it go overdue and activates exodus.
    function _relayExodus() internal returns (uint64 index) {
        index = _relayDeposit(5, carol);
        vm.warp(block.timestamp + DEPOSIT_DEADLINE + 1);
        relay.exec(address(settlement), abi.encodeCall(Settlement.activateExodus, ()));
    }

    // --------------------------------------------------------------- helpers

    function _commitScenario(string memory label, uint256 leaves, Withdrawal[] memory ws) internal {
        bytes memory data = BatchData.encode(ws, BatchData.leafUpdates(leaves, keccak256(bytes(label))));
        Settlement.BatchHeader memory header = _header(bytes32(uint256(2)), uint64(depositHashes.length - 1), 0, data);
        vm.prank(operator);
        settlement.commitBatch(header, data);
        _report(label, abi.encodeCall(Settlement.commitBatch, (header, data)));
        assertEq(settlement.batch(2).withdrawalCount, ws.length, "committed");
    }

    function _claimScenario(string memory label, uint64 b, uint32 index) internal {
        _warpToFinal(b);
        Withdrawal memory w = batchWithdrawals[b][index];
        bytes32[] memory path = BatchData.proof(batchWithdrawals[b], index);
        settlement.claimWithdrawal(b, index, w.recipient, w.token, w.amount, path);
        _report(label, abi.encodeCall(Settlement.claimWithdrawal, (b, index, w.recipient, w.token, w.amount, path)));
        assertTrue(settlement.isClaimed(b, index), "claimed");
    }

    /// @dev Withdrawals to distinct fresh recipients (each payout is a first-time balance).
    function _withdrawals(uint256 n) internal view returns (Withdrawal[] memory ws) {
        ws = new Withdrawal[](n);
        for (uint256 i = 0; i < n; ++i) {
            ws[i] =
                Withdrawal(address(uint160(uint256(keccak256(abi.encode("recipient", i))))), address(usdc), 1_000_000);
        }
    }

    /// @dev Logs the calldata size and the intrinsic gas of a transaction with `callData`.
    function _report(string memory label, bytes memory callData) internal view {
        uint256 intrinsic = 21_000;
        for (uint256 i = 0; i < callData.length; ++i) {
            intrinsic += callData[i] == 0 ? 4 : 16;
        }
        log(label);
        log("  calldata bytes", callData.length);
        log("  intrinsic gas (21000 + calldata)", intrinsic);
    }
}

/// @title The gas scenarios with the deploy tool's outflow limit (10% per day, 7 days)
/// @notice The same scenarios (`forge test --match-contract SettlementGasOutflowTest
///         --gas-report`), measured at the start of a fresh outflow window whose limit none of
///         them exceeds: every commit pays for counting its withdrawals (and, per consumed
///         deposit, for checking the window), none is delayed. Each token's first change in
///         the window opens it (two storage writes), which these figures include.
contract SettlementGasOutflowTest is SettlementGasTest {
    function _outflowConfig() internal pure override returns (Settlement.OutflowConfig memory) {
        return Settlement.OutflowConfig({limitBps: 1_000, period: 1 days, delay: 7 days});
    }

    function setUp() public override {
        super.setUp();
        vm.warp((block.timestamp / 1 days + 1) * 1 days);
    }
}
