import { isHexString } from "ethers";
import type { FleetRegistry } from "../chain/contracts";
import { AuthenticationError, InputError } from "../core/errors";
import { openMessage, type Envelope } from "../crypto/sealedMessage";
import { verifyModuleSender } from "../chain/trackerModules";
import { NOTICE_KIND, type UpdateNotice } from "../core/updateNotice";
import { isEvidence } from "../core/installedContext";

/** A notice that must not be acted on: unregistered or unexpected sender, bad signature, stale or replayed. */
export class UpstreamNoticeRejected extends AuthenticationError {}

/**
 * Opens and checks a sealed update notice (CAP-11.2-d): it is for this device; it comes from the
 * device's configured upstream module; that module is registered and active on the ledger (with
 * every module above it) and its registered signer signed the notice; it is fresh, and newer than
 * the last notice taken from that module (no replay). Returns the notice and its issue time, which
 * the caller persists as the new `lastIssuedAt`.
 */
export async function verifyUpdateNotice(
  fleet: FleetRegistry,
  envelope: Envelope,
  device: { id: string; privateKey: string },
  expect: { upstream: string; lastIssuedAt: number; maxAgeMs: number; now: number },
): Promise<{ notice: UpdateNotice; issuedAt: number }> {
  const { message, signedBy } = openMessage<UpdateNotice>(envelope, device.privateKey, device.id, "account");
  if (message.kind !== NOTICE_KIND) throw new UpstreamNoticeRejected("NOTICE_KIND", `a ${message.kind} message is not an update notice`);
  if (message.from.toLowerCase() !== expect.upstream.toLowerCase()) {
    throw new UpstreamNoticeRejected("UPSTREAM_UNEXPECTED", `the notice comes from module ${message.from}, not this device's upstream ${expect.upstream}`);
  }
  await verifyModuleSender(fleet, message.from, signedBy, (code, text) => new UpstreamNoticeRejected(`UPSTREAM_${code}`, text));
  if (Math.abs(expect.now - message.issuedAt) > expect.maxAgeMs)
    throw new UpstreamNoticeRejected("NOTICE_STALE", `the notice was issued at ${message.issuedAt}, too far from ${expect.now}`);
  if (message.issuedAt <= expect.lastIssuedAt)
    throw new UpstreamNoticeRejected("NOTICE_REPLAYED", "the notice is not newer than the last one taken from this module");
  const n = message.body;
  if (
    !n ||
    !isHexString(n.releaseId, 32) ||
    !isHexString(n.component, 32) ||
    typeof n.reason !== "string" ||
    (n.evidence !== undefined && !isEvidence(n.evidence)) ||
    (n.ledgerBlock !== undefined && !(Number.isSafeInteger(n.ledgerBlock) && n.ledgerBlock >= 0)) ||
    (n.deadline !== undefined && !(Number.isSafeInteger(n.deadline) && n.deadline >= 0)) ||
    (n.overridePin !== undefined && typeof n.overridePin !== "boolean")
  ) {
    throw new InputError(
      "NOTICE_MALFORMED",
      "an update notice names a release id, a component id, a reason and, optionally, policy evidence (hex), the newest ledger block its module read (a block number) and an administrator's deadline (ms)",
    );
  }
  return { notice: n, issuedAt: message.issuedAt };
}
