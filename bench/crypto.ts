/**
 * Throughput of the artifact pipeline beside this CPU's OpenSSL ceiling, measured in one run.
 *
 *   author: SHA-256 of the plaintext + chunked AES-256-GCM encryption + the chunk Merkle root
 *   device: chunk leaves and root re-derived + decryption + SHA-256 of the plaintext
 *
 *   npm run bench:crypto                  256 MiB image
 *   npm run bench:crypto -- --size 64     another size in MiB
 *   npm run bench:crypto -- --json
 *
 * The image is generated and consumed as a stream, so peak memory should not grow with its size.
 */
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { createReadStream, promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { encryptArtifact, decryptArtifact, splitStoredChunks, newContentKey, DEFAULT_CIPHER_CHUNK_SIZE } from "../agent/crypto/artifactCipher";
import { ChunkMerkleTree, chunkLeaf } from "../agent/crypto/chunkMerkle";

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

/** Peak resident memory of this process so far, in MiB. */
const peakRssMiB = () => Math.round((process.resourceUsage().maxRSS * 1024) / MiB);

function opensslMBps(algorithm: string): number | null {
  try {
    const out = execFileSync("openssl", ["speed", "-evp", algorithm, "-seconds", "2", "-bytes", String(DEFAULT_CIPHER_CHUNK_SIZE)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    const line = out.trim().split("\n").pop()!;
    const kBps = Number(line.trim().split(/\s+/).pop()!.replace(/k$/, ""));
    return (kBps * 1000) / MiB;
  } catch {
    return null;
  }
}

async function main() {
  const json = process.argv.includes("--json");
  const size = arg("--size", 256) * MiB;
  const key = newContentKey();

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "ota-bench-"));
  const file = path.join(dir, "artifact.bin");
  const baseline = peakRssMiB();

  // Author side: hash, encrypt, leaves of the stored chunks (header, then each sealed chunk),
  // written to disk as a store would.
  const out = await fs.open(file, "w");
  const leaves: string[] = [];
  const plainHash = createHash("sha256");
  const tee = function* () {
    for (const piece of image(size)) {
      plainHash.update(piece);
      yield piece;
    }
  };
  let t = process.hrtime.bigint();
  for await (const sealed of encryptArtifact(key, tee(), { plaintextSize: BigInt(size) })) {
    leaves.push(chunkLeaf(leaves.length, sealed));
    await out.write(sealed);
  }
  await out.close();
  const root = new ChunkMerkleTree(leaves).root;
  const fileHash = plainHash.digest("hex");
  const authorSeconds = Number(process.hrtime.bigint() - t) / 1e9;
  const authorPeak = peakRssMiB();

  // Device side: read the stored artifact back in pieces that do not line up with chunks, check
  // each stored chunk's leaf against the author's tree as it arrives, decrypt and hash.
  const tree = new ChunkMerkleTree(leaves);
  const deviceHash = createHash("sha256");
  const arriving = async function* () {
    let i = 0;
    for await (const stored of splitStoredChunks(createReadStream(file, { highWaterMark: 1_000_000 }))) {
      if (chunkLeaf(i, stored) !== tree.leaves[i]) throw new Error(`stored chunk ${i} does not match its leaf`);
      i += 1;
      yield stored;
    }
  };
  t = process.hrtime.bigint();
  for await (const plain of decryptArtifact(key, arriving())) deviceHash.update(plain);
  const deviceSeconds = Number(process.hrtime.bigint() - t) / 1e9;
  const ok = deviceHash.digest("hex") === fileHash && tree.root === root;
  await fs.rm(dir, { recursive: true, force: true });
  if (!ok) throw new Error("the device side did not reproduce the root and the file hash");

  const aes = opensslMBps("aes-256-gcm");
  const sha = opensslMBps("sha256");
  // The pipeline does AES-GCM and two SHA-256 passes (file hash and chunk leaves) over each byte.
  const ceiling = aes && sha ? 1 / (1 / aes + 2 / sha) : null;
  const mbps = (s: number) => size / MiB / s;
  const figures = {
    imageMiB: size / MiB,
    chunkKiB: DEFAULT_CIPHER_CHUNK_SIZE / 1024,
    "author encrypt+hash+root MiB/s": Number(mbps(authorSeconds).toFixed(1)),
    "device verify+decrypt+hash MiB/s": Number(mbps(deviceSeconds).toFixed(1)),
    "openssl aes-256-gcm MiB/s": aes && Number(aes.toFixed(1)),
    "openssl sha256 MiB/s": sha && Number(sha.toFixed(1)),
    "openssl ceiling for aes + 2 x sha256 MiB/s": ceiling && Number(ceiling.toFixed(1)),
    "device / ceiling": ceiling && Number((mbps(deviceSeconds) / ceiling).toFixed(2)),
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
