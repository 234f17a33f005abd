import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { OtaError } from "../core/errors";
import { ContentRejected, DownloadRejected } from "../core/updateErrors";
import type { InstalledVersion, ReleaseRecord } from "../core/release";
import {
  chunkCount,
  decryptArtifact,
  decodeHeader,
  storedChunkSpan,
  ArtifactHeader,
  artifactSize,
  HEADER_SIZE,
  MIN_SERVED_CHUNK_SIZE,
  readArtifactFile,
} from "../crypto/artifactCipher";
import { ChunkMerkleTree, chunkLeaf } from "../crypto/chunkMerkle";
import { chunkLeafOfParts } from "../crypto/chunkLeaf";
import { DeviceCredential, encodeDeviceCredential } from "../crypto/deviceCredential";
import { keyWrapContext, unwrapContentKey } from "../crypto/keyWrap";
import { signDeviceRequest } from "../crypto/requestSignature";
import { encodeInstalled } from "../core/installedContext";
import { refusalOf, ServerRefusedError } from "../net/serverAnswer";
import { AnswerTooLargeError, readBoundedBody } from "../net/boundedBody";
import type { ServerClock } from "./serverClock";

const DEFAULT_IDLE_MS = 30_000;

export interface DeviceIdentity {
  privateKey: string;
  credential: DeviceCredential;
}

export interface DownloadOptions {
  serverUrl: string;
  device: DeviceIdentity;
  installed: InstalledVersion[];
  evidence?: string; // for the release's update policy (e.g. a cohort proof), sent in the signed context
  release: { id: string; record: ReleaseRecord }; // from the ledger, never from the server
  artifactFile: string; // verified stored chunks are appended here; a resume starts from it
  timeoutMs?: number; // longest silence from the server (ms)
  onChunk?: (index: number) => void; // each stored chunk verified, in order (the prefix kept from before included)
  /** Where the manifest and artifact are asked for (default `/v1/releases/<id>`; a delta's: `.../deltas/<base id>`); the key is always the release's. */
  basePath?: string;
  /** The time requests to this server are signed with (its clock correction, serverClock.ts); default the device's clock. */
  clock?: Pick<ServerClock, "now" | "correctFrom">;
}

/**
 * Fetches a release's artifact as a device (CAP-11.3-b, CAP-11.4-c): the server is untrusted, so
 * every stored chunk is checked against the ledger's Merkle root as it arrives and only verified
 * chunks are written; the stream is cut at the size the ledger record implies. An interrupted
 * download resumes from the last verified chunk with a Range request. Returns the wrapped key.
 */
export async function downloadArtifact(o: DownloadOptions): Promise<{ wrappedKey: Buffer; header: ArtifactHeader; resumedFrom: number }> {
  const idle = new IdleTimeout(o.timeoutMs ?? DEFAULT_IDLE_MS);
  try {
    return await fetchVerified(o, idle);
  } finally {
    idle.clear();
  }
}

