import { createHash } from "node:crypto";
import { newContentKey } from "../../agent/crypto/artifactCipher";
import { packageArtifact, PackagedArtifact } from "../../agent/author/packageArtifact";

/**
 * Deterministic sample images for the demo, packaged as an author would: encrypted under a fresh
 * content key, with the plaintext's SHA-256 and the stored artifact's chunk Merkle root and CID.
 * The stored artifact and its content key are kept, to be submitted and granted.
 */
export interface SampleImage extends PackagedArtifact {
  bytes: Uint8Array;
  artifact: Buffer;
  contentKey: Buffer;
}

export async function sampleImage(label: string, size: number): Promise<SampleImage> {
  const bytes = new Uint8Array(size);
  for (let offset = 0, counter = 0; offset < size; counter++) {
    const block = createHash("sha256").update(`${label}:${counter}`).digest();
    bytes.set(block.subarray(0, Math.min(block.length, size - offset)), offset);
    offset += block.length;
  }
  const contentKey = newContentKey();
  const stored: Buffer[] = [];
  const packaged = await packageArtifact(contentKey, [bytes], { plaintextSize: BigInt(size), sink: (c) => void stored.push(c) });
  return { bytes, artifact: Buffer.concat(stored), contentKey, ...packaged };
}
