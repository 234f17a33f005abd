import { concat, getBytes, isHexString, keccak256 } from "ethers";
import { MerkleTree } from "merkletreejs";

/**
 * The one Merkle scheme for proofs checked on-chain with OpenZeppelin's MerkleProof: keccak256,
 * sorted pairs, leaves already double-hashed by their owner (device batches, rollout cohorts,
 * status anchors), so no leaf can be mistaken for an inner node. Built with merkletreejs.
 */

/** The root of these leaves (32-byte hex) and the proof of each, in the order given. */
export function buildSortedTree(leaves: string[]): { root: string; proofs: string[][] } {
  const buffers = leaves.map((l) => Buffer.from(getBytes(l)));
  const tree = new MerkleTree(buffers, keccak256Buffer, { sortPairs: true });
  return { root: tree.getHexRoot(), proofs: buffers.map((leaf, i) => tree.getHexProof(leaf, i)) };
}

/** Whether `proof` leads from `leaf` to `root`, as MerkleProof.verify does on-chain. Malformed proofs are false. */
export function verifySortedProof(leaf: string, proof: string[], root: string, maxLength = 64): boolean {
  if (!Array.isArray(proof) || proof.length > maxLength || !proof.every((p) => isHexString(p, 32))) return false;
  let hash = leaf.toLowerCase();
  for (const sibling of proof) {
    const [a, b] = [hash, sibling.toLowerCase()].sort();
    hash = keccak256(concat([a, b])).toLowerCase();
  }
  return hash === root.toLowerCase();
}

function keccak256Buffer(data: Buffer): Buffer {
  return Buffer.from(getBytes(keccak256(data)));
}
