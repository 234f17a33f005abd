import { promises as fs } from "node:fs";
import { createReadStream } from "node:fs";
import path from "node:path";
import type { Provider, TypedDataDomain } from "ethers";
import type { FleetRegistry, ReleaseBundles, ReleaseDeltas, UpdatePolicies, UpdateRegistry } from "../chain/contracts";
import { fetchDelta, imageFromDelta, type FetchedDelta } from "./deltaDelivery";
import { OtaError, VerificationError } from "../core/errors";
import type { DevicePolicy } from "../core/devicePolicy";
import { ledgerName, RELEASE_STATUS, type ReleaseStatusName } from "../core/ledgerCodes";
import { checkCandidate, checkLedgerView, startUpdate, transition, type LedgerView, type UpdateState, type ReleaseStatus } from "../core/updateCheck";
import {
  ContentRejected,
  DownloadRejected,
  LEDGER_RECORD_CODES,
  LedgerRecordRejected,
  ROLLBACK_CODES,
  UpdateDeclined,
  isResourceShortage,
  reportCodeOf,
  type LedgerRecordCode,
  type StaleLedgerView,
} from "../core/updateErrors";
import { SlotImageMismatchError } from "./slots/slotErrors";
import { artifactSize, decryptArtifact, MIN_SERVED_CHUNK_SIZE, readArtifactFile, splitStoredChunks } from "../crypto/artifactCipher";
import { ChunkMerkleTree, chunkLeaf } from "../crypto/chunkMerkle";
import { ArtifactFormatError } from "../core/errors";
import { keyWrapContext, unwrapContentKey } from "../crypto/keyWrap";
import { fetchRelease, type LedgerRelease } from "../chain/releaseEvents";
import { checkReleaseFacts } from "../chain/verifyLedgerRelease";
import { readUpdateFacts } from "../chain/ledgerLens";
import { writeFileAtomic } from "../files/atomicFile";
import { ServerRefusedError } from "../net/serverAnswer";
import type { DeviceIdentity } from "./downloadRelease";
import { DEFAULT_START_JITTER_MS, downloadFromSources, SourceSet, startJitter, wrappedKeyFromSources, type DeliverySource } from "./deliverySources";
import { BootStateCorruptError } from "./slots/slotErrors";
import { resetToSafeMode } from "./slots/safeMode";
import type { LedgerEvent } from "./ledgerWatcher";
import { SlotStore } from "./slots/slotStore";
import type { SlotImage as SlotImageRecord } from "./slots/bootState";
import { AgentMemory } from "./agentMemory";
import type { HealthCheck } from "./slots/healthCheck";
import { ReportSession, sendStatusReport } from "./statusReport";
import { openReportTransport, type ReportTransport, type TrackerSetting } from "./reportTransport";
import { isDeliveryFault, isFailedResult, isRetriedLater, type Outcome } from "../core/updateOutcome";
import { backoffDelayMs } from "../core/backoff";
import { callLedger, LedgerUnavailable } from "../chain/ledgerCall";
import type { ConcurrencyLimit } from "../core/concurrencyLimit";
import { LedgerProofs, type LedgerProofsSetting, type ProvenView } from "../chain/ledgerProofs";
import type { StatusReport } from "../core/statusReport";
import { UpstreamNoticeRejected, verifyUpdateNotice } from "./upstreamNotice";
import { answerImageQuery } from "./imageQuery";
import type { Envelope } from "../crypto/sealedMessage";
import { OfflineState } from "./offlineState";
import { verifyOfflineBundle, type OfflineFacts, type OfflineTrust } from "./offlineVerify";
import type { OpenedBundle } from "./offlineBundle";
import { installReleaseBundle } from "./releaseBundleInstall";
import type { InstalledVersion } from "../core/release";

export interface DeviceAgentOptions {
  dataDir: string; // slots/, downloads/, update-state.json, agent-state.json
  device: DeviceIdentity;
  serverUrl: string;
  /**
   * Where releases are fetched from, in order (REQ-10f-ii): firmware servers and IPFS trustless
   * gateways; a SourceSet keeps each one's health (and demotions) in its state file. Default:
   * `serverUrl` alone.
   */
  sources?: SourceSet | DeliverySource[];
  chain: {
    provider: Provider;
    registry: UpdateRegistry;
    fleet: FleetRegistry;
    policies?: UpdatePolicies;
    /** Where release bundles are (docs/adr/0019); without it a bundle is refused (BUNDLES_NOT_DEPLOYED). */
    bundles?: ReleaseBundles;
    /** A deployed update-check lens (agent/chain/ledgerLens), if there is one. */
    lens?: string;
    /** ReleaseDeltas beside the registry (ADR 0018): with it the device takes a release's delta from the image it runs when there is one. */
    deltas?: ReleaseDeltas;
    domain: TypedDataDomain;
    fromBlock: number;
  };
  components: string[]; // component ids this device runs
  policy: DevicePolicy;
  healthCheck: HealthCheck;
  trialAttempts?: number;
  /** Its tracker module, and how reports reach it (`transport`, ADR 0015: HTTP to `url` by default, or MQTT). heartbeatMs: how often DeviceRunner reports. */
  tracker?: TrackerSetting & { heartbeatMs?: number };
  /** The report transport to use instead of the one `tracker` names (a gateway's own link, a test's). */
  reportTransport?: ReportTransport;
  upstream?: string; // the tracker module whose notices this device takes (client-module mode; default: tracker.moduleId)
  pinnedSigners?: string[];
  /** Whether the facts acted on are proven with eth_getProof (device.json ledgerProofs, docs/adr/0010; default "auto"). */
  ledgerProofs?: LedgerProofsSetting;
  /** startJitterMs: the first round starts after a delay drawn from [0, startJitterMs] (default DEFAULT_START_JITTER_MS, 2 s; 0: at once). */
  download?: { timeoutMs?: number; attempts?: number; backoffMs?: number; startJitterMs?: number };
  /** A limit on the updates at once that this agent shares with the other agents of its process (DeviceRunner's maxConcurrentUpdates). */
  updates?: ConcurrencyLimit;
  /** A blocked delivery is tried again by retryPending after a backoff with jitter, per release (default 10 s doubling to 10 min; DeviceRunner sets it from its retry interval). */
  blockedRetry?: { baseMs?: number; maxMs?: number };
  clock?: () => number; // ms
  log?: (line: string) => void;
  /** Test hook: called between phases (e.g. to revoke a release after the download). */
  onPhase?: (phase: UpdateState["phase"], releaseId: string) => void | Promise<void>;
}

export interface UpdateOutcome {
  releaseId: string;
  outcome: Outcome; // what it means: agent/core/updateOutcome resultKind
  code: string;
  /** POLICY_REFUSED: the policy that refused and its reason code (`ota-ledger policy check` explains it). */
  policy?: { address: string; reason: string };
}

/**
 * The firmware consumer (X.1368 11.1): decides whether to take a release, verifies it in a fixed
 * order (agent/core/updateCheck: the ledger record, then the download chunk by chunk, then the
 * content), and only then writes the inactive slot, boots it on trial and confirms or rolls back.
 * Nothing touches the active slot before every check has passed. Every outcome is reported.
 */
export class DeviceAgent {
  /** Updates installed from a delta, deltas given up for the whole image (ADR 0018), and the bytes each way fetched. */
  readonly deltaStats = { installed: 0, fellBack: 0, deltaBytes: 0 };
  private queue: Promise<unknown> = Promise.resolve();
  private readonly declined = new Map<string, string>();
  private readonly needs = new Map<string, { releaseId: string; component: string; reason: string }>();
  private headTimestamp = 0;
  private headBlock: number | undefined;
  /** The endpoint's answers checked against storage proofs (docs/adr/0010). */
  private readonly proofs: LedgerProofs;

