// A namespace import lets the device bundle leave out zod's locales and JSON Schema code (ADR 0007).
import * as z from "zod";
import { getAddress, isAddress } from "ethers";
import { PREPARED_DEFAULTS, TRACKER_DEFAULTS } from "../core/serviceDefaults";
import { DEFAULT_TOPIC_PREFIX, MQTT_URL_PATTERN, TOPIC_PREFIX_PATTERN } from "../core/reportTopics";
import { idOrLabelProblem, isPrivateKey, isWholeNumber, labelProblem, parseLabel, wholeNumberOf } from "./parse";

/**
 * The settings table: every setting of ota-ledger.json once, as one row: where it sits in the
 * file (its place in SETTINGS: `tracker.anchorMs`), the environment variable that sets it over
 * the file, its zod schema (the check; its message says what the value must look like), its
 * default, its unit and a one-line description. Derived from it, and written nowhere else:
 * the file's schema (fileSchemaOf), the environment's (envSchemaOf), the types (FileLayer,
 * Resolved, and OtaConfig in config.ts), the resolution of the layers (config.ts: flag > env >
 * file > default) and docs/configuration.md (scripts/configDocs.ts). A new setting is a new row.
 *
 * The checks are those of the command-line arguments (./parse.ts); only the wording differs.
 */

/** A setting's unit, as the docs show it. */
export type Unit = "" | "ms" | "blocks" | "bytes" | "path" | "URL" | "address";

export interface Setting {
  /** The environment variable that sets it, over the file; none: the file only. */
  readonly env?: string;
  /** The check (and, for some, a normalisation such as a checksummed address). */
  readonly schema: z.ZodType;
  /** The value when neither the environment nor the file sets it. */
  readonly default?: unknown;
  /**
   * "service": the default is applied where the section is handed to its service (withServiceDefaults);
   * the resolved configuration (and `config show`) leaves the setting unset when no one set it.
   */
  readonly defaultApplied?: "service";
  /** A default computed from other values or found elsewhere (the deployment file), as the docs say it. */
  readonly derived?: string;
  /** A value for the docs and the table's tests, required when there is no default. */
  readonly example?: unknown;
  readonly unit: Unit;
  readonly description: string;
  /** Required in its section whenever the section is given (tracker.mqtt.url). */
  readonly required?: true;
  /** Its section's kind: the section is one of the variants of this enum (storage.kind). */
  readonly discriminates?: true;
  /** Only in this variant of its section (storage.url: "kubo"). */
  readonly variant?: string;
  /** A secret: `config show` says whether it is set, never its value (redactConfig). */
  readonly secret?: true;
}

export interface SettingsTree {
  readonly [key: string]: Setting | SettingsTree;
}

export function isSetting(node: Setting | SettingsTree): node is Setting {
  return typeof node.description === "string" && (node as Setting).schema instanceof z.ZodType;
}

// ---------------------------------------------------------------- checks, with the configuration's wording

/** A zod number whose one check is `test`, with one message for every failure (not a number either). */
const numberIf = (test: (n: number) => boolean, error: string) => z.number({ error }).refine(test, { error });
/** A zod string whose one check is `test`, with one message for every failure (not a string either). */
const stringIf = (test: (s: string) => boolean, error: string) => z.string({ error }).refine(test, { error });

const httpUrl = (example: string) => z.url({ protocol: /^https?$/, error: `must be an http(s) URL such as "${example}"` });
const httpUrls = (example: string, error: string) => z.array(httpUrl(example), { error });
/** A contract's address, given in any case, checksummed. */
const address = (what: string) =>
  stringIf(isAddress, `must be the ${what} contract's address (0x followed by 40 hex digits)`).transform((a) => getAddress(a.toLowerCase()));
