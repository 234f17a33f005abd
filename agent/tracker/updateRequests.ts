import { id as roleId, type TypedDataDomain } from "ethers";
import { randomBytes } from "node:crypto";
import type { ReleaseBundles, UpdatePolicies, UpdateRegistry } from "../chain/contracts";
import { checkUpdateOnLedger } from "../chain/updateCheckOnLedger";
import { fetchRelease } from "../chain/releaseEvents";
import { callLedger as ledger } from "../chain/ledgerCall";
import { verifyLedgerRelease } from "../chain/verifyLedgerRelease";
import { InputError, OtaError } from "../core/errors";
import { INSTALL_CHECK, ledgerName } from "../core/ledgerCodes";
import { formatVersion } from "../core/version";
import type { BundleRow, DeviceRow, FleetStore, UpdateRequestRow } from "./store";
import { formatTagQuery, parseTagQuery, type QueryTerm } from "./deviceTags";
import type { UpdateRequest } from "./http/schemas/admin";
import { labelToBytes32 } from "./fleetViews";

/** PROC-2: an administrator asks for an update of a release, to named devices or to a filter of the fleet (its schema: agent/tracker/http/schemas/admin.ts). */
export type { UpdateRequest };

export interface UpdateRequestResult {
  requestId: string;
  /** The release, or the bundle's id for a request of a bundle (with `bundle`). */
  releaseId: string;
  bundle?: { id: string; name: string; version: string };
  decided: number;
  refused: { deviceId: string; code: string; message: string }[];
  deadline: number | null;
}

/** A request refused as a whole: nothing was decided. Its HTTP status is its code's (agent/core/errorCodes.ts). */
export class UpdateRequestRefused extends OtaError {}

const ADMINISTRATOR_ROLE = roleId("ADMINISTRATOR_ROLE");
/** Release-level verdicts of the registry's installable check: they refuse the whole request. */
const RELEASE_VERDICTS: Record<string, string> = {
  RELEASE_UNKNOWN: "RELEASE_UNKNOWN",
  RELEASE_REVOKED: "RELEASE_NOT_ACTIVE",
  RELEASE_VULNERABLE: "RELEASE_NOT_ACTIVE",
  PROVIDER_BARRED: "PROVIDER_BARRED",
};
const MAX_DEVICES = 100_000;

/** Where the ledger's answers come from: the registry, its policies and (for bundles) ReleaseBundles. */
type RequestDeps = {
  registry: UpdateRegistry;
  policies?: UpdatePolicies;
  bundles?: ReleaseBundles;
  domain: TypedDataDomain;
  fromBlock: number;
  db: FleetStore;
  now: () => number;
};

/** One device's verdict: the registry's (or checkBundle's) code, and a policy's refusal. */
type DeviceVerdict = { verdict: string; policy: string | null; reason: bigint; member?: number };

/** What a request installs: one release, or a bundle's members together; `check` asks the ledger for one device. */
type Target = {
  id: string;
  component: string;
  bundle?: BundleRow;
  check(device: DeviceRow, installed: { component: string; version: bigint }[]): Promise<DeviceVerdict>;
};

/**
 * Validates an administrator's update request against the ledger before anything is started
 * (PROC-2): the signer holds ADMINISTRATOR_ROLE on the registry; the release is on the ledger and
 * its record and author's signature check out; an image location given is the recorded file link;
 * then the registry's own `checkInstallable` is asked once per configuration of the targeted
 * devices (hardware class and installed versions), so every rule the ledger holds (hardware,
 * order, dependencies, status, bars) is the ledger's. Devices that pass get a decision; the others
 * are listed with the registry's reason.
 */
