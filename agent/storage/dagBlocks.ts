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
  decode(bytes: Uint8Array): { Links: { Hash: Cid }[] };
}

const DAG_PB = 0x70;
const RAW = 0x55;

/**
 * Every block of a UnixFS DAG, depth-first from the root (the order the trustless gateway's CAR
 * responses use). Memory: one block plus the path of pending links.
 */
export async function* dagBlocks(store: ContentStore, root: string, options: StoreCallOptions = {}): AsyncGenerator<{ cid: string; cidBytes: Uint8Array; bytes: Uint8Array }> {
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
    Buffer.from([0x65]), Buffer.from("roots"),
    Buffer.from([0x81]), // array(1)
    Buffer.from([0xd8, 0x2a]), // tag(42)
    cborBytesHeader(cidWithPrefix.length), cidWithPrefix,
    Buffer.from([0x67]), Buffer.from("version"),
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
