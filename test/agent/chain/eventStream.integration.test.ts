import { expect } from "chai";
import { promises as fs } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { JsonRpcProvider, Network } from "ethers";
import {
  ChainEventStream,
  ChainMovedError,
  isRangeTooLarge,
  ReorgTooDeepError,
  type ChainEventStreamOptions,
  type StreamBatch,
  type StreamHandler,
} from "../../../agent/chain/eventStream";
import { FileStreamStore, MemoryStreamStore, type BlockRef, type StreamState, type StreamStore } from "../../../agent/chain/eventStreamStore";
import { freePort, startCliChain, type CliChain } from "../cli/cliHarness";
import { mineBlocks } from "../../helpers/mineBlocks";

/** A real JSON-RPC provider that records each eth_getLogs range and refuses spans over `limit` blocks. */
class RecordingProvider extends JsonRpcProvider {
  ranges: Array<[number, number]> = [];
  refused = 0;
  constructor(
    url: string,
    private readonly limit = Infinity,
  ) {
    super(url, Network.from(31337), { staticNetwork: true });
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override async send(method: string, params: any[] | Record<string, any>): Promise<any> {
    if (method === "eth_getLogs") {
      const { fromBlock, toBlock } = (params as Array<{ fromBlock: string; toBlock: string }>)[0];
      if (Number(toBlock) - Number(fromBlock) + 1 > this.limit) {
        this.refused++;
        throw new Error(`block range too large: at most ${this.limit} blocks`);
      }
      this.ranges.push([Number(fromBlock), Number(toBlock)]);
    }
    return super.send(method, params);
  }
}

/** The caller's derived state, keyed by blockHash:logIndex as the stream's contract asks. */
function recorder(chain: CliChain) {
  const derived = new Map<string, string>();
  const deliveries: string[] = []; // every delivery, repeats included
  const reverts: Array<{ fromBlock: number; blocks: BlockRef[] }> = [];
  const batches: StreamBatch[] = [];
  const handler: StreamHandler = {
    apply(batch) {
      batches.push(batch);
      for (const block of batch.blocks) {
        for (const log of block.logs) {
          const name: string = chain.registry.interface.parseLog(log)!.args.name;
          deliveries.push(name);
          derived.set(`${block.hash}:${log.logIndex}`, name);
        }
      }
    },
    revert(fromBlock, blocks) {
      reverts.push({ fromBlock, blocks });
      const gone = new Set(blocks.map((b) => b.hash));
      for (const k of [...derived.keys()]) if (gone.has(k.split(":")[0])) derived.delete(k);
    },
  };
  return { handler, derived, deliveries, reverts, batches, names: () => [...derived.values()] };
}

/** A TCP proxy in front of the node, to take the endpoint away and bring it back on the same port. */
async function tcpProxy(targetPort: number) {
  const port = await freePort();
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  const open = () =>
    new Promise<void>((resolve, reject) => {
      server = net.createServer((client) => {
        const upstream = net.connect(targetPort, "127.0.0.1");
        for (const [a, b] of [
          [client, upstream],
          [upstream, client],
        ]) {
          sockets.add(a);
          a.on("error", () => {});
          a.on("close", () => (sockets.delete(a), b.destroy()));
        }
        client.pipe(upstream).pipe(client);
      });
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
  const close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server!.close(() => resolve());
    });
  await open();
  return { url: `http://127.0.0.1:${port}`, open, close };
}

async function until(done: () => boolean, what: string, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; !done(); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
  }
}