export async function handleUpdateRequest(deps: RequestDeps, account: string, req: UpdateRequest): Promise<UpdateRequestResult> {
  const { registry, db } = deps;
  if (!(await ledger(() => registry.hasRole(ADMINISTRATOR_ROLE, account)))) {
    throw new UpdateRequestRefused("NOT_ADMINISTRATOR", `${account} does not hold ADMINISTRATOR_ROLE on the registry`);
  }
  let target: Target;
  if (req.bundleId !== undefined) target = await bundleTarget(deps, req.bundleId);
  else {
    const releaseId = req.releaseId!;
    const release = await verifiedRelease(deps, releaseId);
    if (req.imageLocation !== undefined && req.imageLocation !== release.record.fileLink) {
      throw new UpdateRequestRefused(
        "IMAGE_LOCATION_MISMATCH",
        `the image location ${req.imageLocation} is not release ${releaseId}'s recorded file link ${release.record.fileLink}`,
      );
    }
    target = releaseTarget(deps, release);
  }

  const targets = selectDevices(db, req);
  if (targets.length === 0) throw new UpdateRequestRefused("NO_DEVICES", "no device matches the request");
  const { accepted, refused } = await checkDevices(deps, target, targets);
  const requestId = "0x" + randomBytes(16).toString("hex");
  const at = deps.now();
  db.transaction(() => {
    for (const id of accepted)
      db.decisions.decide({ deviceId: id, releaseId: target.id, component: target.component, reason: "requested", origin: `request:${requestId}`, at });
    if (accepted.length > 0) db.rollouts.start(target.id, `request:${requestId}`, at);
    db.requests.record({
      id: requestId,
      releaseId: target.id,
      component: target.component,
      target: targetOf(req),
      deadline: req.deadline ?? null,
      overridePins: req.overridePins === true,
      requestedBy: account,
      requestedAt: at,
      refused,
      devices: accepted,
    });
  });
  const bundle = target.bundle && { id: target.id, name: target.bundle.name, version: formatVersion(target.bundle.version) };
  return { requestId, releaseId: target.id, ...(bundle ? { bundle } : {}), decided: accepted.length, refused, deadline: req.deadline ?? null };
}

/** A release on the ledger whose record and author's signature check out; refused otherwise. */
async function verifiedRelease(deps: RequestDeps, releaseId: string) {
  const { registry } = deps;
  const release = await ledger(() => fetchRelease(registry, deps.domain, releaseId, deps.fromBlock));
  if (!release) throw new UpdateRequestRefused("RELEASE_UNKNOWN", `release ${releaseId} is not on the ledger`);
  try {
    await ledger(() => verifyLedgerRelease({ registry, domain: deps.domain }, release));
  } catch (err) {
    if (err instanceof OtaError && err.code !== "LEDGER_UNAVAILABLE") throw new UpdateRequestRefused("RELEASE_NOT_VERIFIED", err.message);
    throw err;
  }
  return release;
}

/** One release: the registry's installable check (and the update policies') per device. */
function releaseTarget(deps: RequestDeps, release: Awaited<ReturnType<typeof verifiedRelease>>): Target {
  return {
    id: release.id.toLowerCase(),
    component: release.record.component.toLowerCase(),
    check: (device, installed) =>
      ledger(() =>
        checkUpdateOnLedger(
          { registry: deps.registry, policies: deps.policies },
          release.record,
          device,
          installed,
          deps.policies ? deps.db.evidence.of(release.id, device.id) : undefined,
        ),
      ),
  };
}

/**
 * A release bundle (docs/adr/0019), validated as a release is: on ReleaseBundles and in this
 * tracker's mirror, each member on the ledger with its record and signature checked; the set is
 * asked per device of the ledger's `checkBundle` (a revoked or vulnerable member, or a barred
 * provider, refuses the request, as for a release), then each member the device does not run of
 * the update policies, with the other members at their bundle versions, as the device asks them.
 */
