import { constants as fsConstants, promises as fs } from "node:fs";
import path from "node:path";
import { SigningKey } from "ethers";
// A namespace import lets the device bundle leave out zod's locales and JSON Schema code (ADR 0007).
import * as z from "zod";
import { InputError } from "../core/errors";
import { componentIdOf } from "../core/release";
import { encodeVersion } from "../core/version";
import { parseDevicePolicy, type DevicePolicy } from "../core/devicePolicy";
import { decodeDeviceCredential, type DeviceCredential } from "../crypto/deviceCredential";
import { commandHealthCheck, type HealthCheck } from "./slots/healthCheck";
import { MAX_START_JITTER_MS, type DeliverySource } from "./deliverySources";
import { LEDGER_PROOFS_SETTINGS, type LedgerProofsSetting } from "../chain/ledgerProofs";
import { MQTT_URL_PATTERN, TOPIC_PREFIX_PATTERN } from "../core/reportTopics";
import type { TrackerSetting } from "./reportTransport";
import { DEFAULT_OFFLINE_MAX_BLOCK_AGE_S, MAX_OFFLINE_MAX_BLOCK_AGE_S } from "./offlineVerify";

/**
 * device.json: one device's identity and choices, for `ota-ledger device run`. The chain, the
 * firmware server and the tracker come from the usual ota-ledger configuration.
 *
 *   { "privateKey" | "keyFile", "credential": { record, batchId, proof }, "components": ["acme.bootloader"],
 *     "dataDir": "./device-data", "policy": { "maxLedgerAgeSeconds": 3600, "pins": { "acme.bootloader": "1.2.0" }, ... },
 *     "healthCheck": { "command": ["./selftest.sh"], "timeoutMs": 30000 } | "pass",   (run in this file's folder)
 *     "tracker"?: { "moduleId", "publicKey", "url"?, "heartbeatMs"?, "transport"?: { "kind": "http" } | { "kind": "mqtt", "url": "mqtt://…", "topicPrefix"? } },
 *     "sources"?: [{ "kind": "server" | "gateway", "url" }],   (where releases come from, in order: REQ-10f-ii)
 *     "retryMs"?: 10000,   (how often what is pending is tried again; a blocked delivery backs off from it up to 60 times it)
 *     "followLedger"?: false,   (false: only a client module, for a constrained device; needs a tracker)
 *     "ledgerProofs"?: "auto" | "on" | "off",   (the facts acted on proven with eth_getProof; default "auto": docs/adr/0010)
 *     "startJitterMs"?: 2000,   (a new release's download starts after a delay drawn from [0, startJitterMs]; 0: at once)
 *     "pinnedSigners"?: ["0x..."],   (only releases signed by these keys are taken, whatever the ledger registers)
 *     "offline"?: { "maxBlockAgeSeconds"?: 604800, "trustedBlocks"?: [{ "number", "hash" }] } }   (offline installs: ADR 0017)
 */
