import { z } from "zod";
import { isAddress } from "ethers";

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
const networkName = z
  .string({ error: 'must be a network name such as "localhost"' })
  .regex(/^[A-Za-z0-9_.-]+$/, {
    error: "must be a network name of letters, digits, '.', '_' or '-' (it names deployments/<network>.json)",
  });
const storageKind = z.enum(["embedded", "kubo"], { error: 'must be "embedded" or "kubo"' });

/** ota-ledger.json: every field optional; unknown fields are refused (they are usually typos). */
export const fileLayerSchema = z.strictObject({
  network: networkName.optional(),
  rpcUrl: httpUrl("http://127.0.0.1:8545").optional(),
  chainId: positiveInt("a chain id").optional(),
  registry: address("UpdateRegistry").optional(),
  fleet: address("FleetRegistry").optional(),
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
    })
    .optional(),
});
export type FileLayer = z.infer<typeof fileLayerSchema>;

/** Environment variables, named as the user sets them; empty values count as unset. */
export const envLayerSchema = z.object({
  OTA_NETWORK: networkName.optional(),
  OTA_RPC_URL: httpUrl("http://127.0.0.1:8545").optional(),
  OTA_CHAIN_ID: positiveInt("a chain id").optional(),
  OTA_REGISTRY: address("UpdateRegistry").optional(),
  OTA_FLEET: address("FleetRegistry").optional(),
  OTA_PRIVATE_KEY: privateKey.optional(),
  OTA_KEY_FILE: path.optional(),
  OTA_SERVER_URL: httpUrl("http://127.0.0.1:8600").optional(),
  OTA_KEYSTORE: path.optional(),
  OTA_STORAGE: storageKind.optional(),
  OTA_IPFS_URL: httpUrl("http://127.0.0.1:5001").optional(),
  OTA_SERVER_HOST: z.string().optional(),
  OTA_SERVER_PORT: port.optional(),
  OTA_SERVER_DATA: path.optional(),
});
export type EnvLayer = z.infer<typeof envLayerSchema>;

const NUMERIC_ENV = new Set(["OTA_CHAIN_ID", "OTA_SERVER_PORT"]);

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
