import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { createBrotliDecompress, constants as zlibConstants } from "node:zlib";
import { OtaError } from "../core/errors";

/**
 * The delta format (ADR 0018): how a device rebuilds a release's image from the image it runs.
 * Pure JavaScript over Node's built-in brotli, so the device needs no native part and no library
 * (ADR 0007), on Node 20, 22 and 24 alike. The plaintext of a delta is
 *
 *   header (88 bytes): "OTAD" | format 1 (u8) | 3 zero bytes | base size (u64 BE) | target size (u64 BE)
 *                      | base SHA-256 (32) | target SHA-256 (32)
 *   body:              one brotli stream of records, each
 *                        varint addLen | varint copyLen | zigzag varint seek | addLen diff bytes | copyLen new bytes
 *
 * A record takes `addLen` bytes of the base at the read position, each added (mod 256) to its diff
 * byte, then `copyLen` bytes as they are, then moves the read position by `seek` (bsdiff's
 * control triple, in one stream: code shifted by an inserted line differs from the base only in
 * the addresses it holds, so its diff bytes are mostly zeros, which brotli shrinks to nothing).
 * The base is read with positioned reads and the target written in pieces of at most
 * PIECE_SIZE, so memory is bounded whatever the image's size: brotli's window (4 MiB at most, as
 * the encoder sets it) and a few pieces.
 */

export const DELTA_MAGIC = Buffer.from("OTAD", "ascii");
export const DELTA_FORMAT = 1;
export const DELTA_HEADER_SIZE = 88;
/** The largest piece a record is applied in: what a declared length can make the device hold at once. */
export const PIECE_SIZE = 64 * 1024;
/** The encoder's brotli window (log2 bytes): what the decoder may have to keep. */
export const DELTA_BROTLI_WINDOW = 22;

export interface DeltaHeader {
  baseSize: bigint;
  targetSize: bigint;
  baseHash: string; // 0x-prefixed SHA-256 of the image the delta applies to
  targetHash: string; // 0x-prefixed SHA-256 of the image it makes
}

/** A delta that cannot be applied here: malformed, truncated, for another base, or making another image. A delivery fault (ADR 0009). */
export class DeltaRejected extends OtaError {}

export function encodeDeltaHeader(h: DeltaHeader): Buffer {
  const b = Buffer.alloc(DELTA_HEADER_SIZE);
  DELTA_MAGIC.copy(b, 0);
  b.writeUInt8(DELTA_FORMAT, 4);
  b.writeBigUInt64BE(h.baseSize, 8);
  b.writeBigUInt64BE(h.targetSize, 16);
  Buffer.from(h.baseHash.replace(/^0x/, ""), "hex").copy(b, 24);
  Buffer.from(h.targetHash.replace(/^0x/, ""), "hex").copy(b, 56);
  return b;
}

export function decodeDeltaHeader(bytes: Uint8Array): DeltaHeader {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < DELTA_HEADER_SIZE) throw new DeltaRejected("DELTA_TRUNCATED", `the delta's header is ${b.length} bytes, expected ${DELTA_HEADER_SIZE}`);
  if (!b.subarray(0, 4).equals(DELTA_MAGIC)) throw new DeltaRejected("DELTA_FORMAT", "not an OTA Ledger delta (bad magic)");
  if (b.readUInt8(4) !== DELTA_FORMAT || b.readUIntBE(5, 3) !== 0)
    throw new DeltaRejected("DELTA_FORMAT", `delta format ${b.readUInt8(4)} is not supported (expected ${DELTA_FORMAT})`);
  return {
    baseSize: b.readBigUInt64BE(8),
    targetSize: b.readBigUInt64BE(16),
    baseHash: "0x" + b.subarray(24, 56).toString("hex"),
    targetHash: "0x" + b.subarray(56, 88).toString("hex"),
  };
}

/** What the device expects of a delta, from its slot record and the ledger's release record. */
export interface DeltaExpectation {
  baseSize: bigint;
  baseHash: string;
  targetSize: bigint;
  targetHash: string;
}

