import { shownEndpoint } from "../chain/rpcEndpoint";
import { promises as fs } from "node:fs";
import path from "node:path";
import { Wallet } from "ethers";
import type * as z from "zod";
import { InputError } from "../core/errors";
import { deploymentPath, readDeployment } from "../chain/deployment";
import {
  SETTINGS,
  envLayerSchema,
  fileLayerSchema,
  fromText,
  isSetting,
  rowsOf,
  withServiceDefaults,
  type FileLayer,
  type Resolved,
  type Setting,
  type SettingsTree,
} from "./settings";
import { isPrivateKey, parseIdOrLabel } from "./parse";

/** A configuration that cannot be used; the message names the field and how to fix it. */
export class ConfigError extends InputError {}

export const DEFAULT_CONFIG_FILE = "ota-ledger.json";

const S = SETTINGS;

/**
 * The CLI's configuration: the JSON file, overlaid by OTA_* environment variables, overlaid by
 * command-line options, each setting as its row in the settings table (./settings.ts) says, its
 * type too. Paths are absolute. Chain fields left unset here (no value and no deployment file)
 * are reported by the command that needs them, so that commands that never touch the chain still
 * run. Settings whose default their service applies (defaultApplied: "service") stay unset when
 * no one set them; withServiceDefaults fills them in where the section is handed over.
 *
 * Written here, besides the table: what the resolution derives. The endpoints (rpcUrl is the first
 * of rpcUrls, the quorum a majority), the keys read from key files (keyFile settings are not
 * kept), Kubo's url being required, the tracker's module id as bytes32 and its label, its parent
 * as a pair, and the addresses filled from the deployment file.
 */
export type OtaConfig = Omit<Resolved<typeof S>, "rpcUrls" | "rpcQuorum" | "keyFile" | "storage" | "tracker"> & {
  /** Every endpoint the ledger is read through; with more than one they must agree (agent/chain/endpointQuorum). rpcUrl is the first. */
  rpcUrls: string[];
  /** How many endpoints must give the same answer: more than half of rpcUrls. */
  rpcQuorum: number;
  /** ReleaseDeltas (ADR 0018), from the deployment file's releaseDeltas: with it authors record deltas, the server serves them and devices take them. */
  deltas?: string;
  /** ReleaseBundles (ADR 0019), from the deployment file's releaseBundles: bundles created, mirrored by the tracker and requested. */
  bundles?: string;
  storage: { kind: "embedded"; path: string } | { kind: "kubo"; url: string; timeoutMs: number };
  tracker: TrackerConfig;
  /** Where the values came from, for messages: the config file (if any) and the deployment file looked at. */
  sources: { configFile: string | null; deploymentFile: string; deployedAtBlock?: number };
};

/** The status tracker (ADR 0004): the module `tracker start` runs, and where `fleet status` reaches one. */
export type TrackerConfig = Omit<Resolved<typeof S.tracker>, "keyFile" | "url" | "parent" | "mqtt"> & {
  /** Where the fleet commands reach the tracker: tracker.url, else http://<host>:<port> (127.0.0.1 for a wildcard host). */
  url: string;
  /** The module's id (bytes32) is moduleId; `moduleLabel` is the label it was hashed from, if any. */
  moduleLabel?: string;
  /** The module above this one (an intermediate module); absent for the server module. */
  parent?: { id: string; url: string };
  mqtt?: { url: string; topicPrefix?: string };
};

/**
 * The tracker section as the tracker module takes it (TrackerModuleOptions), for `tracker start`:
 * as resolved, with the defaults the table leaves to the service filled in (livenessMs, anchorMs,
 * ...), and the one option named otherwise there: txDeadlineMs is its ledgerTxDeadlineMs.
 */
export function trackerModuleSettings(t: TrackerConfig) {
  const settings = withServiceDefaults(S.tracker, t);
  return { ...settings, ledgerTxDeadlineMs: settings.txDeadlineMs };
}
export type TrackerModuleSettings = ReturnType<typeof trackerModuleSettings>;

