/** What the stream needs of a provider: raw JSON-RPC (no answer cache in between). */
export interface RpcSender {
  send(method: string, params: unknown[]): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}
import { OtaError } from "../core/errors";
import type { BlockRef, StreamState, StreamStore, WindowBlock } from "./eventStreamStore";

export type TopicFilter = Array<string | string[] | null>;
export interface LogFilter {
  address: string | string[];
  topics?: TopicFilter;
}

/** A log as the node returned it (plain values, so `Interface.parseLog` takes it as is). */
export interface StreamLog {
  address: string;
  topics: string[];
  data: string;
  blockNumber: number;
  blockHash: string;
  transactionHash: string;
  transactionIndex: number;
  logIndex: number;
}

export interface StreamBlock extends BlockRef {
  logs: StreamLog[]; // in logIndex order; key each by `${hash}:${logIndex}`
}

/** The logs of blocks fromBlock..toBlock, grouped per block (only blocks that have logs). */
export interface StreamBatch {
  fromBlock: number;
  toBlock: number;
  blocks: StreamBlock[];
  /** The state the stream saves once apply returns; a caller may persist it with its own data. */
  checkpoint: StreamState;
}

/**
 * The contract: `apply(batch)` runs first, then the stream saves `batch.checkpoint`. A crash (or a
 * failing save) in between makes the stream deliver the same batch again, with the same block
 * hashes and log indexes, so `apply` must be idempotent per (blockHash, logIndex): then every log
 * takes effect exactly once. `revert(fromBlock, blocks)` says that the listed blocks, already
 * applied, left the chain: the caller drops what it derived from them. It too may be repeated
 * after a crash and must be idempotent. A caller that keeps its data in a database should write
 * `checkpoint` (given to both) in the same transaction as the data, and be the stream's store:
 * then a crash leaves data and position describing the same block.
 */
export interface StreamHandler {
  apply(batch: StreamBatch): Promise<void> | void;
  revert(fromBlock: number, blocks: BlockRef[], checkpoint: StreamState): Promise<void> | void;
}

export interface ChainEventStreamOptions {
  filters: LogFilter[];
  fromBlock?: number; // first block to read when the store holds no state (default 0)
  confirmations?: number; // blocks newer than head - confirmations wait (default 0, for dev chains)
  maxRange?: number; // most blocks per eth_getLogs (default 2000); halved when the node refuses
  window?: number; // recent blocks remembered for fork points and exactly-once (default 64)
  pollMs?: number; // between polls once caught up (default 2000)
  backoff?: { initialMs?: number; maxMs?: number }; // after failures: doubles from initialMs up to maxMs
  onError?: (err: unknown, retry: { failures: number; retryInMs: number }) => void;
  /**
   * The chain forked below the window (REORG_TOO_DEEP): the stream cannot tell what to undo. By
   * default it stops polling (retrying cannot help) and says so here once; the caller reports the
   * state and waits for an operator.
   */
  onHalt?: (err: ReorgTooDeepError) => void;
  /**
   * Instead of halting, for a caller that can catch up by asking the ledger (it only hints, or
   * re-checks what it holds): the stream goes on from the head, its window forgotten, and calls
   * this once; one that fails is called again at the next poll, before anything else is read.
   */
  onResync?: (err: ReorgTooDeepError, at: { block: number }) => Promise<void> | void;
}

export class EventStreamError extends OtaError {}
/** The chain forked below the remembered window: the stream cannot find what to revert. */
export class ReorgTooDeepError extends EventStreamError {}
/** The node's answers within one read disagree (the chain moved meanwhile); read again. */
export class ChainMovedError extends EventStreamError {}

interface Header {
  number: number;
  hash: string;
  parentHash: string;
  timestamp: number; // unix s
}

const RANGE_TOO_LARGE = /query returned more than|block range|range too large|range is too large|limit exceeded|too many (blocks|results|logs)|response size/i;

/** Whether the node refused an eth_getLogs because the range or the answer was too large. */
export function isRangeTooLarge(err: unknown): boolean {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let e: any = err;
  for (let depth = 0; e && typeof e === "object" && depth < 6; depth++) {
    if (e.code === -32005 || e.status === 413 || e.statusCode === 413 || e.response?.statusCode === 413) return true;
    if (RANGE_TOO_LARGE.test([e.message, e.shortMessage, e.error?.message].filter((m) => typeof m === "string").join(" "))) return true;
    e = e.error ?? e.info?.error ?? e.cause;
  }
  return false;
}