const path = z.string({ error: "must be a path" }).min(1, { error: "must be a non-empty path" });
const positiveInt = (what: string) => numberIf((n) => isWholeNumber(n, 1), `must be ${what} (a positive integer)`);
const port = numberIf((n) => isWholeNumber(n, 1, 65535), "must be a TCP port (1..65535)");
/** Deliberately no echo of the value in any message: this is a secret. */
const privateKey = stringIf(isPrivateKey, "must be a private key: 0x followed by 64 hex digits");
const networkName = z.string({ error: 'must be a network name such as "localhost"' }).regex(/^[A-Za-z0-9_.-]+$/, {
  error: "must be a network name of letters, digits, '.', '_' or '-' (it names deployments/<network>.json)",
});
/** A tracker module id: 0x + 64 hex digits (not zero), or a label hashed with keccak256 (as device ids are); parseIdOrLabel's check. */
const moduleId = stringIf(
  (v) => idOrLabelProblem(v) === undefined,
  'must be a module id: 0x followed by 64 hex digits (not zero), or a label such as "tracker-eu-1" (hashed with keccak256)',
).transform((v) => v.trim());
/** A device network as the ledger labels it, parseLabel's check and its bytes32. */
const networkLabel = stringIf(
  (v) => labelProblem(v) === undefined,
  'must be a network label of at most 31 bytes such as "plant-1", or 0x followed by 64 hex digits',
).transform((v) => parseLabel(v, "tracker.networks"));
/** Deliberately no echo of the value in any message: it is a secret. */
const apiToken = stringIf((v) => /^\S{16,256}$/.test(v), "must be a token of 16 to 256 characters without spaces (e.g. the output of `openssl rand -hex 32`)");
const host = z.string({ error: "must be a host name or IP address" }).min(1, { error: "must be a host name or IP address" });
const milliseconds = positiveInt("a time in milliseconds");
const blockCount = (min: number) => numberIf((n) => isWholeNumber(n, min), `must be a number of blocks (a whole number from ${min})`);
const RPC_LIST_FORM = 'must be a list of http(s) URLs of JSON-RPC endpoints of one chain, such as ["https://rpc-1.example.org", "https://rpc-2.example.org"]';
const mqttUrl = stringIf((v) => MQTT_URL_PATTERN.test(v), 'must be an MQTT broker URL such as "mqtt://127.0.0.1:1883" (or mqtts:// for TLS)');
const topicPrefix = stringIf(
  (v) => TOPIC_PREFIX_PATTERN.test(v),
  'must be a topic prefix of one to four levels of letters, digits, ".", "_" or "-", such as "ota" or "plant-1/ota"',
);

const FROM_DEPLOYMENT = "from `deployments/<network>.json`";
const EXAMPLE_ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

// ---------------------------------------------------------------- the table

