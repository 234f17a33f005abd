import { promises as fs } from "node:fs";
import type { Provider } from "ethers";
import type { UpdateRegistry } from "../../typechain-types";
import { writeFileAtomic } from "../io/atomicFile";

/** What the device cares about on the ledger, in chain order. */
export type LedgerEvent =
  | { kind: "published"; releaseId: string; component: string; block: number }
  | { kind: "revoked"; releaseId: string; component: string; block: number }
  | { kind: "vulnerable"; releaseId: string; component: string; block: number }
  | { kind: "barred"; provider: number; block: number };

interface Checkpoint {
  block: number;
  hash: string;
}

/**
 * The in-device tracker (DEP-8.2.1): follows the registry's events itself. New blocks arrive by
 * subscription when the provider pushes them (a WebSocket endpoint), and by polling every
 * `pollMs` in any case, so a dropped subscription only slows it down. Logs are read from the
 * persisted checkpoint in ranges of at most `maxRange` blocks; the checkpoint moves only after
 * the handler has taken the events, so a crash replays them (the handler is idempotent) and never
 * skips any. If the checkpointed block is no longer on the chain (a reorganisation), it steps back
 * `reorgDepth` blocks. The full reorg-aware stream is the tracker's (issue 5).
 */
export class LedgerWatcher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  private lastHead = { number: -1, timestamp: 0 };
  // The pushed block number is used as is: ethers may answer "latest" from a cache for a while.
  private readonly onBlock = (blockNumber: number) => void this.poll(blockNumber).catch(this.onError);

  constructor(
    private readonly provider: Provider,
    private readonly registry: UpdateRegistry,
    private readonly checkpointFile: string,
    private readonly handle: (events: LedgerEvent[]) => Promise<void>,
    private readonly o: { fromBlock: number; pollMs?: number; maxRange?: number; reorgDepth?: number; onError?: (err: unknown) => void },
  ) {}

  private get onError() {
    return this.o.onError ?? (() => {});
  }

  /** The newest block seen: its number and time (unix s), for the staleness check. */
  get head(): { number: number; timestamp: number } {
    return this.lastHead;
  }

  async start(): Promise<void> {
    await this.poll();
    await this.provider.on("block", this.onBlock).catch(() => {}); // pushed when the endpoint can
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.provider.off("block", this.onBlock).catch(() => {});
    await this.running.catch(() => {});
  }

  /** Reads every event from the checkpoint to the head and hands them over. Polls never overlap. */
  poll(headHint?: number): Promise<void> {
    const next = this.running.catch(() => {}).then(() => this.pollOnce(headHint));
    this.running = next.catch(() => {});
    return next;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.poll()
        .catch(this.onError)
        .finally(() => this.schedule());
    }, this.o.pollMs ?? 4000);
    this.timer.unref();
  }

  private async pollOnce(headHint?: number): Promise<void> {
    const latest = await this.provider.getBlock("latest");
    const headBlock = headHint !== undefined && (!latest || headHint > latest.number) ? await this.provider.getBlock(headHint) : latest;
    if (!headBlock) return;
    this.lastHead = { number: headBlock.number, timestamp: headBlock.timestamp };
    let from = await this.resumeFrom();
    const maxRange = this.o.maxRange ?? 2000;
    while (from <= headBlock.number) {
      const to = Math.min(headBlock.number, from + maxRange - 1);
      const events = await this.read(from, to);
      await this.handle(events);
      const block = await this.provider.getBlock(to);
      await this.saveCheckpoint({ block: to, hash: block!.hash! });
      from = to + 1;
    }
  }

  private async resumeFrom(): Promise<number> {
    const cp = await this.loadCheckpoint();
    if (!cp) return this.o.fromBlock;
    const onChain = await this.provider.getBlock(cp.block);
    if (onChain?.hash === cp.hash) return cp.block + 1;
    return Math.max(this.o.fromBlock, cp.block - (this.o.reorgDepth ?? 12));
  }

  private async read(from: number, to: number): Promise<LedgerEvent[]> {
    const r = this.registry;
    const [published, revoked, flagged, barred] = await Promise.all([
      r.queryFilter(r.filters.ReleasePublished(), from, to),
      r.queryFilter(r.filters.ReleaseRevoked(), from, to),
      r.queryFilter(r.filters.ReleaseFlaggedVulnerable(), from, to),
      r.queryFilter(r.filters.ProviderBarred(), from, to),
    ]);
    const tagged = [
      ...published.map((l) => ({ l, e: { kind: "published" as const, releaseId: l.args.releaseId, component: l.args.component, block: l.blockNumber } })),
      ...revoked.map((l) => ({ l, e: { kind: "revoked" as const, releaseId: l.args.releaseId, component: l.args.component, block: l.blockNumber } })),
      ...flagged.map((l) => ({ l, e: { kind: "vulnerable" as const, releaseId: l.args.releaseId, component: l.args.component, block: l.blockNumber } })),
      ...barred.map((l) => ({ l, e: { kind: "barred" as const, provider: Number(l.args.provider), block: l.blockNumber } })),
    ];
    tagged.sort((a, b) => a.l.blockNumber - b.l.blockNumber || a.l.index - b.l.index);
    return tagged.map((t) => t.e);
  }

  private async loadCheckpoint(): Promise<Checkpoint | undefined> {
    try {
      const cp = JSON.parse(await fs.readFile(this.checkpointFile, "utf8")) as Checkpoint;
      return Number.isSafeInteger(cp.block) && typeof cp.hash === "string" ? cp : undefined;
    } catch {
      return undefined;
    }
  }

  private async saveCheckpoint(cp: Checkpoint): Promise<void> {
    await writeFileAtomic(this.checkpointFile, JSON.stringify(cp) + "\n");
  }
}
