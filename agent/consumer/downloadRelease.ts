import { createHash } from "node:crypto";
import { createReadStream, promises as fs } from "node:fs";
import { VerificationError } from "../core/errors";
import type { InstalledVersion, ReleaseRecord } from "../core/release";
import { chunkCount, decryptArtifact, decodeHeader, storedChunkSpan, ArtifactHeader, artifactSize, HEADER_SIZE } from "../crypto/artifactCipher";
import { ChunkMerkleTree, chunkLeaf } from "../crypto/chunkMerkle";
import { DeviceCredential, encodeDeviceCredential } from "../crypto/deviceCredential";
import { keyWrapContext, unwrapContentKey } from "../crypto/keyWrap";
import { signDeviceRequest } from "../crypto/requestSignature";
import { encodeInstalled } from "../server/entitlement";
import { refusalOf, ServerRefusedError } from "../author/uploadArtifact";

/** Bytes from the server that do not match the ledger record: the download is refused. */
export class DownloadVerificationError extends VerificationError {}

export interface DeviceIdentity {
  privateKey: string;
  credential: DeviceCredential;
}

export interface DownloadOptions {
  serverUrl: string;
  device: DeviceIdentity;
  installed: InstalledVersion[];
  release: { id: string; record: ReleaseRecord }; // from the ledger, never from the server
  artifactFile: string; // verified stored chunks are appended here; a resume starts from it
  timeoutMs?: number;
}

/**
 * Fetches a release's artifact as a device (CAP-11.3-b, CAP-11.4-c): the server is untrusted, so
 * every stored chunk is checked against the ledger's Merkle root as it arrives and only verified
 * chunks are written; the stream is cut at the size the ledger record implies. An interrupted
 * download resumes from the last verified chunk with a Range request. Returns the wrapped key.
 */
export async function downloadArtifact(o: DownloadOptions): Promise<{ wrappedKey: Buffer; header: ArtifactHeader; resumedFrom: number }> {
  const { record } = o.release;
  const manifest = (await signedGet(o, `/v1/releases/${o.release.id.toLowerCase()}/manifest`, "fetching the manifest").then((r) => r.json())) as {
    leaves: string[];
  };
  if (!Array.isArray(manifest.leaves) || manifest.leaves.length < 2 || manifest.leaves.length > 2 ** 32) {
    throw new DownloadVerificationError("MANIFEST_INVALID", "the server's chunk list is malformed");
  }
  if (new ChunkMerkleTree(manifest.leaves).root.toLowerCase() !== record.merkleRoot.toLowerCase()) {
    throw new DownloadVerificationError("MANIFEST_ROOT_MISMATCH", "the server's chunk list does not hash to the ledger's Merkle root");
  }
  const leaves = manifest.leaves;

  // What is already on disk and verified (a previous, interrupted download).
  let have = await readVerifiedPrefix(o.artifactFile, leaves);
  const resumedFrom = have.chunks;
  let header = have.header;
  const out = await fs.open(o.artifactFile, "a");
  try {
    await out.truncate(have.bytes);
    while (!header || have.chunks < leaves.length) {
      const offset = have.bytes;
      const res = await signedGet(o, `/v1/releases/${o.release.id.toLowerCase()}/artifact`, "fetching the artifact", offset > 0 ? { range: `bytes=${offset}-` } : {});
      if (offset > 0 && res.status !== 206) throw new DownloadVerificationError("RANGE_IGNORED", "the server ignored the resume range");
      let buffer = Buffer.alloc(0);
      const reader = res.body!.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buffer = buffer.length ? Buffer.concat([buffer, value]) : Buffer.from(value);
          for (;;) {
            const j = have.chunks;
            if (header && j >= leaves.length) {
              if (buffer.length > 0) throw new DownloadVerificationError("ARTIFACT_TOO_LONG", `the server sent bytes past the ${artifactSize(record.fileSize, header.chunkSize)}-byte artifact; stopped there`);
              break;
            }
            const size = header ? storedChunkSpan(header, j).size : HEADER_SIZE;
            if (buffer.length < size) break;
            const chunk = buffer.subarray(0, size);
            if (chunkLeaf(j, chunk).toLowerCase() !== leaves[j].toLowerCase()) {
              throw new DownloadVerificationError("CHUNK_MISMATCH", `chunk ${j} does not match the ledger's Merkle root: the server altered, moved or swapped it`, { details: { chunk: j } });
            }
            if (j === 0) header = checkHeader(chunk, record, leaves.length);
            await out.write(chunk);
            have = { ...have, chunks: j + 1, bytes: have.bytes + size };
            buffer = Buffer.from(buffer.subarray(size));
          }
          if (header && have.chunks >= leaves.length) {
            // Complete: anything more from the server is refused, and never written.
            if (buffer.length > 0 || !(await reader.read()).done) {
              throw new DownloadVerificationError("ARTIFACT_TOO_LONG", `the server sent bytes past the ${have.bytes}-byte artifact; stopped there`);
            }
            break;
          }
        }
      } finally {
        await reader.cancel().catch(() => {});
      }
      if (!header || have.chunks < leaves.length) {
        if (have.bytes === offset) throw new DownloadVerificationError("ARTIFACT_TRUNCATED", `the server's artifact ended after ${have.chunks} of ${leaves.length} chunks`);
      }
    }
    await out.sync();
  } finally {
    await out.close();
  }
  const keyAnswer = (await signedGet(o, `/v1/releases/${o.release.id.toLowerCase()}/key`, "fetching the wrapped key").then((r) => r.json())) as { wrappedKey: string };
  return { wrappedKey: Buffer.from(String(keyAnswer.wrappedKey).replace(/^0x/, ""), "hex"), header: header!, resumedFrom };
}

