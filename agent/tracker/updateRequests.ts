import { id as roleId, isHexString, type TypedDataDomain } from "ethers";
import { randomBytes } from "node:crypto";
import type { UpdatePolicies, UpdateRegistry } from "../chain/contracts";
import { checkUpdateOnLedger, type LedgerUpdateVerdict } from "../chain/updateCheckOnLedger";
import { fetchRelease } from "../chain/releaseEvents";
import { callLedger as ledger } from "../chain/ledgerCall";
import { verifyLedgerRelease } from "../chain/verifyLedgerRelease";
import { InputError, OtaError } from "../core/errors";
import type { FleetDatabase } from "./fleetDatabase";
import { labelToBytes32 } from "./fleetViews";

/** PROC-2: an administrator asks for an update of a release, to named devices or to a filter of the fleet. */
export interface UpdateRequest {
  releaseId: string;
  devices?: string[];
  filter?: { network?: string; region?: string; hardware?: number[] };
  imageLocation?: string; // if given, must be the release's recorded file link
}

export interface UpdateRequestResult {
  requestId: string;
  releaseId: string;
  decided: number;
  refused: { deviceId: string; code: string; message: string }[];
}

/** A request refused as a whole: nothing was decided. `status` is the HTTP status to answer with. */
export class UpdateRequestRefused extends OtaError {
  constructor(
    code: string,
    message: string,
    readonly status: number,
  ) {
    super(code, message);
  }
}

const ADMINISTRATOR_ROLE = roleId("ADMINISTRATOR_ROLE");
/** Release-level verdicts of the registry's installable check: they refuse the whole request. */
const RELEASE_VERDICTS: Record<string, string> = {
  RELEASE_UNKNOWN: "RELEASE_UNKNOWN",
  RELEASE_REVOKED: "RELEASE_NOT_ACTIVE",
  RELEASE_VULNERABLE: "RELEASE_NOT_ACTIVE",
  PROVIDER_BARRED: "PROVIDER_BARRED",
};
const MAX_DEVICES = 100_000;

/**
 * Validates an administrator's update request against the ledger before anything is started
 * (PROC-2): the signer holds ADMINISTRATOR_ROLE on the registry; the release is on the ledger and
 * its record and author's signature check out; an image location given is the recorded file link;
 * then the registry's own `checkInstallable` is asked once per configuration of the targeted
 * devices (hardware class and installed versions), so every rule the ledger holds (hardware,
 * order, dependencies, status, bars) is the ledger's. Devices that pass get a decision; the others
 * are listed with the registry's reason.
 */
export async function handleUpdateRequest(
  deps: { registry: UpdateRegistry; policies?: UpdatePolicies; domain: TypedDataDomain; fromBlock: number; db: FleetDatabase; now: () => number },
  account: string,
  input: unknown,
): Promise<UpdateRequestResult> {
  const req = parseRequest(input);
  const { registry, db } = deps;
  if (!(await ledger(() => registry.hasRole(ADMINISTRATOR_ROLE, account)))) {
    throw new UpdateRequestRefused("NOT_ADMINISTRATOR", `${account} does not hold ADMINISTRATOR_ROLE on the registry`, 403);
  }
  const release = await ledger(() => fetchRelease(registry, deps.domain, req.releaseId, deps.fromBlock));
  if (!release) throw new UpdateRequestRefused("RELEASE_UNKNOWN", `release ${req.releaseId} is not on the ledger`, 400);
  try {
    await ledger(() => verifyLedgerRelease({ registry, domain: deps.domain }, release));
  } catch (err) {
    if (err instanceof OtaError && err.code !== "LEDGER_UNAVAILABLE") throw new UpdateRequestRefused("RELEASE_NOT_VERIFIED", err.message, 400);
    throw err;
  }
  if (req.imageLocation !== undefined && req.imageLocation !== release.record.fileLink) {
    throw new UpdateRequestRefused(
      "IMAGE_LOCATION_MISMATCH",
      `the image location ${req.imageLocation} is not release ${req.releaseId}'s recorded file link ${release.record.fileLink}`,
      400,
    );
  }

  const targets = selectDevices(db, req);
  if (targets.length === 0) throw new UpdateRequestRefused("NO_DEVICES", "no device matches the request", 400);
  const refused: UpdateRequestResult["refused"] = [];
  const accepted: string[] = [];
  const verdicts = new Map<number | string, LedgerUpdateVerdict>(); // configuration (or device) -> the ledger's answer
  for (const id of targets) {
    const device = db.device(id);
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
      const installed = db.installed(id).map((i) => ({ component: i.component, version: i.version }));
      const evidence = deps.policies ? db.evidenceFor(release.id, id) : undefined;
      v = await ledger(() => checkUpdateOnLedger({ registry, policies: deps.policies }, release.record, device, installed, evidence));
      verdicts.set(key, v);
    }
    const verdict = v.verdict;
    if (RELEASE_VERDICTS[verdict])
      throw new UpdateRequestRefused(RELEASE_VERDICTS[verdict], `the registry answers ${verdict} for release ${req.releaseId}`, 400);
    if (verdict !== "INSTALLABLE")
      refused.push({ deviceId: id, code: verdict, message: `the registry's installable check answers ${verdict} for this device` });
    else if (v.reason !== 0n)
      refused.push({ deviceId: id, code: "POLICY_REFUSED", message: `the update policy ${v.policy} refuses this device now (reason ${v.reason})` });
    else accepted.push(id);
  }
  const requestId = "0x" + randomBytes(16).toString("hex");
  const at = deps.now();
  db.transaction(() => {
    for (const id of accepted)
      db.decide({ deviceId: id, releaseId: release.id, component: release.record.component, reason: "requested", origin: `request:${requestId}`, at });
    if (accepted.length > 0) db.startRollout(release.id, `request:${requestId}`, at);
  });
  return { requestId, releaseId: release.id.toLowerCase(), decided: accepted.length, refused };
}

