import { promises as fs } from "node:fs";
import path from "node:path";
import { getAddress } from "ethers";
import { InputError } from "../core/errors";
import { deploymentPath, readDeployment } from "../chain/deployment";
import { describeIssues, envLayerSchema, fileLayerSchema, rawEnvLayer, type EnvLayer, type FileLayer } from "./configSchema";

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
  rpcUrl: string;
  /** The chain the RPC must serve; from the deployment file when not set. Unchecked if unknown. */
  chainId?: number;
  registry?: string;
  fleet?: string;
  /** 0x + 64 hex digits, from privateKey or keyFile. Never print it: see redactConfig. */
  privateKey?: string;
  serverUrl: string;
  keystoreDir: string;
  storage: { kind: "embedded"; path: string } | { kind: "kubo"; url: string; timeoutMs: number };
  server: { host: string; port: number; dataDir: string };
  /** Where the values came from, for messages: the config file (if any) and the deployment file looked at. */
  sources: { configFile: string | null; deploymentFile: string; deployedAtBlock?: number };
}

export interface ConfigInputs {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** --config: must exist. Without it, ./ota-ledger.json is read if present. */
  configPath?: string;
  /** --rpc: overrides rpcUrl. */
  rpcUrl?: string;
}

export async function loadConfig({ cwd, env, configPath, rpcUrl }: ConfigInputs): Promise<OtaConfig> {
  const configFile = await findConfigFile(cwd, configPath);
  const file = configFile ? await readFileLayer(configFile) : {};
  const envLayer = checkEnvLayer(env);
  if (rpcUrl !== undefined && !fileLayerSchema.shape.rpcUrl.safeParse(rpcUrl).success) {
    throw new ConfigError("CONFIG_INVALID", `--rpc "${rpcUrl}" must be an http(s) URL such as "http://127.0.0.1:8545"`);
  }
  const fileDir = configFile ? path.dirname(configFile) : cwd;
  // A path keeps the folder of the layer it came from: the file's folder, or cwd for env and defaults.
  const fromFile = (p: string | undefined) => (p === undefined ? undefined : path.resolve(fileDir, p));
  const fromCwd = (p: string) => path.resolve(cwd, p);

  const network = envLayer.OTA_NETWORK ?? file.network ?? "localhost";
  const deploymentFile = deploymentPath(fileDir, network);
  const config: OtaConfig = {
    network,
    rpcUrl: rpcUrl ?? envLayer.OTA_RPC_URL ?? file.rpcUrl ?? "http://127.0.0.1:8545",
    chainId: envLayer.OTA_CHAIN_ID ?? file.chainId,
    registry: checksummed(envLayer.OTA_REGISTRY ?? file.registry),
    fleet: checksummed(envLayer.OTA_FLEET ?? file.fleet),
    privateKey: await resolvePrivateKey(envLayer, file, fromFile, fromCwd, configFile),
    serverUrl: envLayer.OTA_SERVER_URL ?? file.serverUrl ?? "http://127.0.0.1:8600",
    keystoreDir: envLayer.OTA_KEYSTORE
      ? fromCwd(envLayer.OTA_KEYSTORE)
      : (fromFile(file.keystoreDir) ?? fromCwd("./.ota-ledger/keys")),
    storage: resolveStorage(envLayer, file, fromFile, fromCwd, configFile),
    server: {
      host: envLayer.OTA_SERVER_HOST ?? file.server?.host ?? "127.0.0.1",
      port: envLayer.OTA_SERVER_PORT ?? file.server?.port ?? 8600,
      dataDir: envLayer.OTA_SERVER_DATA
        ? fromCwd(envLayer.OTA_SERVER_DATA)
        : (fromFile(file.server?.dataDir) ?? fromCwd("./.ota-ledger/server")),
    },
    sources: { configFile, deploymentFile },
  };
  await fillFromDeployment(config);
  return config;
}

/** The private key, or an error saying where to set it (only commands that sign need one). */
export function requirePrivateKey(config: OtaConfig): string {
  if (config.privateKey) return config.privateKey;
  const where = config.sources.configFile ?? DEFAULT_CONFIG_FILE;
  throw new ConfigError(
    "PRIVATE_KEY_MISSING",
    `privateKey is missing: set OTA_PRIVATE_KEY or OTA_KEY_FILE, or privateKey or keyFile in ${where}`,
  );
}

/** The registry and fleet addresses, or an error saying how to get them. */
export function requireContracts(config: OtaConfig): { registry: string; fleet: string } {
  if (config.registry && config.fleet) return { registry: config.registry, fleet: config.fleet };
  const missing = [!config.registry && "registry", !config.fleet && "fleet"].filter(Boolean).join(" and ");
  throw new ConfigError(
    "DEPLOYMENT_MISSING",
    `${missing} address${missing.includes(" and ") ? "es are" : " is"} not set and there is no deployment file at ` +
      `${config.sources.deploymentFile}: run \`npm run deploy:local\` (it writes that file) or set OTA_REGISTRY and OTA_FLEET`,
  );
}

/** The configuration with the private key replaced by the account it controls: safe to print. */
export function redactConfig(config: OtaConfig, account?: string): Record<string, unknown> {
  const { privateKey, ...rest } = config;
  return { ...rest, privateKey: privateKey === undefined ? null : "(set, hidden)", account: account ?? null };
}

async function findConfigFile(cwd: string, configPath: string | undefined): Promise<string | null> {
  if (configPath !== undefined) {
    const file = path.resolve(cwd, configPath);
    if (!(await exists(file))) {
      throw new ConfigError(
        "CONFIG_MISSING",
        `no config file at ${file} (given with --config): check the path, or leave --config out`,
      );
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

async function readKeyFile(keyFile: string, setBy: string): Promise<string> {
  let text: string;
  try {
    text = await fs.readFile(keyFile, "utf8");
  } catch (cause) {
    throw new ConfigError(
      "KEY_FILE_UNREADABLE",
      `the key file ${keyFile} (${setBy}) cannot be read (${(cause as NodeJS.ErrnoException).code}): fix the path`,
      { cause },
    );
  }
  const key = text.trim();
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) {
    throw new ConfigError(
      "KEY_FILE_INVALID",
      `the key file ${keyFile} (${setBy}) must hold one private key: 0x followed by 64 hex digits`,
    );
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
    throw new ConfigError(
      "CONFIG_INVALID",
      `storage.url is missing for Kubo storage: set OTA_IPFS_URL${inFile} (e.g. http://127.0.0.1:5001)`,
    );
  }
  return { kind, url, timeoutMs: (fileStorage?.kind === "kubo" ? fileStorage.timeoutMs : undefined) ?? 30_000 };
}

/** Fills chainId, registry and fleet left unset from deployments/<network>.json, if it exists. */
async function fillFromDeployment(config: OtaConfig): Promise<void> {
  if (config.chainId !== undefined && config.registry && config.fleet) return;
  if (!(await exists(config.sources.deploymentFile))) return;
  const deployment = await readDeployment(config.sources.deploymentFile);
  config.chainId ??= deployment.chainId;
  config.registry ??= deployment.updateRegistry;
  config.fleet ??= deployment.fleetRegistry;
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