const hex = (n: number) => "0x" + n.toString(16);
const key = (hash: string, logIndex: number) => `${hash}:${logIndex}`;

/**
 * Delivers the logs matching `filters` once each, in chain order, across reorgs and restarts
 * (issue 5). Each poll reads from the stored block to head - confirmations in bounded ranges;
 * a block whose parent hash is not the stored hash of the block before it means a reorg: the
 * stream walks back through its window to the fork point, has the caller revert the dropped
 * blocks, and reads the new branch. Failures are reported and retried with capped backoff; the
 * state only moves after the caller has taken a batch, so nothing is ever skipped.
 */
export class ChainEventStream {
  private readonly o: Required<Omit<ChainEventStreamOptions, "onError" | "onHalt" | "onResync" | "backoff">> & { initialMs: number; maxMs: number };
  private state: StreamState | undefined;
  private range: number;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private running: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private haltedBy: ReorgTooDeepError | undefined;
  private resyncDue: { err: ReorgTooDeepError; at: { block: number } } | undefined;
  private newest: { number: number; timestamp: number } | undefined;

  constructor(
    private readonly deps: { provider: RpcSender; store: StreamStore; handler: StreamHandler },
    private readonly options: ChainEventStreamOptions,
  ) {
    this.o = {
      filters: options.filters,
      fromBlock: options.fromBlock ?? 0,
      confirmations: options.confirmations ?? 0,
      maxRange: options.maxRange ?? 2000,
      window: options.window ?? 64,
      pollMs: options.pollMs ?? 2000,
      initialMs: options.backoff?.initialMs ?? 500,
      maxMs: options.backoff?.maxMs ?? 30_000,
    };
    if (this.o.maxRange < 1 || this.o.window < 1) throw new EventStreamError("STREAM_OPTIONS", "maxRange and window must be at least 1");
    this.range = this.o.maxRange;
  }

  /** The last processed block (fromBlock - 1 before the first), as saved. */
  get position(): { block: number; hash: string | null } | undefined {
    return this.state && { block: this.state.block, hash: this.state.hash };
  }

  /**
   * The newest block the stream has read a header of, and its time: how fresh the chain the node
   * shows is (a frozen endpoint keeps answering, with old blocks). Undefined before the first read.
   */
  get newestBlock(): { number: number; timestamp: number } | undefined {
    return this.newest;
  }

  /** Why the stream stopped following the chain by itself (a reorganisation below its window), if it did. */
  get halted(): ReorgTooDeepError | undefined {
    return this.haltedBy;
  }

  /** Goes on from the head (less the confirmations), the window forgotten; saved before it returns. */
  private async restartAtHead(): Promise<{ block: number }> {
    const at = Number(await this.deps.provider.send("eth_blockNumber", [])) - this.o.confirmations;
    const hash = at >= 0 ? ((await this.header(at))?.hash ?? null) : null;
    if (at >= 0 && hash === null) throw new ChainMovedError("CHAIN_MOVED", `block ${at} is not on the chain the node follows`);
    const next: StreamState = { block: at, hash, window: hash === null ? [] : [{ number: at, hash, logs: [] }] };
    await this.deps.store.save(next);
    this.state = next;
    return { block: at };
  }

  /** Polls until stopped; failures go to onError and are retried, never thrown; a reorganisation below the window halts it (onHalt). */
  start(): void {
    if (this.loop || this.haltedBy) return;
    this.stopped = false;
    this.loop = this.run();
  }

