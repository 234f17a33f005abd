// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {InstallCheck, InstalledComponent, Release} from "./UpdateRegistryTypes.sol";

/// @notice A bundle as stored: its provider, version, creation time and member release ids (one
/// per component, ascending by component). Its name is in the {BundleCreated} event.
struct Bundle {
    uint32 provider;
    uint64 version;
    uint40 createdAt;
    bytes32[] releaseIds;
}

/// @title Bundles: releases of several components installed together or not at all.
/// @notice A provider's author names, under a name and a version, releases of distinct components
/// of that provider that a device takes as one A/B transaction (SUIT's multi-component manifests,
/// Mender's bundles). Immutable once created (docs/adr/0019-release-bundles.md).
interface IReleaseBundles {
    // ---------------------------------------------------------------- errors

    /// @notice The bundle name is empty.
    error ReleaseBundlesEmptyName();
    /// @notice The bundle name is longer than `maxLength` bytes.
    error ReleaseBundlesNameTooLong(uint256 length, uint256 maxLength);
    /// @notice The version encoding is malformed (see SemVer.sol).
    error ReleaseBundlesInvalidVersion(uint64 version);
    /// @notice REQ-10d-i: a bundle's version must be above the latest of the provider's bundles of that name.
    error ReleaseBundlesVersionNotIncreasing(uint32 provider, string name, uint64 latest, uint64 proposed);
    /// @notice A bundle has MIN_MEMBERS to MAX_MEMBERS members; `count` were given.
    error ReleaseBundlesMemberCount(uint256 count, uint256 minCount, uint256 maxCount);
    /// @notice Member `index` is not a release on the registry (its record hashes to `releaseId`).
    error ReleaseBundlesUnknownRelease(uint256 index, bytes32 releaseId);
    /// @notice Member `index` is revoked: it can never be installed.
    error ReleaseBundlesMemberRevoked(uint256 index, bytes32 releaseId);
    /// @notice Member `index` is of provider `found`, the first member's is `expected`: a bundle is one provider's.
    error ReleaseBundlesMixedProviders(uint256 index, uint32 expected, uint32 found);
    /// @notice The caller is not an author of the members' provider.
    error ReleaseBundlesCreatorNotAuthor(address account, uint32 provider);
    /// @notice The members' provider is barred (CAP-11.3-c).
    error ReleaseBundlesProviderBarred(uint32 provider);
    /// @notice Members must be strictly ascending by component (one release per component); entry `index` is not.
    error ReleaseBundlesMembersNotAscending(uint256 index);
    /// @notice No hardware class is supported by every member (APP-II-2).
    error ReleaseBundlesNoCommonHardware();
    /// @notice APP-II-2 over the set: dependency `dependency` of member `index` is on the component
    /// of another member, whose version `memberVersion` is outside the range.
    error ReleaseBundlesDependencyNotSatisfied(uint256 index, uint256 dependency, bytes32 component, uint64 memberVersion);
    /// @notice No bundle has this id.
    error ReleaseBundlesUnknownBundle(bytes32 bundleId);
    /// @notice The records given are not the bundle's members, in its order: entry `index` differs.
    error ReleaseBundlesMembersMismatch(bytes32 bundleId, uint256 index);

    // ---------------------------------------------------------------- events

    /// @notice A bundle was created, with every field: its members' release ids and components (in
    /// the same ascending order) and the hardware classes every member supports.
    event BundleCreated(
        bytes32 indexed bundleId,
        uint32 indexed provider,
        bytes32 indexed nameHash,
        string name,
        uint64 version,
        uint40 createdAt,
        bytes32[] releaseIds,
        bytes32[] components,
        uint16[] hardware,
        address by
    );

    // ---------------------------------------------------------------- actions

    /// @notice Creates a bundle of `members` (their full records, as their ReleasePublished events
    /// carry them) under `name` and `version`; returns its id.
    /// @dev Requirements: MIN_MEMBERS..MAX_MEMBERS records, each of a published, unrevoked release,
    /// strictly ascending by component, all of one provider that is not barred and of which the
    /// caller is an author; some hardware class supported by every member; each member's dependency
    /// on another member's component met by that member's version (dependencies outside the bundle
    /// are the device's installed state, checked by {checkBundle}); name 1..MAX_NAME_LENGTH bytes;
    /// version well formed and above the provider's latest bundle of that name.
    /// Emits a {BundleCreated} event.
    function createBundle(string calldata name, uint64 version, Release[] calldata members) external returns (bytes32 bundleId);

    // ---------------------------------------------------------------- views

    /// @notice The id a bundle of `provider` named `name` at `version` has (or would have) here.
    function bundleId(uint32 provider, string calldata name, uint64 version) external view returns (bytes32);

    /// @notice The stored bundle. Reverts for an unknown id.
    function bundle(bytes32 bundleId) external view returns (Bundle memory);

    /// @notice The newest version of the provider's bundles named `name` (0 if none).
    function latestBundleVersion(uint32 provider, string calldata name) external view returns (uint64);

    /// @notice Whether the bundle may be installed, as one transaction, on a device of
    /// `hardwareClass` with the `installed` component versions, and if not which member refuses and
    /// why (APP-II-2, REQ-10d-i). `members` are the bundle's records in its order. A member already
    /// installed at its version stays as it is; each other member is asked the registry's
    /// {checkInstallable} with `installed` in which the other members' components are at their
    /// bundle versions, so a dependency on a member is met by the member and one outside the bundle
    /// by the device. `verdict` is the first refusal (at member `member`), else ReleaseVulnerable
    /// if a member is only vulnerable, else Installable; NotNewerThanInstalled if every member is
    /// installed already.
    /// @dev Reverts for an unknown bundle or records that are not its members.
    function checkBundle(bytes32 bundleId, Release[] calldata members, uint16 hardwareClass, InstalledComponent[] calldata installed)
        external
        view
        returns (InstallCheck verdict, uint256 member);
}
