// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Settlement} from "../../src/Settlement.sol";
import {TestStablecoin} from "../../src/TestStablecoin.sol";
import {MockGroth16Verifier} from "../mocks/MockGroth16Verifier.sol";
import {QuirkyToken} from "../mocks/QuirkyToken.sol";
import {Test} from "../utils/Test.sol";
import {BatchData, Withdrawal} from "../utils/BatchData.sol";

/// @title Drives the settlement contract the way its users and operator do
/// @notice Every public function is one step the invariant fuzzer may take: deposit, request
///         a forced withdrawal, commit a batch as the operator (consuming queue prefixes and
///         paying out random withdrawals the ledger can afford), submit a broken commit,
///         claim (warping past the finalization delay), activate exodus, exit and refund.
///         Steps never revert: each one predicts from on-chain state whether the contract must
///         accept or reject it, and counts every surprise in `unexpectedFailures` (checked
///         by an invariant), so a missed check or a wrong revert surfaces as a failure
///         even with `fail_on_revert = false`. Ghost variables record what only this
///         handler can know: the roots it committed, and how often each claim and exit paid.
contract SettlementHandler is Test {
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;

    Settlement public immutable settlement;
    MockGroth16Verifier public immutable verifier;
    address[] internal _tokens;
    address[] internal _actors;

    // ------------------------------------------------------------------ ghosts

    /// @notice Batches this handler committed.
    uint64 public ghostCommits;
    /// @notice Root of the last batch this handler committed (the genesis root before any).
    bytes32 public ghostLastRoot;
    /// @notice Per (batch, index): how many claims paid out.
    mapping(uint64 => mapping(uint32 => uint256)) public ghostClaimCount;
    /// @notice Per (owner, token): how many exits paid out.
    mapping(address => mapping(address => uint256)) public ghostExitCount;
    /// @notice The largest value any `ghostClaimCount` / `ghostExitCount` entry reached.
    uint256 public ghostMaxClaimCount;
    uint256 public ghostMaxExitCount;
    /// @notice Whether this handler has ever seen exodus mode active.
    bool public ghostExodusSeen;
    /// @notice Per token: what deposits credited (the contract's balance increase), and what
    ///         claims, exits and refunds paid out (its balance decrease).
    mapping(address => uint256) public ghostDeposited;
    mapping(address => uint256) public ghostPaidOut;
    /// @notice Batches voided at exodus (0 if none or not yet in exodus).
    uint64 public ghostVoidedBatches;
    /// @notice Calls where the contract did something the handler did not predict.
    uint256 public unexpectedFailures;
    /// @notice Which step failed last, and the revert data (for debugging a failure).
    string public lastFailure;
    bytes public lastFailureReason;

    /// @notice Commits the outflow model predicted to be delayed (and that were).
    uint256 public ghostDelayedCommits;

    /// @dev Independent model of the outflow limit, per token: the window last opened
    ///      (`timestamp / period + 1`), its limit and the outflow counted in it.
    mapping(address => uint256) internal _modelWindow;
    mapping(address => uint256) internal _modelLimit;
    mapping(address => uint256) internal _modelOutflow;

    /// @notice Steps that did something (a coverage view for the curious).
    mapping(bytes32 step => uint256) public stepCount;

    /// @dev Recipient of each deposit this handler queued, by queue index.
    mapping(uint64 => address) internal _depositRecipient;
    /// @dev Withdrawals of each batch this handler committed.
    mapping(uint64 => Withdrawal[]) internal _withdrawals;
    /// @dev Batches with at least one withdrawal.
    uint64[] internal _batchesWithWithdrawals;
    /// @dev Root of each batch this handler committed (0 = genesis).
    mapping(uint64 => bytes32) internal _roots;

    constructor(
        Settlement settlement_,
        MockGroth16Verifier verifier_,
        address[] memory tokens_,
        address[] memory actors_,
        bytes32 genesisRoot
    ) {
        settlement = settlement_;
        verifier = verifier_;
        _tokens = tokens_;
        _actors = actors_;
        ghostLastRoot = genesisRoot;
        _roots[0] = genesisRoot;
    }

    function tokens() external view returns (address[] memory) {
        return _tokens;
    }

    function actors() external view returns (address[] memory) {
        return _actors;
    }

    // ------------------------------------------------------------------- steps

    function deposit(uint256 actorSeed, uint256 recipientSeed, uint256 tokenSeed, uint256 amount) external {
        if (_syncExodus()) return;
        address from = _actor(actorSeed);
        address recipient = _actor(recipientSeed);
        address token = _token(tokenSeed);
        amount = bound(amount, 1, 1e28); // below the contract's MAX_DEPOSIT (2^96 - 1)
        _mintTo(token, from, amount);
        vm.prank(from);
        TestStablecoin(token).approve(address(settlement), amount);
        uint64 index = settlement.depositCount();
        uint256 before = TestStablecoin(token).balanceOf(address(settlement));
        vm.prank(from);
        try settlement.deposit(token, amount, recipient) {
            _depositRecipient[index] = recipient;
            ghostDeposited[token] += TestStablecoin(token).balanceOf(address(settlement)) - before;
            stepCount["deposit"]++;
        } catch (bytes memory reason) {
            _unexpected("deposit reverted", reason);
        }
    }

    function requestForcedWithdrawal(uint256 actorSeed, uint256 tokenSeed) external {
        if (_syncExodus()) return;
        vm.prank(_actor(actorSeed));
        try settlement.requestForcedWithdrawal(_token(tokenSeed), _actor(tokenSeed >> 8)) {
            stepCount["forced"]++;
        } catch (bytes memory reason) {
            _unexpected("requestForcedWithdrawal reverted", reason);
        }
    }

    /// @notice Commits the next batch as the operator: consumes a random valid prefix of
    ///         each queue and pays out up to 6 random withdrawals within the ledger supply.
    function commitBatch(
        uint256 depositSeed,
        uint256 forcedSeed,
        uint256 withdrawalSeed,
        uint256 rootSeed,
        uint8 leafUpdates
    ) external {
        if (_syncExodus()) return;
        (uint64 depositsTo, uint64 forcedTo) = _prefixes(depositSeed, forcedSeed);
        Withdrawal[] memory ws = _randomWithdrawals(withdrawalSeed, depositsTo);
        bytes memory data = BatchData.encode(ws, BatchData.leafUpdates(leafUpdates % 4, bytes32(rootSeed)));
        Settlement.BatchHeader memory header = Settlement.BatchHeader({
            batchNumber: ghostCommits + 1,
            prevRoot: ghostLastRoot,
            newRoot: bytes32(bound(rootSeed, 0, R - 1)),
            depositsConsumed: depositsTo,
            depositsHash: settlement.depositHashAt(depositsTo),
            forcedConsumed: forcedTo,
            forcedHash: settlement.forcedHashAt(forcedTo),
            dataHash: keccak256(data)
        });
        address operator = settlement.operator();
        // The fuzzer may have made anything the operator (it calls `setOperator` as the
        // owner); forge does not let anyone act as its cheatcode address.
        if (operator == address(vm)) return;
        (bool delayed, uint256[] memory outflows) = _predictOutflow(ws, depositsTo);
        uint256 expectedFinalizedAt = block.timestamp + settlement.finalizationDelay();
        if (delayed) expectedFinalizedAt += settlement.outflowDelay();
        uint256 previousFinalizedAt = settlement.batch(ghostCommits).finalizedAt;
        if (expectedFinalizedAt < previousFinalizedAt) expectedFinalizedAt = previousFinalizedAt;
        vm.prank(operator);
        try settlement.commitBatch(header, data) {
            if (settlement.batch(header.batchNumber).finalizedAt != expectedFinalizedAt) {
                _unexpected("finalizedAt differs from the outflow model", "");
            }
            for (uint256 t = 0; t < _tokens.length; ++t) {
                if (outflows[t] != type(uint256).max) _modelOutflow[_tokens[t]] = outflows[t];
            }
            if (delayed) ghostDelayedCommits++;
            ghostCommits = header.batchNumber;
            ghostLastRoot = header.newRoot;
            _roots[header.batchNumber] = header.newRoot;
            if (ws.length > 0) {
                _batchesWithWithdrawals.push(header.batchNumber);
                Withdrawal[] storage stored = _withdrawals[header.batchNumber];
                for (uint256 i = 0; i < ws.length; ++i) {
                    stored.push(ws[i]);
                }
            }
            stepCount["commit"]++;
        } catch (bytes memory reason) {
            _unexpected("valid commitBatch reverted", reason);
        }
    }

    /// @notice Submits a commit that is wrong in exactly one way (header field, sender, or a
    ///         withdrawal the ledger cannot pay or of zero amount); it must revert.
    function commitInvalid(uint8 kind, uint256 seed) external {
        if (_syncExodus()) return;
        kind = kind % 10;
        Withdrawal[] memory ws = new Withdrawal[](kind >= 8 ? 1 : 0);
        if (kind == 8) {
            // One unit more than the ledger holds (no new deposits are consumed).
            address token = _token(seed);
            ws[0] = Withdrawal(_actor(seed), token, uint128(settlement.ledgerSupply(token) + 1));
        } else if (kind == 9) {
            ws[0] = Withdrawal(_actor(seed), _token(seed), 0);
        }
        bytes memory data = BatchData.encode(ws, "");
        Settlement.BatchHeader memory header = Settlement.BatchHeader({
            batchNumber: ghostCommits + 1,
            prevRoot: ghostLastRoot,
            newRoot: bytes32(bound(seed, 0, R - 1)),
            depositsConsumed: settlement.depositsConsumed(),
            depositsHash: settlement.depositHashAt(settlement.depositsConsumed()),
            forcedConsumed: settlement.forcedConsumed(),
            forcedHash: settlement.forcedHashAt(settlement.forcedConsumed()),
            dataHash: keccak256(data)
        });
        address sender = settlement.operator();
        if (sender == address(vm)) return;
        if (kind == 0) {
            uint64 wrong = uint64(seed);
            header.batchNumber = wrong == header.batchNumber ? wrong + 1 : wrong;
        } else if (kind == 1) {
            header.prevRoot = bytes32(seed) == ghostLastRoot ? ~bytes32(seed) : bytes32(seed);
        } else if (kind == 2) {
            header.newRoot = bytes32(bound(seed, R, type(uint256).max));
        } else if (kind == 3) {
            header.depositsConsumed = settlement.depositCount() + 1 + uint64(seed % 3);
        } else if (kind == 4) {
            header.depositsHash = ~header.depositsHash;
        } else if (kind == 5) {
            header.forcedHash = ~header.forcedHash;
        } else if (kind == 6) {
            header.dataHash = ~header.dataHash;
        } else if (kind == 7) {
            sender = _actor(seed);
            if (sender == settlement.operator()) header.dataHash = ~header.dataHash;
        }
        vm.prank(sender);
        try settlement.commitBatch(header, data) {
            _unexpected("invalid commitBatch accepted", "");
        } catch {
            stepCount["commitInvalid"]++;
        }
    }

    function claim(uint256 batchSeed, uint256 indexSeed, uint256 warpSeed) external {
        if (_batchesWithWithdrawals.length == 0) return;
        uint64 b = _batchesWithWithdrawals[batchSeed % _batchesWithWithdrawals.length];
        Withdrawal[] memory ws = _withdrawals[b];
        uint32 index = uint32(indexSeed % ws.length);
        uint256 claimableAt = settlement.batch(b).finalizedAt;
        if (block.timestamp < claimableAt) vm.warp(claimableAt + warpSeed % 1 hours);
        bool alreadyClaimed = settlement.isClaimed(b, index);
        bool voided = settlement.exodus() && b > settlement.exodusBatchNumber();
        Withdrawal memory w = ws[index];
        uint256 before = TestStablecoin(w.token).balanceOf(address(settlement));
        bytes32[] memory path = BatchData.proof(ws, index);
        vm.prank(_actor(warpSeed)); // anyone may claim
        try settlement.claimWithdrawal(b, index, w.recipient, w.token, w.amount, path) {
            uint256 count = ++ghostClaimCount[b][index];
            if (count > ghostMaxClaimCount) ghostMaxClaimCount = count;
            if (alreadyClaimed) _unexpected("claimed twice", "");
            if (voided) _unexpected("void batch's withdrawal claimed", "");
            if (TestStablecoin(w.token).balanceOf(address(settlement)) != before - w.amount) {
                _unexpected("claim paid a wrong amount", "");
            }
            ghostPaidOut[w.token] += w.amount;
            stepCount["claim"]++;
        } catch (bytes memory reason) {
            bytes memory expected = voided
                ? abi.encodeWithSelector(Settlement.BatchVoided.selector, b)
                : abi.encodeWithSelector(Settlement.AlreadyClaimed.selector, b, index);
            if (!(voided || alreadyClaimed) || keccak256(reason) != keccak256(expected)) {
                _unexpected("claim reverted", reason);
            } else {
                stepCount[voided ? bytes32("claimVoidRejected") : bytes32("claimTwiceRejected")]++;
            }
        }
    }

    /// @notice Lets the oldest queue entry go overdue and activates exodus (one call in
    ///         four, so most runs spend a while in normal operation first).
    function activateExodus(uint256 seed) external {
        if (_syncExodus() || seed % 4 != 0) return;
        if (
            settlement.depositsConsumed() == settlement.depositCount()
                && settlement.forcedConsumed() == settlement.forcedCount()
        ) {
            vm.prank(_actor(seed));
            settlement.requestForcedWithdrawal(_token(seed >> 8), _actor(seed >> 24));
        }
        uint256 deadline = type(uint256).max;
        if (settlement.depositsConsumed() < settlement.depositCount()) {
            deadline = settlement.depositEntry(settlement.depositsConsumed()).deadline;
        }
        if (settlement.forcedConsumed() < settlement.forcedCount()) {
            uint256 forcedDeadline = settlement.forcedEntry(settlement.forcedConsumed()).deadline;
            if (forcedDeadline < deadline) deadline = forcedDeadline;
        }
        if (block.timestamp <= deadline) vm.warp(deadline + 1);
        uint64 expectedExodusBatch = _lastFinalizedByScan();
        vm.prank(_actor(seed >> 16));
        try settlement.activateExodus() {
            _checkExodus(expectedExodusBatch);
            stepCount["exodus"]++;
        } catch (bytes memory reason) {
            _unexpected("activateExodus reverted", reason);
        }
    }

    /// @notice The guardian activates exodus at once (one call in eight), voiding every batch
    ///         still in its window, often right after a commit.
    function guardianExodus(uint256 seed) external {
        if (_syncExodus() || seed % 8 != 0) return;
        address guardian = settlement.guardian();
        uint64 expectedExodusBatch = _lastFinalizedByScan();
        vm.prank(guardian);
        try settlement.guardianExodus() {
            _checkExodus(expectedExodusBatch);
            stepCount["guardianExodus"]++;
        } catch (bytes memory reason) {
            _unexpected("guardianExodus reverted", reason);
        }
    }

    /// @dev The last finalized batch by a linear scan over the committed batches.
    function _lastFinalizedByScan() internal view returns (uint64 last) {
        for (uint64 b = 1; b <= ghostCommits; ++b) {
            if (settlement.batch(b).finalizedAt <= block.timestamp) last = b;
        }
    }

    function _checkExodus(uint64 expectedExodusBatch) internal {
        ghostExodusSeen = true;
        if (settlement.exodusBatchNumber() != expectedExodusBatch) _unexpected("wrong exodusBatchNumber", "");
        if (settlement.depositsConsumed() != settlement.batch(expectedExodusBatch).depositsConsumed) {
            _unexpected("depositsConsumed not reset to the void point", "");
        }
        ghostVoidedBatches = ghostCommits - expectedExodusBatch;
    }

    /// @notice Exits with a proof the mock verifier accepts for exactly the input the
    ///         contract must build: [root of the exodus batch, owner, token, amount, context],
    ///         the context binding a recipient drawn from the actors (often the owner itself).
    function exit(uint256 actorSeed, uint256 tokenSeed, uint256 amount) external {
        if (!_syncExodus()) return;
        address who = _actor(actorSeed);
        address recipient = _actor(actorSeed >> 8);
        address token = _token(tokenSeed);
        uint256 supply = settlement.ledgerSupply(token);
        amount = bound(amount, 1, supply == 0 ? 1 : supply);
        bool wasExited = settlement.exited(who, token);
        uint256[8] memory proof;
        proof[0] = actorSeed % R;
        uint256 context = uint256(
            keccak256(abi.encode(keccak256("Stablelane.exit.v2"), block.chainid, address(settlement), who, recipient))
        ) % R;
        verifier.expectProof(
            proof,
            [
                uint256(_roots[settlement.exodusBatchNumber()]),
                uint256(uint160(who)),
                uint256(uint160(token)),
                amount,
                context
            ]
        );

        bytes memory expected;
        if (wasExited) {
            expected = abi.encodeWithSelector(Settlement.AlreadyExited.selector, who, token);
        } else if (amount > supply) {
            expected = abi.encodeWithSelector(Settlement.LedgerSupplyExceeded.selector, token, amount, supply);
        }
        uint256 before = TestStablecoin(token).balanceOf(address(settlement));
        uint256 recipientBefore = TestStablecoin(token).balanceOf(recipient);
        vm.prank(who);
        try settlement.exit(token, uint128(amount), recipient, proof) {
            uint256 count = ++ghostExitCount[who][token];
            if (count > ghostMaxExitCount) ghostMaxExitCount = count;
            if (expected.length != 0) _unexpected("exit accepted", expected);
            if (TestStablecoin(token).balanceOf(address(settlement)) != before - amount) {
                _unexpected("exit paid a wrong amount", "");
            }
            // The fee token burns 1% of a transfer: the recipient gets between 99% and 100%.
            uint256 received = TestStablecoin(token).balanceOf(recipient) - recipientBefore;
            if (received > amount || received < amount - amount / 100) {
                _unexpected("exit did not pay its recipient", "");
            }
            ghostPaidOut[token] += amount;
            stepCount["exit"]++;
        } catch (bytes memory reason) {
            if (expected.length == 0 || keccak256(reason) != keccak256(expected)) {
                _unexpected("exit reverted", reason);
            } else {
                stepCount["exitRejected"]++;
            }
        }
        verifier.disarm();
    }

    function refundDeposit(uint256 indexSeed, bool wrongRecipient) external {
        if (!_syncExodus()) return;
        uint64 count = settlement.depositCount();
        if (count == 0) return;
        uint64 index = uint64(indexSeed % count);
        address recipient = _depositRecipient[index];
        if (recipient == address(0)) return; // not queued by this handler
        if (wrongRecipient) recipient = address(uint160(recipient) ^ 1);

        Settlement.DepositEntry memory entry = settlement.depositEntry(index);
        bool fromLedger = index < settlement.voidedDepositsEnd();
        uint256 supply = settlement.ledgerSupply(entry.token);
        bytes memory expected;
        if (index < settlement.depositsConsumed()) {
            expected = abi.encodeWithSelector(Settlement.DepositAlreadyConsumed.selector, index);
        } else if (entry.amount == 0) {
            expected = abi.encodeWithSelector(Settlement.DepositAlreadyRefunded.selector, index);
        } else if (wrongRecipient) {
            expected = abi.encodeWithSelector(Settlement.DepositMismatch.selector, index);
        } else if (fromLedger && entry.amount > supply) {
            // Exits against the exodus root (arbitrary here: the mock verifier accepts any
            // amount) took the ledger supply the void batches' deposits moved into it.
            expected =
                abi.encodeWithSelector(Settlement.LedgerSupplyExceeded.selector, entry.token, entry.amount, supply);
        }
        uint256 before = TestStablecoin(entry.token).balanceOf(address(settlement));
        try settlement.refundDeposit(index, recipient, recipient) {
            if (expected.length != 0) _unexpected("refund accepted", expected);
            if (TestStablecoin(entry.token).balanceOf(address(settlement)) != before - entry.amount) {
                _unexpected("refund paid a wrong amount", "");
            }
            ghostPaidOut[entry.token] += entry.amount;
            stepCount[fromLedger ? bytes32("refundVoided") : bytes32("refund")]++;
        } catch (bytes memory reason) {
            if (expected.length == 0 || keccak256(reason) != keccak256(expected)) {
                _unexpected("refund reverted", reason);
            } else {
                stepCount["refundRejected"]++;
            }
        }
    }

    // ----------------------------------------------------------------- helpers

    /// @dev Whether exodus is active (also set by direct calls the fuzzer makes).
    function _syncExodus() internal returns (bool active) {
        active = settlement.exodus();
        if (active) ghostExodusSeen = true;
    }

    function _actor(uint256 seed) internal view returns (address) {
        return _actors[seed % _actors.length];
    }

    function _token(uint256 seed) internal view returns (address) {
        return _tokens[seed % _tokens.length];
    }

    function _mintTo(address token, address to, uint256 amount) internal {
        // The handler owns the test stablecoins; the quirky token mints for anyone.
        if (token == _tokens[_tokens.length - 1]) QuirkyToken(token).mint(to, amount);
        else TestStablecoin(token).mint(to, amount);
    }

    function _prefixes(uint256 depositSeed, uint256 forcedSeed) internal view returns (uint64 d, uint64 f) {
        uint64 dFrom = settlement.depositsConsumed();
        uint64 dOpen = settlement.depositCount() - dFrom;
        if (dOpen > settlement.MAX_DEPOSITS_PER_BATCH()) dOpen = uint64(settlement.MAX_DEPOSITS_PER_BATCH());
        // Half of the batches consume the whole queue, the rest a random prefix.
        d = dFrom + (depositSeed % 2 == 0 ? dOpen : uint64((depositSeed >> 1) % (uint256(dOpen) + 1)));
        uint64 fFrom = settlement.forcedConsumed();
        uint64 fOpen = settlement.forcedCount() - fFrom;
        f = fFrom + (forcedSeed % 2 == 0 ? fOpen : uint64((forcedSeed >> 1) % (uint256(fOpen) + 1)));
    }

    /// @dev Up to 6 withdrawals that the ledger can pay once deposits up to `depositsTo` are in.
    /// @dev Whether the outflow model says a commit of `ws` consuming deposits up to
    ///      `depositsTo` now is delayed, and each token's new window outflow (`max` if the
    ///      batch leaves the token's window alone). Opens the model's windows for the tokens
    ///      the batch changes (with the ledger supply before the commit: the handler's batches
    ///      refuse no deposit), which the contract does on success and, on a revert, reports
    ///      as an unexpected failure anyway.
    function _predictOutflow(Withdrawal[] memory ws, uint64 depositsTo)
        internal
        returns (bool delayed, uint256[] memory outflows)
    {
        outflows = new uint256[](_tokens.length);
        uint256[] memory paid = new uint256[](_tokens.length);
        bool[] memory touched = new bool[](_tokens.length);
        for (uint64 i = settlement.depositsConsumed(); i < depositsTo; ++i) {
            address token = settlement.depositEntry(i).token;
            for (uint256 t = 0; t < _tokens.length; ++t) {
                if (_tokens[t] == token) touched[t] = true;
            }
        }
        for (uint256 i = 0; i < ws.length; ++i) {
            for (uint256 t = 0; t < _tokens.length; ++t) {
                if (_tokens[t] == ws[i].token) {
                    touched[t] = true;
                    paid[t] += ws[i].amount;
                }
            }
        }
        uint256 limitBps = settlement.outflowLimitBps();
        uint256 window = block.timestamp / settlement.outflowPeriod() + 1;
        for (uint256 t = 0; t < _tokens.length; ++t) {
            address token = _tokens[t];
            outflows[t] = type(uint256).max;
            if (!touched[t] || limitBps == 0) continue;
            if (_modelWindow[token] != window) {
                _modelWindow[token] = window;
                _modelLimit[token] = settlement.ledgerSupply(token) * limitBps / 10_000;
                _modelOutflow[token] = 0;
            }
            outflows[t] = _modelOutflow[token] + paid[t];
            if (paid[t] > 0 && outflows[t] > _modelLimit[token]) delayed = true;
        }
    }

    function _randomWithdrawals(uint256 seed, uint64 depositsTo) internal view returns (Withdrawal[] memory ws) {
        uint256[] memory available = new uint256[](_tokens.length);
        for (uint256 t = 0; t < _tokens.length; ++t) {
            available[t] = settlement.ledgerSupply(_tokens[t]);
        }
        for (uint64 i = settlement.depositsConsumed(); i < depositsTo; ++i) {
            Settlement.DepositEntry memory entry = settlement.depositEntry(i);
            for (uint256 t = 0; t < _tokens.length; ++t) {
                if (_tokens[t] == entry.token) available[t] += entry.amount;
            }
        }
        Withdrawal[] memory buffer = new Withdrawal[](6);
        uint256 n = 0;
        uint256 wanted = seed % 7;
        for (uint256 i = 0; i < wanted; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            uint256 t = r % _tokens.length;
            if (available[t] == 0) continue;
            // Whole balances, tiny amounts and anything between.
            uint256 amount = (r >> 8) % 3 == 0 ? available[t] : bound(r >> 16, 1, available[t]);
            available[t] -= amount;
            address recipient = (r >> 100) % 4 == 0 ? address(uint160(r >> 96) | 1) : _actor(r >> 104);
            buffer[n++] = Withdrawal(recipient, _tokens[t], uint128(amount));
        }
        ws = new Withdrawal[](n);
        for (uint256 i = 0; i < n; ++i) {
            ws[i] = buffer[i];
        }
    }

    function _unexpected(string memory what, bytes memory reason) internal {
        ++unexpectedFailures;
        lastFailure = what;
        lastFailureReason = reason;
    }
}
