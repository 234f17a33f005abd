import type { UpdatePolicies, UpdateRegistry } from "../chain/contracts";
import { LedgerUnavailable, callLedger } from "../chain/ledgerCall";
import { allowsUpdate, checkUpdateOnLedger } from "../chain/updateCheckOnLedger";
import { NOTICE_KIND, type UpdateNotice } from "../core/updateNotice";
import { NOTICES_PER_ANSWER_MAX } from "../core/wireLimits";
import type { Envelope } from "../crypto/sealedMessage";
import type { FleetPlanner } from "./fleetPlanner";
import type { ModuleMessages } from "./moduleMessages";
import type { BundleRow, DeviceRow, FleetStore } from "./store";

/** Whether a decision comes from an administrator's request, here or at a module above (they ask again on purpose). */
const isRequested = (origin: string) => origin.startsWith("request:") || origin.startsWith("upstream:request:");

/**
 * What a tracker module tells each device to install (CAP-11.2-c, CAP-11.3-g): its
 * configuration's plan (server module) and the decisions recorded for it, less what it runs,
 * declined, failed or was just told; each step allowed by the update policies on the ledger, with
 * the evidence held for it and its administrator's terms, sealed to the device as a notice.
 */
export class DeviceNotices {
  constructor(
    private readonly deps: {
      store: FleetStore;
      planner: FleetPlanner;
      messages: ModuleMessages;
      /** The ledger the policies are asked on (UpdatePolicies.checkUpdate), as the device will ask it. */
      chain: { registry: UpdateRegistry; policies?: UpdatePolicies };
      /** The server module plans; a module below only starts what its parent decided. */
      server: boolean;
      renoticeMs: number;
      /** The newest block this module has read (-1 before the first). */
      ledgerBlock: () => number;
      now: () => number;
      log: (line: string) => void;
    },
  ) {}

  /**
   * The sealed notices this device is to be handed now (CAP-11.2-c, CAP-11.3-g), each recorded as
   * delivered `via` the channel that carries it: the answer to a report, or a transport that
   * pushes. With the ledger's policies not answering, none: the device's next contact asks again.
   */
  async noticesFor(device: DeviceRow, via: string): Promise<Envelope[]> {
    const notices: Envelope[] = [];
    const allowed = await this.allowedNow(device, this.pendingFor(device)).catch((err: unknown) => {
      if (!(err instanceof LedgerUnavailable)) throw err;
      this.deps.log(`notices for ${device.id}: none while the ledger does not answer (asked again at its next contact)`);
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
        ...(this.deps.store.catalogue.bundle(step.releaseId) ? { bundle: true } : {}),
        // The newest block this module has read: the device's view must reach it (a frozen view is seen, issue 16).
        ...(this.deps.ledgerBlock() >= 0 ? { ledgerBlock: this.deps.ledgerBlock() } : {}),
      };
      notices.push(await this.deps.messages.seal(NOTICE_KIND, device.id, body, device.publicKey));
      this.deps.store.decisions.noteDelivered({ deviceId: device.id, ...step, via, at: this.deps.now() });
    }
    return notices;
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
    if (this.deps.server && device.configId !== null) {
      const config = this.deps.store.configs.get(device.configId);
      if (config)
        for (const s of this.deps.planner.planOf(config).plan.steps)
          out.set(s.releaseId, { releaseId: s.releaseId, component: s.component, reason: s.reason, origin: "ledger" });
    }
    const installed = new Map(this.deps.store.devices.installed(device.id).map((i) => [i.component, i]));
    const bundled = new Set<string>(); // the components of a bundle decided for the device and not done (docs/adr/0019)
    for (const d of this.deps.store.decisions.of(device.id)) {
      // The plan would offer it anyway: an administrator's request still gives it its origin (its deadline, issue 19 item 11).
      const planned = out.get(d.releaseId);
      if (planned) {
        if (d.origin.startsWith("request:")) planned.origin = d.origin;
        continue;
      }
      const bundle = this.deps.store.catalogue.bundle(d.releaseId);
      if (bundle) {
        // A release bundle (docs/adr/0019) is done once every member runs (or something newer of its component).
        if (this.runsBundle(bundle, installed)) continue;
        // Failed or not: the administrator asked for these components to move as the bundle (a failure is listed for a person).
        bundle.members.forEach((m) => bundled.add(m.component));
      } else {
        const have = installed.get(d.component);
        const release = this.deps.store.catalogue.release(d.releaseId);
        if (have && (have.releaseId === d.releaseId || (release && have.version >= release.version))) continue; // done
      }
      out.set(d.releaseId, { releaseId: d.releaseId, component: d.component, reason: d.reason, origin: d.origin });
    }
    // A bundle decided for the device takes its members together: the plan does not offer them one by one meanwhile.
    for (const [id, s] of out) if (bundled.has(s.component) && !this.deps.store.catalogue.bundle(id)) out.delete(id);
    // A notice already handed out is repeated after renoticeMs, or at once if its reason changed
    // (the release it runs was flagged meanwhile).
    const since = this.deps.now() - this.deps.renoticeMs;
    const recent = (s: { releaseId: string; reason: string }) => {
      const last = this.deps.store.decisions.lastDelivery(device.id, s.releaseId);
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
      return terms?.deadline !== undefined && this.deps.now() >= terms.deadline;
    };
    return [...out.values()].filter((s) => (!device.declined.includes(s.releaseId) || fixesInstalled(s) || pastDeadline(s)) && !failedHere(s) && !recent(s));
  }

