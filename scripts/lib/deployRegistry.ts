import { promises as fs } from "node:fs";
import path from "node:path";
import { getAddress, isAddress, ZeroAddress } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import { readDeploymentParameters } from "@nomicfoundation/hardhat-ignition/helpers";
import UpdateRegistryModule from "../../ignition/modules/UpdateRegistry";
import { Deployment, deploymentPath, readDeployment, writeDeployment, findDeploymentBlock } from "../../agent/chain/deployment";
import { InputError } from "../../agent/core/errors";

/** The chain id of Hardhat's development chains, whose state dies with the node. */
const DEV_CHAIN_ID = 31337;

/** The Ignition module's id: its parameters sit under this key in a parameters file. */
export const REGISTRY_MODULE_ID = "UpdateRegistry";

/** The largest default-admin transfer delay the registry takes (a uint48, in seconds). */
const MAX_ADMIN_DELAY = 2 ** 48 - 1;

/** Parameters of ignition/modules/UpdateRegistry.ts; what is left out takes the module's default. */
export interface RegistryParameters {
  /** Becomes default admin and administrator (default: the deploying account). */
  admin?: string;
  /** Seconds a default-admin transfer waits (default: 2 days). */
  adminTransferDelay?: number;
}

export interface DeployOptions {
  parameters?: RegistryParameters;
  displayUi?: boolean;
  /** Ignition's deployment id: its journal is ignition/deployments/<id>/ (default: chain-<chain id>). */
  deploymentId?: string;
  /** Where to write the deployment file (default: deployments/<network>.json); its base name is the network the agents name. */
  file?: string;
  /** Confirmations Ignition waits for on each transaction (default: its own, 5; 1 on an automining node). */
  requiredConfirmations?: number;
}

/** What `scripts/deploy.ts` takes from the environment (OTA_DEPLOY_*), already checked. */
export interface DeploySettings {
  parameters: RegistryParameters;
  deploymentId?: string;
  file?: string;
  requiredConfirmations?: number;
  /** The parameters file read, if any. */
  parametersFile?: string;
}

/**
 * Deploys the registries with the Ignition module and writes deployments/<network>.json (or
 * `file`), where the agents read the addresses.
 */
export async function deployRegistry(
  hre: HardhatRuntimeEnvironment,
  { parameters = {}, displayUi = false, deploymentId, file, requiredConfirmations }: DeployOptions = {},
): Promise<{ deployment: Deployment; file: string }> {
  const chainId = Number((await hre.ethers.provider.getNetwork()).chainId);
  const journal = deploymentId ?? `chain-${chainId}`;
  if (chainId === DEV_CHAIN_ID && hre.network.name !== "hardhat") {
    // A fresh development node forgets earlier deployments; so must Ignition's journal.
    await fs.rm(path.join(hre.config.paths.ignition, "deployments", journal), { recursive: true, force: true });
  }
  const target = file ?? deploymentPath(hre.config.paths.root, hre.network.name);
  const network = networkOfFile(target);
  const before = await hre.ethers.provider.getBlockNumber();
  const { updateRegistry, fleetRegistry, updatePolicies, statusAnchors, releaseBundles, updateCheckLens, releaseDeltas } = await hre.ignition.deploy(
    UpdateRegistryModule,
    {
      parameters: { [REGISTRY_MODULE_ID]: parameters as Record<string, never> },
      displayUi,
      deploymentId,
      ...(requiredConfirmations !== undefined ? { config: { requiredConfirmations } } : {}),
    },
  );
  const registryAddress = await updateRegistry.getAddress();
  const deployment: Deployment = {
    network,
    chainId,
    updateRegistry: registryAddress,
    fleetRegistry: await fleetRegistry.getAddress(),
    updatePolicies: await updatePolicies.getAddress(),
    statusAnchors: await statusAnchors.getAddress(),
    releaseBundles: await releaseBundles.getAddress(),
    updateCheckLens: await updateCheckLens.getAddress(),
    releaseDeltas: await releaseDeltas.getAddress(),
    deployedAtBlock: await deploymentBlock(hre.ethers.provider, registryAddress, chainId, before, target),
  };
  await writeDeployment(target, deployment);
  return { deployment, file: target };
}

