import type { Provider, TypedDataDomain } from "ethers";
import type { UpdateRegistry } from "../chain/contracts";
import { ChainEventStream, type RpcSender, type StreamBatch, type StreamLog } from "../chain/eventStream";
import { FileStreamStore } from "../chain/eventStreamStore";
import { OtaError } from "../core/errors";
import { decodeStreamedRelease, type LedgerRelease } from "../chain/releaseEvents";

/** What the device cares about on the ledger, in chain order. */
export type LedgerEvent =
  /** `release`: the whole record and signature, decoded from the event and checked against its id (when the watcher has the domain). */
  | { kind: "published"; releaseId: string; component: string; block: number; release?: LedgerRelease }
  | { kind: "revoked"; releaseId: string; component: string; block: number }
  | { kind: "vulnerable"; releaseId: string; component: string; block: number }
  | { kind: "barred"; provider: number; block: number };

const EVENTS = ["ReleasePublished", "ReleaseRevoked", "ReleaseFlaggedVulnerable", "ProviderBarred"] as const;

/**
 * The in-device tracker (DEP-8.2.1): the registry's events the device acts on, read through the
 * project's ledger event stream (agent/chain/eventStream: bounded ranges, a persisted checkpoint,
 * exactly once per block hash and log index, reorganisations detected). New blocks arrive by
 * subscription when the endpoint pushes them (a WebSocket), and by polling every `pollMs` in any
 * case. A reorganisation cannot uninstall anything: the events of the new branch are simply
 * handed over like any others.
 */
export class LedgerWatcher {
  private readonly stream: ChainEventStream;
  private lastHead = { number: -1, timestamp: 0 };
  private readonly onBlock = () => void this.poll().catch(this.o.onError ?? (() => {}));

  constructor(
    private readonly provider: Provider & RpcSender,
    private readonly registry: UpdateRegistry,
    checkpointFile: string,
    private readonly handle: (events: LedgerEvent[]) => Promise<void>,
    private readonly o: {
      fromBlock: number;
      /** The registry's EIP-712 domain: published events then carry their decoded release, which the device checks without reading the logs again. */
      domain?: TypedDataDomain;
      pollMs?: number;
      maxRange?: number;
      reorgDepth?: number;
      onError?: (err: unknown) => void;
      /** After a reorganisation below the window: the watcher went on from the head; what it did not read, the caller asks the ledger for. */
      onResync?: (why: string) => Promise<void> | void;
    },
  ) {
    const topics = EVENTS.map((name) => registry.interface.getEvent(name)!.topicHash);
    this.stream = new ChainEventStream(
      { provider, store: new FileStreamStore(checkpointFile), handler: { apply: (batch) => this.handle(this.decode(batch)), revert: () => {} } },
      {
        filters: [{ address: String(registry.target), topics: [topics] }],
        fromBlock: o.fromBlock,
        maxRange: o.maxRange,
        window: o.reorgDepth,
        pollMs: o.pollMs ?? 4000,
        onError: (err) => o.onError?.(err),
        // A reorganisation below the window (REORG_TOO_DEEP, issue 16): the watcher only hints
        // (every release is checked on the ledger before it is taken), so rather than stop it goes
        // on from the head and the caller catches up by asking the ledger.
        onResync: async (err, at) => {
          o.onError?.(new OtaError("REORG_TOO_DEEP", `${err.message}: following the ledger again from block ${at.block}, and asking it for what was missed`));
          await o.onResync?.(err.message);
        },
      },
    );
  }

  /** The newest block seen: its number and time (unix s), for the staleness check. */
  get head(): { number: number; timestamp: number } {
    return this.lastHead;
  }

  async start(): Promise<void> {
    await this.poll();
    await this.provider.on("block", this.onBlock).catch(() => {}); // pushed when the endpoint can
    this.stream.start();
  }

  async stop(): Promise<void> {
    await this.provider.off("block", this.onBlock).catch(() => {});
    await this.stream.stop();
  }

  /** Reads every event from the checkpoint to the head and hands them over. */
  async poll(): Promise<void> {
    await this.stream.pollOnce();
    const head = await this.provider.send("eth_getBlockByNumber", ["latest", false]); // not ethers' cached "latest"
    if (head) this.lastHead = { number: Number(head.number), timestamp: Number(head.timestamp) };
  }

  /** The event's release, if it decodes and hashes to its id; otherwise the device reads it from the ledger (and refuses it there). */
  private release(log: StreamLog): LedgerRelease | undefined {
    if (!this.o.domain) return undefined;
    try {
      return decodeStreamedRelease(this.registry, this.o.domain, log);
    } catch {
      return undefined;
    }
  }

  private decode(batch: StreamBatch): LedgerEvent[] {
    const out: LedgerEvent[] = [];
    for (const block of batch.blocks) {
      for (const log of block.logs) {
        const p = this.registry.interface.parseLog(log);
        if (!p) continue;
        const at = block.number;
        if (p.name === "ReleasePublished")
          out.push({ kind: "published", releaseId: p.args.releaseId, component: p.args.component, block: at, release: this.release(log) });
        else if (p.name === "ReleaseRevoked") out.push({ kind: "revoked", releaseId: p.args.releaseId, component: p.args.component, block: at });
        else if (p.name === "ReleaseFlaggedVulnerable") out.push({ kind: "vulnerable", releaseId: p.args.releaseId, component: p.args.component, block: at });
        else if (p.name === "ProviderBarred") out.push({ kind: "barred", provider: Number(p.args.provider), block: at });
      }
    }
    return out;
  }
}
