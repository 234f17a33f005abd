import { OtaError } from "../core/errors";
import { isEvidence } from "../core/installedContext";
import { BODY_MAX_BYTES, ERROR_ANSWER_MAX_BYTES } from "../core/wireLimits";
import { openMessage, type Envelope } from "../crypto/sealedMessage";
import { readBoundedBody } from "../net/boundedBody";
import type { FleetRegistry } from "../chain/contracts";
import type { FleetViews } from "./fleetViews";
import {
  DECISIONS_KIND,
  DOWNSTREAM_KIND,
  ModuleMessageRefused,
  trackerModuleOf,
  type DownstreamStatus,
  type ModuleMessages,
  type UpdateDecisions,
} from "./moduleMessages";
import type { SignedReport } from "./reportIntake";
import type { RolloutEvidence } from "./rolloutEvidence";
import type { FleetStore } from "./store";

/** The fleet database's replay mark of the decisions taken from the parent (their issue time). */
const PARENT_DECISIONS_MARK = "parent-decisions";

/**
 * An intermediate module's link to the module above it (DEP-8.2.3): it posts its status (the
 * reports it took, as their devices signed them, and the reachability of what is below it) and
 * takes the parent's signed decisions in the answer; the reports are dropped only on the parent's
 * signed acknowledgement.
 */
export class ModuleUpstream {
  upstreamState: { lastOk: number | null; lastError: string | null } = { lastOk: null, lastError: null };
  private upstreamRun: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: {
      id: string;
      privateKey: string;
      parent: { id: string; url: string };
      networks: string[];
      store: FleetStore;
      views: FleetViews;
      messages: ModuleMessages;
      evidence: RolloutEvidence;
      fleet: FleetRegistry;
      livenessMs: number;
      now: () => number;
    },
  ) {}

  /** Settles when the exchange running (if any) ends. */
  idle(): Promise<void> {
    return this.upstreamRun;
  }

  /** One exchange with the parent: forwards reports and reachability, takes the decisions. Exchanges never overlap. */
  syncUpstream(): Promise<void> {
    const run = this.upstreamRun.catch(() => {}).then(() => this.exchange());
    this.upstreamRun = run.catch(() => {});
    return run;
  }

  private async exchange(): Promise<void> {
    const parent = this.deps.parent;
    const batch = this.deps.store.hierarchy.outbox(1000);
    const below = this.deps.store.devices.belowCounts(this.deps.now() - this.deps.livenessMs);
    const status: DownstreamStatus = {
      counter: this.deps.messages.issuedAt(),
      networks: this.deps.networks,
      reports: batch.map((b) => b.body as SignedReport),
      devices: below.devices,
      unreachableDevices: below.unreachable,
      children: this.deps.views
        .modules()
        .map((m) => ({ id: m.id, lastSeen: m.lastSeen, reachable: m.reachable, devices: m.devices, unreachableDevices: m.unreachableDevices })),
    };
    const envelope = await this.deps.messages.seal(
      DOWNSTREAM_KIND,
      parent.id,
      status,
      await this.deps.messages.moduleKey(parent.id.toLowerCase()),
      status.counter,
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
    if (batch.length > 0) this.deps.store.hierarchy.dropOutbox(batch[batch.length - 1].id);
    this.upstreamState = { lastOk: this.deps.now(), lastError: null };
  }

  /** The parent's decisions: checked (the parent's registered signer on the ledger, fresh, newer), then recorded to start. */
  async takeDecisions(envelope: Envelope, o: { acknowledging?: number } = {}): Promise<number> {
    const parent = this.deps.parent;
    const { message, signedBy } = openMessage<UpdateDecisions>(envelope, this.deps.privateKey, this.deps.id, "account");
    if (message.kind !== DECISIONS_KIND) throw new ModuleMessageRefused("MESSAGE_KIND", `a ${message.kind} message is not a list of decisions`);
    if (message.from.toLowerCase() !== parent.id.toLowerCase())
      throw new ModuleMessageRefused("MODULE_NOT_PARENT", `decisions come from ${message.from}, not this module's parent`);
    const registered = await trackerModuleOf(this.deps.fleet, parent.id);
    if (!registered) throw new ModuleMessageRefused("MODULE_NOT_REGISTERED", `the parent module ${parent.id} is not registered or was retired on the ledger`);
    if (registered.signer.toLowerCase() !== signedBy.toLowerCase())
      throw new ModuleMessageRefused("MODULE_SIGNATURE", "the decisions are not signed by the parent's registered key");
    this.deps.messages.checkFresh(message.issuedAt);
    // The mark is in the fleet database, so a restart does not reopen the freshness window to a replay.
    if (message.issuedAt <= this.deps.store.marks.get(PARENT_DECISIONS_MARK))
      throw new ModuleMessageRefused("MESSAGE_REPLAYED", "the decisions are not newer than the last ones taken");
    if (o.acknowledging !== undefined && message.body?.acknowledges !== o.acknowledging)
      throw new ModuleMessageRefused(
        "UPSTREAM_UNACKNOWLEDGED",
        `the decisions acknowledge status ${String(message.body?.acknowledges)}, not the status ${o.acknowledging} just sent`,
      );
    const at = this.deps.now();
    let n = 0;
    this.deps.store.transaction(() => {
      this.deps.store.marks.raise(PARENT_DECISIONS_MARK, message.issuedAt);
      for (const d of Array.isArray(message.body?.decisions) ? message.body.decisions : []) {
        if (!this.deps.store.devices.get(String(d.deviceId))) continue; // not enrolled as far as this module's ledger view goes
        this.deps.store.decisions.decide({
          deviceId: d.deviceId,
          releaseId: d.releaseId,
          component: d.component,
          reason: d.reason,
          origin: `upstream:${String(d.origin)}`,
          at,
        });
        // The administrator's terms, as the parent gives them: a deadline in ms, a pin override only with it.
        const deadline = Number.isSafeInteger(d.deadline) && (d.deadline as number) > 0 ? (d.deadline as number) : undefined;
        this.deps.store.decisions.setTerms(
          d.deviceId,
          d.releaseId,
          deadline === undefined ? undefined : { deadline, ...(d.overridePin === true ? { overridePin: true } : {}) },
        );
        if (isEvidence(d.evidence)) this.deps.evidence.keepFromParent(d.releaseId, d.deviceId, d.evidence);
        n++;
      }
    });
    return n;
  }
}
