import { isHexString } from "ethers";
import { InputError } from "./errors";
import { encodeVersion, formatVersion, isValidVersion } from "./version";

/** Hours [startHourUtc, endHourUtc) in UTC; start > end wraps midnight (22 -> 4 is 22:00..03:59). */
export interface UpdateWindow {
  startHourUtc: number;
  endHourUtc: number;
}

/**
 * The device's own choices about which valid updates to take (CAP-11.1-a-vi). They only ever
 * narrow what the ledger allows: no field can make a refused release installable, except
 * `allowVulnerable`, which the owner sets knowingly (e.g. when no fixed release exists yet).
 */
export interface DevicePolicy {
  /** Install only inside this window; absent: at any time. */
  window?: UpdateWindow;
  /** component id (bytes32) -> the only version to install, encoded, as a decimal string. */
  pins?: Record<string, string>;
  /** Update a component only when its installed release is flagged vulnerable or revoked. */
  securityOnly?: boolean;
  /** Take releases flagged vulnerable (default false). */
  allowVulnerable?: boolean;
  /** Refuse to decide on a ledger view whose newest block is older than this, in seconds. */
  maxLedgerAgeSeconds: number;
  /**
   * Refuse to decide on a ledger view more than this many blocks below the newest block the
   * upstream tracker module signed it had read (default DEFAULT_MAX_BLOCKS_BEHIND_UPSTREAM).
   */
  maxBlocksBehindUpstream?: number;
}

/** Blocks a device's view may trail its upstream's signed floor: endpoint lag and a cached head, not a freeze. */
export const DEFAULT_MAX_BLOCKS_BEHIND_UPSTREAM = 16;

/** One hour: long enough for a quiet chain, short enough that a revocation is seen the same day. */
export const DEFAULT_DEVICE_POLICY: Readonly<DevicePolicy> = Object.freeze({ maxLedgerAgeSeconds: 3600 });

const FIELDS = ["window", "pins", "securityOnly", "allowVulnerable", "maxLedgerAgeSeconds", "maxBlocksBehindUpstream"];

/** Validates a parsed policy file; throws InputError (code DEVICE_POLICY_INVALID) naming the field and the fix. */
export function parseDevicePolicy(json: unknown): DevicePolicy {
  if (!isObject(json)) fail("(root)", 'the device policy must be a JSON object, e.g. {"maxLedgerAgeSeconds": 3600}');
  const unknown = Object.keys(json).filter((k) => !FIELDS.includes(k));
  if (unknown.length > 0) fail(unknown[0], `unknown field "${unknown[0]}"; the fields are ${FIELDS.join(", ")}`);

  const policy: DevicePolicy = { maxLedgerAgeSeconds: DEFAULT_DEVICE_POLICY.maxLedgerAgeSeconds };
  if (json.maxLedgerAgeSeconds !== undefined) {
    const v = json.maxLedgerAgeSeconds;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      fail("maxLedgerAgeSeconds", "must be a whole number of seconds above 0 (e.g. 3600); leave it out for the default");
    }
    policy.maxLedgerAgeSeconds = v;
  }
  if (json.maxBlocksBehindUpstream !== undefined) {
    const v = json.maxBlocksBehindUpstream;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      fail("maxBlocksBehindUpstream", `must be a whole number of blocks from 0 (e.g. ${DEFAULT_MAX_BLOCKS_BEHIND_UPSTREAM}); leave it out for the default`);
    }
    policy.maxBlocksBehindUpstream = v;
  }
  for (const flag of ["securityOnly", "allowVulnerable"] as const) {
    const v = json[flag];
    if (v === undefined) continue;
    if (typeof v !== "boolean") fail(flag, "must be true or false");
    policy[flag] = v;
  }
  if (json.window !== undefined) policy.window = parseWindow(json.window);
  if (json.pins !== undefined) policy.pins = parsePins(json.pins);
  return policy;
}

/** Whether the unix time `now` (s) falls inside the window. */
export function isInWindow(window: UpdateWindow, now: number): boolean {
  const hour = Math.floor(now / 3600) % 24;
  const { startHourUtc: start, endHourUtc: end } = window;
  return start < end ? hour >= start && hour < end : hour >= start || hour < end;
}

/** When the window next opens: the first start hour at or after the unix time `now` (s). */
export function nextWindowStart(window: UpdateWindow, now: number): number {
  const today = now - (now % 86400) + window.startHourUtc * 3600;
  return today >= now ? today : today + 86400;
}

function parseWindow(v: unknown): UpdateWindow {
  const how = 'must be {"startHourUtc": H, "endHourUtc": H} with whole hours 0..23, e.g. 22 and 4 for 22:00-04:00 UTC';
  if (!isObject(v)) fail("window", how);
  const extra = Object.keys(v).find((k) => k !== "startHourUtc" && k !== "endHourUtc");
  if (extra !== undefined) fail(`window.${extra}`, `unknown field; the window ${how}`);
  for (const k of ["startHourUtc", "endHourUtc"] as const) {
    const h = v[k];
    if (typeof h !== "number" || !Number.isInteger(h) || h < 0 || h > 23) fail(`window.${k}`, `must be a whole hour 0..23 (got ${JSON.stringify(h)})`);
  }
  const window = { startHourUtc: v.startHourUtc as number, endHourUtc: v.endHourUtc as number };
  if (window.startHourUtc === window.endHourUtc) {
    fail("window", "start and end are equal, which could mean never or always: leave the window out to allow any time");
  }
  return window;
}

function parsePins(v: unknown): Record<string, string> {
  if (!isObject(v)) fail("pins", "must be an object of component id (0x + 64 hex digits) -> encoded version as a decimal string");
  const pins: Record<string, string> = {};
  for (const [component, version] of Object.entries(v)) {
    if (!isHexString(component, 32)) fail(`pins.${component}`, "the key must be a component id: 0x and 64 hex digits (keccak256 of the component name)");
    const example = `e.g. "${encodeVersion("1.2.3")}" for 1.2.3`;
    if (typeof version !== "string" || !/^[1-9]\d*$/.test(version) || !isValidVersion(BigInt(version))) {
      fail(`pins.${component}`, `must be an encoded version as a decimal string, ${example} (got ${JSON.stringify(version)})`);
    }
    const key = component.toLowerCase();
    if (key in pins) fail(`pins.${component}`, `pinned twice (keys differ only in case) to ${formatVersion(BigInt(pins[key]))}`);
    pins[key] = version;
  }
  return pins;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function fail(field: string, message: string): never {
  throw new InputError("DEVICE_POLICY_INVALID", `device policy ${field}: ${message}`, { details: { field } });
}
