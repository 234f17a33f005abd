import { decodeBytes32String, encodeBytes32String, isHexString } from "ethers";
import { InputError } from "../core/errors";
import { formatVersion } from "../core/version";
import type { BundleRow, DeviceFilter, DeviceRow, FleetStore } from "./store";
import type { ResultKind } from "../core/updateOutcome";
import type { ConfigPlan, FleetPlanner } from "./fleetPlanner";
import type { QueryTerm } from "./deviceTags";

/**
 * The lists of CAP-11.2-a/b; a device may be in several (vulnerable and unreachable, say).
 * failed, blocked, refused: the kind of its last result (agent/core/updateOutcome): a release that
 * failed on it after an intact delivery; a delivery something outside the release blocks (a
 * server, a mirror, the network, its clock: retried, never a failure); a release it correctly
 * refused (revoked, another hardware class, a policy...). safe-mode: its latest report says it
 * runs in safe mode (CAP-11.1-b): it refuses automatic updates and waits for a person to install
 * by hand, so it is never up to date.
 */
export const DEVICE_STATUSES = ["up-to-date", "outdated", "vulnerable", "failed", "blocked", "refused", "safe-mode", "unreachable", "suspended"] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

/** The summary's count key of each status. */
const COUNT_KEY = {
  "up-to-date": "upToDate",
  outdated: "outdated",
  vulnerable: "vulnerable",
  failed: "failed",
  blocked: "blocked",
  refused: "refused",
  "safe-mode": "safeMode",
  unreachable: "unreachable",
  suspended: "suspended",
} as const satisfies Record<DeviceStatus, string>;
type CountKey = (typeof COUNT_KEY)[DeviceStatus];

/**
 * Names beside ids (issue 19): every `component` id an answer shows comes with `componentName`,
 * every `hardwareClass` with `hardwareName`, and a release named only by its id with
 * `releaseName` ("<component name> <version>", e.g. "acme.bootloader 1.0.0"). They are the names
 * the registry registered, as the mirror holds them (null until it does); the ids stay as they were.
 */
export interface DeviceView {
  id: string;
  hardwareClass: number;
  hardwareName: string | null; // the hardware class's registered name, e.g. "rev-c"
  network: string;
  region: string;
  standing: DeviceRow["standing"];
  statuses: DeviceStatus[];
  installed: { component: string; componentName: string | null; version: string; releaseId: string }[];
  lastSeen: number | null;
  lastOutcome: string | null;
  lastCode: string | null;
  lastKind: ResultKind | null; // failed, blocked, refused or installed (agent/core/updateOutcome); null: none reported
  lastRelease: string | null; // the release its last result is about
  lastReleaseName: string | null; // its name, e.g. "acme.bootloader 1.0.0"
  blockedSince: number | null; // ms: since when delivery of lastRelease is blocked, by lastCode (lastKind blocked)
  upstream: string | null;
  safeMode: boolean; // its latest report says it runs in safe mode (CAP-11.1-b)
  tags: Record<string, string>; // administrators' tags (issue 19, item 11)
}

export interface DeviceQuery {
  status?: DeviceStatus;
  network?: string; // label or bytes32
  region?: string; // label or bytes32
  hardware?: number;
  q?: string; // device id prefix
  /** Tag query terms (agent/tracker/deviceTags.ts), all of which must hold. */
  tags?: QueryTerm[];
  limit?: number;
  offset?: number;
}

/** A bytes32 label as text when it is one (network, region), else the hex. */
export function labelOf(bytes32: string): string {
  try {
    return decodeBytes32String(bytes32);
  } catch {
    return bytes32;
  }
}

/** A label or a bytes32 as the ledger stores it (lower-case hex). */
export function labelToBytes32(label: string, field: string): string {
  if (isHexString(label, 32)) return label.toLowerCase();
  try {
    return encodeBytes32String(label).toLowerCase();
  } catch {
    throw new InputError("BAD_REQUEST", `${field} must be a label of at most 31 bytes or a bytes32 hex`);
  }
}

/**
 * The read side of the tracker (CAP-11.2-a, CAP-11.2-b): a device's statuses follow from its
 * configuration's plan (outdated, vulnerable), its last update (failed), its latest report's safe
 * mode (safe-mode, CAP-11.1-b) and its last contact (unreachable), as ADR 0004 and docs/tracker.md
 * define them. Counts are taken with one grouped scan of the devices.
 */
