import { shownEndpoint } from "../chain/rpcEndpoint";
import { promises as fs } from "node:fs";
import path from "node:path";
import { Wallet, getAddress } from "ethers";
import { InputError } from "../core/errors";
import { deploymentPath, readDeployment } from "../chain/deployment";
import { describeIssues, envLayerSchema, fileLayerSchema, rawEnvLayer, rpcListText, type EnvLayer, type FileLayer } from "./configSchema";
import { parseIdOrLabel, parseLabel } from "./parse";

/** A configuration that cannot be used; the message names the field and how to fix it. */
export class ConfigError extends InputError {}

export const DEFAULT_CONFIG_FILE = "ota-ledger.json";

/**
 * The CLI's configuration: the JSON file, overlaid by OTA_* environment variables, overlaid by
 * command-line options. Paths are absolute. Chain fields left unset here (no value and no
 * deployment file) are reported by the command that needs them, so that commands that never
 * touch the chain still run.
 */
export interface OtaConfig {
  network: string;
  /** The chain's JSON-RPC endpoint: the first of rpcUrls. */
  rpcUrl: string;
  /** Every endpoint the ledger is read through; with more than one they must agree (agent/chain/endpointQuorum). */
  rpcUrls: string[];
  /** How many endpoints must give the same answer: more than half of rpcUrls (default a majority). */
  rpcQuorum: number;
  /** The chain the RPC must serve; from the deployment file when not set. Unchecked if unknown. */
  chainId?: number;
  registry?: string;
  fleet?: string;
  /** UpdatePolicies, where administrators attach update policies (optional: without it, the registry's check alone). */
  policies?: string;
  /** StatusAnchors, where trackers anchor the fleet's status (optional). */
  anchors?: string;
  /** A deployed UpdateCheckLens (optional: without it, each ledger read sends the lens's creation code). */
  lens?: string;
  /** ReleaseDeltas (ADR 0018), from the deployment file's releaseDeltas: with it authors record deltas, the server serves them and devices take them. */
  deltas?: string;
  /** ReleaseBundles (ADR 0019), from the deployment file's releaseBundles: bundles created, mirrored by the tracker and requested. */
  bundles?: string;
  /** 0x + 64 hex digits, from privateKey or keyFile. Never print it: see redactConfig. */
  privateKey?: string;
  serverUrl: string;
  keystoreDir: string;
  storage: { kind: "embedded"; path: string } | { kind: "kubo"; url: string; timeoutMs: number };
  /** publicUrl: the URL devices use behind a reverse proxy (they sign for its origin); default the listening URL. */
  /** prepared: limits on artifacts of releases not yet published (PREPARED_LIMITS by default). */
  server: {
    host: string;
    port: number;
    dataDir: string;
    publicUrl?: string;
    prepared?: { ttlMs?: number; maxPerProvider?: number; maxBytesPerProvider?: number };
  };
  tracker: TrackerConfig;
  /** Where the values came from, for messages: the config file (if any) and the deployment file looked at. */
  sources: { configFile: string | null; deploymentFile: string; deployedAtBlock?: number };
}