const schema = z.strictObject({
  privateKey: z
    .string()
    .regex(/^0x[0-9a-fA-F]{64}$/, { error: "must be 0x followed by 64 hex digits" })
    .optional(),
  keyFile: z.string().min(1).optional(),
  credential: z.unknown(),
  components: z.array(z.string().min(1), { error: "must list the component names this device runs" }).min(1),
  dataDir: z.string().min(1),
  policy: z.unknown().optional(),
  healthCheck: z.union([z.literal("pass"), z.strictObject({ command: z.array(z.string()).min(1), timeoutMs: z.number().int().positive().optional() })]),
  // heartbeatMs: how often the device reports to its tracker (default 60 s, see DeviceRunner).
  // transport: how reports and notices travel (ADR 0015): HTTP to url (the default), or an MQTT broker.
  tracker: z
    .strictObject({
      moduleId: z.string(),
      publicKey: z.string(),
      url: z.string().optional(),
      heartbeatMs: z.number().int().min(100).optional(),
      transport: z
        .discriminatedUnion(
          "kind",
          [
            z.strictObject({ kind: z.literal("http") }),
            z.strictObject({
              kind: z.literal("mqtt"),
              url: z.string().regex(MQTT_URL_PATTERN, { error: 'must be the MQTT broker\'s URL such as "mqtt://127.0.0.1:1883" (or mqtts:// for TLS)' }),
              topicPrefix: z
                .string()
                .regex(TOPIC_PREFIX_PATTERN, { error: 'must be a topic prefix of one to four levels of letters, digits, ".", "_" or "-", such as "ota"' })
                .optional(),
            }),
          ],
          { error: 'must be {"kind": "http"} (reports to tracker.url, the default) or {"kind": "mqtt", "url": "mqtt://<broker>:1883"}' },
        )
        .optional(),
    })
    .optional(),
  followLedger: z.boolean().optional(),
  // How often releases still needed are tried again (default 10 s, see DeviceRunner); a blocked delivery backs off from it.
  retryMs: z.number().int().min(100, { error: "must be at least 100 (ms)" }).max(86_400_000, { error: "must be at most a day (86400000 ms)" }).optional(),
  // Firmware servers and IPFS trustless gateways, in the order to try them (REQ-10f-ii).
  sources: z
    .array(
      z.strictObject({
        kind: z.enum(["server", "gateway"], { error: 'must be "server" (a firmware server) or "gateway" (an IPFS trustless gateway)' }),
        url: z.string().regex(/^https?:\/\/[^\s/]+(\/\S*)?$/, { error: "must be an http(s) URL such as http://127.0.0.1:8600" }),
      }),
      { error: 'must list sources such as [{"kind": "server", "url": "http://127.0.0.1:8600"}]' },
    )
    .min(1)
    .max(16)
    .optional(),
  // Whether the release status, provider bar and device standing are proven with eth_getProof (docs/adr/0010).
  ledgerProofs: z
    .enum(LEDGER_PROOFS_SETTINGS, {
      error: 'must be "auto" (proofs where the endpoint answers eth_getProof), "on" (required) or "off"',
    })
    .optional(),
  // A download starts after a delay drawn uniformly from [0, startJitterMs] (default 2,000 ms), so
  // that a fleet learning of a release at once does not reach its server in the same millisecond.
  startJitterMs: z
    .number()
    .int()
    .min(0, { error: "must be 0 (no delay) or more (ms)" })
    .max(MAX_START_JITTER_MS, { error: `must be at most ${MAX_START_JITTER_MS} ms (10 minutes)` })
    .optional(),
  // Signing keys the device takes releases from, whatever the registry says (a compromised
  // administrator or a lying endpoint cannot add a signer): absent, every registered key counts.
  pinnedSigners: z
    .array(z.string().regex(/^0x[0-9a-fA-F]{40}$/, { error: "must be an address: 0x followed by 40 hex digits" }), {
      error: 'must list signer addresses such as ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]',
    })
    .min(1, { error: "must list at least one signer address (leave it out to take every registered key)" })
    .max(64)
    .optional(),
  // Delta updates (ADR 0018): taken when the deployment has ReleaseDeltas, unless false.
  deltas: z
    .boolean({
      error: "must be true (take a release's delta from the running image when the ledger records one, the default) or false (always the whole image)",
    })
    .optional(),
  // Offline installs (ADR 0017): how old the bundle's block may be, and blocks trusted besides those the device learned online.
  offline: z
    .strictObject({
      maxBlockAgeSeconds: z
        .number()
        .int()
        .min(60, { error: "must be at least 60 (s)" })
        .max(MAX_OFFLINE_MAX_BLOCK_AGE_S, { error: `must be at most ${MAX_OFFLINE_MAX_BLOCK_AGE_S} s (90 days)` })
        .optional(),
      trustedBlocks: z
        .array(
          z.strictObject({
            number: z.number().int().min(0),
            hash: z.string().regex(/^0x[0-9a-fA-F]{64}$/, { error: "must be a block hash: 0x followed by 64 hex digits" }),
          }),
        )
        .max(64)
        .optional(),
    })
    .optional(),
});

export interface DeviceConfig {
  privateKey: string;
  credential: DeviceCredential;
  components: string[]; // ids
  dataDir: string;
  policy: DevicePolicy;
  healthCheck: HealthCheck;
  /** Its tracker module; `transport` says how reports travel (absent: HTTP to `url`; ADR 0015). */
  tracker?: TrackerSetting & { heartbeatMs?: number };
  /** false: the device keeps only a client module (DEP-8.1-b) and learns of releases from its tracker. */
  followLedger: boolean;
  /** Where releases come from, in order, as device.json lists them (none: the configuration's serverUrl alone). */
  sources?: DeliverySource[];
  /** How often releases still needed are tried again (ms); a blocked delivery backs off from it up to 60 times it. */
  retryMs?: number;
  /** Whether the facts the device acts on are proven with eth_getProof: "auto" (default), "on" (required), "off". */
  ledgerProofs: LedgerProofsSetting;
  /** Only releases signed by these keys are taken (absent: every key the registry registers for the provider). */
  pinnedSigners?: string[];
  /** The longest delay before a download starts (ms; absent: DEFAULT_START_JITTER_MS, 2 s; 0: none). */
  startJitterMs?: number;
  /** Whether the device takes releases' deltas (ADR 0018) when the deployment has ReleaseDeltas (device.json `deltas`, default true). */
  deltas: boolean;
  /** Offline installs (ADR 0017): the largest age of a bundle's block, and blocks trusted besides those learned online. */
  offline: { maxBlockAgeSeconds: number; trustedBlocks: { number: number; hash: string }[] };
}

/**
 * The sources a device fetches from, in order: device.json's `sources`, and the configuration's
 * `serverUrl` after them when they name no firmware server (a gateway has no keys). Without
 * `sources`, `serverUrl` alone: one source, as before.
 */
