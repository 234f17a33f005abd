// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Release, ReleaseState, ReleaseStatus, InstallCheck, InstalledComponent} from "./UpdateRegistryTypes.sol";

/// @title Releases: publishing Table II-1 records, their status and the views agents use.
/// @notice Part of the IUpdateRegistry interface.
interface IReleaseRegistry {
    // ---------------------------------------------------------------- errors

    /// @notice The caller may not publish for this provider: not one of its authors.
    error UpdateRegistryPublisherNotAuthor(address account, uint32 provider);
    /// @notice The record names a provider other than the component's owner.
    error UpdateRegistryProviderMismatch(bytes32 component, uint32 owner, uint32 claimed);
    /// @notice The version encoding is malformed (see SemVer.sol).
    error UpdateRegistryInvalidVersion(uint64 version);
    /// @notice REQ-10d-i: a new release must have a version above the component's latest.
    error UpdateRegistryVersionNotIncreasing(bytes32 component, uint64 latest, uint64 proposed);
    /// @notice A release may raise its component's major version by at most `maxStep` over the
    /// latest one (`latestMajor`); `proposedMajor` jumps further. A component's first release is
    /// free. Bounds what one runaway release can take from the version space (docs/adr/0008).
    error UpdateRegistryMajorVersionJump(bytes32 component, uint64 latestMajor, uint64 proposedMajor, uint64 maxStep);
    /// @notice The plaintext SHA-256 is zero.
    error UpdateRegistryZeroFileHash();
    /// @notice The Merkle root of the stored artifact is zero.
    error UpdateRegistryZeroMerkleRoot();
    /// @notice The file size is zero.
    error UpdateRegistryZeroFileSize();
    /// @notice The file link (IPFS CID) is empty.
    error UpdateRegistryEmptyFileLink();
    /// @notice The file name is empty.
    error UpdateRegistryEmptyFileName();
    /// @notice The file link is longer than `maxLength` bytes.
    error UpdateRegistryFileLinkTooLong(uint256 length, uint256 maxLength);
    /// @notice The file name is longer than `maxLength` bytes.
    error UpdateRegistryFileNameTooLong(uint256 length, uint256 maxLength);
    /// @notice The record lists no supported hardware class.
    error UpdateRegistryNoHardware();
    /// @notice The record lists more hardware classes than `maxCount`.
    error UpdateRegistryTooManyHardwareClasses(uint256 count, uint256 maxCount);
    /// @notice The hardware list must be strictly ascending; entry `index` is not.
    error UpdateRegistryHardwareNotAscending(uint256 index);
    /// @notice The record lists more dependencies than `maxCount`.
    error UpdateRegistryTooManyDependencies(uint256 count, uint256 maxCount);
    /// @notice The dependency list must be strictly ascending by component; entry `index` is not.
    error UpdateRegistryDependencyNotAscending(uint256 index);
    /// @notice Dependency `index` has an empty or malformed range (min must be below max).
    error UpdateRegistryInvalidDependencyRange(uint256 index, uint64 minVersion, uint64 maxVersion);
    /// @notice Dependency `index` names the component being released.
    error UpdateRegistrySelfDependency(uint256 index);
    /// @notice One witness is needed per dependency.
    error UpdateRegistryWitnessCountMismatch(uint256 dependencies, uint256 witnesses);
    /// @notice APP-II-2: `witness` is not an unrevoked release of `component` inside
    /// [minVersion, maxVersion). Use {findSatisfyingRelease} to find one.
    error UpdateRegistryDependencyNotSatisfied(
        uint256 index, bytes32 component, uint64 minVersion, uint64 maxVersion, bytes32 witness
    );
    /// @notice Dependency `index` is on a component whose provider is barred (CAP-11.3-c): its
    /// releases no longer vouch for new ones.
    error UpdateRegistryDependencyProviderBarred(uint256 index, bytes32 component, uint32 provider);
    /// @notice The signature is not a valid signature of `signer` over the release.
    error UpdateRegistryInvalidSignature(address signer);
    /// @notice No release has this id.
    error UpdateRegistryUnknownRelease(bytes32 releaseId);
    /// @notice The release is revoked; revocation is final.
    error UpdateRegistryReleaseRevoked(bytes32 releaseId);
    /// @notice The release is already flagged vulnerable.
    error UpdateRegistryReleaseAlreadyVulnerable(bytes32 releaseId);
    /// @notice A revocation reason or an advisory reference is required.
    error UpdateRegistryEmptyReason();
    /// @notice The component has only `count` releases.
    error UpdateRegistryReleaseIndexOutOfRange(bytes32 component, uint256 index, uint256 count);

    // ---------------------------------------------------------------- events