/** The status tracker (ADR 0004): the module `tracker start` runs, and where `fleet status` reaches one. */
export interface TrackerConfig {
  host: string;
  port: number;
  dataDir: string;
  /** Where the fleet commands reach the tracker: tracker.url, else http://<host>:<port> (127.0.0.1 for a wildcard host). */
  url: string;
  /** The origin administrators sign update requests for (default: the listening URL's). */
  publicUrl?: string;
  /** The module's id on the ledger (bytes32); `moduleLabel` is the label it was hashed from, if any. */
  moduleId?: string;
  moduleLabel?: string;
  /** The module's own key (0x + 64 hex digits), not the administrator's. Never print it: see redactConfig. */
  privateKey?: string;
  /** The module above this one (an intermediate module); absent for the server module. */
  parent?: { id: string; url: string };
  /** The device networks this module serves (bytes32), reported upstream. */
  networks: string[];
  /** The bearer token of the read API and dashboard. A secret: see redactConfig. */
  apiToken?: string;
  livenessMs?: number;
  renoticeMs?: number;
  upstreamMs?: number;
  adoptionSampleMs?: number;
  pollMs?: number;
  /** How often the server module anchors the fleet's status (ms; 0: never; default 1 h). */
  anchorMs?: number;
  /** How often, at most, the server module posts failure totals to staged rollouts (ms; default 30 s). */
  failureReportMs?: number;
  /** Firmware servers whose download logs the module reads; how often (ms; default 60 s). */
  firmwareServers: string[];
  downloadLogMs?: number;
  confirmations?: number;
  /** Recent blocks remembered for reorganisations (default 64); a deeper one halts the mirror (REORG_TOO_DEEP). */
  reorgWindow?: number;
  /** How long a ledger-duty transaction may wait to be mined before it is cancelled (ms; default 180 s). */
  txDeadlineMs?: number;
  /** Devices' reports over an MQTT broker too, beside HTTP (ADR 0015): the broker and the topics' prefix (default "ota"). */
  mqtt?: { url: string; topicPrefix?: string };
}

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
  const file = configFile ? await readFileLayer(configFile) : {};
  const envLayer = checkEnvLayer(env);
  const rpcFlag = rpcUrl === undefined ? undefined : rpcListText.safeParse(rpcUrl);
  if (rpcFlag && !rpcFlag.success) {
    throw new ConfigError("CONFIG_INVALID", `--rpc "${rpcUrl}" must be an http(s) URL such as "http://127.0.0.1:8545", or several separated by commas`);
  }
  const fileDir = configFile ? path.dirname(configFile) : cwd;
  // A path keeps the folder of the layer it came from: the file's folder, or cwd for env and defaults.
  const fromFile = (p: string | undefined) => (p === undefined ? undefined : path.resolve(fileDir, p));
  const fromCwd = (p: string) => path.resolve(cwd, p);

  const network = envLayer.OTA_NETWORK ?? file.network ?? "localhost";
  const deploymentFile = deploymentPath(fileDir, network);
  const rpc = resolveEndpoints(envLayer, file, rpcFlag?.data, configFile);
  const config: OtaConfig = {
    network,
    rpcUrl: rpc.urls[0],
    rpcUrls: rpc.urls,
    rpcQuorum: rpc.quorum,
    chainId: envLayer.OTA_CHAIN_ID ?? file.chainId,
    registry: checksummed(envLayer.OTA_REGISTRY ?? file.registry),
    fleet: checksummed(envLayer.OTA_FLEET ?? file.fleet),
    policies: checksummed(envLayer.OTA_POLICIES ?? file.policies),
    anchors: checksummed(envLayer.OTA_ANCHORS ?? file.anchors),
    lens: checksummed(envLayer.OTA_LENS ?? file.lens),
    privateKey: await resolvePrivateKey(envLayer, file, fromFile, fromCwd, configFile),
    serverUrl: envLayer.OTA_SERVER_URL ?? file.serverUrl ?? "http://127.0.0.1:8600",
    keystoreDir: envLayer.OTA_KEYSTORE ? fromCwd(envLayer.OTA_KEYSTORE) : (fromFile(file.keystoreDir) ?? fromCwd("./.ota-ledger/keys")),
    storage: resolveStorage(envLayer, file, fromFile, fromCwd, configFile),
    server: {
      host: envLayer.OTA_SERVER_HOST ?? file.server?.host ?? "127.0.0.1",
      port: envLayer.OTA_SERVER_PORT ?? file.server?.port ?? 8600,
      dataDir: envLayer.OTA_SERVER_DATA ? fromCwd(envLayer.OTA_SERVER_DATA) : (fromFile(file.server?.dataDir) ?? fromCwd("./.ota-ledger/server")),
      ...optional("publicUrl", envLayer.OTA_SERVER_PUBLIC_URL ?? file.server?.publicUrl),
      ...optional("prepared", file.server?.prepared),
    },
    tracker: await resolveTracker(envLayer, file, fromFile, fromCwd, configFile),
    sources: { configFile, deploymentFile },
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
  const { privateKey, ...rest } = config;
  const { privateKey: moduleKey, apiToken, ...trackerRest } = config.tracker;
  const hidden = (secret: string | undefined) => (secret === undefined ? null : "(set, hidden)");
  return {
    ...rest,
    rpcUrl: shownEndpoint(config.rpcUrl), // a path often holds the provider's API key
    rpcUrls: config.rpcUrls.map(shownEndpoint),
    // The module's key and the API token are secrets too; the module's signer is shown instead.
    tracker: { ...trackerRest, privateKey: hidden(moduleKey), signer: moduleKey ? new Wallet(moduleKey).address : null, apiToken: hidden(apiToken) },
    privateKey: hidden(privateKey),
    account: account ?? null,
  };
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

function checkEnvLayer(env: NodeJS.ProcessEnv): EnvLayer {
  const parsed = envLayerSchema.safeParse(rawEnvLayer(env));
  if (parsed.success) return parsed.data;
  const problems = describeIssues(parsed.error.issues, (p) => String(p[0] ?? "the environment"));
  throw new ConfigError("CONFIG_INVALID", problems.join("; "), { details: { problems } });
}

/**
 * The ledger's endpoints, from the first layer that names any: --rpc, then OTA_RPC_URLS or
 * OTA_RPC_URL, then the file's rpcUrls or rpcUrl (one of the two per layer), else the local node;
 * and the quorum (OTA_RPC_QUORUM, rpcQuorum, else a majority). Refused: the same endpoint twice,
 * and a quorum that is not more than half of the endpoints (two halves could then each claim it)
 * or more than there are. Messages show endpoints by origin only: a path may hold an API key.
 */
function resolveEndpoints(env: EnvLayer, file: FileLayer, flag: string[] | undefined, configFile: string | null): { urls: string[]; quorum: number } {
  const inFile = configFile ? ` in ${configFile}` : "";
  if (env.OTA_RPC_URL !== undefined && env.OTA_RPC_URLS !== undefined) {
    throw new ConfigError("CONFIG_INVALID", "both OTA_RPC_URL and OTA_RPC_URLS are set: set one (OTA_RPC_URLS takes several endpoints, separated by commas)");
  }
  if (file.rpcUrl !== undefined && file.rpcUrls !== undefined) {
    throw new ConfigError("CONFIG_INVALID", `both rpcUrl and rpcUrls are set${inFile}: keep one (rpcUrls takes several endpoints)`);
  }
  const [urls, from] = flag
    ? [flag, "--rpc"]
    : env.OTA_RPC_URLS
      ? [env.OTA_RPC_URLS, "OTA_RPC_URLS"]
      : env.OTA_RPC_URL
        ? [[env.OTA_RPC_URL], "OTA_RPC_URL"]
        : file.rpcUrls
          ? [file.rpcUrls, `rpcUrls${inFile}`]
          : [[file.rpcUrl ?? "http://127.0.0.1:8545"], `rpcUrl${inFile}`];
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
  const quorum = env.OTA_RPC_QUORUM ?? file.rpcQuorum ?? Math.floor(urls.length / 2) + 1;
  const quorumFrom = env.OTA_RPC_QUORUM !== undefined ? "OTA_RPC_QUORUM" : `rpcQuorum${inFile}`;
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

/** The key from, in order: OTA_PRIVATE_KEY, OTA_KEY_FILE, the file's privateKey, its keyFile. */
async function resolvePrivateKey(
  env: EnvLayer,
  file: FileLayer,
  fromFile: (p: string | undefined) => string | undefined,
  fromCwd: (p: string) => string,
  configFile: string | null,
): Promise<string | undefined> {
  if (env.OTA_PRIVATE_KEY) return env.OTA_PRIVATE_KEY;
  if (env.OTA_KEY_FILE) return readKeyFile(fromCwd(env.OTA_KEY_FILE), "OTA_KEY_FILE");
  if (file.privateKey) return file.privateKey;
  if (file.keyFile) return readKeyFile(fromFile(file.keyFile)!, `keyFile in ${configFile}`);
  return undefined;
}

/**
 * The tracker section: file, overlaid by OTA_TRACKER_*. The module key comes, in order, from
 * OTA_TRACKER_PRIVATE_KEY, OTA_TRACKER_KEY_FILE, tracker.privateKey, tracker.keyFile.
 */
async function resolveTracker(
  env: EnvLayer,
  file: FileLayer,
  fromFile: (p: string | undefined) => string | undefined,
  fromCwd: (p: string) => string,
  configFile: string | null,
): Promise<TrackerConfig> {
  const t = file.tracker ?? {};
  const inFile = configFile ? ` in ${configFile}` : "";
  const host = env.OTA_TRACKER_HOST ?? t.host ?? "127.0.0.1";
  const port = env.OTA_TRACKER_PORT ?? t.port ?? 8700;
  const moduleText = env.OTA_TRACKER_MODULE ?? t.moduleId;
  const moduleId = moduleText === undefined ? undefined : parseIdOrLabel(moduleText, "tracker.moduleId");
  let privateKey: string | undefined;
  if (env.OTA_TRACKER_PRIVATE_KEY) privateKey = env.OTA_TRACKER_PRIVATE_KEY;
  else if (env.OTA_TRACKER_KEY_FILE) privateKey = await readKeyFile(fromCwd(env.OTA_TRACKER_KEY_FILE), "OTA_TRACKER_KEY_FILE");
  else if (t.privateKey) privateKey = t.privateKey;
  else if (t.keyFile) privateKey = await readKeyFile(fromFile(t.keyFile)!, `tracker.keyFile${inFile}`);

  const parentId = env.OTA_TRACKER_PARENT_ID ?? t.parent?.id;
  const parentUrl = env.OTA_TRACKER_PARENT_URL ?? t.parent?.url;
  let parent: TrackerConfig["parent"];
  if (parentId !== undefined || parentUrl !== undefined) {
    if (parentId === undefined || parentUrl === undefined) {
      const [missing, variable] = parentId === undefined ? ["id", "OTA_TRACKER_PARENT_ID"] : ["url", "OTA_TRACKER_PARENT_URL"];
      throw new ConfigError(
        "CONFIG_INVALID",
        `tracker.parent.${missing} is missing: an intermediate module needs both the parent's id and its url; set ${variable}` +
          ` or tracker.parent.${missing}${inFile}, or drop the parent for a server module`,
      );
    }
    parent = { id: parseIdOrLabel(parentId, "tracker.parent.id"), url: parentUrl };
    if (parent.id === moduleId) {
      throw new ConfigError("CONFIG_INVALID", `tracker.parent.id is this module's own id ${moduleId}: give the id of the module above it`);
    }
  }
  return {
    host,
    port,
    dataDir: env.OTA_TRACKER_DATA ? fromCwd(env.OTA_TRACKER_DATA) : (fromFile(t.dataDir) ?? fromCwd("./.ota-ledger/tracker")),
    url: env.OTA_TRACKER_URL ?? t.url ?? localUrl(host, port),
    publicUrl: t.publicUrl,
    moduleId,
    moduleLabel: moduleText !== undefined && moduleId !== moduleText.trim().toLowerCase() ? moduleText.trim() : undefined,
    privateKey,
    parent,
    networks: (t.networks ?? []).map((n) => parseLabel(n, "tracker.networks")),
    apiToken: env.OTA_TRACKER_TOKEN ?? t.apiToken,
    livenessMs: t.livenessMs,
    renoticeMs: t.renoticeMs,
    upstreamMs: t.upstreamMs,
    adoptionSampleMs: t.adoptionSampleMs,
    pollMs: t.pollMs,
    anchorMs: t.anchorMs,
    failureReportMs: t.failureReportMs,
    firmwareServers: t.firmwareServers ?? [],
    downloadLogMs: t.downloadLogMs,
    confirmations: t.confirmations,
    reorgWindow: t.reorgWindow,
    txDeadlineMs: t.txDeadlineMs,
    ...(env.OTA_TRACKER_MQTT_URL || t.mqtt ? { mqtt: { url: env.OTA_TRACKER_MQTT_URL ?? t.mqtt!.url, topicPrefix: t.mqtt?.topicPrefix } } : {}),
  };
}

/** The URL a client on this machine reaches a service listening on host:port by. */
function localUrl(host: string, port: number): string {
  const h = host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  return `http://${h}:${port}`;
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
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) {
    throw new ConfigError("KEY_FILE_INVALID", `the key file ${keyFile} (${setBy}) must hold one private key: 0x followed by 64 hex digits`);
  }
  return key;
}

function resolveStorage(
  env: EnvLayer,
  file: FileLayer,
  fromFile: (p: string | undefined) => string | undefined,
  fromCwd: (p: string) => string,
  configFile: string | null,
): OtaConfig["storage"] {
  // OTA_IPFS_URL alone means "use this Kubo node".
  const kind = env.OTA_STORAGE ?? (env.OTA_IPFS_URL ? "kubo" : (file.storage?.kind ?? "embedded"));
  const fileStorage = file.storage?.kind === kind ? file.storage : undefined;
  if (kind === "embedded") {
    const filePath = fileStorage?.kind === "embedded" ? fromFile(fileStorage.path) : undefined;
    return { kind, path: filePath ?? fromCwd("./.ota-ledger/ipfs") };
  }
  const url = env.OTA_IPFS_URL ?? (fileStorage?.kind === "kubo" ? fileStorage.url : undefined);
  if (url === undefined) {
    const inFile = configFile ? ` or storage.url in ${configFile}` : "";
    throw new ConfigError("CONFIG_INVALID", `storage.url is missing for Kubo storage: set OTA_IPFS_URL${inFile} (e.g. http://127.0.0.1:5001)`);
  }
  return { kind, url, timeoutMs: (fileStorage?.kind === "kubo" ? fileStorage.timeoutMs : undefined) ?? 30_000 };
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

function checksummed(address: string | undefined): string | undefined {
  return address === undefined ? undefined : getAddress(address.toLowerCase());
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
