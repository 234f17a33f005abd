import { createHash } from "node:crypto";
import { brotliCompressSync, constants as zlibConstants } from "node:zlib";
import { InputError } from "../core/errors";
import { DELTA_BROTLI_WINDOW, encodeDeltaHeader, zigzag } from "./deltaPatch";

/** The largest image the encoder takes (it holds both images and a table of 8 bytes per base byte at most). */
export const MAX_DELTA_IMAGE = 1024 * 1024 * 1024;

const SEED = 8; // bytes hashed to find a candidate match
const MIN_GAIN = 8;
const PROBES = 64; // candidates compared per search: more finds longer matches, slower
// a new alignment must beat the current one by this many bytes (bsdiff's rule)

/**
 * Makes a delta (deltaPatch.ts's format) that turns `base` into `target`: bsdiff's alignment
 * (Percival 2003: exact seeds, extended forwards and backwards while at least half the bytes
 * agree, so that code moved by an inserted line is one record whose diff bytes are mostly zeros),
 * with the seeds found by a hash of every base position rather than a suffix array (linear time,
 * 8 bytes per base byte at most), and the records compressed with brotli at `quality`.
 * Author side only: the device applies (applyDelta).
 */
export function encodeDelta(base: Buffer, target: Buffer, { quality = 9 }: { quality?: number } = {}): Buffer {
  if (base.length > MAX_DELTA_IMAGE || target.length > MAX_DELTA_IMAGE)
    throw new InputError("DELTA_IMAGE_TOO_LARGE", `the delta encoder takes images up to ${MAX_DELTA_IMAGE} bytes`);
  const header = encodeDeltaHeader({
    baseSize: BigInt(base.length),
    targetSize: BigInt(target.length),
    baseHash: sha256(base),
    targetHash: sha256(target),
  });
  const body = brotliCompressSync(Buffer.concat(records(base, target)), {
    params: {
      [zlibConstants.BROTLI_PARAM_QUALITY]: quality,
      [zlibConstants.BROTLI_PARAM_LGWIN]: DELTA_BROTLI_WINDOW,
      [zlibConstants.BROTLI_PARAM_SIZE_HINT]: target.length,
    },
  });
  return Buffer.concat([header, body]);
}

function records(old: Buffer, neu: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const index = new SeedIndex(old);
  const oldsize = old.length;
  const newsize = neu.length;
  let scan = 0;
  let len = 0;
  let pos = 0;
  let lastscan = 0;
  let lastpos = 0;
  let lastoffset = 0;
  let last: { addLen: number; copyLen: number; seek: number; diff: Buffer; copy: Buffer } | undefined;
  while (scan < newsize) {
    let oldscore = 0;
    let scsc = (scan += len);
    for (; scan < newsize; scan++) {
      [len, pos] = index.search(neu, scan);
      for (; scsc < scan + len; scsc++) if (scsc + lastoffset < oldsize && old[scsc + lastoffset] === neu[scsc]) oldscore++;
      if ((len === oldscore && len !== 0) || len > oldscore + MIN_GAIN) break;
      if (scan + lastoffset < oldsize && old[scan + lastoffset] === neu[scan]) oldscore--;
    }
    if (len !== oldscore || scan === newsize) {
      let s = 0;
      let sf = 0;
      let lenf = 0;
      for (let i = 0; lastscan + i < scan && lastpos + i < oldsize;) {
        if (old[lastpos + i] === neu[lastscan + i]) s++;
        i++;
        if (s * 2 - i > sf * 2 - lenf) {
          sf = s;
          lenf = i;
        }
      }
      let lenb = 0;
      if (scan < newsize) {
        s = 0;
        let sb = 0;
        for (let i = 1; scan >= lastscan + i && pos >= i; i++) {
          if (old[pos - i] === neu[scan - i]) s++;
          if (s * 2 - i > sb * 2 - lenb) {
            sb = s;
            lenb = i;
          }
        }
      }
      if (lastscan + lenf > scan - lenb) {
        const overlap = lastscan + lenf - (scan - lenb);
        s = 0;
        let ss = 0;
        let lens = 0;
        for (let i = 0; i < overlap; i++) {
          if (neu[lastscan + lenf - overlap + i] === old[lastpos + lenf - overlap + i]) s++;
          if (neu[scan - lenb + i] === old[pos - lenb + i]) s--;
          if (s > ss) {
            ss = s;
            lens = i + 1;
          }
        }
        lenf += lens - overlap;
        lenb -= lens;
      }
      const copyLen = scan - lenb - (lastscan + lenf);
      const seek = pos - lenb - (lastpos + lenf);
      if (lenf > 0 || copyLen > 0 || !last) {
        const diff = Buffer.allocUnsafe(lenf);
        for (let i = 0; i < lenf; i++) diff[i] = (neu[lastscan + i] - old[lastpos + i]) & 0xff;
        if (last) out.push(...encodeRecord(last));
        last = { addLen: lenf, copyLen, seek, diff, copy: neu.subarray(lastscan + lenf, lastscan + lenf + copyLen) };
      } else {
        last.seek += seek; // a move alone joins the record before it: no record writes nothing (but the first)
      }
      lastscan = scan - lenb;
      lastpos = pos - lenb;
      lastoffset = pos - scan;
    }
  }
  if (last) out.push(...encodeRecord(last));
  return out;
}

function encodeRecord(r: { addLen: number; copyLen: number; seek: number; diff: Buffer; copy: Buffer }): Buffer[] {
  return [varint(BigInt(r.addLen)), varint(BigInt(r.copyLen)), varint(zigzag(BigInt(r.seek))), r.diff, r.copy];
}

/** Every base position by the hash of the SEED bytes there, chained (newest first), PROBES looked at per search. */
class SeedIndex {
  private readonly table: Int32Array;
  private readonly chain: Int32Array;
  private readonly mask: number;
  constructor(private readonly old: Buffer) {
    const bits = Math.max(10, Math.min(24, Math.ceil(Math.log2(Math.max(1, old.length)))));
    this.table = new Int32Array(1 << bits).fill(-1);
    this.chain = new Int32Array(Math.max(0, old.length - SEED + 1));
    this.mask = (1 << bits) - 1;
    for (let p = 0; p + SEED <= old.length; p++) {
      const h = seedHash(old, p) & this.mask;
      this.chain[p] = this.table[h];
      this.table[h] = p;
    }
  }

  /** The longest exact match at `scan` among the candidates: [length, base position]. */
  search(neu: Buffer, scan: number): [number, number] {
    if (scan + SEED > neu.length) return [0, 0];
    const old = this.old;
    let best = 0;
    let bestPos = 0;
    let p = this.table[seedHash(neu, scan) & this.mask];
    for (let probes = 0; p >= 0 && probes < PROBES; probes++, p = this.chain[p]) {
      let n = 0;
      while (scan + n < neu.length && p + n < old.length && old[p + n] === neu[scan + n]) n++;
      if (n > best) {
        best = n;
        bestPos = p;
        if (scan + n === neu.length) break;
      }
    }
    return best >= SEED ? [best, bestPos] : [0, 0];
  }
}

function seedHash(b: Buffer, p: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < SEED; i++) h = Math.imul(h ^ b[p + i], 0x01000193);
  return (h ^ (h >>> 15)) >>> 0;
}

function varint(v: bigint): Buffer {
  const bytes: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    bytes.push(b);
  } while (v > 0n);
  return Buffer.from(bytes);
}

function sha256(b: Buffer): string {
  return "0x" + createHash("sha256").update(b).digest("hex");
}