/**
 * Unwraps the device's content key and decrypts the verified artifact chunk by chunk; the
 * plaintext's SHA-256 must be the ledger's file hash. Writes the image to `imageFile`.
 */
export async function decryptDownloaded(
  o: { device: DeviceIdentity; release: { id: string; record: ReleaseRecord }; artifactFile: string; imageFile: string; wrappedKey: Uint8Array },
): Promise<{ fileHash: string; size: bigint }> {
  const key = unwrapContentKey(o.wrappedKey, Buffer.from(o.device.privateKey.replace(/^0x/, ""), "hex"), keyWrapContext(o.release.id, o.device.credential.record.id));
  const hash = createHash("sha256");
  let size = 0n;
  const out = await fs.open(o.imageFile, "w");
  try {
    for await (const plain of decryptArtifact(key, createReadStream(o.artifactFile, { highWaterMark: 1024 * 1024 }))) {
      hash.update(plain);
      size += BigInt(plain.length);
      await out.write(plain);
    }
    await out.sync();
  } finally {
    await out.close();
  }
  const fileHash = "0x" + hash.digest("hex");
  if (fileHash !== o.release.record.fileHash.toLowerCase() || size !== o.release.record.fileSize) {
    await fs.rm(o.imageFile, { force: true });
    throw new DownloadVerificationError("FILE_HASH_MISMATCH", `the decrypted image hashes to ${fileHash}; the ledger records ${o.release.record.fileHash}`);
  }
  return { fileHash, size };
}

function checkHeader(bytes: Uint8Array, record: ReleaseRecord, leafCount: number): ArtifactHeader {
  const h = decodeHeader(bytes);
  if (h.plaintextSize !== record.fileSize) throw new DownloadVerificationError("ARTIFACT_SIZE_MISMATCH", `the artifact declares ${h.plaintextSize} bytes; the ledger records ${record.fileSize}`);
  if (chunkCount(h.plaintextSize, h.chunkSize) + 1 !== leafCount) throw new DownloadVerificationError("MANIFEST_INVALID", "the chunk count does not match the artifact header");
  return h;
}

/** How much of a previous, interrupted download is on disk and still verifies (read one chunk at a time). */
async function readVerifiedPrefix(file: string, leaves: string[]): Promise<{ chunks: number; bytes: number; header?: ArtifactHeader }> {
  let handle;
  try {
    handle = await fs.open(file, "r");
  } catch {
    return { chunks: 0, bytes: 0 };
  }
  try {
    const read = async (offset: number, size: number): Promise<Buffer | undefined> => {
      const b = Buffer.alloc(size);
      const { bytesRead } = await handle.read(b, 0, size, offset);
      return bytesRead === size ? b : undefined;
    };
    const headerBytes = await read(0, HEADER_SIZE);
    if (!headerBytes || chunkLeaf(0, headerBytes).toLowerCase() !== leaves[0].toLowerCase()) return { chunks: 0, bytes: 0 };
    const header = decodeHeader(headerBytes);
    let j = 1;
    let bytes = HEADER_SIZE;
    while (j < leaves.length) {
      const { size } = storedChunkSpan(header, j);
      const chunk = await read(bytes, size);
      if (!chunk || chunkLeaf(j, chunk).toLowerCase() !== leaves[j].toLowerCase()) break;
      bytes += size;
      j++;
    }
    return { chunks: j, bytes, header };
  } finally {
    await handle.close();
  }
}

async function signedGet(o: DownloadOptions, path: string, what: string, extra: Record<string, string> = {}): Promise<Response> {
  const headers = signDeviceRequest(o.device.privateKey, o.device.credential.record.id, encodeDeviceCredential(o.device.credential), {
    method: "GET",
    path,
    context: encodeInstalled(o.installed),
  });
  let res: Response;
  try {
    res = await fetch(new URL(path, o.serverUrl), { headers: { ...headers, ...extra }, signal: AbortSignal.timeout(o.timeoutMs ?? 30_000) });
  } catch (cause) {
    throw new ServerRefusedError("SERVER_UNREACHABLE", `${what}: no answer from ${o.serverUrl}`, 0, { cause: String(cause) });
  }
  if (!res.ok) throw await refusalOf(res, what);
  return res;
}

