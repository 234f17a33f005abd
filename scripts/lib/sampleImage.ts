import { createHash } from "node:crypto";
import { ChunkMerkleTree, splitChunks, DEFAULT_CHUNK_SIZE } from "../../agent/crypto/chunkMerkle";
import { computeCid } from "../../agent/storage/cid";

/**
 * Deterministic sample images for the demo, with their real SHA-256, chunk Merkle root and IPFS
 * CID (agent/storage/cid.ts). Until the author's tool (issue 3) encrypts and uploads images, the
 * demo records the plaintext sample's own CID and root.
 */
export interface SampleImage {
  bytes: Uint8Array;
  sha256: string;
  merkleRoot: string;
  cid: string;
}

export async function sampleImage(label: string, size: number): Promise<SampleImage> {
  const bytes = new Uint8Array(size);
  for (let offset = 0, counter = 0; offset < size; counter++) {
    const block = createHash("sha256").update(`${label}:${counter}`).digest();
    bytes.set(block.subarray(0, Math.min(block.length, size - offset)), offset);
    offset += block.length;
  }
  const digest = createHash("sha256").update(bytes).digest();
  return {
    bytes,
    sha256: "0x" + digest.toString("hex"),
    merkleRoot: ChunkMerkleTree.fromChunks(splitChunks(bytes, DEFAULT_CHUNK_SIZE)).root,
    cid: await computeCid([bytes]),
  };
}
