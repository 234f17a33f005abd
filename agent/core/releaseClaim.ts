import { isAddress, isHexString } from "ethers";
import { InputError } from "./errors";
import { normalizeRelease, type ReleaseRecord } from "./release";

/**
 * A release that is signed but not yet on the ledger, as its author shows it to a firmware server
 * before publishing (issue 17: the release is ready before it is visible): the Table II-1 record,
 * the EIP-712 signature over it and the signer. Sent as base64url JSON in the x-ota-release header
 * of a submission (integers as decimal strings). The request path names the release id, which the
 * server recomputes from the record: the header needs no signature of its own.
 */
export interface ReleaseClaim {
  record: ReleaseRecord;
  signature: string;
  signer: string;
}

export const RELEASE_CLAIM_HEADER = "x-ota-release";

export function encodeReleaseClaim(c: ReleaseClaim): string {
  const r = c.record;
  const wire = {
    record: {
      ...r,
      version: r.version.toString(),
      fileSize: r.fileSize.toString(),
      dependencies: r.dependencies.map((d) => ({ component: d.component, minVersion: d.minVersion.toString(), maxVersion: d.maxVersion.toString() })),
    },
    signature: c.signature,
    signer: c.signer,
  };
  return Buffer.from(JSON.stringify(wire)).toString("base64url");
}

/** The claim in the header, its record checked by the registry's own rules (normalizeRelease); malformed is an InputError. */
export function decodeReleaseClaim(encoded: string): ReleaseClaim {
  const fail = (what: string): never => {
    throw new InputError("RELEASE_CLAIM_MALFORMED", `${RELEASE_CLAIM_HEADER}: ${what}`);
  };
  let wire: {
    record?: Record<string, unknown> & { dependencies?: unknown; hardware?: unknown };
    signature?: unknown;
    signer?: unknown;
  };
  try {
    wire = JSON.parse(Buffer.from(encoded, "base64url").toString("utf8"));
  } catch {
    return fail("not base64url JSON");
  }
  const r = wire?.record;
  if (!r || typeof r !== "object") return fail("no record");
  if (!isHexString(wire.signature) || (wire.signature as string).length < 4) fail("signature must be hex");
  if (typeof wire.signer !== "string" || !isAddress(wire.signer)) fail("signer must be an address");
  const integer = (v: unknown, name: string): bigint => {
    if (typeof v !== "string" || !/^[0-9]{1,20}$/.test(v)) fail(`${name} must be a decimal string`);
    return BigInt(v as string);
  };
  const bytes32 = (v: unknown, name: string): string => (isHexString(v, 32) ? (v as string) : fail(`${name} must be 32 bytes of hex`));
  const text = (v: unknown, name: string): string => (typeof v === "string" ? v : fail(`${name} must be a string`));
  if (!Array.isArray(r.hardware) || !r.hardware.every((h) => Number.isInteger(h))) fail("hardware must be a list of hardware class ids");
  if (!Array.isArray(r.dependencies)) fail("dependencies must be a list");
  if (!Number.isSafeInteger(r.provider)) fail("provider must be an integer");
  const record: ReleaseRecord = {
    provider: r.provider as number,
    component: bytes32(r.component, "component"),
    version: integer(r.version, "version"),
    fileHash: bytes32(r.fileHash, "fileHash"),
    fileLink: text(r.fileLink, "fileLink"),
    fileName: text(r.fileName, "fileName"),
    fileSize: integer(r.fileSize, "fileSize"),
    merkleRoot: bytes32(r.merkleRoot, "merkleRoot"),
    hardware: r.hardware as number[],
    dependencies: (r.dependencies as { component?: unknown; minVersion?: unknown; maxVersion?: unknown }[]).map((d, i) => ({
      component: bytes32(d?.component, `dependency ${i} component`),
      minVersion: integer(d?.minVersion, `dependency ${i} minVersion`),
      maxVersion: integer(d?.maxVersion, `dependency ${i} maxVersion`),
    })),
  };
  // A record the registry would refuse (or one out of its required order) can never be published.
  const normal = normalizeRelease(record);
  if (
    normal.hardware.join() !== record.hardware.join() ||
    normal.dependencies.map((d) => d.component).join() !== record.dependencies.map((d) => d.component).join()
  )
    fail("hardware and dependencies must be in ascending order, as the registry requires");
  return { record, signature: wire.signature as string, signer: wire.signer as string };
}