export const SETTINGS = {
  network: {
    env: "OTA_NETWORK",
    schema: networkName,
    default: "localhost",
    unit: "",
    description: "the deployment in use: its addresses come from `deployments/<network>.json` in the config file's folder (else the working folder)",
  },
  rpcUrl: {
    env: "OTA_RPC_URL",
    schema: httpUrl("http://127.0.0.1:8545"),
    default: "http://127.0.0.1:8545",
    unit: "URL",
    description: "the chain's JSON-RPC endpoint (or rpcUrls; one of the two per layer; --rpc overrides both)",
  },
  rpcUrls: {
    env: "OTA_RPC_URLS",
    schema: httpUrls("http://127.0.0.1:8545", RPC_LIST_FORM).min(1, { error: RPC_LIST_FORM }),
    example: ["https://rpc-1.example.org", "https://rpc-2.example.org", "https://rpc-3.example.org"],
    unit: "URL",
    description:
      "several endpoints of one chain (comma-separated in the environment and --rpc): every read must agree across rpcQuorum of them; each counts once",
  },
  rpcQuorum: {
    env: "OTA_RPC_QUORUM",
    schema: positiveInt("a number of endpoints that must agree"),
    derived: "a majority of the endpoints",
    example: 2,
    unit: "",
    description: "how many endpoints must give the same answer: more than half of them, at most all (one endpoint: reads go straight to it)",
  },
  chainId: {
    env: "OTA_CHAIN_ID",
    schema: positiveInt("a chain id"),
    derived: FROM_DEPLOYMENT,
    example: 11155111,
    unit: "",
    description: "the chain the endpoints must serve (checked at start)",
  },
  registry: {
    env: "OTA_REGISTRY",
    schema: address("UpdateRegistry"),
    derived: FROM_DEPLOYMENT,
    example: EXAMPLE_ADDRESS,
    unit: "address",
    description: "UpdateRegistry",
  },
  fleet: {
    env: "OTA_FLEET",
    schema: address("FleetRegistry"),
    derived: FROM_DEPLOYMENT,
    example: EXAMPLE_ADDRESS,
    unit: "address",
    description: "FleetRegistry",
  },
  policies: {
    env: "OTA_POLICIES",
    schema: address("UpdatePolicies"),
    derived: FROM_DEPLOYMENT,
    example: EXAMPLE_ADDRESS,
    unit: "address",
    description: "UpdatePolicies, where administrators attach update policies (without it, the registry's installable check alone)",
  },
  anchors: {
    env: "OTA_ANCHORS",
    schema: address("StatusAnchors"),
    derived: FROM_DEPLOYMENT,
    example: EXAMPLE_ADDRESS,
    unit: "address",
    description: "StatusAnchors, where trackers anchor the fleet's status (without it, nothing is anchored)",
  },
  lens: {
    env: "OTA_LENS",
    schema: address("UpdateCheckLens"),
    derived: FROM_DEPLOYMENT,
    example: EXAMPLE_ADDRESS,
    unit: "address",
    description: "a deployed UpdateCheckLens: ledger reads call it with the query alone instead of sending its creation code",
  },
  privateKey: {
    env: "OTA_PRIVATE_KEY",
    schema: privateKey,
    secret: true,
    example: "0x" + "ab".repeat(32),
    unit: "",
    description: "the account's key, needed only to send or sign; order: OTA_PRIVATE_KEY, OTA_KEY_FILE, privateKey, keyFile; never printed",
  },
  keyFile: {
    env: "OTA_KEY_FILE",
    schema: path,
    example: "/etc/ota-ledger/keys/admin.key",
    unit: "path",
    description: "a file holding the account's key (one line: 0x and 64 hex digits), instead of privateKey",
  },
  serverUrl: {
    env: "OTA_SERVER_URL",
    schema: httpUrl("http://127.0.0.1:8600"),
    default: "http://127.0.0.1:8600",
    unit: "URL",
    description: "where the CLI and devices reach the firmware server",
  },
  keystoreDir: {
    env: "OTA_KEYSTORE",
    schema: path,
    default: "./.ota-ledger/keys",
    unit: "path",
    description: "the author's content keys (mode 0600)",
  },
  storage: {
    kind: {
      env: "OTA_STORAGE",
      schema: z.enum(["embedded", "kubo"], { error: 'must be "embedded" or "kubo"' }),
      discriminates: true,
      default: "embedded",
      unit: "",
      description: "the firmware server's artifact store: an embedded IPFS node, or a Kubo node (OTA_IPFS_URL alone means kubo)",
    },
    path: {
      schema: path,
      variant: "embedded",
      default: "./.ota-ledger/ipfs",
      unit: "path",
      description: "the embedded node's folder",
    },
    url: {
      env: "OTA_IPFS_URL",
      schema: httpUrl("http://127.0.0.1:5001"),
      variant: "kubo",
      example: "http://127.0.0.1:5001",
      unit: "URL",
      description: "the Kubo node's RPC API; required",
    },
    timeoutMs: {
      schema: milliseconds,
      variant: "kubo",
      default: 30_000,
      unit: "ms",
      description: "how long a request to the Kubo node may take",
    },
  },
  server: {
    host: { env: "OTA_SERVER_HOST", schema: host, default: "127.0.0.1", unit: "", description: "where the firmware server listens" },
    port: { env: "OTA_SERVER_PORT", schema: port, default: 8600, unit: "", description: "its TCP port" },
    dataDir: { env: "OTA_SERVER_DATA", schema: path, default: "./.ota-ledger/server", unit: "path", description: "its database and logs" },
    publicUrl: {
      env: "OTA_SERVER_PUBLIC_URL",
      schema: httpUrl("https://firmware.example.com"),
      derived: "the listening URL",
      example: "https://firmware.example.com",
      unit: "URL",
      description: "the URL devices and authors use behind a reverse proxy (they sign their requests for its origin)",
    },
    prepared: {
      ttlMs: {
        schema: milliseconds,
        default: PREPARED_DEFAULTS.ttlMs,
        defaultApplied: "service",
        unit: "ms",
        description: "an artifact submitted for a release not yet published is removed after this long unless the release is published",
      },
      maxPerProvider: {
        schema: positiveInt("a number of artifacts"),
        default: PREPARED_DEFAULTS.maxPerProvider,
        defaultApplied: "service",
        unit: "",
        description: "at most so many such artifacts per provider",
      },
      maxBytesPerProvider: {
        schema: positiveInt("a number of bytes"),
        default: PREPARED_DEFAULTS.maxBytesPerProvider,
        defaultApplied: "service",
        unit: "bytes",
        description: "and at most so many bytes of them per provider",
      },
    },
  },
  tracker: {
    host: { env: "OTA_TRACKER_HOST", schema: host, default: "127.0.0.1", unit: "", description: "where the status tracker listens" },
    port: { env: "OTA_TRACKER_PORT", schema: port, default: 8700, unit: "", description: "its TCP port" },
    dataDir: { env: "OTA_TRACKER_DATA", schema: path, default: "./.ota-ledger/tracker", unit: "path", description: "its fleet database and ledger checkpoint" },
    url: {
      env: "OTA_TRACKER_URL",
      schema: httpUrl("http://127.0.0.1:8700"),
      derived: "`http://<tracker.host>:<tracker.port>` (127.0.0.1 for a wildcard host)",
      example: "http://10.0.0.7:8700",
      unit: "URL",
      description: "where the fleet commands reach the tracker (--tracker overrides it)",
    },
    publicUrl: {
      schema: httpUrl("https://tracker.example.com"),
      derived: "the listening URL",
      example: "https://tracker.example.com",
      unit: "URL",
      description: "the origin administrators sign update requests for, when the tracker sits behind a proxy",
    },
    moduleId: {
      env: "OTA_TRACKER_MODULE",
      schema: moduleId,
      example: "tracker-eu-1",
      unit: "",
      description: "the module's id on the ledger: 0x + 64 hex digits, or a label hashed with keccak256 (as device ids are)",
    },
    privateKey: {
      env: "OTA_TRACKER_PRIVATE_KEY",
      schema: privateKey,
      secret: true,
      example: "0x" + "cd".repeat(32),
      unit: "",
      description: "the module's own key (not the administrator's), needed by tracker register and start; never printed",
    },
    keyFile: {
      env: "OTA_TRACKER_KEY_FILE",
      schema: path,
      example: "/etc/ota-ledger/tracker.key",
      unit: "path",
      description: "a file holding the module's key (`ota-ledger tracker keygen <file>` makes one), instead of tracker.privateKey",
    },
    parent: {
      id: {
        env: "OTA_TRACKER_PARENT_ID",
        schema: moduleId,
        example: "tracker-hq",
        unit: "",
        description: "an intermediate module: the id of the module above it (with tracker.parent.url; none: a server module)",
      },
      url: {
        env: "OTA_TRACKER_PARENT_URL",
        schema: httpUrl("http://10.0.0.1:8700"),
        example: "http://10.0.0.1:8700",
        unit: "URL",
        description: "where the module above it listens",
      },
    },
    networks: {
      schema: z.array(networkLabel, { error: 'must be a list of network labels such as ["plant-1"]' }),
      default: [],
      unit: "",
      description: "the device networks the module serves (labels of up to 31 bytes, or bytes32), reported upstream",
    },
    apiToken: {
      env: "OTA_TRACKER_TOKEN",
      schema: apiToken,
      secret: true,
      example: "5d41402abc4b2a76b9719d911017c592",
      unit: "",
      description: "the bearer token of the read API and dashboard, 16 to 256 characters (none: open, warned about unless on a loopback host)",
    },
    livenessMs: {
      schema: milliseconds,
      default: TRACKER_DEFAULTS.livenessMs,
      defaultApplied: "service",
      unit: "ms",
      description: "a device not heard from for this long is unreachable",
    },
    renoticeMs: {
      schema: milliseconds,
      default: TRACKER_DEFAULTS.renoticeMs,
      defaultApplied: "service",
      unit: "ms",
      description: "a notice not acted on is handed out again after this long",
    },
    upstreamMs: {
      schema: milliseconds,
      default: TRACKER_DEFAULTS.upstreamMs,
      defaultApplied: "service",
      unit: "ms",
      description: "how often an intermediate module posts upstream",
    },
    adoptionSampleMs: {
      schema: milliseconds,
      default: TRACKER_DEFAULTS.adoptionSampleMs,
      defaultApplied: "service",
      unit: "ms",
      description: "how often the adoption of releases is sampled",
    },
    pollMs: { schema: milliseconds, default: TRACKER_DEFAULTS.pollMs, defaultApplied: "service", unit: "ms", description: "how often the ledger is polled" },
    anchorMs: {
      schema: numberIf((n) => isWholeNumber(n, 0), "must be a time in milliseconds (a whole number from 0; 0 turns anchoring off)"),
      default: TRACKER_DEFAULTS.anchorMs,
      defaultApplied: "service",
      unit: "ms",
      description: "how often the server module anchors the fleet's status on StatusAnchors (0: never); sent with privateKey, which needs TRACKER_ROLE",
    },
    failureReportMs: {
      schema: milliseconds,
      default: TRACKER_DEFAULTS.failureReportMs,
      defaultApplied: "service",
      unit: "ms",
      description: "how often, at most, the server module posts failure totals to staged rollouts (with privateKey)",
    },
    firmwareServers: {
      schema: httpUrls("http://127.0.0.1:8600", 'must be a list of firmware server URLs such as ["http://127.0.0.1:8600"]'),
      default: [],
      unit: "URL",
      description: "firmware servers whose download logs the module reads (liveness, what each device fetched); its key needs TRACKER_ROLE",
    },
    downloadLogMs: {
      schema: milliseconds,
      default: TRACKER_DEFAULTS.downloadLogMs,
      defaultApplied: "service",
      unit: "ms",
      description: "how often those download logs are read",
    },
    confirmations: {
      schema: blockCount(0),
      default: TRACKER_DEFAULTS.confirmations,
      defaultApplied: "service",
      unit: "blocks",
      description: "how deep a block must be before its events are mirrored",
    },
    reorgWindow: {
      schema: blockCount(1),
      default: TRACKER_DEFAULTS.reorgWindow,
      defaultApplied: "service",
      unit: "blocks",
      description: "recent blocks remembered to undo a reorganisation; a deeper one halts the mirror (REORG_TOO_DEEP, `tracker resync`)",
    },
    txDeadlineMs: {
      schema: milliseconds,
      default: TRACKER_DEFAULTS.ledgerTxDeadlineMs,
      defaultApplied: "service",
      unit: "ms",
      description: "how long a failure-total or anchor transaction may wait to be mined before it is cancelled",
    },
    mqtt: {
      url: {
        env: "OTA_TRACKER_MQTT_URL",
        schema: mqttUrl,
        required: true,
        example: "mqtt://127.0.0.1:1883",
        unit: "URL",
        description: "devices' reports over this MQTT broker too, beside HTTP (`tracker mqtt-config` writes the broker's logins and ACL)",
      },
      topicPrefix: {
        schema: topicPrefix,
        default: DEFAULT_TOPIC_PREFIX,
        defaultApplied: "service",
        unit: "",
        description: "the first levels of the topics: `<prefix>/<module>/<device>/reports`",
      },
    },
  },
} as const satisfies SettingsTree;

