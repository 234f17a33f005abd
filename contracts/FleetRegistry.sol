// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IFleetRegistry} from "./interfaces/IFleetRegistry.sol";
import {DeviceRecord, DeviceStanding} from "./interfaces/UpdateRegistryTypes.sol";
import {DeviceRecords} from "./libraries/DeviceRecords.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IUpdateRegistry} from "./interfaces/IUpdateRegistry.sol";

/// @title Device identities (CAP-11.3-d) and tracker-module keys (CAP-11.2-d).
/// @notice Enrols devices singly or in Merkle batches, suspends them, and registers tracker modules.
/// @dev A device enrolled alone costs one slot (its record's leaf hash); a batch costs one slot
/// whatever its size (the Merkle root of its leaves). Suspension is by device id and applies to
/// both. A contract of its own beside the UpdateRegistry (whose roles it uses) to keep each under
/// the EIP-170 code size limit.
contract FleetRegistry is IFleetRegistry {
    bytes32 private constant ADMINISTRATOR_ROLE = keccak256("ADMINISTRATOR_ROLE");
    bytes32 private constant TRACKER_ROLE = keccak256("TRACKER_ROLE");

    IUpdateRegistry private immutable _REGISTRY;

    /// @notice How many tracker modules deep a hierarchy may go (server = 1).
    uint256 public constant MAX_TRACKER_DEPTH = 8;

    struct Batch {
        bytes32 root;
        uint32 count;
        bool revoked;
    }

    struct TrackerModule {
        address signer;
        bool retired;
        uint8 depth; // 1 for a server module
        bytes32 parent;
        address owner; // the account that registered it: it alone (or an administrator) retires it and adds children
    }

    uint64 private _batchCount;
    mapping(bytes32 deviceId => bytes32 leaf) private _singleDevices;
    mapping(uint64 batchId => Batch) private _batches;
    mapping(bytes32 deviceId => bool) private _suspended;
    mapping(bytes32 leaf => bool) private _revokedLeaves;
    mapping(bytes32 moduleId => TrackerModule) private _trackerModules;

    constructor(IUpdateRegistry registry) {
        if (address(registry) == address(0)) revert FleetRegistryZeroAddress();
        _REGISTRY = registry;
    }

    function _hasRole(bytes32 role, address account) private view returns (bool) {
        return IAccessControl(address(_REGISTRY)).hasRole(role, account);
    }

    modifier onlyRole(bytes32 role) {
        if (!_hasRole(role, msg.sender)) revert FleetRegistryUnauthorized(msg.sender, role);
        _;
    }

    // ---------------------------------------------------------------- devices

    /// @inheritdoc IFleetRegistry
    function enrolDevice(DeviceRecord calldata record) external onlyRole(ADMINISTRATOR_ROLE) {
        if (record.id == bytes32(0)) revert FleetRegistryZeroDeviceId();
        if (!DeviceRecords.isCompressedPublicKey(record.publicKey)) revert FleetRegistryInvalidPublicKey();
        if (record.hardwareClass == 0 || record.hardwareClass > _REGISTRY.hardwareClassCount()) {
            revert FleetRegistryUnknownHardwareClass(record.hardwareClass);
        }
        bytes32 current = _singleDevices[record.id];
        // A revoked record can be replaced: that is how a device's key is rotated.
        if (current != bytes32(0) && !_revokedLeaves[current]) revert FleetRegistryDeviceAlreadyEnrolled(record.id);
        _singleDevices[record.id] = DeviceRecords.leaf(record);
        emit DeviceEnrolled(record.id, record.hardwareClass, record.network, record.region, record.publicKey);
    }

    /// @inheritdoc IFleetRegistry
    function enrolDeviceBatch(bytes32 root, uint32 count, string calldata recordsLink)
        external
        onlyRole(ADMINISTRATOR_ROLE)
        returns (uint64 batchId)
    {
        if (root == bytes32(0) || count == 0) revert FleetRegistryEmptyBatch();
        batchId = ++_batchCount;
        _batches[batchId] = Batch({root: root, count: count, revoked: false});
        emit DeviceBatchEnrolled(batchId, root, count, recordsLink);
    }

    /// @inheritdoc IFleetRegistry
    function revokeDeviceRecord(
        DeviceRecord calldata record,
        uint64 batchId,
        bytes32[] calldata proof,
        string calldata reason
    ) external onlyRole(ADMINISTRATOR_ROLE) {
        bytes32 leaf = DeviceRecords.leaf(record);
        if (!_isEnrolled(record.id, leaf, batchId, proof)) revert FleetRegistryDeviceRecordNotEnrolled(record.id);
        if (_revokedLeaves[leaf]) revert FleetRegistryDeviceRecordAlreadyRevoked(record.id, leaf);
        _revokedLeaves[leaf] = true;
        emit DeviceRecordRevoked(record.id, leaf, msg.sender, reason);
    }

    /// @inheritdoc IFleetRegistry
    function revokeDeviceBatch(uint64 batchId, string calldata reason) external onlyRole(ADMINISTRATOR_ROLE) {
        Batch storage b = _batches[batchId];
        if (b.root == bytes32(0)) revert FleetRegistryUnknownBatch(batchId);
        if (b.revoked) revert FleetRegistryBatchAlreadyRevoked(batchId);
        b.revoked = true;
        emit DeviceBatchRevoked(batchId, msg.sender, reason);
    }

    /// @inheritdoc IFleetRegistry
    function suspendDevice(bytes32 deviceId, string calldata reason) external onlyRole(ADMINISTRATOR_ROLE) {
        if (deviceId == bytes32(0)) revert FleetRegistryZeroDeviceId();
        if (_suspended[deviceId]) revert FleetRegistryDeviceAlreadySuspended(deviceId);
        _suspended[deviceId] = true;
        emit DeviceSuspended(deviceId, msg.sender, reason);
    }

    /// @inheritdoc IFleetRegistry
    function reinstateDevice(bytes32 deviceId) external onlyRole(ADMINISTRATOR_ROLE) {
        if (!_suspended[deviceId]) revert FleetRegistryDeviceNotSuspended(deviceId);
        delete _suspended[deviceId];
        emit DeviceReinstated(deviceId, msg.sender);
    }

    // ---------------------------------------------------------------- tracker modules

    /// @inheritdoc IFleetRegistry
    function registerTrackerModule(bytes32 moduleId, address signer, bytes calldata publicKey, bytes32 parent)
        external
        onlyRole(TRACKER_ROLE)
    {
        if (moduleId == bytes32(0)) revert FleetRegistryZeroModuleId();
        if (_trackerModules[moduleId].signer != address(0)) revert FleetRegistryTrackerModuleExists(moduleId);
        if (signer == address(0)) revert FleetRegistryZeroAddress();
        if (!DeviceRecords.isCompressedPublicKey(publicKey)) revert FleetRegistryInvalidPublicKey();
        uint8 depth = 1;
        if (parent != bytes32(0)) {
            TrackerModule memory above = _requireActiveModule(parent);
            // Only the parent's operator (or an administrator) grows its subtree.
            _requireOwnerOrAdministrator(parent, above.owner);
            depth = above.depth + 1;
            if (depth > MAX_TRACKER_DEPTH) revert FleetRegistryTrackerHierarchyTooDeep(parent, MAX_TRACKER_DEPTH);
        }
        _trackerModules[moduleId] =
            TrackerModule({signer: signer, retired: false, depth: depth, parent: parent, owner: msg.sender});
        emit TrackerModuleRegistered(moduleId, signer, parent, publicKey);
    }

    /// @inheritdoc IFleetRegistry
    function retireTrackerModule(bytes32 moduleId) external {
        // The module's operator retires its keys in the normal course; administrators too, when a
        // module is lost or its operator is gone.
        TrackerModule memory m = _requireActiveModule(moduleId);
        _requireOwnerOrAdministrator(moduleId, m.owner);
        _trackerModules[moduleId].retired = true;
        emit TrackerModuleRetired(moduleId, msg.sender);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IFleetRegistry
    function updateRegistry() external view returns (address) {
        return address(_REGISTRY);
    }

    /// @inheritdoc IFleetRegistry
    function deviceStanding(DeviceRecord calldata record, uint64 batchId, bytes32[] calldata proof)
        external
        view
        returns (DeviceStanding)
    {
        bytes32 leaf = DeviceRecords.leaf(record);
        if (!_isEnrolled(record.id, leaf, batchId, proof)) return DeviceStanding.Unknown;
        if (_revokedLeaves[leaf] || (batchId != 0 && _isBatchRecordWithdrawn(record.id, batchId))) {
            return DeviceStanding.Revoked;
        }
        return _suspended[record.id] ? DeviceStanding.Suspended : DeviceStanding.Active;
    }

    /// @inheritdoc IFleetRegistry
    function isDeviceSuspended(bytes32 deviceId) external view returns (bool) {
        return _suspended[deviceId];
    }

    /// @inheritdoc IFleetRegistry
    function deviceBatch(uint64 batchId) external view returns (bytes32 root, uint32 count, bool revoked) {
        Batch memory b = _batches[batchId];
        if (b.root == bytes32(0)) revert FleetRegistryUnknownBatch(batchId);
        return (b.root, b.count, b.revoked);
    }

    /// @inheritdoc IFleetRegistry
    function trackerModule(bytes32 moduleId) external view returns (address signer, bytes32 parent) {
        TrackerModule memory m = _requireActiveModule(moduleId);
        return (m.signer, m.parent);
    }

    /// @inheritdoc IFleetRegistry
    function trackerModuleOwner(bytes32 moduleId) external view returns (address) {
        return _requireActiveModule(moduleId).owner;
    }

    /// @dev The caller is the module's owner and still holds the tracker role, or is an administrator.
    function _requireOwnerOrAdministrator(bytes32 moduleId, address owner) private view {
        if (_hasRole(ADMINISTRATOR_ROLE, msg.sender)) return;
        if (msg.sender != owner) revert FleetRegistryNotTrackerModuleOwner(moduleId, owner, msg.sender);
        if (!_hasRole(TRACKER_ROLE, msg.sender)) revert FleetRegistryUnauthorized(msg.sender, TRACKER_ROLE);
    }

    /// @dev The module and every module above it must be registered and not retired. Bounded by
    /// MAX_TRACKER_DEPTH.
    function _requireActiveModule(bytes32 moduleId) private view returns (TrackerModule memory m) {
        m = _trackerModules[moduleId];
        if (m.signer == address(0) || m.retired) revert FleetRegistryUnknownTrackerModule(moduleId);
        bytes32 above = m.parent;
        while (above != bytes32(0)) {
            TrackerModule memory a = _trackerModules[above];
            if (a.retired) revert FleetRegistryUnknownTrackerModule(moduleId);
            above = a.parent;
        }
    }

    /// @dev One active record per device id: a batch record is withdrawn with its batch, and
    /// superseded for good once its device id is enrolled on its own (the single record, revoked or
    /// not, is the device's record from then on: a leaked single key never falls back to an older
    /// batch key).
    function _isBatchRecordWithdrawn(bytes32 deviceId, uint64 batchId) private view returns (bool) {
        return _batches[batchId].revoked || _singleDevices[deviceId] != bytes32(0);
    }

    function _isEnrolled(bytes32 deviceId, bytes32 leaf, uint64 batchId, bytes32[] calldata proof)
        private
        view
        returns (bool)
    {
        // The zero id is never a device: enrolDevice refuses it and suspendDevice cannot suspend
        // it, so a batch (whose records are not checked on-chain) must not vouch for it either.
        if (deviceId == bytes32(0)) return false;
        return batchId == 0
            ? _singleDevices[deviceId] == leaf
            : MerkleProof.verifyCalldata(proof, _batches[batchId].root, leaf);
    }
}