  private constructor(
    private readonly o: DeviceAgentOptions,
    readonly slots: SlotStore,
    /** Retries, the last notice's issue time and policy evidence, kept across restarts. */
    private readonly memory: AgentMemory,
  ) {
    this.proofs = new LedgerProofs(o.ledgerProofs ?? "auto", {
      provider: o.chain.provider,
      registry: o.chain.registry,
      fleet: o.chain.fleet,
      log: o.log,
      // "auto" remembers across restarts which endpoints have answered proofs (see LedgerProofs).
      answeredBefore: (endpoint) => memory.proofEndpoints.has(endpoint),
      answered: (endpoint) => memory.noteProofEndpoint(endpoint),
    });
  }

  /**
   * Opens the slots, finishes what a restart interrupted (pending trials) and reports it
   * (CAP-11.1-a-i). A corrupt boot state puts the device in safe mode (CAP-11.1-b): it keeps
   * running, reports, refuses automatic updates and takes only a manual install.
   */
  static async open(o: DeviceAgentOptions): Promise<DeviceAgent> {
    const root = path.join(o.dataDir, "slots");
    let slots: SlotStore;
    try {
      slots = await SlotStore.open(root, { clock: o.clock });
    } catch (err) {
      if (!(err instanceof BootStateCorruptError)) throw err;
      o.log?.(`${err.message}: entering safe mode`);
      await resetToSafeMode(root, { clock: o.clock });
      slots = await SlotStore.open(root, { clock: o.clock });
    }
    const memory = await AgentMemory.open(path.join(o.dataDir, "agent-state.json"), o.log);
    const agent = new DeviceAgent(o, slots, memory);
    agent.offline = await OfflineState.open(path.join(o.dataDir, "offline-state.json"), o.log);
    const recovery = await slots.recover();
    const bundles = new Set<string>(); // a release bundle's members boot once, together (docs/adr/0019)
    for (const c of recovery.components) {
      if (c.action === "boot-trial" && (!c.bundle || !bundles.has(c.bundle))) {
        if (c.bundle) bundles.add(c.bundle);
        const outcome = c.bundle ? await slots.bootBundleTrial(c.bundle, o.healthCheck) : await slots.bootTrial(c.component, o.healthCheck);
        o.log?.(`trial of ${outcome.releaseId} after restart: ${outcome.outcome} (${outcome.code})`);
      }
    }
    await agent.report().catch((err) => o.log?.(`report: ${(err as Error).message}`));
    return agent;
  }

  private now(): number {
    return (this.o.clock ?? Date.now)();
  }

  /**
   * The newest ledger block this device has seen (its time in unix s, and its number), from the
   * watcher or a fresh read; with several endpoints, one they agreed on (agent/chain/endpointQuorum).
   */
  noteHead(timestamp: number, block?: number, hash?: string): void {
    this.headTimestamp = Math.max(this.headTimestamp, timestamp);
    if (block !== undefined) this.headBlock = Math.max(this.headBlock ?? 0, block);
    // A block read from the device's own ledger connection: one an offline bundle may be proven against (ADR 0017).
    if (block !== undefined && hash)
      void this.offline.noteBlock({ number: block, hash, timestamp }).catch((err: unknown) => this.o.log?.(`offline-state.json: ${(err as Error).message}`));
  }

  /** What the device keeps for offline installs: the blocks it learned online, the releases it installed offline (ADR 0017). */
  private offline!: OfflineState;

  /** The blocks this device learned while online, oldest first (an offline bundle's block must be one of them, or configured). */
  get learnedBlocks(): OfflineState["trustedBlocks"] {
    return this.offline.trustedBlocks;
  }

  /** The device's view of the ledger and the floor its upstream signed (issue 16). */
  private ledgerView(): LedgerView {
    const floor = this.memory.ledgerFloor;
    return {
      headTimestamp: this.headTimestamp,
      headBlock: this.headBlock,
      ...(floor > 0 ? { floorBlock: floor, floorIssuedAt: Math.floor(this.memory.ledgerFloorAt / 1000) } : {}),
    };
  }

  /**
   * Reads the newest block and checks the view before anything is decided on it (TUF's freeze
   * attack): a release a frozen view cannot show would otherwise read as unknown, not as a view
   * too old to tell. Undefined when the view is fresh.
   */
  /** A quorum provider's agreed head forgotten: the next read agrees on the head again (nothing for a plain provider). */
  private refreshHead(): void {
    (this.o.chain.provider as { refreshHead?: () => void }).refreshHead?.();
  }

  /**
   * The freeze check on what the device has already seen, without asking the ledger: for the
   * runner, so that a device with nothing to install still says when its view stops moving.
   */
  viewProblem(): StaleLedgerView | undefined {
    return checkLedgerView(this.ledgerView(), this.o.policy, Math.floor(this.now() / 1000));
  }

  private async staleView(): Promise<StaleLedgerView | undefined> {
    const head = await this.o.chain.provider.getBlock("latest");
    if (head) this.noteHead(head.timestamp, head.number, head.hash ?? undefined);
    return this.viewProblem();
  }

  /** Ledger events (in-device tracker mode): a new release of a component this device runs is considered. */
  async onLedgerEvents(events: LedgerEvent[]): Promise<UpdateOutcome[]> {
    // Only the newest release of each component in a batch: a device that was away does not walk
    // through every version in between.
    const newest = new Map<string, { releaseId: string; reason: string }>();
    for (const e of events)
      if (e.kind === "published" && this.runs(e.component)) {
        newest.set(e.component.toLowerCase(), { releaseId: e.releaseId, reason: "new-release" });
        if (e.release) this.hear(e.release);
      }
    // What this device runs flagged or revoked: the newest good release for its hardware is worth
    // a look again, also one declined earlier (a device taking security fixes only takes it now).
    for (const e of events) {
      if ((e.kind !== "vulnerable" && e.kind !== "revoked") || !this.isRunning(e.releaseId)) continue;
      const fix = await this.newestGoodRelease(e.component);
      if (fix && !this.isRunning(fix)) newest.set(e.component.toLowerCase(), { releaseId: fix, reason: `${e.kind}-installed` });
    }
    const out: UpdateOutcome[] = [];
    for (const { releaseId, reason } of newest.values()) out.push(await this.considerRelease(releaseId, reason));
    return out;
  }

  /**
   * Releases decoded from their events, by id: the check reads only what may have changed since
   * (issue 17). Bounded: the newest few; an older one is read from the ledger's logs again.
   */
  private readonly heard = new Map<string, LedgerRelease>();

  private hear(release: LedgerRelease): void {
    this.heard.delete(release.id.toLowerCase());
    this.heard.set(release.id.toLowerCase(), release);
    if (this.heard.size > 16) this.heard.delete(this.heard.keys().next().value!);
  }

  /**
   * After its ledger watcher lost track of the chain (a reorganisation below its window, issue 16)
   * and started again from the head: the events in between are not read, so the device asks the
   * ledger directly for the newest good release of each component it runs.
   */
  async catchUp(): Promise<UpdateOutcome[]> {
    const out: UpdateOutcome[] = [];
    for (const component of this.o.components) {
      const newest = await this.newestGoodRelease(component);
      if (newest && !this.isRunning(newest)) out.push(await this.considerRelease(newest, "resync"));
    }
    return out;
  }

