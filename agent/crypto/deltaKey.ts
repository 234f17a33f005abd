import { hkdfSync } from "node:crypto";
import { getBytes } from "ethers";

/**
 * The key a release's delta from `fromReleaseId` is encrypted with (ADR 0018): derived from the
 * release's content key with HKDF-SHA-256, salted with the release id and bound to the base. A
 * device entitled to the release opens its deltas with the wrapped key it already gets (no grant
 * more), and no two artifacts share a key, so no AES-GCM nonce is ever used twice under one key.
 */
export function deltaContentKey(contentKey: Uint8Array, releaseId: string, fromReleaseId: string): Buffer {
  const info = Buffer.concat([Buffer.from("OTA Ledger delta key v1", "ascii"), getBytes(fromReleaseId)]);
  return Buffer.from(hkdfSync("sha256", contentKey, getBytes(releaseId), info, 32));
}