// ---------------------------------------------------------------- rows, schemas, text

/** Every row with its dotted path in the file, in the table's order. */
export function rowsOf(tree: SettingsTree, prefix = ""): { path: string; row: Setting }[] {
  return Object.entries(tree).flatMap(([key, node]) => (isSetting(node) ? [{ path: prefix + key, row: node }] : rowsOf(node, `${prefix}${key}.`)));
}

/**
 * The file's schema: every setting optional (those `required` once their section is given),
 * unknown fields refused (they are usually typos), a section with a `discriminates` row one of
 * its variants.
 */
export function fileSchemaOf(tree: SettingsTree): z.ZodType {
  const entries = Object.entries(tree);
  const kind = entries.find(([, node]) => isSetting(node) && node.discriminates);
  const shapeOf = (variant: string | undefined) => {
    const shape: Record<string, z.ZodType> = {};
    for (const [key, node] of entries) {
      if (!isSetting(node)) shape[key] = fileSchemaOf(node).optional();
      else if (node.discriminates) shape[key] = z.literal(variant!);
      else if (node.variant === undefined || node.variant === variant) shape[key] = node.required ? node.schema : node.schema.optional();
    }
    return shape;
  };
  if (kind === undefined) return z.strictObject(shapeOf(undefined));
  const [kindKey, kindRow] = kind as [string, Setting];
  const variants = (kindRow.schema as z.ZodEnum).options as string[];
  const describe = (v: string) =>
    `{ ${[`"${kindKey}": "${v}"`, ...entries.filter(([k, n]) => k !== kindKey && (!isSetting(n) || n.variant === undefined || n.variant === v)).map(([k]) => `"${k}"?: ...`)].join(", ")} }`;
  return z.discriminatedUnion(kindKey, variants.map((v) => z.strictObject(shapeOf(v))) as unknown as [z.ZodObject, ...z.ZodObject[]], {
    error: `must be ${variants.map(describe).join(" or ")}`,
  });
}