  /** The newest release of a component for this device's hardware that is neither vulnerable nor revoked, if any (an outage: none now). */
  private async newestGoodRelease(component: string): Promise<string | undefined> {
    const id = await callLedger(() => this.o.chain.registry.latestReleaseForHardware(component, this.o.device.credential.record.hardwareClass, false)).catch(
      (err: unknown) => {
        if (err instanceof LedgerUnavailable) return undefined;
        throw err;
      },
    );
    return id === undefined || BigInt(id) === 0n ? undefined : id.toLowerCase();
  }

  /**
   * An update notice from the upstream tracker module (client-module mode, DEP-8.2.2): acted on
   * only if it verifies against the ledger (CAP-11.2-d); a refused notice changes nothing.
   */
  async onNotice(envelope: Envelope): Promise<UpdateOutcome> {
    const upstream = this.o.upstream ?? this.o.tracker?.moduleId;
    if (!upstream) throw new UpstreamNoticeRejected("NO_UPSTREAM", "this device has no upstream tracker module configured");
    // The sender is checked on the ledger: an outage is LEDGER_UNAVAILABLE, and the notice is kept to take later.
    const { notice, issuedAt } = await callLedger(() =>
      verifyUpdateNotice(
        this.o.chain.fleet,
        envelope,
        { id: this.o.device.credential.record.id, privateKey: this.o.device.privateKey },
        {
          upstream,
          lastIssuedAt: this.memory.lastNoticeAt,
          maxAgeMs: 10 * 60_000,
          now: this.now(),
        },
      ),
    );
    const deadline = notice.deadline !== undefined ? { at: notice.deadline, ...(notice.overridePin ? { overridePin: true } : {}) } : undefined;
    await this.memory.noteNotice(issuedAt, notice.releaseId.toLowerCase(), notice.evidence, notice.ledgerBlock, deadline);
    return notice.bundle ? this.considerBundle(notice.releaseId, notice.reason) : this.considerRelease(notice.releaseId, notice.reason);
  }

  /** Tries again the releases that failed for a reason that passes (no key granted yet, server down, outside the window). */
  async retryPending(): Promise<UpdateOutcome[]> {
    await this.learnBlock();
    if (this.safeMode) return []; // nothing is taken automatically until a person installs (CAP-11.1-b)
    const rechecked = await this.recheckOfflineInstalls();
    // Notices that came while the ledger was down are taken first (a stale one is then refused).
    const deferred = this.deferredNotices.splice(0);
    if (deferred.length > 0) this.inbox = this.inbox.then(() => this.takeNotices(deferred));
    const out: UpdateOutcome[] = [];
    for (const releaseId of [...this.memory.pending]) {
      const blocked = this.blocked.get(releaseId);
      if (blocked && blocked.retryAt > this.now()) continue; // its backoff has not passed yet
      out.push(await (this.memory.pendingBundles.has(releaseId) ? this.considerBundle(releaseId, "retry") : this.considerRelease(releaseId, "retry")));
    }
    return [...rechecked, ...out];
  }

  /**
   * Keeps a recent block of the ledger for offline installs (ADR 0017): when the newest one the
   * device learned is an hour old or more, one read of the head (an outage: nothing, tried at the
   * next retry). Updates with proofs learn their proven block anyway.
   */
  private async learnBlock(): Promise<void> {
    const newest = this.offline.trustedBlocks.at(-1);
    if (newest && Math.floor(this.now() / 1000) - newest.timestamp < 3600) return;
    const head = await callLedger(() => this.o.chain.provider.getBlock("latest")).catch(() => null);
    if (head?.hash) {
      this.noteHead(head.timestamp, head.number, head.hash);
      await this.offline.noteBlock({ number: head.number, hash: head.hash, timestamp: head.timestamp }).catch(() => {});
    }
  }

  /**
   * The releases installed offline, asked of the ledger now that it answers (ADR 0017): a revocation
   * or flag after the bundle's block could not be seen offline. One revoked or flagged vulnerable
   * that the device still runs is handled as its ledger event would be (onLedgerEvents): the newest
   * good release of the component is considered. Each is forgotten once the ledger answered for it.
   */
  private async recheckOfflineInstalls(): Promise<UpdateOutcome[]> {
    const out: UpdateOutcome[] = [];
    for (const [releaseId, component] of [...this.offline.offlineInstalls]) {
      const status = await callLedger(() => this.o.chain.registry.releaseStatus(releaseId)).catch((err: unknown) => {
        if (err instanceof LedgerUnavailable) return undefined;
        throw err;
      });
      if (status === undefined) continue; // still offline: asked again at the next retry
      const name = ledgerName(RELEASE_STATUS, status);
      this.o.log?.(`release ${releaseId} installed offline: ${name} on the ledger now`);
      await this.offline.setOfflineInstall(releaseId, undefined);
      if ((name === "revoked" || name === "vulnerable" || name === "none") && this.isRunning(releaseId))
        out.push(...(await this.onLedgerEvents([{ kind: name === "vulnerable" ? "vulnerable" : "revoked", releaseId, component, block: 0 }])));
    }
    return out;
  }

  private runs(component: string): boolean {
    return this.o.components.some((c) => c.toLowerCase() === component.toLowerCase());
  }

  get safeMode(): boolean {
    return this.slots.snapshot().safeMode !== undefined;
  }

