import { expect } from "chai";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, truncateSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { computeCid } from "../../../agent/storage/cid";
import { EmbeddedStore } from "../../../agent/storage/embeddedStore";
import { dagBlocks } from "../../../agent/storage/dagBlocks";
import { importEsm } from "../../../agent/storage/esm";
import { rawCidV1 } from "../../helpers/rawCid";
import { expectCode } from "../../helpers/expectCode";

const MiB = 1024 * 1024;

function pattern(size: number, seed = 1): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed * 7 + (i >> 10)) & 0xff;
  return b;
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of stream) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

describe("agent/storage EmbeddedStore (CAP-11.3-a, CAP-11.3-b, REQ-10f-ii)", function () {
  this.timeout(60_000);
  let dir: string;
  let store: EmbeddedStore;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "ota-embedded-"));
    store = await EmbeddedStore.open({ directory: dir });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const size of [0, 1, MiB, 3 * MiB + 5]) {
    it(`adds ${size} bytes under the CID the author computes locally`, async () => {
      const data = pattern(size);
      const cid = await store.add([data]);
      expect(cid).to.equal(await computeCid([data]));
      expect(await collect(store.cat(cid))).to.deep.equal(data);
    });
  }

  it("yields the CID Helia's own unixfs gives with its defaults (an independent importer call)", async () => {
    const data = pattern(2 * MiB + 17, 3);
    const { unixfs } = await importEsm<{ unixfs(h: unknown): { addBytes(b: Uint8Array): Promise<{ toString(): string }> } }>("@helia/unixfs");
    const helia = (store as unknown as { helia: unknown }).helia;
    const viaHelia = (await unixfs(helia).addBytes(data)).toString();
    expect(await store.add([data])).to.equal(viaHelia);
  });

  it("serves byte ranges inside and across 1 MiB blocks", async () => {
    const data = pattern(3 * MiB + 5, 2);
    const cid = await store.add([data]);
    for (const [offset, length] of [
      [0, 10],
      [MiB - 3, 7],
      [2 * MiB + 100, 4096],
      [3 * MiB, 5],
    ]) {
      expect(await collect(store.cat(cid, { offset, length }))).to.deep.equal(data.subarray(offset, offset + length));
    }
    expect(await collect(store.cat(cid, { offset: 3 * MiB + 1 }))).to.deep.equal(data.subarray(3 * MiB + 1));
  });

  it("issue 17: reads leaves from their files; a leaf file cut short is STORE_CORRUPT and a missing one STORE_NOT_FOUND, never short bytes", async () => {
    const data = pattern(2 * MiB + 10, 6);
    const cid = await store.add([data]);
    const leaves: string[] = [];
    for await (const b of dagBlocks(store, cid)) if (b.cid.startsWith("bafkrei")) leaves.push(b.cid); // raw leaves
    expect(leaves).to.have.length(3);
    // Where blockstore-fs keeps a block (the store's own mapping).
    const inner = store as unknown as { blockPath(c: unknown): string; cid(c: string): unknown };
    const fileOf = (c: string) => inner.blockPath(inner.cid(c));
    truncateSync(fileOf(leaves[1]), 1000);
    await expectCode(collect(store.cat(cid, { offset: MiB - 5, length: 10 })), "STORE_CORRUPT");
    expect(await collect(store.cat(cid, { offset: 0, length: 10 }))).to.deep.equal(data.subarray(0, 10)); // the intact leaf still serves
    unlinkSync(fileOf(leaves[2]));
    await expectCode(collect(store.cat(cid, { offset: 2 * MiB })), "STORE_NOT_FOUND");
  });

  it("returns raw blocks whose hash is their CID", async () => {
    const data = pattern(1000, 4);
    const cid = await store.add([data]);
    const block = await store.getBlock(cid);
    expect(cid).to.equal(rawCidV1(createHash("sha256").update(block).digest()));
    expect(Buffer.from(block)).to.deep.equal(data);
  });

  it("pins and unpins idempotently, and keeps content and pins across a restart", async () => {
    const data = pattern(MiB + 1, 5);
    const cid = await store.add([data]);
    expect(await store.isPinned(cid)).to.equal(false);
    await store.pin(cid);
    await store.pin(cid);
    expect(await store.isPinned(cid)).to.equal(true);
    await store.close();
    store = await EmbeddedStore.open({ directory: dir });
    expect(await store.isPinned(cid)).to.equal(true);
    expect(await store.has(cid)).to.equal(true);
    expect(await collect(store.cat(cid))).to.deep.equal(data);
    await store.unpin(cid);
    await store.unpin(cid);
    expect(await store.isPinned(cid)).to.equal(false);
  });

  it("reports each block it writes, and deletes the unpinned ones it is asked to (a refused submission)", async () => {
    const written: string[] = [];
    const cid = await store.add([pattern(2 * MiB + 5, 6)], { onBlock: (c) => written.push(c) });
    expect(written).to.include(cid);
    expect(written).to.have.length(4); // three raw leaves and the root
    const pinned = await store.add([pattern(300, 7)]);
    await store.pin(pinned);
    await store.deleteBlocks([...written, pinned, await computeCid([pattern(10, 8)])]);
    for (const c of written) expect(await store.has(c), c).to.equal(false);
    expect(await store.has(pinned)).to.equal(true);
  });

  it("answers STORE_NOT_FOUND for content it does not hold (it never waits for a network), and rejects what is not a CID", async function () {
    // A hang guard, not a speed check: the light node has no network to wait on, so a lookup
    // that waited would be a regression (how fast it answers is bench material).
    this.timeout(20_000);
    const missing = await computeCid([pattern(10, 9)]);
    expect(await store.has(missing)).to.equal(false);
    await expectCode(collect(store.cat(missing)), "STORE_NOT_FOUND");
    await expectCode(store.getBlock(missing), "STORE_NOT_FOUND");
    await expectCode(store.pin(missing), "STORE_NOT_FOUND");
    await expectCode(store.has("not-a-cid"), "STORE_BAD_CID");
  });

  it("refuses calls after close", async () => {
    await store.close();
    await expectCode(store.has(await computeCid([Buffer.from("x")])), "STORE_CLOSED");
  });
});
