import { createHash } from "node:crypto";
import { OtaError } from "../core/errors";

/**
 * Just enough of IPFS for a device to read an artifact from a trustless gateway and check every
 * block: CIDv1 (base32, sha2-256), dag-pb nodes and the UnixFS file data in them. Written out here
 * (about 150 lines) rather than imported: the IPFS packages are ESM, large, and not part of the
 * device bundle (scripts/buildDevice.js); the layouts are the stable specs
 * (https://github.com/multiformats/cid, https://ipld.io/specs/codecs/dag-pb/spec/,
 * https://github.com/ipfs/specs/blob/main/UNIXFS.md). agent/storage/cid.ts fixes how artifacts are
 * imported (raw leaves under dag-pb nodes); test/agent/consumer/ipfsBlock.test.ts checks this code
 * against the real libraries.
 */

export const DAG_PB = 0x70;
export const RAW = 0x55;
const SHA2_256 = 0x12;

/** A block, its answer or a link that is not what this format defines. */
export class IpfsBlockError extends OtaError {}

export interface BlockId {
  version: 1;
  codec: number; // DAG_PB or RAW
  digest: Buffer; // sha2-256 of the block
  bytes: Buffer; // the binary CID
}

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** A CIDv1 in its base32 string form (bafy..., bafk...). */
export function parseCid(text: string): BlockId {
  if (!/^b[a-z2-7]{10,200}$/.test(text)) throw new IpfsBlockError("ANSWER_MALFORMED", `${text.slice(0, 80)} is not a base32 CIDv1`);
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const ch of text.slice(1)) {
    value = (value << 5) | BASE32.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return decodeCid(Buffer.from(out));
}

/** A binary CIDv1 (as in a dag-pb link). */
export function decodeCid(bytes: Uint8Array): BlockId {
  const r = new Reader(bytes);
  const version = r.varint();
  const codec = r.varint();
  const hash = r.varint();
  const length = r.varint();
  if (version !== 1 || (codec !== DAG_PB && codec !== RAW) || hash !== SHA2_256 || length !== 32 || r.left !== 32)
    throw new IpfsBlockError("ANSWER_MALFORMED", "a CID that is not CIDv1 of a dag-pb or raw block with a sha2-256 hash");
  return { version: 1, codec, digest: Buffer.from(r.bytes(32)), bytes: Buffer.from(bytes) };
}

/** The base32 string of a CID, as a gateway's path takes it. */
export function cidString(id: BlockId): string {
  let bits = 0;
  let value = 0;
  let out = "b";
  for (const byte of id.bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= 0xff;
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** Whether `block` is the block `id` names (its sha2-256 is the CID's digest). */
export function blockMatches(id: BlockId, block: Uint8Array): boolean {
  return createHash("sha256").update(block).digest().equals(id.digest);
}

/** A UnixFS file node: its links in order, each with the file bytes under it, and any inline data. */
export interface FileNode {
  links: { id: BlockId; size: number }[];
  data: Buffer;
}

/** Decodes a dag-pb block holding a UnixFS file (or raw) node. */
export function decodeFileNode(block: Uint8Array): FileNode {
  const links: BlockId[] = [];
  let unixfs: Uint8Array | undefined;
  const r = new Reader(block);
  while (r.left > 0) {
    const key = r.varint();
    if (key === 0x12) links.push(decodeLink(r.bytes(r.varint())));
    else if (key === 0x0a) unixfs = r.bytes(r.varint());
    else throw new IpfsBlockError("ANSWER_MALFORMED", `a dag-pb node with field key ${key}`);
  }
  if (!unixfs) throw new IpfsBlockError("ANSWER_MALFORMED", "a dag-pb node without UnixFS data");
  let type = -1;
  let data = Buffer.alloc(0);
  const sizes: number[] = [];
  const u = new Reader(unixfs);
  while (u.left > 0) {
    const key = u.varint();
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === 0) {
      const v = u.varint();
      if (field === 1) type = v;
      else if (field === 4) sizes.push(v);
    } else if (wire === 2) {
      const b = u.bytes(u.varint());
      if (field === 2) data = Buffer.from(b);
      else if (field === 4) {
        const packed = new Reader(b); // blocksizes, packed
        while (packed.left > 0) sizes.push(packed.varint());
      }
    } else if (wire === 1) u.bytes(8);
    else if (wire === 5) u.bytes(4);
    else throw new IpfsBlockError("ANSWER_MALFORMED", `UnixFS data with wire type ${wire}`);
  }
  if (type !== 2 && type !== 0) throw new IpfsBlockError("ANSWER_MALFORMED", `a UnixFS node of type ${type}, not a file`);
  if (sizes.length !== links.length) throw new IpfsBlockError("ANSWER_MALFORMED", "a UnixFS node whose block sizes do not match its links");
  return { links: links.map((id, i) => ({ id, size: sizes[i] })), data };
}

function decodeLink(bytes: Uint8Array): BlockId {
  const r = new Reader(bytes);
  let id: BlockId | undefined;
  while (r.left > 0) {
    const key = r.varint();
    if (key === 0x0a) id = decodeCid(r.bytes(r.varint()));
    else if (key === 0x12)
      r.bytes(r.varint()); // Name
    else if (key === 0x18)
      r.varint(); // Tsize
    else throw new IpfsBlockError("ANSWER_MALFORMED", `a dag-pb link with field key ${key}`);
  }
  if (!id) throw new IpfsBlockError("ANSWER_MALFORMED", "a dag-pb link without a hash");
  return id;
}

class Reader {
  private at = 0;
  constructor(private readonly b: Uint8Array) {}
  get left(): number {
    return this.b.length - this.at;
  }
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.at >= this.b.length) throw new IpfsBlockError("ANSWER_MALFORMED", "a block ends inside a number");
      const byte = this.b[this.at++];
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (!Number.isSafeInteger(value)) break;
        return value;
      }
      scale *= 128;
    }
    throw new IpfsBlockError("ANSWER_MALFORMED", "a number in a block is too large");
  }
  bytes(n: number): Uint8Array {
    if (n > this.left) throw new IpfsBlockError("ANSWER_MALFORMED", "a block ends inside a field");
    const out = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
}