export class FleetViews {
  constructor(
    private readonly db: FleetStore,
    private readonly planner: FleetPlanner,
    private readonly livenessMs: number,
    private readonly now: () => number,
  ) {}

  statusesOf(
    d: { configId: number | null; standing: string; kind: ResultKind | null; safeMode: boolean; unreachable: boolean },
    plan: ConfigPlan | undefined,
  ): DeviceStatus[] {
    if (d.standing !== "active") return ["suspended"];
    const out: DeviceStatus[] = [];
    const failed = d.kind === "failed";
    if (plan?.outdated) out.push("outdated");
    if (plan?.vulnerable) out.push("vulnerable");
    if (failed) out.push("failed");
    if (d.kind === "blocked") out.push("blocked");
    if (d.kind === "refused") out.push("refused");
    if (d.safeMode) out.push("safe-mode");
    if (d.unreachable) out.push("unreachable");
    // A device that never reported runs something unknown: it is not up to date. Nor is one in safe
    // mode: it lists nothing installed because nothing it runs is known, and it waits for a person.
    // Nor is one not heard from within the liveness window (CAP-11.2-b-i): what it runs now is unknown.
    if (d.configId !== null && !plan?.outdated && !plan?.vulnerable && !failed && !d.safeMode && !d.unreachable) out.unshift("up-to-date");
    return out;
  }

  summary(): {
    generatedAt: number;
    livenessMs: number;
    total: number;
    counts: Record<CountKey, number>;
    byNetwork: {
      network: string;
      total: number;
      upToDate: number;
      outdated: number;
      vulnerable: number;
      failed: number;
      blocked: number;
      refused: number;
      safeMode: number;
      unreachable: number;
    }[];
  } {
    const now = this.now();
    const plans = this.planner.planAll();
    const zero = (): Record<CountKey, number> => ({
      upToDate: 0,
      outdated: 0,
      vulnerable: 0,
      failed: 0,
      blocked: 0,
      refused: 0,
      safeMode: 0,
      unreachable: 0,
      suspended: 0,
    });
    const counts = zero();
    const networks = new Map<string, Record<CountKey, number> & { total: number }>();
    let total = 0;
    for (const { n, network, ...group } of this.db.devices.statusGroups(now - this.livenessMs)) {
      total += n;
      const net = networks.get(network) ?? networks.set(network, { ...zero(), total: 0 }).get(network)!;
      net.total += n;
      for (const s of this.statusesOf(group, group.configId === null ? undefined : plans.get(group.configId))) {
        counts[COUNT_KEY[s]] += n;
        net[COUNT_KEY[s]] += n;
      }
    }
    return {
      generatedAt: now,
      livenessMs: this.livenessMs,
      total,
      counts,
      byNetwork: [...networks].map(([network, c]) => ({
        network: labelOf(network),
        total: c.total,
        upToDate: c.upToDate,
        outdated: c.outdated,
        vulnerable: c.vulnerable,
        failed: c.failed,
        blocked: c.blocked,
        refused: c.refused,
        safeMode: c.safeMode,
        unreachable: c.unreachable,
      })),
    };
  }

  /** One page of devices matching the query, and how many match in all. */
  devices(q: DeviceQuery): { total: number; devices: DeviceView[] } {
    const limit = Math.min(Math.max(q.limit ?? 50, 1), 1000);
    const offset = Math.max(q.offset ?? 0, 0);
    const plans = this.planner.planAll();
    const before = this.now() - this.livenessMs;
    const configs = (pick: (p: ConfigPlan) => boolean) => [...plans].filter(([, p]) => pick(p)).map(([id]) => id);
    const f: DeviceFilter = {};
    if (q.status !== undefined && q.status !== "suspended") f.active = true;
    switch (q.status) {
      case undefined:
        break;
      case "outdated":
        f.configIn = configs((p) => p.outdated);
        break;
      case "vulnerable":
        f.configIn = configs((p) => p.vulnerable);
        break;
      case "failed":
        f.failed = true;
        break;
      case "blocked":
      case "refused":
        f.kind = q.status;
        break;
      case "unreachable":
        f.seenBefore = before;
        break;
      case "safe-mode":
        f.safeMode = true;
        break;
      case "up-to-date":
        Object.assign(f, { configIn: configs((p) => !p.outdated && !p.vulnerable), failed: false, safeMode: false, seenSince: before });
        break;
      case "suspended":
        f.active = false;
        break;
      default:
        throw new InputError("BAD_REQUEST", `status must be one of ${DEVICE_STATUSES.join(", ")}`);
    }
    if (q.network !== undefined) f.network = labelToBytes32(q.network, "network");
    if (q.region !== undefined) f.region = labelToBytes32(q.region, "region");
    if (q.hardware !== undefined) f.hardware = q.hardware;
    if (q.q) {
      if (!/^(0x)?[0-9a-fA-F]{1,64}$/.test(q.q)) throw new InputError("BAD_REQUEST", "q is a device id prefix in hex");
      f.idPrefix = (q.q.startsWith("0x") ? q.q : "0x" + q.q).toLowerCase();
    }
    if (q.tags?.length) f.tags = q.tags;
    const { total, devices } = this.db.devices.page(f, limit, offset);
    return { total, devices: devices.map((d) => this.view(d, plans.get(d.configId ?? -1), before)) };
  }

