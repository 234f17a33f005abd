import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import { ArtifactFormatError, AuthenticationError, InputError } from "../core/errors";

/**
 * The stored artifact: an image encrypted by its author in fixed-size chunks (REQ-10f-i,
 * CAP-11.4-b/c), so that an untrusted server or store never sees the plaintext and any change is
 * detected chunk by chunk with bounded memory.
 *
 *   header (24 bytes): "OTAE" | format 1 (u8) | chunk size (u32 BE) | plaintext size (u64 BE) |
 *                      nonce prefix (7 random bytes)
 *   chunk i:           AES-256-GCM(key, nonce_i, plaintext chunk i, aad = header) || tag (16 bytes)
 *   nonce_i:           nonce prefix (7) | i (u32 BE) | 1 if this is the last chunk else 0 (u8)
 *
 * Binding the index and the last-chunk flag into the nonce means a chunk decrypts only at its own
 * position and only the real last chunk can end the stream: reordering, swapping, duplicating and
 * truncating are all detected. The header is authenticated by every chunk. Empty images have one
 * empty last chunk. A fresh random content key is made for each release (newContentKey); the key
 * is never stored in the clear, only wrapped for each device (keyWrap.ts).
 */

export const ARTIFACT_MAGIC = Buffer.from("OTAE", "ascii");
export const ARTIFACT_FORMAT = 1;
export const HEADER_SIZE = 24;
export const TAG_SIZE = 16;
export const DEFAULT_CIPHER_CHUNK_SIZE = 256 * 1024;
/**
 * The smallest chunk size a firmware server accepts and a device expects: below it, the list of
 * chunk leaves (32 bytes per chunk) grows out of proportion to the image. Tests may go lower.
 */
export const MIN_SERVED_CHUNK_SIZE = 4096;
const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
const MAX_CHUNKS = 2 ** 32;

export interface ArtifactHeader {
  chunkSize: number;
  plaintextSize: bigint;
  noncePrefix: Uint8Array;
}

/** A fresh 32-byte AES-256 content key. */
export function newContentKey(): Buffer {
  return randomBytes(32);
}

/** Number of encrypted chunks for an image of `plaintextSize` bytes (at least one). */
export function chunkCount(plaintextSize: bigint, chunkSize: number): number {
  return plaintextSize === 0n ? 1 : Number((plaintextSize + BigInt(chunkSize) - 1n) / BigInt(chunkSize));
}

/** Total artifact size: header plus every chunk with its tag. */
export function artifactSize(plaintextSize: bigint, chunkSize: number): bigint {
  return BigInt(HEADER_SIZE) + plaintextSize + BigInt(chunkCount(plaintextSize, chunkSize) * TAG_SIZE);
}

export function encodeHeader(h: ArtifactHeader): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  ARTIFACT_MAGIC.copy(b, 0);
  b.writeUInt8(ARTIFACT_FORMAT, 4);
  b.writeUInt32BE(h.chunkSize, 5);
  b.writeBigUInt64BE(h.plaintextSize, 9);
  Buffer.from(h.noncePrefix).copy(b, 17);
  return b;
}

export function decodeHeader(bytes: Uint8Array): ArtifactHeader {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < HEADER_SIZE) throw new ArtifactFormatError("ARTIFACT_TRUNCATED", `artifact header is ${b.length} bytes, expected ${HEADER_SIZE}`);
  if (!b.subarray(0, 4).equals(ARTIFACT_MAGIC)) throw new ArtifactFormatError("ARTIFACT_MAGIC", "not an OTA Ledger artifact (bad magic)");
  const format = b.readUInt8(4);
  if (format !== ARTIFACT_FORMAT) throw new ArtifactFormatError("ARTIFACT_FORMAT", `artifact format ${format} is not supported (expected ${ARTIFACT_FORMAT})`);
  const chunkSize = b.readUInt32BE(5);
  if (chunkSize === 0 || chunkSize > MAX_CHUNK_SIZE)
    throw new ArtifactFormatError("ARTIFACT_CHUNK_SIZE", `chunk size ${chunkSize} is outside 1..${MAX_CHUNK_SIZE}`);
  const plaintextSize = b.readBigUInt64BE(9);
  if (chunkCount(plaintextSize, chunkSize) > MAX_CHUNKS) throw new ArtifactFormatError("ARTIFACT_SIZE", "too many chunks for the nonce space");
  return { chunkSize, plaintextSize, noncePrefix: Uint8Array.from(b.subarray(17, HEADER_SIZE)) };
}

