import type { LedgerGate } from "./ledgerGate";
import type { ServerDatabase } from "./serverDatabase";
import type { ContentStore } from "../storage/contentStore";

/**
 * Follows the ledger for the firmware server (CAP-11.3-c): when a release is revoked the server
 * stops serving it and unpins its artifact. At start it reconciles every served artifact with the
 * ledger (catching revocations made while it was down), then polls for ReleaseRevoked events.
 * Serving does not depend on this loop: every request re-reads the release's status.
 * (Bars need no follower: each submission and each request asks the ledger.)
 */
export class RevocationFollower {
  private timer: NodeJS.Timeout | undefined;
  private nextBlock = 0;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly gate: LedgerGate,
    private readonly db: ServerDatabase,
    private readonly store: ContentStore,
    private readonly pollMs = 2000,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  async start(): Promise<void> {
    this.nextBlock = (await this.gate.blockNumber()) + 1;
    for (const a of this.db.artifacts("serving")) {
      if ((await this.gate.releaseStatus(a.releaseId)) === "revoked") await this.withdraw(a.releaseId, "revoked on the ledger");
    }
    this.schedule();
  }

  /** One poll: withdraws every served release revoked since the last one. Polls never overlap. */
  poll(): Promise<void> {
    const next = this.running.catch(() => {}).then(() => this.pollOnce());
    this.running = next.catch(() => {});
    return next;
  }

  private async pollOnce(): Promise<void> {
    const head = await this.gate.blockNumber();
    if (head < this.nextBlock) return;
    const registry = this.gate.registry;
    const logs = await registry.queryFilter(registry.filters.ReleaseRevoked(), this.nextBlock, head);
    for (const log of logs) await this.withdraw(log.args.releaseId, `revoked on the ledger: ${log.args.reason}`);
    this.nextBlock = head + 1;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.poll()
        .catch(this.onError) // a dropped RPC connection is retried at the next poll
        .finally(() => this.schedule());
    }, this.pollMs);
    this.timer.unref();
  }

  private async withdraw(releaseId: string, reason: string): Promise<void> {
    const artifact = this.db.artifact(releaseId);
    if (!artifact || artifact.state === "withdrawn") return;
    this.db.withdrawArtifact(releaseId, reason);
    if (!this.db.cidStillServed(artifact.cid, releaseId)) await this.store.unpin(artifact.cid);
  }
}
