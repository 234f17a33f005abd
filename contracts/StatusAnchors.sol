// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IStatusAnchors, ReleaseCounts, StatusAnchor, StatusRecord} from "./interfaces/IStatusAnchors.sol";

/// @title Anchors of the fleet's status (X.1368 App. II status tracking).
/// @notice Trackers (the UpdateRegistry's TRACKER_ROLE) anchor the root of their devices' status
/// records at intervals; devices prove their reported state against an anchor.
/// @dev Each anchor costs two storage slots whatever the fleet's size; the counts per release go
/// in the {StatusAnchored} event only. Leaves are double-hashed (OpenZeppelin's standard tree) and
/// pairs sorted, as agent/crypto/statusTree.ts builds them.
contract StatusAnchors is IStatusAnchors {
    bytes32 private constant TRACKER_ROLE = keccak256("TRACKER_ROLE");

    IAccessControl private immutable _REGISTRY;
    StatusAnchor[] private _anchors;

    constructor(address registry) {
        if (registry == address(0)) revert StatusAnchorsZeroAddress();
        _REGISTRY = IAccessControl(registry);
    }

    modifier onlyTracker() {
        if (!_REGISTRY.hasRole(TRACKER_ROLE, msg.sender)) revert StatusAnchorsUnauthorized(msg.sender);
        _;
    }

    /// @inheritdoc IStatusAnchors
    function anchor(bytes32 statusRoot, uint32 deviceCount, ReleaseCounts[] calldata counts)
        external
        onlyTracker
        returns (uint256 anchorIndex)
    {
        if (statusRoot == bytes32(0) || deviceCount == 0) revert StatusAnchorsEmptyAnchor();
        bytes32 previous = bytes32(0);
        for (uint256 i = 0; i < counts.length; ++i) {
            ReleaseCounts calldata c = counts[i];
            if (c.releaseId <= previous) revert StatusAnchorsCountsNotAscending(i);
            previous = c.releaseId;
            uint256 total = uint256(c.installed) + c.failed + c.pending;
            if (total > deviceCount) revert StatusAnchorsCountsExceedDevices(c.releaseId, total, deviceCount);
        }
        anchorIndex = _anchors.length;
        _anchors.push(
            StatusAnchor({
                statusRoot: statusRoot,
                anchoredBy: msg.sender,
                deviceCount: deviceCount,
                anchoredAt: uint40(block.timestamp)
            })
        );
        emit StatusAnchored(anchorIndex, statusRoot, msg.sender, deviceCount, counts);
    }

    /// @inheritdoc IStatusAnchors
    function anchorCount() external view returns (uint256) {
        return _anchors.length;
    }

    /// @inheritdoc IStatusAnchors
    function anchorAt(uint256 anchorIndex) external view returns (StatusAnchor memory) {
        return _anchor(anchorIndex);
    }

    /// @inheritdoc IStatusAnchors
    function verifyStatus(uint256 anchorIndex, StatusRecord calldata record, bytes32[] calldata proof)
        external
        view
        returns (bool valid, address anchoredBy)
    {
        StatusAnchor storage a = _anchor(anchorIndex);
        bytes32 leaf = keccak256(
            bytes.concat(
                keccak256(
                    abi.encode(
                        record.deviceId,
                        record.releaseId,
                        record.version,
                        record.outcome,
                        record.reportCounter,
                        record.reportedAt
                    )
                )
            )
        );
        return (MerkleProof.verifyCalldata(proof, a.statusRoot, leaf), a.anchoredBy);
    }

    /// @inheritdoc IStatusAnchors
    function updateRegistry() external view returns (address) {
        return address(_REGISTRY);
    }

    function _anchor(uint256 anchorIndex) private view returns (StatusAnchor storage) {
        if (anchorIndex >= _anchors.length) revert StatusAnchorsUnknownAnchor(anchorIndex);
        return _anchors[anchorIndex];
    }
}
