// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Release, Dependency} from "../interfaces/UpdateRegistryTypes.sol";

/// @title EIP-712 struct hash of a release record.
/// @notice The author signs this structure; the registry's domain-separated digest of it is the
/// release id. agent/crypto builds the same typed data with ethers.
library ReleaseHashing {
    // Type strings are hashed at compile time; their length costs nothing at run time.
    // solhint-disable gas-small-strings
    bytes32 internal constant DEPENDENCY_TYPEHASH =
        keccak256("Dependency(bytes32 component,uint64 minVersion,uint64 maxVersion)");

    bytes32 internal constant RELEASE_TYPEHASH = keccak256(
        "Release(uint32 provider,bytes32 component,uint64 version,bytes32 fileHash,string fileLink,"
        "string fileName,uint64 fileSize,bytes32 merkleRoot,uint16[] hardware,Dependency[] dependencies)"
        "Dependency(bytes32 component,uint64 minVersion,uint64 maxVersion)"
    );
    // solhint-enable gas-small-strings

    /// @notice The EIP-712 `hashStruct` of `release`.
    function structHash(Release calldata release) internal pure returns (bytes32) {
        // Encoded in two halves to stay within the EVM stack; the concatenation equals the
        // single abi.encode of all members that EIP-712 specifies.
        bytes memory head = abi.encode(
            RELEASE_TYPEHASH,
            release.provider,
            release.component,
            release.version,
            release.fileHash,
            keccak256(bytes(release.fileLink))
        );
        bytes memory tail = abi.encode(
            keccak256(bytes(release.fileName)),
            release.fileSize,
            release.merkleRoot,
            keccak256(abi.encodePacked(release.hardware)),
            _dependenciesHash(release.dependencies)
        );
        return keccak256(bytes.concat(head, tail));
    }

    function _dependenciesHash(Dependency[] calldata dependencies) private pure returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](dependencies.length);
        for (uint256 i = 0; i < dependencies.length; ++i) {
            Dependency calldata dep = dependencies[i];
            hashes[i] = keccak256(abi.encode(DEPENDENCY_TYPEHASH, dep.component, dep.minVersion, dep.maxVersion));
        }
        return keccak256(abi.encodePacked(hashes));
    }
}