async function fetchVerified(o: DownloadOptions, idle: IdleTimeout): Promise<{ wrappedKey: Buffer; header: ArtifactHeader; resumedFrom: number }> {
  const leaves = await leavesOf(o, idle);
  const sink = await VerifiedArtifact.open(o.artifactFile, o.release.record, leaves, o.onChunk);
  try {
    while (!sink.complete) {
      const offset = sink.bytes;
      const res = await signedGet(
        o,
        `${o.basePath ?? `/v1/releases/${o.release.id.toLowerCase()}`}/artifact`,
        "fetching the artifact",
        idle,
        offset > 0 ? { range: `bytes=${offset}-` } : {},
      );
      // A server or proxy may ignore the range (RFC 9110 14.2) and send the whole artifact: the
      // verified prefix is skipped in it, else a kept prefix would block the download for good.
      let skip = 0;
      if (offset > 0 && res.status !== 206) {
        if (res.status !== 200) {
          await res.body?.cancel().catch(() => {});
          throw new DownloadRejected("RANGE_IGNORED", `the server answered the resume range with ${res.status}`);
        }
        skip = offset;
      }
      const reader = res.body!.getReader();
      try {
        for (;;) {
          const { done, value } = await readIdle(reader, idle, "fetching the artifact");
          if (done) break;
          const n = Math.min(skip, value.length);
          skip -= n;
          if (n === value.length) continue;
          await sink.push(n === 0 ? value : value.subarray(n));
          if (sink.complete) {
            // Complete: anything more from the server is refused, and never written.
            if (!(await readIdle(reader, idle, "fetching the artifact")).done) sink.tooLong();
            break;
          }
        }
      } finally {
        await reader.cancel().catch(() => {});
      }
      sink.dropPartial();
      if (!sink.complete && sink.bytes === offset)
        throw new DownloadRejected("ARTIFACT_TRUNCATED", `the server's artifact ended after ${sink.chunks} of ${leaves.length} chunks`);
    }
    await sink.finish();
  } finally {
    await sink.close();
  }
  return { wrappedKey: await wrappedKeyOf(o, idle), header: sink.header!, resumedFrom: sink.resumedFrom };
}

/**
 * The release's chunk leaves from a firmware server's manifest, checked against the ledger's
 * Merkle root: once they hash to it, any server's copy is as good as any other's.
 */
export async function fetchLeaves(o: Omit<DownloadOptions, "artifactFile" | "onChunk">): Promise<string[]> {
  const idle = new IdleTimeout(o.timeoutMs ?? DEFAULT_IDLE_MS);
  try {
    return await leavesOf(o, idle);
  } finally {
    idle.clear();
  }
}

async function leavesOf(o: Omit<DownloadOptions, "artifactFile" | "onChunk">, idle: IdleTimeout): Promise<string[]> {
  const { record } = o.release;
  // The leaf list is 32 bytes per chunk; the smallest chunk a server accepts bounds its size.
  const maxLeaves = chunkCount(record.fileSize, MIN_SERVED_CHUNK_SIZE) + 1;
  const manifestPath = `${o.basePath ?? `/v1/releases/${o.release.id.toLowerCase()}`}/manifest`;
  const manifest = (await boundedJson(
    await signedGet(o, manifestPath, "fetching the manifest", idle),
    1024 + maxLeaves * 70,
    idle,
    "fetching the manifest",
  )) as {
    leaves: string[];
  } | null;
  if (!manifest || !Array.isArray(manifest.leaves) || manifest.leaves.length < 2 || manifest.leaves.length > maxLeaves) {
    throw new DownloadRejected("MANIFEST_INVALID", "the server's chunk list is malformed");
  }
  if (!manifest.leaves.every((l) => typeof l === "string" && /^0x[0-9a-fA-F]{64}$/.test(l)))
    throw new DownloadRejected("MANIFEST_INVALID", "the server's chunk list holds something other than 32-byte hashes");
  if (new ChunkMerkleTree(manifest.leaves).root.toLowerCase() !== record.merkleRoot.toLowerCase()) {
    throw new DownloadRejected("MANIFEST_ROOT_MISMATCH", "the server's chunk list does not hash to the ledger's Merkle root");
  }
  return manifest.leaves;
}

/**
 * The artifact file being filled: bytes pushed in from any source are cut into stored chunks,
 * each checked against its leaf (the list already checked against the ledger's root) before it
 * is written, so only verified chunks ever reach the disk; nothing past the size the ledger
 * implies is taken. Opening it keeps the verified prefix of an earlier, interrupted download,
 * whatever source that came from.
 */
export class VerifiedArtifact {
  private readonly queue = new ByteQueue();
  /** The write of the last verified chunk, still under way while the next one arrives and is hashed. */
  private writing: Promise<unknown> = Promise.resolve();
  header: ArtifactHeader | undefined;
  chunks: number;
  bytes: number;
  readonly resumedFrom: number;

