import { ZeroHash } from "ethers";
import type { FleetRegistry } from "../chain/contracts";
import { InputError, OtaError } from "../core/errors";
import { openMessage, type Envelope } from "../crypto/sealedMessage";
import type { DeviceNotices } from "./deviceNotices";
import type { FleetDecisions } from "./fleetDecisions";
import type { FleetPlanner } from "./fleetPlanner";
import {
  DECISIONS_KIND,
  DOWNSTREAM_KIND,
  ModuleMessageRefused,
  trackerModuleOf,
  type DownstreamStatus,
  type ModuleMessages,
  type UpdateDecisions,
} from "./moduleMessages";
import { takeForwardedReport } from "./reportIntake";
import type { FleetStore } from "./store";

const BYTES32 = /^0x[0-9a-fA-F]{64}$/;

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

/**
 * The modules below this one (DEP-8.2.3, CAP-11.2-m): a child's sealed status is checked against
 * the ledger (its registration under this module, its signer), its forwarded reports taken, and
 * it is answered with the decisions for the devices reached through it, sealed to its key.
 */
export class ModuleDownstream {
  constructor(
    private readonly deps: {
      id: string;
      privateKey: string;
      store: FleetStore;
      planner: FleetPlanner;
      messages: ModuleMessages;
      notices: DeviceNotices;
      decisions: FleetDecisions;
      fleet: FleetRegistry;
      /** The server module plans; a module below only starts what its parent decided. */
      server: boolean;
      /** An intermediate module keeps the reports it takes to forward them upstream. */
      forwardsUpstream: boolean;
      now: () => number;
    },
  ) {}

  /**
   * A child module's sealed status (DEP-8.2.3): it must be registered on the ledger with this
   * module as its parent and signed by its registered signer; fresh and newer than the last. Each
   * forwarded report is checked against its device's own signature. The answer carries the
   * decisions for the devices that reach the hierarchy through that child.
   */
  async takeDownstream(
    envelope: Envelope,
  ): Promise<{ accepted: boolean; taken: number; refused: { deviceId: string; code: string }[]; decisions: Envelope | null }> {
    const { message, signedBy } = openMessage<DownstreamStatus>(envelope, this.deps.privateKey, this.deps.id, "account");
    if (message.kind !== DOWNSTREAM_KIND) throw new ModuleMessageRefused("MESSAGE_KIND", `a ${message.kind} message is not a downstream status`);
    if (!BYTES32.test(message.from)) throw new InputError("MESSAGE_MALFORMED", "a downstream status comes from a module id (0x + 64 hex digits)");
    const child = message.from.toLowerCase();
    const registered = await trackerModuleOf(this.deps.fleet, child);
    if (!registered)
      throw new ModuleMessageRefused("MODULE_NOT_REGISTERED", `module ${child} (or one above it) is not registered or was retired on the ledger`);
    if (registered.parent.toLowerCase() !== this.deps.id)
      throw new ModuleMessageRefused("MODULE_NOT_CHILD", `module ${child} is registered under ${registered.parent}, not this module`);
    if (registered.signer.toLowerCase() !== signedBy.toLowerCase())
      throw new ModuleMessageRefused("MODULE_SIGNATURE", `the message is not signed by module ${child}'s registered key`);
    this.deps.messages.checkFresh(message.issuedAt);
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
      !this.deps.store.hierarchy.takeModuleStatus({
        id: child,
        networks: s.networks.map((n) => n.toLowerCase()),
        counter: s.counter,
        at: this.deps.now(),
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
        takeForwardedReport(this.deps.store, r, child, this.deps.now());
        if (this.deps.forwardsUpstream) this.deps.store.hierarchy.queue(r);
        this.deps.decisions.startRolloutsOf(r.message.from);
        taken++;
      } catch (err) {
        if (!(err instanceof OtaError) || err.code === "LEDGER_UNAVAILABLE") throw err;
        refused.push({ deviceId: String(r?.message?.from ?? ""), code: err.code }); // one bad report does not block the others
      }
    }
    return { accepted: true, taken, refused, decisions: await this.decisionsFor(child, s.counter) };
  }

  /** Whether `moduleId` is `via` or below it on the ledger. */
  async routesThrough(moduleId: string, via: string): Promise<boolean> {
    let id = moduleId.toLowerCase();
    for (let depth = 0; depth < 9; depth++) {
      if (id === via) return true;
      const m = await trackerModuleOf(this.deps.fleet, id);
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
  async decisionsFor(child: string, acknowledges: number): Promise<Envelope> {
    // Only devices with something to do: in a configuration whose plan has steps, or with a decision.
    const withSteps = this.deps.server ? [...this.deps.planner.planAll()].filter(([, p]) => p.outdated).map(([id]) => id) : [];
    const ids = this.deps.store.devices.reachedThroughWithWork(child, withSteps);
    const decisions: UpdateDecisions["decisions"] = [];
    const at = this.deps.now();
    for (const id of ids) {
      const device = this.deps.store.devices.get(id)!;
      for (const step of await this.deps.notices.allowedNow(device, this.deps.notices.pendingFor(device))) {
        decisions.push({
          deviceId: id,
          ...step,
          ...this.deps.notices.termsOf(id, step),
          ...(this.deps.store.catalogue.bundle(step.releaseId) ? { bundle: true } : {}),
        });
        this.deps.store.decisions.noteDelivered({ deviceId: id, ...step, via: child, at });
      }
      if (decisions.length >= 5000) break; // the rest in the next exchange
    }
    const key = await this.deps.messages.moduleKey(child);
    const body: UpdateDecisions = { decisions, acknowledges };
    return this.deps.messages.seal(DECISIONS_KIND, child, body, key);
  }
}
