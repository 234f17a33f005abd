import { createHash } from "node:crypto";
import { getBytes, isHexString, keccak256 } from "ethers";
import { MerkleTree } from "merkletreejs/MerkleTree";

/**
 * The Merkle trees of OTA Ledger, all of them built here (merkletreejs) and all their proofs
 * checked here, written once (ARCHITECTURE: one scheme, tested on both sides). Two kinds:
 *
 * Sorted-pair trees: device batches (deviceTree.ts), rollout cohorts and device lists
 * (cohortTree.ts), status anchors (statusTree.ts; the tracker builds the same tree chunk by
 * chunk, agent/tracker/statusAnchoring.ts). keccak256, the two children of a node sorted before
 * they are hashed: OpenZeppelin's MerkleProof, which checks these proofs on-chain (FleetRegistry,
 * StagedRollout, UpdatePolicyBase, StatusAnchors). Their leaves are keccak256(keccak256(abi.encode(
 * ...))), OpenZeppelin StandardMerkleTree's leaf: never a 64-byte preimage, so no leaf can be
 * passed off as an inner node.
 *
 * Positional trees: an artifact's chunks (chunkMerkle.ts). SHA-256, children in position order, a
 * proof naming each sibling's side; the leaves are hashed twice by their owner (chunkLeaf.ts).
 * Checked by devices, never on-chain.
 *
 * In both, the leaves stay in the order given and a node left without a sibling at the end of a
 * level is carried up unchanged (merkletreejs's default). So the nodes k levels above the leaves
 * are the roots of the aligned runs of 2^k leaves, each as a tree of its own: the tracker anchors
 * a fleet chunk by chunk on that.
 */

// ---------------------------------------------------------------------------- sorted pairs (keccak256)

/** keccak256 of these bytes, as bytes. */
export function keccak256Bytes(data: Uint8Array): Buffer {
  return Buffer.from(keccak256(data).slice(2), "hex");
}

/** The parent of two nodes in a sorted-pair tree: keccak256 of both, the smaller first (OpenZeppelin's commutative hash). */
export function hashSortedPair(a: Uint8Array, b: Uint8Array): Buffer {
  return keccak256Bytes(Buffer.compare(a, b) <= 0 ? Buffer.concat([a, b]) : Buffer.concat([b, a]));
}

/** A sorted-pair tree over 32-byte leaves already hashed by their owner, in the order given. */
export class SortedMerkleTree {
  private readonly tree: MerkleTree;

  constructor(leaves: readonly Uint8Array[]) {
    if (leaves.length === 0) throw new RangeError("a Merkle tree needs at least one leaf");
    this.tree = new MerkleTree([...leaves], keccak256Bytes, { sortPairs: true });
  }

  static fromHex(leaves: readonly string[]): SortedMerkleTree {
    return new SortedMerkleTree(leaves.map((l) => getBytes(l)));
  }

  get root(): Buffer {
    return this.tree.getRoot();
  }

  /** The siblings from leaf `index` up to the root, as MerkleProof.verify takes them (none where the node was carried up). */
  proof(index: number): Buffer[] {
    return this.tree.getProof(leafAt(this.tree, index), index).map((p) => p.data);
  }
}

/** The root of these hex leaves and the proof of each, in the order given, as hex. */
export function buildSortedTree(leaves: readonly string[]): { root: string; proofs: string[][] } {
  const tree = SortedMerkleTree.fromHex(leaves);
  return { root: hex(tree.root), proofs: leaves.map((_, i) => tree.proof(i).map(hex)) };
}

/**
 * Whether `proof` leads from `leaf` to `root` in a sorted-pair tree, as MerkleProof.verify does
 * on-chain. Malformed input (a proof that is not an array of at most `maxLength` 32-byte hex
 * values, a leaf that is not one) is false.
 */
export function verifySortedProof(leaf: string, proof: readonly string[], root: string, maxLength = 64): boolean {
  if (!isHexString(leaf, 32) || !Array.isArray(proof) || proof.length > maxLength || !proof.every((p) => isHexString(p, 32))) return false;
  let node = hexBytes(leaf);
  for (const sibling of proof) node = hashSortedPair(node, hexBytes(sibling));
  return hex(node) === root.toLowerCase();
}

// ---------------------------------------------------------------------------- positional (SHA-256)

/** The proof of a leaf in a positional tree: each sibling from the leaf up, with its side. */
export type PositionalProof = { position: "left" | "right"; hash: string }[];

/** A positional tree over 32-byte hex leaves already hashed by their owner, in the order given. */
export class PositionalMerkleTree {
  private readonly tree: MerkleTree;
  readonly leaves: string[];

  constructor(leaves: string[]) {
    if (leaves.length === 0) throw new RangeError("a Merkle tree needs at least one leaf");
    this.leaves = leaves;
    this.tree = new MerkleTree(
      leaves.map((l) => getBytes(l)),
      sha256,
      { sortPairs: false },
    );
  }

  get root(): string {
    return this.tree.getHexRoot();
  }

  /** The sibling hashes from leaf `index` up to the root, with their side. */
  proof(index: number): PositionalProof {
    return this.tree.getProof(leafAt(this.tree, index), index).map((p) => ({ position: p.position, hash: hex(p.data) }));
  }
}

/** Whether `proof` leads from `leaf` to `root` in a positional tree. Malformed input is false. */
export function verifyPositionalProof(leaf: string, proof: PositionalProof, root: string, maxLength = 64): boolean {
  if (!isHexString(leaf, 32) || !Array.isArray(proof) || proof.length > maxLength) return false;
  let node = hexBytes(leaf);
  for (const step of proof) {
    if (!isHexString(step?.hash, 32) || (step.position !== "left" && step.position !== "right")) return false;
    const sibling = hexBytes(step.hash);
    node = step.position === "left" ? sha256(Buffer.concat([sibling, node])) : sha256(Buffer.concat([node, sibling]));
  }
  return hex(node) === root.toLowerCase();
}

// ---------------------------------------------------------------------------- bytes

function sha256(data: Uint8Array): Buffer {
  return createHash("sha256").update(data).digest();
}

function leafAt(tree: MerkleTree, index: number): Buffer {
  const leaf = Number.isInteger(index) ? tree.getLeaf(index) : undefined;
  if (!leaf || leaf.length === 0) throw new RangeError(`no leaf ${index} in a tree of ${tree.getLeafCount()}`);
  return leaf;
}

/** Hex already checked with isHexString (leaves a caller gives are read with ethers' getBytes, which throws on anything else). */
const hexBytes = (h: string): Buffer => Buffer.from(h.slice(2), "hex");
const hex = (b: Buffer): string => "0x" + b.toString("hex");