  /** Considers one release end to end; one update at a time. Refused in safe mode. */
  considerRelease(releaseId: string, reason: string): Promise<UpdateOutcome> {
    const run = this.queue
      .catch(() => {})
      .then(() => (this.safeMode ? this.finish(releaseId.toLowerCase(), "rejected", "SAFE_MODE") : this.update(releaseId.toLowerCase(), reason)));
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * A release bundle (docs/adr/0019): its members installed as one A/B transaction, or none of
   * them; one update at a time, as a release. The result is reported under the bundle's id.
   */
  considerBundle(bundleId: string, reason: string): Promise<UpdateOutcome> {
    const id = bundleId.toLowerCase();
    const run = this.queue
      .catch(() => {})
      .then(async () => {
        if (this.safeMode) return this.finish(id, "rejected", "SAFE_MODE", undefined, true);
        this.o.log?.(`release bundle ${id} (${reason})`);
        this.refreshHead();
        const { outcome, code } = await installReleaseBundle(
          {
            chain: this.o.chain,
            hardwareClass: this.o.device.credential.record.hardwareClass,
            deviceId: this.o.device.credential.record.id,
            privateKey: this.o.device.privateKey,
            slots: this.slots,
            healthCheck: this.o.healthCheck,
            trialAttempts: this.o.trialAttempts ?? 3,
            dataDir: this.o.dataDir,
            checkMember: (release, installed) => callLedger(() => this.checkOnLedger(release, installed)),
            deliver: (release, file, installed) => this.download(release, file, () => {}, installed),
            recheckAfterDownload: (release) => callLedger(() => this.recheckAfterDownload(release)),
            log: this.o.log,
          },
          id,
        );
        return this.finish(id, outcome, code, undefined, true);
      });
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * A person installs a release by hand (CAP-11.1-b), from an artifact file or URL, with the same
   * verification as any update: the ledger checks, every chunk against the ledger's Merkle root,
   * the size bound, the content key, the plaintext hash. In safe mode this is the way out: the
   * person's act ends safe mode first, with the anti-rollback floors they give (from the tracker).
   */
  manualInstall(releaseId: string, source: { file: string } | { url: string }, floors: Record<string, bigint> = {}): Promise<UpdateOutcome> {
    const run = this.queue
      .catch(() => {})
      .then(async () => {
        if (this.safeMode) await this.slots.leaveSafeMode(floors);
        return this.update(releaseId.toLowerCase(), "manual", source);
      });
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * A person installs a release from an offline bundle (issue 19 item 10, ADR 0017), with no
   * network: every check of the bundle (its block one this device trusts, the proofs against that
   * block's state root, the record, the signature, the key, every chunk) before anything on the
   * device changes (an OfflineBundleRefused otherwise, and safe mode is not left); then the usual
   * checks of the release (revoked, barred, newer than the installed version and the floor,
   * hardware, dependencies) on the proven facts, and the A/B install with its trial boot. The
   * result stays in the boot state unreported until the device's next report reaches its tracker.
   */
  offlineInstall(
    bundle: OpenedBundle,
    trust: Omit<OfflineTrust, "trusted" | "now" | "device" | "pinnedSigners"> & { configured?: { number: number; hash: string }[] },
    floors: Record<string, bigint> = {},
  ): Promise<UpdateOutcome> {
    const run = this.queue
      .catch(() => {})
      .then(async () => {
        const trusted = [
          ...this.offline.trustedBlocks.map((b) => ({ ...b, origin: "learned" as const })),
          ...(trust.configured ?? []).map((b) => ({ ...b, origin: "configured" as const })),
        ];
        const facts = await verifyOfflineBundle(bundle, {
          ...trust,
          trusted,
          now: Math.floor(this.now() / 1000),
          device: this.o.device,
          pinnedSigners: this.o.pinnedSigners,
        });
        if (this.safeMode) await this.slots.leaveSafeMode(floors);
        const releaseId = facts.release.id.toLowerCase();
        const outcome = await this.checkAndInstall(releaseId, "offline", { offline: facts });
        if (outcome.outcome === "confirmed") await this.offline.setOfflineInstall(releaseId, facts.release.record.component.toLowerCase());
        return outcome;
      });
    this.queue = run.catch(() => {});
    return run;
  }

  private async update(releaseId: string, reason: string, manual?: { file: string } | { url: string }): Promise<UpdateOutcome> {
    // Already running it (a notice that crossed the watcher's event, an event replayed): nothing to ask the ledger.
    if (!manual && this.isRunning(releaseId)) return this.finish(releaseId, "rejected", "NOT_NEWER_THAN_INSTALLED");
    // A fleet that learned of the release at once (one ledger event, one notice) does not reach
    // the ledger's endpoint and then the server at once: each device starts within the jitter.
    if (!manual) await startJitter(this.o.download?.startJitterMs ?? DEFAULT_START_JITTER_MS);
    // One of the process's places for an update at once, when its agents share a limit (a person's install does not wait).
    return this.o.updates && !manual ? this.o.updates.run(() => this.checkAndInstall(releaseId, reason)) : this.checkAndInstall(releaseId, reason, manual);
  }

  /** The update itself: the ledger checks, the verified delivery, the install into the inactive slot and its trial. */
  private async checkAndInstall(
    releaseId: string,
    reason: string,
    manual?: { file: string } | { url: string } | { offline: OfflineFacts },
  ): Promise<UpdateOutcome> {
    const { registry, domain, fromBlock } = this.o.chain;
    // Offline (ADR 0017): the release, its facts and its bytes are the bundle's, proven; no network at all.
    const offline = manual && "offline" in manual ? manual.offline : undefined;
    // Each check agrees on the ledger's head afresh (a quorum provider reuses its agreed head for a
    // few seconds): a release published meanwhile must not look unknown to a head read earlier.
    this.refreshHead();
    // The release as its event told it (the watcher decoded it), else read from the ledger's logs.
    const heard =
      offline?.release ??
      this.heard.get(releaseId) ??
      (await callLedger(() => fetchRelease(registry, domain, releaseId, fromBlock)).catch((err: unknown) => {
        if (err instanceof LedgerUnavailable) return err;
        throw err;
      }));
    if (heard instanceof LedgerUnavailable) return this.finish(releaseId, "blocked", heard.code); // tried again once the ledger answers
    if (!heard) {
      // A view too old to show the release is a blocked delivery (tried again), not an unknown release.
      const stale = await callLedger(() => this.staleView()).catch((err: unknown) => {
        if (err instanceof LedgerUnavailable) return err;
        throw err;
      });
      if (stale) return this.finish(releaseId, "blocked", stale.code);
      return this.finish(releaseId, "rejected", "RELEASE_UNKNOWN");
    }
    let release = heard;
    let state = startUpdate(release);
    const artifactFile = path.join(this.o.dataDir, "downloads", `${releaseId}.otae`);
    const step = async (event: Parameters<typeof transition>[1]) => {
      state = transition(state, event);
      // The phase record is informational (what boots is decided by the boot state, which is durable):
      // never torn, but not fsync'd, which would cost a device two flash syncs per phase.
      await writeFileAtomic(path.join(this.o.dataDir, "update-state.json"), JSON.stringify(state) + "\n", { durable: false });
      await this.o.onPhase?.(state.phase, releaseId);
    };
    // Where an error stops the update says what kind of result it is (agent/core/updateOutcome):
    // the ledger's checks refuse, anything on the way to an intact artifact and its key is a
    // blocked delivery, and only what fails after that is the release failing on this device.
    let stage: "ledger" | "delivery" | "install" = "ledger";
    try {
      release = offline ? this.checkOffline(offline) : await callLedger(() => this.checkOnLedger(release));
      await step({ type: "checked" });
      this.needs.set(releaseId, { releaseId, component: release.record.component, reason });

      stage = "delivery";
      await fs.mkdir(path.dirname(artifactFile), { recursive: true });
      await step({ type: "download-started" });
      const onChunk = (index: number) => {
        // A resumed attempt re-announces the chunks kept from before; only new ones move the state.
        if (state.lastVerifiedChunk === null || index > state.lastVerifiedChunk) state = transition(state, { type: "chunk-verified", index });
      };
      // REQ-10e-i: a delta from the running image, when the ledger records one; any fault of it
      // and the whole image is fetched instead (a delivery fault, never a failed release: ADR 0009).
      const delta = manual ? undefined : await this.takeDelta(release, onChunk);
      let wrappedKey: Buffer | undefined;
      if (!delta) ({ wrappedKey } = await (manual ? this.takeManual(release, manual, artifactFile, onChunk) : this.download(release, artifactFile, onChunk)));
      stage = "ledger";
      await step({ type: "download-complete" });

      // Revoked, or its author barred, while downloading? Abort before anything is written
      // (CAP-11.3-c on the device: a server's remembered yes may be a poll behind the ledger).
      this.refreshHead(); // asked now, not at the head the check agreed on before the download
      // Offline, the bundle's block is all the device can know: a revocation since is checked on reconnect (recheckOfflineInstalls).
      if (!offline) await callLedger(() => this.recheckAfterDownload(release));

      stage = "delivery";
      const image = {
        releaseId,
        version: release.record.version.toString(),
        fileHash: release.record.fileHash.toLowerCase(),
        size: Number(release.record.fileSize),
      };
      // The chunks of this download are not the state's (it moved past downloading with the delta).
      if (delta && !(await this.installDelta(release, image, delta))) ({ wrappedKey } = await this.download(release, artifactFile, () => {}));
      if (!delta || delta.fellBack) {
        let key: Buffer;
        try {
          key = unwrapContentKey(
            wrappedKey!,
            Buffer.from(this.o.device.privateKey.replace(/^0x/, ""), "hex"),
            keyWrapContext(releaseId, this.o.device.credential.record.id),
          );
        } catch (cause) {
          throw new ContentRejected("KEY_UNWRAP_FAILED", "the wrapped key does not open with this device's key", { cause });
        }
        // Decrypted chunk by chunk straight into the inactive slot, which computes the SHA-256 and
        // records the image only if it is the ledger's file hash; the active slot is not touched.
        // The first chunk tells whether the key is the release's: the ciphertext is the author's
        // (verified against the ledger), so a key it does not open came from the server.
        try {
          await this.slots.writeInactive(
            release.record.component.toLowerCase(),
            image,
            keyCheckedOnFirstChunk(decryptArtifact(key, readArtifactFile(artifactFile)), () => (stage = "install")),
          );
        } catch (err) {
          if (err instanceof SlotImageMismatchError) throw new ContentRejected("FILE_HASH_MISMATCH", err.message, { cause: err, details: err.details });
          if (stage === "delivery" && reportCodeOf(err) === "CHUNK_AUTHENTICATION")
            throw new ContentRejected("KEY_MISMATCH", "the content key the server sent does not open the release's first chunk: not the release's key", {
              cause: err,
            });
          throw err;
        }
      }
      stage = "install";
      await step({ type: "decrypted", fileHash: image.fileHash }); // the hash writeInactive just verified
      await step({ type: "installed" });
      await fs.rm(artifactFile, { force: true });

      await this.slots.beginTrial(release.record.component.toLowerCase(), this.o.trialAttempts ?? 3);
      await step({ type: "trial-started" });
      const trial = await this.slots.bootTrial(release.record.component.toLowerCase(), this.o.healthCheck);
      await step(trial.outcome === "confirmed" ? { type: "health-passed" } : { type: "health-failed", code: trial.code });
      this.needs.delete(releaseId);
      return this.finish(releaseId, trial.outcome, trial.code);
    } catch (caught) {
      let err = caught;
      // A server refusing the release with a ledger verdict (revoked, barred...) is only its word:
      // the device asks the ledger itself, and its answer decides (agent/core/updateOutcome).
      if (stage === "delivery" && err instanceof ServerRefusedError && LEDGER_VERDICT_CODES.has(err.code)) {
        this.refreshHead(); // the ledger as it is now, not at the head the first check agreed on
        err = await callLedger(() => this.checkOnLedger(release)).then(
          () => caught,
          (ledger: unknown) => (ledger instanceof LedgerUnavailable ? caught : ((stage = "ledger"), ledger)),
        );
      }
      if (err instanceof UpdateDeclined) return this.finish(releaseId, "declined", err.code);
      const known = err instanceof OtaError && err.code !== "";
      if (!known) this.o.log?.(`update ${releaseId} (${stage}): ${(err as Error).stack}`);
      const { outcome, code } = resultOf(stage, err, known);
      if (!isRetriedLater(outcome, code)) {
        this.needs.delete(releaseId); // a release still needed is reported as such (CAP-11.1-a-iv)
        await fs.rm(artifactFile, { force: true }); // a blocked one keeps its verified prefix to resume from
      }
      const { policy } = code === "POLICY_REFUSED" ? policyOf(err) : {};
      const result = await this.finish(releaseId, outcome, code, policy);
      return policy ? { ...result, policy } : result;
    }
  }

  /**
   * The ledger checks of agent/core, fed from the chain (REQ-10d-i/ii, APP-II-2, CAP-11.1-a-v):
   * every fact read in one eth_call at one block (agent/chain/ledgerLens, docs/adr/0012), the
   * record and signature then checked here, on the device.
   */
  private async checkOnLedger(release: LedgerRelease, installed: InstalledVersion[] = this.slots.installed()): Promise<LedgerRelease> {
    const { domain } = this.o.chain;
    const boot = this.slots.snapshot();
    const running = Object.values(boot.components).flatMap((c) => (c.slots[c.active] ? [c.slots[c.active]!.releaseId] : []));
    // With proofs on, every fact below is also read from the registries' storage at one block and
    // proven against its header: an eth_call answer that disagrees is a lying endpoint (refused).
    const { provider: providerId } = release.record;
    const credential = this.o.device.credential;
    // The proofs are read at the agreed head, which holds the release's own block: every caller
    // forgot the agreed head before it asked (update, and the re-check of a server's verdict).
    const proven = await this.proofs.read({
      releases: [release.id, ...running],
      provider: providerId,
      signer: { provider: providerId, address: release.signer, release: release.id },
      device: credential,
    });
    const facts = await readUpdateFacts(
      this.o.chain,
      { release, device: credential, installed, running, evidence: this.memory.evidence.get(release.id.toLowerCase()) },
      proven?.at.blockTag, // the calls compared with the proofs, at the proofs' block
    );
    // The block the facts were read at is the device's view of the ledger (no separate head read).
    this.noteHead(facts.block.timestamp, facts.block.number);
    if (this.heard.get(release.id.toLowerCase()) === release && facts.stored?.publishedAt !== release.releasedAt) {
      // The event was heard on a branch the chain has since dropped: the ledger's own log decides.
      this.heard.delete(release.id.toLowerCase());
      const again = await fetchRelease(this.o.chain.registry, domain, release.id, this.o.chain.fromBlock);
      if (again) return this.checkOnLedger(again, installed);
    }
    let signatureValid = true;
    let verificationCode: string | undefined;
    try {
      checkReleaseFacts(release, facts, { pinnedSigners: this.o.pinnedSigners, proven });
    } catch (err) {
      if (!(err instanceof VerificationError)) throw err;
      signatureValid = false;
      verificationCode = err.code; // what exactly failed: the record, the signer or the signature
    }
    const barred = proven ? proven.agree(`whether provider ${providerId} is barred`, facts.providerBarred, proven.facts.providerBarred) : facts.providerBarred;
    const installedStatus: Record<string, ReleaseStatus> = {};
    for (const [component, c] of Object.entries(boot.components)) {
      const image = c.slots[c.active];
      if (!image) continue;
      installedStatus[component] = statusOf(this.agreed(proven, image.releaseId, facts.running.get(image.releaseId.toLowerCase()) ?? "none"));
    }
    const result = checkCandidate({
      release: {
        id: release.id,
        record: release.record,
        status: statusOf(this.agreed(proven, release.id, facts.stored?.status ?? "none")),
        providerBarred: barred,
        signatureValid,
        verificationCode: verificationCode as LedgerRecordCode | undefined,
        ledgerVerdict: facts.verdict.verdict,
        policy: facts.verdict.policy ? { address: facts.verdict.policy, reason: facts.verdict.reason } : undefined,
      },
      ledger: this.ledgerView(),
      device: {
        hardwareClass: credential.record.hardwareClass,
        installed,
        floors: Object.fromEntries(Object.entries(boot.components).map(([k, c]) => [k, BigInt(c.floor)])),
        failedReleases: Object.keys(boot.failedReleases),
        installedStatus,
        components: this.o.components,
      },
      policy: this.o.policy,
      now: Math.floor(this.now() / 1000),
      deadline: this.deadlineOf(release.id),
    });
    if (!result.ok) throw result.error;
    // The device's own standing: a server refuses a device not enrolled, suspended or withdrawn its
    // key, so it is a blocked delivery (agent/core/updateOutcome), known before asking for it.
    const standing = proven ? proven.agree(`the standing of device ${credential.record.id}`, facts.standing!, proven.facts.standing) : facts.standing!;
    if (standing !== "active") {
      const code = standing === "unknown" ? "DEVICE_NOT_ENROLLED" : standing === "suspended" ? "DEVICE_SUSPENDED" : "DEVICE_REVOKED";
      throw new OtaError(
        code,
        `device ${credential.record.id} is ${standing === "unknown" ? "not enrolled with this record" : standing} on the ledger: no server gives it a key`,
      );
    }
    return release;
  }

  /** The administrator's deadline its upstream gave for the release (unix s), if any (issue 19, item 11). */
  private deadlineOf(releaseId: string): { at: number; overridePin?: boolean } | undefined {
    const d = this.memory.deadlines.get(releaseId.toLowerCase());
    return d && { at: Math.floor(d.at / 1000), ...(d.overridePin ? { overridePin: true } : {}) };
  }

  /**
   * The release's status and its provider's bar now, after the download: proven from storage when
   * proofs are on (the proof is the answer: no eth_call), else one read of the lens.
   */
  private async recheckAfterDownload(release: LedgerRelease): Promise<void> {
    const proven = await this.proofs.read({ releases: [release.id], provider: release.record.provider });
    let status = proven?.release(release.id)?.status;
    let barred = proven?.facts.providerBarred;
    if (status === undefined || barred === undefined) {
      const now = await readUpdateFacts(this.o.chain, { release }, proven?.at.blockTag);
      status ??= now.stored?.status ?? "none";
      barred ??= now.providerBarred;
    }
    if (statusOf(status) === "revoked") throw new LedgerRecordRejected("RELEASE_REVOKED", `release ${release.id} was revoked after it was downloaded`);
    if (barred) throw new LedgerRecordRejected("PROVIDER_BARRED", `provider ${release.record.provider} was barred after release ${release.id} was downloaded`);
  }

  /**
   * The checks of checkOnLedger on an offline bundle's proven facts (ADR 0017): the release's status
   * and its provider's bar at the bundle's block, the record and signature already verified, the
   * view's age that of the block (bounded by offline.maxBlockAgeSeconds, checked with the bundle),
   * and the device's installed versions, floors, hardware and failures as always. Not decided
   * offline: an administrators' update policy and the registry's checkInstallable (contract code,
   * not storage), and the status of the releases the device runs (securityOnly sees none flagged).
   */
  private checkOffline(f: OfflineFacts): LedgerRelease {
    const boot = this.slots.snapshot();
    const credential = this.o.device.credential;
    const result = checkCandidate({
      release: { id: f.release.id, record: f.release.record, status: statusOf(f.stored.status), providerBarred: f.providerBarred, signatureValid: true },
      ledger: { headTimestamp: f.block.timestamp, headBlock: f.block.number },
      device: {
        hardwareClass: credential.record.hardwareClass,
        installed: this.slots.installed(),
        floors: Object.fromEntries(Object.entries(boot.components).map(([k, c]) => [k, BigInt(c.floor)])),
        failedReleases: Object.keys(boot.failedReleases),
        installedStatus: {},
      },
      // The block's age was bounded by the device's offline limit when the bundle was checked.
      policy: { ...this.o.policy, maxLedgerAgeSeconds: Number.MAX_SAFE_INTEGER },
      now: Math.floor(this.now() / 1000),
    });
    if (!result.ok) throw result.error;
    if (f.standing !== "active") {
      const code = f.standing === "unknown" ? "DEVICE_NOT_ENROLLED" : f.standing === "suspended" ? "DEVICE_SUSPENDED" : "DEVICE_REVOKED";
      throw new LedgerRecordRejected(
        code as LedgerRecordCode,
        `device ${credential.record.id} was ${f.standing === "unknown" ? "not enrolled with this record" : f.standing} at block ${f.block.number}`,
      );
    }
    return f.release;
  }

  /** A release's status as eth_call answered it, checked against the proofs when there are. */
  private agreed(proven: ProvenView | undefined, releaseId: string, called: ReleaseStatusName): ReleaseStatusName {
    return proven ? proven.agree(`the status of release ${releaseId}`, called, proven.release(releaseId)?.status) : called;
  }

  /**
   * A manual source: the bytes are copied in (bounded by the size the ledger implies) and checked
   * chunk by chunk against the ledger's root exactly as a download is; the wrapped key comes from
   * the firmware server.
   */
  private async takeManual(
    release: LedgerRelease,
    source: { file: string } | { url: string } | { offline: OfflineFacts },
    artifactFile: string,
    onChunk: (index: number) => void,
  ): Promise<{ wrappedKey: Buffer }> {
    const limit = Number(artifactSize(release.record.fileSize, MIN_SERVED_CHUNK_SIZE));
    const input: AsyncIterable<Uint8Array> =
      "offline" in source ? source.offline.bundle.readCiphertext() : "file" in source ? createReadStream(source.file) : await fetchBody(source.url);
    const leaves: string[] = [];
    const out = await fs.open(artifactFile, "w");
    let total = 0;
    try {
      for await (const chunk of splitStoredChunks(input)) {
        total += chunk.length;
        if (total > limit) throw new DownloadRejected("ARTIFACT_TOO_LONG", `the manual artifact is longer than the ledger record allows`);
        leaves.push(chunkLeaf(leaves.length, chunk));
        await out.write(chunk);
      }
      await out.sync();
    } catch (err) {
      if (err instanceof ArtifactFormatError) throw new DownloadRejected("ARTIFACT_FORMAT", err.message, { cause: err });
      throw err;
    } finally {
      await out.close();
    }
    if (leaves.length === 0 || new ChunkMerkleTree(leaves).root.toLowerCase() !== release.record.merkleRoot.toLowerCase()) {
      await fs.rm(artifactFile, { force: true });
      throw new DownloadRejected("CHUNK_MISMATCH", "the manual artifact does not match the ledger's Merkle root");
    }
    leaves.forEach((_, i) => onChunk(i));
    if ("offline" in source) return { wrappedKey: source.offline.wrappedKey }; // opened by verifyOfflineBundle with this device's key
    const sources = await this.sourceSet();
    const { wrappedKey } = await wrappedKeyFromSources(sources, {
      device: this.o.device,
      installed: this.slots.installed(),
      evidence: this.memory.evidence.get(release.id.toLowerCase()),
      release,
      artifactFile, // verified above: a server's key that does not open its first chunk is passed over for the next server's
      timeoutMs: this.o.download?.timeoutMs,
    });
    return { wrappedKey };
  }

  /**
   * The release's delta from the image the device runs (ADR 0018), fetched and verified, or
   * undefined: no ReleaseDeltas, nothing running, no delta recorded from it, or any fault fetching
   * it (logged; the whole image is fetched instead).
   */
  private async takeDelta(
    release: LedgerRelease,
    onChunk: (index: number) => void,
  ): Promise<(FetchedDelta & { fellBack?: boolean; baseFile: string; base: SlotImageRecord }) | undefined> {
    const deltas = this.o.chain.deltas;
    const component = release.record.component.toLowerCase();
    const boot = this.slots.snapshot().components[component];
    const base = boot?.slots[boot.active];
    if (!deltas || !base) return undefined;
    try {
      const fetched = await fetchDelta(
        { deltas, sources: await this.sourceSet() },
        {
          device: this.o.device,
          installed: this.slots.installed(),
          evidence: this.memory.evidence.get(release.id.toLowerCase()),
          release,
          timeoutMs: this.o.download?.timeoutMs,
          base,
          workDir: path.join(this.o.dataDir, "downloads"),
          onChunk, // the delta's chunks are the delivery's (a fallback's that follow go on from them)
        },
      );
      if (!fetched) return undefined;
      this.deltaStats.deltaBytes += fetched.fetchedBytes;
      return { ...fetched, baseFile: path.join(this.slots.slotDir(component, boot.active), "image.bin"), base };
    } catch (err) {
      this.deltaStats.fellBack++;
      this.o.log?.(`release ${release.id}: the delta from ${base.releaseId} failed (${reportCodeOf(err) || (err as Error).message}); fetching the whole image`);
      return undefined;
    }
  }

  /**
   * Rebuilds the release's image from the running one with the delta, straight into the inactive
   * slot, which records it only if its SHA-256 is the ledger's file hash. False (logged, the delta
   * marked as fallen back) on any fault: the caller fetches the whole image.
   */
  private async installDelta(
    release: LedgerRelease,
    image: { releaseId: string; version: string; fileHash: string; size: number },
    delta: FetchedDelta & { fellBack?: boolean; baseFile: string; base: SlotImageRecord },
  ): Promise<boolean> {
    try {
      await this.slots.writeInactive(release.record.component.toLowerCase(), image, imageFromDelta(delta, delta.baseFile, delta.base, release));
      this.deltaStats.installed++;
      return true;
    } catch (err) {
      if (isResourceShortage(err)) throw err;
      delta.fellBack = true;
      this.deltaStats.fellBack++;
      this.o.log?.(
        `release ${release.id}: applying the delta from ${delta.fromReleaseId} failed (${reportCodeOf(err) || (err as Error).message}); fetching the whole image`,
      );
      return false;
    } finally {
      await fs.rm(delta.patchFile, { force: true });
    }
  }

  /** The device's sources (REQ-10f-ii): the set it was given, else one opened over the listed sources or serverUrl alone. */
  private async sourceSet(): Promise<SourceSet> {
    if (this.o.sources instanceof SourceSet) return this.o.sources;
    return SourceSet.open(this.o.sources ?? [{ kind: "server", url: this.o.serverUrl }], { deviceClock: this.o.clock, log: this.o.log });
  }

  /**
   * The verified download from the device's sources (REQ-10f-ii): each round tries them in order
   * (demoted ones last), each going on from the last verified chunk; a round blocked by delivery
   * faults only is tried again after a backoff with jitter (so a fleet does not come back at once).
   */
  private async download(
    release: LedgerRelease,
    artifactFile: string,
    onChunk: (index: number) => void,
    installed: InstalledVersion[] = this.slots.installed(), // a bundle's member: the set as the bundle leaves it
  ): Promise<{ wrappedKey: Buffer }> {
    const attempts = this.o.download?.attempts ?? 3;
    const sources = await this.sourceSet();
    for (let i = 1; ; i++) {
      try {
        const delivered = await downloadFromSources(sources, {
          device: this.o.device,
          installed,
          evidence: this.memory.evidence.get(release.id.toLowerCase()),
          release,
          artifactFile,
          timeoutMs: this.o.download?.timeoutMs,
          onChunk,
        });
        if (delivered.resumedFrom > 0)
          this.o.log?.(`release ${release.id}: resumed at chunk ${delivered.resumedFrom} from ${delivered.source.kind} ${delivered.source.url}`);
        return delivered;
      } catch (err) {
        if (!isDeliveryFault(reportCodeOf(err)) || i >= attempts) throw err;
        // "Equal jitter" between rounds: never sooner than half the step, so a round has time to change something.
        const delay = backoffDelayMs(i, { baseMs: this.o.download?.backoffMs ?? 1000, maxMs: Number.MAX_SAFE_INTEGER, floor: 0.5 });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async finish(
    releaseId: string,
    outcome: UpdateOutcome["outcome"],
    code: string,
    policy?: UpdateOutcome["policy"],
    bundle = false, // a release bundle's id (docs/adr/0019): its retry, after a restart too, is a bundle's
  ): Promise<UpdateOutcome> {
    this.o.log?.(`release ${releaseId}: ${outcome} (${code})`);
    if (outcome === "blocked") {
      const attempts = (this.blocked.get(releaseId)?.attempts ?? 0) + 1;
      const delay = backoffDelayMs(attempts, { baseMs: this.o.blockedRetry?.baseMs ?? 10_000, maxMs: this.o.blockedRetry?.maxMs ?? 600_000 });
      this.blocked.set(releaseId, { attempts, retryAt: this.now() + delay });
    } else this.blocked.delete(releaseId);
    // Declined is what the device's policy says of the release now: a release deferred to the window
    // and installed once it opened (or refused now for another reason) is no longer listed declined.
    if (outcome === "declined") this.declined.set(releaseId, code);
    else this.declined.delete(releaseId);
    // Kept in memory even if the file cannot be written now (a device out of open files or storage):
    // the retry still happens, and the next change writes the whole list.
    await this.memory
      .setPending(releaseId, isRetriedLater(outcome, code), bundle)
      .catch((err: unknown) => this.o.log?.(`the retry list was not written (${(err as Error).message}): kept in memory`));
    // The release it already runs, offered again (its ledger event replayed after a restart, a
    // notice that crossed the confirmation): refused, but not news that replaces the last result.
    // A result the slots do not record (they record trials): the newest of either is the one reported.
    // A failure not reported yet is not replaced by a later refusal or blocked delivery: the tracker
    // must learn of every real failure (the rollout's failure total), even when its report was lost.
    // A release declined by the device's own policy (CAP-11.1-a-vi) is its last result too, so that its
    // tracker lists it refused with the reason (VERSION_PINNED, DEFERRED_TO_WINDOW...), not by the
    // install before it; except PREVIOUSLY_FAILED, the failure it repeats, which stays the news.
    const unreportedFailure = this.reportsToTracker && this.lastAttempt?.outcome === "failed" && !this.lastAttempt.reported && outcome !== "failed";
    if (
      (outcome === "rejected" || outcome === "blocked" || outcome === "failed" || (outcome === "declined" && code !== "PREVIOUSLY_FAILED")) &&
      !(code === "NOT_NEWER_THAN_INSTALLED" && this.isRunning(releaseId)) &&
      !unreportedFailure
    )
      this.lastAttempt = { releaseId, outcome, code, at: this.now(), reported: false, ...(policy ? { policy } : {}) };
    await this.report().catch((err) => this.o.log?.(`report: ${(err as Error).message}`));
    return { releaseId, outcome, code };
  }

  /** Releases whose delivery is blocked: how many tries in a row, and when the next is due (a restart tries at once). */
  private readonly blocked = new Map<string, { attempts: number; retryAt: number }>();

  private lastAttempt:
    | {
        releaseId: string;
        outcome: "rejected" | "blocked" | "failed" | "declined";
        code: string;
        at: number;
        reported: boolean;
        policy?: UpdateOutcome["policy"];
      }
    | undefined;

  /** Whether `releaseId` is the active image of one of this device's components. */
  private isRunning(releaseId: string): boolean {
    return Object.values(this.slots.snapshot().components).some((c) => c.slots[c.active]?.releaseId.toLowerCase() === releaseId.toLowerCase());
  }

  /** The status report (PROC-5, CAP-11.1-a-i/iv/vi). */
  async statusReport(): Promise<StatusReport> {
    return (await this.buildReport()).report;
  }

  /** The status report, and the attempt it carries as its last result (if not the slots' result). */
  private async buildReport(): Promise<{ report: StatusReport; attempt: DeviceAgent["lastAttempt"] }> {
    const boot = this.slots.snapshot();
    const last = boot.lastResult;
    // The newest of either, except that a failure of the slots not sent to the tracker yet (a trial
    // that rolled back, whose report the network dropped) goes first: the next report carries the newer one.
    const unsentFailure = this.reportsToTracker && last !== null && !last.reported && isFailedResult(last.outcome, last.code);
    const attempt = this.lastAttempt && !unsentFailure && (!last || this.lastAttempt.at > last.at) ? this.lastAttempt : undefined;
    const report: StatusReport = {
      deviceId: this.o.device.credential.record.id,
      counter: await this.slots.nextCounter(),
      installed: Object.entries(boot.components).flatMap(([component, c]) => {
        const image = c.slots[c.active];
        return image ? [{ component, version: image.version, releaseId: image.releaseId, slot: c.active }] : [];
      }),
      lastResult: attempt
        ? {
            releaseId: attempt.releaseId,
            component: "",
            outcome: attempt.outcome,
            code: attempt.code,
            at: attempt.at,
            ...(attempt.policy ? { policy: attempt.policy } : {}), // which policy refused, and its reason (issue 18)
          }
        : last && { releaseId: last.releaseId, component: last.component, outcome: last.outcome, code: last.code, at: last.at },
      needs: [...this.needs.values()],
      declined: [...this.declined].map(([releaseId, code]) => ({ releaseId, code })),
      safeMode: boot.safeMode !== undefined,
      // Each source's health (REQ-10f-ii): the tracker keeps it with the report, so an operator sees a demoted mirror.
      ...(this.o.sources instanceof SourceSet ? { sources: this.o.sources.report() } : {}),
      ...(this.o.device.credential.batchId !== 0 ? { credential: this.o.device.credential } : {}),
    };
    return { report, attempt };
  }

  /** Answers a sealed image query, only from a registered tracker module (CAP-11.1-a-ii). */
  answerQuery(query: Envelope): Promise<Envelope> {
    return answerImageQuery(
      this.o.chain.fleet,
      query,
      { id: this.o.device.credential.record.id, privateKey: this.o.device.privateKey },
      () => this.statusReport(),
      {
        now: this.now(),
        fromBlock: this.o.chain.fromBlock,
      },
    );
  }

  /**
   * Sends the status report to the tracker, if one is configured; marks the last result reported.
   * The notices in the answer are taken in order after whatever update runs now (not awaited
   * here: a report is also sent at the end of an update); `settled()` waits for them.
   */
  report(): Promise<StatusReport> {
    // One at a time: each report takes the next counter, and one overtaken by the next on the way
    // would be refused by the tracker as a replay (the heartbeat and an update's end often meet).
    const run = this.reporting.catch(() => {}).then(() => this.sendReport());
    this.reporting = run;
    return run;
  }

  private reporting: Promise<unknown> = Promise.resolve();

  private async sendReport(): Promise<StatusReport> {
    const { report, attempt } = await this.buildReport();
    if (this.o.tracker) {
      // One transport for the agent's life: an MQTT one keeps its connection between reports.
      this.transport ??=
        this.o.reportTransport ??
        openReportTransport(this.o.tracker, { privateKey: this.o.device.privateKey, id: this.o.device.credential.record.id }, this.o.log);
      const reportTransport = this.transport;
      const { notices } = await sendStatusReport(report, this.o.device, { ...this.o.tracker, reportTransport }, this.now(), this.o.log, this.reportSession);
      if (attempt) attempt.reported = true;
      else {
        await this.slots.markReported();
        // An attempt about the release whose result the slots just sent (a hash mismatch is recorded in both) is reported with it.
        const sent = report.lastResult;
        if (this.lastAttempt && sent && this.lastAttempt.releaseId === sent.releaseId.toLowerCase()) this.lastAttempt.reported = true;
      }
      if (notices.length > 0) this.inbox = this.inbox.then(() => this.takeNotices(notices));
    }
    return report;
  }

  private inbox: Promise<void> = Promise.resolve();
  private transport: ReportTransport | undefined;

  /** Ends the report transport's connection (an MQTT one keeps one) once the report under way is done; a later report opens it again. */
  async close(): Promise<void> {
    await this.reporting.catch(() => {});
    const t = this.transport;
    this.transport = undefined;
    await t?.close();
  }

  /** The report session with the tracker (ADR 0013), in memory: a restart's first report is sealed in full. */
  private readonly reportSession = new ReportSession();

  get reportsToTracker(): boolean {
    return this.o.tracker !== undefined;
  }

  /** How often this device asks to report to its tracker (device.json tracker.heartbeatMs), if it says. */
  get heartbeatMs(): number | undefined {
    return this.o.tracker?.heartbeatMs;
  }

  private async takeNotices(notices: Envelope[]): Promise<void> {
    for (const n of notices) {
      await this.onNotice(n).then(
        (r) => this.o.log?.(`notice: release ${r.releaseId} ${r.outcome} (${r.code})`),
        (err) => {
          if (err instanceof LedgerUnavailable) {
            // Bounded: over a long outage only the newest are kept (the tracker notices again anyway).
            if (this.deferredNotices.push(n) > 16) this.deferredNotices.shift();
            this.o.log?.("notice kept for later: the ledger did not answer when its sender was checked");
          } else this.o.log?.(`notice refused: ${(err as Error).message}`);
        },
      );
    }
  }

  /** Notices whose sender could not be checked on the ledger (an outage); taken again by retryPending. */
  private readonly deferredNotices: Envelope[] = [];

  /** Resolves once every notice received so far has been acted on. */
  async settled(): Promise<void> {
    let seen: Promise<void>;
    do {
      seen = this.inbox;
      await seen;
    } while (seen !== this.inbox);
  }
}

async function fetchBody(url: string): Promise<AsyncIterable<Uint8Array>> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  } catch (cause) {
    throw new DownloadRejected("ARTIFACT_TRUNCATED", `cannot fetch ${url}`, { cause });
  }
  if (!res.ok || !res.body) throw new DownloadRejected("ARTIFACT_TRUNCATED", `${url} answered ${res.status}`);
  return res.body as unknown as AsyncIterable<Uint8Array>;
}

/** A status to decide on: a release the ledger no longer knows (a reorganisation) is not trusted. */
function statusOf(s: ReleaseStatusName): ReleaseStatus {
  return s === "none" ? "revoked" : s;
}

/** The server's refusals that repeat a verdict of the ledger: checked against the ledger itself before they count. */
const LEDGER_VERDICT_CODES: ReadonlySet<string> = new Set([...LEDGER_RECORD_CODES, ...ROLLBACK_CODES, "DEPENDENCY_VERSION_OUT_OF_RANGE", "RELEASE_UNKNOWN"]);

/**
 * The outcome and code of an update that stopped with `err` in `stage` (agent/core/updateOutcome):
 * a refusal of the ledger's checks is `rejected`; anything on the way to an intact artifact and its
 * key is `blocked` (a server's or a proxy's refusal included: the device checked the ledger itself);
 * what fails once the content is decrypting is the release `failed` on this device.
 */
function resultOf(stage: "ledger" | "delivery" | "install", err: unknown, known: boolean): { outcome: Outcome; code: string } {
  // Short of open files, memory or storage: the device's moment, not the release's (10,000 agents in one process met EMFILE).
  if (!known && isResourceShortage(err)) return { outcome: "blocked", code: "DEVICE_RESOURCES" };
  const code = reportCodeOf(err);
  if (err instanceof LedgerUnavailable || isDeliveryFault(code)) return { outcome: "blocked", code };
  switch (stage) {
    case "ledger":
      return { outcome: "rejected", code };
    case "delivery":
      return { outcome: "blocked", code: known ? code : "DELIVERY_ERROR" };
    case "install":
      return { outcome: "failed", code: known ? code : "INSTALL_FAILED" };
  }
}

/** Passes the decrypted chunks on, calling `onFirst` once the first one has authenticated (the key is the release's). */
async function* keyCheckedOnFirstChunk(chunks: AsyncIterable<Buffer>, onFirst: () => void): AsyncGenerator<Buffer> {
  let first = true;
  for await (const chunk of chunks) {
    if (first) onFirst();
    first = false;
    yield chunk;
  }
}

/** The policy and reason a POLICY_REFUSED refusal names (agent/core/updateCheck puts them in its details). */
function policyOf(err: unknown): Pick<UpdateOutcome, "policy"> {
  const d = err instanceof OtaError ? err.details : {};
  return typeof d.policy === "string" && typeof d.reason === "string" ? { policy: { address: d.policy, reason: d.reason } } : {};
}