export interface ConfigInputs {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** --config: must exist. Without it, ./ota-ledger.json is read if present. */
  configPath?: string;
  /** --rpc: overrides rpcUrl and rpcUrls (one URL, or several separated by commas). */
  rpcUrl?: string;
}

export async function loadConfig({ cwd, env, configPath, rpcUrl }: ConfigInputs): Promise<OtaConfig> {
  const configFile = await findConfigFile(cwd, configPath);
  const layers = new Layers(checkEnvLayer(env), configFile ? await readFileLayer(configFile) : {}, cwd, configFile);
  let rpcFlag: string[] | undefined;
  if (rpcUrl !== undefined) {
    const parsed = S.rpcUrls.schema.safeParse(fromText(S.rpcUrls, rpcUrl));
    if (!parsed.success) {
      throw new ConfigError("CONFIG_INVALID", `--rpc "${rpcUrl}" must be an http(s) URL such as "http://127.0.0.1:8545", or several separated by commas`);
    }
    rpcFlag = parsed.data;
  }
  const { keyFile: _keyFile, ...resolved } = resolveSection(S, layers) as Resolved<typeof S>;
  void _keyFile; // read by resolveKey: the resolved configuration holds the key, not its file
  const rpc = resolveEndpoints(layers, rpcFlag);
  const config: OtaConfig = {
    ...resolved,
    rpcUrl: rpc.urls[0],
    rpcUrls: rpc.urls,
    rpcQuorum: rpc.quorum,
    privateKey: await resolveKey(layers, S.privateKey, S.keyFile),
    storage: resolveStorage(layers, resolved.storage),
    tracker: await resolveTracker(layers, resolved.tracker),
    sources: { configFile, deploymentFile: deploymentPath(layers.fileDir, resolved.network) },
  };
  await fillFromDeployment(config);
  return config;
}

/** The private key, or an error saying where to set it (only commands that sign need one). */
export function requirePrivateKey(config: OtaConfig): string {
  if (config.privateKey) return config.privateKey;
  const where = config.sources.configFile ?? DEFAULT_CONFIG_FILE;
  throw new ConfigError("PRIVATE_KEY_MISSING", `privateKey is missing: set OTA_PRIVATE_KEY or OTA_KEY_FILE, or privateKey or keyFile in ${where}`);
}

/** This tracker module's id and key, or an error saying where to set the one missing. */
export function requireTrackerModule(config: OtaConfig): { id: string; privateKey: string } {
  const where = config.sources.configFile ?? DEFAULT_CONFIG_FILE;
  const { moduleId, privateKey } = config.tracker;
  if (!moduleId) {
    throw new ConfigError(
      "TRACKER_MODULE_MISSING",
      `tracker.moduleId is missing: set OTA_TRACKER_MODULE, or tracker.moduleId in ${where} ` +
        `(0x followed by 64 hex digits, or a label such as "tracker-eu-1")`,
    );
  }
  if (!privateKey) {
    throw new ConfigError(
      "TRACKER_KEY_MISSING",
      `the tracker module's key is missing: set OTA_TRACKER_KEY_FILE (or OTA_TRACKER_PRIVATE_KEY), or tracker.keyFile ` +
        `(or tracker.privateKey) in ${where}; it is the module's own key, not the administrator's (make one with \`ota-ledger tracker keygen <file>\`)`,
    );
  }
  return { id: moduleId, privateKey };
}

/** The registry and fleet addresses, or an error saying how to get them. */
export function requireContracts(config: OtaConfig): { registry: string; fleet: string } {
  if (config.registry && config.fleet) return { registry: config.registry, fleet: config.fleet };
  const missing = [!config.registry && "registry", !config.fleet && "fleet"].filter(Boolean).join(" and ");
  throw new ConfigError(
    "DEPLOYMENT_MISSING",
    `${missing} address${missing.includes(" and ") ? "es are" : " is"} not set and there is no deployment file at ` +
      `${config.sources.deploymentFile}: run \`npm run deploy:local\` (the local chain) or \`npm run deploy\` (another network; it writes deployments/external.json) or set OTA_REGISTRY and OTA_FLEET`,
  );
}