function parseRequest(input: unknown): UpdateRequest {
  const r = input as UpdateRequest;
  const fail = (m: string): never => {
    throw new InputError("BAD_REQUEST", m);
  };
  if (!r || typeof r !== "object") fail("the body is a JSON object {releaseId, devices | filter, imageLocation?}");
  if (!isHexString(r.releaseId, 32)) fail("releaseId must be a release id (0x + 64 hex digits)");
  if (r.devices !== undefined && (!Array.isArray(r.devices) || r.devices.length > MAX_DEVICES || !r.devices.every((d) => isHexString(d, 32)))) {
    fail(`devices must be a list of at most ${MAX_DEVICES} device ids (0x + 64 hex digits)`);
  }
  if (r.devices === undefined && r.filter === undefined)
    fail("name the devices (devices) or a filter (filter: {network, region, hardware}); {} in filter means the whole fleet");
  if (r.filter !== undefined) {
    const f = r.filter;
    if (typeof f !== "object" || f === null) fail("filter is an object {network?, region?, hardware?}");
    if (f.hardware !== undefined && (!Array.isArray(f.hardware) || !f.hardware.every((h) => Number.isInteger(h) && h >= 0 && h < 65536)))
      fail("filter.hardware is a list of hardware class ids");
    if (f.network !== undefined && typeof f.network !== "string") fail("filter.network is a network label");
    if (f.region !== undefined && typeof f.region !== "string") fail("filter.region is a region or group label");
  }
  if (r.imageLocation !== undefined && typeof r.imageLocation !== "string") fail("imageLocation is the release's file link (its CID)");
  return r;
}

function selectDevices(db: FleetDatabase, r: UpdateRequest): string[] {
  if (r.devices) return [...new Set(r.devices.map((d) => d.toLowerCase()))];
  const where: string[] = [];
  const args: unknown[] = [];
  if (r.filter?.network !== undefined) {
    where.push("network = ?");
    args.push(labelToBytes32(r.filter.network, "filter.network"));
  }
  if (r.filter?.region !== undefined) {
    where.push("region = ?");
    args.push(labelToBytes32(r.filter.region, "filter.region"));
  }
  if (r.filter?.hardware?.length) {
    where.push(`hardware_class IN (SELECT value FROM json_each(?))`);
    args.push(JSON.stringify(r.filter.hardware));
  }
  const clause = where.length ? `WHERE ${where.join(" AND ")}` : "";
  const ids = db.db
    .prepare(`SELECT id FROM devices ${clause} ORDER BY id LIMIT ?`)
    .pluck()
    .all(...args, MAX_DEVICES + 1) as string[];
  if (ids.length > MAX_DEVICES)
    throw new InputError("BAD_REQUEST", `the filter matches more than ${MAX_DEVICES} devices: narrow it, or let the tracker's own plans move the fleet`);
  return ids;
}
