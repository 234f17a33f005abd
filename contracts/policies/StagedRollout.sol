// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {DeviceContext, IUpdatePolicy} from "../interfaces/IUpdatePolicy.sol";
import {IFleetRegistry} from "../interfaces/IFleetRegistry.sol";
import {UpdatePolicyBase} from "./UpdatePolicyBase.sol";
import {PolicyEvidence} from "./PolicyEvidence.sol";

/// @title Staged rollout: a release reaches device cohorts in waves, and halts on failures
/// (X.1368 App. II, APP-II-3).
/// @notice An administrator creates one rollout per release: waves of device cohorts, each cohort a
/// Merkle root of device ids, each wave with a start time. A device may take the release when it
/// proves it is in a wave whose start time has passed. The rollout halts by itself when the failure
/// count for the release reaches the threshold: the sum over tracker modules of the totals each
/// module's owner posts (FleetRegistry), each post raising a module's total by at most the
/// threshold. An administrator can pause, resume, change the threshold, reset one module's count
/// (which lifts a halt that module caused) and abort (final).
/// @dev State machine (the view {rolloutStatus} reports it; the first that applies wins):
///  - None: no rollout for the release. `check` answers NO_ROLLOUT, so a policy attached without a
///    rollout blocks every device (fails closed), as does a component policy for a release of that
///    component that has no rollout of its own.
///  - Aborted: final; every administrator action reverts. Trackers may still report failures.
///  - Halted: failures >= threshold. Failures only rise by posts, so the halt lifts only by an
///    administrator's decision: a threshold above the count ({setFailureThreshold}) or the reset of
///    the module whose count caused it ({resetModuleFailures}); {resume} refuses while halted.
///  - Paused: by an administrator, until {resume}.
///  - Scheduled / Open: no wave has started yet / at least one has.
/// Cohort leaves are keccak256(bytes.concat(keccak256(abi.encode(deviceId)))): the double hash keeps
/// a leaf from being read as an inner node. Proofs use sorted pairs (OpenZeppelin MerkleProof;
/// merkletreejs with sortPairs off-chain, agent/crypto/cohortTree.ts). A wave is open from its
/// start time on (block.timestamp >= startsAt). A device may be in several cohorts; any open one
/// lets it take the release.
/// Evidence is abi.encode(uint256 waveIndex, bytes32[] proof), whole or as this policy's part of an
/// envelope ({PolicyEvidence}, for a rollout composed with other policies that need evidence). It is checked for the canonical
/// layout (head offset 0x40, exact length, at most MAX_PROOF_LENGTH siblings) before abi.decode, so
/// that malformed evidence answers MALFORMED_EVIDENCE instead of reverting; this costs no external
/// self-call and does not depend on the gas left, unlike a try/catch around a decoding call.
contract StagedRollout is UpdatePolicyBase {
    /// @notice A wave: the Merkle root of its cohort's device ids and the time it opens.
    struct Wave {
        bytes32 cohortRoot;
        uint40 startsAt;
    }

    /// @notice Where a rollout stands, in the order `check` applies them.
    enum RolloutState {
        None,
        Scheduled,
        Open,
        Paused,
        Halted,
        Aborted
    }

    /// @notice What {rolloutStatus} reports. `openWaves` counts the waves whose start time has
    /// passed; `nextWaveAt` is the start of the first wave not yet open (0 when all are).
    struct RolloutStatus {
        RolloutState state;
        uint32 failures;
        uint32 failureThreshold;
        bool paused;
        bool aborted;
        uint40 nextWaveAt;
        uint256 waveCount;
        uint256 openWaves;
    }

    /// @dev One slot. A rollout exists when its threshold is non-zero (creation requires it).
    struct Rollout {
        uint32 failureThreshold;
        uint32 failures;
        bool paused;
        bool aborted;
    }

    // ---------------------------------------------------------------- reason codes (stable)
    /// @notice No rollout was created for this release: nobody may take it (fail closed).
    uint256 public constant NO_ROLLOUT = 1;
    /// @notice The proof does not show the device in the named wave's cohort (a wrong proof, a proof
    /// for another cohort or another device).
    uint256 public constant NOT_IN_COHORT = 2;
    /// @notice The device is in the named wave's cohort, but the wave has not started yet.
    uint256 public constant WAVE_NOT_STARTED = 3;
    /// @notice An administrator paused the rollout.
    uint256 public constant PAUSED = 4;
    /// @notice The failure count reached the threshold: the rollout halted by itself.
    uint256 public constant HALTED = 5;
    /// @notice An administrator aborted the rollout (final).
    uint256 public constant ABORTED = 6;
    /// @notice The evidence is not abi.encode(uint256 waveIndex, bytes32[] proof) in canonical form,
    /// or its proof is longer than MAX_PROOF_LENGTH.
    uint256 public constant MALFORMED_EVIDENCE = 7;
    /// @notice The evidence names a wave the rollout does not have.
    uint256 public constant NO_SUCH_WAVE = 8;
    /// @notice The device brought no evidence (it needs the proof of its cohort).
    uint256 public constant NO_EVIDENCE = 9;

    /// @notice Most waves a rollout may have.
    uint256 public constant MAX_WAVES = 64;
    /// @notice Most siblings a cohort proof may have (cohorts of up to 2^32 devices).
    uint256 public constant MAX_PROOF_LENGTH = 32;

    mapping(bytes32 releaseId => Rollout) private _rollouts;
    mapping(bytes32 releaseId => Wave[]) private _waves;
    /// @dev Each tracker module's own running total; a rollout's `failures` is their sum.
    mapping(bytes32 releaseId => mapping(bytes32 moduleId => uint32)) private _moduleFailures;

    /// @notice The registry of tracker modules: who owns which module, so who may post its totals.
    IFleetRegistry public immutable FLEET;

    // ---------------------------------------------------------------- errors and events

    /// @notice `releaseId` already has a rollout (one per release, even after an abort).
    error StagedRolloutExists(bytes32 releaseId);
    /// @notice `releaseId` has no rollout.
    error StagedRolloutUnknown(bytes32 releaseId);
    /// @notice A rollout needs 1..MAX_WAVES waves; `count` were given.
    error StagedRolloutWaveCount(uint256 count, uint256 max);
    /// @notice Wave `index` has a zero cohort root.
    error StagedRolloutZeroCohortRoot(uint256 index);
    /// @notice Wave `index` starts at `startsAt`, before the wave ahead of it (`previous`).
    error StagedRolloutWavesOutOfOrder(uint256 index, uint40 startsAt, uint40 previous);
    /// @notice A failure threshold must be at least 1.
    error StagedRolloutZeroThreshold();
    /// @notice A module's failure total only rises: `proposed` is below the module's `current` total.
    error StagedRolloutFailuresDecreased(bytes32 releaseId, bytes32 moduleId, uint32 current, uint32 proposed);
    /// @notice One post may raise a module's total by at most the threshold (`maxRise`); `rise` was
    /// asked. Post larger totals in steps.
    error StagedRolloutFailureRiseTooLarge(bytes32 releaseId, bytes32 moduleId, uint256 rise, uint32 maxRise);
    /// @notice The sum of the modules' totals would exceed 2^32-1.
    error StagedRolloutFailureTotalOverflow(bytes32 releaseId, uint256 total);
    /// @notice `account` is not the owner of tracker module `moduleId` (`owner` in the
    /// FleetRegistry), so it may not post that module's failures.
    error StagedRolloutNotModuleOwner(bytes32 moduleId, address owner, address account);
    /// @notice `moduleId` is not an active tracker module in the FleetRegistry.
    error StagedRolloutUnknownTrackerModule(bytes32 moduleId);
    /// @notice Module `moduleId` has no failures counted for `releaseId`: nothing to reset.
    error StagedRolloutNoModuleFailures(bytes32 releaseId, bytes32 moduleId);
    /// @notice The zero address was given for the fleet registry.
    error StagedRolloutZeroAddress();
    /// @notice The rollout was aborted; nothing more can be changed.
    error StagedRolloutAborted(bytes32 releaseId);
    /// @notice The rollout is already paused.
    error StagedRolloutAlreadyPaused(bytes32 releaseId);
    /// @notice The rollout is not paused.
    error StagedRolloutNotPaused(bytes32 releaseId);
    /// @notice The rollout is halted (`failures` >= `threshold`): raise the threshold first.
    error StagedRolloutHalted(bytes32 releaseId, uint32 failures, uint32 threshold);

    // solhint-disable gas-indexed-events
    /// @notice A rollout of `waveCount` waves was created for `releaseId`.
    event RolloutCreated(bytes32 indexed releaseId, uint256 waveCount, uint32 failureThreshold, address indexed by);
    /// @notice Wave `index` of the rollout of `releaseId`: its cohort root and start time.
    event WaveScheduled(bytes32 indexed releaseId, uint256 index, bytes32 cohortRoot, uint40 startsAt);
    /// @notice The owner of tracker module `moduleId` posted that module's running failure total for
    /// `releaseId`; `totalFailures` is the rollout's total (the sum over modules) after it.
    event FailuresReported(
        bytes32 indexed releaseId, bytes32 indexed moduleId, uint32 moduleFailures, uint32 totalFailures, address indexed by
    );
    /// @notice An administrator reset the count of module `moduleId` (`removed` failures):
    /// `totalFailures` is the rollout's total after it.
    event ModuleFailuresReset(
        bytes32 indexed releaseId, bytes32 indexed moduleId, uint32 removed, uint32 totalFailures, address indexed by
    );
    /// @notice An administrator's decision (a higher threshold, a reset module) lifted the halt.
    event RolloutHaltLifted(bytes32 indexed releaseId, uint32 failures, uint32 threshold, address indexed by);
    /// @notice The failure count reached the threshold: the rollout halted by itself.
    event RolloutHalted(bytes32 indexed releaseId, uint32 failures, uint32 threshold);
    /// @notice An administrator changed the failure threshold.
    event FailureThresholdChanged(bytes32 indexed releaseId, uint32 previous, uint32 threshold, address indexed by);
    /// @notice An administrator paused the rollout.
    event RolloutPaused(bytes32 indexed releaseId, address indexed by);
    /// @notice An administrator resumed the rollout.
    event RolloutResumed(bytes32 indexed releaseId, address indexed by);
    /// @notice An administrator aborted the rollout (final).
    event RolloutAborted(bytes32 indexed releaseId, address indexed by);
    // solhint-enable gas-indexed-events

    /// @notice A staged-rollout policy for the releases of `registry`.
    /// @param registry_ The UpdateRegistry whose roles decide who administers and who tracks.
    /// @param fleet The FleetRegistry whose tracker modules post failure totals.
    constructor(address registry_, IFleetRegistry fleet) UpdatePolicyBase(registry_) {
        if (address(fleet) == address(0)) revert StagedRolloutZeroAddress();
        FLEET = fleet;
    }

    // ---------------------------------------------------------------- administrators

    /// @notice Creates the rollout of `releaseId`.
    /// @dev Requirements: the caller holds ADMINISTRATOR_ROLE; `releaseId` has no rollout; 1..MAX_WAVES
    /// waves, each with a non-zero cohort root, start times non-decreasing (start times in the past
    /// open at once); `failureThreshold` at least 1.
    /// Emits a {RolloutCreated} event and a {WaveScheduled} event per wave.
    function createRollout(bytes32 releaseId, Wave[] calldata waves, uint32 failureThreshold)
        external
        onlyRegistryRole(ADMINISTRATOR_ROLE)
    {
        if (_rollouts[releaseId].failureThreshold != 0) revert StagedRolloutExists(releaseId);
        if (waves.length == 0 || waves.length > MAX_WAVES) revert StagedRolloutWaveCount(waves.length, MAX_WAVES);
        if (failureThreshold == 0) revert StagedRolloutZeroThreshold();
        _rollouts[releaseId] = Rollout({failureThreshold: failureThreshold, failures: 0, paused: false, aborted: false});
        emit RolloutCreated(releaseId, waves.length, failureThreshold, msg.sender);
        Wave[] storage stored = _waves[releaseId];
        uint40 previous = 0;
        for (uint256 i = 0; i < waves.length; ++i) {
            Wave calldata w = waves[i];
            if (w.cohortRoot == bytes32(0)) revert StagedRolloutZeroCohortRoot(i);
            if (w.startsAt < previous) revert StagedRolloutWavesOutOfOrder(i, w.startsAt, previous);
            previous = w.startsAt;
            stored.push(w);
            emit WaveScheduled(releaseId, i, w.cohortRoot, w.startsAt);
        }
    }

    /// @notice Pauses the rollout of `releaseId`: no device may take the release until {resume}.
    /// @dev Requirements: ADMINISTRATOR_ROLE; the rollout exists, is not aborted and not paused.
    /// Pausing a halted rollout is allowed (it keeps it stopped once the halt is lifted).
    /// Emits a {RolloutPaused} event.
    function pause(bytes32 releaseId) external onlyRegistryRole(ADMINISTRATOR_ROLE) {
        Rollout storage r = _liveRollout(releaseId);
        if (r.paused) revert StagedRolloutAlreadyPaused(releaseId);
        r.paused = true;
        emit RolloutPaused(releaseId, msg.sender);
    }

    /// @notice Resumes a paused rollout of `releaseId`.
    /// @dev Requirements: ADMINISTRATOR_ROLE; the rollout exists, is not aborted, is paused and is
    /// not halted (raise the threshold first with {setFailureThreshold}).
    /// Emits a {RolloutResumed} event.
    function resume(bytes32 releaseId) external onlyRegistryRole(ADMINISTRATOR_ROLE) {
        Rollout storage r = _liveRollout(releaseId);
        if (!r.paused) revert StagedRolloutNotPaused(releaseId);
        if (r.failures >= r.failureThreshold) revert StagedRolloutHalted(releaseId, r.failures, r.failureThreshold);
        r.paused = false;
        emit RolloutResumed(releaseId, msg.sender);
    }

    /// @notice Sets the failure threshold of `releaseId`: raising it above the failure count lifts a
    /// halt; lowering it to the count or below halts the rollout at once.
    /// @dev Requirements: ADMINISTRATOR_ROLE; the rollout exists and is not aborted; `threshold` at
    /// least 1. Emits a {FailureThresholdChanged} event, and a {RolloutHalted} event when the change
    /// halts the rollout.
    function setFailureThreshold(bytes32 releaseId, uint32 threshold) external onlyRegistryRole(ADMINISTRATOR_ROLE) {
        Rollout storage r = _liveRollout(releaseId);
        if (threshold == 0) revert StagedRolloutZeroThreshold();
        uint32 previous = r.failureThreshold;
        r.failureThreshold = threshold;
        emit FailureThresholdChanged(releaseId, previous, threshold, msg.sender);
        if (r.failures < previous && r.failures >= threshold) emit RolloutHalted(releaseId, r.failures, threshold);
        if (r.failures >= previous && r.failures < threshold) {
            emit RolloutHaltLifted(releaseId, r.failures, threshold, msg.sender);
        }
    }

    /// @notice Resets the failure count of tracker module `moduleId` for `releaseId` to zero and
    /// takes it off the rollout's total: the remedy for a module that posted failures it did not
    /// see (retire the module in the FleetRegistry too, so that it cannot post again). Lifts a halt
    /// when the total falls below the threshold.
    /// @dev Requirements: ADMINISTRATOR_ROLE; the rollout exists and is not aborted; the module has
    /// failures counted. Emits a {ModuleFailuresReset} event, and a {RolloutHaltLifted} event when
    /// the reset lifts a halt.
    function resetModuleFailures(bytes32 releaseId, bytes32 moduleId) external onlyRegistryRole(ADMINISTRATOR_ROLE) {
        Rollout storage r = _liveRollout(releaseId);
        uint32 removed = _moduleFailures[releaseId][moduleId];
        if (removed == 0) revert StagedRolloutNoModuleFailures(releaseId, moduleId);
        uint32 before = r.failures;
        uint32 total = before - removed;
        delete _moduleFailures[releaseId][moduleId];
        r.failures = total;
        emit ModuleFailuresReset(releaseId, moduleId, removed, total, msg.sender);
        uint32 threshold = r.failureThreshold;
        if (before >= threshold && total < threshold) emit RolloutHaltLifted(releaseId, total, threshold, msg.sender);
    }

    /// @notice Aborts the rollout of `releaseId`: no device may take the release, ever.
    /// @dev Requirements: ADMINISTRATOR_ROLE; the rollout exists and is not aborted.
    /// Emits a {RolloutAborted} event.
    function abort(bytes32 releaseId) external onlyRegistryRole(ADMINISTRATOR_ROLE) {
        Rollout storage r = _liveRollout(releaseId);
        r.aborted = true;
        emit RolloutAborted(releaseId, msg.sender);
    }

    // ---------------------------------------------------------------- trackers

    /// @notice Posts the running total of failed installs of `releaseId` that tracker module
    /// `moduleId` has seen. The rollout's total is the sum over modules; the rollout halts by itself
    /// when it reaches the threshold.
    /// @dev A module's total is attributed to it and bounded per post: one post raises it by at most
    /// the threshold, so no single post (2^32-1 from a rogue key) can claim more than the failures
    /// that halt the rollout, and an administrator can take one module's count off the total
    /// ({resetModuleFailures}) without losing the others'.
    /// Requirements: the caller holds TRACKER_ROLE and owns `moduleId`, an active module of the
    /// FleetRegistry; the rollout exists; `moduleTotal` is not below the module's total (the same
    /// total again is accepted: reports may repeat) nor above it by more than the threshold; the
    /// rollout's total stays below 2^32. Accepted after an abort too: the count stays a record of
    /// the fleet.
    /// Emits a {FailuresReported} event, and a {RolloutHalted} event when the total reaches the
    /// threshold.
    function reportFailures(bytes32 releaseId, bytes32 moduleId, uint32 moduleTotal)
        external
        onlyRegistryRole(TRACKER_ROLE)
    {
        Rollout storage r = _rollout(releaseId);
        _requireModuleOwner(moduleId);
        uint32 moduleCurrent = _moduleFailures[releaseId][moduleId];
        if (moduleTotal < moduleCurrent) {
            revert StagedRolloutFailuresDecreased(releaseId, moduleId, moduleCurrent, moduleTotal);
        }
        uint32 threshold = r.failureThreshold;
        uint256 rise = moduleTotal - moduleCurrent;
        if (rise > threshold) revert StagedRolloutFailureRiseTooLarge(releaseId, moduleId, rise, threshold);
        uint32 current = r.failures;
        uint256 total = uint256(current) + rise;
        if (total > type(uint32).max) revert StagedRolloutFailureTotalOverflow(releaseId, total);
        _moduleFailures[releaseId][moduleId] = moduleTotal;
        r.failures = uint32(total);
        emit FailuresReported(releaseId, moduleId, moduleTotal, uint32(total), msg.sender);
        if (current < threshold && total >= threshold) emit RolloutHalted(releaseId, uint32(total), threshold);
    }

    // ---------------------------------------------------------------- the policy

    /// @inheritdoc IUpdatePolicy
    /// @dev Reasons, first that applies: NO_ROLLOUT, ABORTED, HALTED, PAUSED, NO_EVIDENCE,
    /// MALFORMED_EVIDENCE, NO_SUCH_WAVE, NOT_IN_COHORT, WAVE_NOT_STARTED; else ALLOWED. Never reverts.
    function check(bytes32 releaseId, bytes32, uint64, DeviceContext calldata device, bytes calldata evidence)
        external
        view
        returns (uint256 reason)
    {
        Rollout memory r = _rollouts[releaseId];
        if (r.failureThreshold == 0) return NO_ROLLOUT;
        if (r.aborted) return ABORTED;
        if (r.failures >= r.failureThreshold) return HALTED;
        if (r.paused) return PAUSED;
        (bool enveloped, bytes calldata own) = _ownEvidence(evidence);
        if (!enveloped) return MALFORMED_EVIDENCE;
        if (own.length == 0) return NO_EVIDENCE;
        return _waveReason(releaseId, device.deviceId, own);
    }

    /// @dev The reasons that depend on the device's wave: MALFORMED_EVIDENCE, NO_SUCH_WAVE,
    /// NOT_IN_COHORT, WAVE_NOT_STARTED or ALLOWED.
    function _waveReason(bytes32 releaseId, bytes32 deviceId, bytes calldata evidence) private view returns (uint256) {
        (bool wellFormed, uint256 waveIndex, bytes32[] memory proof) = _decodeEvidence(evidence);
        if (!wellFormed) return MALFORMED_EVIDENCE;
        Wave[] storage scheduled = _waves[releaseId];
        if (waveIndex >= scheduled.length) return NO_SUCH_WAVE;
        Wave storage w = scheduled[waveIndex];
        if (!MerkleProof.verify(proof, w.cohortRoot, cohortLeaf(deviceId))) return NOT_IN_COHORT;
        // solhint-disable-next-line not-rely-on-time
        if (block.timestamp < w.startsAt) return WAVE_NOT_STARTED;
        return ALLOWED;
    }

    // ---------------------------------------------------------------- views

    /// @notice The Merkle leaf of `deviceId` in a cohort tree (double hashed).
    function cohortLeaf(bytes32 deviceId) public pure returns (bytes32) {
        return PolicyEvidence.deviceLeaf(deviceId);
    }

    /// @notice Where the rollout of `releaseId` stands, for tools (state None when there is none).
    function rolloutStatus(bytes32 releaseId) external view returns (RolloutStatus memory status) {
        Rollout memory r = _rollouts[releaseId];
        if (r.failureThreshold == 0) return status;
        Wave[] storage scheduled = _waves[releaseId];
        uint256 open = 0;
        // solhint-disable-next-line not-rely-on-time
        while (open < scheduled.length && scheduled[open].startsAt <= block.timestamp) ++open;
        status = RolloutStatus({
            state: RolloutState.Scheduled,
            failures: r.failures,
            failureThreshold: r.failureThreshold,
            paused: r.paused,
            aborted: r.aborted,
            nextWaveAt: open < scheduled.length ? scheduled[open].startsAt : 0,
            waveCount: scheduled.length,
            openWaves: open
        });
        if (r.aborted) status.state = RolloutState.Aborted;
        else if (r.failures >= r.failureThreshold) status.state = RolloutState.Halted;
        else if (r.paused) status.state = RolloutState.Paused;
        else if (open > 0) status.state = RolloutState.Open;
    }

    /// @notice The failures tracker module `moduleId` has counted for `releaseId` (its share of the
    /// rollout's total).
    function moduleFailures(bytes32 releaseId, bytes32 moduleId) external view returns (uint32) {
        return _moduleFailures[releaseId][moduleId];
    }

    /// @notice The waves of the rollout of `releaseId` (empty when there is none).
    function rolloutWaves(bytes32 releaseId) external view returns (Wave[] memory) {
        return _waves[releaseId];
    }

    // ---------------------------------------------------------------- internals

    function _rollout(bytes32 releaseId) private view returns (Rollout storage r) {
        r = _rollouts[releaseId];
        if (r.failureThreshold == 0) revert StagedRolloutUnknown(releaseId);
    }

    /// @dev The caller owns `moduleId`, an active module of the FleetRegistry.
    function _requireModuleOwner(bytes32 moduleId) private view {
        address owner;
        try FLEET.trackerModuleOwner(moduleId) returns (address o) {
            owner = o;
        } catch {
            revert StagedRolloutUnknownTrackerModule(moduleId);
        }
        if (owner != msg.sender) revert StagedRolloutNotModuleOwner(moduleId, owner, msg.sender);
    }

    function _liveRollout(bytes32 releaseId) private view returns (Rollout storage r) {
        r = _rollout(releaseId);
        if (r.aborted) revert StagedRolloutAborted(releaseId);
    }

    /// @dev Canonical abi.encode(uint256, bytes32[]): word 0 the wave index, word 1 the offset 0x40,
    /// word 2 the proof length n (at most MAX_PROOF_LENGTH), then exactly n words.
    function _decodeEvidence(bytes calldata evidence)
        private
        pure
        returns (bool wellFormed, uint256 waveIndex, bytes32[] memory proof)
    {
        if (evidence.length < 96 || uint256(bytes32(evidence[32:64])) != 64) return (false, 0, proof);
        uint256 n = uint256(bytes32(evidence[64:96]));
        if (n > MAX_PROOF_LENGTH || evidence.length != 96 + 32 * n) return (false, 0, proof);
        (waveIndex, proof) = abi.decode(evidence, (uint256, bytes32[]));
        return (true, waveIndex, proof);
    }

    /// @inheritdoc UpdatePolicyBase
    function reasonName(uint256 reason) public view virtual override returns (string memory) {
        if (reason == NO_ROLLOUT) return "NO_ROLLOUT";
        if (reason == NOT_IN_COHORT) return "NOT_IN_COHORT";
        if (reason == WAVE_NOT_STARTED) return "WAVE_NOT_STARTED";
        if (reason == PAUSED) return "PAUSED";
        if (reason == HALTED) return "HALTED";
        if (reason == ABORTED) return "ABORTED";
        if (reason == MALFORMED_EVIDENCE) return "MALFORMED_EVIDENCE";
        if (reason == NO_SUCH_WAVE) return "NO_SUCH_WAVE";
        if (reason == NO_EVIDENCE) return "NO_EVIDENCE";
        return super.reasonName(reason);
    }
}