/**
 * Applies a delta (its plaintext, as a stream) to the base image in `baseFile`, yielding the
 * target image in pieces of at most PIECE_SIZE bytes. The header must name the expected base and
 * target (sizes and hashes, checked before a byte of the body is read: a delta for another base is
 * refused at once), every record must stay inside the base and the declared target size, and the
 * body must end exactly where the target does. The target's hash is not checked here: the caller
 * writes the pieces into the inactive slot, which checks the ledger's file hash (a delta that makes
 * another image is refused there, before anything boots).
 */
export async function* applyDelta(baseFile: string, delta: AsyncIterable<Uint8Array>, expect: DeltaExpectation): AsyncGenerator<Buffer> {
  const input = new ByteReader(delta[Symbol.asyncIterator]());
  const header = decodeDeltaHeader(await input.exactly(DELTA_HEADER_SIZE, "DELTA_TRUNCATED"));
  if (header.baseSize !== expect.baseSize || header.baseHash.toLowerCase() !== expect.baseHash.toLowerCase())
    throw new DeltaRejected(
      "DELTA_BASE_MISMATCH",
      `the delta applies to a ${header.baseSize}-byte image ${header.baseHash}, not to the running ${expect.baseHash}`,
    );
  if (header.targetSize !== expect.targetSize || header.targetHash.toLowerCase() !== expect.targetHash.toLowerCase())
    throw new DeltaRejected(
      "DELTA_TARGET_MISMATCH",
      `the delta makes a ${header.targetSize}-byte image ${header.targetHash}, not the release's ${expect.targetHash}`,
    );
  const base = await fs.open(baseFile, "r");
  const decompress = createBrotliDecompress({ params: { [zlibConstants.BROTLI_DECODER_PARAM_LARGE_WINDOW]: 0 } });
  let fed = 0;
  const feeding = (async () => {
    for (;;) {
      const piece = await input.some();
      if (!piece) break;
      fed += piece.length;
      if (!decompress.write(piece)) await new Promise<void>((resolve, reject) => decompress.once("drain", resolve).once("error", reject));
    }
    decompress.end();
  })();
  feeding.catch(() => decompress.destroy());
  const body = new ByteReader(decompressed(decompress[Symbol.asyncIterator]() as AsyncIterator<Buffer>));
  try {
    yield* records(base, body, header);
    await feeding;
    // brotli stops at the end of its stream and ignores what follows: bytes past it are refused here.
    if (decompress.bytesWritten !== fed) throw new DeltaRejected("DELTA_TOO_LONG", `the delta goes on ${fed - decompress.bytesWritten} bytes past its body`);
  } finally {
    decompress.destroy();
    await feeding.catch(() => {});
    await base.close();
  }
}

/** The decompressed body; brotli's refusal of the bytes is the delta's fault, DELTA_FORMAT. */
async function* decompressed(it: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  for (;;) {
    let r: IteratorResult<Buffer>;
    try {
      r = await it.next();
    } catch (err) {
      throw new DeltaRejected("DELTA_FORMAT", `the delta's body does not decompress: ${(err as Error).message}`, { cause: err });
    }
    if (r.done) return;
    yield r.value;
  }
}

