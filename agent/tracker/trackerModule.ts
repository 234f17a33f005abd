import path from "node:path";
import { Wallet, ZeroHash, getAddress, getBytes, hashMessage, type Provider, type Signer, type TypedDataDomain } from "ethers";
import {
  StagedRollout__factory,
  type FleetRegistry,
  type ReleaseBundles,
  type StatusAnchors,
  type UpdatePolicies,
  type UpdateRegistry,
} from "../chain/contracts";
import { ChainEventStream, type RpcSender } from "../chain/eventStream";
import { FleetPositionStore, reconcileLedgerPosition } from "./ledgerPosition";
import { moduleEncryptionKey, trackerModuleOf as trackerModuleOnLedger } from "../chain/trackerModules";
import { callLedger, LedgerUnavailable } from "../chain/ledgerCall";
import { StagedRolloutFinder } from "../chain/stagedRollouts";
import { allowsUpdate, checkUpdateOnLedger } from "../chain/updateCheckOnLedger";
import { AuthenticationError, InputError, OtaError } from "../core/errors";
import { NOTICE_KIND, type UpdateNotice } from "../core/updateNotice";
import { openMessage, sealMessage, type Envelope, type MessageSigner } from "../crypto/sealedMessage";
import { signDigest } from "../crypto/secp256k1";
import { buildCohort, encodeRolloutEvidence } from "../crypto/cohortTree";
import { isEvidence } from "../core/installedContext";
import { EVERY_POLICY, splitEvidence } from "../core/policyEvidence";
import { FleetDatabase, type BundleRow, type DeviceRow } from "./fleetDatabase";
import { FleetPlanner } from "./fleetPlanner";
import { FleetViews } from "./fleetViews";
import { LedgerMirror, fillMissingNames } from "./ledgerMirror";
import { ReportIntake, takeForwardedReport, type ReportEnvelope, type SignedReport } from "./reportIntake";
import { pullDownloadLog } from "./downloadLog";
import { FailureReporter, type FailurePost } from "./failureReports";
import { LedgerAccount } from "./ledgerAccount";
import { StatusAnchoring, type AnchorResult } from "./statusAnchoring";
import { extendDynamicRequests } from "./updateRequests";
import { BODY_MAX_BYTES, ERROR_ANSWER_MAX_BYTES, NOTICES_PER_ANSWER_MAX } from "../core/wireLimits";
import { readBoundedBody } from "../io/boundedBody";

export const DOWNSTREAM_KIND = "downstream-status";

/** The fleet database's replay mark of the decisions taken from the parent (their issue time). */
const PARENT_DECISIONS_MARK = "parent-decisions";
/** The mark below which this module issued its messages (notices, decisions, downstream statuses), and how far ahead it is reserved (ms). */
const ISSUED_MARK = "issued";
const ISSUE_RESERVE_MS = 10_000;
export const DECISIONS_KIND = "update-decisions";

/** What a module tells the module above it (DEP-8.2.3, CAP-11.2-m). */
export interface DownstreamStatus {
  counter: number; // rises with every message: a replay is refused
  networks: string[]; // bytes32 network labels this module serves
  reports: SignedReport[]; // device reports as their devices signed them
  devices: number; // devices that reached the hierarchy through this module
  unreachableDevices: number;
  children: { id: string; lastSeen: number; reachable: boolean; devices: number; unreachableDevices: number }[];
}

/** What a module tells the module below it: start these updates. */
export interface UpdateDecisions {
  decisions: (UpdateNotice & { deviceId: string; origin: string })[];
  /** The counter of the child's status this answers: the child drops the reports it forwarded only on this signed word. */
  acknowledges: number;
}

/** A message from a module that is not this module's child or parent on the ledger, or is stale or replayed. */
export class ModuleMessageRefused extends AuthenticationError {}

const BYTES32 = /^0x[0-9a-fA-F]{64}$/;
/** Whether a decision comes from an administrator's request, here or at a module above (they ask again on purpose). */
const isRequested = (origin: string) => origin.startsWith("request:") || origin.startsWith("upstream:request:");
const trackerModuleOf = (fleet: FleetRegistry, id: string) => callLedger(() => trackerModuleOnLedger(fleet, id));

/** A child's status as it must be: anything else is refused before it is stored. */
function isDownstreamStatus(s: DownstreamStatus): boolean {
  const count = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  return (
    !!s &&
    Number.isSafeInteger(s.counter) &&
    Array.isArray(s.reports) &&
    Array.isArray(s.networks) &&
    s.networks.every((n) => typeof n === "string" && BYTES32.test(n)) &&
    count(s.devices) &&
    count(s.unreachableDevices) &&
    Array.isArray(s.children) &&
    s.children.every(
      (c) =>
        !!c &&
        typeof c.id === "string" &&
        BYTES32.test(c.id) &&
        count(c.lastSeen) &&
        typeof c.reachable === "boolean" &&
        count(c.devices) &&
        count(c.unreachableDevices),
    )
  );
}

export interface TrackerModuleOptions {
  chain: {
    provider: Provider & RpcSender;
    registry: UpdateRegistry;
    fleet: FleetRegistry;
    policies?: UpdatePolicies;
    anchors?: StatusAnchors;
    /** Where release bundles are (docs/adr/0019): mirrored, and an administrator's request may name one. */
    bundles?: ReleaseBundles;
    domain: TypedDataDomain;
    fromBlock: number;
  };
  /**
   * The account the server module sends its ledger duties with (issue 6): failure totals to staged
   * rollouts and status anchors. It needs the registry's TRACKER_ROLE and gas. Without it nothing
   * is sent (logged once).
   */
  ledgerAccount?: Signer;
  failureReportMs?: number; // how often failure totals are posted, at most (default 30 s)
  anchorMs?: number; // how often the fleet's status is anchored (default 1 h; 0: never)
  anchorRecordsKept?: number; // the anchors whose records are kept to serve proofs (default 168)
  /** This module's id on the ledger and its key: the registered signer and the key messages are sealed to. */
  module: { id: string; privateKey: string };
  /** Threads that open device reports under load (default: one per core; 0: none). */
  intakeWorkers?: number;
  /** The module above (an intermediate module); absent for the server module, which decides. */
  parent?: { id: string; url: string };
  /** Firmware servers whose download logs count as contact with devices (CAP-11.2-b-i). */
  firmwareServers?: string[];
  downloadLogMs?: number; // how often they are read (default 60 s)
  /** The device networks (bytes32) this module serves; reported upstream (APP-II-4). */
  networks?: string[];
  dataDir: string;
  livenessMs?: number; // no contact for this long: unreachable (default 15 min)
  renoticeMs?: number; // a notice not acted on is handed out again after this long (default 1 h)
  adoptionSampleMs?: number; // default 60 s
  upstreamMs?: number; // how often an intermediate module posts upstream (default 30 s)
  pollMs?: number; // ledger polling (default 2 s)
  confirmations?: number;
  /** Recent blocks remembered to find a reorganisation's fork point (default 64); a deeper one halts the stream (REORG_TOO_DEEP). */
  reorgWindow?: number;
  /** How long a ledger-duty transaction may wait to be mined before it is cancelled (default 180 s). */
  ledgerTxDeadlineMs?: number;
  ledgerTxPollMs?: number; // between receipt polls (default 1 s)
  maxMessageAgeMs?: number; // module messages older than this are refused (default 10 min)
  now?: () => number;
  log?: (line: string) => void;
}

