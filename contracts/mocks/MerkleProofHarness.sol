// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title MerkleProof test harness
/// @notice Test-only: exposes OpenZeppelin's MerkleProof (sorted pairs, keccak256), which the
/// contracts use to check device, cohort and status proofs, so that test/agent/crypto/merkle.test.ts
/// can check agent/crypto/merkle.ts's proofs and OpenZeppelin's multiproofs against it directly.
contract MerkleProofHarness {
    /// @notice MerkleProof.verify (the proof copied to memory), as StagedRollout and UpdatePolicyBase call it.
    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leaf) external pure returns (bool) {
        return MerkleProof.verify(proof, root, leaf);
    }

    /// @notice MerkleProof.verifyCalldata, as FleetRegistry and StatusAnchors call it.
    function verifyCalldata(bytes32[] calldata proof, bytes32 root, bytes32 leaf) external pure returns (bool) {
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @notice MerkleProof.multiProofVerify (copied to memory): several leaves of one tree proven at once.
    function multiProofVerify(
        bytes32[] calldata proof,
        bool[] calldata proofFlags,
        bytes32 root,
        bytes32[] calldata leaves
    ) external pure returns (bool) {
        return MerkleProof.multiProofVerify(proof, proofFlags, root, leaves);
    }
}