  private constructor(
    private readonly out: FileHandle,
    private readonly record: ReleaseRecord,
    private readonly leaves: string[],
    private readonly onChunk: ((index: number) => void) | undefined,
    have: { chunks: number; bytes: number; header?: ArtifactHeader },
  ) {
    this.chunks = have.chunks;
    this.bytes = have.bytes;
    this.resumedFrom = have.chunks;
    this.header = have.header && checkHeader(have.header, record, leaves.length);
  }

  static async open(file: string, record: ReleaseRecord, leaves: string[], onChunk?: (index: number) => void): Promise<VerifiedArtifact> {
    // What is already on disk and verified (a previous, interrupted download).
    const have = await readVerifiedPrefix(file, leaves);
    const out = await fs.open(file, "a");
    try {
      await out.truncate(have.bytes);
      const sink = new VerifiedArtifact(out, record, leaves, onChunk, have);
      for (let j = 0; j < have.chunks; j++) onChunk?.(j);
      return sink;
    } catch (err) {
      await out.close();
      throw err;
    }
  }

  get complete(): boolean {
    return this.header !== undefined && this.chunks >= this.leaves.length;
  }

  /** Where the next pushed byte sits in the artifact: the verified bytes and those of a chunk not whole yet. */
  get position(): number {
    return this.bytes + this.queue.length;
  }

  /** The artifact's size, once its header is verified. */
  get size(): number | undefined {
    return this.header && Number(artifactSize(this.record.fileSize, this.header.chunkSize));
  }

  /** Bytes that continue the artifact at `bytes`: every whole chunk among them is verified and written. */
  async push(piece: Uint8Array): Promise<void> {
    if (piece.length === 0) return;
    if (this.complete) this.tooLong();
    this.queue.push(piece);
    for (;;) {
      const j = this.chunks;
      if (this.header && j >= this.leaves.length) {
        if (this.queue.length > 0) this.tooLong();
        return;
      }
      const size = this.header ? storedChunkSpan(this.header, j).size : HEADER_SIZE;
      if (this.queue.length < size) return;
      // The chunk as the pieces it arrived in: hashed and written without being joined (no copy).
      const parts = this.queue.takeParts(size);
      if (chunkLeafOfParts(j, parts).toLowerCase() !== this.leaves[j].toLowerCase()) {
        throw new DownloadRejected("CHUNK_MISMATCH", `chunk ${j} does not match the ledger's Merkle root: the server altered, moved or swapped it`, {
          details: { chunk: j },
        });
      }
      if (j === 0) this.header = checkHeader(decodeHeader(Buffer.concat(parts)), this.record, this.leaves.length);
      // One write in flight at a time, in order: the disk works while the next chunk is verified.
      await this.writing;
      this.writing = this.out.writev(parts);
      this.writing.catch(() => {}); // surfaced by the next await of it
      this.onChunk?.(j);
      this.chunks = j + 1;
      this.bytes += size;
    }
  }

  /** Bytes past the end of the artifact: refused, never written. */
  tooLong(): never {
    throw new DownloadRejected("ARTIFACT_TOO_LONG", `the server sent bytes past the ${this.size ?? this.bytes}-byte artifact; stopped there`);
  }

  /** A source's answer ended: bytes of a chunk not whole yet are dropped (the next answer starts at `bytes`). */
  dropPartial(): void {
    if (this.queue.length > 0) this.queue.takeParts(this.queue.length);
  }

  async finish(): Promise<void> {
    await this.writing;
    await this.out.sync();
  }

  async close(): Promise<void> {
    await this.writing.catch(() => {}); // a failed write was thrown by push or finish already
    await this.out.close();
  }
}