/** The configuration with the private key replaced by the account it controls: safe to print. */
export function redactConfig(config: OtaConfig, account?: string): Record<string, unknown> {
  const moduleKey = config.tracker.privateKey;
  const shown = hideSecrets(config as unknown as Record<string, unknown>, SETTINGS);
  return {
    ...shown,
    rpcUrl: shownEndpoint(config.rpcUrl), // a path often holds the provider's API key
    rpcUrls: config.rpcUrls.map(shownEndpoint),
    // The module's signer is shown instead of its key.
    tracker: { ...(shown.tracker as Record<string, unknown>), signer: moduleKey ? new Wallet(moduleKey).address : null },
    account: account ?? null,
  };
}

/**
 * The values of a section with every setting the table marks secret shown as set or not (null),
 * never as it is; secrets last, as `config show` has always listed them.
 */
function hideSecrets(values: Record<string, unknown>, tree: SettingsTree): Record<string, unknown> {
  const shown: Record<string, unknown> = {};
  const secrets: Record<string, unknown> = {};
  for (const [key, node] of Object.entries(tree)) if (isSetting(node) && node.secret) secrets[key] = values[key] === undefined ? null : "(set, hidden)";
  for (const [key, value] of Object.entries(values)) {
    if (key in secrets) continue;
    const node = tree[key];
    const section = node !== undefined && !isSetting(node) && value !== null && typeof value === "object" && !Array.isArray(value);
    shown[key] = section ? hideSecrets(value as Record<string, unknown>, node) : value;
  }
  return { ...shown, ...secrets };
}

async function findConfigFile(cwd: string, configPath: string | undefined): Promise<string | null> {
  if (configPath !== undefined) {
    const file = path.resolve(cwd, configPath);
    if (!(await exists(file))) {
      throw new ConfigError("CONFIG_MISSING", `no config file at ${file} (given with --config): check the path, or leave --config out`);
    }
    return file;
  }
  const fallback = path.join(cwd, DEFAULT_CONFIG_FILE);
  return (await exists(fallback)) ? fallback : null;
}

async function readFileLayer(file: string): Promise<FileLayer> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, "utf8"));
  } catch (cause) {
    throw new ConfigError("CONFIG_INVALID", `${file} is not valid JSON (${(cause as Error).message}): fix the file`, { cause });
  }
  const parsed = fileLayerSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = describeIssues(parsed.error.issues, (p) => (p.length === 0 ? "the file" : p.join(".")));
  throw new ConfigError("CONFIG_INVALID", `${file}: ${problems.join("; ")}`, { details: { file, problems } });
}

/** The settings' environment variables, checked; empty values count as unset. */
function checkEnvLayer(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const { row } of rowsOf(S)) {
    const value = row.env === undefined ? undefined : env[row.env]?.trim();
    if (value !== undefined && value !== "") raw[row.env!] = fromText(row, value);
  }
  const parsed = envLayerSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = describeIssues(parsed.error.issues, (p) => String(p[0] ?? "the environment"));
  throw new ConfigError("CONFIG_INVALID", problems.join("; "), { details: { problems } });
}

/** One line per zod issue: "<field> <what is wrong>", `field` naming it as the user wrote it. */
function describeIssues(issues: z.core.$ZodIssue[], field: (path: PropertyKey[]) => string): string[] {
  return issues.map((issue) => {
    if (issue.code === "unrecognized_keys") {
      const prefix = issue.path.length > 0 ? `${issue.path.join(".")}.` : "";
      const names = issue.keys.map((k) => `"${prefix}${k}"`).join(", ");
      return `unknown field${issue.keys.length > 1 ? "s" : ""} ${names}: remove it or fix its spelling`;
    }
    return `${field(issue.path)} ${issue.message}`;
  });
}

const PATHS = new Map(rowsOf(S).map(({ path: p, row }) => [row as Setting, p]));

