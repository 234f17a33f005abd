/**
 * Throughput of the artifact pipeline beside this CPU's OpenSSL ceiling, measured in one run.
 *
 *   author: SHA-256 of the plaintext + chunked AES-256-GCM + chunk Merkle root + CID
 *   device: chunk leaves and root re-derived + decryption + SHA-256 of the plaintext
 *
 *   npm run bench:crypto                  256 MiB image
 *   npm run bench:crypto -- --size 64     another size in MiB (or BENCH_SIZE_MIB=64)
 *   npm run bench:crypto -- --json        (or BENCH_JSON=1)
 *
 * The image is generated and consumed as a stream, so peak memory should not grow with its size.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { decryptArtifact, splitStoredChunks, newContentKey, DEFAULT_CIPHER_CHUNK_SIZE } from "../agent/crypto/artifactCipher";
import { packageArtifact } from "../agent/author/packageArtifact";
import { ChunkMerkleTree, chunkLeaf } from "../agent/crypto/chunkMerkle";
import { opensslMBps, peakRssMiB } from "./lib/measure";

const MiB = 1024 * 1024;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** A deterministic-length stream of pseudo-random 1 MiB pieces (one random block reused, tweaked). */
function* image(size: number): Generator<Buffer> {
  const block = randomBytes(MiB);
  for (let offset = 0, n = 0; offset < size; offset += MiB, n++) {
    block.writeUInt32BE(n, 0);
    yield block.subarray(0, Math.min(MiB, size - offset));
  }
}

async function main() {
  const json = process.argv.includes("--json") || process.env.BENCH_JSON === "1";
  const size = arg("--size", Number(process.env.BENCH_SIZE_MIB ?? 256)) * MiB;
  const key = newContentKey();

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "ota-bench-"));
  const file = path.join(dir, "artifact.bin");
  const baseline = peakRssMiB();

  // Author side (agent/author/packageArtifact): plaintext hash, encryption, chunk leaves and root,
  // and the artifact's CID, in one pass, the stored chunks written to disk as a store would.
  const out = await fs.open(file, "w");
  let t = process.hrtime.bigint();
  const packaged = await packageArtifact(key, image(size), {
    plaintextSize: BigInt(size),
    sink: async (chunk) => {
      await out.write(chunk);
    },
  });
  await out.close();
  const authorSeconds = Number(process.hrtime.bigint() - t) / 1e9;
  const authorPeak = peakRssMiB();

  // Device side: read the stored artifact back in pieces that do not line up with chunks, take
  // each stored chunk's leaf as it arrives, decrypt and hash; then the leaves must give the root
  // and the plaintext the file hash.
  const deviceLeaves: string[] = [];
  const deviceHash = createHash("sha256");
  const arriving = async function* () {
    for await (const stored of splitStoredChunks(createReadStream(file, { highWaterMark: 1_000_000 }))) {
      deviceLeaves.push(chunkLeaf(deviceLeaves.length, stored));
      yield stored;
    }
  };
  t = process.hrtime.bigint();
  for await (const plain of decryptArtifact(key, arriving())) deviceHash.update(plain);
  const deviceSeconds = Number(process.hrtime.bigint() - t) / 1e9;
  const ok = "0x" + deviceHash.digest("hex") === packaged.fileHash && new ChunkMerkleTree(deviceLeaves).root === packaged.merkleRoot;
  await fs.rm(dir, { recursive: true, force: true });
  if (!ok) throw new Error("the device side did not reproduce the root and the file hash");

  const aes = opensslMBps("aes-256-gcm");
  const sha = opensslMBps("sha256");
  // Per byte, the device does one AES-GCM and two SHA-256 passes (chunk leaf, file hash); the
  // author one more SHA-256 pass (the CID's blocks).
  const ceiling = (shaPasses: number) => (aes && sha ? 1 / (1 / aes + shaPasses / sha) : null);
  const deviceCeiling = ceiling(2);
  const authorCeiling = ceiling(3);
  const mbps = (s: number) => size / MiB / s;
  const figures = {
    imageMiB: size / MiB,
    chunkKiB: DEFAULT_CIPHER_CHUNK_SIZE / 1024,
    "author hash+encrypt+root+CID MiB/s": Number(mbps(authorSeconds).toFixed(1)),
    "device leaves+decrypt+hash MiB/s": Number(mbps(deviceSeconds).toFixed(1)),
    "openssl aes-256-gcm MiB/s": aes && Number(aes.toFixed(1)),
    "openssl sha256 MiB/s": sha && Number(sha.toFixed(1)),
    "openssl ceiling for aes + 3 x sha256 (author) MiB/s": authorCeiling && Number(authorCeiling.toFixed(1)),
    "openssl ceiling for aes + 2 x sha256 (device) MiB/s": deviceCeiling && Number(deviceCeiling.toFixed(1)),
    "author / ceiling": authorCeiling && Number((mbps(authorSeconds) / authorCeiling).toFixed(2)),
    "device / ceiling": deviceCeiling && Number((mbps(deviceSeconds) / deviceCeiling).toFixed(2)),
    "peak RSS MiB before the run": baseline,
    "peak RSS MiB after the author phase": authorPeak,
    "peak RSS MiB after the device phase": peakRssMiB(),
  };
  if (json) console.log(JSON.stringify(figures, null, 2));
  else for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(72)} ${v}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
