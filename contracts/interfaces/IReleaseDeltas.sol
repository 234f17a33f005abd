// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice A delta artifact of a release: what the ledger commits to of it (docs/adr/0018).
struct Delta {
    /// SHA-256 of the delta's plaintext (the OTAD patch), checked by the device after decryption.
    bytes32 deltaHash;
    /// Root of the chunk Merkle tree over the stored (encrypted) delta artifact, as for a release.
    bytes32 merkleRoot;
    /// Size of the delta's plaintext in bytes.
    uint64 size;
    /// Where the stored delta artifact is (an IPFS CID with the release's import settings).
    string link;
}

/// @title Deltas of releases from named earlier releases, beside the registry (X.1368 REQ-10e-i).
/// @notice A device that runs `fromReleaseId` may fetch the delta instead of the whole image and
/// rebuild the release's image from its own; the release's record stays the authority on the
/// result (its file hash). Recorded by an author of the release's provider, once, for good.
interface IReleaseDeltas {
    /// @notice `releaseId` is not a release on the registry.
    error ReleaseDeltasUnknownRelease(bytes32 releaseId);
    /// @notice `account` is not an author of `provider`, which published the release.
    error ReleaseDeltasNotAuthor(address account, uint32 provider);
    /// @notice The release is revoked: nobody may take it, by delta or otherwise.
    error ReleaseDeltasReleaseRevoked(bytes32 releaseId);
    /// @notice The release's provider is barred.
    error ReleaseDeltasProviderBarred(uint32 provider);
    /// @notice The base release is of another component.
    error ReleaseDeltasComponentMismatch(bytes32 component, bytes32 fromComponent);
    /// @notice The base release is not older than the release.
    error ReleaseDeltasBaseNotOlder(uint64 version, uint64 fromVersion);
    /// @notice A delta from this base is already recorded: deltas are immutable.
    error ReleaseDeltasAlreadyRecorded(bytes32 releaseId, bytes32 fromReleaseId);
    /// @notice The delta hash, the Merkle root or the size is zero.
    error ReleaseDeltasEmptyField();
    /// @notice The link is empty or longer than `maxLength` bytes.
    error ReleaseDeltasBadLink(uint256 length, uint256 maxLength);
    /// @notice A release may carry at most `maxCount` deltas.
    error ReleaseDeltasTooMany(bytes32 releaseId, uint256 maxCount);

    /// @notice A delta from `fromReleaseId` to `releaseId` was recorded, with every field.
    event DeltaAdded(
        bytes32 indexed releaseId,
        bytes32 indexed fromReleaseId,
        bytes32 indexed component,
        bytes32 deltaHash,
        bytes32 merkleRoot,
        uint64 size,
        string link,
        address by
    );

    /// @notice Records the delta that turns `fromReleaseId`'s image into `releaseId`'s.
    /// @dev Requirements: both releases on the registry, of the same component, `fromReleaseId`
    /// older; `releaseId` not revoked and its provider not barred; the caller an author of its
    /// provider; no delta from that base recorded yet; non-zero hash, root and size; a link of
    /// 1..128 bytes; at most MAX_DELTAS per release. Emits a {DeltaAdded} event.
    function addDelta(bytes32 releaseId, bytes32 fromReleaseId, bytes32 deltaHash, bytes32 merkleRoot, uint64 size, string calldata link)
        external;

    /// @notice The delta from `fromReleaseId` to `releaseId` (size 0: none recorded).
    function delta(bytes32 releaseId, bytes32 fromReleaseId) external view returns (Delta memory);

    /// @notice The bases of the deltas recorded for `releaseId`, in the order they were recorded.
    function deltaBases(bytes32 releaseId) external view returns (bytes32[] memory);
}
