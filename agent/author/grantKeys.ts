import type { TypedDataDomain } from "ethers";
import type { FleetRegistry, UpdateRegistry } from "../chain/contracts";
import { InputError } from "../core/errors";
import { mapLimit } from "../core/mapLimit";
import { RELEASE_STATUS, ledgerName } from "../core/ledgerCodes";
import type { ReleaseRecord } from "../core/release";
import type { DeviceCredential } from "../crypto/deviceCredential";
import { deviceLeaf, verifyDeviceProof } from "../crypto/deviceTree";
import { keyWrapContext, wrapContentKey } from "../crypto/keyWrap";
import { signAccountRequest } from "../crypto/requestSignature";
import { computeReleaseId } from "../crypto/releaseSignature";
import { fetchRelease } from "../chain/releaseEvents";
import { queryLogs } from "../chain/queryLogs";
import { decodeRevert } from "../chain/revertReason";
import type { ContentKeyStore } from "./contentKeyStore";
import { refusalOf, ServerRefusedError } from "../net/serverAnswer";

const GRANT_BATCH = 1000;

export interface GrantResult {
  releaseId: string;
  granted: string[];
  skipped: { deviceId: string; reason: string }[];
}

/** What granting keys needs: the registries, the author's account and key store, the firmware server. */
export interface GrantDeps {
  registry: UpdateRegistry;
  fleet: FleetRegistry;
  domain: TypedDataDomain;
  author: { address: string; signMessage(m: string): Promise<string> };
  keys: ContentKeyStore;
  serverUrl: string;
  fromBlock?: number;
}

/**
 * Grants a release's content key to devices: wraps it for each device's enrolled public key
 * (ECIES, bound to the release and device ids) and hands the wrapped keys to the firmware server
 * in a request signed by the author. The server never sees the key in the clear (CAP-11.4-c).
 *
 * Devices are those enrolled singly on the ledger (from DeviceEnrolled events) plus any given as
 * credentials (batch-enrolled devices, whose records the ledger holds only as a Merkle root).
 * Named devices must be active and of a supported hardware class, or the grant fails before
 * anything is sent; with `allEligible`, the others are skipped and listed with the reason.
 *
 * The ledger is asked a fixed number of times whatever the fleet's size (issue 17): one query of
 * the fleet registry's device events, one read per distinct batch, and, for a published release,
 * its event and status (ledgerStandings). With `prepared` (the release's record, signed but not yet
 * published: its artifact is prepared on the server), the release is not read from the ledger.
 */
export async function grantKeys(
  deps: GrantDeps,
  releaseId: string,
  selection: { deviceIds?: string[]; allEligible?: boolean; credentials?: DeviceCredential[] },
  prepared?: { record: ReleaseRecord },
): Promise<GrantResult> {
  const { registry, fleet } = deps;
  const fromBlock = deps.fromBlock ?? 0;
  if (prepared && computeReleaseId(deps.domain, prepared.record).toLowerCase() !== releaseId.toLowerCase())
    throw new InputError("RELEASE_ID_MISMATCH", `the record given hashes to ${computeReleaseId(deps.domain, prepared.record)}, not to release ${releaseId}`);
  const [record, ledger] = await Promise.all([
    prepared ? prepared.record : publishedRecord(registry, deps.domain, releaseId, fromBlock),
    readFleetEvents(fleet, fromBlock),
  ]);
  const contentKey = await deps.keys.load(releaseId);

  const known = new Map<string, DeviceCredential>();
  for (const [id, enrolled] of ledger.singles) known.set(id, { record: enrolled, batchId: 0, proof: [] });
  for (const c of selection.credentials ?? []) known.set(c.record.id.toLowerCase(), c);

  const explicit = !selection.allEligible;
  let targets: DeviceCredential[];
  if (explicit) {
    const ids = selection.deviceIds ?? [];
    if (ids.length === 0) throw new InputError("DEVICES_MISSING", "name devices with --device <id>, or --device all-eligible");
    targets = ids.map((id) => {
      const c = known.get(id.toLowerCase());
      if (!c)
        throw new InputError("DEVICE_UNKNOWN", `device ${id} is not enrolled singly on the ledger: enrol it, or pass its batch credential with --devices-file`);
      return c;
    });
  } else {
    targets = [...known.values()];
  }

  const result: GrantResult = { releaseId, granted: [], skipped: [] };
  const wrapped: { deviceId: string; wrappedKey: string }[] = [];
  const batches = await readBatches(fleet, targets);
  for (const c of targets) {
    const notActive = standingProblem(c, ledger, batches);
    const reason = notActive
      ? notActive
      : !record.hardware.includes(c.record.hardwareClass)
        ? `hardware class ${c.record.hardwareClass} is not supported by the release`
        : undefined;
    if (reason) {
      if (explicit) throw new InputError("DEVICE_NOT_ELIGIBLE", `device ${c.record.id}: ${reason}`);
      result.skipped.push({ deviceId: c.record.id, reason });
      continue;
    }
    wrapped.push({
      deviceId: c.record.id,
      wrappedKey: "0x" + wrapContentKey(contentKey, Buffer.from(c.record.publicKey.slice(2), "hex"), keyWrapContext(releaseId, c.record.id)).toString("hex"),
    });
    result.granted.push(c.record.id);
  }
  if (wrapped.length === 0) return result;

  // Batches of 1,000 keys (~290 KB of JSON) keep each request well under the server's body limit.
  const pathname = `/v1/releases/${releaseId.toLowerCase()}/keys`;
  for (let i = 0; i < wrapped.length; i += GRANT_BATCH) {
    const body = JSON.stringify({ keys: wrapped.slice(i, i + GRANT_BATCH) });
    const headers = await signAccountRequest(deps.author, { audience: deps.serverUrl, method: "PUT", path: pathname, body });
    let res: Response;
    try {
      res = await fetch(new URL(pathname, deps.serverUrl), { method: "PUT", headers: { ...headers, "content-type": "application/json" }, body });
    } catch (cause) {
      throw new ServerRefusedError("SERVER_UNREACHABLE", `no firmware server answers at ${deps.serverUrl}: start it or fix serverUrl`, 0, {
        cause: String(cause),
      });
    }
    if (!res.ok) throw await refusalOf(res, `granting keys of release ${releaseId} (${i} of ${wrapped.length} already granted; granting again is harmless)`);
  }
  return result;
}

