// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeviceRecord, DeviceStanding} from "./UpdateRegistryTypes.sol";

/// @title Fleet identities: devices (CAP-11.3-d) and tracker-module keys (CAP-11.2-d).
/// @notice Roles are the update registry's: the fleet registry asks it who holds which role, so
/// there is one place where access is granted and revoked.
interface IFleetRegistry {
    // ---------------------------------------------------------------- errors

    /// @notice The caller has none of the update-registry roles this action needs.
    error FleetRegistryUnauthorized(address account, bytes32 role);
    /// @notice The hardware class is not registered in the update registry.
    error FleetRegistryUnknownHardwareClass(uint16 hardwareClass);
    /// @notice The zero address was given where an account is needed.
    error FleetRegistryZeroAddress();

    /// @notice A device id must be non-zero.
    error FleetRegistryZeroDeviceId();
    /// @notice A public key must be a 33-byte compressed secp256k1 key (prefix 0x02 or 0x03).
    error FleetRegistryInvalidPublicKey();
    /// @notice The device is already enrolled one at a time.
    error FleetRegistryDeviceAlreadyEnrolled(bytes32 deviceId);
    /// @notice A batch needs a non-zero Merkle root and at least one device.
    error FleetRegistryEmptyBatch();
    /// @notice No batch has this id.
    error FleetRegistryUnknownBatch(uint64 batchId);
    /// @notice The device is already suspended.
    error FleetRegistryDeviceAlreadySuspended(bytes32 deviceId);
    /// @notice The device is not suspended.
    error FleetRegistryDeviceNotSuspended(bytes32 deviceId);
    /// @notice The device record (its leaf) is already revoked.
    error FleetRegistryDeviceRecordAlreadyRevoked(bytes32 deviceId, bytes32 leaf);
    /// @notice The record is not enrolled as given: not the device's single record (batch 0), or
    /// not proved by the proof in that batch.
    error FleetRegistryDeviceRecordNotEnrolled(bytes32 deviceId);
    /// @notice The batch is already revoked.
    error FleetRegistryBatchAlreadyRevoked(uint64 batchId);
    /// @notice Registering under `parent` would make the tracker hierarchy deeper than `maxDepth`.
    error FleetRegistryTrackerHierarchyTooDeep(bytes32 parent, uint256 maxDepth);
    /// @notice A tracker module id must be non-zero.
    error FleetRegistryZeroModuleId();
    /// @notice The tracker module id is taken (ids are never reused, even after retirement).
    error FleetRegistryTrackerModuleExists(bytes32 moduleId);
    /// @notice No active tracker module has this id.
    error FleetRegistryUnknownTrackerModule(bytes32 moduleId);
    /// @notice `account` may not retire tracker module `moduleId`, nor register a module under it:
    /// only its `owner` (the account that registered it) or an administrator may.
    error FleetRegistryNotTrackerModuleOwner(bytes32 moduleId, address owner, address account);

    // ---------------------------------------------------------------- events

    /// @notice A device was enrolled on its own.
    event DeviceEnrolled(
        bytes32 indexed deviceId,
        uint16 indexed hardwareClass,
        bytes32 indexed network,
        bytes32 region,
        bytes publicKey
    );
    /// @notice A batch of `count` devices was enrolled as the Merkle root of their records; the
    /// records themselves are at `recordsLink` (e.g. an IPFS CID), each provable against `root`.
    event DeviceBatchEnrolled(uint64 indexed batchId, bytes32 root, uint32 count, string recordsLink); // solhint-disable-line gas-indexed-events
    /// @notice A device record was withdrawn (e.g. its key leaked); the device may be enrolled again
    /// with a new record.
    event DeviceRecordRevoked(bytes32 indexed deviceId, bytes32 leaf, address indexed by, string reason);
    /// @notice Every record of a batch was withdrawn.
    event DeviceBatchRevoked(uint64 indexed batchId, address indexed by, string reason);
    /// @notice A device was suspended: it is no longer served or offered updates.
    event DeviceSuspended(bytes32 indexed deviceId, address indexed by, string reason);
    /// @notice A suspended device was reinstated.
    event DeviceReinstated(bytes32 indexed deviceId, address indexed by);
    /// @notice A tracker module's key was registered. `publicKey` (33-byte compressed) is the key
    /// messages to the module are encrypted to; `signer` is its address.
    event TrackerModuleRegistered(bytes32 indexed moduleId, address indexed signer, bytes32 indexed parent, bytes publicKey);
    /// @notice A tracker module was retired; its key is no longer trusted.
    event TrackerModuleRetired(bytes32 indexed moduleId, address indexed by);

