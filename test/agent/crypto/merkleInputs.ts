import { SigningKey, ZeroHash, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";

/**
 * Deterministic inputs of the fixed Merkle vectors (merkleVectors.json): the vectors were computed
 * from these inputs by the Merkle code as it was before agent/crypto/merkle.ts (commit 800a1a5:
 * sortedMerkle.ts, chunkMerkle.ts, the tracker's own tree in statusRecords.ts), and merkle.test.ts
 * recomputes them with the code of today. Change nothing here: the vectors would no longer match.
 */

/** The tree sizes the vectors cover: the small shapes, powers of two and their neighbours. */
export const VECTOR_SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 255, 256, 257];

/** Sizes of the tracker's chunked status trees (chunks of 1024 leaves): around one and two chunks. */
export const ANCHOR_SIZES = [1, 2, 3, 1023, 1024, 1025, 2047, 2048, 2049, 3001];

const h = (s: string) => keccak256(toUtf8Bytes(s));

export function vectorDeviceId(i: number): string {
  return h(`merkle vector device ${i}`);
}

/** A device record with a real compressed key (buildDeviceBatch checks it is on the curve). */
export function vectorDeviceRecord(i: number) {
  return {
    id: vectorDeviceId(i),
    publicKey: new SigningKey(h(`merkle vector key ${i}`)).compressedPublicKey,
    hardwareClass: 1 + (i % 7),
    network: encodeBytes32String(["north", "south"][i % 2]),
    region: encodeBytes32String(["eu-west", "us-east", "ap-south"][i % 3]),
  };
}

const RELEASES = [0, 1, 2].map((r) => h(`merkle vector release ${r}`));

/** A status record; every fifth device has reported nothing (outcome none, ZeroHash). */
export function vectorStatusRecord(i: number) {
  const none = i % 5 === 4;
  return {
    deviceId: vectorDeviceId(i),
    releaseId: none ? ZeroHash : RELEASES[i % 3],
    version: none ? 0n : BigInt(1_000_000 + (i % 3)),
    outcome: (none ? 0 : 1 + (i % 5)) as 0 | 1 | 2 | 3 | 4 | 5,
    reportCounter: BigInt(i + 1),
    reportedAt: 1_767_225_600 + i,
  };
}

/** The canonical tags JSON of device i in anchor format 2 (null: no tags; every third device). */
export function vectorTags(i: number): string | null {
  return i % 3 === 0 ? null : JSON.stringify([["site", `plant-${i % 4}`]]);
}

/** Stored chunk i of an artifact: deterministic bytes of varying length. */
export function vectorChunk(i: number): Uint8Array {
  const seed = Buffer.from(h(`merkle vector chunk ${i}`).slice(2), "hex");
  return Buffer.concat(Array.from({ length: 1 + (i % 4) }, () => seed));
}