/** The device's wrapped content key for the release, from the firmware server. */
export async function fetchWrappedKey(o: Omit<DownloadOptions, "artifactFile" | "onChunk">): Promise<Buffer> {
  const idle = new IdleTimeout(o.timeoutMs ?? DEFAULT_IDLE_MS);
  try {
    return await wrappedKeyOf(o, idle);
  } finally {
    idle.clear();
  }
}

async function wrappedKeyOf(o: Omit<DownloadOptions, "artifactFile" | "onChunk">, idle: IdleTimeout): Promise<Buffer> {
  const keyPath = `/v1/releases/${o.release.id.toLowerCase()}/key`;
  const answer = (await boundedJson(await signedGet(o, keyPath, "fetching the wrapped key", idle), 4096, idle, "fetching the wrapped key")) as {
    wrappedKey?: unknown;
  } | null;
  if (typeof answer?.wrappedKey !== "string" || !/^0x(?:[0-9a-fA-F]{2}){1,1024}$/.test(answer.wrappedKey))
    throw new DownloadRejected("ANSWER_MALFORMED", "fetching the wrapped key: the answer holds no wrapped key in hex");
  return Buffer.from(answer.wrappedKey.slice(2), "hex");
}

/**
 * Unwraps the device's content key and decrypts the verified artifact chunk by chunk; the
 * plaintext's SHA-256 must be the ledger's file hash. Writes the image to `imageFile`.
 */
export async function decryptDownloaded(o: {
  device: DeviceIdentity;
  release: { id: string; record: ReleaseRecord };
  artifactFile: string;
  imageFile: string;
  wrappedKey: Uint8Array;
}): Promise<{ fileHash: string; size: bigint }> {
  const key = unwrapContentKey(
    o.wrappedKey,
    Buffer.from(o.device.privateKey.replace(/^0x/, ""), "hex"),
    keyWrapContext(o.release.id, o.device.credential.record.id),
  );
  const hash = createHash("sha256");
  let size = 0n;
  const out = await fs.open(o.imageFile, "w");
  try {
    for await (const plain of decryptArtifact(key, readArtifactFile(o.artifactFile))) {
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
    throw new ContentRejected("FILE_HASH_MISMATCH", `the decrypted image hashes to ${fileHash}; the ledger records ${o.release.record.fileHash}`);
  }
  return { fileHash, size };
}

function checkHeader(h: ArtifactHeader, record: ReleaseRecord, leafCount: number): ArtifactHeader {
  if (h.plaintextSize !== record.fileSize)
    throw new DownloadRejected("ARTIFACT_SIZE_MISMATCH", `the artifact declares ${h.plaintextSize} bytes; the ledger records ${record.fileSize}`);
  if (chunkCount(h.plaintextSize, h.chunkSize) + 1 !== leafCount)
    throw new DownloadRejected("MANIFEST_INVALID", "the chunk count does not match the artifact header");
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

/**
 * Bytes that must arrive within one timeout for the deadline to move: a slow link that keeps
 * delivering (even 4 KiB in 30 s) completes, and a source that trickles a byte now and then
 * (a slow-retrieval attack) is cut and the next source tried.
 */
const MIN_PROGRESS_BYTES = 4096;

/**
 * A deadline on silence, not on the whole transfer: it is pushed back each time MIN_PROGRESS_BYTES
 * have arrived (or an answer starts), so a slow link that keeps delivering completes, and a
 * stalled or trickling one is cut.
 */
class IdleTimeout {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private sinceTouch = 0;
  constructor(private readonly ms: number) {
    this.touch();
  }
  get signal(): AbortSignal {
    return this.controller.signal;
  }
  get fired(): boolean {
    return this.controller.signal.aborted;
  }
  /** `bytes` more arrived: the deadline moves once they add up to MIN_PROGRESS_BYTES. */
  progress(bytes: number): void {
    this.sinceTouch += bytes;
    if (this.sinceTouch >= MIN_PROGRESS_BYTES) this.touch();
  }
  touch(): void {
    this.sinceTouch = 0;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.controller.abort(), this.ms);
    this.timer.unref();
  }
  clear(): void {
    clearTimeout(this.timer);
  }
}

/** The server stopped sending for longer than the timeout, or could not be reached. */
export class DownloadStalledError extends OtaError {}

async function signedGet(
  o: Pick<DownloadOptions, "serverUrl" | "device" | "installed" | "evidence" | "timeoutMs" | "clock">,
  path: string,
  what: string,
  idle: IdleTimeout,
  extra: Record<string, string> = {},
): Promise<Response> {
  // One more try, at once, when the server refused the device's time and its Date header corrected it.
  for (let attempt = 0; ; attempt++) {
    const headers = signDeviceRequest(o.device.privateKey, o.device.credential.record.id, encodeDeviceCredential(o.device.credential), {
      audience: o.serverUrl,
      method: "GET",
      path,
      context: encodeInstalled(o.installed, o.evidence),
      now: o.clock?.now(),
    });
    let res: Response;
    try {
      res = await fetch(new URL(path, o.serverUrl), { headers: { ...headers, ...extra }, signal: idle.signal });
    } catch (cause) {
      if (idle.fired) throw new DownloadStalledError("DOWNLOAD_STALLED", `${what}: ${o.serverUrl} did not answer within ${o.timeoutMs ?? DEFAULT_IDLE_MS} ms`);
      throw new ServerRefusedError("SERVER_UNREACHABLE", `${what}: no answer from ${o.serverUrl}`, 0, { cause: String(cause) });
    }
    idle.touch();
    if (res.ok) return res;
    const refusal = await refusalOf(res, what, o.serverUrl);
    if (refusal.code === "AUTH_STALE" && attempt === 0 && o.clock?.correctFrom(res)) continue;
    throw refusal;
  }
}

/** A JSON answer of at most `maxBytes` (a lying server cannot make the device buffer more), read under the idle timeout. */
async function boundedJson(res: Response, maxBytes: number, idle: IdleTimeout, what: string): Promise<unknown> {
  let body: Buffer;
  try {
    body = await readBoundedBody(res, maxBytes, what, (reader) => readIdle(reader, idle, what));
  } catch (err) {
    if (err instanceof AnswerTooLargeError) throw new DownloadRejected("ANSWER_TOO_LARGE", err.message, { cause: err });
    throw err;
  }
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw new DownloadRejected("ANSWER_MALFORMED", `${what}: the answer is not JSON`);
  }
}

