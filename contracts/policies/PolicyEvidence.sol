// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title What devices bring to update policies: the evidence envelope, Merkle proofs of devices.
/// @notice A device brings one evidence string to its release's policy. When several policies of a
/// composition each need their own (a cohort proof for a staged rollout, an allowlist proof for
/// another), the tools wrap the parts in an envelope and each policy takes its own part by its
/// address ({partFor}); evidence without the envelope's prefix is given whole to every policy.
/// The envelope is flat: parts are keyed by the leaf policy's address, whatever the nesting of
/// composers, so composers pass the evidence on unchanged.
/// @dev Envelope layout (agent/core/policyEvidence.ts writes it):
///   ENVELOPE_MAGIC (4 bytes), then for each part: policy address (20 bytes), part length
///   (2 bytes, big-endian), part bytes.
/// The parts run exactly to the end. A packed layout rather than abi.encode: it is read with
/// calldata slices and bound checks alone, never reverts on hostile input and costs no copying.
library PolicyEvidence {
    /// @notice The first four bytes of an envelope: bytes4(keccak256("ota-ledger.policy-evidence.v1")).
    bytes4 internal constant ENVELOPE_MAGIC = 0xe7d4e67d;

    uint256 private constant PART_HEADER = 22; // address + uint16 length

    /// @notice Whether `evidence` is an envelope of per-policy parts.
    function isEnvelope(bytes calldata evidence) internal pure returns (bool) {
        return evidence.length >= 4 && bytes4(evidence[0:4]) == ENVELOPE_MAGIC;
    }

    /// @notice The part of an envelope for `policy`: empty when the envelope has none for it.
    /// `wellFormed` is false when the envelope's parts overrun its end or stop short of it.
    function partFor(bytes calldata envelope, address policy) internal pure returns (bool wellFormed, bytes calldata part) {
        part = envelope[0:0];
        uint256 at = 4;
        bool found = false;
        while (at < envelope.length) {
            if (envelope.length - at < PART_HEADER) return (false, envelope[0:0]);
            address owner = address(bytes20(envelope[at:at + 20]));
            uint256 size = uint16(bytes2(envelope[at + 20:at + 22]));
            at += PART_HEADER;
            if (envelope.length - at < size) return (false, envelope[0:0]);
            if (!found && owner == policy) {
                part = envelope[at:at + size];
                found = true;
            }
            at += size;
        }
        return (true, part);
    }

    /// @notice The Merkle leaf of a device id in the device trees the tools build (rollout cohorts,
    /// allowlists): keccak256(bytes.concat(keccak256(abi.encode(deviceId)))). The double hash keeps
    /// a leaf from being read as an inner node; pairs are sorted (OpenZeppelin MerkleProof).
    function deviceLeaf(bytes32 deviceId) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(deviceId))));
    }

    /// @notice Decodes `data` as abi.encode(bytes32[] proof) in canonical form (offset 0x20, exact
    /// length, at most `maxLength` siblings); anything else answers wellFormed = false, never a revert.
    function decodeProof(bytes calldata data, uint256 maxLength) internal pure returns (bool wellFormed, bytes32[] memory proof) {
        if (data.length < 64 || uint256(bytes32(data[0:32])) != 32) return (false, proof);
        uint256 n = uint256(bytes32(data[32:64]));
        if (n > maxLength || data.length != 64 + 32 * n) return (false, proof);
        proof = abi.decode(data, (bytes32[]));
        return (true, proof);
    }
}