/** The two checked layers, each setting looked up by its row; relative paths resolved against the layer's folder. */
class Layers {
  readonly fileDir: string;
  constructor(
    private readonly env: Record<string, unknown>,
    private readonly file: FileLayer,
    readonly cwd: string,
    readonly configFile: string | null,
  ) {
    this.fileDir = configFile ? path.dirname(configFile) : cwd;
  }

  fromEnv<R extends Setting>(row: R): z.output<R["schema"]> | undefined {
    return row.env === undefined ? undefined : (this.env[row.env] as z.output<R["schema"]> | undefined);
  }

  fromFile<R extends Setting>(row: R): z.output<R["schema"]> | undefined {
    let at: unknown = this.file;
    for (const key of PATHS.get(row)!.split(".")) at = (at as Record<string, unknown> | undefined)?.[key];
    return at as z.output<R["schema"]> | undefined;
  }

  /** The setting from the environment, else the file, else its default when the configuration applies it; paths absolute. */
  value<R extends Setting>(row: R): z.output<R["schema"]> | undefined {
    const layered: [unknown, string][] = [
      [this.fromEnv(row), this.cwd],
      [this.fromFile(row), this.fileDir],
      [row.defaultApplied === "service" ? undefined : row.default, this.cwd],
    ];
    const [value, dir] = layered.find(([v]) => v !== undefined) ?? [undefined, this.cwd];
    return (row.unit === "path" && typeof value === "string" ? path.resolve(dir, value) : value) as z.output<R["schema"]> | undefined;
  }

  /** " in <config file>", or nothing without one: where a file setting is, for messages. */
  get inFile(): string {
    return this.configFile ? ` in ${this.configFile}` : "";
  }
}

/**
 * A section of the table resolved from the layers: each setting from its row (unset ones left
 * out), sub-sections left out when empty. A section with a kind (storage) takes the kind from
 * the environment, else the kind of a variant's variable set there (OTA_IPFS_URL: kubo), else the
 * file, else the default; the settings of other kinds are left out, and the file's only count
 * when the file names the same kind. The top level keeps its unset settings as keys: `config show`
 * lists each as "(not set)".
 */
function resolveSection(tree: SettingsTree, layers: Layers, top = true): Record<string, unknown> {
  const entries = Object.entries(tree);
  const kindRow = entries.map(([, n]) => n).find((n): n is Setting => isSetting(n) && n.discriminates === true);
  let kind: string | undefined;
  if (kindRow) {
    const impliedByEnv = entries.map(([, n]) => n).find((n): n is Setting => isSetting(n) && n.variant !== undefined && layers.fromEnv(n) !== undefined);
    kind = (layers.fromEnv(kindRow) ?? impliedByEnv?.variant ?? layers.fromFile(kindRow) ?? kindRow.default) as string;
  }
  const out: Record<string, unknown> = {};
  for (const [key, node] of entries) {
    if (!isSetting(node)) {
      const section = resolveSection(node, layers, false);
      if (Object.keys(section).length > 0) out[key] = section;
    } else if (node.discriminates) out[key] = kind;
    else if (node.variant === undefined || node.variant === kind) {
      const value = layers.value(node);
      if (value !== undefined || top) out[key] = value;
    }
  }
  return out;
}

/**
 * The ledger's endpoints, from the first layer that names any: --rpc, then OTA_RPC_URLS or
 * OTA_RPC_URL, then the file's rpcUrls or rpcUrl (one of the two per layer), else the local node;
 * and the quorum (OTA_RPC_QUORUM, rpcQuorum, else a majority). Refused: the same endpoint twice,
 * and a quorum that is not more than half of the endpoints (two halves could then each claim it)
 * or more than there are. Messages show endpoints by origin only: a path may hold an API key.
 */
