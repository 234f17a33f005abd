// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeviceContext, IUpdatePolicy} from "../interfaces/IUpdatePolicy.sol";
import {IReleaseRegistry} from "../interfaces/IReleaseRegistry.sol";
import {ReleaseStatus} from "../interfaces/UpdateRegistryTypes.sol";
import {UpdatePolicyBase} from "../policies/UpdatePolicyBase.sol";

/// @title Pilot fleet policy: a release reaches the pilot devices first, then the whole fleet
/// (X.1368 App. II, APP-II-3). The worked example of docs/writing-a-policy.md.
/// @notice Administrators enrol devices in one pilot group per deployed policy. Every release the
/// policy decides for starts in the {Stage.Pilot} stage: only pilot devices may take it. Once the
/// pilot has gone well, an administrator opens the release to every device ({Stage.Open}); if it
/// went badly, they hold it ({Stage.Held}) and no device may take it, pilot devices included.
/// Stages are per release id, so a policy attached to a component pilots each of its releases on
/// its own, and the same policy works attached to one release.
/// @dev The check reads two storage slots and calls nothing: it stays far below the checker's gas
/// cap whatever the size of the pilot group. Device ids are the FleetRegistry's ({DeviceContext.deviceId}).
contract PilotFleetPolicy is UpdatePolicyBase {
    /// @notice Where a release stands; every release starts in `Pilot`.
    enum Stage {
        Pilot,
        Open,
        Held
    }

    // ---------------------------------------------------------------- reason codes (stable)
    /// @notice The release is in its pilot and the device is not in the pilot group.
    uint256 public constant NOT_IN_PILOT = 1;
    /// @notice An administrator held the release: no device may take it, pilot devices included.
    uint256 public constant RELEASE_HELD = 2;

    /// @notice Most device ids one call (or the constructor) may enrol or withdraw.
    uint256 public constant MAX_BATCH = 64;

    /// @notice The zero device id.
    error PilotFleetPolicyZeroDevice();
    /// @notice A batch of `count` device ids; one call takes 1 to `max`.
    error PilotFleetPolicyBatchSize(uint256 count, uint256 max);
    /// @notice `deviceId` is already in the pilot group.
    error PilotFleetPolicyAlreadyEnrolled(bytes32 deviceId);
    /// @notice `deviceId` is not in the pilot group.
    error PilotFleetPolicyNotEnrolled(bytes32 deviceId);
    /// @notice `releaseId` is not a release of the registry.
    error PilotFleetPolicyUnknownRelease(bytes32 releaseId);
    /// @notice `releaseId` is already in `stage`.
    error PilotFleetPolicyStageUnchanged(bytes32 releaseId, Stage stage);

    /// @notice `deviceId` joined the pilot group.
    event PilotDeviceEnrolled(bytes32 indexed deviceId, address indexed by);
    /// @notice `deviceId` left the pilot group.
    event PilotDeviceWithdrawn(bytes32 indexed deviceId, address indexed by);
    /// @notice `releaseId` moved from `previous` to `stage`.
    event ReleaseStageChanged(bytes32 indexed releaseId, Stage previous, Stage stage, address indexed by); // solhint-disable-line gas-indexed-events

    mapping(bytes32 deviceId => bool) private _pilot;
    mapping(bytes32 releaseId => Stage) private _stages;
    uint256 private _pilotSize;

    /// @notice A policy with `pilotDevices` in its pilot group (it may start empty).
    /// @param registry_ The UpdateRegistry whose administrators run the pilot and whose releases it stages.
    /// @param pilotDevices The first pilot devices (at most {MAX_BATCH}, none zero, none twice).
    constructor(address registry_, bytes32[] memory pilotDevices) UpdatePolicyBase(registry_) {
        if (pilotDevices.length > MAX_BATCH) revert PilotFleetPolicyBatchSize(pilotDevices.length, MAX_BATCH);
        for (uint256 i = 0; i < pilotDevices.length; ++i) {
            _enrol(pilotDevices[i]);
        }
    }

    // ---------------------------------------------------------------- administrators

    /// @notice Adds devices to the pilot group: they may take every release in its pilot.
    /// @dev Requirements: caller is a registry administrator; 1 to {MAX_BATCH} ids, none zero, none
    /// already enrolled. Emits a {PilotDeviceEnrolled} event per device.
    function enrolDevices(bytes32[] calldata deviceIds) external onlyRegistryRole(ADMINISTRATOR_ROLE) {
        _checkBatch(deviceIds.length);
        for (uint256 i = 0; i < deviceIds.length; ++i) {
            _enrol(deviceIds[i]);
        }
    }

    /// @notice Removes devices from the pilot group: from now on they wait for releases to open.
    /// @dev Requirements: caller is a registry administrator; 1 to {MAX_BATCH} ids, each enrolled.
    /// Emits a {PilotDeviceWithdrawn} event per device.
    function withdrawDevices(bytes32[] calldata deviceIds) external onlyRegistryRole(ADMINISTRATOR_ROLE) {
        _checkBatch(deviceIds.length);
        for (uint256 i = 0; i < deviceIds.length; ++i) {
            bytes32 deviceId = deviceIds[i];
            if (!_pilot[deviceId]) revert PilotFleetPolicyNotEnrolled(deviceId);
            delete _pilot[deviceId];
            --_pilotSize;
            emit PilotDeviceWithdrawn(deviceId, msg.sender);
        }
    }

    /// @notice Moves `releaseId` to `newStage`: `Open` once the pilot went well, `Held` to stop it,
    /// `Pilot` to go back to the pilot devices only.
    /// @dev Requirements: caller is a registry administrator; `releaseId` is a published release of
    /// the registry; `newStage` differs from its stage. Emits a {ReleaseStageChanged} event.
    function setStage(bytes32 releaseId, Stage newStage) external onlyRegistryRole(ADMINISTRATOR_ROLE) {
        if (IReleaseRegistry(address(REGISTRY_ROLES)).releaseStatus(releaseId) == ReleaseStatus.None) {
            revert PilotFleetPolicyUnknownRelease(releaseId);
        }
        Stage previous = _stages[releaseId];
        if (previous == newStage) revert PilotFleetPolicyStageUnchanged(releaseId, newStage);
        _stages[releaseId] = newStage;
        emit ReleaseStageChanged(releaseId, previous, newStage, msg.sender);
    }

    // ---------------------------------------------------------------- views

    /// @notice Whether `deviceId` is in the pilot group.
    function isPilotDevice(bytes32 deviceId) external view returns (bool) {
        return _pilot[deviceId];
    }

    /// @notice How many devices the pilot group holds.
    function pilotSize() external view returns (uint256) {
        return _pilotSize;
    }

    /// @notice The stage of `releaseId` (`Pilot` for a release never staged).
    function stageOf(bytes32 releaseId) external view returns (Stage) {
        return _stages[releaseId];
    }

    // ---------------------------------------------------------------- the policy

    /// @inheritdoc IUpdatePolicy
    /// @dev Reasons, first that applies: {RELEASE_HELD}; {NOT_IN_PILOT} while the release is in its
    /// pilot and the device is not a pilot device; else {ALLOWED}. Only the release id and the
    /// device id are used. Never reverts.
    function check(bytes32 releaseId, bytes32, uint64, DeviceContext calldata device, bytes calldata)
        external
        view
        returns (uint256)
    {
        Stage stage = _stages[releaseId];
        if (stage == Stage.Held) return RELEASE_HELD;
        if (stage == Stage.Pilot && !_pilot[device.deviceId]) return NOT_IN_PILOT;
        return ALLOWED;
    }

    // ---------------------------------------------------------------- internals

    function _enrol(bytes32 deviceId) private {
        if (deviceId == bytes32(0)) revert PilotFleetPolicyZeroDevice();
        if (_pilot[deviceId]) revert PilotFleetPolicyAlreadyEnrolled(deviceId);
        _pilot[deviceId] = true;
        ++_pilotSize;
        emit PilotDeviceEnrolled(deviceId, msg.sender);
    }

    function _checkBatch(uint256 count) private pure {
        if (count == 0 || count > MAX_BATCH) revert PilotFleetPolicyBatchSize(count, MAX_BATCH);
    }

    /// @inheritdoc UpdatePolicyBase
    function reasonName(uint256 reason) public view virtual override returns (string memory) {
        if (reason == NOT_IN_PILOT) return "NOT_IN_PILOT";
        if (reason == RELEASE_HELD) return "RELEASE_HELD";
        return super.reasonName(reason);
    }
}
