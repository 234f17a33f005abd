import { createHash } from "node:crypto";
import { getBytes } from "ethers";
import { MerkleTree } from "merkletreejs";
import { chunkLeaf } from "./chunkLeaf";

/**
 * The Merkle root of Table II-1: a tree over the stored artifact's chunks (its header, then each
 * sealed chunk: artifactCipher.splitStoredChunks).
 *
 *   leaf(i)  = sha256(sha256(uint32 i || chunk_i))   index-bound, hashed twice
 *   node     = sha256(left || right)                  children in position order
 *
 * Hashing leaves twice means no leaf preimage is ever two 32-byte hashes, so a leaf cannot be
 * passed off as an inner node; binding the index stops a chunk from being proved at another
 * position. Pairs are not sorted: a proof carries the position, so the order of chunks is part
 * of what the root commits to. An odd node is promoted to the next level unchanged.
 * SHA-256 rather than keccak256: these proofs are checked by devices, never on-chain, and SHA-256
 * runs natively (and in hardware on many MCUs) at image-hashing speed.
 */

export { chunkLeaf };

export class ChunkMerkleTree {
  private readonly tree: MerkleTree;
  readonly leaves: string[];

  constructor(leaves: string[]) {
    if (leaves.length === 0) throw new RangeError("a chunk Merkle tree needs at least one chunk");
    this.leaves = leaves;
    this.tree = new MerkleTree(
      leaves.map((l) => Buffer.from(getBytes(l))),
      hashBuffer,
      { sortPairs: false },
    );
  }

  static fromChunks(chunks: Uint8Array[]): ChunkMerkleTree {
    return new ChunkMerkleTree(chunks.map((c, i) => chunkLeaf(i, c)));
  }

  get root(): string {
    return this.tree.getHexRoot();
  }

  /** The sibling hashes from chunk `index` up to the root, with their side. */
  proof(index: number): { position: "left" | "right"; hash: string }[] {
    return this.tree.getProof(Buffer.from(getBytes(this.leaves[index])), index).map((p) => ({
      position: p.position,
      hash: "0x" + p.data.toString("hex"),
    }));
  }
}

/** Whether `chunk` is chunk `index` of the artifact whose root is `root`, given its proof. */
export function verifyChunk(root: string, index: number, chunk: Uint8Array, proof: { position: "left" | "right"; hash: string }[]): boolean {
  let node = chunkLeaf(index, chunk);
  for (const step of proof) node = step.position === "left" ? sha256Hex(step.hash, node) : sha256Hex(node, step.hash);
  return node.toLowerCase() === root.toLowerCase();
}

function hashBuffer(data: Buffer): Buffer {
  return createHash("sha256").update(data).digest();
}

function sha256Hex(left: string, right: string): string {
  return "0x" + createHash("sha256").update(getBytes(left)).update(getBytes(right)).digest("hex");
}
