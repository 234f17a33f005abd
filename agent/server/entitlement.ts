import type { InstalledVersion } from "../core/release";
import { InputError } from "../core/errors";
import { decodeEvidence, decodeInstalled } from "../core/installedContext";
import type { DeviceCredential } from "../crypto/deviceCredential";
import type { LedgerRelease } from "../chain/releaseEvents";
import type { LedgerGate } from "./ledgerGate";
import { Refusal } from "./refusals";
import type { AcceptedArtifact, ServerDatabase } from "./serverDatabase";

/**
 * Whether a device may have a release from this server (PROC-4, CAP-11.3-b), checked in this
 * order, the first failure being the answer:
 *  1. the server holds the artifact and has not withdrawn it (revocation, CAP-11.3-c);
 *  2. the device's record is enrolled on the ledger and neither suspended nor withdrawn;
 *  3. the ledger's installable check for the device's hardware class and installed components
 *     passes (release active, provider not barred, hardware, version order, dependencies), then
 *     the update policy an administrator attached (UpdatePolicies) — the server keeps no rules of
 *     its own;
 *  4. a content key was granted to the device for this release.
 */
export async function checkEntitlement(
  gate: LedgerGate,
  db: ServerDatabase,
  credential: DeviceCredential,
  installed: InstalledVersion[],
  releaseId: string,
  evidence = "0x",
): Promise<{ release: LedgerRelease; artifact: AcceptedArtifact; wrappedKey: Buffer }> {
  // Held here at all first: an id this server does not hold costs no ledger read.
  const artifact = db.artifact(releaseId);
  if (!artifact) throw new Refusal("ARTIFACT_NOT_AVAILABLE", `this server holds no artifact for release ${releaseId}`);
  if (artifact.state === "withdrawn") throw new Refusal("RELEASE_REVOKED", `release ${releaseId} was withdrawn: ${artifact.withdrawnReason ?? "revoked"}`);

  const release = await gate.release(releaseId);
  if (artifact.state === "prepared") db.promoteArtifact(releaseId); // published since (the follower would tell it soon): listed as serving
  // One read for the standing and the verdict, shared with the devices asking at the same moment.
  const { standing, verdict: check } = await gate.entitlementFacts(release, credential, installed, evidence);
  if (standing === "unknown") throw new Refusal("DEVICE_NOT_ENROLLED", `device ${credential.record.id} is not enrolled with this record`);
  if (standing === "suspended") throw new Refusal("DEVICE_SUSPENDED", `device ${credential.record.id} is suspended`);
  if (standing === "revoked") throw new Refusal("DEVICE_REVOKED", `the record of device ${credential.record.id} was withdrawn`);

  // The InstallCheck names are refusal codes (refusals.ts), so the ledger's verdict is the answer.
  if (check.verdict !== "INSTALLABLE")
    throw new Refusal(check.verdict, `the ledger's installable check refuses release ${releaseId} for device ${credential.record.id}`, {
      installCheck: check.verdict,
    });
  if (check.reason !== 0n) {
    throw new Refusal(
      "POLICY_REFUSED",
      `the update policy ${check.policy} refuses release ${releaseId} for device ${credential.record.id} now (reason ${check.reason})`,
      { policy: check.policy, reason: check.reason.toString() },
    );
  }

  const wrappedKey = db.wrappedKey(releaseId, credential.record.id);
  if (!wrappedKey) throw new Refusal("KEY_NOT_GRANTED", `no content key of release ${releaseId} was granted to device ${credential.record.id}`);
  return { release, artifact, wrappedKey };
}

/** The device's installed components and policy evidence from its signed request context; malformed is a 400. */
export function contextOf(context: string | undefined): { installed: InstalledVersion[]; evidence: string } {
  try {
    return { installed: decodeInstalled(context), evidence: decodeEvidence(context) };
  } catch (err) {
    if (err instanceof InputError) throw new Refusal("BAD_REQUEST", err.message);
    throw err;
  }
}