/**
 * The block the registry was deployed in, asking a pruned (non-archive) node only about recent
 * blocks: a re-run that deployed nothing keeps the block of the file it rewrites; a fresh
 * deployment is searched for after `before`, the head when the run began.
 */
export async function deploymentBlock(
  provider: { getCode(address: string, blockTag?: number): Promise<string>; getBlockNumber(): Promise<number> },
  address: string,
  chainId: number,
  before: number,
  file: string,
): Promise<number> {
  const previous = await readDeployment(file).catch(() => undefined);
  if (previous && previous.chainId === chainId && previous.updateRegistry === address) {
    const at = previous.deployedAtBlock;
    try {
      // A development chain started afresh can give the same address at another block: check it.
      if ((await provider.getCode(address, at)) !== "0x" && (at === 0 || (await provider.getCode(address, at - 1)) === "0x")) return at;
    } catch {
      return at; // the node keeps no state that old: the file was written when it did
    }
  }
  if ((await provider.getCode(address, before)) !== "0x") {
    // Deployed before this run (a resumed journal without its file): search from the genesis.
    try {
      return await findDeploymentBlock(provider, address);
    } catch (cause) {
      throw new InputError(
        "DEPLOYMENT_BLOCK_UNKNOWN",
        `cannot find the block the registry ${address} was deployed in (${(cause as Error).message}): the node may keep no ` +
          `old state; ask an archive node, or write the deployment file by hand with the block from a block explorer`,
        { cause },
      );
    }
  }
  let low = before + 1;
  let high = await provider.getBlockNumber();
  while (low < high) {
    const mid = Math.floor((low + high) / 2);
    if ((await provider.getCode(address, mid)) === "0x") low = mid + 1;
    else high = mid;
  }
  return low;
}

/** The network name the agents use for a deployment file: its base name, deployments/<network>.json. */
export function networkOfFile(file: string): string {
  const name = path.basename(file);
  const match = /^([A-Za-z0-9_.-]+)\.json$/.exec(name);
  if (!match) {
    throw new InputError(
      "DEPLOY_CONFIG_INVALID",
      `OTA_DEPLOYMENT_FILE must name a file <network>.json, the network of letters, digits, '.', '_' or '-' (the agents' "network" setting), not "${name}"`,
    );
  }
  return match[1];
}

/**
 * The deployment settings in the environment, checked before anything is sent:
 * - OTA_DEPLOY_PARAMETERS: an Ignition parameters file (JSON or JSON5) with an "UpdateRegistry"
 *   section `{admin, adminTransferDelay}`;
 * - OTA_DEPLOY_ADMIN, OTA_DEPLOY_ADMIN_DELAY: the same two, over the file's;
 * - OTA_DEPLOY_ID: Ignition's deployment id; OTA_DEPLOYMENT_FILE: where the file goes;
 * - OTA_DEPLOY_CONFIRMATIONS: confirmations per transaction.
 * Relative paths resolve against `cwd`. Every message names the variable and how to fix it.
 */
