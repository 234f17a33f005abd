import { expect } from "chai";
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { computeCid } from "../../../agent/storage/cid";
import { ContentStoreError } from "../../../agent/storage/contentStore";
import { importEsm } from "../../../agent/storage/esm";
import { KuboStore } from "../../../agent/storage/kuboStore";
import { freePort, IpfsDaemon, startIpfsDaemon } from "../../helpers/ipfsDaemon";

type CidModule = typeof import("multiformats/cid");
type DagPbModule = typeof import("@ipld/dag-pb");

const MiB = 1024 * 1024;
const bytes = (n: number, seed = 7) => Uint8Array.from({ length: n }, (_, i) => (i * seed + (i >> 10)) % 251);
const big = bytes(3 * MiB + 5); // four chunks, the last one 5 bytes: a dag-pb root over raw leaves

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts);
}

/** The error a call must fail with: always a ContentStoreError. */
async function failure(call: () => Promise<unknown>): Promise<ContentStoreError> {
  try {
    await call();
  } catch (err) {
    expect(err).to.be.instanceOf(ContentStoreError);
    return err as ContentStoreError;
  }
  throw new Error("expected the call to fail");
}

describe("agent/storage/kuboStore: artifacts on a real IPFS node over the Kubo RPC API (CAP-11.3-a, CAP-11.3-b, REQ-10f-ii)", function () {
  let daemon: IpfsDaemon;
  let store: KuboStore;
  let CID: CidModule["CID"];
  let dagPb: DagPbModule;
  let bigCid: string;

  before(async function () {
    daemon = await startIpfsDaemon();
    store = await KuboStore.open({ url: daemon.apiUrl, timeoutMs: 10_000, hasTimeoutMs: 500 });
    ({ CID } = await importEsm<CidModule>("multiformats/cid"));
    dagPb = await importEsm<DagPbModule>("@ipld/dag-pb");
    bigCid = await store.add([big]);
  });

  after(async function () {
    await store?.close();
    await daemon?.stop();
  });

  describe("add (CAP-11.3-a)", function () {
    const cases: [string, Uint8Array][] = [
      ["an empty file", bytes(0)],
      ["a 1-byte file", bytes(1)],
      ["a file of exactly one chunk (1 MiB)", bytes(MiB, 11)],
      ["a file of several chunks (3 MiB + 5 bytes)", big],
    ];
    for (const [name, content] of cases) {
      it(`CAP-11.3-a stores ${name} under the CID computeCid gives, which Kubo's own add defaults would not`, async function () {
        const cid = await store.add([content]);
        expect(cid).to.equal(await computeCid([content]));
        expect(await store.has(cid)).to.equal(true);
      });
    }

    it("CAP-11.3-a gives the same CID however the stream is split", async function () {
      const pieces = async function* () {
        yield big.subarray(0, 10);
        yield big.subarray(10, MiB + 3);
        yield big.subarray(MiB + 3);
      };
      expect(await store.add(pieces())).to.equal(bigCid);
      expect(bigCid.startsWith("bafybei")).to.equal(true);
    });
  });

  describe("cat (CAP-11.3-b)", function () {
    it("CAP-11.3-b serves a whole file byte for byte", async function () {
      expect((await collect(store.cat(bigCid))).equals(big)).to.equal(true);
      const small = bytes(1);
      expect((await collect(store.cat(await store.add([small])))).equals(small)).to.equal(true);
    });

    const ranges: [string, number, number | undefined][] = [
      ["from inside a later chunk", 2 * MiB + 17, 1000],
      ["across a chunk boundary", MiB - 3, 10],
      ["across two chunk boundaries", MiB - 1, MiB + 2],
      ["from an offset to the end", 3 * MiB + 1, undefined],
    ];
    for (const [name, offset, length] of ranges) {
      it(`CAP-11.3-b serves a byte range ${name}`, async function () {
        const expected = big.subarray(offset, length === undefined ? undefined : offset + length);
        expect((await collect(store.cat(bigCid, { offset, length }))).equals(expected)).to.equal(true);
      });
    }

    it("rejects a negative or fractional range before asking the node", async function () {
      for (const range of [{ offset: -1 }, { length: 1.5 }]) {
        expect((await failure(() => collect(store.cat(bigCid, range)))).code).to.equal("STORE_BAD_RANGE");
      }
    });
  });

  describe("getBlock (CAP-11.3-b, for the trustless gateway)", function () {
    const digestOf = (cid: string) => Buffer.from(CID.parse(cid).multihash.digest);
    const sha256 = (block: Uint8Array) => createHash("sha256").update(block).digest();

    it("CAP-11.3-b returns each block of the DAG with bytes whose sha2-256 is the digest in its CID", async function () {
      const root = await store.getBlock(bigCid);
      expect(CID.parse(bigCid).multihash.code).to.equal(0x12);
      expect(sha256(root).equals(digestOf(bigCid))).to.equal(true);
      const leaves = dagPb.decode(root).Links.map((link) => link.Hash.toString());
      expect(leaves).to.have.length(4);
      const blocks = [];
      for (const leaf of leaves) {
        const block = await store.getBlock(leaf);
        expect(sha256(block).equals(digestOf(leaf))).to.equal(true);
        blocks.push(block);
      }
      expect(Buffer.concat(blocks).equals(big)).to.equal(true);
    });
  });

  describe("has, pin, unpin", function () {
    it("has says true for what was added and false for what never was, without waiting on the network", async function () {
      expect(await store.has(bigCid)).to.equal(true);
      expect(await store.has(await computeCid([bytes(100, 13)]))).to.equal(false);
    });

    it("pins and unpins idempotently, and isPinned follows", async function () {
      const cid = await store.add([bytes(2 * MiB, 17)]);
      expect(await store.isPinned(cid)).to.equal(false);
      await store.pin(cid);
      await store.pin(cid);
      expect(await store.isPinned(cid)).to.equal(true);
      await store.unpin(cid);
      await store.unpin(cid);
      expect(await store.isPinned(cid)).to.equal(false);
      expect(await store.has(cid)).to.equal(true); // unpinning does not delete
    });

    it("reports each block it writes, and deletes the unpinned ones it is asked to (a refused submission)", async function () {
      const written: string[] = [];
      const cid = await store.add([bytes(2 * MiB + 5, 29)], { onBlock: (c) => written.push(c) });
      expect(written).to.include(cid);
      expect(written).to.have.length(4); // three raw leaves and the root
      const pinned = await store.add([bytes(300, 31)]);
      await store.pin(pinned);
      await store.deleteBlocks([...written, pinned, await computeCid([bytes(10, 37)])]);
      for (const c of written) expect(await store.has(c), c).to.equal(false);
      expect(await store.has(pinned)).to.equal(true);
      await store.unpin(pinned);
    });

    it("unpins a CID that was never pinned, or never added, without error", async function () {
      await store.unpin(await store.add([bytes(10, 19)]));
      await store.unpin(await computeCid([bytes(10, 23)]));
    });
  });

  describe("failures", function () {
    // The offline node never finds content it lacks: without a timeout these calls would hang.
    it("fails on a CID the offline node lacks with STORE_TIMEOUT or STORE_NOT_FOUND instead of hanging", async function () {
      this.timeout(15_000);
      const missing = await computeCid([bytes(64, 29)]);
      const quick = await KuboStore.open({ url: daemon.apiUrl, timeoutMs: 1_000 });
      try {
        for (const call of [() => quick.getBlock(missing), () => collect(quick.cat(missing)), () => quick.pin(missing)]) {
          const err = await failure(call);
          expect(err.code).to.be.oneOf(["STORE_TIMEOUT", "STORE_NOT_FOUND"]);
          expect(err.message).to.include(missing);
        }
      } finally {
        await quick.close();
      }
    });

    it("puts a block again when the node fails one put (an answer that is not JSON, seen in CI), and refuses with STORE_FAILED after three failed tries", async function () {
      // A proxy before the real node that spoils block/put answers: the first one, then every one.
      let spoil = 1;
      let spoiled = 0;
      const node = new URL(daemon.apiUrl);
      const proxy = http.createServer((req, res) => {
        const upstream = http.request({ host: node.hostname, port: node.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
          if (req.url?.startsWith("/api/v0/block/put") && spoil > 0) {
            spoil--;
            spoiled++;
            answer.resume();
            res.writeHead(200, { "content-type": "application/json" }).end("-not json");
            return;
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        req.pipe(upstream);
      });
      await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
      const lying = await KuboStore.open({ url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, timeoutMs: 10_000 });
      try {
        const once = bytes(1000, 41);
        expect(await lying.add([once])).to.equal(await computeCid([once]));
        expect(spoiled, "the one spoiled answer, then the same block put again").to.equal(1);
        spoil = Infinity;
        spoiled = 0;
        const err = await failure(() => lying.add([bytes(1000, 43)]));
        expect(err.code).to.equal("STORE_FAILED");
        expect(err.message).to.include("refused block/put");
        expect(spoiled, "three tries, then the node's failure is the answer").to.equal(3);
      } finally {
        await lying.close();
        proxy.closeAllConnections();
        await new Promise((resolve) => proxy.close(resolve));
      }
    });

    it("stops a call when the caller aborts it", async function () {
      const missing = await computeCid([bytes(64, 31)]);
      const err = await failure(() => store.getBlock(missing, { signal: AbortSignal.abort() }));
      expect(err.code).to.equal("STORE_ABORTED");
    });

    it("fails to open on a closed port with STORE_UNREACHABLE and says what to do", async function () {
      const url = `http://127.0.0.1:${await freePort()}`;
      const err = await failure(() => KuboStore.open({ url, timeoutMs: 2_000 }));
      expect(err.code).to.equal("STORE_UNREACHABLE");
      expect(err.message).to.equal(`no IPFS node answers at ${url}: start it or fix storage.url`);
    });

    it("rejects a string that is not a CID with STORE_BAD_CID, naming it", async function () {
      for (const call of [() => store.getBlock("not-a-cid"), () => store.has("not-a-cid"), () => collect(store.cat("not-a-cid"))]) {
        const err = await failure(call);
        expect(err.code).to.equal("STORE_BAD_CID");
        expect(err.message).to.equal('"not-a-cid" is not a CID: pass the string that add or computeCid returned');
      }
    });

    it("refuses every call once closed", async function () {
      const closing = await KuboStore.open({ url: daemon.apiUrl });
      await closing.close();
      expect((await failure(() => closing.has(bigCid))).code).to.equal("STORE_CLOSED");
      expect((await failure(() => closing.add([bytes(1)]))).code).to.equal("STORE_CLOSED");
    });
  });
});
