// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeviceRecord} from "../interfaces/UpdateRegistryTypes.sol";

/// @title Device records as Merkle leaves.
/// @notice leaf = keccak256(keccak256(abi.encode(id, keccak256(publicKey), hardwareClass, network,
/// region))). Hashing twice means a leaf is never 64 bytes of preimage, so it can't be taken for an
/// inner node (second-preimage safe), as in OpenZeppelin's StandardMerkleTree. Trees pair sorted
/// hashes (OpenZeppelin MerkleProof; merkletreejs with sortPairs).
library DeviceRecords {
    function leaf(DeviceRecord calldata record) internal pure returns (bytes32) {
        return keccak256(
            bytes.concat(
                keccak256(
                    abi.encode(
                        record.id, keccak256(record.publicKey), record.hardwareClass, record.network, record.region
                    )
                )
            )
        );
    }

    /// @notice Whether `key` is a 33-byte compressed secp256k1 public key (prefix 0x02 or 0x03).
    /// The curve membership of the x coordinate is checked off-chain, where the key is used.
    function isCompressedPublicKey(bytes calldata key) internal pure returns (bool) {
        return key.length == 33 && (key[0] == 0x02 || key[0] == 0x03);
    }
}