export async function deploySettingsFromEnv(env: NodeJS.ProcessEnv, cwd = process.cwd()): Promise<DeploySettings> {
  const value = (name: string) => {
    const v = env[name]?.trim();
    return v === undefined || v === "" ? undefined : v;
  };
  const problems: string[] = [];
  const settings: DeploySettings = { parameters: {} };

  const parametersFile = value("OTA_DEPLOY_PARAMETERS");
  if (parametersFile !== undefined) {
    settings.parametersFile = path.resolve(cwd, parametersFile);
    const fromFile = await readRegistryParameters(settings.parametersFile);
    problems.push(...fromFile.problems);
    settings.parameters = fromFile.parameters;
  }
  const admin = value("OTA_DEPLOY_ADMIN");
  if (admin !== undefined) {
    const checked = checkAdmin(admin, "OTA_DEPLOY_ADMIN");
    if (typeof checked === "string") settings.parameters.admin = checked;
    else problems.push(checked.problem);
  }
  const delay = value("OTA_DEPLOY_ADMIN_DELAY");
  if (delay !== undefined) {
    const checked = checkDelay(/^\d+$/.test(delay) ? Number(delay) : delay, "OTA_DEPLOY_ADMIN_DELAY");
    if (typeof checked === "number") settings.parameters.adminTransferDelay = checked;
    else problems.push(checked.problem);
  }
  const deploymentId = value("OTA_DEPLOY_ID");
  if (deploymentId !== undefined) {
    if (/^[a-zA-Z][a-zA-Z0-9_-]*$/.test(deploymentId)) settings.deploymentId = deploymentId;
    else problems.push(`OTA_DEPLOY_ID must start with a letter and hold only letters, digits, '-' and '_' (Ignition's rule), not "${deploymentId}"`);
  }
  const file = value("OTA_DEPLOYMENT_FILE");
  if (file !== undefined) {
    settings.file = path.resolve(cwd, file);
    try {
      networkOfFile(settings.file);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  const confirmations = value("OTA_DEPLOY_CONFIRMATIONS");
  if (confirmations !== undefined) {
    if (/^\d+$/.test(confirmations) && Number(confirmations) >= 1 && Number(confirmations) <= 1000) settings.requiredConfirmations = Number(confirmations);
    else problems.push(`OTA_DEPLOY_CONFIRMATIONS must be a whole number of blocks from 1 to 1000, not "${confirmations}"`);
  }
  if (problems.length > 0) {
    throw new InputError("DEPLOY_CONFIG_INVALID", `the deployment settings are not usable:\n  - ${problems.join("\n  - ")}`, { details: { problems } });
  }
  return settings;
}

async function readRegistryParameters(file: string): Promise<{ parameters: RegistryParameters; problems: string[] }> {
  const where = `OTA_DEPLOY_PARAMETERS (${file})`;
  try {
    await fs.access(file);
  } catch {
    return { parameters: {}, problems: [`${where} does not exist: fix the path`] };
  }
  let raw: unknown;
  try {
    raw = await readDeploymentParameters(file);
  } catch (err) {
    const cause = (err as { parent?: Error }).parent?.message ?? (err as Error).message;
    return { parameters: {}, problems: [`${where} is not valid JSON5 (${cause}): fix the file`] };
  }
  const section = (raw as Record<string, unknown> | null)?.[REGISTRY_MODULE_ID];
  if (section === undefined) {
    return {
      parameters: {},
      problems: [`${where} has no "${REGISTRY_MODULE_ID}" section: write { ${REGISTRY_MODULE_ID}: { admin: "0x...", adminTransferDelay: 172800 } }`],
    };
  }
  if (typeof section !== "object" || section === null || Array.isArray(section)) {
    return { parameters: {}, problems: [`${where}: "${REGISTRY_MODULE_ID}" must be an object such as { admin: "0x...", adminTransferDelay: 172800 }`] };
  }
  const parameters: RegistryParameters = {};
  const problems: string[] = [];
  for (const [key, v] of Object.entries(section)) {
    if (key === "admin") {
      const checked = checkAdmin(v, `${REGISTRY_MODULE_ID}.admin in ${file}`);
      if (typeof checked === "string") parameters.admin = checked;
      else problems.push(checked.problem);
    } else if (key === "adminTransferDelay") {
      const checked = checkDelay(typeof v === "bigint" ? Number(v) : v, `${REGISTRY_MODULE_ID}.adminTransferDelay in ${file}`);
      if (typeof checked === "number") parameters.adminTransferDelay = checked;
      else problems.push(checked.problem);
    } else {
      problems.push(
        `${where}: unknown parameter "${REGISTRY_MODULE_ID}.${key}" (the module takes admin and adminTransferDelay): remove it or fix its spelling`,
      );
    }
  }
  return { parameters, problems };
}

function checkAdmin(v: unknown, name: string): string | { problem: string } {
  if (typeof v !== "string" || !isAddress(v)) {
    return { problem: `${name} must be an account or contract address (0x followed by 40 hex digits, checksummed or all lower case)` };
  }
  const address = getAddress(v);
  if (address === ZeroAddress) return { problem: `${name} must not be the zero address: nobody could administer the registry` };
  return address;
}

function checkDelay(v: unknown, name: string): number | { problem: string } {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > MAX_ADMIN_DELAY) {
    return { problem: `${name} must be a number of seconds from 0 to ${MAX_ADMIN_DELAY} (e.g. 172800 for two days)` };
  }
  return v;
}
