// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice How many devices of an anchored fleet report each outcome for one release.
/// @dev A device counts at most once per release, so installed + failed + pending <= deviceCount.
struct ReleaseCounts {
    bytes32 releaseId;
    uint32 installed;
    uint32 failed;
    uint32 pending;
}

/// @notice One anchor of the fleet's state, as kept in storage (its counts are in its event).
/// @dev Two slots: the root, then the account, the device count and the time.
struct StatusAnchor {
    bytes32 statusRoot;
    address anchoredBy;
    uint32 deviceCount;
    uint40 anchoredAt;
}

/// @notice A device's state as its tracker reported it, one leaf of a status tree:
/// keccak256(keccak256(abi.encode(deviceId, releaseId, version, outcome, reportCounter, reportedAt))).
/// @dev `releaseId` and `version`: the release the device's last result is about (the one it runs
/// when `outcome` is Installed; zero when it has reported none). `outcome` is a code of
/// agent/crypto/statusTree.ts (STATUS_OUTCOME). `reportCounter` is the counter of the report the
/// record comes from; `reportedAt` when the tracker took it (unix seconds).
struct StatusRecord {
    bytes32 deviceId;
    bytes32 releaseId;
    uint64 version;
    uint8 outcome;
    uint64 reportCounter;
    uint40 reportedAt;
}

/// @title Anchors of the fleet's status on the ledger (X.1368 App. II status tracking).
/// @notice A tracker anchors, at intervals, the Merkle root of its devices' status records and the
/// counts per release, so that the fleet's history is auditable and a device can prove the state
/// it reported against an anchor.
interface IStatusAnchors {
    /// @notice The caller lacks the registry's TRACKER_ROLE.
    error StatusAnchorsUnauthorized(address account);
    /// @notice A zero registry address.
    error StatusAnchorsZeroAddress();
    /// @notice An anchor with a zero root or no devices.
    error StatusAnchorsEmptyAnchor();
    /// @notice The counts are not strictly ascending by release id (or name the zero id) at `index`.
    error StatusAnchorsCountsNotAscending(uint256 index);
    /// @notice A release's counts add up to more devices than the anchor covers.
    error StatusAnchorsCountsExceedDevices(bytes32 releaseId, uint256 total, uint32 deviceCount);
    /// @notice No anchor has this index.
    error StatusAnchorsUnknownAnchor(uint256 anchorIndex);

    /// @notice The fleet's state was anchored: the root of `deviceCount` status records and the
    /// counts per release.
    event StatusAnchored(
        uint256 indexed anchorIndex,
        bytes32 indexed statusRoot,
        address indexed by,
        uint32 deviceCount,
        ReleaseCounts[] counts
    );

    /// @notice Anchors the fleet's state; returns the anchor's index (0 for the first).
    /// @dev Requirements: the caller holds the registry's TRACKER_ROLE; `statusRoot` non-zero and
    /// `deviceCount` above 0; `counts` strictly ascending by non-zero release id, each release's
    /// installed + failed + pending at most `deviceCount`. Emits a {StatusAnchored} event.
    function anchor(bytes32 statusRoot, uint32 deviceCount, ReleaseCounts[] calldata counts)
        external
        returns (uint256 anchorIndex);

    /// @notice How many anchors there are.
    function anchorCount() external view returns (uint256);

    /// @notice The anchor at `anchorIndex`. Reverts for an index not yet anchored.
    function anchorAt(uint256 anchorIndex) external view returns (StatusAnchor memory);

    /// @notice Whether `proof` shows `record` in the status tree of anchor `anchorIndex`, and who
    /// anchored that tree: a proof is worth what its anchoring tracker is, so the caller checks
    /// `anchoredBy` against the tracker it trusts. Reverts for an index not yet anchored.
    /// @return valid Whether the proof shows the record in the anchored tree.
    /// @return anchoredBy The tracker account that anchored the tree (whether or not `valid`).
    function verifyStatus(uint256 anchorIndex, StatusRecord calldata record, bytes32[] calldata proof)
        external
        view
        returns (bool valid, address anchoredBy);

    /// @notice The registry whose trackers may anchor.
    function updateRegistry() external view returns (address);
}
