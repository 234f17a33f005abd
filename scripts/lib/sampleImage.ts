import { createHash } from "node:crypto";
import { ChunkMerkleTree, splitChunks, DEFAULT_CHUNK_SIZE } from "../../agent/crypto/chunkMerkle";

/**
 * Deterministic sample images for the demo, with their real SHA-256, chunk Merkle root and IPFS
 * CID. Until the author's tool (issue 3) encrypts and uploads images, the demo records the
 * plaintext sample's own CID: a CIDv1 raw block (sha2-256), which is what IPFS with raw leaves
 * and 1 MiB chunks gives a file under 1 MiB.
 */
export interface SampleImage {
  bytes: Uint8Array;
  sha256: string;
  merkleRoot: string;
  cid: string;
}

export function sampleImage(label: string, size: number): SampleImage {
  if (size > 1024 * 1024) throw new RangeError("sample images stay under 1 MiB so that they are one raw IPFS block");
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
    cid: rawCidV1(digest),
  };
}

/** CIDv1, codec raw (0x55), multihash sha2-256 (0x12, 32 bytes), multibase base32 ("b"). */
export function rawCidV1(sha256Digest: Buffer): string {
  return "b" + base32(Buffer.concat([Buffer.from([0x01, 0x55, 0x12, 0x20]), sha256Digest]));
}

function base32(data: Buffer): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of data) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}
