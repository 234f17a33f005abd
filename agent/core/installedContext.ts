import { isHexString } from "ethers";
import { InputError } from "./errors";
import type { InstalledVersion } from "./release";

/**
 * What a device sends, signed, with each request to the firmware server (the x-ota-context
 * header): its installed components, and the evidence it brings to the release's update policy
 * (e.g. its rollout cohort proof, from its tracker's notice). base64url JSON: either
 * [{component, version (decimal)}], or {installed: [...], evidence: "0x..."} when there is
 * evidence. The server hands both to the ledger's check (UpdatePolicies.checkUpdate).
 */
export function encodeInstalled(installed: InstalledVersion[], evidence?: string): string {
  const list = installed.map((i) => ({ component: i.component, version: i.version.toString() }));
  return Buffer.from(JSON.stringify(evidence && evidence !== "0x" ? { installed: list, evidence } : list)).toString("base64url");
}

/** The most evidence a request may carry (a cohort proof of 32 siblings is about 1.1 KiB). */
export const MAX_EVIDENCE_BYTES = 4096;

/** Checks evidence as a device or module may send it: 0x-prefixed hex of at most MAX_EVIDENCE_BYTES. */
export function isEvidence(value: unknown): value is string {
  // isHexString alone takes an odd number of digits ("0x1"), which is no bytes at all.
  return typeof value === "string" && isHexString(value) && value.length % 2 === 0 && (value.length - 2) / 2 <= MAX_EVIDENCE_BYTES;
}

/** The evidence in a request context ("0x" when none); throws InputError (INSTALLED_CONTEXT) if malformed. */
export function decodeEvidence(context: string | undefined): string {
  if (!context) return "0x";
  const parsed = parseContext(context);
  if (Array.isArray(parsed)) return "0x";
  const evidence = (parsed as { evidence?: unknown }).evidence;
  if (!isEvidence(evidence)) throw new InputError("INSTALLED_CONTEXT", `evidence must be 0x-prefixed hex of at most ${MAX_EVIDENCE_BYTES} bytes`);
  return evidence;
}

function parseContext(context: string): unknown {
  try {
    return JSON.parse(Buffer.from(context, "base64url").toString("utf8"));
  } catch {
    throw new InputError("INSTALLED_CONTEXT", "x-ota-context must be base64url JSON of the installed components");
  }
}

/** The inverse of encodeInstalled; throws InputError (INSTALLED_CONTEXT) on anything else. */
export function decodeInstalled(context: string | undefined): InstalledVersion[] {
  if (!context) return [];
  const fail = (message: string): never => {
    throw new InputError("INSTALLED_CONTEXT", message);
  };
  let parsed = parseContext(context);
  if (parsed && !Array.isArray(parsed) && typeof parsed === "object") parsed = (parsed as { installed?: unknown }).installed;
  if (!Array.isArray(parsed) || parsed.length > 64) fail("installed components must be a list of at most 64 entries");
  return (parsed as { component?: unknown; version?: unknown }[]).map((e, i) => {
    if (!isHexString(e?.component, 32)) fail(`installed component ${i} needs a 32-byte component id`);
    if (typeof e.version !== "string" || !/^\d{1,20}$/.test(e.version)) fail(`installed component ${i} needs its encoded version as a decimal string`);
    const version = BigInt(e.version as string);
    if (version >= 2n ** 64n) fail(`installed component ${i}: a version is a uint64`);
    return { component: e.component as string, version };
  });
}
