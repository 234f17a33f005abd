// A namespace import lets the device bundle leave out zod's locales and JSON Schema code (ADR 0007).
import * as z from "zod";
import { isAddress, toUtf8Bytes } from "ethers";
import { MQTT_URL_PATTERN, TOPIC_PREFIX_PATTERN } from "../core/reportTopics";

/**
 * The two layers a configuration is read from, each checked with zod before anything uses it:
 * the JSON file (field names) and the environment (OTA_* names). Every message says what the
 * value must look like; config.ts adds where it came from.
 */

const httpUrl = (example: string) => z.url({ protocol: /^https?$/, error: `must be an http(s) URL such as "${example}"` });
const address = (what: string) =>
  z.string({ error: `must be the ${what} contract's address (0x followed by 40 hex digits)` }).refine(isAddress, {
    error: `must be the ${what} contract's address (0x followed by 40 hex digits)`,
  });
const path = z.string({ error: "must be a path" }).min(1, { error: "must be a non-empty path" });
const positiveInt = (what: string) =>
  z
    .number({ error: `must be ${what} (a positive integer)` })
    .int({ error: `must be ${what} (a positive integer)` })
    .positive({
      error: `must be ${what} (a positive integer)`,
    });
const port = z
  .number({ error: "must be a TCP port (1..65535)" })
  .int({ error: "must be a TCP port (1..65535)" })
  .min(1, {
    error: "must be a TCP port (1..65535)",
  })
  .max(65535, { error: "must be a TCP port (1..65535)" });
/** Deliberately no echo of the value in any message: this may be a secret. */
const privateKey = z
  .string({ error: "must be a private key: 0x followed by 64 hex digits" })
  .regex(/^0x[0-9a-fA-F]{64}$/, { error: "must be a private key: 0x followed by 64 hex digits" });
const networkName = z.string({ error: 'must be a network name such as "localhost"' }).regex(/^[A-Za-z0-9_.-]+$/, {
  error: "must be a network name of letters, digits, '.', '_' or '-' (it names deployments/<network>.json)",
});
/** A tracker module id: 0x + 64 hex digits (not zero), or a label hashed with keccak256 (as device ids are). */
const MODULE_ID_FORM = 'must be a module id: 0x followed by 64 hex digits (not zero), or a label such as "tracker-eu-1" (hashed with keccak256)';
const moduleId = z
  .string({ error: MODULE_ID_FORM })
  .trim()
  .refine((v) => v !== "" && (!/^0x[0-9a-fA-F]*$/.test(v) || (/^0x[0-9a-fA-F]{64}$/.test(v) && BigInt(v) !== 0n)), { error: MODULE_ID_FORM });
/** A device network as the ledger labels it: up to 31 bytes of UTF-8, or its bytes32 hex. */
const NETWORK_FORM = 'must be a network label of at most 31 bytes such as "plant-1", or 0x followed by 64 hex digits';
const networkLabel = z
  .string({ error: NETWORK_FORM })
  .trim()
  .refine((v) => /^0x[0-9a-fA-F]{64}$/.test(v) || (v !== "" && !/^0x[0-9a-fA-F]*$/.test(v) && toUtf8Bytes(v).length <= 31), { error: NETWORK_FORM });
/** Deliberately no echo of the value in any message: it is a secret. */
const TOKEN_FORM = "must be a token of 16 to 256 characters without spaces (e.g. the output of `openssl rand -hex 32`)";
const apiToken = z.string({ error: TOKEN_FORM }).regex(/^\S{16,256}$/, { error: TOKEN_FORM });
const host = z.string({ error: "must be a host name or IP address" }).min(1, { error: "must be a host name or IP address" });
const milliseconds = positiveInt("a time in milliseconds");
/** A number of blocks, from `min`. */
const blockCount = (min: number) => {
  const error = `must be a number of blocks (a whole number from ${min})`;
  return z.number({ error }).int({ error }).min(min, { error });
};
const RPC_LIST_FORM = 'must be a list of http(s) URLs of JSON-RPC endpoints of one chain, such as ["https://rpc-1.example.org", "https://rpc-2.example.org"]';
const rpcList = z.array(httpUrl("http://127.0.0.1:8545"), { error: RPC_LIST_FORM }).min(1, { error: RPC_LIST_FORM });
/** Comma-separated endpoints (OTA_RPC_URLS, --rpc): each one checked as a URL. */
export const rpcListText = z
  .string()
  .transform((v) =>
    v
      .split(",")
      .map((u) => u.trim())
      .filter((u) => u !== ""),
  )
  .pipe(rpcList);
