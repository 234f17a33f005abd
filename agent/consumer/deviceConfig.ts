import { promises as fs } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { InputError } from "../core/errors";
import { componentId } from "../core/release";
import { parseDevicePolicy, type DevicePolicy } from "../core/devicePolicy";
import { decodeDeviceCredential, type DeviceCredential } from "../crypto/deviceCredential";
import { commandHealthCheck, type HealthCheck } from "./slots/healthCheck";

/**
 * device.json: one device's identity and choices, for `ota-ledger device run`. The chain, the
 * firmware server and the tracker come from the usual ota-ledger configuration.
 *
 *   { "privateKey" | "keyFile", "credential": { record, batchId, proof }, "components": ["acme.bootloader"],
 *     "dataDir": "./device-data", "policy": { "maxLedgerAgeSeconds": 3600, ... },
 *     "healthCheck": { "command": ["./selftest.sh"], "timeoutMs": 30000 } | "pass",
 *     "tracker"?: { "moduleId", "publicKey", "url", "heartbeatMs"? },
 *     "followLedger"?: false }   (false: only a client module, for a constrained device; needs a tracker)
 */
const schema = z.strictObject({
  privateKey: z.string().regex(/^0x[0-9a-fA-F]{64}$/, { error: "must be 0x followed by 64 hex digits" }).optional(),
  keyFile: z.string().min(1).optional(),
  credential: z.unknown(),
  components: z.array(z.string().min(1), { error: "must list the component names this device runs" }).min(1),
  dataDir: z.string().min(1),
  policy: z.unknown().optional(),
  healthCheck: z.union([z.literal("pass"), z.strictObject({ command: z.array(z.string()).min(1), timeoutMs: z.number().int().positive().optional() })]),
  // heartbeatMs: how often the device reports to its tracker (default 60 s, see DeviceRunner).
  tracker: z.strictObject({ moduleId: z.string(), publicKey: z.string(), url: z.string(), heartbeatMs: z.number().int().min(100).optional() }).optional(),
  followLedger: z.boolean().optional(),
});

export interface DeviceConfig {
  privateKey: string;
  credential: DeviceCredential;
  components: string[]; // ids
  dataDir: string;
  policy: DevicePolicy;
  healthCheck: HealthCheck;
  tracker?: { moduleId: string; publicKey: string; url: string; heartbeatMs?: number };
  /** false: the device keeps only a client module (DEP-8.1-b) and learns of releases from its tracker. */
  followLedger: boolean;
}

export async function loadDeviceConfig(file: string): Promise<DeviceConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, "utf8"));
  } catch (cause) {
    throw new InputError("DEVICE_CONFIG", `cannot read ${file} as JSON: give the device's configuration file (see docs/device.md)`, { cause });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InputError("DEVICE_CONFIG", `${file}: ${issue.path.join(".") || "(top)"} ${issue.message}`);
  }
  const c = parsed.data;
  if (c.followLedger === false && !c.tracker) {
    throw new InputError("DEVICE_CONFIG", `${file}: followLedger is false but no tracker is given: a device that does not follow the ledger learns of releases only from its tracker`);
  }
  const base = path.dirname(path.resolve(file));
  let privateKey = c.privateKey;
  if (!privateKey && c.keyFile) privateKey = (await fs.readFile(path.resolve(base, c.keyFile), "utf8")).trim();
  if (!privateKey || !/^0x[0-9a-fA-F]{64}$/.test(privateKey)) throw new InputError("DEVICE_CONFIG", `${file}: give the device key as privateKey or keyFile (0x + 64 hex digits)`);
  let credential: DeviceCredential;
  try {
    credential = decodeDeviceCredential(Buffer.from(JSON.stringify(c.credential)).toString("base64url"));
  } catch (err) {
    throw new InputError("DEVICE_CONFIG", `${file}: credential: ${(err as Error).message}`);
  }
  return {
    privateKey,
    credential,
    components: c.components.map((n) => (/^0x[0-9a-fA-F]{64}$/.test(n) ? n.toLowerCase() : componentId(n))),
    dataDir: path.resolve(base, c.dataDir),
    policy: parseDevicePolicy(c.policy ?? {}),
    healthCheck: c.healthCheck === "pass" ? async () => true : commandHealthCheck(c.healthCheck.command, c.healthCheck.timeoutMs ?? 30_000),
    tracker: c.tracker,
    followLedger: c.followLedger ?? true,
  };
}
