import type { ReleaseBundles, UpdatePolicies, UpdateRegistry } from "../chain/contracts";
import type { TypedDataDomain } from "ethers";
import type { FleetPlanner } from "./fleetPlanner";
import type { FleetStore } from "./store";
import { extendDynamicRequests } from "./updateRequests";

/** The origin of decisions made from the firmware servers' download logs (CAP-11.3-g). */
export const DOWNLOAD_LOG_ORIGIN = "download-log";

/**
 * What the server module decides for its fleet, outside a device's own report: the releases the
 * catalogue's plans move devices to (each gets a rollout followed), the updates of devices found
 * in the firmware servers' download logs (CAP-11.3-g), and the devices that came to match an
 * administrator's request by their tags (issue 19, item 11). A module below decides nothing.
 */
export class FleetDecisions {
  /** The last decision round after a ledger change: for logs and the benchmark. */
  lastDecision: { at: number; ms: number; releases: { releaseId: string; configs: number; devices: number }[] } | undefined;

  constructor(
    private readonly deps: {
      store: FleetStore;
      planner: FleetPlanner;
      chain: { registry: UpdateRegistry; policies?: UpdatePolicies; bundles?: ReleaseBundles; domain: TypedDataDomain; fromBlock: number };
      /** The server module decides; a module below starts what its parent decided. */
      server: boolean;
      now: () => number;
      log: (line: string) => void;
    },
  ) {}

  /**
   * The mirrored catalogue changed: every plan is made again, once per configuration, and the
   * releases some devices must now move to get a rollout (CAP-11.2-c, CAP-11.3-g). A module below
   * the server does not decide: it starts what its parent decided.
   */
  catalogueChanged(): void {
    this.deps.planner.catalogueChanged();
    if (!this.deps.server) return;
    const started = performance.now();
    const perConfig = this.deps.store.configs.activeCounts();
    const byRelease = new Map<string, { configs: number; devices: number }>();
    for (const [configId, { plan }] of this.deps.planner.planAll()) {
      for (const s of plan.steps) {
        const r = byRelease.get(s.releaseId) ?? byRelease.set(s.releaseId, { configs: 0, devices: 0 }).get(s.releaseId)!;
        r.configs += 1;
        r.devices += perConfig.get(configId) ?? 0;
      }
    }
    const at = this.deps.now();
    for (const [releaseId, r] of byRelease) if (r.devices > 0) this.follow(releaseId, at);
    const releases = [...byRelease].map(([releaseId, r]) => ({ releaseId, ...r }));
    this.lastDecision = { at, ms: performance.now() - started, releases };
    for (const r of releases) this.deps.log(`decided: release ${r.releaseId} for ${r.devices} device(s) in ${r.configs} configuration(s)`);
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
    if (!this.deps.server) return 0;
    const at = this.deps.now();
    let decided = 0;
    for (const holder of this.deps.store.downloads.holders()) {
      const { plan } = this.deps.planner.planOfHeld(holder.hardwareClass, holder.held);
      const already = new Set(this.deps.store.decisions.of(holder.deviceId).map((d) => d.releaseId));
      for (const step of plan.steps) {
        this.deps.store.decisions.dropOf(holder.deviceId, step.component, DOWNLOAD_LOG_ORIGIN, step.releaseId);
        if (already.has(step.releaseId.toLowerCase())) continue;
        this.deps.store.decisions.decide({
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
    if (decided > 0) this.deps.log(`decided: ${decided} update(s) for devices found in the firmware servers' download logs`);
    return decided;
  }

  /**
   * Devices whose tags changed, or that a new or changed group now selects (issue 19, item 11):
   * those that came to match an earlier request's group or query join it, after the same ledger
   * checks. Returns how many were decided. The server module only (it decides).
   */
  async tagsChanged(deviceIds: string[]): Promise<number> {
    if (!this.deps.server || deviceIds.length === 0) return 0;
    const { registry, policies, bundles, domain, fromBlock } = this.deps.chain;
    const n = await extendDynamicRequests({ registry, policies, bundles, domain, fromBlock, db: this.deps.store, now: this.deps.now }, deviceIds);
    if (n > 0) this.deps.log(`decided: ${n} device(s) joined update requests by their tags`);
    return n;
  }

  /** A new configuration may need releases no rollout follows yet. */
  startRolloutsOf(deviceId: string): void {
    if (!this.deps.server) return;
    const d = this.deps.store.devices.get(deviceId);
    const config = d?.configId == null ? undefined : this.deps.store.configs.get(d.configId);
    if (!config) return;
    for (const s of this.deps.planner.planOf(config).plan.steps) this.follow(s.releaseId, this.deps.now());
  }

  /** Releases with a rollout row, so that a report (the hot path) writes one only for a new release. */
  private followed: Set<string> | undefined;

  follow(releaseId: string, at: number): void {
    this.followed ??= new Set(this.deps.store.rollouts.list().map((r) => r.releaseId));
    const id = releaseId.toLowerCase();
    if (this.followed.has(id)) return;
    this.deps.store.rollouts.start(id, "ledger", at);
    this.followed.add(id);
  }
}