  view(d: DeviceRow, plan: ConfigPlan | undefined, before = this.now() - this.livenessMs): DeviceView {
    const names = this.db.catalogue.names();
    return {
      id: d.id,
      hardwareClass: d.hardwareClass,
      hardwareName: names.hardware(d.hardwareClass),
      network: labelOf(d.network),
      region: labelOf(d.region),
      standing: d.standing,
      statuses: this.statusesOf(
        { configId: d.configId, standing: d.standing, kind: d.lastKind, safeMode: d.safeMode, unreachable: d.lastSeen === null || d.lastSeen < before },
        plan,
      ),
      installed: this.db.devices
        .installed(d.id)
        .map((i) => ({ component: i.component, componentName: names.component(i.component), version: formatVersion(i.version), releaseId: i.releaseId })),
      lastSeen: d.lastSeen,
      lastOutcome: d.lastOutcome,
      lastCode: d.lastCode,
      lastKind: d.lastKind,
      // A result about no release ("" in the report, as the intake takes it) names none: null.
      lastRelease: d.lastRelease || null,
      lastReleaseName: d.lastRelease ? this.db.catalogue.releaseName(d.lastRelease) : null,
      blockedSince: d.lastKind === "blocked" ? d.blockedSince : null,
      upstream: d.upstream,
      safeMode: d.safeMode,
      tags: this.db.tags.of(d.id),
    };
  }

  /** A device with its plan, decisions, notices delivered and report history; undefined if unknown. */
  device(id: string) {
    const d = this.db.devices.get(id);
    if (!d) return undefined;
    const config = d.configId === null ? undefined : this.db.configs.get(d.configId);
    const plan = config && this.planner.planOf(config);
    const names = this.db.catalogue.names();
    return {
      device: this.view(d, plan),
      plan: plan
        ? {
            steps: plan.plan.steps.map((s) => ({ ...s, componentName: names.component(s.component), version: formatVersion(s.version) })),
            unchanged: plan.plan.unchanged.map((u) => ({ ...u, componentName: names.component(u.component) })),
          }
        : { steps: [], unchanged: [] },
      reports: this.db.reports.of(d.id),
      decisions: this.db.decisions
        .of(d.id)
        .map((x) => ({ ...x, componentName: names.component(x.component), releaseName: this.db.catalogue.releaseName(x.releaseId) })),
      deliveries: this.db.decisions.deliveries(d.id).map((x) => ({ ...x, releaseName: this.db.catalogue.releaseName(x.releaseId) })),
      downloads: this.db.downloads.of(d.id),
    };
  }

  /** The mirrored releases with how many devices run each, were notified of it, or failed it. */
  releases() {
    const installed = this.installedByRelease();
    const counts = this.db.rollouts.counts();
    const names = this.db.catalogue.names();
    return this.db.catalogue.releases().map((r) => ({
      id: r.id,
      component: r.component,
      componentName: names.component(r.component),
      version: formatVersion(r.version),
      status: r.status,
      hardware: r.hardware,
      provider: r.provider,
      publishedBlock: r.publishedAt,
      installed: installed.get(r.id) ?? 0,
      notified: counts.get(r.id)?.notified ?? 0,
      failed: counts.get(r.id)?.failed ?? 0,
      blocked: counts.get(r.id)?.blocked ?? 0,
    }));
  }