describe("agent/chain/eventStream: following the ledger reliably (issue 5, REQ-10b-i)", function () {
  let chain: CliChain;
  let seq = 0;
  const cleanups: Array<() => Promise<void> | void> = [];

  before(async function () {
    chain = await startCliChain();
  });
  afterEach(async function () {
    while (cleanups.length) await cleanups.pop()!();
  });
  after(async function () {
    await chain?.stop();
  });

  /** Registers a provider or hardware class (one block each); the nonce is asked afresh, as reverts rewind it. */
  async function emit(kind: "p" | "h"): Promise<string> {
    const name = `${kind}${++seq}`;
    const nonce = Number(await chain.provider.send("eth_getTransactionCount", [chain.admin.address, "pending"]));
    const registry = chain.registry.connect(chain.admin);
    const tx = kind === "p" ? await registry.registerProvider(name, { nonce }) : await registry.registerHardwareClass(name, { nonce });
    await tx.wait();
    return name;
  }

  /** A stream over both registry events (as two filters), starting at the next block. */
  async function stream(deps: { provider?: JsonRpcProvider; store?: StreamStore; handler: StreamHandler }, options: Partial<ChainEventStreamOptions> = {}) {
    const registry = await chain.registry.getAddress();
    const topic = (name: string) => chain.registry.interface.getEvent(name as "ProviderRegistered")!.topicHash;
    const s = new ChainEventStream(
      { provider: deps.provider ?? chain.provider, store: deps.store ?? new MemoryStreamStore(), handler: deps.handler },
      {
        filters: [
          { address: registry, topics: [topic("ProviderRegistered")] },
          { address: registry, topics: [topic("HardwareClassRegistered")] },
        ],
        fromBlock: (await chain.blockNumber()) + 1,
        ...options,
      },
    );
    cleanups.push(() => s.stop());
    return s;
  }

  function recordingProvider(limit?: number): RecordingProvider {
    const p = new RecordingProvider(chain.url, limit);
    cleanups.push(() => p.destroy());
    return p;
  }

  it("REQ-10b-i: delivers the registry's events in chain order, once each, in ranges of at most maxRange blocks", async function () {
    const r = recorder(chain);
    const provider = recordingProvider();
    const s = await stream({ provider, handler: r.handler }, { maxRange: 2 });
    const from = (await chain.blockNumber()) + 1;
    const first = [await emit("p"), await emit("h"), await emit("p"), await emit("h"), await emit("p")];
    await s.pollOnce();
    expect(r.deliveries).to.deep.equal(first);
    // The ranges cover every block once, none wider than maxRange.
    const head = await chain.blockNumber();
    expect(provider.ranges.every(([a, b]) => b - a + 1 <= 2)).to.equal(true);
    const covered = [...new Set(provider.ranges.map((x) => x.join("-")))].map((x) => x.split("-").map(Number));
    expect(covered[0][0]).to.equal(from);
    expect(covered.at(-1)![1]).to.equal(head);
    for (let i = 1; i < covered.length; i++) expect(covered[i][0]).to.equal(covered[i - 1][1] + 1);
    // Polling again delivers nothing new; a new event alone comes next.
    await s.pollOnce();
    const later = await emit("h");
    await s.pollOnce();
    expect(r.deliveries).to.deep.equal([...first, later]);
    expect(r.batches.every((b) => b.blocks.every((blk) => blk.logs.every((l) => l.blockHash === blk.hash)))).to.equal(true);
  });

  it("halves the range while the node refuses it as too large, and still delivers every event", async function () {
    const r = recorder(chain);
    const provider = recordingProvider(2);
    const s = await stream({ provider, handler: r.handler }, { maxRange: 2000 });
    const names = [await emit("p"), await emit("p"), await emit("h"), await emit("p"), await emit("h")];
    await s.pollOnce();
    expect(r.deliveries).to.deep.equal(names);
    expect(provider.refused).to.be.greaterThan(0);
    expect(provider.ranges.every(([a, b]) => b - a + 1 <= 2)).to.equal(true);
  });

  it("recognises the ways nodes say a getLogs range is too large", function () {
    expect(isRangeTooLarge(new Error("query returned more than 10000 results"))).to.equal(true);
    expect(isRangeTooLarge({ error: { code: -32005, message: "limit exceeded" } })).to.equal(true);
    expect(isRangeTooLarge({ code: "SERVER_ERROR", response: { statusCode: 413 } })).to.equal(true);
    expect(isRangeTooLarge(new Error("connect ECONNREFUSED 127.0.0.1:8545"))).to.equal(false);
  });

  it("holds back the newest blocks until they have the confirmations asked for", async function () {
    const r = recorder(chain);
    const s = await stream({ handler: r.handler }, { confirmations: 2 });
    const names = [await emit("p"), await emit("h"), await emit("p")];
    await s.pollOnce();
    expect(r.deliveries).to.deep.equal(names.slice(0, 1));
    await mineBlocks(chain.provider, 2);
    await s.pollOnce();
    expect(r.deliveries).to.deep.equal(names);
  });

  for (const branch of [
    { title: "a longer branch", dropped: 2, replacing: 3 },
    { title: "a shorter branch", dropped: 3, replacing: 1 },
  ]) {
    it(`reverts the dropped blocks when ${branch.title} replaces them, and delivers its events instead`, async function () {
      const r = recorder(chain);
      const s = await stream({ handler: r.handler });
      const kept = await emit("p");
      await s.pollOnce();
      const snapshot = await chain.provider.send("evm_snapshot", []);
      const forkBlock = await chain.blockNumber();
      const old: string[] = [];
      for (let i = 0; i < branch.dropped; i++) old.push(await emit("h"));
      await s.pollOnce();
      const oldHashes = await Promise.all(
        old.map((_, i) => chain.provider.send("eth_getBlockByNumber", ["0x" + (forkBlock + 1 + i).toString(16), false]).then((b) => b.hash)),
      );
      expect(r.names()).to.deep.equal([kept, ...old]);

      await chain.provider.send("evm_revert", [snapshot]);
      const fresh: string[] = [];
      for (let i = 0; i < branch.replacing; i++) fresh.push(await emit("p"));
      await s.pollOnce();

      expect(r.reverts).to.have.length(1);
      expect(r.reverts[0].fromBlock).to.equal(forkBlock + 1);
      expect(r.reverts[0].blocks.map((b) => b.hash)).to.deep.equal(oldHashes);
      expect(r.names()).to.deep.equal([kept, ...fresh]);
      expect(r.deliveries).to.deep.equal([kept, ...old, ...fresh]); // the new branch came once
      expect(s.position!.hash).to.equal((await chain.provider.send("eth_getBlockByNumber", ["latest", false])).hash);
    });
  }

  it("refuses to guess when the chain forks below its window: reports the reorg and moves nothing", async function () {
    const r = recorder(chain);
    const s = await stream({ handler: r.handler }, { window: 2 });
    const kept = [await emit("p"), await emit("h")];
    await s.pollOnce();
    const snapshot = await chain.provider.send("evm_snapshot", []);
    const old = [await emit("h"), await emit("h"), await emit("h")];
    await s.pollOnce();
    const position = s.position;
    await chain.provider.send("evm_revert", [snapshot]);
    for (let i = 0; i < 4; i++) await emit("p");
    await expect(s.pollOnce()).to.be.rejectedWith(ReorgTooDeepError);
    expect(r.reverts).to.deep.equal([]);
    expect(s.position).to.deep.equal(position);
    expect(r.names()).to.deep.equal([...kept, ...old]);
  });

  it("delivers a batch again after apply failed, skipping nothing", async function () {
    const r = recorder(chain);
    let fail = true;
    const handler: StreamHandler = {
      apply: (batch) => (fail ? ((fail = false), Promise.reject(new Error("database busy"))) : r.handler.apply(batch)),
      revert: r.handler.revert,
    };
    const s = await stream({ handler });
    const names = [await emit("p"), await emit("h")];
    await expect(s.pollOnce()).to.be.rejectedWith("database busy");
    await s.pollOnce();
    expect(r.deliveries).to.deep.equal(names);
  });

  it("reads again when the logs and the blocks it was given disagree (the chain moved mid-read): at once a few times, then the poll fails and is retried", async function () {
    const r = recorder(chain);
    let tamper = 1;
    class MovingProvider extends RecordingProvider {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      override async send(method: string, params: any): Promise<any> {
        const answer = await super.send(method, params);
        if (method !== "eth_getLogs" || tamper <= 0 || answer.length === 0) return answer;
        tamper--; // an answer from a branch that is already gone
        return answer.map((l: { blockHash: string }) => ({ ...l, blockHash: "0x" + "ab".repeat(32) }));
      }
    }
    const provider = new MovingProvider(chain.url);
    cleanups.push(() => provider.destroy());
    const s = await stream({ provider, handler: r.handler });
    const name = await emit("p");
    await s.pollOnce(); // one moved read: read again within the poll
    expect(r.deliveries).to.deep.equal([name]);
    tamper = 3; // three in a row: the poll fails (its caller retries), nothing delivered twice or skipped
    const next = await emit("h");
    await expect(s.pollOnce()).to.be.rejectedWith(ChainMovedError);
    expect(r.deliveries).to.deep.equal([name]);
    await s.pollOnce();
    expect(r.deliveries).to.deep.equal([name, next]);
  });

  it("resumes after a restart from the saved state: no event lost, none doubled", async function () {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "ota-stream-"));
    cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, "stream.json");
    const r = recorder(chain);
    const first = await stream({ store: new FileStreamStore(file), handler: r.handler });
    const before = [await emit("p"), await emit("h")];
    await first.pollOnce();
    const after = [await emit("p"), await emit("h")];
    await first.stop(); // killed before it saw the later events
    const second = await stream({ store: new FileStreamStore(file), handler: r.handler }, { fromBlock: 0 });
    await second.pollOnce();
    expect(r.deliveries).to.deep.equal([...before, ...after]);
  });

  it("redelivers the last batch when killed between apply and the checkpoint, so an idempotent apply sees each log once", async function () {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "ota-stream-"));
    cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
    const file = new FileStreamStore(path.join(dir, "stream.json"));
    const r = recorder(chain);
    const first = await stream({ store: file, handler: r.handler });
    const a = await emit("p");
    await first.pollOnce();
    const saved = await file.load();
    const b = await emit("h");
    let killed = false;
    const dying: StreamStore = {
      load: () => file.load(),
      save: async (st: StreamState) => (killed ? file.save(st) : ((killed = true), Promise.reject(new Error("killed")))),
    };
    const crashing = await stream({ store: dying, handler: r.handler });
    await expect(crashing.pollOnce()).to.be.rejectedWith("killed");
    expect(await file.load()).to.deep.equal(saved); // the checkpoint did not move

    const restarted = await stream({ store: file, handler: r.handler });
    await restarted.pollOnce();
    expect(r.deliveries).to.deep.equal([a, b, b]); // delivered again, with the same keys...
    expect(r.names()).to.deep.equal([a, b]); // ...so the derived state holds it once
    expect(r.batches.at(-1)!.blocks).to.deep.equal(r.batches.at(-2)!.blocks);
    expect(await file.load()).to.deep.equal(r.batches.at(-1)!.checkpoint);
  });

  it("reports the endpoint going away, backs off, reconnects and continues without losing events", async function () {
    const proxy = await tcpProxy(Number(new URL(chain.url).port));
    cleanups.push(() => proxy.close().catch(() => {}));
    const provider = new JsonRpcProvider(proxy.url, Network.from(31337), { staticNetwork: true });
    cleanups.push(() => provider.destroy());
    const r = recorder(chain);
    const retries: number[] = [];
    const s = await stream(
      { provider, handler: r.handler },
      { pollMs: 50, backoff: { initialMs: 20, maxMs: 160 }, onError: (_e, retry) => retries.push(retry.retryInMs) },
    );
    s.start();
    const a = await emit("p");
    await until(() => r.deliveries.length === 1, "the first event");

    await proxy.close();
    const later = [await emit("h"), await emit("p")];
    await until(() => retries.length >= 5, "five failed polls");
    expect(r.deliveries).to.deep.equal([a]);
    expect(retries.slice(0, 5)).to.deep.equal([20, 40, 80, 160, 160]); // doubling, capped

    await proxy.open();
    await until(() => r.deliveries.length === 3, "the events sent while the endpoint was away");
    await s.stop();
    expect(r.deliveries).to.deep.equal([a, ...later]);
  });
});
