import { getAddress, hexlify, isAddress, isHexString, getBytes, id } from "ethers";
import { InputError } from "./errors";
import { isEvidence, MAX_EVIDENCE_BYTES } from "./installedContext";

/**
 * Evidence for several update policies in one string (contracts/policies/PolicyEvidence.sol).
 * A device brings one evidence string to its release's policy; when several policies of a
 * composition each need their own, their parts travel in an envelope keyed by policy address:
 *   magic (4 bytes) ‖ for each part: address (20) ‖ length (uint16, big-endian) ‖ bytes.
 * A kit policy takes its own part (UpdatePolicyBase._ownEvidence); evidence without the magic is
 * given whole to every policy, as before the envelope existed. The key "" stands for that whole,
 * unkeyed evidence.
 */

/** bytes4(keccak256("ota-ledger.policy-evidence.v1")), PolicyEvidence.ENVELOPE_MAGIC. */
export const EVIDENCE_ENVELOPE_MAGIC = id("ota-ledger.policy-evidence.v1").slice(0, 10);

/** The key of evidence given whole to every policy (no envelope). */
export const EVERY_POLICY = "";

const PART_HEADER = 22;

export function isEnvelope(evidence: string): boolean {
  return evidence.length >= 10 && evidence.slice(0, 10).toLowerCase() === EVIDENCE_ENVELOPE_MAGIC;
}

/**
 * The envelope of these parts (policy address -> evidence hex), in the order given. A single part
 * keyed EVERY_POLICY is returned as it is. Throws EVIDENCE_INVALID when a part is not hex, a key is
 * not an address, EVERY_POLICY is mixed with keyed parts, or the whole exceeds MAX_EVIDENCE_BYTES.
 */
export function joinEvidence(parts: Map<string, string>): string {
  const whole = parts.get(EVERY_POLICY);
  if (whole !== undefined) {
    if (parts.size > 1) throw new InputError("EVIDENCE_INVALID", "evidence for every policy cannot be mixed with evidence keyed by policy address");
    return checkedSize(whole, "the evidence");
  }
  const chunks: Uint8Array[] = [getBytes(EVIDENCE_ENVELOPE_MAGIC)];
  for (const [policy, part] of parts) {
    if (!isAddress(policy)) throw new InputError("EVIDENCE_INVALID", `${policy} is not a policy address (0x followed by 40 hex digits)`);
    if (!isHexString(part) || part.length % 2 !== 0) throw new InputError("EVIDENCE_INVALID", `the evidence for ${policy} is not 0x-prefixed hex bytes`);
    const bytes = getBytes(part);
    const header = new Uint8Array(PART_HEADER);
    header.set(getBytes(getAddress(policy)), 0);
    header[20] = bytes.length >> 8;
    header[21] = bytes.length & 0xff;
    chunks.push(header, bytes);
  }
  return checkedSize(hexlify(Buffer.concat(chunks)), `the evidence for ${parts.size} policies`);
}

/**
 * The parts of `evidence`: keyed by (checksummed) policy address for an envelope, or one part
 * keyed EVERY_POLICY for plain evidence. Throws EVIDENCE_INVALID for an envelope whose parts
 * overrun or stop short of its end (a policy would answer MALFORMED_EVIDENCE).
 */
export function splitEvidence(evidence: string): Map<string, string> {
  if (!isEnvelope(evidence)) return new Map([[EVERY_POLICY, evidence]]);
  const bytes = getBytes(evidence);
  const parts = new Map<string, string>();
  let at = 4;
  while (at < bytes.length) {
    if (bytes.length - at < PART_HEADER) throw new InputError("EVIDENCE_INVALID", `the evidence envelope ends inside a part's header at byte ${at}`);
    const policy = getAddress(hexlify(bytes.subarray(at, at + 20)));
    const size = (bytes[at + 20] << 8) | bytes[at + 21];
    at += PART_HEADER;
    if (bytes.length - at < size) throw new InputError("EVIDENCE_INVALID", `the evidence envelope's part for ${policy} runs past its end`);
    // The first part for a policy is the one policies read (PolicyEvidence.partFor).
    if (!parts.has(policy)) parts.set(policy, hexlify(bytes.subarray(at, at + size)));
    at += size;
  }
  return parts;
}

/**
 * `held` with the part of `policy` set to `part` (EVERY_POLICY: `part` replaces everything). A
 * keyed part replaces plain evidence held before, which was meant for every policy.
 */
export function withEvidencePart(held: string | undefined, policy: string, part: string): string {
  if (policy === EVERY_POLICY) return joinEvidence(new Map([[EVERY_POLICY, part]]));
  const parts = held && isEnvelope(held) ? splitEvidence(held) : new Map<string, string>();
  parts.set(getAddress(policy), part);
  return joinEvidence(parts);
}

function checkedSize(evidence: string, what: string): string {
  if (isEvidence(evidence)) return evidence;
  const text: string = evidence;
  const size = isHexString(text) ? `it is ${(text.length - 2) / 2} bytes` : "it is not hex";
  throw new InputError("EVIDENCE_INVALID", `${what} must be 0x-prefixed hex of at most ${MAX_EVIDENCE_BYTES} bytes (${size})`);
}