async function readIdle(reader: ReadableStreamDefaultReader<Uint8Array>, idle: IdleTimeout, what: string) {
  try {
    const r = await reader.read();
    if (r.value) idle.progress(r.value.length);
    return r;
  } catch (cause) {
    if (idle.fired)
      throw new DownloadStalledError(
        "DOWNLOAD_STALLED",
        `${what}: no bytes for longer than the timeout; the next attempt resumes from the last verified chunk`,
        { cause },
      );
    throw new DownloadStalledError("DOWNLOAD_INTERRUPTED", `${what}: the connection broke; the next attempt resumes from the last verified chunk`, { cause });
  }
}

/**
 * Network pieces queued until a whole stored chunk is there: a chunk is handed on as the views of
 * the pieces it arrived in, hashed and written as they are, never copied into one buffer.
 */
class ByteQueue {
  private parts: Uint8Array[] = [];
  length = 0;

  push(piece: Uint8Array): void {
    this.parts.push(piece);
    this.length += piece.length;
  }

  /** The next `size` bytes (size <= length) as the pieces they arrived in (views, not copies). */
  takeParts(size: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let filled = 0;
    while (filled < size) {
      const head = this.parts[0];
      const n = Math.min(head.length, size - filled);
      out.push(n === head.length ? head : head.subarray(0, n));
      filled += n;
      if (n === head.length) this.parts.shift();
      else this.parts[0] = head.subarray(n);
    }
    this.length -= size;
    return out;
  }
}