const rpcQuorum = positiveInt("a number of endpoints that must agree");
/** An MQTT broker's URL (ADR 0015): mqtt:// or mqtts:// (TLS), a host and a port. */
const MQTT_URL_FORM = 'must be an MQTT broker URL such as "mqtt://127.0.0.1:1883" (or mqtts:// for TLS)';
export const mqttUrl = z.string({ error: MQTT_URL_FORM }).regex(MQTT_URL_PATTERN, { error: MQTT_URL_FORM });
const TOPIC_PREFIX_FORM = 'must be a topic prefix of one to four levels of letters, digits, ".", "_" or "-", such as "ota" or "plant-1/ota"';
export const topicPrefix = z.string({ error: TOPIC_PREFIX_FORM }).regex(TOPIC_PREFIX_PATTERN, { error: TOPIC_PREFIX_FORM });
const storageKind = z.enum(["embedded", "kubo"], { error: 'must be "embedded" or "kubo"' });

/** ota-ledger.json: every field optional; unknown fields are refused (they are usually typos). */
export const fileLayerSchema = z.strictObject({
  network: networkName.optional(),
  rpcUrl: httpUrl("http://127.0.0.1:8545").optional(),
  /** Several endpoints of the chain that must agree (agent/chain/endpointQuorum); instead of rpcUrl. */
  rpcUrls: rpcList.optional(),
  /** How many of them must give the same answer (default a majority). */
  rpcQuorum: rpcQuorum.optional(),
  chainId: positiveInt("a chain id").optional(),
  registry: address("UpdateRegistry").optional(),
  fleet: address("FleetRegistry").optional(),
  policies: address("UpdatePolicies").optional(),
  anchors: address("StatusAnchors").optional(),
  lens: address("UpdateCheckLens").optional(),
  privateKey: privateKey.optional(),
  keyFile: path.optional(),
  serverUrl: httpUrl("http://127.0.0.1:8600").optional(),
  keystoreDir: path.optional(),
  storage: z
    .discriminatedUnion(
      "kind",
      [
        z.strictObject({ kind: z.literal("embedded"), path: path.optional() }),
        z.strictObject({
          kind: z.literal("kubo"),
          url: httpUrl("http://127.0.0.1:5001").optional(),
          timeoutMs: positiveInt("a time in milliseconds").optional(),
        }),
      ],
      { error: 'must be { "kind": "embedded", "path"?: ... } or { "kind": "kubo", "url": ..., "timeoutMs"?: ... }' },
    )
    .optional(),
  server: z
    .strictObject({
      host: z.string().min(1, { error: "must be a host name or IP address" }).optional(),
      port: port.optional(),
      dataDir: path.optional(),
      // The origin devices reach the server at behind a reverse proxy (they sign requests for it).
      publicUrl: httpUrl("https://firmware.example.com").optional(),
      /** Artifacts of releases not yet published (issue 17): lifetime and per-provider limits (agent/server/preparedRelease.ts). */
      prepared: z
        .strictObject({
          ttlMs: milliseconds.optional(),
          maxPerProvider: positiveInt("a number of artifacts").optional(),
          maxBytesPerProvider: positiveInt("a number of bytes").optional(),
        })
        .optional(),
    })
    .optional(),
  tracker: z
    .strictObject({
      host: host.optional(),
      port: port.optional(),
      dataDir: path.optional(),
      /** Where `fleet status` and `fleet list` reach the tracker (default: http://<host>:<port>). */
      url: httpUrl("http://127.0.0.1:8700").optional(),
      /** The origin administrators sign update requests for, when the tracker sits behind a proxy. */
      publicUrl: httpUrl("https://tracker.example.com").optional(),
      moduleId: moduleId.optional(),
      privateKey: privateKey.optional(),
      keyFile: path.optional(),
      parent: z.strictObject({ id: moduleId.optional(), url: httpUrl("http://10.0.0.1:8700").optional() }).optional(),
      networks: z.array(networkLabel, { error: 'must be a list of network labels such as ["plant-1"]' }).optional(),
      apiToken: apiToken.optional(),
      livenessMs: milliseconds.optional(),
      renoticeMs: milliseconds.optional(),
      upstreamMs: milliseconds.optional(),
      adoptionSampleMs: milliseconds.optional(),
      pollMs: milliseconds.optional(),
      /** How often a server module anchors the fleet's status on StatusAnchors; 0 never (default 1 h). */
      anchorMs: z
        .number({ error: "must be a time in milliseconds (a whole number from 0; 0 turns anchoring off)" })
        .int({ error: "must be a time in milliseconds (a whole number from 0; 0 turns anchoring off)" })
        .min(0, { error: "must be a time in milliseconds (a whole number from 0; 0 turns anchoring off)" })
        .optional(),
      /** How often, at most, a server module posts failure totals to staged rollouts (default 30 s). */
      failureReportMs: milliseconds.optional(),
      /** Firmware servers whose download logs the module reads (liveness, what each device fetched); its key needs TRACKER_ROLE. */
      firmwareServers: z
        .array(httpUrl("http://127.0.0.1:8600"), { error: 'must be a list of firmware server URLs such as ["http://127.0.0.1:8600"]' })
        .optional(),
      /** How often those logs are read (default 60 s). */
      downloadLogMs: milliseconds.optional(),
      confirmations: blockCount(0).optional(),
      /** Recent blocks remembered to undo a reorganisation (default 64); a deeper one halts the mirror until `tracker resync`. */
      reorgWindow: blockCount(1).optional(),
      /** How long a ledger-duty transaction may wait to be mined before it is cancelled (default 180 s). */
      txDeadlineMs: milliseconds.optional(),
      /** Devices' reports over an MQTT broker too, beside HTTP (ADR 0015). */
      mqtt: z.strictObject({ url: mqttUrl, topicPrefix: topicPrefix.optional() }).optional(),
    })
    .optional(),
});
export type FileLayer = z.infer<typeof fileLayerSchema>;

