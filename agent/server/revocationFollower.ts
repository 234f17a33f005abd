import type { LedgerGate } from "./ledgerGate";
import type { ServerDatabase } from "./serverDatabase";
import type { ContentStore } from "../storage/contentStore";
import { ChainEventStream, type StreamBatch } from "../chain/eventStream";
import { MemoryStreamStore } from "../chain/eventStreamStore";
import { OtaError } from "../core/errors";

/**
 * Follows the ledger for the firmware server (CAP-11.3-c): when a release is revoked the server
 * stops serving it and unpins its artifact. At start it reconciles every served artifact with the
 * ledger (catching revocations made while it was down), then reads ReleaseRevoked events through
 * the ledger event stream from the head it started at, with the other events that can end a
 * device's entitlement (the server then forgets the answers it remembers: entitlementReads.ts). Serving does not depend on this loop:
 * every request re-reads the release's status. After a reorganisation it checks every served
 * artifact again (a release whose block was dropped is withdrawn too). A revocation later
 * reorganised away leaves the artifact withdrawn: the safe side. (Bars need no follower: each submission and request asks.)
 *
 * It also follows ReleasePublished, for artifacts submitted before their release was published
 * (issue 17): once the release checks out on the ledger (LedgerGate.release: storage and the
 * author's signature) its prepared artifact is served. That is bookkeeping, not the gate: a device
 * is served only after LedgerGate.release verifies the release anyway, so a device that asks
 * before the follower has seen the block is served as well, and the state follows.
 */
export class RevocationFollower {
  private stream: ChainEventStream | undefined;

  constructor(
    private readonly gate: LedgerGate,
    private readonly db: ServerDatabase,
    private readonly store: ContentStore,
    private readonly pollMs = 2000,
    private readonly onError: (err: unknown) => void = () => {},
    private readonly window?: number, // recent blocks remembered for reorganisations (default 64)
  ) {}

  async start(): Promise<void> {
    const from = (await this.gate.blockNumber()) + 1;
    await this.reconcile();
    const { registry, fleet, policies } = this.gate;
    const topics = (c: { interface: { getEvent(name: string): { topicHash: string } | null } }, names: string[]) => [
      names.map((n) => c.interface.getEvent(n)!.topicHash),
    ];
    this.stream = new ChainEventStream(
      {
        provider: this.gate.rpc,
        store: new MemoryStreamStore(),
        handler: {
          apply: (batch) => this.apply(batch),
          revert: async () => {
            this.gate.forgetEntitlements();
            await this.reconcile();
          },
        },
      },
      {
        // Revocations withdraw artifacts; these and the other events that can turn a device's
        // entitlement from yes to no make the server forget the answers it remembers (issue 17).
        // ReleasePublished serves a prepared artifact (it changes no answer already given).
        filters: [
          {
            address: String(registry.target),
            topics: topics(registry, ["ReleaseRevoked", "ReleaseFlaggedVulnerable", "ProviderBarred", "ReleasePublished", "ProviderSignerCompromised"]),
          },
          { address: String(fleet.target), topics: topics(fleet, ["DeviceSuspended", "DeviceRecordRevoked", "DeviceBatchRevoked"]) },
          ...(policies ? [{ address: String(policies.target), topics: topics(policies, ["PolicyAttached", "PolicyDetached"]) }] : []),
        ],
        fromBlock: from,
        pollMs: this.pollMs,
        window: this.window,
        onError: this.onError,
        // A reorganisation below the window (REORG_TOO_DEEP, issue 16): the events in between cannot
        // be trusted, so the follower goes on from the head and checks every served artifact, as at start.
        onResync: async (err, at) => {
          this.onError(
            new OtaError(
              "REORG_TOO_DEEP",
              `REORG_TOO_DEEP: ${err.message}: following the ledger again from block ${at.block} after checking every served artifact`,
            ),
          );
          await this.reconcile();
        },
      },
    );
    this.stream.start();
  }

  /**
   * Every served artifact checked against the ledger: a release revoked while nobody watched is
   * withdrawn, and so is one no longer on the ledger at all (a reorganisation dropped the block
   * that published it: issue 16); its author submits it again if it is published again.
   */
  private async reconcile(): Promise<void> {
    // Prepared artifacts whose release was published while nobody watched.
    for (const a of this.db.artifacts("prepared")) {
      if ((await this.gate.releaseStatus(a.releaseId)) !== "none") await this.promote(a.releaseId);
    }
    for (const a of this.db.artifacts("serving")) {
      const status = await this.gate.releaseStatus(a.releaseId);
      if (status === "revoked") await this.withdraw(a.releaseId, "revoked on the ledger");
      else if (status === "none")
        await this.withdraw(a.releaseId, "no longer on the ledger (a reorganisation dropped its block): submit it again if it is published again");
    }
  }

  /** One poll: withdraws every served release revoked since the last one. Polls never overlap. */
  poll(): Promise<void> {
    return this.stream!.pollOnce();
  }

  async stop(): Promise<void> {
    await this.stream?.stop();
  }

  private async apply(batch: StreamBatch): Promise<void> {
    const registryAddress = String(this.gate.registry.target).toLowerCase();
    const topic = (name: "ReleaseRevoked" | "ReleasePublished" | "ProviderSignerCompromised") => this.gate.registry.interface.getEvent(name)!.topicHash;
    const [revoked, published, compromised] = [topic("ReleaseRevoked"), topic("ReleasePublished"), topic("ProviderSignerCompromised")];
    const fromRegistry = (log: { address: string; topics: readonly string[] }, t: string) =>
      log.address.toLowerCase() === registryAddress && log.topics[0] === t;
    if (batch.blocks.some((b) => b.logs.some((log) => !fromRegistry(log, published)))) this.gate.forgetEntitlements();
    // A compromised key: the records it signed from its compromise time on no longer verify (docs/adr/0016).
    if (batch.blocks.some((b) => b.logs.some((log) => fromRegistry(log, compromised)))) this.gate.forgetVerifiedReleases();
    for (const block of batch.blocks) {
      for (const log of block.logs) {
        if (fromRegistry(log, revoked)) {
          const parsed = this.gate.registry.interface.parseLog(log)!;
          await this.withdraw(parsed.args.releaseId, `revoked on the ledger: ${parsed.args.reason}`);
        } else if (fromRegistry(log, published)) {
          const releaseId = String(log.topics[1]);
          if (this.db.artifact(releaseId)?.state === "prepared") await this.promote(releaseId);
        }
      }
    }
  }

  /**
   * Serves a prepared artifact once its release checks out on the ledger (and warms the gate's
   * cache of verified releases for the devices about to ask). A release that does not check out
   * stays prepared, and expires.
   */
  private async promote(releaseId: string): Promise<void> {
    try {
      await this.gate.release(releaseId);
    } catch (err) {
      this.onError(new OtaError("RELEASE_NOT_PROMOTED", `release ${releaseId} is published but does not check out yet: ${(err as Error).message}`));
      return;
    }
    this.db.promoteArtifact(releaseId);
    // Revoked in the same stretch of blocks: withdrawn as any served artifact would be.
    if ((await this.gate.releaseStatus(releaseId)) === "revoked") await this.withdraw(releaseId, "revoked on the ledger");
  }

  private async withdraw(releaseId: string, reason: string): Promise<void> {
    const artifact = this.db.artifact(releaseId);
    if (!artifact || artifact.state === "withdrawn") return;
    this.db.withdrawArtifact(releaseId, reason);
    if (!this.db.cidStillServed(artifact.cid, releaseId)) await this.store.unpin(artifact.cid);
  }
}