function nonce(prefix: Uint8Array, index: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  Buffer.from(prefix).copy(n, 0);
  n.writeUInt32BE(index, 7);
  n.writeUInt8(last ? 1 : 0, 11);
  return n;
}

function checkKey(key: Uint8Array): void {
  if (key.length !== 32) throw new InputError("CONTENT_KEY", `a content key is 32 bytes, got ${key.length}`);
}

/**
 * Encrypts a plaintext stream of exactly `plaintextSize` bytes, yielding the header and then one
 * encrypted chunk at a time (memory: one chunk). Throws if the stream is longer or shorter.
 */
export async function* encryptArtifact(
  key: Uint8Array,
  plaintext: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  { plaintextSize, chunkSize = DEFAULT_CIPHER_CHUNK_SIZE }: { plaintextSize: bigint; chunkSize?: number },
): AsyncGenerator<Buffer> {
  checkKey(key);
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw new InputError("CHUNK_SIZE", `chunk size must be 1..${MAX_CHUNK_SIZE} bytes, got ${chunkSize}`);
  }
  const noncePrefix = randomBytes(7);
  const header = encodeHeader({ chunkSize, plaintextSize, noncePrefix });
  yield header;
  const total = chunkCount(plaintextSize, chunkSize);
  let index = 0;
  let seen = 0n;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const seal = (chunk: Buffer): Buffer => {
    const last = index === total - 1;
    const cipher = createCipheriv("aes-256-gcm", key, nonce(noncePrefix, index, last));
    cipher.setAAD(header);
    const body = cipher.update(chunk);
    cipher.final(); // GCM yields nothing more; the tag follows the body
    const out = Buffer.concat([body, cipher.getAuthTag()]);
    index += 1;
    return out;
  };
  for await (const piece of plaintext) {
    seen += BigInt(piece.length);
    if (seen > plaintextSize) throw new InputError("PLAINTEXT_SIZE", `the image is longer than the declared ${plaintextSize} bytes`);
    let data = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    while (data.length > 0) {
      const take = Math.min(chunkSize - pendingBytes, data.length);
      pending.push(data.subarray(0, take));
      pendingBytes += take;
      data = data.subarray(take);
      if (pendingBytes === chunkSize && index < total - 1) {
        yield seal(pending.length === 1 ? pending[0] : Buffer.concat(pending));
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  if (seen !== plaintextSize) throw new InputError("PLAINTEXT_SIZE", `the image has ${seen} bytes, not the declared ${plaintextSize}`);
  yield seal(Buffer.concat(pending));
}

/**
 * Splits an artifact stream (cut anyhow in transit) into its stored chunks: the header, then each
 * sealed chunk, sized from the header. These are the leaves of the Table II-1 Merkle root, so a
 * device can check each against its proof as it arrives. Memory: one chunk. Fails on a short
 * stream or on bytes after the last chunk.
 */
export async function* splitStoredChunks(artifact: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Buffer> {
  // A chunk that lies within one piece is yielded as a view of it (no copy); only a chunk that
  // spans pieces is joined, once. Pieces are never written to in place.
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let h: ArtifactHeader | undefined;
  let index = 0;
  let total = 0;
  const need = (): number => (h ? storedChunkSpan(h, index + 1).size : HEADER_SIZE);
  const taken = (chunk: Buffer): void => {
    if (!h) {
      h = decodeHeader(chunk);
      total = chunkCount(h.plaintextSize, h.chunkSize);
    } else index += 1;
  };
  for await (const p of artifact) {
    let piece = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
    while (piece.length > 0) {
      if (h && index === total) throw new ArtifactFormatError("ARTIFACT_EXTRA_DATA", "bytes follow the last chunk");
      const size = need();
      if (pendingBytes === 0 && piece.length >= size) {
        const chunk = h ? piece.subarray(0, size) : Buffer.from(piece.subarray(0, size));
        piece = piece.subarray(size);
        taken(chunk);
        yield chunk;
        continue;
      }
      const take = Math.min(size - pendingBytes, piece.length);
      pending.push(piece.subarray(0, take));
      pendingBytes += take;
      piece = piece.subarray(take);
      if (pendingBytes === size) {
        const chunk = Buffer.concat(pending, size);
        pending = [];
        pendingBytes = 0;
        taken(chunk);
        yield chunk;
      }
    }
  }
  if (!h) throw new ArtifactFormatError("ARTIFACT_TRUNCATED", "the artifact ends inside its header");
  if (index < total) throw new ArtifactFormatError("ARTIFACT_TRUNCATED", `the artifact ends after ${index} of ${total} chunks`);
}

/**
 * Decrypts an artifact stream (split anyhow), yielding plaintext one chunk at a time after that
 * chunk's tag has verified (memory: one chunk). Stops with an error at the first altered, moved,
 * missing or extra byte; nothing unverified is ever yielded.
 */
export async function* decryptArtifact(key: Uint8Array, artifact: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Buffer> {
  checkKey(key);
  let header: Buffer | undefined;
  let h: ArtifactHeader | undefined;
  let index = 0;
  let total = 0;
  for await (const stored of splitStoredChunks(artifact)) {
    if (!header) {
      header = stored;
      h = decodeHeader(header);
      total = chunkCount(h.plaintextSize, h.chunkSize);
      continue;
    }
    const decipher = createDecipheriv("aes-256-gcm", key, nonce(h!.noncePrefix, index, index === total - 1));
    decipher.setAAD(header);
    decipher.setAuthTag(stored.subarray(stored.length - TAG_SIZE));
    let plain: Buffer;
    try {
      plain = decipher.update(stored.subarray(0, stored.length - TAG_SIZE));
      decipher.final(); // checks the tag; GCM yields no more bytes
    } catch (cause) {
      throw new AuthenticationError("CHUNK_AUTHENTICATION", `chunk ${index} does not authenticate: altered, moved, or not encrypted with this key`, {
        details: { chunk: index },
        cause,
      });
    }
    index += 1;
    yield plain;
  }
}

/**
 * A stored artifact's bytes from `file`, for decryptArtifact, read into two buffers used in turn,
 * each at least one stored chunk long (`minPiece`, else the header's chunk size): decrypting an
 * image then allocates no read buffer per piece, where a fresh one each time makes Node's garbage
 * collector run a full collection every few tens of MiB (external memory pressure; about a quarter
 * of the decryption's CPU, measured for 128 MiB). Only for a reader that, like splitStoredChunks,
 * is done with a piece's bytes once the piece after the next is asked for: a stored chunk then
 * spans at most two pieces, and the one being reused holds none of them.
 */
export async function* readArtifactFile(file: string, minPiece = 1024 * 1024): AsyncGenerator<Buffer> {
  const handle = await open(file, "r");
  try {
    const head = Buffer.alloc(HEADER_SIZE);
    const { bytesRead } = await handle.read(head, 0, HEADER_SIZE, 0);
    let piece = minPiece;
    try {
      if (bytesRead === HEADER_SIZE) piece = Math.max(minPiece, decodeHeader(head).chunkSize + TAG_SIZE);
    } catch {
      // not an artifact: its bytes as they are, for decryptArtifact to refuse
    }
    const buffers = [Buffer.allocUnsafe(piece), Buffer.allocUnsafe(piece)];
    for (let i = 0, position = 0; ; i++) {
      const buffer = buffers[i % 2];
      const { bytesRead: n } = await handle.read(buffer, 0, piece, position);
      if (n === 0) return;
      position += n;
      yield buffer.subarray(0, n);
    }
  } finally {
    await handle.close();
  }
}

/**
 * Where stored chunk `j` lies in the artifact (j = 0 is the header, j >= 1 the sealed chunk j - 1),
 * from the header alone: what a resuming download needs to ask for and to cut the stream.
 */
export function storedChunkSpan(h: ArtifactHeader, j: number): { offset: number; size: number } {
  if (j === 0) return { offset: 0, size: HEADER_SIZE };
  const i = j - 1;
  const remaining = h.plaintextSize - BigInt(i) * BigInt(h.chunkSize);
  const plain = Number(remaining < BigInt(h.chunkSize) ? remaining : BigInt(h.chunkSize));
  return { offset: HEADER_SIZE + i * (h.chunkSize + TAG_SIZE), size: plain + TAG_SIZE };
}
