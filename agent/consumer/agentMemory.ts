import { promises as fs } from "node:fs";
import { serialFileWriter } from "../files/atomicFile";

/** At most this many releases' policy evidence is kept (the newest); a device needs few at a time. */
const MAX_EVIDENCE = 64;

interface Stored {
  version: 1;
  pending: string[];
  lastNoticeAt: number;
  evidence: Record<string, string>;
  /** The ledgerBlock of the newest notice taken (issue 16); absent in files written before it. */
  ledgerFloor?: number;
  ledgerFloorAt?: number; // ms: the issue time of the notice that set it
  proofEndpoints?: string[]; // RPC endpoints (as logs show them) that answered eth_getProof
  /** Administrators' deadlines by release (issue 19, item 11): ms since the epoch, and whether a pin gives way at it. */
  deadlines?: Record<string, { at: number; overridePin?: boolean }>;
  /** Of `pending`, the release bundles' ids (docs/adr/0019): a retry after a restart is a bundle's. Absent in files written before. */
  pendingBundles?: string[];
}

/**
 * What a device agent must remember across a restart besides its slots (agent-state.json):
 * - the releases it will try again (a key not yet granted, a dependency not yet installed, the
 *   server or the ledger down): the ledger watcher's checkpoint has moved past their events, so a
 *   power cut would otherwise forget them until the next release; and which of them are release
 *   bundles (docs/adr/0019), so that a bundle is retried as a bundle after a restart;
 * - the issue time of the last notice taken from its upstream, so that a captured notice cannot
 *   be replayed after a restart (CAP-11.2-m-b);
 * - the policy evidence (e.g. a cohort proof) its upstream handed out for a release;
 * - the ledger block its upstream's newest notice signed it had read: the floor its own
 *   view of the ledger must reach, so a frozen view stays seen across a restart.
 * A missing file is a fresh device; an unreadable one is logged and started afresh, as the ledger
 * and the tracker hold the truth and only the retries and the replay floor are lost.
 */
export class AgentMemory {
  private constructor(
    private readonly file: string,
    readonly pending: Set<string>,
    private lastNotice: number,
    readonly evidence: Map<string, string>,
    private floor: number,
    private floorAt: number,
    /** The RPC endpoints that answered eth_getProof (ledgerProofs "auto" then requires it of them). */
    readonly proofEndpoints: Set<string>,
    /** The deadline its upstream's notice gave for a release (issue 19, item 11), the newest few. */
    readonly deadlines: Map<string, { at: number; overridePin?: boolean }> = new Map(),
    /** Of the pending retries, those that are release bundles (docs/adr/0019): retried as bundles, also after a restart. */
    readonly pendingBundles: Set<string> = new Set(),
  ) {}

  static async open(file: string, log?: (line: string) => void): Promise<AgentMemory> {
    let text: string;
    try {
      text = await fs.readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return new AgentMemory(file, new Set(), 0, new Map(), 0, 0, new Set());
      throw err;
    }
    try {
      const s = JSON.parse(text) as Stored;
      if (s.version !== 1 || !Array.isArray(s.pending) || typeof s.lastNoticeAt !== "number" || typeof s.evidence !== "object" || s.evidence === null) {
        throw new Error("not an agent-state file of version 1");
      }
      const floor = Number.isSafeInteger(s.ledgerFloor) && s.ledgerFloor! >= 0 ? s.ledgerFloor! : 0;
      const floorAt = Number.isSafeInteger(s.ledgerFloorAt) && s.ledgerFloorAt! >= 0 ? s.ledgerFloorAt! : 0;
      const evidence = new Map(Object.entries(s.evidence).map(([k, v]) => [k, String(v)]));
      const proofEndpoints = new Set(Array.isArray(s.proofEndpoints) ? s.proofEndpoints.map(String) : []);
      const deadlines = new Map(
        Object.entries(typeof s.deadlines === "object" && s.deadlines !== null ? s.deadlines : {})
          .filter(([, d]) => Number.isSafeInteger(d?.at))
          .map(([k, d]) => [k, { at: d.at, ...(d.overridePin === true ? { overridePin: true } : {}) }]),
      );
      const pending = new Set(s.pending.map(String));
      const bundles = new Set((Array.isArray(s.pendingBundles) ? s.pendingBundles.map(String) : []).filter((b) => pending.has(b)));
      return new AgentMemory(file, pending, s.lastNoticeAt, evidence, floor, floorAt, proofEndpoints, deadlines, bundles);
    } catch (err) {
      log?.(`${file} is unreadable (${(err as Error).message}): starting without remembered retries`);
      return new AgentMemory(file, new Set(), 0, new Map(), 0, 0, new Set());
    }
  }

