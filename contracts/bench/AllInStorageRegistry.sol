// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Release, Dependency} from "../interfaces/UpdateRegistryTypes.sol";

/// @title All-in-storage baseline
/// @notice Benchmark baseline only (bench/gas.ts): the plain design that keeps every Table II-1
/// field of a release in contract storage, with no checks, to compare UpdateRegistry's gas with.
contract AllInStorageRegistry {
    struct StoredRelease {
        uint32 provider;
        uint64 version;
        uint64 fileSize;
        uint40 releasedAt;
        bytes32 component;
        bytes32 fileHash;
        bytes32 merkleRoot;
        string providerName;
        string fileLink;
        string fileName;
        uint16[] hardware;
        Dependency[] dependencies;
    }

    mapping(bytes32 releaseId => StoredRelease) private _releases;
    mapping(uint32 providerId => string) private _providerNames;

    /// @notice A release was stored.
    event Published(bytes32 indexed releaseId);

    /// @notice Sets the provider name copied into each release.
    function setProviderName(uint32 providerId, string calldata name) external {
        _providerNames[providerId] = name;
    }

    /// @notice Stores every field of `release`.
    function publish(Release calldata release) external returns (bytes32 id) {
        id = keccak256(abi.encode(release.component, release.version));
        StoredRelease storage s = _releases[id];
        s.provider = release.provider;
        s.version = release.version;
        s.fileSize = release.fileSize;
        s.releasedAt = uint40(block.timestamp);
        s.component = release.component;
        s.fileHash = release.fileHash;
        s.merkleRoot = release.merkleRoot;
        s.providerName = _providerNames[release.provider];
        s.fileLink = release.fileLink;
        s.fileName = release.fileName;
        s.hardware = release.hardware;
        for (uint256 i = 0; i < release.dependencies.length; ++i) {
            s.dependencies.push(release.dependencies[i]);
        }
        emit Published(id);
    }
}
