import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { EmbeddedStore } from "../../../agent/storage/embeddedStore";
import { importEsm } from "../../../agent/storage/esm";
import { blockMatches, cidString, DAG_PB, decodeFileNode, parseCid, RAW } from "../../../agent/consumer/ipfsBlock";
import { expectCode } from "../../helpers/expectCode";

interface Cid {
  code: number;
  bytes: Uint8Array;
  toString(): string;
}

/**
 * The device's own reading of IPFS blocks (CIDv1, dag-pb, UnixFS), checked against the libraries
 * the firmware server stores with, on a real DAG in the embedded store.
 */
describe("agent/consumer/ipfsBlock: CIDs and UnixFS file nodes as a device reads them", function () {
  this.timeout(60_000);
  let dir: string;
  let store: EmbeddedStore;
  let root: string;
  const content = randomBytes(2_600_000);

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "ota-ipfsblock-"));
    store = await EmbeddedStore.open({ directory: dir });
    root = await store.add([content]);
  });
  after(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("REQ-10f-ii: reads a CID and a dag-pb file node exactly as @ipld/dag-pb and ipfs-unixfs do, and checks blocks against their CIDs", async () => {
    const { CID } = await importEsm<{ CID: { parse(s: string): Cid; decode(b: Uint8Array): Cid } }>("multiformats/cid");
    const dagPb = await importEsm<{ decode(b: Uint8Array): { Data?: Uint8Array; Links: { Hash: Cid; Tsize?: number }[] } }>("@ipld/dag-pb");
    const { UnixFS } = await importEsm<{ UnixFS: { unmarshal(d: Uint8Array): { blockSizes: bigint[]; type: string } } }>("ipfs-unixfs");

    const id = parseCid(root);
    expect(id.codec).to.equal(DAG_PB);
    expect(Buffer.from(id.bytes)).to.deep.equal(Buffer.from(CID.parse(root).bytes));
    expect(cidString(id)).to.equal(root);

    const block = await store.getBlock(root);
    expect(blockMatches(id, block)).to.equal(true);
    const mine = decodeFileNode(block);
    const theirs = dagPb.decode(block);
    const unixfs = UnixFS.unmarshal(theirs.Data!);
    expect(mine.links.map((l) => cidString(l.id))).to.deep.equal(theirs.Links.map((l) => l.Hash.toString()));
    expect(mine.links.map((l) => l.size)).to.deep.equal(unixfs.blockSizes.map(Number));
    expect(mine.links.reduce((a, l) => a + l.size, 0)).to.equal(content.length);

    const leaf = mine.links[1];
    expect(leaf.id.codec).to.equal(RAW);
    const leafBytes = await store.getBlock(cidString(leaf.id));
    expect(blockMatches(leaf.id, leafBytes)).to.equal(true);
    const altered = Buffer.from(leafBytes);
    altered[7] ^= 1;
    expect(blockMatches(leaf.id, altered)).to.equal(false);
  });

  it("refuses what is not a CIDv1 of a dag-pb or raw block, and a truncated node (ANSWER_MALFORMED)", async () => {
    await expectCode(
      Promise.resolve().then(() => parseCid("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")),
      "ANSWER_MALFORMED",
    );
    const block = await store.getBlock(root);
    await expectCode(
      Promise.resolve().then(() => decodeFileNode(block.subarray(0, block.length - 3))),
      "ANSWER_MALFORMED",
    );
  });
});