  get lastNoticeAt(): number {
    return this.lastNotice;
  }

  /** The ledger block the upstream's newest notice says it had read (0: none yet). */
  get ledgerFloor(): number {
    return this.floor;
  }

  /** When the notice that set the floor was issued (ms; 0: none): a floor only holds for the ledger-age limit after it. */
  get ledgerFloorAt(): number {
    return this.floorAt;
  }

  /** Takes a notice's issue time, its evidence and its ledger block, and writes them before the notice is acted on. */
  async noteNotice(
    issuedAt: number,
    releaseId: string,
    evidence?: string,
    ledgerBlock?: number,
    deadline?: { at: number; overridePin?: boolean },
  ): Promise<void> {
    this.lastNotice = issuedAt;
    // The newest notice of a release says its deadline: one without a deadline lifts an earlier one.
    this.deadlines.delete(releaseId);
    if (deadline) this.deadlines.set(releaseId, deadline);
    for (const old of this.deadlines.keys()) {
      if (this.deadlines.size <= MAX_EVIDENCE) break;
      this.deadlines.delete(old);
    }
    // The newest notice's block is the floor, even a lower one: each notice says what its module
    // had read when it wrote it, and an absurd floor (a module's bug or stolen key) is replaced by
    // the next honest notice rather than kept until it expires (issue 16 review).
    if (ledgerBlock !== undefined && issuedAt >= this.floorAt) {
      this.floor = ledgerBlock;
      this.floorAt = issuedAt;
    }
    if (evidence) this.keepEvidence(releaseId, evidence);
    await this.save();
  }

  /**
   * Holds `evidence` for the release's policy, as a notice would hand it (`ota-ledger policy
   * evidence --device-config`, for a device without a tracker), and writes it.
   */
  async holdEvidence(releaseId: string, evidence: string): Promise<void> {
    this.keepEvidence(releaseId.toLowerCase(), evidence);
    await this.save();
  }

  private keepEvidence(releaseId: string, evidence: string): void {
    this.evidence.delete(releaseId);
    this.evidence.set(releaseId, evidence);
    for (const old of this.evidence.keys()) {
      if (this.evidence.size <= MAX_EVIDENCE) break;
      this.evidence.delete(old);
    }
  }

  /** Remembers that `endpoint` answered eth_getProof; writes only on a change. */
  async noteProofEndpoint(endpoint: string): Promise<void> {
    if (this.proofEndpoints.has(endpoint)) return;
    this.proofEndpoints.add(endpoint);
    await this.save();
  }

  /** Marks a release (or a release bundle, `bundle`) to try again later, or not; writes only on a change. */
  async setPending(releaseId: string, retry: boolean, bundle = false): Promise<void> {
    if (retry === this.pending.has(releaseId) && (!retry || bundle === this.pendingBundles.has(releaseId))) return;
    if (retry) this.pending.add(releaseId);
    else this.pending.delete(releaseId);
    if (retry && bundle) this.pendingBundles.add(releaseId);
    else this.pendingBundles.delete(releaseId);
    await this.save();
  }

  /** Writes the current state; writes run one after another, each with what is current when it starts. */
  private save(): Promise<void> {
    this.write ??= serialFileWriter(this.file);
    return this.write(() => {
      const stored: Stored = {
        version: 1,
        pending: [...this.pending],
        lastNoticeAt: this.lastNotice,
        evidence: Object.fromEntries(this.evidence),
        ...(this.floor > 0 ? { ledgerFloor: this.floor, ledgerFloorAt: this.floorAt } : {}),
        ...(this.deadlines.size > 0 ? { deadlines: Object.fromEntries(this.deadlines) } : {}),
        ...(this.proofEndpoints.size > 0 ? { proofEndpoints: [...this.proofEndpoints] } : {}),
        ...(this.pendingBundles.size > 0 ? { pendingBundles: [...this.pendingBundles] } : {}),
      };
      return JSON.stringify(stored) + "\n";
    });
  }

  private write: ((content: () => string) => Promise<void>) | undefined;
}
