import { isHexString } from "ethers";
import { InputError } from "./errors";
import type { InstalledVersion } from "./release";

/**
 * A device's installed components as it sends them, signed, with each request to the firmware
 * server (the x-ota-context header): base64url JSON [{component, version (decimal)}]. The server
 * hands them to the registry's installable check.
 */
export function encodeInstalled(installed: InstalledVersion[]): string {
  return Buffer.from(JSON.stringify(installed.map((i) => ({ component: i.component, version: i.version.toString() })))).toString("base64url");
}

/** The inverse of encodeInstalled; throws InputError (INSTALLED_CONTEXT) on anything else. */
export function decodeInstalled(context: string | undefined): InstalledVersion[] {
  if (!context) return [];
  const fail = (message: string): never => {
    throw new InputError("INSTALLED_CONTEXT", message);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(context, "base64url").toString("utf8"));
  } catch {
    fail("x-ota-context must be base64url JSON of the installed components");
  }
  if (!Array.isArray(parsed) || parsed.length > 64) fail("installed components must be a list of at most 64 entries");
  return (parsed as { component?: unknown; version?: unknown }[]).map((e, i) => {
    if (!isHexString(e?.component, 32)) fail(`installed component ${i} needs a 32-byte component id`);
    if (typeof e.version !== "string" || !/^\d{1,20}$/.test(e.version)) fail(`installed component ${i} needs its encoded version as a decimal string`);
    const version = BigInt(e.version as string);
    if (version >= 2n ** 64n) fail(`installed component ${i}: a version is a uint64`);
    return { component: e.component as string, version };
  });
}