/** The environment's schema: each row's variable, optional; other variables are ignored. */
export function envSchemaOf(tree: SettingsTree): z.ZodObject {
  return z.object(Object.fromEntries(rowsOf(tree).flatMap(({ row }) => (row.env ? [[row.env, row.schema.optional()]] : []))));
}

/**
 * A setting given as text (an environment variable, a command-line option) as its schema takes
 * it: digits as a number, a comma-separated list as a list; anything else is left for the schema
 * to refuse with its message.
 */
export function fromText(row: Setting, text: string): unknown {
  switch (row.schema.def.type) {
    case "number":
      return wholeNumberOf(text) ?? text;
    case "array":
      return text
        .split(",")
        .map((u) => u.trim())
        .filter((u) => u !== "");
    default:
      return text;
  }
}

export const fileLayerSchema = fileSchemaOf(SETTINGS) as z.ZodType<FileLayer>;
export const envLayerSchema = envSchemaOf(SETTINGS);

// ---------------------------------------------------------------- types

type Expand<T> = T extends object ? { [K in keyof T]: T[K] } : T;
type Out<R> = R extends { schema: infer S extends z.ZodType } ? z.output<S> : never;
/** Whether the resolved configuration always holds the setting: it has a default, applied when the configuration is loaded. */
type Present<R> = R extends { defaultApplied: "service" } ? false : R extends { default: unknown } ? true : false;
type HasPresent<T> = true extends { [K in keyof T]: T[K] extends Setting ? Present<T[K]> : HasPresent<T[K]> }[keyof T] ? true : false;
type Always<T, K extends keyof T> = T[K] extends Setting ? Present<T[K]> : HasPresent<T[K]>;

