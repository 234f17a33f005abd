import { isHexString } from "ethers";
import type { InstalledVersion } from "../core/release";
import type { DeviceCredential } from "../crypto/deviceCredential";
import type { LedgerRelease } from "../chain/releaseEvents";
import type { LedgerGate } from "./ledgerGate";
import { Refusal } from "./refusals";
import type { AcceptedArtifact, ServerDatabase } from "./serverDatabase";

/**
 * Whether a device may have a release from this server (PROC-4, CAP-11.3-b), checked in this
 * order, the first failure being the answer:
 *  1. the device's record is enrolled on the ledger and neither suspended nor withdrawn;
 *  2. the server holds the artifact and has not withdrawn it (revocation, CAP-11.3-c);
 *  3. the ledger's installable check for the device's hardware class and installed components
 *     passes (release active, provider not barred, hardware, version order, dependencies; where
 *     an administrator's policy will also act) — the server keeps no rules of its own;
 *  4. a content key was granted to the device for this release.
 */
export async function checkEntitlement(
  gate: LedgerGate,
  db: ServerDatabase,
  credential: DeviceCredential,
  installed: InstalledVersion[],
  releaseId: string,
): Promise<{ release: LedgerRelease; artifact: AcceptedArtifact; wrappedKey: Buffer }> {
  const standing = await gate.deviceStanding(credential);
  if (standing === "unknown") throw new Refusal("DEVICE_NOT_ENROLLED", `device ${credential.record.id} is not enrolled with this record`);
  if (standing === "suspended") throw new Refusal("DEVICE_SUSPENDED", `device ${credential.record.id} is suspended`);
  if (standing === "revoked") throw new Refusal("DEVICE_REVOKED", `the record of device ${credential.record.id} was withdrawn`);

  const artifact = db.artifact(releaseId);
  if (!artifact) throw new Refusal("ARTIFACT_NOT_AVAILABLE", `this server holds no artifact for release ${releaseId}`);
  if (artifact.state === "withdrawn") throw new Refusal("RELEASE_REVOKED", `release ${releaseId} was withdrawn: ${artifact.withdrawnReason ?? "revoked"}`);

  const release = await gate.release(releaseId);
  const check = await gate.installCheck(release, credential.record.hardwareClass, installed);
  // The InstallCheck names are refusal codes (refusals.ts), so the ledger's verdict is the answer.
  if (check !== "INSTALLABLE") throw new Refusal(check, `the ledger's installable check refuses release ${releaseId} for device ${credential.record.id}`, { installCheck: check });

  const wrappedKey = db.wrappedKey(releaseId, credential.record.id);
  if (!wrappedKey) throw new Refusal("KEY_NOT_GRANTED", `no content key of release ${releaseId} was granted to device ${credential.record.id}`);
  return { release, artifact, wrappedKey };
}

/** The device's installed components, sent (and signed) as the request context: base64url JSON [{component, version}]. */
export function decodeInstalled(context: string | undefined): InstalledVersion[] {
  if (!context) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(context, "base64url").toString("utf8"));
  } catch {
    throw new Refusal("BAD_REQUEST", "x-ota-context must be base64url JSON of the installed components");
  }
  if (!Array.isArray(parsed) || parsed.length > 64) throw new Refusal("BAD_REQUEST", "installed components must be a list of at most 64 entries");
  return parsed.map((e: { component?: unknown; version?: unknown }, i) => {
    if (!isHexString(e?.component, 32)) throw new Refusal("BAD_REQUEST", `installed component ${i} needs a 32-byte component id`);
    if (typeof e.version !== "string" || !/^\d{1,20}$/.test(e.version)) throw new Refusal("BAD_REQUEST", `installed component ${i} needs its encoded version as a decimal string`);
    const version = BigInt(e.version);
    if (version >= 2n ** 64n) throw new Refusal("BAD_REQUEST", `installed component ${i}: a version is a uint64`);
    return { component: e.component as string, version };
  });
}

export function encodeInstalled(installed: InstalledVersion[]): string {
  return Buffer.from(JSON.stringify(installed.map((i) => ({ component: i.component, version: i.version.toString() })))).toString("base64url");
}