/** The longest stop() waits for a duty or a ledger read in flight. */
const STOP_GRACE_MS = 3000;

/**
 * One status tracker module (X.1368 clause 8.2): the server module (no parent) decides which
 * update each device needs; an intermediate module relays reports up and decisions down; both
 * follow the ledger themselves, take sealed reports from their devices and hand out sealed
 * notices in the answer (ADR 0004: downstream posts, upstream answers).
 */
/** The origin of decisions made from the firmware servers' download logs (CAP-11.3-g). */
export const DOWNLOAD_LOG_ORIGIN = "download-log";

export class TrackerModule {
  readonly db: FleetDatabase;
  readonly planner: FleetPlanner;
  readonly views: FleetViews;
  /** Device reports: opened on worker threads under load, stored several per commit (issue 5). */
  readonly intake: ReportIntake;
  readonly wallet: Wallet;
  readonly id: string;
  readonly stream: ChainEventStream;
  /** The module's clock (ms): the time its decisions, notices and deadlines are read against. */
  readonly now: () => number;
  private readonly o: Required<Pick<TrackerModuleOptions, "livenessMs" | "renoticeMs" | "adoptionSampleMs" | "upstreamMs" | "maxMessageAgeMs">>;
  private lastIssuedAt = 0;
  private readonly keys = new Map<string, string>(); // module id -> registered public key
  private timers: NodeJS.Timeout[] = [];
  private upstreamRun: Promise<void> = Promise.resolve();
  private stopped = false;
  /** The last decision round after a ledger change: for logs and the benchmark. */
  lastDecision: { at: number; ms: number; releases: { releaseId: string; configs: number; devices: number }[] } | undefined;
  upstreamState: { lastOk: number | null; lastError: string | null } = { lastOk: null, lastError: null };
  /** The ledger duties of a server module (issue 6), when it has a ledger account (and StatusAnchors, for anchoring). */
  readonly ledgerAccount: LedgerAccount | undefined;
  readonly anchoring: StatusAnchoring | undefined;
  private readonly failures: FailureReporter | undefined;
  /** The staged rollouts in a release's policy, whose cohort roots the cohorts sent here must match. */
  private readonly stagedRollouts: StagedRolloutFinder;
  private readonly duties = new Map<string, Promise<unknown>>();

  constructor(readonly options: TrackerModuleOptions) {
    this.now = options.now ?? Date.now;
    this.o = {
      livenessMs: options.livenessMs ?? 15 * 60_000,
      renoticeMs: options.renoticeMs ?? 60 * 60_000,
      adoptionSampleMs: options.adoptionSampleMs ?? 60_000,
      upstreamMs: options.upstreamMs ?? 30_000,
      maxMessageAgeMs: options.maxMessageAgeMs ?? 10 * 60_000,
    };
    this.id = options.module.id.toLowerCase();
    this.wallet = new Wallet(options.module.privateKey);
    this.db = new FleetDatabase(path.join(options.dataDir, "fleet.db"));
    this.planner = new FleetPlanner(this.db);
    this.views = new FleetViews(this.db, this.planner, this.o.livenessMs, this.now);
    // Report sessions (ADR 0013) only where reports end: a module below forwards each device's own signature upstream.
    this.intake = new ReportIntake(this.db, { id: this.id, privateKey: options.module.privateKey }, this.now, {
      workers: options.intakeWorkers,
      sessions: !options.parent,
    });
    const { registry, fleet, domain } = options.chain;
    this.stagedRollouts = new StagedRolloutFinder(options.chain.provider);
    if (options.ledgerAccount && !options.parent) {
      const account = (this.ledgerAccount = new LedgerAccount(options.ledgerAccount, registry, {
        journal: this.db.ledgerTxs,
        deadlineMs: options.ledgerTxDeadlineMs,
        pollMs: options.ledgerTxPollMs,
        log: (l) => this.log(l),
      }));
      if (options.chain.policies)
        this.failures = new FailureReporter({
          db: this.db,
          provider: options.chain.provider,
          policies: options.chain.policies,
          account,
          moduleId: this.id,
          log: (l) => this.log(l),
        });
      if (options.chain.anchors)
        this.anchoring = new StatusAnchoring(
          { db: this.db, anchors: options.chain.anchors, account, now: this.now, log: (l) => this.log(l) },
          { keepRecords: options.anchorRecordsKept },
        );
    }
    const bundles = options.chain.bundles ? String(options.chain.bundles.target) : undefined;
    const mirror = new LedgerMirror(this.db, { registry: String(registry.target), fleet: String(fleet.target), bundles, domain }, (changed) => {
      if (changed.releases) {
        this.catalogueChanged();
        this.nameCatalogue();
      }
    });
    this.stream = new ChainEventStream(
      { provider: options.chain.provider, store: new FleetPositionStore(this.db), handler: mirror },
      {
        filters: [{ address: [String(registry.target), String(fleet.target), ...(bundles ? [bundles] : [])] }],
        fromBlock: options.chain.fromBlock,
        confirmations: options.confirmations ?? 0,
        window: options.reorgWindow,
        pollMs: options.pollMs ?? 2000,
        onError: (err, retry) => this.log(`ledger: ${(err as Error).message} (retry in ${retry.retryInMs} ms)`),
        // One line, naming the code and the fix; the health answer says it until an operator re-syncs.
        onHalt: (err) =>
          this.log(
            `ledger: ${err.code}: ${err.message}; stopped following the ledger (its fleet view stays as it was): stop the tracker and run \`ota-ledger tracker resync\` (docs/guides/operations.md)`,
          ),
      },
    );
  }

  get role(): "server" | "intermediate" {
    return this.options.parent ? "intermediate" : "server";
  }

  /** Signs this module's messages with its registered signer (EIP-191). */
  private get signer(): MessageSigner {
    // EIP-191 as Wallet.signMessage, with the native curve code: a notice is sealed per device.
    const key = getBytes(this.wallet.privateKey);
    return { kind: "account", signMessage: async (m: string) => signDigest(key, getBytes(hashMessage(m))) };
  }

