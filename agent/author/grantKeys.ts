import type { TypedDataDomain } from "ethers";
import type { FleetRegistry, UpdateRegistry } from "../chain/contracts";
import { InputError } from "../core/errors";
import { mapLimit } from "../core/mapLimit";
import { DEVICE_STANDING, RELEASE_STATUS, ledgerName } from "../core/ledgerCodes";
import type { DeviceCredential } from "../crypto/deviceCredential";
import { keyWrapContext, wrapContentKey } from "../crypto/keyWrap";
import { signAccountRequest } from "../crypto/requestSignature";
import { fetchRelease } from "../chain/releaseEvents";
import { queryLogs } from "../chain/queryLogs";
import type { EventLog } from "ethers";
import type { ContentKeyStore } from "./contentKeyStore";
import { refusalOf, ServerRefusedError } from "../io/serverAnswer";

const GRANT_BATCH = 1000;

export interface GrantResult {
  releaseId: string;
  granted: string[];
  skipped: { deviceId: string; reason: string }[];
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
 */
export async function grantKeys(
  deps: {
    registry: UpdateRegistry;
    fleet: FleetRegistry;
    domain: TypedDataDomain;
    author: { address: string; signMessage(m: string): Promise<string> };
    keys: ContentKeyStore;
    serverUrl: string;
    fromBlock?: number;
  },
  releaseId: string,
  selection: { deviceIds?: string[]; allEligible?: boolean; credentials?: DeviceCredential[] },
): Promise<GrantResult> {
  const { registry, fleet } = deps;
  const release = await fetchRelease(registry, deps.domain, releaseId, deps.fromBlock ?? 0);
  if (!release) throw new InputError("RELEASE_UNKNOWN", `the ledger has no release ${releaseId}: check the id printed by \`release publish\``);
  if (ledgerName(RELEASE_STATUS, await registry.releaseStatus(releaseId)) === "revoked")
    throw new InputError("RELEASE_REVOKED", `release ${releaseId} is revoked: grant a newer release`);
  const contentKey = await deps.keys.load(releaseId);

  const known = new Map<string, DeviceCredential>();
  for (const log of (await queryLogs(fleet, fleet.filters.DeviceEnrolled(), deps.fromBlock ?? 0)) as EventLog[]) {
    const a = log.args;
    known.set(a.deviceId.toLowerCase(), {
      record: { id: a.deviceId, publicKey: a.publicKey, hardwareClass: Number(a.hardwareClass), network: a.network, region: a.region },
      batchId: 0,
      proof: [],
    });
  }
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
  // The standings are read 16 at a time: one by one, a fleet of thousands waits on as many round trips.
  const standings = await mapLimit(targets, 16, async (c) => ledgerName(DEVICE_STANDING, await fleet.deviceStanding(c.record, c.batchId, c.proof)));
  for (const [k, c] of targets.entries()) {
    const standing = standings[k];
    const reason =
      standing !== "active"
        ? `device is ${standing === "unknown" ? "not enrolled with this record" : standing === "revoked" ? "withdrawn" : standing}`
        : !release.record.hardware.includes(c.record.hardwareClass)
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
