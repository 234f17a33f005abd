import { AbiCoder, isHexString, keccak256, ZeroHash } from "ethers";
import { buildSortedTree, verifySortedProof } from "./merkle";
import { InputError } from "../core/errors";

/**
 * Rollout cohorts as Merkle trees of device ids, matching contracts/policies/StagedRollout.sol:
 *   leaf = keccak256(keccak256(abi.encode(deviceId)))
 * The double hash keeps a leaf from being read as an inner node. The tree is a sorted-pair tree of
 * merkle.ts (OpenZeppelin MerkleProof on-chain). A device proves it is in a wave of a
 * rollout with the evidence abi.encode(uint256 waveIndex, bytes32[] proof).
 */

const coder = AbiCoder.defaultAbiCoder();

/** Most siblings a proof may have on-chain (StagedRollout.MAX_PROOF_LENGTH). */
export const MAX_COHORT_PROOF_LENGTH = 32;

export function cohortLeaf(deviceId: string): string {
  return keccak256(keccak256(coder.encode(["bytes32"], [deviceId])));
}

export interface Cohort {
  root: string;
  /** The device ids, in the order given. */
  deviceIds: string[];
  /** The proof for each device, in the order given. */
  proofs: string[][];
}

/** Builds the Merkle tree of a cohort of device ids (non-zero, 32 bytes, each once). */
export function buildCohort(deviceIds: string[]): Cohort {
  if (deviceIds.length === 0) throw new InputError("COHORT_EMPTY", "a cohort needs at least one device id");
  const seen = new Set<string>();
  for (const [i, id] of deviceIds.entries()) {
    if (!isHexString(id, 32) || id === ZeroHash) {
      throw new InputError("COHORT_DEVICE_ID_INVALID", `device id ${i} (${id}) must be a non-zero 32-byte hex value`, {
        details: { index: i },
      });
    }
    const key = id.toLowerCase();
    if (seen.has(key)) throw new InputError("COHORT_DUPLICATE", `device ${id} appears twice in the cohort; list each device once`);
    seen.add(key);
  }
  const { root, proofs } = buildSortedTree(deviceIds.map(cohortLeaf));
  return { root, deviceIds: [...deviceIds], proofs };
}

/** The proof that `deviceId` is in `cohort`. */
export function cohortProof(cohort: Cohort, deviceId: string): string[] {
  const i = cohort.deviceIds.findIndex((id) => id.toLowerCase() === deviceId.toLowerCase());
  if (i < 0) throw new InputError("COHORT_DEVICE_UNKNOWN", `device ${deviceId} is not in the cohort with root ${cohort.root}`);
  return cohort.proofs[i];
}

/**
 * Whether `proof` shows `deviceId` in the cohort with this root, as OpenZeppelin's MerkleProof
 * (sorted pairs) checks it on-chain in StagedRollout.check.
 */
export function verifyCohortProof(deviceId: string, proof: string[], root: string): boolean {
  if (!isHexString(deviceId, 32)) return false;
  return verifySortedProof(cohortLeaf(deviceId), proof, root, MAX_COHORT_PROOF_LENGTH);
}

/** The evidence a device brings to StagedRollout.check: abi.encode(uint256 waveIndex, bytes32[] proof). */
export function encodeRolloutEvidence(waveIndex: number | bigint, proof: string[]): string {
  if (typeof waveIndex === "number" && !Number.isSafeInteger(waveIndex)) {
    throw new InputError("ROLLOUT_WAVE_INVALID", `wave index ${waveIndex} must be a whole number`);
  }
  if (BigInt(waveIndex) < 0n) throw new InputError("ROLLOUT_WAVE_INVALID", `wave index ${waveIndex} must not be negative`);
  return coder.encode(["uint256", "bytes32[]"], [waveIndex, checkedProof(proof, "a cohort proof")]);
}

/**
 * The evidence a device brings to a policy that checks it is on a list of devices (an allowlist,
 * contracts/examples/AllowlistSoakPolicy.sol; the kit's UpdatePolicyBase._deviceListed):
 * abi.encode(bytes32[] proof) in the same tree as a cohort's.
 */
export function encodeListedEvidence(proof: string[]): string {
  return coder.encode(["bytes32[]"], [checkedProof(proof, "a device list proof")]);
}

/** A proof the contracts take: at most MAX_COHORT_PROOF_LENGTH siblings of 32 bytes (COHORT_PROOF_INVALID otherwise). */
function checkedProof(proof: string[], what: string): string[] {
  if (proof.length > MAX_COHORT_PROOF_LENGTH || !proof.every((p) => isHexString(p, 32))) {
    throw new InputError("COHORT_PROOF_INVALID", `${what} is at most ${MAX_COHORT_PROOF_LENGTH} 32-byte hex values`);
  }
  return proof;
}