async function bundleTarget(deps: RequestDeps, bundleId: string): Promise<Target> {
  const id = bundleId.toLowerCase();
  const bundles = deps.bundles;
  if (!bundles) throw new UpdateRequestRefused("BUNDLES_NOT_DEPLOYED", "this tracker follows no ReleaseBundles contract: a request names a release");
  const mirrored = deps.db.catalogue.bundle(id);
  if (!mirrored)
    throw new UpdateRequestRefused("BUNDLE_UNKNOWN", `bundle ${id} is not on the ledger as this tracker follows it (yet: its block may not be read)`);
  const stored = await ledger(() => bundles.bundle(id)).catch((err: unknown) => {
    if (err instanceof OtaError) throw err;
    throw new UpdateRequestRefused("BUNDLE_UNKNOWN", `bundle ${id} is not on ReleaseBundles`);
  });
  const members: Awaited<ReturnType<typeof verifiedRelease>>[] = [];
  for (const releaseId of stored.releaseIds) members.push(await verifiedRelease(deps, releaseId));
  const records = members.map((m) => m.record);
  return {
    id,
    component: members[0].record.component.toLowerCase(),
    bundle: mirrored,
    async check(device, installed) {
      const [code, index] = await ledger(() =>
        bundles.checkBundle(
          id,
          records,
          device.hardwareClass,
          installed.map((i) => ({ component: i.component, version: i.version })),
        ),
      );
      const verdict = ledgerName(INSTALL_CHECK, code);
      if (verdict !== "INSTALLABLE" || !deps.policies) return { verdict, policy: null, reason: 0n, member: Number(index) };
      for (const m of members) {
        const component = m.record.component.toLowerCase();
        if (installed.some((i) => i.component === component && i.version === m.record.version)) continue;
        const others = members.filter((o) => o !== m).map((o) => ({ component: o.record.component.toLowerCase(), version: o.record.version }));
        const withSet = [...installed.filter((i) => !others.some((o) => o.component === i.component)), ...others];
        const v = await ledger(() =>
          checkUpdateOnLedger({ registry: deps.registry, policies: deps.policies }, m.record, device, withSet, deps.db.evidence.of(m.id, device.id)),
        );
        if (v.reason !== 0n) return { verdict: "INSTALLABLE", policy: v.policy, reason: v.reason };
      }
      return { verdict, policy: null, reason: 0n };
    },
  };
}

/** What an earlier request installs, read again (a bundle's or a release's); undefined when it no longer can be. */
async function targetOfRequest(deps: RequestDeps, releaseId: string): Promise<Target | undefined> {
  try {
    if (deps.db.catalogue.bundle(releaseId)) return await bundleTarget(deps, releaseId);
    const release = await ledger(() => fetchRelease(deps.registry, deps.domain, releaseId, deps.fromBlock));
    return release ? releaseTarget(deps, release) : undefined;
  } catch (err) {
    if (err instanceof UpdateRequestRefused) return undefined;
    throw err;
  }
}

/** What a request targeted, as its progress shows it: a count of named devices, the filter, the group or the query. */
function targetOf(req: UpdateRequest): UpdateRequestRow["target"] {
  if (req.devices) return { devices: new Set(req.devices.map((d) => d.toLowerCase())).size };
  if (req.group !== undefined) return { group: req.group };
  if (req.query !== undefined) return { query: formatTagQuery(parseTagQuery(req.query)) };
  return { filter: req.filter };
}

/**
 * The registry's installable check (and the update policies') for each device, asked once per
 * configuration without policies, once per device with them; release-level verdicts refuse the
 * whole request.
 */