async function* records(base: FileHandle, body: ByteReader, header: DeltaHeader): AsyncGenerator<Buffer> {
  const baseSize = header.baseSize;
  let written = 0n;
  let readAt = 0n;
  let first = true;
  const old = Buffer.alloc(PIECE_SIZE);
  while (written < header.targetSize) {
    const addLen = await body.varint();
    const copyLen = await body.varint();
    const seek = unzigzag(await body.varint());
    if (written + addLen + copyLen > header.targetSize)
      throw new DeltaRejected("DELTA_TOO_LONG", `a record writes past the ${header.targetSize}-byte target (at ${written}, ${addLen} + ${copyLen} more)`);
    if (readAt + addLen > baseSize) throw new DeltaRejected("DELTA_FORMAT", `a record reads past the ${baseSize}-byte base`);
    for (let left = addLen; left > 0n;) {
      const n = Number(left < BigInt(PIECE_SIZE) ? left : BigInt(PIECE_SIZE));
      const diff = await body.exactly(n, "DELTA_TRUNCATED");
      const { bytesRead } = await base.read(old, 0, n, Number(readAt));
      if (bytesRead !== n) throw new DeltaRejected("DELTA_BASE_MISMATCH", "the base image is shorter than the delta's header says");
      const out = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) out[i] = (old[i] + diff[i]) & 0xff;
      readAt += BigInt(n);
      left -= BigInt(n);
      yield out;
    }
    for (let left = copyLen; left > 0n;) {
      const n = Number(left < BigInt(PIECE_SIZE) ? left : BigInt(PIECE_SIZE));
      yield Buffer.from(await body.exactly(n, "DELTA_TRUNCATED"));
      left -= BigInt(n);
    }
    written += addLen + copyLen;
    readAt += seek;
    if (readAt < 0n || readAt > baseSize) throw new DeltaRejected("DELTA_FORMAT", `a record moves the read position outside the ${baseSize}-byte base`);
    // Only the first record may write nothing (a move before the first bytes): no other can make the device loop without progress.
    if (addLen === 0n && copyLen === 0n && !first) throw new DeltaRejected("DELTA_FORMAT", "a record that writes nothing");
    first = false;
  }
  if (await body.some()) throw new DeltaRejected("DELTA_TOO_LONG", "the delta goes on past its target");
}

function unzigzag(v: bigint): bigint {
  return v & 1n ? -((v + 1n) >> 1n) : v >> 1n;
}

export function zigzag(v: bigint): bigint {
  return v < 0n ? -v * 2n - 1n : v * 2n;
}

/** The SHA-256 and size of a file, read in pieces. */
export async function hashFile(file: string): Promise<{ hash: string; size: bigint }> {
  const h = createHash("sha256");
  let size = 0n;
  const handle = await fs.open(file, "r");
  try {
    const buf = Buffer.alloc(1024 * 1024);
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      size += BigInt(bytesRead);
    }
  } finally {
    await handle.close();
  }
  return { hash: "0x" + h.digest("hex"), size };
}

/** Exact reads from an async stream of pieces, holding at most what one read asks for. */
class ByteReader {
  private head: Uint8Array = new Uint8Array(0);
  private done = false;
  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  private async fill(): Promise<boolean> {
    while (this.head.length === 0) {
      if (this.done) return false;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      this.head = r.value;
    }
    return true;
  }

  /** Whatever is next (up to one piece), or undefined at the end. */
  async some(): Promise<Uint8Array | undefined> {
    if (!(await this.fill())) return undefined;
    const piece = this.head;
    this.head = new Uint8Array(0);
    return piece;
  }

  /** Exactly `n` bytes (n <= PIECE_SIZE or the header); the stream ending first is `code`. */
  async exactly(n: number, code: string): Promise<Uint8Array> {
    if (this.head.length >= n) {
      const out = this.head.subarray(0, n);
      this.head = this.head.subarray(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      if (!(await this.fill())) throw new DeltaRejected(code, `the delta ended ${n - filled} bytes early`);
      const k = Math.min(n - filled, this.head.length);
      out.set(this.head.subarray(0, k), filled);
      this.head = this.head.subarray(k);
      filled += k;
    }
    return out;
  }

  /** An unsigned LEB128 varint of at most 9 bytes (63 bits). */
  async varint(): Promise<bigint> {
    let v = 0n;
    for (let shift = 0n; shift < 63n; shift += 7n) {
      const b = (await this.exactly(1, "DELTA_TRUNCATED"))[0];
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
    }
    throw new DeltaRejected("DELTA_FORMAT", "a length in the delta is longer than 63 bits");
  }
}