  /** Whether a device with `installed` runs every member of the bundle, or a newer release of its component. */
  private runsBundle(bundle: BundleRow, installed: Map<string, { releaseId: string; version: bigint }>): boolean {
    return bundle.members.every((m) => {
      const have = installed.get(m.component);
      const release = this.deps.store.catalogue.release(m.releaseId);
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
    if (s.origin.startsWith("upstream:")) return this.deps.store.decisions.terms(deviceId, s.releaseId);
    return this.requestTerms(s.origin);
  }

  /** The deadline (ms) and pin override of the administrator's request a decision came from (origin `request:<id>`), if any. */
  requestTerms(origin: string): { deadline?: number; overridePin?: true } | undefined {
    if (!origin.startsWith("request:")) return undefined;
    const r = this.deps.store.requests.get(origin.slice("request:".length));
    if (!r || r.deadline === null) return undefined;
    return { deadline: r.deadline, ...(r.overridePins ? { overridePin: true as const } : {}) };
  }

  /**
   * The steps the administrators' update policies allow for this device now (APP-II-3): asked on
   * the ledger (UpdatePolicies.checkUpdate), never decided here. A step a policy refuses is not
   * handed out, and is asked again at the device's next report.
   */
  async allowedNow<T extends { releaseId: string }>(device: DeviceRow, steps: T[]): Promise<(T & { evidence?: string })[]> {
    const withEvidence: (T & { evidence?: string })[] = steps.map((s) => {
      const evidence = this.deps.store.evidence.of(s.releaseId, device.id);
      return evidence ? { ...s, evidence } : s;
    });
    if (!this.deps.chain.policies || steps.length === 0) return withEvidence;
    const installed = this.deps.store.devices.installed(device.id).map((i) => ({ component: i.component, version: i.version }));
    const out: (T & { evidence?: string })[] = [];
    for (const step of withEvidence) {
      const bundle = this.deps.store.catalogue.bundle(step.releaseId);
      if (bundle) {
        if (await this.bundleAllowed(device, bundle, installed)) out.push(step);
        continue;
      }
      const release = this.deps.store.catalogue.release(step.releaseId);
      if (!release) continue;
      const v = await callLedger(() => checkUpdateOnLedger(this.deps.chain, release.record, device, installed, step.evidence));
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
    const members = bundle.members.map((m) => this.deps.store.catalogue.release(m.releaseId));
    if (members.some((m) => !m)) return false; // a member the mirror does not hold (yet)
    for (const m of members) {
      const have = installed.find((i) => i.component === m!.component);
      if (have && have.version === m!.version) continue;
      const others = members.filter((o) => o !== m).map((o) => ({ component: o!.component, version: o!.version }));
      const withSet = [...installed.filter((i) => !others.some((o) => o.component === i.component)), ...others];
      const evidence = this.deps.store.evidence.of(m!.id, device.id);
      const v = await callLedger(() => checkUpdateOnLedger(this.deps.chain, m!.record, device, withSet, evidence));
      if (!allowsUpdate(v)) return false;
    }
    return true;
  }
}
