import { VerificationError } from "../core/errors";
import { artifactSize, decodeHeader, splitStoredChunks, MIN_SERVED_CHUNK_SIZE } from "../crypto/artifactCipher";
import { ChunkMerkleTree, chunkLeaf } from "../crypto/chunkMerkle";
import type { LedgerRelease } from "../chain/releaseEvents";
import type { ContentStore } from "../storage/contentStore";
import { Refusal } from "./refusals";
import type { AcceptedArtifact } from "./serverDatabase";

/**
 * Screens a submitted artifact against its ledger record (CAP-11.3-a), or against the signed
 * record of a release about to be published (a prepared submission, whose id the server checked
 * hashes from that record), while it streams into the store: the header's plaintext size must be the record's file size, the stream must stop at the
 * size that implies, and the chunk Merkle root and the CID must be the record's. Nothing is pinned
 * or recorded unless every check passes; the caller pins and saves what this returns.
 */
export async function screenSubmission(
  store: ContentStore,
  release: Pick<LedgerRelease, "id" | "record">,
  body: AsyncIterable<Uint8Array>,
  o: { onBlock?: (cid: string) => void } = {}, // told the CID of every block stored: the DAG's block index, or what a refusal deletes
): Promise<{ artifact: Omit<AcceptedArtifact, "state" | "withdrawnReason" | "acceptedAt" | "expiresAt">; leaves: string[] }> {
  const record = release.record;
  let expectedSize: bigint | undefined;
  let chunkSize = 0;
  let received = 0n;
  // Before the header is read the bound is the largest artifact any chunk size could give.
  const bound = () => expectedSize ?? artifactSize(record.fileSize, 1);
  async function* limited() {
    for await (const piece of body) {
      received += BigInt(piece.length);
      if (received > bound()) throw new Refusal("SUBMISSION_SIZE_MISMATCH", `the artifact is longer than the ${bound()} bytes the ledger record implies`);
      yield piece;
    }
  }
  const leaves: string[] = [];
  async function* chunks() {
    for await (const chunk of splitStoredChunks(limited())) {
      if (leaves.length === 0) {
        const header = decodeHeader(chunk);
        // Tiny chunks would cost one leaf (~120 bytes of memory) per few bytes: refuse at once.
        if (header.chunkSize < MIN_SERVED_CHUNK_SIZE) {
          throw new Refusal("SUBMISSION_FORMAT", `the artifact's chunk size is ${header.chunkSize} bytes; this server takes ${MIN_SERVED_CHUNK_SIZE} or more`);
        }
        if (header.plaintextSize !== record.fileSize) {
          throw new Refusal("SUBMISSION_SIZE_MISMATCH", `the artifact holds ${header.plaintextSize} plaintext bytes; the ledger records ${record.fileSize}`);
        }
        chunkSize = header.chunkSize;
        expectedSize = artifactSize(record.fileSize, header.chunkSize);
      }
      leaves.push(chunkLeaf(leaves.length, chunk));
      yield chunk;
    }
  }
  let cid: string;
  try {
    cid = await store.add(chunks(), { onBlock: (c) => o.onBlock?.(c) });
  } catch (err) {
    if (err instanceof Refusal) throw err;
    if (err instanceof VerificationError) throw new Refusal("SUBMISSION_FORMAT", err.message, { reason: err.code });
    throw err;
  }
  const merkleRoot = new ChunkMerkleTree(leaves).root;
  if (merkleRoot.toLowerCase() !== record.merkleRoot.toLowerCase()) {
    throw new Refusal("SUBMISSION_MERKLE_MISMATCH", `the artifact's chunk Merkle root is ${merkleRoot}; the ledger records ${record.merkleRoot}`);
  }
  if (cid !== record.fileLink) {
    throw new Refusal("SUBMISSION_CID_MISMATCH", `the artifact's CID is ${cid}; the ledger's file link is ${record.fileLink}`);
  }
  return {
    artifact: {
      releaseId: release.id.toLowerCase(),
      cid,
      merkleRoot: merkleRoot.toLowerCase(),
      artifactSize: received,
      chunkSize,
      providerId: record.provider,
    },
    leaves,
  };
}
