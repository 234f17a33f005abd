// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IUpdateRegistry} from "./interfaces/IUpdateRegistry.sol";
import {Delta, IReleaseDeltas} from "./interfaces/IReleaseDeltas.sol";
import {ReleaseState, ReleaseStatus} from "./interfaces/UpdateRegistryTypes.sol";

/// @title Delta artifacts of releases (X.1368 REQ-10e-i), beside the UpdateRegistry.
/// @notice Beside the registry, as UpdatePolicies is, so that the registry's storage, code size
/// (EIP-170) and release id stay as they are: a delta is an extra way to deliver a release, never
/// part of its record. Reads the registry's views for the releases and their provider's authors.
contract ReleaseDeltas is IReleaseDeltas {
    /// @notice Deltas a release may carry.
    uint256 public constant MAX_DELTAS = 16;
    /// @notice Longest link, as the registry's file link.
    uint256 public constant MAX_LINK_LENGTH = 128;

    IUpdateRegistry private immutable _REGISTRY;
    mapping(bytes32 releaseId => mapping(bytes32 fromReleaseId => Delta)) private _deltas;
    mapping(bytes32 releaseId => bytes32[] fromReleaseIds) private _bases;

    constructor(IUpdateRegistry registry) {
        _REGISTRY = registry;
    }

    /// @notice The registry whose releases these deltas deliver.
    function updateRegistry() external view returns (address) {
        return address(_REGISTRY);
    }

    /// @inheritdoc IReleaseDeltas
    function addDelta(bytes32 releaseId, bytes32 fromReleaseId, bytes32 deltaHash, bytes32 merkleRoot, uint64 size, string calldata link)
        external
    {
        ReleaseState memory target = _known(releaseId);
        ReleaseState memory base = _known(fromReleaseId);
        if (_REGISTRY.authorProvider(msg.sender) != target.provider) revert ReleaseDeltasNotAuthor(msg.sender, target.provider);
        if (target.status == ReleaseStatus.Revoked) revert ReleaseDeltasReleaseRevoked(releaseId);
        (, bool barred) = _REGISTRY.provider(target.provider);
        if (barred) revert ReleaseDeltasProviderBarred(target.provider);
        if (base.component != target.component) revert ReleaseDeltasComponentMismatch(target.component, base.component);
        if (base.version >= target.version) revert ReleaseDeltasBaseNotOlder(target.version, base.version);
        if (_deltas[releaseId][fromReleaseId].size != 0) revert ReleaseDeltasAlreadyRecorded(releaseId, fromReleaseId);
        if (_bases[releaseId].length >= MAX_DELTAS) revert ReleaseDeltasTooMany(releaseId, MAX_DELTAS);
        if (deltaHash == bytes32(0) || merkleRoot == bytes32(0) || size == 0) revert ReleaseDeltasEmptyField();
        uint256 linkLength = bytes(link).length;
        if (linkLength == 0 || linkLength > MAX_LINK_LENGTH) revert ReleaseDeltasBadLink(linkLength, MAX_LINK_LENGTH);
        _deltas[releaseId][fromReleaseId] = Delta(deltaHash, merkleRoot, size, link);
        _bases[releaseId].push(fromReleaseId);
        emit DeltaAdded(releaseId, fromReleaseId, target.component, deltaHash, merkleRoot, size, link, msg.sender);
    }

    /// @inheritdoc IReleaseDeltas
    function delta(bytes32 releaseId, bytes32 fromReleaseId) external view returns (Delta memory) {
        return _deltas[releaseId][fromReleaseId];
    }

    /// @inheritdoc IReleaseDeltas
    function deltaBases(bytes32 releaseId) external view returns (bytes32[] memory) {
        return _bases[releaseId];
    }

    function _known(bytes32 id) private view returns (ReleaseState memory state) {
        if (_REGISTRY.releaseStatus(id) == ReleaseStatus.None) revert ReleaseDeltasUnknownRelease(id);
        state = _REGISTRY.releaseState(id);
    }
}
