import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { ContentStore, StoreCallOptions } from "./contentStore";
import { ContentStoreError } from "./contentStore";
import { importEsm } from "./esm";

interface Cid {
  code: number;
  bytes: Uint8Array;
  toString(): string;
}
interface Multiformats {
  CID: { parse(s: string): Cid; decode(b: Uint8Array): Cid };
}
interface DagPb {
  decode(bytes: Uint8Array): { Data?: Uint8Array; Links: { Hash: Cid }[] };
}

const DAG_PB = 0x70;
const RAW = 0x55;

/**
 * Every block of a UnixFS DAG, depth-first from the root (the order the trustless gateway's CAR
 * responses use). Memory: one block plus the path of pending links.
 */
export async function* dagBlocks(
  store: ContentStore,
  root: string,
  options: StoreCallOptions = {},
): AsyncGenerator<{ cid: string; cidBytes: Uint8Array; bytes: Uint8Array }> {
  const { CID } = await importEsm<Multiformats>("multiformats/cid");
  const dagPb = await importEsm<DagPb>("@ipld/dag-pb");
  const pending: Cid[] = [CID.parse(root)];
  while (pending.length > 0) {
    const cid = pending.pop()!;
    const bytes = await store.getBlock(cid.toString(), options);
    yield { cid: cid.toString(), cidBytes: cid.bytes, bytes };
    if (cid.code === DAG_PB) {
      const links = dagPb.decode(bytes).Links;
      for (let i = links.length - 1; i >= 0; i--) pending.push(links[i].Hash);
    } else if (cid.code !== RAW) {
      throw new ContentStoreError("STORE_UNSUPPORTED_CODEC", `block ${cid} has codec 0x${cid.code.toString(16)}; artifacts hold only dag-pb and raw blocks`);
    }
  }
}

/**
 * A CARv1 stream of the DAG under `root` (application/vnd.ipld.car): a header naming the root,
 * then each block as varint(length) | CID | bytes. The receiver checks every block against its
 * CID, so the server need not be trusted for integrity.
 */
export async function* carStream(store: ContentStore, root: string, options: StoreCallOptions = {}): AsyncGenerator<Uint8Array> {
  const { CID } = await importEsm<Multiformats>("multiformats/cid");
  const rootCid = CID.parse(root);
  yield carHeader(rootCid.bytes);
  for await (const block of dagBlocks(store, root, options)) {
    yield Buffer.concat([varint(block.cidBytes.length + block.bytes.length), block.cidBytes, block.bytes]);
  }
}

// The CARv1 header is the dag-cbor map {roots: [CID], version: 1}, written out by hand: one root,
// so its layout is fixed and needs no CBOR library.
function carHeader(rootCidBytes: Uint8Array): Uint8Array {
  const cidWithPrefix = Buffer.concat([Buffer.from([0x00]), rootCidBytes]); // tag 42 wraps 0x00 || CID
  const header = Buffer.concat([
    Buffer.from([0xa2]), // map(2)
    Buffer.from([0x65]),
    Buffer.from("roots"),
    Buffer.from([0x81]), // array(1)
    Buffer.from([0xd8, 0x2a]), // tag(42)
    cborBytesHeader(cidWithPrefix.length),
    cidWithPrefix,
    Buffer.from([0x67]),
    Buffer.from("version"),
    Buffer.from([0x01]),
  ]);
  return Buffer.concat([varint(header.length), header]);
}