function resolveEndpoints(layers: Layers, flag: string[] | undefined): { urls: string[]; quorum: number } {
  const { inFile } = layers;
  const [envOne, envMany, fileOne, fileMany] = [layers.fromEnv(S.rpcUrl), layers.fromEnv(S.rpcUrls), layers.fromFile(S.rpcUrl), layers.fromFile(S.rpcUrls)];
  if (envOne !== undefined && envMany !== undefined) {
    throw new ConfigError("CONFIG_INVALID", "both OTA_RPC_URL and OTA_RPC_URLS are set: set one (OTA_RPC_URLS takes several endpoints, separated by commas)");
  }
  if (fileOne !== undefined && fileMany !== undefined) {
    throw new ConfigError("CONFIG_INVALID", `both rpcUrl and rpcUrls are set${inFile}: keep one (rpcUrls takes several endpoints)`);
  }
  const [urls, from]: [string[], string] = flag
    ? [flag, "--rpc"]
    : envMany
      ? [envMany, "OTA_RPC_URLS"]
      : envOne
        ? [[envOne], "OTA_RPC_URL"]
        : fileMany
          ? [fileMany, `rpcUrls${inFile}`]
          : [[fileOne ?? S.rpcUrl.default], `rpcUrl${inFile}`];
  const seen = new Map<string, number>();
  urls.forEach((url, i) => {
    const key = new URL(url).href.replace(/\/$/, ""); // a trailing slash names the same endpoint
    const first = seen.get(key);
    if (first !== undefined) {
      throw new ConfigError(
        "CONFIG_INVALID",
        `${from} names the endpoint ${shownEndpoint(url)} twice (entries ${first + 1} and ${i + 1}): each endpoint counts once toward the quorum; remove one`,
      );
    }
    seen.set(key, i);
  });
  const envQuorum = layers.fromEnv(S.rpcQuorum);
  const quorum = envQuorum ?? layers.fromFile(S.rpcQuorum) ?? Math.floor(urls.length / 2) + 1;
  const quorumFrom = envQuorum !== undefined ? "OTA_RPC_QUORUM" : `rpcQuorum${inFile}`;
  if (quorum > urls.length) {
    throw new ConfigError(
      "CONFIG_INVALID",
      `${quorumFrom} is ${quorum}, more than the ${urls.length} endpoint${urls.length > 1 ? "s" : ""} of ${from}: add endpoints or lower the quorum`,
    );
  }
  if (quorum <= urls.length / 2) {
    throw new ConfigError(
      "CONFIG_INVALID",
      `${quorumFrom} is ${quorum} of ${urls.length} endpoints: it must be more than half of them (at least ${Math.floor(urls.length / 2) + 1}), ` +
        `or two disagreeing halves could each claim it`,
    );
  }
  return { urls, quorum };
}

/**
 * A key given as itself or as a key file, from, in order: the key's variable, the key file's
 * variable, the file's key, the file's key file (privateKey and keyFile; tracker.privateKey and
 * tracker.keyFile).
 */
async function resolveKey(layers: Layers, keyRow: Setting, fileRow: Setting): Promise<string | undefined> {
  const envKey = layers.fromEnv(keyRow) as string | undefined;
  if (envKey) return envKey;
  const envKeyFile = layers.fromEnv(fileRow) as string | undefined;
  if (envKeyFile) return readKeyFile(path.resolve(layers.cwd, envKeyFile), fileRow.env!);
  const fileKey = layers.fromFile(keyRow) as string | undefined;
  if (fileKey) return fileKey;
  const fileKeyFile = layers.fromFile(fileRow) as string | undefined;
  if (fileKeyFile) return readKeyFile(path.resolve(layers.fileDir, fileKeyFile), `${PATHS.get(fileRow)}${layers.inFile}`);
  return undefined;
}

async function readKeyFile(keyFile: string, setBy: string): Promise<string> {
  let text: string;
  try {
    text = await fs.readFile(keyFile, "utf8");
  } catch (cause) {
    throw new ConfigError("KEY_FILE_UNREADABLE", `the key file ${keyFile} (${setBy}) cannot be read (${(cause as NodeJS.ErrnoException).code}): fix the path`, {
      cause,
    });
  }
  const key = text.trim();
  if (!isPrivateKey(key)) {
    throw new ConfigError("KEY_FILE_INVALID", `the key file ${keyFile} (${setBy}) must hold one private key: 0x followed by 64 hex digits`);
  }
  return key;
}

