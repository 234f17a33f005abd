import { chunkLeaf } from "./chunkLeaf";
import { PositionalMerkleTree, verifyPositionalProof, type PositionalProof } from "./merkle";

/**
 * The Merkle root of Table II-1: a positional tree (merkle.ts) over the stored artifact's chunks
 * (its header, then each sealed chunk: artifactCipher.splitStoredChunks).
 *
 *   leaf(i)  = sha256(sha256(uint32 i || chunk_i))   index-bound, hashed twice (chunkLeaf.ts)
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

export class ChunkMerkleTree extends PositionalMerkleTree {
  constructor(leaves: string[]) {
    if (leaves.length === 0) throw new RangeError("a chunk Merkle tree needs at least one chunk");
    super(leaves);
  }

  static fromChunks(chunks: Uint8Array[]): ChunkMerkleTree {
    return new ChunkMerkleTree(chunks.map((c, i) => chunkLeaf(i, c)));
  }
}

/** Whether `chunk` is chunk `index` of the artifact whose root is `root`, given its proof. */
export function verifyChunk(root: string, index: number, chunk: Uint8Array, proof: PositionalProof): boolean {
  return verifyPositionalProof(chunkLeaf(index, chunk), proof, root);
}
