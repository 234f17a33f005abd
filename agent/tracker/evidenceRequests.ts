import { getAddress, isAddress } from "ethers";
import { InputError } from "../core/errors";
import { isEvidence, MAX_EVIDENCE_BYTES } from "../core/installedContext";
import { EVERY_POLICY } from "../core/policyEvidence";

/**
 * An administrator's evidence for a release's update policy, per device
 * (POST /v1/releases/:releaseId/evidence): for one policy of the release's composition (its
 * address), or, without `policy`, given whole to every policy.
 */
export interface EvidenceRequest {
  /** The policy the evidence is for, checksummed; EVERY_POLICY when the request names none. */
  policy: string;
  /** Device id (lower case) -> evidence (0x hex). */
  devices: Record<string, string>;
}

export const MAX_EVIDENCE_DEVICES = 200_000;

const DEVICE_ID = /^0x[0-9a-fA-F]{64}$/;

/** The body as it must be, or BAD_REQUEST saying what to fix. */
export function parseEvidenceRequest(input: unknown): EvidenceRequest {
  const fail = (m: string): never => {
    throw new InputError("BAD_REQUEST", m);
  };
  const shape = 'the body is a JSON object {"policy": "0x<policy address>" (optional), "devices": {"0x<deviceId>": "0x<evidence>", ...}}';
  if (!input || typeof input !== "object" || Array.isArray(input)) fail(shape);
  const body = input as { policy?: unknown; devices?: unknown };
  const extra = Object.keys(body).filter((k) => k !== "policy" && k !== "devices");
  if (extra.length) fail(`unknown field(s) ${extra.join(", ")}: ${shape}`);
  if (body.policy !== undefined && (typeof body.policy !== "string" || !isAddress(body.policy)))
    fail("policy must be a policy's address (0x followed by 40 hex digits)");
  const devices = body.devices;
  if (!devices || typeof devices !== "object" || Array.isArray(devices)) fail(shape);
  const entries = Object.entries(devices as Record<string, unknown>);
  if (entries.length < 1 || entries.length > MAX_EVIDENCE_DEVICES)
    fail(`devices must hold 1 to ${MAX_EVIDENCE_DEVICES} device ids: split a larger fleet into several requests`);
  const out: Record<string, string> = {};
  for (const [id, evidence] of entries) {
    if (!DEVICE_ID.test(id) || BigInt(id) === 0n) fail(`${id}: a device id is 0x followed by 64 hex digits, not all zero`);
    if (!isEvidence(evidence) || evidence === "0x") fail(`the evidence of device ${id} must be 0x-prefixed hex of 1 to ${MAX_EVIDENCE_BYTES} bytes`);
    const key = id.toLowerCase();
    if (key in out) fail(`device ${id} is named twice (ids are compared in any case); name each device once`);
    out[key] = evidence as string;
  }
  return { policy: body.policy === undefined ? EVERY_POLICY : getAddress(body.policy as string), devices: out };
}