  /** Stops the timer and waits for the poll in flight (it stops after its current range). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wake?.();
    await this.loop;
    await this.running;
    this.loop = undefined;
  }

  /** One poll up to the current head; polls never overlap. Rejects on failure (start() retries). */
  pollOnce(): Promise<void> {
    const next = this.running.then(() => this.poll());
    this.running = next.catch(() => {});
    return next;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let delay = this.o.pollMs;
      try {
        await this.pollOnce();
        failures = 0;
      } catch (err) {
        if (err instanceof ReorgTooDeepError) {
          this.loop = undefined; // halted (poll said so through onHalt): retrying cannot help
          return;
        }
        failures++;
        delay = Math.min(this.o.maxMs, this.o.initialMs * 2 ** Math.min(failures - 1, 30));
        try {
          this.options.onError?.(err, { failures, retryInMs: delay });
        } catch {
          // a failing error callback must not stop the stream
        }
      }
      if (!this.stopped) await new Promise<void>((resolve) => ((this.wake = resolve), (this.timer = setTimeout(resolve, delay))));
    }
  }

  private async poll(): Promise<void> {
    if (this.haltedBy) throw this.haltedBy;
    if (this.resyncDue) {
      await this.options.onResync?.(this.resyncDue.err, this.resyncDue.at);
      this.resyncDue = undefined;
    }
    try {
      // The chain moving under a read (CHAIN_MOVED) is read again at once, a few times: a caller's
      // single poll (a module starting) should not fail because a block came or went meanwhile.
      for (let attempt = 1; ; attempt++) {
        try {
          await this.follow();
          break;
        } catch (err) {
          if (!(err instanceof ChainMovedError) || attempt >= 3 || this.stopped) throw err;
        }
      }
    } catch (err) {
      if (err instanceof ReorgTooDeepError && this.options.onResync) {
        this.resyncDue = { err, at: await this.restartAtHead() };
        await this.options.onResync(err, this.resyncDue.at);
        this.resyncDue = undefined;
        return;
      }
      if (err instanceof ReorgTooDeepError) {
        this.haltedBy = err;
        try {
          this.options.onHalt?.(err);
        } catch {
          // a failing callback must not hide the halt
        }
      }
      throw err;
    }
  }

  private async follow(): Promise<void> {
    this.state ??= (await this.deps.store.load()) ?? { block: this.o.fromBlock - 1, hash: null, window: [] };
    const head = Number(await this.deps.provider.send("eth_blockNumber", []));
    // The stored tip must still be on the chain, also when the chain became shorter than it.
    if (this.state.hash !== null && (await this.header(this.state.block))?.hash !== this.state.hash) await this.rewind();
    const target = head - this.o.confirmations;
    while (!this.stopped && this.state.block < target) {
      const s = this.state;
      const from = s.block + 1;
      const first = await this.header(from);
      if (!first) return; // behind the head we were told of: a reorg, seen on the next poll
      if (s.hash !== null && first.parentHash !== s.hash) {
        await this.rewind();
        continue;
      }
      await this.step(s, first, Math.min(target, from + this.range - 1));
    }
  }

  /** Reads, checks and delivers blocks first.number..to (or fewer, if the node wants smaller ranges). */
  private async step(s: StreamState, first: Header, wantedTo: number): Promise<void> {
    const from = first.number;
    const { to, logs } = await this.fetchLogs(from, wantedTo);
    const tailStart = Math.max(from, to - this.o.window + 1);
    const numbers = new Set<number>([from, ...logs.map((l) => l.blockNumber)]);
    for (let n = tailStart; n <= to; n++) numbers.add(n);
    const headers = new Map<number, Header>();
    await Promise.all(
      [...numbers].map(async (n) => {
        const h = await this.header(n);
        if (!h) throw new ChainMovedError("CHAIN_MOVED", `block ${n} disappeared while reading ${from}..${to}`);
        headers.set(n, h);
      }),
    );
    // The logs and the remembered blocks must all be of the branch whose first block we checked.
    const moved = (why: string) => new ChainMovedError("CHAIN_MOVED", `the chain changed while reading ${from}..${to}: ${why}`);
    if (headers.get(from)!.hash !== first.hash) throw moved(`block ${from} was replaced`);
    for (let n = tailStart + 1; n <= to; n++) if (headers.get(n)!.parentHash !== headers.get(n - 1)!.hash) throw moved(`block ${n} does not follow ${n - 1}`);
    for (const l of logs) if (headers.get(l.blockNumber)!.hash !== l.blockHash) throw moved(`log ${l.blockHash}:${l.logIndex} is of another branch`);

    const delivered = new Set(s.window.flatMap((b) => b.logs.map((i) => key(b.hash, i))));
    const blocks: StreamBlock[] = [];
    for (const l of logs) {
      if (delivered.has(key(l.blockHash, l.logIndex))) continue;
      if (blocks.at(-1)?.number !== l.blockNumber) blocks.push({ number: l.blockNumber, hash: l.blockHash, logs: [] });
      blocks.at(-1)!.logs.push(l);
    }
    const withLogs = new Map(blocks.map((b) => [b.number, b]));
    const added: WindowBlock[] = [...numbers]
      .filter((n) => n >= tailStart || withLogs.has(n))
      .sort((a, b) => a - b)
      .map((n) => ({ number: n, hash: headers.get(n)!.hash, logs: withLogs.get(n)?.logs.map((l) => l.logIndex) ?? [] }));
    const next: StreamState = {
      block: to,
      hash: headers.get(to)!.hash,
      window: [...s.window, ...added].filter((b) => b.number > to - this.o.window),
    };
    if (blocks.length > 0) await this.deps.handler.apply({ fromBlock: from, toBlock: to, blocks, checkpoint: structuredClone(next) });
    await this.deps.store.save(next);
    this.state = next;
  }

  /** Finds the newest remembered block still on the chain, has the caller revert the ones after it. */
  private async rewind(): Promise<void> {
    const s = this.state!;
    let fork: { number: number; hash: string | null } | undefined;
    for (let i = s.window.length - 1; i >= 0 && !fork; i--) {
      if ((await this.header(s.window[i].number))?.hash === s.window[i].hash) fork = s.window[i];
    }
    // The window reaching back to fromBlock means that everything we delivered was dropped.
    if (!fork && s.window[0]?.number === this.o.fromBlock) fork = { number: this.o.fromBlock - 1, hash: null };
    if (!fork) {
      throw new ReorgTooDeepError(
        "REORG_TOO_DEEP",
        `the chain forked below block ${s.window[0]?.number ?? s.block}, beyond the ${this.o.window}-block window`,
        {
          details: { block: s.block, hash: s.hash },
        },
      );
    }
    const dropped = s.window.filter((b) => b.number > fork!.number).map((b) => ({ number: b.number, hash: b.hash }));
    const next: StreamState = { block: fork.number, hash: fork.hash, window: s.window.filter((b) => b.number <= fork!.number) };
    await this.deps.handler.revert(fork.number + 1, dropped, structuredClone(next));
    await this.deps.store.save(next);
    this.state = next;
  }

  /** The logs of from..to, halving the range while the node refuses it as too large. */
  private async fetchLogs(from: number, to: number): Promise<{ to: number; logs: StreamLog[] }> {
    for (;;) {
      try {
        return { to, logs: await this.getLogs(from, to) };
      } catch (err) {
        if (!isRangeTooLarge(err) || to === from) throw err;
        to = from + Math.floor((to - from + 1) / 2) - 1;
        this.range = to - from + 1; // the node's limit holds for the next ranges too
      }
    }
  }

  private async getLogs(from: number, to: number): Promise<StreamLog[]> {
    const answers = await Promise.all(
      this.o.filters.map((f) =>
        this.deps.provider.send("eth_getLogs", [{ address: f.address, topics: f.topics ?? [], fromBlock: hex(from), toBlock: hex(to) }]),
      ),
    );
    const byKey = new Map<string, StreamLog>(); // a log may match several filters
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    for (const raw of answers.flat() as any[]) {
      if (raw.removed) continue;
      const log: StreamLog = {
        address: raw.address,
        topics: raw.topics,
        data: raw.data,
        blockNumber: Number(raw.blockNumber),
        blockHash: raw.blockHash,
        transactionHash: raw.transactionHash,
        transactionIndex: Number(raw.transactionIndex),
        logIndex: Number(raw.logIndex),
      };
      byKey.set(key(log.blockHash, log.logIndex), log);
    }
    return [...byKey.values()].sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);
  }

  private async header(n: number): Promise<Header | null> {
    if (n < 0) return null;
    const b = await this.deps.provider.send("eth_getBlockByNumber", [hex(n), false]);
    if (!b) return null;
    const h = { number: Number(b.number), hash: b.hash, parentHash: b.parentHash, timestamp: Number(b.timestamp) };
    if (!this.newest || h.number >= this.newest.number) this.newest = { number: h.number, timestamp: h.timestamp };
    return h;
  }
}
