import { createHash } from "node:crypto";
import { readUpdateFactsOf, type UpdateFacts } from "../chain/ledgerLens";
import type { FleetRegistry, UpdatePolicies, UpdateRegistry } from "../chain/contracts";
import type { Provider } from "ethers";
import type { InstalledVersion } from "../core/release";
import type { DeviceCredential } from "../crypto/deviceCredential";
import type { LedgerRelease } from "../chain/releaseEvents";
import { isLedgerOutage } from "../chain/ledgerCall";

/** What the firmware server decides a device's entitlement on: its standing and the ledger's verdict. */
export type EntitlementFacts = Pick<UpdateFacts, "standing" | "verdict">;

export interface EntitlementReadsOptions {
  /** How long the server waits for other devices' questions before it asks the ledger (ms). */
  windowMs?: number;
  /** Most questions in one read. */
  maxBatch?: number;
  /**
   * How long a yes is remembered (ms). Ledger events that can turn it into a no (a revocation, a
   * flag, a bar, a suspension, a withdrawn record or batch, a policy attached or detached) forget
   * every answer at once; the time bounds what no event announces (a policy's own state, its clock).
   */
  allowedTtlMs?: number;
  /** Most answers remembered (oldest forgotten first). */
  maxEntries?: number;
  now?: () => number;
}

interface Waiting {
  release: LedgerRelease;
  credential: DeviceCredential;
  installed: InstalledVersion[];
  evidence: string;
  resolve: (f: EntitlementFacts) => void;
  reject: (err: unknown) => void;
}

/**
 * The firmware server's ledger reads of entitlement (issue 17), at fleet scale: the devices asking
 * within a few milliseconds of each other are asked about in one read of the update-check lens
 * (agent/chain/ledgerLens), and a yes is remembered per device, release and context, so a device's
 * manifest, artifact and key requests cost one question between them. A no is never remembered:
 * the next request asks again (a key granted meanwhile, a window opened).
 */
export class EntitlementReads {
  private readonly allowed = new Map<string, { facts: EntitlementFacts; until: number }>();
  private readonly inFlight = new Map<string, Promise<EntitlementFacts>>();
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Bumped by forget(): an answer read before an event is not remembered after it. */
  private generation = 0;
  private readonly o: Required<Omit<EntitlementReadsOptions, "now">> & { now: () => number };
  /** Reads of the ledger made, and questions they answered (for the benches). */
  readonly stats = { reads: 0, questions: 0, remembered: 0 };

  constructor(
    private readonly chain: { provider: Provider; registry: UpdateRegistry; fleet: FleetRegistry; policies?: UpdatePolicies; lens?: string },
    o: EntitlementReadsOptions = {},
  ) {
    this.o = { windowMs: 20, maxBatch: 32, allowedTtlMs: 30_000, maxEntries: 100_000, now: Date.now, ...o };
  }

  /** The device's standing and the ledger's verdict on the release for it, now. */
  facts(release: LedgerRelease, credential: DeviceCredential, installed: InstalledVersion[], evidence: string): Promise<EntitlementFacts> {
    const key = createHash("sha256")
      .update(JSON.stringify([release.id.toLowerCase(), credential, installed, evidence], bigints))
      .digest("hex");
    const hit = this.allowed.get(key);
    if (hit && hit.until > this.o.now()) {
      this.stats.remembered++;
      return Promise.resolve(hit.facts);
    }
    if (hit) this.allowed.delete(key);
    const shared = this.inFlight.get(key); // the same device's concurrent requests share one question
    if (shared) return shared;
    const generation = this.generation;
    const asked = new Promise<EntitlementFacts>((resolve, reject) => {
      this.waiting.push({ release, credential, installed, evidence, resolve, reject });
      if (this.waiting.length >= this.o.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.o.windowMs);
    }).then((facts) => {
      if (generation === this.generation && facts.standing === "active" && facts.verdict.verdict === "INSTALLABLE" && facts.verdict.reason === 0n) {
        this.allowed.set(key, { facts, until: this.o.now() + this.o.allowedTtlMs });
        if (this.allowed.size > this.o.maxEntries) this.allowed.delete(this.allowed.keys().next().value!);
      }
      return facts;
    });
    this.inFlight.set(key, asked);
    void asked.finally(() => this.inFlight.delete(key)).catch(() => {});
    return asked;
  }

  /** Forgets every answer: a ledger event may have changed any of them. */
  forget(): void {
    this.generation++;
    this.allowed.clear();
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting.splice(0);
    if (batch.length === 0) return;
    this.stats.reads++;
    this.stats.questions += batch.length;
    readUpdateFactsOf(
      this.chain,
      batch.map((w) => ({ release: w.release, device: w.credential, installed: w.installed, evidence: w.evidence })),
    ).then(
      (all) => batch.forEach((w, i) => w.resolve({ standing: all[i].standing, verdict: all[i].verdict })),
      (err: unknown) => {
        // One question the ledger cannot answer must not fail the devices asked with it: each alone.
        if (batch.length === 1 || isLedgerOutage(err)) return batch.forEach((w) => w.reject(err));
        for (const w of batch)
          readUpdateFactsOf(this.chain, [{ release: w.release, device: w.credential, installed: w.installed, evidence: w.evidence }]).then(
            ([f]) => w.resolve({ standing: f.standing, verdict: f.verdict }),
            w.reject,
          );
      },
    );
  }
}

const bigints = (_k: string, v: unknown) => (typeof v === "bigint" ? v.toString() : v);