    // ---------------------------------------------------------------- actions

    /// @notice Enrols one device, keeping its record's hash in storage.
    /// @dev Requirements: caller is an administrator; id non-zero and not enrolled singly; key a
    /// compressed secp256k1 key; hardware class registered. Emits a {DeviceEnrolled} event.
    function enrolDevice(DeviceRecord calldata record) external;

    /// @notice Enrols a batch of devices at a fixed cost: only the Merkle root of their record
    /// leaves (see DeviceRecords.sol) is stored. Returns the batch id (1, 2, ...).
    /// @dev Requirements: caller is an administrator; root non-zero; count > 0.
    /// Emits a {DeviceBatchEnrolled} event.
    function enrolDeviceBatch(bytes32 root, uint32 count, string calldata recordsLink) external returns (uint64 batchId);

    /// @notice Withdraws one device record, proved as in {deviceStanding}: it reports
    /// {DeviceStanding.Revoked} from now on. A device enrolled on its own may then be enrolled again
    /// with a new key (key rotation after a leak).
    /// @dev Requirements: caller is an administrator; the record is enrolled (singly, or in the batch
    /// with the proof) and not already revoked. Emits a {DeviceRecordRevoked} event.
    function revokeDeviceRecord(
        DeviceRecord calldata record,
        uint64 batchId,
        bytes32[] calldata proof,
        string calldata reason
    ) external;

    /// @notice Withdraws every record of a batch.
    /// @dev Requirements: caller is an administrator; batch known and not revoked.
    /// Emits a {DeviceBatchRevoked} event.
    function revokeDeviceBatch(uint64 batchId, string calldata reason) external;

    /// @notice Suspends a device (enrolled singly or in a batch).
    /// @dev Requirements: caller is an administrator; device id non-zero, not suspended.
    /// Emits a {DeviceSuspended} event.
    function suspendDevice(bytes32 deviceId, string calldata reason) external;

    /// @notice Reinstates a suspended device.
    /// @dev Requirements: caller is an administrator; device suspended.
    /// Emits a {DeviceReinstated} event.
    function reinstateDevice(bytes32 deviceId) external;

    /// @notice Registers a tracker module's key, under `parent` (zero for a server module). The
    /// caller becomes the module's owner: only it (or an administrator) retires the module or
    /// registers modules under it.
    /// @dev Requirements: caller has the tracker role; id non-zero and never used; signer non-zero;
    /// key a compressed secp256k1 key; parent zero or an active module whose ancestors are all
    /// active, owned by the caller unless the caller is an administrator; the new module no deeper
    /// than MAX_TRACKER_DEPTH.
    /// Emits a {TrackerModuleRegistered} event.
    function registerTrackerModule(bytes32 moduleId, address signer, bytes calldata publicKey, bytes32 parent)
        external;

    /// @notice Retires a tracker module; its key is no longer trusted, nor any module's below it.
    /// @dev Requirements: module active; caller is its owner and still has the tracker role, or is
    /// an administrator.
    /// Emits a {TrackerModuleRetired} event.
    function retireTrackerModule(bytes32 moduleId) external;

    // ---------------------------------------------------------------- views

    /// @notice The update registry whose roles and hardware classes this registry uses.
    function updateRegistry() external view returns (address);

    /// @notice A device's standing given its record and, for a batch-enrolled device, the batch
    /// id and Merkle proof (batch id 0 and an empty proof for a device enrolled singly).
    function deviceStanding(DeviceRecord calldata record, uint64 batchId, bytes32[] calldata proof)
        external
        view
        returns (DeviceStanding);

    /// @notice Whether the device id is suspended.
    function isDeviceSuspended(bytes32 deviceId) external view returns (bool);

    /// @notice The Merkle root, size and revocation of a device batch. Reverts for an unknown batch.
    function deviceBatch(uint64 batchId) external view returns (bytes32 root, uint32 count, bool revoked);

    /// @notice The active tracker module's signer and parent. Reverts if it, or any module above it,
    /// is unknown or retired: retiring a module withdraws trust from everything below it.
    function trackerModule(bytes32 moduleId) external view returns (address signer, bytes32 parent);

    /// @notice The account that registered the active tracker module (its owner). Reverts as
    /// {trackerModule} does.
    function trackerModuleOwner(bytes32 moduleId) external view returns (address);
}