/** Environment variables, named as the user sets them; empty values count as unset. */
export const envLayerSchema = z.object({
  OTA_NETWORK: networkName.optional(),
  OTA_RPC_URL: httpUrl("http://127.0.0.1:8545").optional(),
  OTA_RPC_URLS: rpcListText.optional(),
  OTA_RPC_QUORUM: rpcQuorum.optional(),
  OTA_CHAIN_ID: positiveInt("a chain id").optional(),
  OTA_REGISTRY: address("UpdateRegistry").optional(),
  OTA_FLEET: address("FleetRegistry").optional(),
  OTA_POLICIES: address("UpdatePolicies").optional(),
  OTA_ANCHORS: address("StatusAnchors").optional(),
  OTA_LENS: address("UpdateCheckLens").optional(),
  OTA_PRIVATE_KEY: privateKey.optional(),
  OTA_KEY_FILE: path.optional(),
  OTA_SERVER_URL: httpUrl("http://127.0.0.1:8600").optional(),
  OTA_KEYSTORE: path.optional(),
  OTA_STORAGE: storageKind.optional(),
  OTA_IPFS_URL: httpUrl("http://127.0.0.1:5001").optional(),
  OTA_SERVER_HOST: z.string().optional(),
  OTA_SERVER_PORT: port.optional(),
  OTA_SERVER_DATA: path.optional(),
  OTA_SERVER_PUBLIC_URL: httpUrl("https://firmware.example.com").optional(),
  OTA_TRACKER_HOST: host.optional(),
  OTA_TRACKER_PORT: port.optional(),
  OTA_TRACKER_DATA: path.optional(),
  OTA_TRACKER_URL: httpUrl("http://127.0.0.1:8700").optional(),
  OTA_TRACKER_MODULE: moduleId.optional(),
  OTA_TRACKER_PRIVATE_KEY: privateKey.optional(),
  OTA_TRACKER_KEY_FILE: path.optional(),
  OTA_TRACKER_PARENT_ID: moduleId.optional(),
  OTA_TRACKER_PARENT_URL: httpUrl("http://10.0.0.1:8700").optional(),
  OTA_TRACKER_TOKEN: apiToken.optional(),
  OTA_TRACKER_MQTT_URL: mqttUrl.optional(),
});
export type EnvLayer = z.infer<typeof envLayerSchema>;

const NUMERIC_ENV = new Set(["OTA_CHAIN_ID", "OTA_SERVER_PORT", "OTA_TRACKER_PORT", "OTA_RPC_QUORUM"]);

/** The OTA_* variables of `env` as typed values (numbers parsed; "" dropped), before checking. */
export function rawEnvLayer(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const name of Object.keys(envLayerSchema.shape)) {
    const value = env[name]?.trim();
    if (value === undefined || value === "") continue;
    raw[name] = NUMERIC_ENV.has(name) ? (/^\d+$/.test(value) ? Number(value) : value) : value;
  }
  return raw;
}

/** One line per zod issue: "<field> <what is wrong>", `field` naming it as the user wrote it. */
export function describeIssues(issues: z.core.$ZodIssue[], field: (path: PropertyKey[]) => string): string[] {
  return issues.map((issue) => {
    if (issue.code === "unrecognized_keys") {
      const prefix = issue.path.length > 0 ? `${issue.path.join(".")}.` : "";
      const names = issue.keys.map((k) => `"${prefix}${k}"`).join(", ");
      return `unknown field${issue.keys.length > 1 ? "s" : ""} ${names}: remove it or fix its spelling`;
    }
    return `${field(issue.path)} ${issue.message}`;
  });
}
