import path from "node:path";
import { ZeroHash, type Provider, type Signer, type TypedDataDomain, type Wallet } from "ethers";
import type { FleetRegistry, ReleaseBundles, StatusAnchors, UpdatePolicies, UpdateRegistry } from "../chain/contracts";
import { ChainEventStream, type RpcSender } from "../chain/eventStream";
import { InputError } from "../core/errors";
import type { Envelope } from "../crypto/sealedMessage";
import { DeviceNotices } from "./deviceNotices";
import { FleetDecisions } from "./fleetDecisions";
import { FleetPlanner } from "./fleetPlanner";
import { FleetViews } from "./fleetViews";
import { LedgerDuties } from "./ledgerDuties";
import { LedgerMirror } from "./ledgerMirror";
import { FleetPositionStore, reconcileLedgerPosition } from "./ledgerPosition";
import { ModuleDownstream } from "./moduleDownstream";
import { ModuleMessageRefused, ModuleMessages, trackerModuleOf } from "./moduleMessages";
import { ModuleUpstream } from "./moduleUpstream";
import { ReportIntake, type ReportEnvelope } from "./reportIntake";
import { RolloutEvidence } from "./rolloutEvidence";
import { FleetStore, type DeviceRow } from "./store";
import { TRACKER_DEFAULTS } from "../core/serviceDefaults";

/** A tracker module's options; a timing left out takes its value from TRACKER_DEFAULTS (agent/core/serviceDefaults.ts). */
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
  failureReportMs?: number; // how often failure totals are posted, at most
  anchorMs?: number; // how often the fleet's status is anchored (0: never)
  anchorRecordsKept?: number; // the anchors whose records are kept to serve proofs
  /** This module's id on the ledger and its key: the registered signer and the key messages are sealed to. */
  module: { id: string; privateKey: string };
  /** Threads that open device reports under load (default: one per core; 0: none). */
  intakeWorkers?: number;
  /** The module above (an intermediate module); absent for the server module, which decides. */
  parent?: { id: string; url: string };
  /** Firmware servers whose download logs count as contact with devices (CAP-11.2-b-i). */
  firmwareServers?: string[];
  downloadLogMs?: number; // how often they are read
  /** The device networks (bytes32) this module serves; reported upstream (APP-II-4). */
  networks?: string[];
  dataDir: string;
  livenessMs?: number; // no contact for this long: unreachable
  renoticeMs?: number; // a notice not acted on is handed out again after this long
  adoptionSampleMs?: number;
  upstreamMs?: number; // how often an intermediate module posts upstream
  pollMs?: number; // ledger polling
  confirmations?: number;
  /** Recent blocks remembered to find a reorganisation's fork point; a deeper one halts the stream (REORG_TOO_DEEP). */
  reorgWindow?: number;
  /** How long a ledger-duty transaction may wait to be mined before it is cancelled. */
  ledgerTxDeadlineMs?: number;
  ledgerTxPollMs?: number; // between receipt polls
  maxMessageAgeMs?: number; // module messages older than this are refused
  now?: () => number;
  log?: (line: string) => void;
}

/** The longest stop() waits for a duty or a ledger read in flight. */
const STOP_GRACE_MS = 3000;

/**
 * One status tracker module (X.1368 clause 8.2): the server module (no parent) decides which
 * update each device needs; an intermediate module relays reports up and decisions down; both
 * follow the ledger themselves, take sealed reports from their devices and hand out sealed
 * notices in the answer (ADR 0004: downstream posts, upstream answers). This class wires the
 * pieces and runs their lifecycle: the fleet database (store), the ledger mirror (stream), the
 * device notices, the fleet's decisions, the module hierarchy (downstream, upstream) and the
 * ledger duties.
 */