async function checkDevices(deps: RequestDeps, target: Target, targets: string[]): Promise<{ accepted: string[]; refused: UpdateRequestResult["refused"] }> {
  const { db } = deps;
  const what = target.bundle ? `bundle ${target.id}` : `release ${target.id}`;
  const refused: UpdateRequestResult["refused"] = [];
  const accepted: string[] = [];
  const verdicts = new Map<number | string, DeviceVerdict>(); // configuration (or device) -> the ledger's answer
  for (const id of targets) {
    const device = db.devices.get(id);
    if (!device) {
      refused.push({ deviceId: id, code: "DEVICE_UNKNOWN", message: "not enrolled on the ledger (as this tracker follows it)" });
      continue;
    }
    if (device.standing !== "active") {
      refused.push({ deviceId: id, code: "DEVICE_NOT_ACTIVE", message: `the device is ${device.standing}` });
      continue;
    }
    // Without policies the answer depends on the configuration only; a policy may look at the device
    // itself, and at the evidence the tracker keeps for it (a staged rollout's cohort proof).
    const key = deps.policies ? id : (device.configId ?? `unknown:${device.hardwareClass}`);
    let v = verdicts.get(key);
    if (v === undefined) {
      const installed = db.devices.installed(id).map((i) => ({ component: i.component, version: i.version }));
      v = await target.check(device, installed);
      verdicts.set(key, v);
    }
    const verdict = v.verdict;
    if (RELEASE_VERDICTS[verdict]) throw new UpdateRequestRefused(RELEASE_VERDICTS[verdict], `the registry answers ${verdict} for ${what}`);
    if (verdict !== "INSTALLABLE")
      refused.push({
        deviceId: id,
        code: verdict,
        message: target.bundle
          ? `the ledger's checkBundle answers ${verdict} for this device${v.member !== undefined && verdict !== "NOT_NEWER_THAN_INSTALLED" ? ` (member ${target.bundle.members[v.member]?.releaseId})` : ""}`
          : `the registry's installable check answers ${verdict} for this device`,
      });
    else if (v.reason !== 0n)
      refused.push({ deviceId: id, code: "POLICY_REFUSED", message: `the update policy ${v.policy} refuses this device now (reason ${v.reason})` });
    else accepted.push(id);
  }
  return { accepted, refused };
}

/**
 * Devices that came to match the group or query of an earlier request (their tags changed, the
 * group's query was replaced) join it (issue 19, item 11): each is checked on the ledger as the
 * request's devices were, and decided when it passes. A request whose release is no longer
 * installable for it, or no longer active, decides nothing more. Returns how many were decided.
 */
export async function extendDynamicRequests(deps: RequestDeps, deviceIds: string[]): Promise<number> {
  const { db } = deps;
  let decided = 0;
  const dynamic = db.requests.dynamicIds();
  for (const requestId of dynamic) {
    const r = db.requests.get(requestId)!;
    const query = r.target.group !== undefined ? db.groups.get(r.target.group)?.query : r.target.query;
    if (query === undefined) continue; // the group was removed: the request keeps the devices it has
    const matching = new Set(devicesMatching(db, parseTagQuery(query), deviceIds));
    const already = new Set(db.requests.devices(requestId));
    const fresh = deviceIds.map((d) => d.toLowerCase()).filter((d) => matching.has(d) && !already.has(d));
    if (fresh.length === 0) continue;
    const target = await targetOfRequest(deps, r.releaseId);
    if (!target) continue;
    let checked: Awaited<ReturnType<typeof checkDevices>>;
    try {
      checked = await checkDevices(deps, target, fresh);
    } catch (err) {
      if (err instanceof UpdateRequestRefused) continue; // the release is no longer installable at all
      throw err;
    }
    const at = deps.now();
    db.transaction(() => {
      for (const id of checked.accepted)
        db.decisions.decide({ deviceId: id, releaseId: r.releaseId, component: r.component, reason: "requested", origin: `request:${requestId}`, at });
      db.requests.addDevices(requestId, checked.accepted, at);
    });
    decided += checked.accepted.length;
  }
  return decided;
}

/** Of `among` (or every device), those the query selects. */
export function devicesMatching(db: FleetStore, terms: QueryTerm[], among?: string[], limit = MAX_DEVICES + 1): string[] {
  return db.devices.ids({ tags: terms, among }, limit);
}

/** Where one device of a request stands (GET /v1/update-requests/:id). */
export type RequestDeviceState = "installed" | "failed" | "blocked" | "refused" | "notified" | "pending";

/**
 * The progress of an update request: for each device it decided, the release installed, failed
 * (after an intact delivery), blocked (delivery, retried), refused (declined by the device or
 * refused by its checks: the code says which), notified (told, no result yet) or pending (not
 * told yet); and how many are past the deadline without it installed.
 */
