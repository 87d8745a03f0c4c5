// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IGroth16Verifier} from "./IGroth16Verifier.sol";

/// @title Stablelane settlement contract
/// @notice Holds the stablecoins behind Stablelane's off-chain ledger. Money enters through
///         `deposit` (queued with a rolling hash the operator must consume in order), leaves
///         through the withdrawal list of a committed batch (claimable after a finalization
///         delay), and, if the operator censors or disappears, through exodus mode: exits by
///         Groth16 proof against the last finalized root and refunds of deposits no finalized
///         batch consumed. A batch is finalized once its finalization delay has passed
///         (`outflowDelay` more if it took a token's outflow in the current window past the
///         per-token outflow limit, and never before the previous batch); exodus (activated
///         by anyone on an overdue queue entry, or at once by the guardian) voids every batch
///         still in its window. A deposit the ledger cannot hold is consumed as
///         refused by a batch and becomes refundable at once. Operator and token-allowlist
///         changes wait `timelockDelay` (= the finalization delay).
/// @dev Batch data layout (version 3), of which the contract reads the withdrawal and
///      refused-deposit sections:
///        byte 0          version (= 3)
///        bytes 1..5      withdrawal count n (uint32, big-endian)
///        next 56*n bytes withdrawals: recipient (20) | token (20) | amount (uint128, 16)
///        next 4 bytes    refused-deposit count m (uint32, big-endian, at most 1,024)
///        next 8*m bytes  refused deposits: queue index (uint64, big-endian), strictly
///                        increasing, each in [depositsConsumed before, header.depositsConsumed)
///        rest            node-defined body: new slots, then changed leaves as
///                        (slot gap LEB128 varint | leaf hash 32 | encrypted note 17)
///      The header commits to `keccak256(data)`, so the rest is bound to the commit too.
///      Version 3 added the refused-deposit section; version 2 had none (and version 1 a
///      fixed-width body). Data with any other version byte is refused.
contract Settlement is Ownable2Step, ReentrancyGuard {
    using SafeERC20 for IERC20;

    // ------------------------------------------------------------------ types

    /// @notice What the operator commits for each batch.
    struct BatchHeader {
        /// Must be `lastBatchNumber + 1`.
        uint64 batchNumber;
        /// Must equal the current state root.
        bytes32 prevRoot;
        /// New state root (a BN254 scalar-field element).
        bytes32 newRoot;
        /// Deposits consumed by the ledger after this batch (a prefix length of the queue).
        uint64 depositsConsumed;
        /// Rolling hash of the deposit queue at `depositsConsumed`.
        bytes32 depositsHash;
        /// Forced-withdrawal requests consumed after this batch (a prefix length).
        uint64 forcedConsumed;
        /// Rolling hash of the forced-request queue at `forcedConsumed`.
        bytes32 forcedHash;
        /// `keccak256(data)`.
        bytes32 dataHash;
    }

    /// @notice A committed batch as the contract keeps it.
    struct Batch {
        bytes32 root;
        bytes32 withdrawalsRoot;
        uint64 committedAt;
        uint32 withdrawalCount;
        /// Deposit-queue prefix consumed after this batch (batch 0: 0).
        uint64 depositsConsumed;
        /// When the batch is finalized: `max(finalizedAt` of the previous batch,
        /// `committedAt + finalizationDelay` (`+ outflowDelay` if the batch exceeded a token's
        /// outflow limit)`)`, so it never decreases with the batch number (batch 0: its
        /// `committedAt`).
        uint64 finalizedAt;
    }

    /// @notice Per token: cumulative withdrawals committed up to and including `batchNumber`.
    ///         Appended at each commit whose withdrawal list pays the token.
    struct WithdrawalCheckpoint {
        uint64 batchNumber;
        uint192 cumulative;
    }

    /// @notice The contract's periods (constructor argument; immutable). No period may be 0
    ///         or longer than `MAX_PERIOD`.
    struct Periods {
        /// Seconds before a committed batch finalizes (at least `MIN_FINALIZATION_DELAY`
        /// unless short periods are allowed); also the timelock of role and token changes.
        uint64 finalizationDelay;
        /// Seconds the operator has to consume a deposit (at least `MIN_DEADLINE_PERIOD`
        /// unless short periods are allowed).
        uint64 depositDeadlinePeriod;
        /// Seconds the operator has to serve a forced withdrawal (same minimum).
        uint64 forcedDeadlinePeriod;
        /// Waive `MIN_FINALIZATION_DELAY` and `MIN_DEADLINE_PERIOD` and allow an outflow
        /// limit of 0 (test deployments; also waived on chain id 31337).
        bool allowShortPeriods;
    }

    /// @notice The outflow limit's parameters (constructor argument; immutable).
    struct OutflowConfig {
        /// Per token and window: the share of the token's ledger supply at the window's start,
        /// in basis points (at most `BPS`), that batches may withdraw without delay. 0 = no
        /// limit, refused unless short periods are allowed (test deployments).
        uint16 limitBps;
        /// Length in seconds of an outflow window, in [finalizationDelay, MAX_PERIOD].
        uint64 period;
        /// Seconds added to the finalization delay of a batch over a limit, in
        /// [finalizationDelay, MAX_PERIOD].
        uint64 delay;
    }

    /// @notice Per token: the outflow window the contract last counted withdrawals in.
    struct OutflowWindow {
        /// `block.timestamp / outflowPeriod + 1` of the window (0 = never opened).
        uint64 window;
        /// Withdrawals committed in the window (including those of delayed batches).
        uint192 outflow;
        /// `outflowLimitBps` of the token's ledger supply at the window's start.
        uint256 limit;
    }

    /// @notice A role change the owner proposed, executable from `executableAt` (0 = none).
    struct Proposal {
        address account;
        uint64 executableAt;
    }

    /// @notice An entry of the deposit queue.
    struct DepositEntry {
        /// Rolling hash after this deposit.
        bytes32 rollingHash;
        address token;
        /// Time after which an unconsumed deposit lets anyone activate exodus.
        uint64 deadline;
        /// Consumed by a batch as refused (the ledger could not hold it): refundable.
        bool refused;
        /// Amount received; zeroed once refunded.
        uint128 amount;
    }

    /// @notice An entry of the forced-withdrawal queue.
    struct ForcedEntry {
        bytes32 rollingHash;
        uint64 deadline;
    }

    // -------------------------------------------------------------- constants

    /// @notice Order of the BN254 scalar field: roots and proof inputs live below it.
    uint256 public constant SNARK_SCALAR_FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice Version byte of the batch data layout this contract reads.
    uint8 public constant DATA_VERSION = 3;
    /// @notice Upper bound on the withdrawals of one batch (about 4.5k gas each: a batch at
    ///         both limits stays well under the 16,777,216 per-transaction gas cap of EIP-7825).
    uint256 public constant MAX_WITHDRAWALS_PER_BATCH = 1024;
    /// @notice Upper bound on the deposits one batch may consume (about 5.2k gas each).
    uint256 public constant MAX_DEPOSITS_PER_BATCH = 1024;
    /// @notice Longest finalization delay or deadline period the constructor accepts.
    uint64 public constant MAX_PERIOD = 365 days;
    /// @notice Shortest finalization delay the constructor accepts, unless short periods are
    ///         allowed (chain id 31337 or `allowShortPeriods`): time for the node to see its
    ///         commit confirmed, and for users and watchers to look at a batch before its
    ///         withdrawals pay out.
    uint64 public constant MIN_FINALIZATION_DELAY = 1 hours;
    /// @notice Shortest deposit or forced-withdrawal deadline period the constructor
    ///         accepts, unless short periods are allowed: how long the operator's node may be
    ///         down (or an L2 congested) before anyone can activate exodus.
    uint64 public constant MIN_DEADLINE_PERIOD = 1 days;
    /// @notice Largest deposit: the ledger's per-slot balance bound (2^96 - 1 base units,
    ///         the 12 bytes a batch note gives a balance).
    uint256 public constant MAX_DEPOSIT = 2 ** 96 - 1;
    /// @notice Basis points of one whole (`outflowLimitBps` is at most this).
    uint16 public constant BPS = 10_000;
    /// @notice Upper bound on the token allowlist (bounds the per-token loop at exodus).
    uint256 public constant MAX_TOKENS = 32;
    /// @notice Bytes of one encoded refused-deposit index.
    uint256 internal constant REFUSED_BYTES = 8;
    /// @notice Bytes of one encoded withdrawal: recipient, token, amount.
    uint256 internal constant WITHDRAWAL_BYTES = 56;
    /// @notice Domain tag of the exit context (see `exitContext`). Version 2 binds the
    ///         exit's recipient as well as its owner.
    bytes32 public constant EXIT_DOMAIN = keccak256("Stablelane.exit.v2");

    // ------------------------------------------------------------- immutables

    /// @notice Groth16 verifier for exits and attestations.
    IGroth16Verifier public immutable verifier;
    /// @notice Seconds between a batch's commit and its withdrawals becoming claimable.
    uint64 public immutable finalizationDelay;
    /// @notice Seconds the operator has to consume a deposit before exodus may be activated.
    uint64 public immutable depositDeadlinePeriod;
    /// @notice Seconds the operator has to serve a forced withdrawal.
    uint64 public immutable forcedDeadlinePeriod;
    /// @notice Whether the deployer waived the period minimums (`MIN_FINALIZATION_DELAY`,
    ///         `MIN_DEADLINE_PERIOD`). They are also waived on chain id 31337 (anvil).
    bool public immutable allowShortPeriods;
    /// @notice Account that may activate exodus at once (`guardianExodus`) and do nothing
    ///         else; `address(0)` = no guardian.
    address public immutable guardian;
    /// @notice Seconds a proposed operator or token waits before it can be executed; equal to
    ///         `finalizationDelay`, so users see a change coming at least one window ahead.
    uint64 public immutable timelockDelay;
    /// @notice Per token and outflow window: the basis points of the token's ledger supply at
    ///         the window's start that batches may withdraw without delay; a batch that takes
    ///         the window's outflow past it finalizes `outflowDelay` later. 0 = no limit (only
    ///         where short periods are allowed: test deployments).
    uint16 public immutable outflowLimitBps;
    /// @notice Length in seconds of the fixed outflow windows `[k·outflowPeriod, (k+1)·outflowPeriod)`.
    uint64 public immutable outflowPeriod;
    /// @notice Seconds added to the finalization delay of a batch over an outflow limit.
    uint64 public immutable outflowDelay;

    // ------------------------------------------------------------------ state

    /// @notice Account allowed to commit batches.
    address public operator;
    /// @notice Whether exodus mode is active (no more commits; exits and refunds open).
    bool public exodus;
    /// @notice In exodus: the last finalized batch at activation, whose root serves exits;
    ///         every later batch is void. 0 before exodus.
    uint64 public exodusBatchNumber;
    /// @notice In exodus: end (exclusive) of the deposit-queue range that void batches
    ///         consumed, `[depositsConsumed, voidedDepositsEnd)`; its non-refused deposits are
    ///         refunded from `ledgerSupply`. 0 before exodus.
    uint64 public voidedDepositsEnd;

    /// @notice Operator proposed by the owner (`pendingOperator`, `operatorExecutableAt`).
    Proposal internal _operatorProposal;
    /// @notice Account whose signature on a receipt group (`Receipts.sol`) binds the
    ///         operator: separate from the committer, so each key can be kept and rotated
    ///         apart.
    address public receiptSigner;
    /// @notice Receipt signer proposed by the owner (`pendingReceiptSigner`,
    ///         `receiptSignerExecutableAt`).
    Proposal internal _receiptSignerProposal;
    /// @notice Per proposed token: when it may be added (0 = not proposed).
    mapping(address token => uint64) public tokenExecutableAt;

    /// @notice Tokens accepted for deposit.
    mapping(address token => bool) public supportedToken;
    /// @notice Supported tokens in the order they were added.
    address[] internal _tokens;

    /// @notice Current (last committed) state root.
    bytes32 public stateRoot;
    /// @notice Number of the last committed batch (0 = genesis).
    uint64 public lastBatchNumber;
    /// @notice Committed batches by number; batch 0 is the genesis state.
    mapping(uint64 batchNumber => Batch) internal _batches;
    /// @notice Claimed-withdrawal bitmap per batch: bit `i % 256` of word `i / 256`.
    mapping(uint64 batchNumber => mapping(uint256 word => uint256 bits)) internal _claimed;

    /// @notice Deposits ever queued.
    uint64 public depositCount;
    /// @notice Deposits consumed by committed batches.
    uint64 public depositsConsumed;
    /// @notice Deposit queue; index `i` holds the state after deposit `i`.
    mapping(uint256 index => DepositEntry) internal _deposits;

    /// @notice Forced-withdrawal requests ever queued.
    uint64 public forcedCount;
    /// @notice Forced-withdrawal requests consumed by committed batches.
    uint64 public forcedConsumed;
    /// @notice Forced-withdrawal queue; index `i` holds the state after request `i`.
    mapping(uint256 index => ForcedEntry) internal _forced;

    /// @notice Per token: deposited but not yet consumed by a batch (refundable in exodus).
    mapping(address token => uint256) public pendingDeposits;
    /// @notice Per token: deposits batches consumed as refused, not yet refunded.
    mapping(address token => uint256) public refusedDeposits;
    /// @notice Per token: held for the off-chain ledger (consumed deposits − withdrawals − exits).
    mapping(address token => uint256) public ledgerSupply;
    /// @notice Per token: committed withdrawals not yet claimed.
    mapping(address token => uint256) public unclaimedWithdrawals;

    /// @notice Whether (owner, token) has exited in exodus mode.
    mapping(address owner => mapping(address token => bool)) public exited;

    /// @notice Per token: checkpoints of cumulative committed withdrawals, by batch number.
    mapping(address token => WithdrawalCheckpoint[]) internal _withdrawalCheckpoints;

    /// @notice Per token: the outflow window withdrawals were last counted in.
    mapping(address token => OutflowWindow) internal _outflow;

    // ----------------------------------------------------------------- events

    /// @notice A deposit joined the queue.
    event Deposited(
        uint64 indexed index,
        address indexed recipient,
        address indexed token,
        uint128 amount,
        address depositor,
        bytes32 rollingHash,
        uint64 deadline
    );
    /// @notice A forced withdrawal was requested: `owner`'s whole balance of `token` is to be
    ///         paid to `recipient`.
    event ForcedWithdrawalRequested(
        uint64 indexed index,
        address indexed owner,
        address indexed token,
        address recipient,
        bytes32 rollingHash,
        uint64 deadline
    );
    /// @notice A batch was committed.
    event BatchCommitted(
        uint64 indexed batchNumber,
        bytes32 newRoot,
        bytes32 dataHash,
        uint64 depositsConsumed,
        uint64 forcedConsumed,
        uint32 withdrawalCount,
        bytes32 withdrawalsRoot
    );
    /// @notice Batch `batchNumber` took the outflow of `token` in the current window to
    ///         `outflow`, past its `limit`: it finalizes at `finalizedAt` (one event per token
    ///         over its limit).
    event OutflowDelayed(
        uint64 indexed batchNumber, address indexed token, uint256 outflow, uint256 limit, uint64 finalizedAt
    );
    /// @notice A committed withdrawal was paid out.
    event WithdrawalClaimed(
        uint64 indexed batchNumber, uint32 index, address indexed recipient, address indexed token, uint128 amount
    );
    /// @notice Exodus mode was activated by `by` (overdue entries: `type(uint64).max` for a
    ///         queue that was not overdue, both for the guardian); exits prove against the root
    ///         of `exodusBatchNumber`.
    event ExodusActivated(address indexed by, uint64 overdueDeposit, uint64 overdueForced, uint64 exodusBatchNumber);
    /// @notice Batches `firstVoid..=lastVoid` were voided at exodus: their withdrawals are
    ///         never claimable and the deposits they consumed are refundable again.
    event BatchesVoided(uint64 firstVoid, uint64 lastVoid);
    /// @notice Void batches' withdrawals of `token` returned from the unclaimed pool to the
    ///         ledger supply.
    event WithdrawalsVoided(address indexed token, uint256 amount);
    /// @notice A user exited in exodus mode: `owner`'s `amount` of `token` was paid to `recipient`.
    event Exited(address indexed owner, address indexed token, address indexed recipient, uint128 amount);
    /// @notice A batch consumed deposit `index` as refused: it is refundable from now on.
    event DepositRefused(uint64 indexed index, uint64 indexed batchNumber, address indexed token, uint128 amount);
    /// @notice A refused deposit, or an unconsumed one in exodus mode, was refunded to `to`.
    event DepositRefunded(
        uint64 indexed index, address indexed recipient, address indexed token, uint128 amount, address to
    );
    /// @notice A token was added to the allowlist.
    event TokenAdded(address indexed token);
    /// @notice The operator changed.
    event OperatorChanged(address indexed previous, address indexed current);
    /// @notice The owner proposed `operator`, executable from `executableAt`.
    event OperatorProposed(address indexed operator, uint64 executableAt);
    /// @notice The owner withdrew the operator proposal.
    event OperatorProposalCancelled(address indexed operator);
    /// @notice The receipt signer changed.
    event ReceiptSignerChanged(address indexed previous, address indexed current);
    /// @notice The owner proposed `receiptSigner`, executable from `executableAt`.
    event ReceiptSignerProposed(address indexed receiptSigner, uint64 executableAt);
    /// @notice The owner withdrew the receipt signer proposal.
    event ReceiptSignerProposalCancelled(address indexed receiptSigner);
    /// @notice The owner proposed adding `token`, executable from `executableAt`.
    event TokenProposed(address indexed token, uint64 executableAt);
    /// @notice The owner withdrew the proposal to add `token`.
    event TokenProposalCancelled(address indexed token);

    // ----------------------------------------------------------------- errors

    error ZeroAddress();
    error ZeroAmount();
    error DepositTooLarge(uint256 amount, uint256 max);
    error UnsupportedToken(address token);
    error TokenAlreadySupported(address token);
    error NotOperator(address caller);
    error ExodusActive();
    error ExodusNotActive();
    error BadBatchNumber(uint64 expected, uint64 given);
    error PrevRootMismatch(bytes32 expected, bytes32 given);
    error RootNotInField(bytes32 root);
    error DepositPrefixOutOfRange(uint64 consumed, uint64 given, uint64 queued);
    error DepositHashMismatch(bytes32 expected, bytes32 given);
    error ForcedPrefixOutOfRange(uint64 consumed, uint64 given, uint64 queued);
    error ForcedHashMismatch(bytes32 expected, bytes32 given);
    error DataHashMismatch(bytes32 expected, bytes32 given);
    error MalformedData();
    error UnsupportedDataVersion(uint8 version);
    error TooManyWithdrawals(uint256 count);
    error TooManyDeposits(uint256 count);
    error LedgerSupplyExceeded(address token, uint256 requested, uint256 available);
    error UnknownBatch(uint64 batchNumber);
    error BatchTooOld(uint64 batchNumber, uint64 minBatchNumber);
    error NotFinalized(uint64 claimableAt);
    error IndexOutOfRange(uint256 index, uint256 count);
    error AlreadyClaimed(uint64 batchNumber, uint32 index);
    error InvalidMerkleProof();
    error InvalidProof();
    error NothingOverdue();
    error AlreadyExited(address owner, address token);
    error DepositAlreadyConsumed(uint64 index);
    error DepositAlreadyRefunded(uint64 index);
    error DepositMismatch(uint64 index);
    error NoTokensReceived();
    error PeriodTooLong(uint64 period);
    error PeriodTooShort(uint64 period, uint64 minimum);
    error RefusedDepositOutOfRange(uint64 index, uint64 from, uint64 to);
    error RefusedDepositsNotIncreasing(uint64 previous, uint64 index);
    error TooManyRefusedDeposits(uint256 count);
    error NotDepositRecipient(address caller, address recipient);
    error BatchVoided(uint64 batchNumber);
    error NotGuardian(address caller);
    error TimelockNotElapsed(uint64 executableAt);
    error NothingProposed();
    error TooManyTokens(uint256 max);
    error OutflowLimitTooHigh(uint16 limitBps);
    error OutflowLimitRequired();

    // ------------------------------------------------------------ constructor

    /// @param initialOwner governance account (token allowlist, operator changes)
    /// @param initialOperator account allowed to commit batches
    /// @param guardian_ account that may activate exodus at once (`address(0)` = none)
    /// @param initialReceiptSigner account that signs receipt groups (not `address(0)`)
    /// @param verifier_ Groth16 verifier generated from the circuit's verifying key
    /// @param genesisRoot root of the empty state tree (batch 0)
    /// @param initialTokens initial token allowlist
    /// @param periods finalization delay and deadline periods (see `Periods`)
    /// @param outflow the per-token outflow limit (see `OutflowConfig`)
    constructor(
        address initialOwner,
        address initialOperator,
        address guardian_,
        address initialReceiptSigner,
        IGroth16Verifier verifier_,
        bytes32 genesisRoot,
        address[] memory initialTokens,
        Periods memory periods,
        OutflowConfig memory outflow
    ) Ownable(initialOwner) {
        if (initialOperator == address(0) || initialReceiptSigner == address(0) || address(verifier_) == address(0)) {
            revert ZeroAddress();
        }
        if (uint256(genesisRoot) >= SNARK_SCALAR_FIELD) revert RootNotInField(genesisRoot);
        uint64 finalization = periods.finalizationDelay;
        if (finalization > MAX_PERIOD) revert PeriodTooLong(finalization);
        if (periods.depositDeadlinePeriod > MAX_PERIOD) revert PeriodTooLong(periods.depositDeadlinePeriod);
        if (periods.forcedDeadlinePeriod > MAX_PERIOD) revert PeriodTooLong(periods.forcedDeadlinePeriod);
        bool short = periods.allowShortPeriods || block.chainid == 31337;
        _checkMinimum(finalization, short ? 1 : MIN_FINALIZATION_DELAY);
        _checkMinimum(periods.depositDeadlinePeriod, short ? 1 : MIN_DEADLINE_PERIOD);
        _checkMinimum(periods.forcedDeadlinePeriod, short ? 1 : MIN_DEADLINE_PERIOD);
        _checkOutflow(outflow, finalization, short);
        outflowLimitBps = outflow.limitBps;
        outflowPeriod = outflow.period;
        outflowDelay = outflow.delay;
        allowShortPeriods = periods.allowShortPeriods;
        verifier = verifier_;
        finalizationDelay = finalization;
        depositDeadlinePeriod = periods.depositDeadlinePeriod;
        forcedDeadlinePeriod = periods.forcedDeadlinePeriod;
        guardian = guardian_;
        timelockDelay = finalization;
        operator = initialOperator;
        emit OperatorChanged(address(0), initialOperator);
        receiptSigner = initialReceiptSigner;
        emit ReceiptSignerChanged(address(0), initialReceiptSigner);
        stateRoot = genesisRoot;
        _batches[0] = Batch({
            root: genesisRoot,
            withdrawalsRoot: bytes32(0),
            committedAt: uint64(block.timestamp),
            withdrawalCount: 0,
            depositsConsumed: 0,
            finalizedAt: uint64(block.timestamp)
        });
        for (uint256 i = 0; i < initialTokens.length; ++i) {
            _addToken(initialTokens[i]);
        }
    }

    function _checkMinimum(uint64 period, uint64 minimum) internal pure {
        if (period < minimum) revert PeriodTooShort(period, minimum);
    }

    function _checkOutflow(OutflowConfig memory outflow, uint64 finalization, bool short) internal pure {
        if (outflow.limitBps > BPS) revert OutflowLimitTooHigh(outflow.limitBps);
        if (outflow.limitBps == 0 && !short) revert OutflowLimitRequired();
        if (outflow.period > MAX_PERIOD) revert PeriodTooLong(outflow.period);
        if (outflow.delay > MAX_PERIOD) revert PeriodTooLong(outflow.delay);
        _checkMinimum(outflow.period, finalization);
        _checkMinimum(outflow.delay, finalization);
    }

    // -------------------------------------------------------------- modifiers

    modifier notExodus() {
        if (exodus) revert ExodusActive();
        _;
    }

    modifier onlyExodus() {
        if (!exodus) revert ExodusNotActive();
        _;
    }

    // ------------------------------------------------------------- governance

    /// @notice Proposes `newOperator`; `executeOperator` installs it once `timelockDelay` has
    ///         passed. A new proposal replaces a pending one and restarts its timelock.
    function proposeOperator(address newOperator) external onlyOwner {
        emit OperatorProposed(newOperator, _propose(_operatorProposal, newOperator));
    }

    /// @notice Installs the proposed operator once its timelock has elapsed. Anyone may call
    ///         it: the owner decided at the proposal; the delay is what protects users.
    function executeOperator() external {
        address newOperator = _execute(_operatorProposal);
        emit OperatorChanged(operator, newOperator);
        operator = newOperator;
    }

    /// @notice Withdraws the pending operator proposal.
    function cancelOperator() external onlyOwner {
        emit OperatorProposalCancelled(_cancel(_operatorProposal));
    }

    /// @notice Proposes `newReceiptSigner`; `executeReceiptSigner` installs it once
    ///         `timelockDelay` has passed. A new proposal replaces a pending one and restarts
    ///         its timelock.
    function proposeReceiptSigner(address newReceiptSigner) external onlyOwner {
        emit ReceiptSignerProposed(newReceiptSigner, _propose(_receiptSignerProposal, newReceiptSigner));
    }

    /// @notice Installs the proposed receipt signer once its timelock has elapsed. Anyone may
    ///         call it.
    function executeReceiptSigner() external {
        address newReceiptSigner = _execute(_receiptSignerProposal);
        emit ReceiptSignerChanged(receiptSigner, newReceiptSigner);
        receiptSigner = newReceiptSigner;
    }

    /// @notice Withdraws the pending receipt signer proposal.
    function cancelReceiptSigner() external onlyOwner {
        emit ReceiptSignerProposalCancelled(_cancel(_receiptSignerProposal));
    }

    /// @notice Operator proposed by the owner, executable from `operatorExecutableAt`.
    function pendingOperator() external view returns (address) {
        return _operatorProposal.account;
    }

    /// @notice When `pendingOperator` may be executed (0 = nothing proposed).
    function operatorExecutableAt() external view returns (uint64) {
        return _operatorProposal.executableAt;
    }

    /// @notice Receipt signer proposed by the owner, executable from `receiptSignerExecutableAt`.
    function pendingReceiptSigner() external view returns (address) {
        return _receiptSignerProposal.account;
    }

    /// @notice When `pendingReceiptSigner` may be executed (0 = nothing proposed).
    function receiptSignerExecutableAt() external view returns (uint64) {
        return _receiptSignerProposal.executableAt;
    }

    /// @dev Records the proposal of `account` (not zero), replacing any pending one; returns
    ///      when it becomes executable.
    function _propose(Proposal storage proposal, address account) internal returns (uint64 executableAt) {
        if (account == address(0)) revert ZeroAddress();
        executableAt = uint64(block.timestamp) + timelockDelay;
        proposal.account = account;
        proposal.executableAt = executableAt;
    }

    /// @dev Clears a proposal whose timelock has elapsed and returns its account.
    function _execute(Proposal storage proposal) internal returns (address account) {
        uint64 executableAt = proposal.executableAt;
        if (executableAt == 0) revert NothingProposed();
        // Delays are hours to days: a few seconds of proposer leeway on timestamps do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < executableAt) revert TimelockNotElapsed(executableAt);
        account = proposal.account;
        delete proposal.account;
        delete proposal.executableAt;
    }

    /// @dev Clears a pending proposal and returns its account.
    function _cancel(Proposal storage proposal) internal returns (address account) {
        if (proposal.executableAt == 0) revert NothingProposed();
        account = proposal.account;
        delete proposal.account;
        delete proposal.executableAt;
    }

    /// @notice Proposes adding `token` to the deposit allowlist; `executeToken` adds it once
    ///         `timelockDelay` has passed. Proposing it again restarts its timelock.
    function proposeToken(address token) external onlyOwner {
        _checkNewToken(token);
        uint64 executableAt = uint64(block.timestamp) + timelockDelay;
        tokenExecutableAt[token] = executableAt;
        emit TokenProposed(token, executableAt);
    }

    /// @notice Adds the proposed `token` once its timelock has elapsed. Anyone may call it.
    function executeToken(address token) external {
        uint64 executableAt = tokenExecutableAt[token];
        if (executableAt == 0) revert NothingProposed();
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < executableAt) revert TimelockNotElapsed(executableAt);
        delete tokenExecutableAt[token];
        _addToken(token);
    }

    /// @notice Withdraws the proposal to add `token`.
    function cancelToken(address token) external onlyOwner {
        if (tokenExecutableAt[token] == 0) revert NothingProposed();
        delete tokenExecutableAt[token];
        emit TokenProposalCancelled(token);
    }

    function _checkNewToken(address token) internal view {
        if (token == address(0)) revert ZeroAddress();
        if (supportedToken[token]) revert TokenAlreadySupported(token);
        if (_tokens.length >= MAX_TOKENS) revert TooManyTokens(MAX_TOKENS);
    }

    function _addToken(address token) internal {
        _checkNewToken(token);
        supportedToken[token] = true;
        _tokens.push(token);
        emit TokenAdded(token);
    }

    // --------------------------------------------------------------- deposits

    /// @notice Deposits `amount` of `token` for `recipient` on the off-chain ledger.
    /// @dev The caller must have approved the contract. The credited amount is what the
    ///      contract actually received.
    function deposit(address token, uint256 amount, address recipient) external nonReentrant notExodus {
        _deposit(token, amount, recipient);
    }

    /// @notice `deposit` with an EIP-2612 permit instead of a prior approval.
    /// @dev A permit that fails (for example one already used by a front-runner) is ignored;
    ///      the transfer then needs an existing allowance.
    function depositWithPermit(
        address token,
        uint256 amount,
        address recipient,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant notExodus {
        if (!supportedToken[token]) revert UnsupportedToken(token);
        try IERC20Permit(token).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        _deposit(token, amount, recipient);
    }

    function _deposit(address token, uint256 amount, address recipient) internal {
        if (!supportedToken[token]) revert UnsupportedToken(token);
        if (recipient == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        if (amount > MAX_DEPOSIT) revert DepositTooLarge(amount, MAX_DEPOSIT);

        uint256 balanceBefore = IERC20(token).balanceOf(address(this));
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = IERC20(token).balanceOf(address(this)) - balanceBefore;
        if (received == 0) revert NoTokensReceived();
        if (received > MAX_DEPOSIT) revert DepositTooLarge(received, MAX_DEPOSIT);
        // casting to 'uint128' is safe because `received` was checked against MAX_DEPOSIT above
        // forge-lint: disable-next-line(unsafe-typecast)
        uint128 credited = uint128(received);

        uint64 index = depositCount;
        bytes32 prev = index == 0 ? bytes32(0) : _deposits[index - 1].rollingHash;
        bytes32 rolling = depositHash(prev, recipient, token, credited);
        // casting to 'uint64' is safe: timestamps fit in 64 bits for billions of years
        // forge-lint: disable-next-line(unsafe-typecast)
        uint64 deadline = uint64(block.timestamp) + depositDeadlinePeriod;
        _deposits[index] =
            DepositEntry({rollingHash: rolling, token: token, deadline: deadline, refused: false, amount: credited});
        depositCount = index + 1;
        pendingDeposits[token] += received;
        emit Deposited(index, recipient, token, credited, msg.sender, rolling, deadline);
    }

    // ------------------------------------------------------ forced withdrawals

    /// @notice Asks the operator to withdraw the caller's whole balance of `token` to
    ///         `recipient` (the caller itself, or any other address, for example when the
    ///         caller cannot receive the token) in a batch before the deadline; if it does
    ///         not, anyone may activate exodus. The rolling hash binds `recipient`.
    function requestForcedWithdrawal(address token, address recipient) external notExodus {
        if (!supportedToken[token]) revert UnsupportedToken(token);
        if (recipient == address(0)) revert ZeroAddress();
        uint64 index = forcedCount;
        bytes32 prev = index == 0 ? bytes32(0) : _forced[index - 1].rollingHash;
        bytes32 rolling = forcedHash(prev, msg.sender, token, recipient);
        uint64 deadline = uint64(block.timestamp) + forcedDeadlinePeriod;
        _forced[index] = ForcedEntry({rollingHash: rolling, deadline: deadline});
        forcedCount = index + 1;
        emit ForcedWithdrawalRequested(index, msg.sender, token, recipient, rolling, deadline);
    }

    // ---------------------------------------------------------------- batches

    /// @notice Commits a batch: checks it against the queues and the current root, records
    ///         the new root and the batch's withdrawals, and marks the deposits its data lists
    ///         as refused (consumed without entering the ledger, refundable at once). The
    ///         batch finalizes `finalizationDelay` after the commit, `outflowDelay` later if
    ///         its withdrawals take a token past its outflow limit, and never before the
    ///         previous batch.
    function commitBatch(BatchHeader calldata header, bytes calldata data) external nonReentrant notExodus {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        uint64 expected = lastBatchNumber + 1;
        if (header.batchNumber != expected) revert BadBatchNumber(expected, header.batchNumber);
        if (header.prevRoot != stateRoot) revert PrevRootMismatch(stateRoot, header.prevRoot);
        if (uint256(header.newRoot) >= SNARK_SCALAR_FIELD) revert RootNotInField(header.newRoot);
        bytes32 dataHash = keccak256(data);
        if (header.dataHash != dataHash) revert DataHashMismatch(dataHash, header.dataHash);

        _consumeDeposits(expected, header.depositsConsumed, header.depositsHash, _refusedSection(data));
        _consumeForced(header.forcedConsumed, header.forcedHash);
        (bytes32 withdrawalsRoot, uint32 withdrawalCount, bool delayed) = _recordWithdrawals(expected, data);

        lastBatchNumber = expected;
        stateRoot = header.newRoot;
        _batches[expected] = Batch({
            root: header.newRoot,
            withdrawalsRoot: withdrawalsRoot,
            committedAt: uint64(block.timestamp),
            withdrawalCount: withdrawalCount,
            depositsConsumed: header.depositsConsumed,
            finalizedAt: _finalizedAt(expected, delayed)
        });
        emit BatchCommitted(
            expected,
            header.newRoot,
            dataHash,
            header.depositsConsumed,
            header.forcedConsumed,
            withdrawalCount,
            withdrawalsRoot
        );
    }

    /// @dev The refused-deposit indices of `data`, as a calldata slice of `8 * m` bytes.
    ///      Checks the version, that the withdrawal and refused sections fit, and `m`.
    function _refusedSection(bytes calldata data) internal pure returns (bytes calldata refused) {
        if (data.length < 5) revert MalformedData();
        uint8 version = uint8(data[0]);
        if (version != DATA_VERSION) revert UnsupportedDataVersion(version);
        uint256 count = uint32(bytes4(data[1:5]));
        if (count > MAX_WITHDRAWALS_PER_BATCH) revert TooManyWithdrawals(count);
        uint256 offset = 5 + count * WITHDRAWAL_BYTES;
        if (data.length < offset + 4) revert MalformedData();
        uint256 refusedCount = uint32(bytes4(data[offset:offset + 4]));
        if (refusedCount > MAX_DEPOSITS_PER_BATCH) revert TooManyRefusedDeposits(refusedCount);
        offset += 4;
        if (data.length < offset + refusedCount * REFUSED_BYTES) revert MalformedData();
        refused = data[offset:offset + refusedCount * REFUSED_BYTES];
    }

    function _consumeDeposits(uint64 batchNumber, uint64 target, bytes32 expectedHash, bytes calldata refused)
        internal
    {
        uint64 from = depositsConsumed;
        if (target < from || target > depositCount) revert DepositPrefixOutOfRange(from, target, depositCount);
        if (target - from > MAX_DEPOSITS_PER_BATCH) revert TooManyDeposits(target - from);
        bytes32 actual = target == 0 ? bytes32(0) : _deposits[target - 1].rollingHash;
        if (actual != expectedHash) revert DepositHashMismatch(actual, expectedHash);
        uint256 refusedCount = refused.length / REFUSED_BYTES;
        // Every listed index is one this batch consumes, each once, in order.
        for (uint256 k = 0; k < refusedCount; ++k) {
            uint64 index = uint64(bytes8(refused[k * REFUSED_BYTES:(k + 1) * REFUSED_BYTES]));
            if (index < from || index >= target) revert RefusedDepositOutOfRange(index, from, target);
            if (k > 0) {
                uint64 previous = uint64(bytes8(refused[(k - 1) * REFUSED_BYTES:k * REFUSED_BYTES]));
                if (index <= previous) revert RefusedDepositsNotIncreasing(previous, index);
            }
        }
        uint256 next = 0;
        uint256 nextRefused = refusedCount == 0 ? type(uint256).max : uint64(bytes8(refused[0:REFUSED_BYTES]));
        // The token whose outflow window this batch last checked (runs of one token are common).
        address windowChecked = address(0);
        for (uint256 i = from; i < target; ++i) {
            DepositEntry storage entry = _deposits[i];
            uint128 amount = entry.amount;
            address token = entry.token;
            pendingDeposits[token] -= amount;
            if (i == nextRefused) {
                entry.refused = true;
                refusedDeposits[token] += amount;
                // casting to 'uint64' is safe because `i < target`, a uint64
                // forge-lint: disable-next-line(unsafe-typecast)
                emit DepositRefused(uint64(i), batchNumber, token, amount);
                ++next;
                nextRefused = next == refusedCount
                    ? type(uint256).max
                    : uint64(bytes8(refused[next * REFUSED_BYTES:(next + 1) * REFUSED_BYTES]));
            } else {
                uint256 supply = ledgerSupply[token];
                // The window's limit is set by the supply before the window's first change.
                if (outflowLimitBps != 0 && token != windowChecked) {
                    _outflowWindow(token, supply);
                    windowChecked = token;
                }
                ledgerSupply[token] = supply + amount;
            }
        }
        depositsConsumed = target;
    }

    function _consumeForced(uint64 target, bytes32 expectedHash) internal {
        uint64 from = forcedConsumed;
        if (target < from || target > forcedCount) revert ForcedPrefixOutOfRange(from, target, forcedCount);
        bytes32 actual = target == 0 ? bytes32(0) : _forced[target - 1].rollingHash;
        if (actual != expectedHash) revert ForcedHashMismatch(actual, expectedHash);
        forcedConsumed = target;
    }

    /// @dev Parses the withdrawal section of `data`, moves the amounts from the ledger's
    ///      supply to the unclaimed pool, appends a cumulative-withdrawal checkpoint for every
    ///      token the batch pays, counts the outflow, and returns the withdrawals' Merkle root
    ///      and whether the batch took a token past its outflow limit.
    function _recordWithdrawals(uint64 batchNumber, bytes calldata data)
        internal
        returns (bytes32 root, uint32 count, bool delayed)
    {
        // `_refusedSection` checked the version, the count and that the section fits.
        count = uint32(bytes4(data[1:5]));
        if (count == 0) return (bytes32(0), 0, false);

        bytes32[] memory leaves = new bytes32[](count);
        // Per token paid by this batch: its total. A paid token has a ledger supply, so it is
        // on the allowlist: at most MAX_TOKENS distinct tokens.
        address[] memory paidTokens = new address[](MAX_TOKENS);
        uint256[] memory paidTotals = new uint256[](MAX_TOKENS);
        uint256 paidCount = 0;
        uint256 offset = 5;
        for (uint256 i = 0; i < count; ++i) {
            address recipient = address(bytes20(data[offset:offset + 20]));
            address token = address(bytes20(data[offset + 20:offset + 40]));
            uint128 amount = uint128(bytes16(data[offset + 40:offset + 56]));
            offset += WITHDRAWAL_BYTES;
            if (recipient == address(0)) revert ZeroAddress();
            if (amount == 0) revert ZeroAmount();
            uint256 available = ledgerSupply[token];
            if (amount > available) revert LedgerSupplyExceeded(token, amount, available);
            ledgerSupply[token] = available - amount;
            unclaimedWithdrawals[token] += amount;
            paidCount = _addPaid(paidTokens, paidTotals, paidCount, token, amount);
            // casting to 'uint32' is safe because `count` is a uint32
            // forge-lint: disable-next-line(unsafe-typecast)
            leaves[i] = withdrawalLeaf(uint32(i), recipient, token, amount);
        }
        _appendCheckpoints(batchNumber, paidTokens, paidTotals, paidCount);
        if (outflowLimitBps != 0) delayed = _countOutflow(batchNumber, paidTokens, paidTotals, paidCount);
        root = _merkleRoot(leaves);
    }

    /// @dev Adds this batch's per-token withdrawals to the current outflow windows; returns
    ///      whether any token's window outflow is now past its limit (emitting
    ///      `OutflowDelayed` for each such token). Runs after the withdrawals left
    ///      `ledgerSupply`, so the supply before them is `ledgerSupply + total`.
    function _countOutflow(
        uint64 batchNumber,
        address[] memory paidTokens,
        uint256[] memory paidTotals,
        uint256 paidCount
    ) internal returns (bool delayed) {
        for (uint256 t = 0; t < paidCount; ++t) {
            if (_countTokenOutflow(batchNumber, paidTokens[t], paidTotals[t])) {
                delayed = true;
            }
        }
    }

    function _countTokenOutflow(uint64 batchNumber, address token, uint256 total) internal returns (bool over) {
        OutflowWindow storage w = _outflowWindow(token, ledgerSupply[token] + total);
        uint256 outflow = w.outflow + total;
        w.outflow = SafeCast.toUint192(outflow);
        uint256 limit = w.limit;
        over = outflow > limit;
        if (over) emit OutflowDelayed(batchNumber, token, outflow, limit, _finalizedAt(batchNumber, true));
    }

    /// @dev `token`'s outflow window, opened for the current window if it is an older one,
    ///      with `supply` (the token's ledger supply before the window's first change) as
    ///      the base of its limit. Before exodus, `ledgerSupply` changes only through commits,
    ///      so `supply` is the supply at the window's start: deposits a window consumes raise
    ///      the limit of the next window only.
    function _outflowWindow(address token, uint256 supply) internal returns (OutflowWindow storage w) {
        w = _outflow[token];
        uint64 window = _currentWindow();
        if (w.window != window) {
            w.window = window;
            w.outflow = 0;
            w.limit = supply * outflowLimitBps / BPS;
        }
    }

    /// @dev Number of the current outflow window, plus 1 (0 marks a window never opened).
    function _currentWindow() internal view returns (uint64) {
        // casting to 'uint64' is safe: a timestamp divided by a period of at least 1 fits
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint64(block.timestamp / outflowPeriod) + 1;
    }

    /// @dev When a batch committed now finalizes: `finalizationDelay` (plus `outflowDelay`
    ///      when `delayed`) from now, but not before the previous batch.
    function _finalizedAt(uint64 batchNumber, bool delayed) internal view returns (uint64) {
        uint64 finalAt = uint64(block.timestamp) + finalizationDelay + (delayed ? outflowDelay : 0);
        uint64 previous = _batches[batchNumber - 1].finalizedAt;
        return finalAt < previous ? previous : finalAt;
    }

    /// @dev Adds `amount` to `token`'s entry of the first `paidCount` (token, total) pairs,
    ///      appending the token if absent; returns the new pair count.
    function _addPaid(
        address[] memory paidTokens,
        uint256[] memory paidTotals,
        uint256 paidCount,
        address token,
        uint256 amount
    ) internal pure returns (uint256) {
        uint256 t = 0;
        while (t < paidCount && paidTokens[t] != token) {
            ++t;
        }
        if (t == paidCount) {
            paidTokens[t] = token;
            ++paidCount;
        }
        paidTotals[t] += amount;
        return paidCount;
    }

    function _appendCheckpoints(
        uint64 batchNumber,
        address[] memory paidTokens,
        uint256[] memory paidTotals,
        uint256 paidCount
    ) internal {
        for (uint256 t = 0; t < paidCount; ++t) {
            WithdrawalCheckpoint[] storage checkpoints = _withdrawalCheckpoints[paidTokens[t]];
            uint256 n = checkpoints.length;
            uint256 previous = n == 0 ? 0 : checkpoints[n - 1].cumulative;
            checkpoints.push(
                WithdrawalCheckpoint({
                    batchNumber: batchNumber, cumulative: SafeCast.toUint192(previous + paidTotals[t])
                })
            );
        }
    }

    /// @dev Root of a keccak Merkle tree over `leaves`: at every level a node without a right
    ///      sibling is paired with `bytes32(0)`; depth is ceil(log2(n)). Overwrites `leaves`.
    function _merkleRoot(bytes32[] memory leaves) internal pure returns (bytes32) {
        uint256 n = leaves.length;
        while (n > 1) {
            uint256 half = (n + 1) / 2;
            for (uint256 i = 0; i < half; ++i) {
                bytes32 left = leaves[2 * i];
                bytes32 right = 2 * i + 1 < n ? leaves[2 * i + 1] : bytes32(0);
                leaves[i] = _hashPair(left, right);
            }
            n = half;
        }
        return leaves[0];
    }

    function _hashPair(bytes32 left, bytes32 right) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            mstore(0x00, left)
            mstore(0x20, right)
            h := keccak256(0x00, 0x40)
        }
    }

    // ------------------------------------------------------------ withdrawals

    /// @notice Pays out withdrawal `index` of batch `batchNumber` to its recipient once the
    ///         batch is finalized (its `finalizedAt` has passed; in exodus, a batch after
    ///         `exodusBatchNumber` is void and reverts `BatchVoided`). Anyone may call it; the
    ///         money goes to `recipient`.
    /// @param proof sibling hashes from the leaf up to the batch's withdrawals root
    function claimWithdrawal(
        uint64 batchNumber,
        uint32 index,
        address recipient,
        address token,
        uint128 amount,
        bytes32[] calldata proof
    ) external nonReentrant {
        _checkClaim(batchNumber, index, withdrawalLeaf(index, recipient, token, amount), proof);
        _claimed[batchNumber][index >> 8] |= uint256(1) << (index & 0xff);
        unclaimedWithdrawals[token] -= amount;
        emit WithdrawalClaimed(batchNumber, index, recipient, token, amount);
        IERC20(token).safeTransfer(recipient, amount);
    }

    /// @dev Reverts unless withdrawal `index` of `batchNumber` is final, unclaimed, and
    ///      `leaf` is proven against the batch's withdrawals root.
    function _checkClaim(uint64 batchNumber, uint32 index, bytes32 leaf, bytes32[] calldata proof) internal view {
        if (batchNumber == 0 || batchNumber > lastBatchNumber) revert UnknownBatch(batchNumber);
        if (exodus && batchNumber > exodusBatchNumber) revert BatchVoided(batchNumber);
        Batch storage committed = _batches[batchNumber];
        if (index >= committed.withdrawalCount) revert IndexOutOfRange(index, committed.withdrawalCount);
        uint64 claimableAt = committed.finalizedAt;
        // Delays are hours to days: a few seconds of proposer leeway on timestamps do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < claimableAt) revert NotFinalized(claimableAt);
        if (_claimed[batchNumber][index >> 8] & (uint256(1) << (index & 0xff)) != 0) {
            revert AlreadyClaimed(batchNumber, index);
        }
        // The tree over `withdrawalCount` leaves has exactly this depth.
        if (proof.length != _depth(committed.withdrawalCount)) revert InvalidMerkleProof();
        bytes32 node = leaf;
        uint256 position = index;
        for (uint256 i = 0; i < proof.length; ++i) {
            node = (position & 1) == 0 ? _hashPair(node, proof[i]) : _hashPair(proof[i], node);
            position >>= 1;
        }
        if (node != committed.withdrawalsRoot) revert InvalidMerkleProof();
    }

    function _depth(uint256 count) internal pure returns (uint256 depth) {
        uint256 width = 1;
        while (width < count) {
            width <<= 1;
            ++depth;
        }
    }

    // ----------------------------------------------------------------- exodus

    /// @notice Switches the contract to exodus mode when the oldest unconsumed deposit or
    ///         forced-withdrawal request is past its deadline. Anyone may call it. Voids every
    ///         batch after the last finalized one (see `_activateExodus`).
    function activateExodus() external notExodus {
        // Deadlines are hours to days: a few seconds of proposer leeway on timestamps do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        bool depositOverdue = depositsConsumed < depositCount && _deposits[depositsConsumed].deadline < block.timestamp;
        // forge-lint: disable-next-line(block-timestamp)
        bool forcedOverdue = forcedConsumed < forcedCount && _forced[forcedConsumed].deadline < block.timestamp;
        if (!depositOverdue && !forcedOverdue) revert NothingOverdue();
        _activateExodus(
            depositOverdue ? depositsConsumed : type(uint64).max, forcedOverdue ? forcedConsumed : type(uint64).max
        );
    }

    /// @notice The guardian activates exodus at once, whatever is overdue, voiding every
    ///         batch still in its finalization window. The guardian can do nothing else.
    function guardianExodus() external notExodus {
        if (msg.sender != guardian) revert NotGuardian(msg.sender);
        _activateExodus(type(uint64).max, type(uint64).max);
    }

    /// @dev Enters exodus against the last finalized batch `e`. Batches `e+1..=lastBatchNumber`
    ///      are void: for each token, what their withdrawal lists moved from `ledgerSupply` to
    ///      `unclaimedWithdrawals` moves back (none of it can have been claimed: a claim needs a
    ///      finalized batch, and `finalizedAt` never decreases), and `depositsConsumed` falls
    ///      back to batch `e`'s prefix, so the deposits they consumed are refundable again.
    ///      O(tokens · log batches).
    function _activateExodus(uint64 overdueDeposit, uint64 overdueForced) internal {
        uint64 e = lastFinalizedBatchNumber();
        uint64 last = lastBatchNumber;
        exodus = true;
        exodusBatchNumber = e;
        voidedDepositsEnd = depositsConsumed;
        if (e < last) {
            uint256 tokenCount = _tokens.length;
            for (uint256 i = 0; i < tokenCount; ++i) {
                address token = _tokens[i];
                WithdrawalCheckpoint[] storage checkpoints = _withdrawalCheckpoints[token];
                uint256 n = checkpoints.length;
                if (n == 0 || checkpoints[n - 1].batchNumber <= e) continue;
                uint256 voided = checkpoints[n - 1].cumulative - _cumulativeAt(checkpoints, e);
                unclaimedWithdrawals[token] -= voided;
                ledgerSupply[token] += voided;
                emit WithdrawalsVoided(token, voided);
            }
            depositsConsumed = _batches[e].depositsConsumed;
            emit BatchesVoided(e + 1, last);
        }
        emit ExodusActivated(msg.sender, overdueDeposit, overdueForced, e);
    }

    /// @dev Cumulative withdrawals of the last checkpoint at or before `batchNumber` (0 if none).
    function _cumulativeAt(WithdrawalCheckpoint[] storage checkpoints, uint64 batchNumber)
        internal
        view
        returns (uint256)
    {
        // Number of checkpoints with `batchNumber` <= the given one (they are increasing).
        uint256 lo = 0;
        uint256 hi = checkpoints.length;
        while (lo < hi) {
            uint256 mid = (lo + hi) / 2;
            if (checkpoints[mid].batchNumber <= batchNumber) lo = mid + 1;
            else hi = mid;
        }
        return lo == 0 ? 0 : checkpoints[lo - 1].cumulative;
    }

    /// @notice Whether batch `batchNumber` is finalized: committed, and in exodus at most
    ///         `exodusBatchNumber` (later ones are void), otherwise past its `finalizedAt`.
    ///         Batch 0 (genesis) is always finalized.
    function isFinalized(uint64 batchNumber) public view returns (bool) {
        if (batchNumber > lastBatchNumber) return false;
        if (exodus) return batchNumber <= exodusBatchNumber;
        // forge-lint: disable-next-line(block-timestamp)
        return _batches[batchNumber].finalizedAt <= block.timestamp;
    }

    /// @notice The largest finalized batch: `exodusBatchNumber` in exodus, otherwise found by
    ///         binary search over `finalizedAt` (which never decreases).
    function lastFinalizedBatchNumber() public view returns (uint64) {
        if (exodus) return exodusBatchNumber;
        // Invariant: batch `lo` is finalized, batches after `hi` are not.
        uint64 lo = 0;
        uint64 hi = lastBatchNumber;
        while (lo < hi) {
            uint64 mid = lo + (hi - lo + 1) / 2;
            // forge-lint: disable-next-line(block-timestamp)
            if (_batches[mid].finalizedAt <= block.timestamp) lo = mid;
            else hi = mid - 1;
        }
        return lo;
    }

    /// @notice The root exits prove against: that of batch `exodusBatchNumber` (before exodus,
    ///         batch 0's, which is meaningless until exodus sets `exodusBatchNumber`).
    function exitRoot() external view returns (bytes32) {
        return _batches[exodusBatchNumber].root;
    }

    /// @notice In exodus mode, pays `recipient` `amount` of `token` from the caller's slot,
    ///         proven by a Groth16 proof that the caller's slot holds at least `amount` in the
    ///         root of batch `exodusBatchNumber` (the last finalized one, `exitRoot()`), bound
    ///         to `exitContext(caller, recipient)`. `recipient` is
    ///         the caller itself or any other address (for example when the caller cannot
    ///         receive the token). Each (owner, token) slot exits once.
    function exit(address token, uint128 amount, address recipient, uint256[8] calldata proof)
        external
        nonReentrant
        onlyExodus
    {
        if (amount == 0) revert ZeroAmount();
        if (recipient == address(0)) revert ZeroAddress();
        if (exited[msg.sender][token]) revert AlreadyExited(msg.sender, token);
        uint256[5] memory input = [
            uint256(_batches[exodusBatchNumber].root),
            uint256(uint160(msg.sender)),
            uint256(uint160(token)),
            uint256(amount),
            exitContext(msg.sender, recipient)
        ];
        if (!verifier.verifyProof(proof, input)) revert InvalidProof();
        uint256 available = ledgerSupply[token];
        if (amount > available) revert LedgerSupplyExceeded(token, amount, available);

        exited[msg.sender][token] = true;
        ledgerSupply[token] = available - amount;
        emit Exited(msg.sender, token, recipient, amount);
        IERC20(token).safeTransfer(recipient, amount);
    }

    /// @notice Refunds deposit `index` to `to`: a deposit a batch consumed as refused, at
    ///         any time, or, in exodus mode, a deposit no finalized batch consumed (never
    ///         consumed: paid from `pendingDeposits`; consumed by a void batch: paid from
    ///         `ledgerSupply`, where its consumption moved it). `recipient` (the
    ///         deposit's recipient) is checked against the queue's rolling hash. Anyone may
    ///         pay a refund to `recipient` itself; only `recipient` may name another payee
    ///         (for example when a token blacklists the recipient's address).
    function refundDeposit(uint64 index, address recipient, address to) external nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        if (index >= depositCount) revert IndexOutOfRange(index, depositCount);
        DepositEntry storage entry = _deposits[index];
        bool refused = entry.refused;
        if (!refused) {
            if (index < depositsConsumed) revert DepositAlreadyConsumed(index);
            if (!exodus) revert ExodusNotActive();
        }
        uint128 amount = entry.amount;
        if (amount == 0) revert DepositAlreadyRefunded(index);
        address token = entry.token;
        bytes32 prev = index == 0 ? bytes32(0) : _deposits[index - 1].rollingHash;
        if (depositHash(prev, recipient, token, amount) != entry.rollingHash) revert DepositMismatch(index);
        if (to != recipient && msg.sender != recipient) revert NotDepositRecipient(msg.sender, recipient);

        entry.amount = 0;
        if (refused) {
            refusedDeposits[token] -= amount;
        } else if (index < voidedDepositsEnd) {
            uint256 available = ledgerSupply[token];
            if (amount > available) revert LedgerSupplyExceeded(token, amount, available);
            ledgerSupply[token] = available - amount;
        } else {
            pendingDeposits[token] -= amount;
        }
        emit DepositRefunded(index, recipient, token, amount, to);
        IERC20(token).safeTransfer(to, amount);
    }

    // ------------------------------------------------------------------ views

    /// @notice Verifies a private balance attestation: "`owner` holds at least `threshold`
    ///         of `token` in the root committed by batch `batchNumber`", bound to `context`.
    ///         Only a finalized batch serves: one still in its window reverts `NotFinalized`,
    ///         a void one (in exodus) `BatchVoided`.
    ///         A balance proven under an old root may have been spent since: the relying party
    ///         names the oldest batch it accepts, `minBatchNumber`, and an attestation against
    ///         an earlier batch reverts `BatchTooOld` (pass `lastFinalizedBatchNumber()` to
    ///         demand the latest finalized root; read `batch(n).committedAt` to bound the age in seconds instead).
    function verifyAttestation(
        uint64 batchNumber,
        uint64 minBatchNumber,
        address owner,
        address token,
        uint128 threshold,
        uint256 context,
        uint256[8] calldata proof
    ) external view returns (bool) {
        if (batchNumber > lastBatchNumber) revert UnknownBatch(batchNumber);
        if (batchNumber < minBatchNumber) revert BatchTooOld(batchNumber, minBatchNumber);
        if (exodus) {
            if (batchNumber > exodusBatchNumber) revert BatchVoided(batchNumber);
        } else {
            uint64 finalAt = _batches[batchNumber].finalizedAt;
            // forge-lint: disable-next-line(block-timestamp)
            if (block.timestamp < finalAt) revert NotFinalized(finalAt);
        }
        uint256[5] memory input = [
            uint256(_batches[batchNumber].root),
            uint256(uint160(owner)),
            uint256(uint160(token)),
            uint256(threshold),
            context
        ];
        return verifier.verifyProof(proof, input);
    }

    /// @notice The proof context of an attestation answering a verifier's `challenge`:
    ///         keccak256("Stablelane.attestation.v1" ‖ challenge) mod r. Its domain tag keeps
    ///         it apart from every `exitContext`, so an attestation can never serve as an exit.
    function attestationContext(bytes32 challenge) public pure returns (uint256) {
        return uint256(keccak256(abi.encodePacked("Stablelane.attestation.v1", challenge))) % SNARK_SCALAR_FIELD;
    }

    /// @notice The proof context an exit of `owner` paying `recipient` must be bound to:
    ///         keccak256(abi.encode(EXIT_DOMAIN, chainid, this, owner, recipient)) mod r.
    function exitContext(address owner, address recipient) public view returns (uint256) {
        return uint256(keccak256(abi.encode(EXIT_DOMAIN, block.chainid, address(this), owner, recipient)))
            % SNARK_SCALAR_FIELD;
    }

    /// @notice Rolling hash of the deposit queue after appending a deposit.
    function depositHash(bytes32 prev, address recipient, address token, uint128 amount) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(prev, recipient, token, amount));
    }

    /// @notice Rolling hash of the forced-request queue after appending a request.
    function forcedHash(bytes32 prev, address owner, address token, address recipient) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(prev, owner, token, recipient));
    }

    /// @notice Leaf of a batch's withdrawal Merkle tree.
    function withdrawalLeaf(uint32 index, address recipient, address token, uint128 amount)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(index, recipient, token, amount));
    }

    /// @notice A committed batch (0 = genesis).
    function batch(uint64 batchNumber) external view returns (Batch memory) {
        if (batchNumber > lastBatchNumber) revert UnknownBatch(batchNumber);
        return _batches[batchNumber];
    }

    /// @notice A deposit queue entry.
    function depositEntry(uint64 index) external view returns (DepositEntry memory) {
        if (index >= depositCount) revert IndexOutOfRange(index, depositCount);
        return _deposits[index];
    }

    /// @notice A forced-request queue entry.
    function forcedEntry(uint64 index) external view returns (ForcedEntry memory) {
        if (index >= forcedCount) revert IndexOutOfRange(index, forcedCount);
        return _forced[index];
    }

    /// @notice Rolling deposit hash at prefix length `count` (0 for the empty prefix).
    function depositHashAt(uint64 count) external view returns (bytes32) {
        if (count > depositCount) revert IndexOutOfRange(count, depositCount);
        return count == 0 ? bytes32(0) : _deposits[count - 1].rollingHash;
    }

    /// @notice Rolling forced-request hash at prefix length `count`.
    function forcedHashAt(uint64 count) external view returns (bytes32) {
        if (count > forcedCount) revert IndexOutOfRange(count, forcedCount);
        return count == 0 ? bytes32(0) : _forced[count - 1].rollingHash;
    }

    /// @notice Whether withdrawal `index` of batch `batchNumber` has been claimed.
    function isClaimed(uint64 batchNumber, uint32 index) external view returns (bool) {
        return _claimed[batchNumber][index >> 8] & (uint256(1) << (index & 0xff)) != 0;
    }

    /// @notice The token allowlist.
    function tokens() external view returns (address[] memory) {
        return _tokens;
    }

    /// @notice What batches may still withdraw of `token` in the current outflow window
    ///         without being delayed (`type(uint256).max` without a limit). Before the window's
    ///         first change of the token, its limit is computed from the current ledger supply,
    ///         as the next commit will. Meaningless in exodus.
    function outflowAllowance(address token) external view returns (uint256) {
        if (outflowLimitBps == 0) return type(uint256).max;
        OutflowWindow storage w = _outflow[token];
        if (w.window != _currentWindow()) return ledgerSupply[token] * outflowLimitBps / BPS;
        uint256 outflow = w.outflow;
        uint256 limit = w.limit;
        return outflow >= limit ? 0 : limit - outflow;
    }

    /// @notice Per token: the checkpoints of cumulative committed withdrawals.
    function withdrawalCheckpoints(address token) external view returns (WithdrawalCheckpoint[] memory) {
        return _withdrawalCheckpoints[token];
    }
}