  get publicKey(): string {
    return this.wallet.signingKey.compressedPublicKey;
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  /** Checks this module's registration, catches up with the ledger, then follows it and runs its timers. */
  async start(): Promise<void> {
    const registered = await trackerModuleOf(this.options.chain.fleet, this.id);
    if (!registered)
      throw new InputError(
        "MODULE_NOT_REGISTERED",
        `tracker module ${this.id} is not registered (or was retired) on the ledger: register it with \`ota-ledger tracker register\``,
      );
    if (registered.signer.toLowerCase() !== this.wallet.address.toLowerCase()) {
      throw new InputError(
        "MODULE_KEY_MISMATCH",
        `tracker module ${this.id} is registered with signer ${registered.signer}, not this key's ${this.wallet.address}`,
      );
    }
    const expectedParent = this.options.parent?.id.toLowerCase() ?? ZeroHash;
    if (registered.parent.toLowerCase() !== expectedParent) {
      throw new InputError(
        "MODULE_PARENT_MISMATCH",
        `tracker module ${this.id} is registered under ${registered.parent}, not the configured parent ${expectedParent}`,
      );
    }
    const reconciled = reconcileLedgerPosition(this.db, this.options.dataDir);
    if (reconciled.adopted)
      this.log(`ledger: took the position of ${path.join(this.options.dataDir, "ledger-checkpoint.json")} into fleet.db (renamed .adopted)`);
    if (reconciled.trimmedBlocks > 0) this.log(`ledger: undid the events of ${reconciled.trimmedBlocks} block(s) past the saved position; they are read again`);
    // A reorganisation below the window found at start halts the stream (onHalt); the module still
    // starts, so that its health answer can say so and its fleet view stays readable.
    await this.stream.pollOnce().catch((err) => {
      if (!this.stream.halted) throw err;
    });
    this.stream.start();
    this.nameCatalogue();
    this.every(this.o.adoptionSampleMs, () => this.sampleAdoption());
    if (this.options.parent) this.every(this.o.upstreamMs, () => this.syncUpstream());
    if (this.options.firmwareServers?.length) this.every(this.options.downloadLogMs ?? 60_000, () => this.pullDownloadLogs());
    this.startLedgerDuties();
  }

  /** The server module's duties on the ledger (issue 6): failure totals to staged rollouts, status anchors. */
  private startLedgerDuties(): void {
    if (this.role !== "server") return;
    // What an earlier run left waiting (stopped before it was mined, or dropped since) is cancelled first.
    void this.ledgerAccount?.settle().catch((err) => this.log(`ledger account: ${(err as Error).message} (settled before the next send)`));
    if (!this.ledgerAccount) {
      this.log("ledger duties: no ledger account (ledgerAccount): failure totals and status anchors are not posted on the ledger");
      return;
    }
    if (this.failures) this.every(this.options.failureReportMs ?? 30_000, () => this.reportFailures());
    else this.log("ledger duties: no UpdatePolicies contract: failure totals are not posted");
    const anchorMs = this.options.anchorMs ?? 60 * 60_000;
    if (this.anchoring && anchorMs > 0) this.every(anchorMs, () => this.anchorStatus());
    else if (!this.anchoring) this.log("ledger duties: no StatusAnchors contract: the fleet's status is not anchored");
  }

  /**
   * Reads the component and hardware class names the mirror lacks from the registry's views
   * (issue 19: a database from before names were mirrored, or registrations before fromBlock), in
   * the background; nothing to read, one call. Errors are logged; the next catalogue change or
   * start tries again.
   */
  private nameCatalogue(): void {
    if (this.stopped) return;
    void this.duty("names", () => fillMissingNames(this.db, this.options.chain.registry)).catch((err) =>
      this.log(`ledger: names of components and hardware classes not read (${(err as Error).message}); tried again at the next catalogue change`),
    );
  }

  /** One duty at a time per kind: a round still running is joined, not doubled; stop() waits for them. */
  private duty<T>(name: string, run: () => Promise<T>): Promise<T> {
    const running = this.duties.get(name);
    if (running) return running as Promise<T>;
    const p = run().finally(() => this.duties.delete(name));
    this.duties.set(name, p);
    return p;
  }

  /**
   * Posts each staged rollout's failure total that rose (issue 6, APP-II-3): the devices that failed
   * the release, from the fleet database. Errors are logged; the next round tries again.
   */
  reportFailures(): Promise<FailurePost[]> {
    const failures = this.failures;
    if (!failures) return Promise.resolve([]);
    return this.duty("failures", () => failures.run());
  }

  /**
   * Anchors the fleet's status on StatusAnchors now (issue 6, CAP-11.2-a/b): every reported
   * device's status record, the device count and the counts per release; or says why not
   * (nothing changed since the last anchor, or no device has reported yet).
   */
  anchorStatus(): Promise<AnchorResult> {
    const anchoring = this.anchoring;
    if (!anchoring) {
      return Promise.reject(
        new InputError(
          "ANCHORING_OFF",
          "this module anchors nothing: it needs a ledger account (ledgerAccount) and the StatusAnchors contract (chain.anchors), and must be the server module",
        ),
      );
    }
    return this.duty("anchor", async () => {
      const result = await anchoring.anchor();
      if (result.anchored)
        this.log(
          `status anchored: anchor ${result.anchor.index} of ${result.anchor.deviceCount} device(s), root ${result.anchor.root}, tx ${result.anchor.txHash}`,
        );
      return result;
    });
  }

  /**
   * Stops within a few seconds whatever the ledger does (issue 16): a duty waiting for its
   * transaction is cut short (what it sent stays journalled and is settled at the next start), and
   * a ledger read that hangs is not waited for longer than STOP_GRACE_MS.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timers.forEach(clearInterval);
    this.timers = [];
    this.ledgerAccount?.stop();
    const grace = new Promise<void>((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref());
    await Promise.race([Promise.allSettled([...this.duties.values(), this.stream.stop(), this.upstreamRun]), grace]);
    await this.intake.close();
    this.db.close();
  }

  private every(ms: number, fn: () => unknown): void {
    const t = setInterval(() => {
      if (!this.stopped) Promise.resolve(fn()).catch((err) => this.log(`${(err as Error).message}`));
    }, ms);
    t.unref();
    this.timers.push(t);
  }

  /**
   * The mirrored catalogue changed: every plan is made again, once per configuration, and the
   * releases some devices must now move to get a rollout (CAP-11.2-c, CAP-11.3-g). A module below
   * the server does not decide: it starts what its parent decided.
   */
  catalogueChanged(): void {
    this.planner.catalogueChanged();
    if (this.role !== "server") return;
    const started = performance.now();
    const perConfig = this.db.devicesPerConfig();
    const byRelease = new Map<string, { configs: number; devices: number }>();
    for (const [configId, { plan }] of this.planner.planAll()) {
      for (const s of plan.steps) {
        const r = byRelease.get(s.releaseId) ?? byRelease.set(s.releaseId, { configs: 0, devices: 0 }).get(s.releaseId)!;
        r.configs += 1;
        r.devices += perConfig.get(configId) ?? 0;
      }
    }
    const at = this.now();
    for (const [releaseId, r] of byRelease) if (r.devices > 0) this.follow(releaseId, at);
    const releases = [...byRelease].map(([releaseId, r]) => ({ releaseId, ...r }));
    this.lastDecision = { at, ms: performance.now() - started, releases };
    for (const r of releases) this.log(`decided: release ${r.releaseId} for ${r.devices} device(s) in ${r.configs} configuration(s)`);
    this.decideForDownloadHolders();
  }

  /**
   * CAP-11.3-g: the devices that fetched an image now outdated, vulnerable or revoked, found in
   * the firmware servers' download logs, are decided the release to move to, as a device's report
   * would have them decided, also when they never reported (their reports are the device's own
   * word, so a component a device reports is planned from the report alone). The notice reaches
   * the device through its module: in the answer to its next report, or pushed where the transport
   * pushes (MQTT). A newer release replaces an older one decided this way.
   */
  decideForDownloadHolders(): number {
    if (this.role !== "server") return 0;
    const at = this.now();
    let decided = 0;
    for (const holder of this.db.downloadHolders()) {
      const { plan } = this.planner.planOfHeld(holder.hardwareClass, holder.held);
      const already = new Set(this.db.decisionsFor(holder.deviceId).map((d) => d.releaseId));
      for (const step of plan.steps) {
        this.db.dropDecisionsOf(holder.deviceId, step.component, DOWNLOAD_LOG_ORIGIN, step.releaseId);
        if (already.has(step.releaseId.toLowerCase())) continue;
        this.db.decide({
          deviceId: holder.deviceId,
          releaseId: step.releaseId,
          component: step.component,
          reason: step.reason,
          origin: DOWNLOAD_LOG_ORIGIN,
          at,
        });
        this.follow(step.releaseId, at);
        decided += 1;
      }
    }
    if (decided > 0) this.log(`decided: ${decided} update(s) for devices found in the firmware servers' download logs`);
    return decided;
  }

  /**
   * Devices whose tags changed, or that a new or changed group now selects (issue 19, item 11):
   * those that came to match an earlier request's group or query join it, after the same ledger
   * checks. Returns how many were decided. The server module only (it decides).
   */
  async tagsChanged(deviceIds: string[]): Promise<number> {
    if (this.role !== "server" || deviceIds.length === 0) return 0;
    const { registry, policies, bundles, domain, fromBlock } = this.options.chain;
    const n = await extendDynamicRequests({ registry, policies, bundles, domain, fromBlock, db: this.db, now: this.now }, deviceIds);
    if (n > 0) this.log(`decided: ${n} device(s) joined update requests by their tags`);
    return n;
  }

  /** One point of adoption per release: how many devices run it now. */
  sampleAdoption(): void {
    this.db.sampleAdoption(this.now(), this.views.installedByRelease());
  }

  /** Reads every configured firmware server's download log from where it stopped. */
  async pullDownloadLogs(): Promise<number> {
    let n = 0;
    for (const url of this.options.firmwareServers ?? []) n += await pullDownloadLog(this.db, url, this.wallet, this.now);
    if (n > 0) this.decideForDownloadHolders();
    return n;
  }

  // ---------------------------------------------------------------- devices

  /**
   * A device's sealed status report (PROC-5): taken once, and answered with the sealed notices of
   * what the device should install next (CAP-11.2-c, CAP-11.3-g), signed by this module.
   */
  async takeReport(envelope: ReportEnvelope): Promise<{ counter: number; notices: Envelope[]; session?: { id: string; expiresAt: number } }> {
    const signed = await this.intake.take(envelope);
    if (this.options.parent) this.db.queueForUpstream({ message: signed.message, signature: signed.signature });
    this.startRolloutsOf(signed.message.from);
    const notices = await this.noticesFor(this.db.device(signed.message.from)!, "direct");
    return { counter: signed.message.body.counter, notices, ...(signed.session ? { session: signed.session } : {}) };
  }

  /**
   * The sealed notices this device is to be handed now (CAP-11.2-c, CAP-11.3-g), each recorded as
   * delivered `via` the channel that carries it: the answer to a report, or a transport that
   * pushes. With the ledger's policies not answering, none: the device's next contact asks again.
   */
  async noticesFor(device: DeviceRow, via: string): Promise<Envelope[]> {
    const notices: Envelope[] = [];
    const allowed = await this.allowedNow(device, this.pendingFor(device)).catch((err: unknown) => {
      if (!(err instanceof LedgerUnavailable)) throw err;
      this.log(`notices for ${device.id}: none while the ledger does not answer (asked again at its next contact)`);
      return [];
    });
    // A device takes at most NOTICES_PER_ANSWER_MAX a report; the others are handed out at its next report.
    for (const step of allowed.slice(0, NOTICES_PER_ANSWER_MAX)) {
      const body: UpdateNotice = {
        releaseId: step.releaseId,
        component: step.component,
        reason: step.reason,
        ...(step.evidence ? { evidence: step.evidence } : {}),
        // An administrator's deadline (issue 19, item 11): after it the device installs though its window is closed.
        ...this.termsOf(device.id, step),
        // A release bundle's id (docs/adr/0019): the device installs its members as one step.
        ...(this.db.bundle(step.releaseId) ? { bundle: true } : {}),
        // The newest block this module has read: the device's view must reach it (a frozen view is seen, issue 16).
        ...((this.stream.position?.block ?? -1) >= 0 ? { ledgerBlock: this.stream.position!.block } : {}),
      };
      notices.push(await sealMessage({ kind: NOTICE_KIND, from: this.id, to: device.id, issuedAt: this.issuedAt(), body }, this.signer, device.publicKey));
      this.db.noteDelivered({ deviceId: device.id, ...step, via, at: this.now() });
    }
    return notices;
  }

  /** A new configuration may need releases no rollout follows yet. */
  private startRolloutsOf(deviceId: string): void {
    if (this.role !== "server") return;
    const d = this.db.device(deviceId);
    const config = d?.configId == null ? undefined : this.db.config(d.configId);
    if (!config) return;
    for (const s of this.planner.planOf(config).plan.steps) this.follow(s.releaseId, this.now());
  }

  /** Releases with a rollout row, so that a report (the hot path) writes one only for a new release. */
  private followed: Set<string> | undefined;

  private follow(releaseId: string, at: number): void {
    this.followed ??= new Set(this.db.rollouts().map((r) => r.releaseId));
    const id = releaseId.toLowerCase();
    if (this.followed.has(id)) return;
    this.db.startRollout(id, "ledger", at);
    this.followed.add(id);
  }

  /**
   * What this device should be told to install now: its configuration's plan (server module) and
   * the decisions recorded for it (an administrator's request, or the parent's decisions), less
   * what it runs, declined or failed, and what it was told of within `renoticeMs` for the same
   * reason. Dependencies come first.
   */
  pendingFor(device: DeviceRow): { releaseId: string; component: string; reason: string; origin: string }[] {
    // A device in safe mode takes nothing automatically (CAP-11.1-b): it is listed for a person instead.
    if (device.standing !== "active" || device.safeMode) return [];
    const out = new Map<string, { releaseId: string; component: string; reason: string; origin: string }>();
    if (this.role === "server" && device.configId !== null) {
      const config = this.db.config(device.configId);
      if (config)
        for (const s of this.planner.planOf(config).plan.steps)
          out.set(s.releaseId, { releaseId: s.releaseId, component: s.component, reason: s.reason, origin: "ledger" });
    }
    const installed = new Map(this.db.installed(device.id).map((i) => [i.component, i]));
    const bundled = new Set<string>(); // the components of a bundle decided for the device and not done (docs/adr/0019)
    for (const d of this.db.decisionsFor(device.id)) {
      // The plan would offer it anyway: an administrator's request still gives it its origin (its deadline, issue 19 item 11).
      const planned = out.get(d.releaseId);
      if (planned) {
        if (d.origin.startsWith("request:")) planned.origin = d.origin;
        continue;
      }
      const bundle = this.db.bundle(d.releaseId);
      if (bundle) {
        // A release bundle (docs/adr/0019) is done once every member runs (or something newer of its component).
        if (this.runsBundle(bundle, installed)) continue;
        // Failed or not: the administrator asked for these components to move as the bundle (a failure is listed for a person).
        bundle.members.forEach((m) => bundled.add(m.component));
      } else {
        const have = installed.get(d.component);
        const release = this.db.release(d.releaseId);
        if (have && (have.releaseId === d.releaseId || (release && have.version >= release.version))) continue; // done
      }
      out.set(d.releaseId, { releaseId: d.releaseId, component: d.component, reason: d.reason, origin: d.origin });
    }
    // A bundle decided for the device takes its members together: the plan does not offer them one by one meanwhile.
    for (const [id, s] of out) if (bundled.has(s.component) && !this.db.bundle(id)) out.delete(id);
    // A notice already handed out is repeated after renoticeMs, or at once if its reason changed
    // (the release it runs was flagged meanwhile).
    const since = this.now() - this.o.renoticeMs;
    const recent = (s: { releaseId: string; reason: string }) => {
      const last = this.db.lastDelivery(device.id, s.releaseId);
      return last !== undefined && last.at > since && last.reason === s.reason;
    };
    // A release the device declined is offered again once what it runs is flagged or revoked (a
    // device that takes security fixes only takes it then); the renotice interval still applies.
    const fixesInstalled = (s: { reason: string }) => s.reason === "vulnerable-installed" || s.reason === "revoked-installed";
    // A release that failed on the device (after an intact delivery) is not offered again by the
    // plan; an administrator's request for it is (they ask again on purpose). A blocked delivery
    // never stops an offer (agent/core/updateOutcome).
    const failedHere = (s: { releaseId: string; origin: string }) => device.failedRelease === s.releaseId && !isRequested(s.origin);
    // A release the device deferred is offered again once its request's deadline passed (issue 19,
    // item 11): the notice carries the deadline, and the device installs it whatever its window says.
    const pastDeadline = (s: { releaseId: string; origin: string }) => {
      const terms = this.termsOf(device.id, s);
      return terms?.deadline !== undefined && this.now() >= terms.deadline;
    };
    return [...out.values()].filter((s) => (!device.declined.includes(s.releaseId) || fixesInstalled(s) || pastDeadline(s)) && !failedHere(s) && !recent(s));
  }

  /** Whether a device with `installed` runs every member of the bundle, or a newer release of its component. */
  private runsBundle(bundle: BundleRow, installed: Map<string, { releaseId: string; version: bigint }>): boolean {
    return bundle.members.every((m) => {
      const have = installed.get(m.component);
      const release = this.db.release(m.releaseId);
      return !!have && (have.releaseId === m.releaseId || (!!release && have.version >= release.version));
    });
  }

  /**
   * The deadline (ms) and pin override of the administrator's request a device's step came from:
   * from the request itself at the module that took it (origin `request:<id>`), or as the parent
   * passed them down with its decision (origin `upstream:request:<id>`, review finding: a module
   * below must hand its devices the same terms).
   */
  termsOf(deviceId: string, s: { releaseId: string; origin: string }): { deadline?: number; overridePin?: true } | undefined {
    if (s.origin.startsWith("upstream:")) return this.db.decisionTerms(deviceId, s.releaseId);
    return this.requestTerms(s.origin);
  }

  /** The deadline (ms) and pin override of the administrator's request a decision came from (origin `request:<id>`), if any. */
  requestTerms(origin: string): { deadline?: number; overridePin?: true } | undefined {
    if (!origin.startsWith("request:")) return undefined;
    const r = this.db.updateRequest(origin.slice("request:".length));
    if (!r || r.deadline === null) return undefined;
    return { deadline: r.deadline, ...(r.overridePins ? { overridePin: true as const } : {}) };
  }

  /**
   * The steps the administrators' update policies allow for this device now (APP-II-3): asked on
   * the ledger (UpdatePolicies.checkUpdate), never decided here. A step a policy refuses is not
   * handed out, and is asked again at the device's next report.
   */
  private async allowedNow<T extends { releaseId: string }>(device: DeviceRow, steps: T[]): Promise<(T & { evidence?: string })[]> {
    const withEvidence: (T & { evidence?: string })[] = steps.map((s) => {
      const evidence = this.db.evidenceFor(s.releaseId, device.id);
      return evidence ? { ...s, evidence } : s;
    });
    if (!this.options.chain.policies || steps.length === 0) return withEvidence;
    const installed = this.db.installed(device.id).map((i) => ({ component: i.component, version: i.version }));
    const out: (T & { evidence?: string })[] = [];
    for (const step of withEvidence) {
      const bundle = this.db.bundle(step.releaseId);
      if (bundle) {
        if (await this.bundleAllowed(device, bundle, installed)) out.push(step);
        continue;
      }
      const release = this.db.release(step.releaseId);
      if (!release) continue;
      const v = await callLedger(() => checkUpdateOnLedger(this.options.chain, release.record, device, installed, step.evidence));
      if (allowsUpdate(v)) out.push(step);
    }
    return out;
  }

  /**
   * A bundle's members the device does not run yet, each asked of the update policies as the device
   * will ask them (docs/adr/0019): with the other members at their bundle versions, and the
   * evidence held for the member. One refusal holds the whole bundle back.
   */
  private async bundleAllowed(device: DeviceRow, bundle: BundleRow, installed: { component: string; version: bigint }[]): Promise<boolean> {
    const members = bundle.members.map((m) => this.db.release(m.releaseId));
    if (members.some((m) => !m)) return false; // a member the mirror does not hold (yet)
    for (const m of members) {
      const have = installed.find((i) => i.component === m!.component);
      if (have && have.version === m!.version) continue;
      const others = members.filter((o) => o !== m).map((o) => ({ component: o!.component, version: o!.version }));
      const withSet = [...installed.filter((i) => !others.some((o) => o.component === i.component)), ...others];
      const evidence = this.db.evidenceFor(m!.id, device.id);
      const v = await callLedger(() => checkUpdateOnLedger(this.options.chain, m!.record, device, withSet, evidence));
      if (!allowsUpdate(v)) return false;
    }
    return true;
  }

  /**
   * The cohorts of a staged rollout (device ids per wave, as the administrator built them): each
   * device's evidence (wave index and Merkle proof, agent/crypto/cohortTree) is kept, checked by
   * the ledger with every notice and handed to the device with it. When the release's policy is
   * a StagedRollout, each cohort's root must be the root it holds on the ledger.
   */
  async setRolloutCohorts(releaseId: string, waves: string[][]): Promise<{ devices: number; roots: string[] }> {
    const cohorts = waves.map((ids) => buildCohort(ids));
    const policies = this.options.chain.policies;
    const release = this.db.release(releaseId);
    // The evidence is keyed by each staged rollout of a composed policy, so that the policies
    // composed with it keep their own parts; otherwise it goes whole to every policy.
    let keys = [EVERY_POLICY];
    if (policies && release) {
      const policy = await callLedger(() => policies.policyFor(releaseId, release.component));
      // Each staged rollout in the release's policy (itself, or inside composers) must hold these roots. An outage is not skipped.
      const rollouts = await this.stagedRollouts.in(policy);
      for (const rollout of rollouts) {
        const onLedger = await callLedger(() => StagedRollout__factory.connect(rollout, this.options.chain.provider).rolloutWaves(releaseId));
        cohorts.forEach((c, i) => {
          if (onLedger[i]?.cohortRoot.toLowerCase() !== c.root.toLowerCase()) {
            throw new InputError(
              "ROLLOUT_ROOT_MISMATCH",
              `wave ${i}'s cohort has root ${c.root}, the rollout ${rollout} on the ledger has ${onLedger[i]?.cohortRoot ?? "no such wave"}`,
            );
          }
        });
      }
      // A rollout that is the release's whole policy takes the evidence whole, as it always has;
      // so does one deployed before the envelope (it would read an envelope as malformed evidence).
      const alone = rollouts.length === 1 && getAddress(rollouts[0]) === getAddress(policy);
      let readParts = true;
      for (const r of rollouts) readParts = readParts && (await this.stagedRollouts.readsParts(r));
      if (rollouts.length > 0 && !alone && readParts) keys = rollouts;
    }
    const entries = new Map<string, string>();
    cohorts.forEach((c, wave) =>
      c.deviceIds.forEach((id, k) => entries.has(id.toLowerCase()) || entries.set(id.toLowerCase(), encodeRolloutEvidence(wave, c.proofs[k]))),
    );
    const list = [...entries].map(([deviceId, evidence]) => ({ deviceId, evidence }));
    this.db.transaction(() => keys.forEach((key) => this.db.setEvidence(releaseId, key, list)));
    return { devices: entries.size, roots: cohorts.map((c) => c.root) };
  }

  /**
   * An administrator's evidence for one policy (its address) or for every policy (EVERY_POLICY),
   * per device, for a release: kept and handed to each device with its notices, each policy of a
   * composition reading its own part (agent/core/policyEvidence). Nothing is kept when one entry
   * is refused.
   */
  async setPolicyEvidence(releaseId: string, policy: string, devices: Record<string, string>): Promise<{ devices: number }> {
    const policies = this.options.chain.policies;
    const release = this.db.release(releaseId);
    const ids = Object.keys(devices);
    if (policy !== EVERY_POLICY) {
      // Evidence held for every policy (a rollout's cohort proofs from before the envelope) would be
      // replaced by this part: it becomes the part of the release's staged rollouts that read parts.
      const whole = this.db.devicesWithWholeEvidence(releaseId, ids);
      let rekeyTo: string[] = [];
      if (policies && release) {
        const attached = await callLedger(() => policies.policyFor(releaseId, release.component));
        await this.stagedRollouts.requirePartReader(attached, policy, releaseId);
        if (whole.length > 0) {
          rekeyTo = [];
          for (const r of await this.stagedRollouts.in(attached))
            if (getAddress(r) !== getAddress(policy) && (await this.stagedRollouts.readsParts(r))) rekeyTo.push(r);
        }
      }
      if (whole.length > 0 && rekeyTo.length === 0) {
        throw new InputError(
          "EVIDENCE_CONFLICT",
          `${whole.length} device(s) (${whole.slice(0, 3).join(", ")}${whole.length > 3 ? ", ..." : ""}) hold evidence for every policy of release ${releaseId}, which a part for one policy would replace: send each policy's evidence with its policy named, or this one without`,
        );
      }
      if (whole.length > 0) this.db.keyWholeEvidence(releaseId, whole, rekeyTo);
    }
    const list = ids.map((deviceId) => ({ deviceId, evidence: devices[deviceId] }));
    this.db.setEvidence(releaseId, policy, list);
    return { devices: list.length };
  }

  /**
   * Evidence a parent module handed down for a device: it replaces what this module held for the
   * device and release, part by part. Evidence that does not fit (a malformed envelope, parts over
   * the limit) is dropped with a log, never stopping the other decisions.
   */
  private keepEvidence(releaseId: string, deviceId: string, evidence: string): void {
    try {
      this.db.replaceEvidence(releaseId, deviceId, splitEvidence(evidence));
    } catch (err) {
      this.options.log?.(`evidence from the parent for ${deviceId} and release ${releaseId} not kept: ${(err as Error).message}`);
    }
  }

  /** Strictly rising issue times, so that a device takes each of several notices of one answer. */
  private issuedAt(): number {
    // Rising over restarts too (devices and the parent refuse a message not newer than the last):
    // the database holds a mark ISSUE_RESERVE_MS ahead, written once per that span, not per message.
    if (this.lastIssuedAt === 0) this.lastIssuedAt = this.db.replayMark(ISSUED_MARK);
    this.lastIssuedAt = Math.max(this.now(), this.lastIssuedAt + 1);
    if (this.lastIssuedAt >= this.issuedReserved) {
      this.issuedReserved = this.lastIssuedAt + ISSUE_RESERVE_MS;
      this.db.raiseReplayMark(ISSUED_MARK, this.issuedReserved);
    }
    return this.lastIssuedAt;
  }

  private issuedReserved = 0;

  // ---------------------------------------------------------------- modules below

  /**
   * A child module's sealed status (DEP-8.2.3): it must be registered on the ledger with this
   * module as its parent and signed by its registered signer; fresh and newer than the last. Each
   * forwarded report is checked against its device's own signature. The answer carries the
   * decisions for the devices that reach the hierarchy through that child.
   */
  async takeDownstream(
    envelope: Envelope,
  ): Promise<{ accepted: boolean; taken: number; refused: { deviceId: string; code: string }[]; decisions: Envelope | null }> {
    const { message, signedBy } = openMessage<DownstreamStatus>(envelope, this.options.module.privateKey, this.id, "account");
    if (message.kind !== DOWNSTREAM_KIND) throw new ModuleMessageRefused("MESSAGE_KIND", `a ${message.kind} message is not a downstream status`);
    if (!BYTES32.test(message.from)) throw new InputError("MESSAGE_MALFORMED", "a downstream status comes from a module id (0x + 64 hex digits)");
    const child = message.from.toLowerCase();
    const registered = await trackerModuleOf(this.options.chain.fleet, child);
    if (!registered)
      throw new ModuleMessageRefused("MODULE_NOT_REGISTERED", `module ${child} (or one above it) is not registered or was retired on the ledger`);
    if (registered.parent.toLowerCase() !== this.id)
      throw new ModuleMessageRefused("MODULE_NOT_CHILD", `module ${child} is registered under ${registered.parent}, not this module`);
    if (registered.signer.toLowerCase() !== signedBy.toLowerCase())
      throw new ModuleMessageRefused("MODULE_SIGNATURE", `the message is not signed by module ${child}'s registered key`);
    this.checkFresh(message.issuedAt);
    const s = message.body;
    if (!isDownstreamStatus(s)) {
      throw new InputError(
        "BAD_REQUEST",
        "a downstream status has a counter, networks (bytes32), reports, device counts and children {id, lastSeen, reachable, devices, unreachableDevices}",
      );
    }
    const children = s.children.map((c) => ({
      id: c.id.toLowerCase(),
      lastSeen: c.lastSeen,
      reachable: c.reachable,
      devices: c.devices,
      unreachableDevices: c.unreachableDevices,
    }));
    if (
      !this.db.takeModuleStatus({
        id: child,
        networks: s.networks.map((n) => n.toLowerCase()),
        counter: s.counter,
        at: this.now(),
        devices: s.devices,
        unreachableDevices: s.unreachableDevices,
        children,
      })
    ) {
      throw new ModuleMessageRefused("MESSAGE_REPLAYED", `status ${s.counter} of module ${child} is not newer than the last one taken`);
    }
    let taken = 0;
    const refused: { deviceId: string; code: string }[] = [];
    for (const r of s.reports) {
      try {
        const to = String(r?.message?.to ?? "");
        if (!BYTES32.test(to) || !(await this.routesThrough(to, child)))
          throw new ModuleMessageRefused("REPORT_NOT_FOR_MODULE", "the report was not sealed for that module or one below it");
        takeForwardedReport(this.db, r, child, this.now());
        if (this.options.parent) this.db.queueForUpstream(r);
        this.startRolloutsOf(r.message.from);
        taken++;
      } catch (err) {
        if (!(err instanceof OtaError) || err.code === "LEDGER_UNAVAILABLE") throw err;
        refused.push({ deviceId: String(r?.message?.from ?? ""), code: err.code }); // one bad report does not block the others
      }
    }
    return { accepted: true, taken, refused, decisions: await this.decisionsFor(child, s.counter) };
  }

  /** Whether `moduleId` is `via` or below it on the ledger. */
  private async routesThrough(moduleId: string, via: string): Promise<boolean> {
    let id = moduleId.toLowerCase();
    for (let depth = 0; depth < 9; depth++) {
      if (id === via) return true;
      const m = await trackerModuleOf(this.options.chain.fleet, id);
      if (!m || m.parent === ZeroHash) return false;
      id = m.parent.toLowerCase();
    }
    return false;
  }

  /**
   * The decisions for the devices reached through `child`, sealed to its registered key, with the
   * counter of the status they answer: sent even when there are none, since the child keeps the
   * reports it forwarded until this signed acknowledgement, not on a bare 200 anyone on the link
   * could send (issue 19 review).
   */
  private async decisionsFor(child: string, acknowledges: number): Promise<Envelope> {
    // Only devices with something to do: in a configuration whose plan has steps, or with a decision.
    const withSteps = this.role === "server" ? [...this.planner.planAll()].filter(([, p]) => p.outdated).map(([id]) => id) : [];
    const ids = this.db.db
      .prepare(
        `SELECT id FROM devices WHERE upstream = ? AND standing = 'active'
           AND (config_id IN (SELECT value FROM json_each(?)) OR id IN (SELECT device_id FROM decisions))`,
      )
      .pluck()
      .all(child, JSON.stringify(withSteps)) as string[];
    const decisions: UpdateDecisions["decisions"] = [];
    const at = this.now();
    for (const id of ids) {
      const device = this.db.device(id)!;
      for (const step of await this.allowedNow(device, this.pendingFor(device))) {
        decisions.push({ deviceId: id, ...step, ...this.termsOf(id, step), ...(this.db.bundle(step.releaseId) ? { bundle: true } : {}) });
        this.db.noteDelivered({ deviceId: id, ...step, via: child, at });
      }
      if (decisions.length >= 5000) break; // the rest in the next exchange
    }
    const key = await this.moduleKey(child);
    const body: UpdateDecisions = { decisions, acknowledges };
    return sealMessage({ kind: DECISIONS_KIND, from: this.id, to: child, issuedAt: this.issuedAt(), body }, this.signer, key);
  }

  private async moduleKey(moduleId: string): Promise<string> {
    const cached = this.keys.get(moduleId);
    if (cached) return cached;
    const key = await moduleEncryptionKey(this.options.chain.fleet, moduleId, this.options.chain.fromBlock);
    if (!key) throw new ModuleMessageRefused("MODULE_NOT_REGISTERED", `no registration of module ${moduleId} was found on the ledger`);
    this.keys.set(moduleId, key);
    return key;
  }

  private checkFresh(issuedAt: number): void {
    if (Math.abs(this.now() - issuedAt) > this.o.maxMessageAgeMs)
      throw new ModuleMessageRefused("MESSAGE_STALE", `the message was issued at ${issuedAt}, too far from ${this.now()}`);
  }

  // ---------------------------------------------------------------- the module above

  /** One exchange with the parent: forwards reports and reachability, takes the decisions. Exchanges never overlap. */
  syncUpstream(): Promise<void> {
    const run = this.upstreamRun.catch(() => {}).then(() => this.exchange());
    this.upstreamRun = run.catch(() => {});
    return run;
  }

  private async exchange(): Promise<void> {
    const parent = this.options.parent!;
    const batch = this.db.outbox(1000);
    const before = this.now() - this.o.livenessMs;
    const [devices, unreachableDevices] = this.db.db
      .prepare(`SELECT COUNT(*), COALESCE(SUM(last_seen IS NULL OR last_seen < ?), 0) FROM devices WHERE upstream IS NOT NULL AND standing = 'active'`)
      .raw()
      .get(before) as [number, number];
    const status: DownstreamStatus = {
      counter: this.issuedAt(),
      networks: this.options.networks ?? [],
      reports: batch.map((b) => b.body as SignedReport),
      devices,
      unreachableDevices,
      children: this.views
        .modules()
        .map((m) => ({ id: m.id, lastSeen: m.lastSeen, reachable: m.reachable, devices: m.devices, unreachableDevices: m.unreachableDevices })),
    };
    const envelope = await sealMessage(
      { kind: DOWNSTREAM_KIND, from: this.id, to: parent.id, issuedAt: status.counter, body: status },
      this.signer,
      await this.moduleKey(parent.id.toLowerCase()),
    );
    let answer: { decisions: Envelope | null };
    try {
      const res = await fetch(new URL("/v1/downstream", parent.url), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(envelope),
        signal: AbortSignal.timeout(30_000),
      });
      if (!res.ok) {
        const why = await readBoundedBody(res, ERROR_ANSWER_MAX_BYTES, `the parent's refusal`).then(String, (e: Error) => e.message);
        throw new OtaError("UPSTREAM_REFUSED", `the parent module at ${parent.url} answered ${res.status}: ${why}`);
      }
      answer = JSON.parse((await readBoundedBody(res, BODY_MAX_BYTES, `the parent's decisions`)).toString("utf8")) as { decisions: Envelope | null };
    } catch (err) {
      this.upstreamState.lastError = (err as Error).message;
      throw err instanceof OtaError
        ? err
        : new OtaError("UPSTREAM_UNREACHABLE", `the parent module at ${parent.url} is unreachable; reports are kept and sent again`, { cause: err });
    }
    // The reports forwarded are dropped only on the parent's signed acknowledgement of this status:
    // a 200 without it (a proxy, a replayed answer, an older parent) keeps them to send again.
    try {
      if (!answer?.decisions) throw new ModuleMessageRefused("UPSTREAM_UNACKNOWLEDGED", "the answer carries no decisions signed by the parent");
      await this.takeDecisions(answer.decisions, { acknowledging: status.counter });
    } catch (err) {
      this.upstreamState.lastError = (err as Error).message;
      throw err instanceof OtaError
        ? new OtaError(err.code, `the parent module at ${parent.url}: ${err.message}; the reports are kept and sent again`, { cause: err })
        : err;
    }
    if (batch.length > 0) this.db.dropOutbox(batch[batch.length - 1].id);
    this.upstreamState = { lastOk: this.now(), lastError: null };
  }

