import { keccak256, toUtf8Bytes, isHexString } from "ethers";
import { ReleaseRecordError } from "./errors";
import { isValidVersion, parseRange } from "./version";

/** A software dependency as recorded: `component` at a version in [minVersion, maxVersion). */
export interface Dependency {
  component: string; // bytes32 component id
  minVersion: bigint;
  maxVersion: bigint;
}

/**
 * The author-signed part of a Table II-1 record (contracts/interfaces/UpdateRegistryTypes.sol,
 * struct Release). The registry adds the release time and the provider's name.
 */
export interface ReleaseRecord {
  provider: number;
  component: string; // bytes32: keccak256 of the component name
  version: bigint;
  fileHash: string; // bytes32: SHA-256 of the plaintext image
  fileLink: string; // IPFS CID of the stored (encrypted) artifact
  fileName: string;
  fileSize: bigint;
  merkleRoot: string; // bytes32: root over the stored artifact's chunks
  hardware: number[]; // hardware class ids, strictly ascending
  dependencies: Dependency[]; // strictly ascending by component id
}

/** A component installed on a device, as the registry's installable check takes it. */
export interface InstalledVersion {
  component: string; // bytes32 component id
  version: bigint; // encoded version
}

/** Registry limits (contracts/registry/Releases.sol). */
export const RELEASE_LIMITS = {
  maxHardware: 32,
  maxDependencies: 16,
  maxFileLinkLength: 128,
  maxFileNameLength: 255,
} as const;

/** The id of a component: keccak256 of its UTF-8 name, as the registry computes it. */
export function componentId(name: string): string {
  return keccak256(toUtf8Bytes(name));
}

/** A component named by its id (0x + 64 hex digits, kept, lower-cased) or by its name (hashed as componentId). */
export function componentIdOf(nameOrId: string): string {
  return /^0x[0-9a-fA-F]{64}$/.test(nameOrId) ? nameOrId.toLowerCase() : componentId(nameOrId);
}

/** A dependency on the component `component` (its id) in an npm-like `range` ("^1.2.0", ...). */
export function dependsOn(component: string, range: string): Dependency {
  const { min, max } = parseRange(range);
  return { component, minVersion: min, maxVersion: max };
}

/**
 * Puts hardware and dependencies in the order the registry requires (strictly ascending) and
 * checks every rule the registry checks without reading the chain, so that a bad record is
 * refused before a transaction is paid for. Returns a new record.
 */
export function normalizeRelease(record: ReleaseRecord): ReleaseRecord {
  const fail = (code: string, message: string): never => {
    throw new ReleaseRecordError(code, message, { details: { component: record.component } });
  };
  const hardware = [...record.hardware].sort((a, b) => a - b);
  const dependencies = [...record.dependencies].sort((a, b) => compareHex(a.component, b.component));
  if (!isValidVersion(record.version)) fail("VERSION", `version 0x${record.version.toString(16)} is not a valid encoding`);
  if (!isBytes32(record.fileHash) || BigInt(record.fileHash) === 0n) fail("FILE_HASH", "file hash must be a non-zero 32-byte SHA-256");
  if (!isBytes32(record.merkleRoot) || BigInt(record.merkleRoot) === 0n) fail("MERKLE_ROOT", "Merkle root must be non-zero 32 bytes");
  if (record.fileSize <= 0n) fail("FILE_SIZE", "file size must be above 0");
  const linkLength = toUtf8Bytes(record.fileLink).length;
  if (linkLength === 0 || linkLength > RELEASE_LIMITS.maxFileLinkLength) {
    fail("FILE_LINK", `file link must be 1..${RELEASE_LIMITS.maxFileLinkLength} bytes (got ${linkLength})`);
  }
  const nameLength = toUtf8Bytes(record.fileName).length;
  if (nameLength === 0 || nameLength > RELEASE_LIMITS.maxFileNameLength) {
    fail("FILE_NAME", `file name must be 1..${RELEASE_LIMITS.maxFileNameLength} bytes (got ${nameLength})`);
  }
  if (hardware.length === 0) fail("HARDWARE", "a release must support at least one hardware class");
  if (hardware.length > RELEASE_LIMITS.maxHardware) fail("HARDWARE", `at most ${RELEASE_LIMITS.maxHardware} hardware classes`);
  hardware.forEach((hw, i) => {
    if (!Number.isInteger(hw) || hw < 1 || hw > 0xffff) fail("HARDWARE", `hardware class id ${hw} is not in 1..65535`);
    if (i > 0 && hw === hardware[i - 1]) fail("HARDWARE", `hardware class ${hw} is listed twice`);
  });
  if (dependencies.length > RELEASE_LIMITS.maxDependencies) {
    fail("DEPENDENCIES", `at most ${RELEASE_LIMITS.maxDependencies} dependencies`);
  }
  dependencies.forEach((dep, i) => {
    if (dep.component.toLowerCase() === record.component.toLowerCase()) fail("DEPENDENCIES", "a component cannot depend on itself");
    if (i > 0 && compareHex(dep.component, dependencies[i - 1].component) === 0) {
      fail("DEPENDENCIES", `component ${dep.component} is listed twice as a dependency`);
    }
    if (dep.minVersion >= dep.maxVersion) fail("DEPENDENCIES", `dependency on ${dep.component} has an empty range`);
  });
  return { ...record, hardware, dependencies };
}

function isBytes32(value: string): boolean {
  return isHexString(value, 32);
}

function compareHex(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