/** The record of a published release, refused if unknown or revoked. */
async function publishedRecord(registry: UpdateRegistry, domain: TypedDataDomain, releaseId: string, fromBlock: number): Promise<ReleaseRecord> {
  const [release, status] = await Promise.all([fetchRelease(registry, domain, releaseId, fromBlock), registry.releaseStatus(releaseId)]);
  if (!release) throw new InputError("RELEASE_UNKNOWN", `the ledger has no release ${releaseId}: check the id printed by \`release publish\``);
  if (ledgerName(RELEASE_STATUS, status) === "revoked") throw new InputError("RELEASE_REVOKED", `release ${releaseId} is revoked: grant a newer release`);
  return release.record;
}

/** What the fleet registry's events say about devices, in one query (the gathered facts of standingProblem). */
export interface FleetEvents {
  singles: Map<string, DeviceCredential["record"]>; // device id (lower case) -> its current single record
  revokedLeaves: Set<string>; // records withdrawn one by one (DeviceRecordRevoked)
  suspended: Set<string>; // device ids suspended now
}

export async function readFleetEvents(fleet: FleetRegistry, fromBlock: number): Promise<FleetEvents> {
  const events = (["DeviceEnrolled", "DeviceRecordRevoked", "DeviceSuspended", "DeviceReinstated"] as const).map(
    (name) => fleet.interface.getEvent(name)!.topicHash,
  );
  const out: FleetEvents = { singles: new Map(), revokedLeaves: new Set(), suspended: new Set() };
  for (const log of await queryLogs(fleet, [events], fromBlock)) {
    const parsed = fleet.interface.parseLog(log);
    const a = parsed?.args;
    if (!a) continue;
    const id = String(a.deviceId).toLowerCase();
    if (parsed.name === "DeviceEnrolled")
      out.singles.set(id, { id: a.deviceId, publicKey: a.publicKey, hardwareClass: Number(a.hardwareClass), network: a.network, region: a.region });
    else if (parsed.name === "DeviceRecordRevoked") out.revokedLeaves.add(String(a.leaf).toLowerCase());
    else if (parsed.name === "DeviceSuspended") out.suspended.add(id);
    else out.suspended.delete(id);
  }
  return out;
}

/** Each distinct batch of the targets, read once: its root and whether it was withdrawn (undefined: not on the ledger). */
async function readBatches(fleet: FleetRegistry, targets: DeviceCredential[]): Promise<Map<number, { root: string; revoked: boolean } | undefined>> {
  const ids = [...new Set(targets.filter((c) => c.batchId !== 0).map((c) => c.batchId))];
  const read = await mapLimit(ids, 8, async (batchId) => {
    try {
      const [root, , revoked] = await fleet.deviceBatch(batchId);
      return { root, revoked };
    } catch (err) {
      if (decodeRevert(err, [fleet.interface])?.name === "FleetRegistryUnknownBatch") return undefined;
      throw err;
    }
  });
  return new Map(ids.map((id, i) => [id, read[i]]));
}

/**
 * Why a device is not in good standing, or undefined if it is: FleetRegistry.deviceStanding's rules,
 * decided from the gathered facts instead of one eth_call per device. A batch device's proof is
 * checked here against its batch's root (OpenZeppelin's sorted-pair scheme, agent/crypto/deviceTree.ts).
 *
 * Suspension comes from the events at the time of the grant and is advisory: a suspended device is
 * listed, as before, but granting it would be harmless, since the firmware server's entitlement
 * check reads the standing live and refuses a suspended device (DEVICE_SUSPENDED) at download; a
 * device suspended after its grant is refused the same way. A key wrap is useful only to the
 * holder of the device key, and only once the server hands it out.
 */
export function standingProblem(
  c: DeviceCredential,
  ledger: FleetEvents,
  batches: Map<number, { root: string; revoked: boolean } | undefined>,
): string | undefined {
  const id = c.record.id.toLowerCase();
  const leaf = deviceLeaf(c.record).toLowerCase();
  if (c.batchId === 0) {
    const single = ledger.singles.get(id);
    if (!single || deviceLeaf(single).toLowerCase() !== leaf) return "device is not enrolled with this record";
  } else {
    const batch = batches.get(c.batchId);
    if (!batch) return `device is not enrolled with this record: batch ${c.batchId} is not on the ledger`;
    if (!verifyDeviceProof(c.record, c.proof, batch.root))
      return `device is not enrolled with this record: its proof does not lead to batch ${c.batchId}'s root`;
    if (batch.revoked) return `device is withdrawn: batch ${c.batchId} was withdrawn`;
    if (ledger.singles.has(id)) return "device is withdrawn: its batch record is superseded by its single enrolment";
  }
  if (ledger.revokedLeaves.has(leaf)) return "device is withdrawn";
  if (ledger.suspended.has(id)) return "device is suspended";
  return undefined;
}
