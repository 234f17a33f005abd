import { createHash } from "node:crypto";
import { encryptArtifact, DEFAULT_CIPHER_CHUNK_SIZE } from "../crypto/artifactCipher";
import { ChunkMerkleTree } from "../crypto/chunkMerkle";
import { chunkHashingFor } from "./chunkHashingWorker";

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
 * For large images the leaves and the CID are computed on a worker thread, beside the plaintext
 * hash and the encryption here (chunkHashingWorker.ts). Memory: a bounded queue of chunks plus one 32-byte leaf
 * per chunk.
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
  const hasher = chunkHashingFor(plaintextSize);
  let artifactSize = 0n;
  async function* hashed() {
    for await (const piece of image) {
      plainHash.update(piece);
      yield piece;
    }
  }
  try {
    for await (const chunk of encryptArtifact(contentKey, hashed(), { plaintextSize, chunkSize })) {
      artifactSize += BigInt(chunk.length);
      await hasher.push(chunk);
      if (sink) await sink(chunk);
    }
  } catch (err) {
    await hasher.abort();
    throw err;
  }
  const { leaves, cid } = await hasher.finish();
  return {
    fileHash: "0x" + plainHash.digest("hex"),
    merkleRoot: new ChunkMerkleTree(leaves).root,
    fileLink: cid,
    artifactSize,
  };
}
