import { createHash } from "node:crypto";
import { encryptArtifact, DEFAULT_CIPHER_CHUNK_SIZE } from "../crypto/artifactCipher";
import { ChunkMerkleTree, chunkLeaf } from "../crypto/chunkMerkle";
import { computeCid } from "../storage/cid";

/** The Table II-1 fields the author's packaging yields for one image. */
export interface PackagedArtifact {
  fileHash: string; // SHA-256 of the plaintext image
  merkleRoot: string; // over the stored chunks (header, then each sealed chunk)
  fileLink: string; // IPFS CID of the stored artifact
  artifactSize: bigint;
}

/**
 * Packages an image in one streaming pass (REQ-10f-i): hashes the plaintext, encrypts it with the
 * release's content key, builds the chunk Merkle root over the stored chunks and computes the
 * artifact's CID. Each stored chunk is also handed to `sink` (an upload, a file), if given.
 * Memory: one chunk plus one 32-byte leaf per chunk.
 */
export async function packageArtifact(
  contentKey: Uint8Array,
  image: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  {
    plaintextSize,
    chunkSize = DEFAULT_CIPHER_CHUNK_SIZE,
    sink,
  }: { plaintextSize: bigint; chunkSize?: number; sink?: (storedChunk: Buffer) => Promise<void> | void },
): Promise<PackagedArtifact> {
  const plainHash = createHash("sha256");
  const leaves: string[] = [];
  let artifactSize = 0n;
  async function* hashed() {
    for await (const piece of image) {
      plainHash.update(piece);
      yield piece;
    }
  }
  async function* stored() {
    for await (const chunk of encryptArtifact(contentKey, hashed(), { plaintextSize, chunkSize })) {
      leaves.push(chunkLeaf(leaves.length, chunk));
      artifactSize += BigInt(chunk.length);
      if (sink) await sink(chunk);
      yield chunk;
    }
  }
  const fileLink = await computeCid(stored());
  return {
    fileHash: "0x" + plainHash.digest("hex"),
    merkleRoot: new ChunkMerkleTree(leaves).root,
    fileLink,
    artifactSize,
  };
}