function cborBytesHeader(length: number): Buffer {
  if (length < 24) return Buffer.from([0x40 + length]);
  if (length < 256) return Buffer.from([0x58, length]);
  return Buffer.from([0x59, length >> 8, length & 0xff]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

interface UnixFsModule {
  UnixFS: { unmarshal(data: Uint8Array): { data?: Uint8Array; blockSizes: bigint[] } };
}

/**
 * The bytes of a UnixFS file, or `length` bytes from `offset`, read block by block from the
 * store: subtrees wholly before the offset are skipped by their recorded sizes, and reading stops
 * at the end of the range. Faster than the generic exporter for the layouts this project writes
 * (raw leaves under dag-pb nodes), and it needs only `getBlock`.
 */
export async function* catFromBlocks(
  store: Pick<ContentStore, "getBlock"> & { rawFile?(cid: string): string },
  root: string,
  range: { offset?: number; length?: number } = {},
  options: StoreCallOptions = {},
): AsyncGenerator<Uint8Array> {
  const { CID } = await importEsm<Multiformats>("multiformats/cid");
  const dagPb = await importEsm<DagPb>("@ipld/dag-pb");
  const { UnixFS } = await importEsm<UnixFsModule>("ipfs-unixfs");
  let skip = range.offset ?? 0;
  let left = range.length ?? Number.POSITIVE_INFINITY;
  async function* walk(cid: Cid, knownSize?: number): AsyncGenerator<Uint8Array> {
    if (cid.code === RAW && store.rawFile) {
      // A raw leaf the store keeps as a file of its own: only the range wanted is read, by the
      // kernel in large pieces, and handed on as read (no whole block in memory, no copy).
      const file = store.rawFile(cid.toString());
      const size = knownSize ?? (await fileSize(file, cid));
      if (skip >= size) {
        skip -= size;
        return;
      }
      const start = skip;
      const end = Math.min(size, skip + left) - 1;
      skip = 0;
      let read = 0;
      try {
        for await (const piece of createReadStream(file, { start, end, highWaterMark: FILE_PIECE, signal: options.signal })) {
          read += (piece as Buffer).length;
          left -= (piece as Buffer).length;
          yield piece as Buffer;
        }
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === "ENOENT") throw new ContentStoreError("STORE_NOT_FOUND", `the store does not hold ${cid}`, { cause });
        throw cause;
      }
      if (read !== end - start + 1) throw new ContentStoreError("STORE_CORRUPT", `block ${cid} is ${start + read} bytes on disk, its DAG says ${size}`);
      return;
    }
    const bytes = await store.getBlock(cid.toString(), options);
    if (cid.code === RAW) {
      if (skip >= bytes.length) {
        skip -= bytes.length;
        return;
      }
      const piece = bytes.subarray(skip, skip + Math.min(left, bytes.length - skip));
      skip = 0;
      left -= piece.length;
      yield piece;
      return;
    }
    if (cid.code !== DAG_PB) throw new ContentStoreError("STORE_UNSUPPORTED_CODEC", `block ${cid} is neither dag-pb nor raw`);
    const node = dagPb.decode(bytes);
    const fs = UnixFS.unmarshal(node.Data ?? new Uint8Array());
    if (fs.data && fs.data.length > 0) {
      // Inline data in a dag-pb leaf (not written by our importer settings, but valid UnixFS).
      if (skip >= fs.data.length) skip -= fs.data.length;
      else {
        const piece = fs.data.subarray(skip, skip + Math.min(left, fs.data.length - skip));
        skip = 0;
        left -= piece.length;
        yield piece;
      }
    }
    for (const [i, link] of node.Links.entries()) {
      if (left <= 0) return;
      const size = Number(fs.blockSizes[i] ?? 0n);
      if (size > 0 && skip >= size) {
        skip -= size;
        continue;
      }
      yield* walk(link.Hash, size > 0 ? size : undefined);
    }
  }
  if (left <= 0) return;
  yield* walk(CID.parse(root));
}

/** The size of the pieces a raw leaf is read from disk in: large enough for few calls, small enough to keep memory flat per connection. */
const FILE_PIECE = 256 * 1024;

async function fileSize(file: string, cid: Cid): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") throw new ContentStoreError("STORE_NOT_FOUND", `the store does not hold ${cid}`, { cause });
    throw cause;
  }
}
