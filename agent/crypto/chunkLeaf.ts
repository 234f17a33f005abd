import { createHash } from "node:crypto";

/**
 * The leaf of stored chunk `index` in the Table II-1 Merkle tree (chunkMerkle.ts explains the
 * scheme): sha256(sha256(uint32 index || chunk)). Kept apart, with no other imports, so that the
 * hashing worker thread starts fast.
 */
export function chunkLeaf(index: number, chunk: Uint8Array): string {
  return chunkLeafOfParts(index, [chunk]);
}

/** chunkLeaf of the chunk made of `parts` in order, without joining them (the bytes as they arrived). */
export function chunkLeafOfParts(index: number, parts: readonly Uint8Array[]): string {
  const position = Buffer.alloc(4);
  position.writeUInt32BE(index);
  const inner = createHash("sha256").update(position);
  for (const part of parts) inner.update(part);
  return "0x" + createHash("sha256").update(inner.digest()).digest("hex");
}