  /** The parent's decisions: checked (the parent's registered signer on the ledger, fresh, newer), then recorded to start. */
  async takeDecisions(envelope: Envelope, o: { acknowledging?: number } = {}): Promise<number> {
    const parent = this.options.parent;
    if (!parent) throw new ModuleMessageRefused("NO_PARENT", "the server module takes no decisions from above");
    const { message, signedBy } = openMessage<UpdateDecisions>(envelope, this.options.module.privateKey, this.id, "account");
    if (message.kind !== DECISIONS_KIND) throw new ModuleMessageRefused("MESSAGE_KIND", `a ${message.kind} message is not a list of decisions`);
    if (message.from.toLowerCase() !== parent.id.toLowerCase())
      throw new ModuleMessageRefused("MODULE_NOT_PARENT", `decisions come from ${message.from}, not this module's parent`);
    const registered = await trackerModuleOf(this.options.chain.fleet, parent.id);
    if (!registered) throw new ModuleMessageRefused("MODULE_NOT_REGISTERED", `the parent module ${parent.id} is not registered or was retired on the ledger`);
    if (registered.signer.toLowerCase() !== signedBy.toLowerCase())
      throw new ModuleMessageRefused("MODULE_SIGNATURE", "the decisions are not signed by the parent's registered key");
    this.checkFresh(message.issuedAt);
    // The mark is in the fleet database, so a restart does not reopen the freshness window to a replay.
    if (message.issuedAt <= this.db.replayMark(PARENT_DECISIONS_MARK))
      throw new ModuleMessageRefused("MESSAGE_REPLAYED", "the decisions are not newer than the last ones taken");
    if (o.acknowledging !== undefined && message.body?.acknowledges !== o.acknowledging)
      throw new ModuleMessageRefused(
        "UPSTREAM_UNACKNOWLEDGED",
        `the decisions acknowledge status ${String(message.body?.acknowledges)}, not the status ${o.acknowledging} just sent`,
      );
    const at = this.now();
    let n = 0;
    this.db.transaction(() => {
      this.db.raiseReplayMark(PARENT_DECISIONS_MARK, message.issuedAt);
      for (const d of Array.isArray(message.body?.decisions) ? message.body.decisions : []) {
        if (!this.db.device(String(d.deviceId))) continue; // not enrolled as far as this module's ledger view goes
        this.db.decide({ deviceId: d.deviceId, releaseId: d.releaseId, component: d.component, reason: d.reason, origin: `upstream:${String(d.origin)}`, at });
        // The administrator's terms, as the parent gives them: a deadline in ms, a pin override only with it.
        const deadline = Number.isSafeInteger(d.deadline) && (d.deadline as number) > 0 ? (d.deadline as number) : undefined;
        this.db.setDecisionTerms(
          d.deviceId,
          d.releaseId,
          deadline === undefined ? undefined : { deadline, ...(d.overridePin === true ? { overridePin: true } : {}) },
        );
        if (isEvidence(d.evidence)) this.keepEvidence(d.releaseId, d.deviceId, d.evidence);
        n++;
      }
    });
    return n;
  }
}