export class TrackerModule {
  readonly store: FleetStore;
  readonly planner: FleetPlanner;
  readonly views: FleetViews;
  /** Device reports: opened on worker threads under load, stored several per commit (issue 5). */
  readonly intake: ReportIntake;
  readonly id: string;
  readonly stream: ChainEventStream;
  /** The module's clock (ms): the time its decisions, notices and deadlines are read against. */
  readonly now: () => number;
  readonly messages: ModuleMessages;
  readonly notices: DeviceNotices;
  readonly decisions: FleetDecisions;
  readonly evidence: RolloutEvidence;
  readonly downstream: ModuleDownstream;
  /** The link to the module above: an intermediate module's only. */
  readonly upstream: ModuleUpstream | undefined;
  readonly duties: LedgerDuties;
  /** The options' timings, each defaulted from TRACKER_DEFAULTS. */
  private readonly timings: Record<keyof typeof TRACKER_DEFAULTS, number>;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(readonly options: TrackerModuleOptions) {
    const t: Record<keyof typeof TRACKER_DEFAULTS, number> = { ...TRACKER_DEFAULTS };
    for (const k of Object.keys(t) as (keyof typeof t)[]) t[k] = options[k] ?? t[k];
    this.timings = t;
    const now = (this.now = options.now ?? Date.now);
    const log = (line: string) => this.options.log?.(line);
    const { chain, parent } = options;
    const id = (this.id = options.module.id.toLowerCase());
    const privateKey = options.module.privateKey;
    const server = !parent;
    const store = (this.store = new FleetStore(path.join(options.dataDir, "fleet.db")));
    const planner = (this.planner = new FleetPlanner(store));
    const views = (this.views = new FleetViews(store, planner, t.livenessMs, now));
    // Report sessions (ADR 0013) only where reports end: a module below forwards each device's own signature upstream.
    this.intake = new ReportIntake(store, { id, privateKey }, now, { workers: options.intakeWorkers, sessions: server });
    const messages = (this.messages = new ModuleMessages({
      id,
      privateKey,
      marks: store.marks,
      fleet: chain.fleet,
      fromBlock: chain.fromBlock,
      now,
      maxMessageAgeMs: t.maxMessageAgeMs,
    }));
    const ledgerBlock = () => this.stream.position?.block ?? -1;
    const notices = (this.notices = new DeviceNotices({ store, planner, messages, chain, server, renoticeMs: t.renoticeMs, ledgerBlock, now, log }));
    const decisions = (this.decisions = new FleetDecisions({ store, planner, chain, server, now, log }));
    const evidence = (this.evidence = new RolloutEvidence({ store, chain, log }));
    const fleet = chain.fleet;
    this.downstream = new ModuleDownstream({ id, privateKey, store, planner, messages, notices, decisions, fleet, server, forwardsUpstream: !server, now });
    if (parent)
      this.upstream = new ModuleUpstream({
        id,
        privateKey,
        parent,
        networks: options.networks ?? [],
        store,
        views,
        messages,
        evidence,
        fleet,
        livenessMs: t.livenessMs,
        now,
      });
    this.duties = new LedgerDuties({
      store,
      chain,
      account: server ? options.ledgerAccount : undefined,
      moduleId: id,
      wallet: messages.wallet,
      firmwareServers: options.firmwareServers ?? [],
      downloadsTaken: () => decisions.decideForDownloadHolders(),
      timings: t,
      now,
      log,
    });
    const bundles = chain.bundles ? String(chain.bundles.target) : undefined;
    const addresses = { registry: String(chain.registry.target), fleet: String(fleet.target), bundles, domain: chain.domain };
    const mirror = new LedgerMirror(store, addresses, (changed) => {
      if (changed.releases) {
        this.catalogueChanged();
        this.nameCatalogue();
      }
    });
    this.stream = new ChainEventStream(
      { provider: chain.provider, store: new FleetPositionStore(store), handler: mirror },
      {
        filters: [{ address: [addresses.registry, addresses.fleet, ...(bundles ? [bundles] : [])] }],
        fromBlock: chain.fromBlock,
        confirmations: t.confirmations,
        window: t.reorgWindow,
        pollMs: t.pollMs,
        onError: (err, retry) => log(`ledger: ${(err as Error).message} (retry in ${retry.retryInMs} ms)`),
        // One line, naming the code and the fix; the health answer says it until an operator re-syncs.
        onHalt: (err) =>
          log(
            `ledger: ${err.code}: ${err.message}; stopped following the ledger (its fleet view stays as it was): stop the tracker and run \`ota-ledger tracker resync\` (docs/guides/operations.md)`,
          ),
      },
    );
  }

  get role(): "server" | "intermediate" {
    return this.options.parent ? "intermediate" : "server";
  }

  get wallet(): Wallet {
    return this.messages.wallet;
  }

  get publicKey(): string {
    return this.wallet.signingKey.compressedPublicKey;
  }

  get ledgerAccount() {
    return this.duties.ledgerAccount;
  }

  get anchoring() {
    return this.duties.anchoring;
  }

  /** The last decision round after a ledger change: for logs and the benchmark. */
  get lastDecision() {
    return this.decisions.lastDecision;
  }