/** The storage section as resolved, Kubo's url required. */
function resolveStorage(layers: Layers, storage: Resolved<typeof S>["storage"]): OtaConfig["storage"] {
  if (storage.kind === "kubo" && storage.url === undefined) {
    const inFile = layers.configFile ? ` or storage.url in ${layers.configFile}` : "";
    throw new ConfigError("CONFIG_INVALID", `storage.url is missing for Kubo storage: set OTA_IPFS_URL${inFile} (e.g. http://127.0.0.1:5001)`);
  }
  return storage as OtaConfig["storage"];
}

/**
 * The tracker section as resolved, and what it derives: the module's key (OTA_TRACKER_PRIVATE_KEY,
 * OTA_TRACKER_KEY_FILE, tracker.privateKey, tracker.keyFile), its id as bytes32 and the label it
 * was hashed from, the parent as a pair (both or neither), the URL from host and port.
 */
async function resolveTracker(layers: Layers, tracker: Resolved<typeof S>["tracker"]): Promise<TrackerConfig> {
  const { keyFile: _keyFile, moduleId: moduleText, parent: parentPart, ...t } = tracker;
  void _keyFile; // read by resolveKey
  const moduleId = moduleText === undefined ? undefined : parseIdOrLabel(moduleText, "tracker.moduleId");
  const privateKey = await resolveKey(layers, S.tracker.privateKey, S.tracker.keyFile);
  let parent: TrackerConfig["parent"];
  if (parentPart !== undefined) {
    if (parentPart.id === undefined || parentPart.url === undefined) {
      const [missing, row] = parentPart.id === undefined ? ["id", S.tracker.parent.id] : ["url", S.tracker.parent.url];
      throw new ConfigError(
        "CONFIG_INVALID",
        `tracker.parent.${missing} is missing: an intermediate module needs both the parent's id and its url; set ${row.env}` +
          ` or tracker.parent.${missing}${layers.inFile}, or drop the parent for a server module`,
      );
    }
    parent = { id: parseIdOrLabel(parentPart.id, "tracker.parent.id"), url: parentPart.url };
    if (parent.id === moduleId) {
      throw new ConfigError("CONFIG_INVALID", `tracker.parent.id is this module's own id ${moduleId}: give the id of the module above it`);
    }
  }
  return {
    ...t,
    url: t.url ?? localUrl(t.host, t.port),
    ...optional("moduleId", moduleId),
    ...optional("moduleLabel", moduleText !== undefined && moduleId !== moduleText.toLowerCase() ? moduleText : undefined),
    ...optional("privateKey", privateKey),
    ...optional("parent", parent),
    mqtt: t.mqtt as TrackerConfig["mqtt"], // its url is required in the file whenever the file gives tracker.mqtt
  };
}

/** The URL a client on this machine reaches a service listening on host:port by. */
function localUrl(host: string, port: number): string {
  const h = host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  return `http://${h}:${port}`;
}

/** Fills chainId, registry and fleet left unset from deployments/<network>.json, if it exists. */
async function fillFromDeployment(config: OtaConfig): Promise<void> {
  if (config.chainId !== undefined && config.registry && config.fleet && config.policies && config.anchors && config.lens && config.deltas && config.bundles)
    return;
  if (!(await exists(config.sources.deploymentFile))) return;
  const deployment = await readDeployment(config.sources.deploymentFile);
  config.chainId ??= deployment.chainId;
  config.registry ??= deployment.updateRegistry;
  config.fleet ??= deployment.fleetRegistry;
  // The deployment's policies go with the deployment's registry only.
  if (config.registry === deployment.updateRegistry) {
    config.policies ??= deployment.updatePolicies;
    config.anchors ??= deployment.statusAnchors;
    config.lens ??= deployment.updateCheckLens;
    config.deltas ??= deployment.releaseDeltas;
    config.bundles ??= deployment.releaseBundles;
  }
  // Event scans may start at the deployment block only if this is the deployed registry.
  if (config.registry === deployment.updateRegistry) config.sources.deployedAtBlock = deployment.deployedAtBlock;
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** `{ [key]: value }`, or nothing when the value is not set (so that unset settings do not show as keys). */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