  /** Devices running each release, from the configurations (no scan of the installed table). */
  installedByRelease(): Map<string, number> {
    const perConfig = this.db.configs.activeCounts();
    const out = new Map<string, number>();
    for (const config of this.db.configs.all()) {
      const n = perConfig.get(config.id) ?? 0;
      for (const i of config.installed) out.set(i.releaseId, (out.get(i.releaseId) ?? 0) + n);
    }
    return out;
  }

  /** Rollout progress per release: decided (plans and requests), notified, installed, failed, pending. */
  rollouts() {
    const installed = this.installedByRelease();
    const counts = this.db.rollouts.counts();
    const perConfig = this.db.configs.activeCounts();
    const names = this.db.catalogue.names();
    const planned = new Map<string, number>();
    for (const [configId, { plan }] of this.planner.planAll()) {
      for (const s of plan.steps) planned.set(s.releaseId, (planned.get(s.releaseId) ?? 0) + (perConfig.get(configId) ?? 0));
    }
    return this.db.rollouts.list().flatMap((r) => {
      const bundle = this.db.catalogue.bundle(r.releaseId);
      if (bundle) return [bundleRollout(this.db, r, bundle, counts.get(r.releaseId), perConfig)];
      const release = this.db.catalogue.release(r.releaseId);
      if (!release) return [];
      const c = counts.get(r.releaseId) ?? { notified: 0, failed: 0, blocked: 0, requested: 0 };
      const done = installed.get(r.releaseId) ?? 0;
      const pending = (planned.get(r.releaseId) ?? 0) + Math.max(c.requested - done, 0);
      return [
        {
          releaseId: r.releaseId,
          component: release.component,
          componentName: names.component(release.component),
          version: formatVersion(release.version),
          ...progress(r, c, done, pending),
        },
      ];
    });
  }

  /**
   * The modules below this one and whether each is reachable (CAP-11.2-m-c). A module not heard
   * from within the liveness window vouches for nothing below it any more: every device it reported
   * counts as unreachable, and the modules it reported below it as not reachable.
   */
  modules() {
    const before = this.now() - this.livenessMs;
    return this.db.hierarchy.modules().map((m) => {
      const reachable = m.lastSeen >= before;
      const children = m.children as { reachable: boolean; devices: number; unreachableDevices: number }[];
      return {
        ...m,
        networks: m.networks.map(labelOf),
        reachable,
        ...(!reachable && {
          unreachableDevices: m.devices,
          children: children.map((c) => ({ ...c, reachable: false, unreachableDevices: c.devices })),
        }),
      };
    });
  }
}

/** A rollout's progress, the same for a release and a bundle: `done` installed it, `pending` are still to. */
function progress(r: { origin: string; startedAt: number }, c: { notified: number; failed: number; blocked: number }, done: number, pending: number) {
  return {
    origin: r.origin,
    startedAt: r.startedAt,
    decided: done + c.failed + pending,
    notified: c.notified,
    installed: done,
    failed: c.failed,
    blocked: c.blocked, // among pending: delivery blocked now, retried
    pending,
  };
}

/**
 * A release bundle's rollout (docs/adr/0019), decided by administrators' requests only: a device
 * counts installed once it runs every member (or newer), failed once for the bundle.
 */
function bundleRollout(
  db: FleetStore,
  r: { releaseId: string; origin: string; startedAt: number },
  bundle: BundleRow,
  c: { notified: number; failed: number; blocked: number; requested: number } = { notified: 0, failed: 0, blocked: 0, requested: 0 },
  perConfig: Map<number, number>,
) {
  const versions = new Map(bundle.members.map((m) => [m.component, db.catalogue.release(m.releaseId)?.version]));
  let done = 0;
  for (const config of db.configs.all()) {
    const runs = bundle.members.every((m) => {
      const have = config.installed.find((i) => i.component === m.component);
      const v = versions.get(m.component);
      return !!have && (have.releaseId === m.releaseId || (v !== undefined && have.version >= v));
    });
    if (runs) done += perConfig.get(config.id) ?? 0;
  }
  const pending = Math.max(c.requested - done, 0);
  const names = db.catalogue.names();
  return {
    releaseId: r.releaseId,
    component: bundle.members[0].component,
    componentName: names.component(bundle.members[0].component),
    version: formatVersion(bundle.version),
    bundle: {
      name: bundle.name,
      version: formatVersion(bundle.version),
      members: bundle.members.map((m) => ({ ...m, releaseName: db.catalogue.releaseName(m.releaseId) })),
    },
    ...progress(r, c, done, pending),
  };
}