    /// @notice A release was published. With the provider's name this event carries every Table
    /// II-1 block-data field; `releaseId` is the EIP-712 digest of `release`, so an agent can check
    /// the event data against the ledger with {releaseState}.
    event ReleasePublished(
        bytes32 indexed releaseId,
        bytes32 indexed component,
        uint32 indexed provider,
        uint64 version,
        uint40 releasedAt,
        string providerName,
        Release release,
        address signer,
        bytes signature
    );
    /// @notice A release was revoked as malicious (CAP-11.3-c). Final.
    event ReleaseRevoked(bytes32 indexed releaseId, bytes32 indexed component, address indexed by, string reason);
    /// @notice A release was flagged vulnerable (REQ-10b-ii).
    event ReleaseFlaggedVulnerable(
        bytes32 indexed releaseId, bytes32 indexed component, address indexed by, string advisory
    );

    // ---------------------------------------------------------------- actions

    /// @notice Publishes a release: records the Table II-1 fields and returns the release id.
    /// @param release The author-signed record.
    /// @param signer One of the provider's signers (EOA or ERC-1271 contract).
    /// @param signature `signer`'s EIP-712 signature over `release`.
    /// @param witnesses For each dependency, in order, the id of an unrevoked release of that
    /// component inside its range (see {findSatisfyingRelease}).
    /// @dev Requirements: caller is an author of the component's provider; provider not barred;
    /// version well formed and above the component's latest; non-zero file hash, Merkle root and
    /// size; link and name non-empty and bounded; 1..MAX_HARDWARE registered hardware classes,
    /// strictly ascending; up to MAX_DEPENDENCIES dependencies, strictly ascending by component,
    /// each on another registered component with a valid range and a valid witness; signature
    /// valid from one of the provider's signers. Emits a {ReleasePublished} event.
    function publishRelease(
        Release calldata release,
        address signer,
        bytes calldata signature,
        bytes32[] calldata witnesses
    ) external returns (bytes32 releaseId);

    /// @notice Revokes a release as malicious. Final: it no longer satisfies dependencies and is
    /// never installable.
    /// @dev Requirements: caller is an administrator or an auditor; release known and not revoked;
    /// reason non-empty. Emits a {ReleaseRevoked} event.
    function revokeRelease(bytes32 releaseId, string calldata reason) external;

    /// @notice Flags a release as vulnerable, with an advisory reference (e.g. a CVE id).
    /// @dev Requirements: caller is an administrator or an auditor; release Active; advisory
    /// non-empty. Emits a {ReleaseFlaggedVulnerable} event.
    function flagVulnerable(bytes32 releaseId, string calldata advisory) external;

    // ---------------------------------------------------------------- views

    /// @notice The release id of `release`: its EIP-712 digest under this registry's domain.
    function releaseId(Release calldata release) external view returns (bytes32);

    /// @notice The stored part of a release. Reverts for an unknown release.
    function releaseState(bytes32 releaseId) external view returns (ReleaseState memory);

    /// @notice The status of a release (None if unknown).
    function releaseStatus(bytes32 releaseId) external view returns (ReleaseStatus);

    /// @notice The key that signed a published release (the zero address if the id is unknown) and
    /// whether it was valid for it: one of the provider's keys at its publication, not compromised
    /// by then (docs/adr/0016-signer-rotation.md). A key retired since does not make it invalid.
    function releaseSigner(bytes32 releaseId) external view returns (address signer, bool valid);

    /// @notice The id of the component's `index`-th release (0-based, in publishing order).
    function releaseAt(bytes32 componentId, uint256 index) external view returns (bytes32);

    /// @notice The newest release of a component that is not revoked (and, unless
    /// `includeVulnerable`, not vulnerable); zero if none.
    function latestRelease(bytes32 componentId, bool includeVulnerable) external view returns (bytes32);

    /// @notice As {latestRelease}, among releases that support `hardwareClass`.
    function latestReleaseForHardware(bytes32 componentId, uint16 hardwareClass, bool includeVulnerable)
        external
        view
        returns (bytes32);

    /// @notice The newest unrevoked release of `componentId` in [minVersion, maxVersion); zero if
    /// none. Authors' tools use it to find dependency witnesses.
    function findSatisfyingRelease(bytes32 componentId, uint64 minVersion, uint64 maxVersion)
        external
        view
        returns (bytes32);

    /// @notice Whether `release` may be installed on a device of `hardwareClass` with the
    /// `installed` component versions, and if not, why (APP-II-2, REQ-10d-i). A vulnerable
    /// release is reported as such; the device's policy decides.
    function checkInstallable(
        Release calldata release,
        uint16 hardwareClass,
        InstalledComponent[] calldata installed
    ) external view returns (InstallCheck);
}