/** A section of the resolved configuration as the table makes it: settings always there are required, the others optional. */
export type Resolved<T> = Expand<
  { -readonly [K in keyof T as Always<T, K> extends true ? K : never]: T[K] extends Setting ? Out<T[K]> : Resolved<T[K]> } & {
    -readonly [K in keyof T as Always<T, K> extends true ? never : K]?: T[K] extends Setting ? Out<T[K]> : Resolved<T[K]>;
  }
>;

/** A section once its service's defaults are filled in too (withServiceDefaults): every setting with a default is there. */
export type WithServiceDefaults<T> = Expand<
  { -readonly [K in keyof T as Defaulted<T[K]> extends true ? K : never]: Out<T[K]> } & {
    -readonly [K in keyof T as Defaulted<T[K]> extends true ? never : K]?: T[K] extends Setting ? Out<T[K]> : WithServiceDefaults<T[K]>;
  }
>;
type Defaulted<R> = R extends Setting ? (R extends { default: unknown } ? true : false) : false;

/** ota-ledger.json as checked (every field optional). */
export type FileLayer = FileOf<typeof SETTINGS>;
type FileOf<T> = Expand<{ -readonly [K in keyof T]?: T[K] extends Setting ? Out<T[K]> : FileOf<T[K]> }>;

/**
 * `section` with the defaults its service applies (rows with `defaultApplied: "service"`) filled
 * in where unset, from the table: what `tracker start` hands the tracker. Sub-sections are filled
 * only when given (tracker.mqtt.topicPrefix when tracker.mqtt is).
 */
export function withServiceDefaults<T extends SettingsTree, V extends object>(tree: T, section: V): V & WithServiceDefaults<T> {
  const filled: Record<string, unknown> = { ...(section as Record<string, unknown>) };
  for (const [key, node] of Object.entries(tree)) {
    if (isSetting(node)) {
      if (node.defaultApplied === "service" && filled[key] === undefined) filled[key] = node.default;
    } else if (filled[key] !== undefined && typeof filled[key] === "object") filled[key] = withServiceDefaults(node, filled[key] as object);
  }
  return filled as V & WithServiceDefaults<T>;
}