export function deliverySourcesOf(config: Pick<DeviceConfig, "sources">, serverUrl: string): DeliverySource[] {
  const listed = config.sources ?? [];
  return listed.some((s) => s.kind === "server") ? listed : [...listed, { kind: "server", url: serverUrl }];
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
  if (c.tracker && c.tracker.transport?.kind !== "mqtt" && c.tracker.url === undefined) {
    throw new InputError(
      "DEVICE_CONFIG",
      `${file}: tracker.url is missing: reports go to the tracker's URL over HTTP, unless tracker.transport is {"kind": "mqtt", "url": "mqtt://<broker>:1883"}`,
    );
  }
  if (c.followLedger === false && !c.tracker) {
    throw new InputError(
      "DEVICE_CONFIG",
      `${file}: followLedger is false but no tracker is given: a device that does not follow the ledger learns of releases only from its tracker`,
    );
  }
  const base = path.dirname(path.resolve(file));
  let privateKey = c.privateKey;
  if (!privateKey && c.keyFile) {
    const keyFile = path.resolve(base, c.keyFile);
    try {
      privateKey = (await fs.readFile(keyFile, "utf8")).trim();
    } catch (cause) {
      throw new InputError(
        "DEVICE_CONFIG",
        `${file}: keyFile ${keyFile} cannot be read (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}): fix the path (relative to ${base})`,
        { cause },
      );
    }
  }
  if (!privateKey || !/^0x[0-9a-fA-F]{64}$/.test(privateKey))
    throw new InputError("DEVICE_CONFIG", `${file}: give the device key as privateKey or keyFile (0x + 64 hex digits)`);
  let credential: DeviceCredential;
  try {
    credential = decodeDeviceCredential(Buffer.from(JSON.stringify(c.credential)).toString("base64url"));
  } catch (err) {
    throw new InputError("DEVICE_CONFIG", `${file}: credential: ${(err as Error).message}`);
  }
  // The server and the tracker check signatures against the enrolled key: a mismatch would make every request fail.
  const ownKey = new SigningKey(privateKey).compressedPublicKey;
  if (ownKey.toLowerCase() !== credential.record.publicKey.toLowerCase()) {
    throw new InputError(
      "DEVICE_CONFIG",
      `${file}: the device key's public key is ${ownKey}, but credential.record.publicKey is ${credential.record.publicKey}: use the key the device was enrolled with`,
    );
  }
  return {
    privateKey,
    credential,
    components: c.components.map(componentIdOf),
    dataDir: path.resolve(base, c.dataDir),
    policy: parseDevicePolicy(withPinsEncoded(file, c.policy ?? {})),
    healthCheck: c.healthCheck === "pass" ? async () => true : await healthCheckOf(file, base, c.healthCheck),
    tracker: c.tracker,
    followLedger: c.followLedger ?? true,
    ...(c.sources ? { sources: c.sources } : {}),
    ...(c.retryMs !== undefined ? { retryMs: c.retryMs } : {}),
    ledgerProofs: c.ledgerProofs ?? "auto",
    ...(c.pinnedSigners ? { pinnedSigners: c.pinnedSigners.map((s) => s.toLowerCase()) } : {}),
    ...(c.startJitterMs !== undefined ? { startJitterMs: c.startJitterMs } : {}),
    deltas: c.deltas ?? true,
    offline: {
      maxBlockAgeSeconds: c.offline?.maxBlockAgeSeconds ?? DEFAULT_OFFLINE_MAX_BLOCK_AGE_S,
      trustedBlocks: (c.offline?.trustedBlocks ?? []).map((b) => ({ number: b.number, hash: b.hash.toLowerCase() })),
    },
  };
}

/**
 * The health-check command runs in device.json's folder, so that "./selftest.sh" means the script
 * beside the file. A command given as a path must be an executable file; a bare name (sh) is
 * looked up in PATH when it runs.
 */
async function healthCheckOf(file: string, base: string, h: { command: string[]; timeoutMs?: number }): Promise<HealthCheck> {
  const program = h.command[0];
  if (program.includes("/")) {
    const resolved = path.resolve(base, program);
    try {
      await fs.access(resolved, fsConstants.X_OK);
    } catch {
      throw new InputError(
        "DEVICE_CONFIG",
        `${file}: healthCheck.command[0] ${resolved} is not an executable file (relative paths start from ${base}): fix the path or chmod +x it`,
      );
    }
  }
  return commandHealthCheck(h.command, h.timeoutMs ?? 30_000, { cwd: base });
}

/**
 * policy.pins as a person writes them, {"acme.bootloader": "1.2.0"}, turned into what the device
 * policy holds: component ids and encoded versions. Ids and encoded versions pass unchanged.
 */
function withPinsEncoded(file: string, policy: unknown): unknown {
  if (typeof policy !== "object" || policy === null || Array.isArray(policy)) return policy;
  const pins = (policy as { pins?: unknown }).pins;
  if (typeof pins !== "object" || pins === null || Array.isArray(pins)) return policy;
  const encoded: Record<string, unknown> = {};
  for (const [component, version] of Object.entries(pins)) {
    const id = componentIdOf(component);
    let value = version;
    if (typeof version === "string" && version.includes(".")) {
      try {
        value = encodeVersion(version).toString();
      } catch (err) {
        throw new InputError("DEVICE_CONFIG", `${file}: policy.pins.${component}: ${(err as Error).message}`);
      }
    }
    encoded[id] = value;
  }
  return { ...policy, pins: encoded };
}
