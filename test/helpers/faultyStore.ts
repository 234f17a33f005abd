import type { ContentStore, StoreCallOptions, ByteRange } from "../../agent/storage/contentStore";

export type Fault =
  | { kind: "none" }
  | { kind: "flip"; at: number } // flips one byte at this artifact offset
  | { kind: "truncate"; keep: number } // ends the artifact after `keep` bytes
  | { kind: "append"; bytes: number } // adds bytes after the end
  | { kind: "swap"; a: { offset: number; size: number }; b: { offset: number; size: number } } // swaps two equal-size spans
  | { kind: "substitute"; cid: string } // serves another artifact
  | { kind: "endless" } // never stops sending
  | { kind: "trickle"; pieceBytes: number; delayMs: number }; // slow retrieval: a few bytes now and then

/**
 * A content store that lies when asked for bytes (cat), as a compromised store or server
 * would; everything else passes through to the real store. The fault applies to the artifact's
 * byte positions, whatever range is asked for.
 */
export class FaultyStore implements ContentStore {
  readonly kind: string;
  fault: Fault = { kind: "none" };

  constructor(readonly inner: ContentStore) {
    this.kind = inner.kind;
  }

  async *cat(cid: string, options: StoreCallOptions & ByteRange = {}): AsyncIterable<Uint8Array> {
    const f = this.fault;
    const start = options.offset ?? 0;
    if (f.kind === "substitute") return yield* this.inner.cat(f.cid, options);
    if (f.kind === "trickle") {
      for await (const piece of this.inner.cat(cid, options)) {
        for (let o = 0; o < piece.length; o += f.pieceBytes) {
          await new Promise((r) => setTimeout(r, f.delayMs));
          yield piece.subarray(o, o + f.pieceBytes);
        }
      }
      return;
    }
    if (f.kind === "endless") {
      yield* this.inner.cat(cid, options);
      for (let i = 0; i < 100_000; i++) yield Buffer.alloc(64 * 1024, 0x5a); // 6.4 GB: "without end" for a test
      return;
    }
    const whole = Buffer.concat(await collect(this.inner.cat(cid)));
    let served = whole;
    if (f.kind === "flip") {
      served = Buffer.from(whole);
      served[f.at] ^= 0x01;
    }
    if (f.kind === "truncate") served = whole.subarray(0, f.keep);
    if (f.kind === "append") served = Buffer.concat([whole, Buffer.alloc(f.bytes, 0xee)]);
    if (f.kind === "swap") {
      served = Buffer.from(whole);
      whole.copy(served, f.a.offset, f.b.offset, f.b.offset + f.b.size);
      whole.copy(served, f.b.offset, f.a.offset, f.a.offset + f.a.size);
    }
    const end = f.kind === "append" || options.length === undefined ? served.length : start + options.length;
    yield served.subarray(start, Math.min(end, served.length));
  }

  add(content: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options?: StoreCallOptions & { onBlock?: (cid: string) => void }) {
    return this.inner.add(content, options);
  }
  deleteBlocks(cids: string[], options?: StoreCallOptions) {
    return this.inner.deleteBlocks(cids, options);
  }
  getBlock(cid: string, options?: StoreCallOptions) {
    return this.inner.getBlock(cid, options);
  }
  has(cid: string, options?: StoreCallOptions) {
    return this.inner.has(cid, options);
  }
  pin(cid: string, options?: StoreCallOptions) {
    return this.inner.pin(cid, options);
  }
  unpin(cid: string, options?: StoreCallOptions) {
    return this.inner.unpin(cid, options);
  }
  isPinned(cid: string, options?: StoreCallOptions) {
    return this.inner.isPinned(cid, options);
  }
  close() {
    return this.inner.close();
  }
}

async function collect(s: AsyncIterable<Uint8Array>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const p of s) out.push(Buffer.from(p));
  return out;
}