  /** How the last exchange with the module above went (an intermediate module's; never tried for the server module). */
  get upstreamState(): { lastOk: number | null; lastError: string | null } {
    return this.upstream?.upstreamState ?? { lastOk: null, lastError: null };
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
    const reconciled = reconcileLedgerPosition(this.store, this.options.dataDir);
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
    const t = this.timings;
    this.every(t.adoptionSampleMs, () => this.sampleAdoption());
    if (this.upstream) this.every(t.upstreamMs, () => this.syncUpstream());
    if (this.options.firmwareServers?.length) this.every(t.downloadLogMs, () => this.pullDownloadLogs());
    if (this.role === "server") this.duties.startOnLedger((ms, fn) => this.every(ms, fn), t);
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
    this.duties.stop();
    const grace = new Promise<void>((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref());
    const running = [...this.duties.inFlight(), this.stream.stop(), this.upstream?.idle() ?? Promise.resolve()];
    await Promise.race([Promise.allSettled(running), grace]);
    await this.intake.close();
    this.store.close();
  }

  private every(ms: number, fn: () => unknown): void {
    const t = setInterval(() => {
      if (!this.stopped) Promise.resolve(fn()).catch((err) => this.log(`${(err as Error).message}`));
    }, ms);
    t.unref();
    this.timers.push(t);
  }

  /** The names the mirror lacks, read from the registry's views in the background (LedgerDuties.nameCatalogue). */
  private nameCatalogue(): void {
    if (!this.stopped) this.duties.nameCatalogue();
  }

  /** One point of adoption per release: how many devices run it now. */
  sampleAdoption(): void {
    this.store.rollouts.sampleAdoption(this.now(), this.views.installedByRelease());
  }

  /**
   * A device's sealed status report (PROC-5): taken once, and answered with the sealed notices of
   * what the device should install next (CAP-11.2-c, CAP-11.3-g), signed by this module.
   */
  async takeReport(envelope: ReportEnvelope): Promise<{ counter: number; notices: Envelope[]; session?: { id: string; expiresAt: number } }> {
    const signed = await this.intake.take(envelope);
    if (this.options.parent) this.store.hierarchy.queue({ message: signed.message, signature: signed.signature });
    this.decisions.startRolloutsOf(signed.message.from);
    const notices = await this.noticesFor(this.store.devices.get(signed.message.from)!, "direct");
    return { counter: signed.message.body.counter, notices, ...(signed.session ? { session: signed.session } : {}) };
  }

  // ---------------------------------------------------------------- the pieces' entry points, as the HTTP layer, the CLI and tests call them

  /** DeviceNotices.noticesFor: the sealed notices this device is to be handed now, recorded as delivered `via`. */
  noticesFor(device: DeviceRow, via: string): Promise<Envelope[]> {
    return this.notices.noticesFor(device, via);
  }

  /** DeviceNotices.pendingFor: what this device should be told to install now. */
  pendingFor(device: DeviceRow): { releaseId: string; component: string; reason: string; origin: string }[] {
    return this.notices.pendingFor(device);
  }

  /** FleetDecisions.catalogueChanged: every plan made again, and rollouts for the releases devices must move to. */
  catalogueChanged(): void {
    this.decisions.catalogueChanged();
  }

  /** FleetDecisions.decideForDownloadHolders (CAP-11.3-g). */
  decideForDownloadHolders(): number {
    return this.decisions.decideForDownloadHolders();
  }

  /** FleetDecisions.tagsChanged: devices that came to match an earlier request's group or query join it. */
  tagsChanged(deviceIds: string[]): Promise<number> {
    return this.decisions.tagsChanged(deviceIds);
  }

  /** RolloutEvidence.setRolloutCohorts: a staged rollout's cohorts, each device's evidence kept. */
  setRolloutCohorts(releaseId: string, waves: string[][]): Promise<{ devices: number; roots: string[] }> {
    return this.evidence.setRolloutCohorts(releaseId, waves);
  }

  /** RolloutEvidence.setPolicyEvidence: an administrator's evidence for one policy or every policy. */
  setPolicyEvidence(releaseId: string, policy: string, devices: Record<string, string>): Promise<{ devices: number }> {
    return this.evidence.setPolicyEvidence(releaseId, policy, devices);
  }

  /** ModuleDownstream.takeDownstream: a child module's sealed status, answered with its decisions. */
  takeDownstream(envelope: Envelope): ReturnType<ModuleDownstream["takeDownstream"]> {
    return this.downstream.takeDownstream(envelope);
  }

  /** ModuleUpstream.syncUpstream: one exchange with the parent (an intermediate module's). */
  syncUpstream(): Promise<void> {
    if (!this.upstream) return Promise.reject(new ModuleMessageRefused("NO_PARENT", "the server module has no module above it"));
    return this.upstream.syncUpstream();
  }

  /** ModuleUpstream.takeDecisions: the parent's decisions, checked, then recorded to start. */
  takeDecisions(envelope: Envelope, o: { acknowledging?: number } = {}): Promise<number> {
    if (!this.upstream) return Promise.reject(new ModuleMessageRefused("NO_PARENT", "the server module takes no decisions from above"));
    return this.upstream.takeDecisions(envelope, o);
  }

  /** LedgerDuties.reportFailures: each staged rollout's failure total that rose, posted. */
  reportFailures(): ReturnType<LedgerDuties["reportFailures"]> {
    return this.duties.reportFailures();
  }

  /** LedgerDuties.anchorStatus: the fleet's status anchored on StatusAnchors now, or why not. */
  anchorStatus(): ReturnType<LedgerDuties["anchorStatus"]> {
    return this.duties.anchorStatus();
  }

  /** LedgerDuties.pullDownloadLogs: every configured firmware server's download log, read from where it stopped. */
  pullDownloadLogs(): Promise<number> {
    return this.duties.pullDownloadLogs();
  }
}