export function requestProgress(db: FleetStore, requestId: string, now: number, o: { devices?: boolean } = {}) {
  const r = db.requests.get(requestId);
  if (!r) return undefined;
  const bundle = db.catalogue.bundle(r.releaseId); // a request of a release bundle (docs/adr/0019): installed once every member runs
  const ids = db.requests.devices(r.id);
  const counts = { decided: ids.length, notified: 0, installed: 0, failed: 0, blocked: 0, refused: 0, pending: 0, pastDeadline: 0 };
  const devices: { deviceId: string; state: RequestDeviceState; code: string | null; pastDeadline: boolean }[] = [];
  const past = r.deadline !== null && now >= r.deadline;
  for (const id of ids) {
    const d = db.devices.get(id);
    const installed = db.devices.installed(id);
    const runsRelease = (releaseId: string, component: string) => {
      const have = installed.find((i) => i.component === component);
      const known = db.catalogue.release(releaseId);
      return !!have && (have.releaseId === releaseId || (!!known && have.version >= known.version));
    };
    const runs = bundle ? bundle.members.every((m) => runsRelease(m.releaseId, m.component)) : runsRelease(r.releaseId, r.component);
    const told = db.decisions.lastDelivery(id, r.releaseId) !== undefined;
    if (told) counts.notified++;
    let state: RequestDeviceState;
    let code: string | null = null;
    if (runs) state = "installed";
    else if (d?.lastRelease === r.releaseId && d.lastKind && d.lastKind !== "installed") {
      state = d.lastKind;
      code = d.lastCode;
    } else state = told ? "notified" : "pending";
    if (state === "installed") counts.installed++;
    else if (state === "failed") counts.failed++;
    else if (state === "blocked") counts.blocked++;
    else if (state === "refused") counts.refused++;
    else counts.pending++;
    const late = past && state !== "installed";
    if (late) counts.pastDeadline++;
    if (o.devices) devices.push({ deviceId: id, state, code, pastDeadline: late });
  }
  return {
    requestId: r.id,
    releaseId: r.releaseId,
    releaseName: db.catalogue.releaseName(r.releaseId),
    ...(bundle ? { bundle: { name: bundle.name, version: formatVersion(bundle.version), members: bundle.members } } : {}),
    component: r.component,
    target: r.target,
    deadline: r.deadline,
    overridePins: r.overridePins,
    requestedBy: r.requestedBy,
    requestedAt: r.requestedAt,
    counts,
    notDecided: r.refused,
    ...(o.devices ? { devices } : {}),
  };
}

function selectDevices(db: FleetStore, r: UpdateRequest): string[] {
  if (r.devices) return [...new Set(r.devices.map((d) => d.toLowerCase()))];
  if (r.group !== undefined || r.query !== undefined) {
    const query = r.group !== undefined ? db.groups.get(r.group)?.query : r.query!;
    if (query === undefined) throw new UpdateRequestRefused("GROUP_UNKNOWN", `no group "${r.group}" on this tracker: \`ota-ledger group list\``);
    const ids = devicesMatching(db, parseTagQuery(query));
    if (ids.length > MAX_DEVICES)
      throw new InputError("BAD_REQUEST", `the query matches more than ${MAX_DEVICES} devices: narrow it, or let the tracker's own plans move the fleet`);
    return ids;
  }
  const ids = db.devices.ids(
    {
      network: r.filter?.network === undefined ? undefined : labelToBytes32(r.filter.network, "filter.network"),
      region: r.filter?.region === undefined ? undefined : labelToBytes32(r.filter.region, "filter.region"),
      hardwareIn: r.filter?.hardware?.length ? r.filter.hardware : undefined,
    },
    MAX_DEVICES + 1,
  );
  if (ids.length > MAX_DEVICES)
    throw new InputError("BAD_REQUEST", `the filter matches more than ${MAX_DEVICES} devices: narrow it, or let the tracker's own plans move the fleet`);
  return ids;
}
