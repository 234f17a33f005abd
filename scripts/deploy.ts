/**
 * Deploys the registries (UpdateRegistry, FleetRegistry, UpdatePolicies, StatusAnchors, ReleaseBundles) with
 * Hardhat Ignition and writes deployments/<network>.json, where the agents read the addresses.
 *
 *   npm run deploy:local    the node at 127.0.0.1:8545 (npm run chain); writes deployments/localhost.json
 *   npm run deploy          any EVM JSON-RPC endpoint (the `external` network): OTA_DEPLOY_RPC_URL,
 *                           OTA_DEPLOY_CHAIN_ID, OTA_DEPLOY_KEY_FILE (or OTA_DEPLOY_KEY); writes deployments/external.json
 *
 * Optional, on any network: OTA_DEPLOY_ADMIN, OTA_DEPLOY_ADMIN_DELAY, OTA_DEPLOY_PARAMETERS,
 * OTA_DEPLOY_ID, OTA_DEPLOYMENT_FILE, OTA_DEPLOY_CONFIRMATIONS (docs/guides/administrator.md).
 * Exit codes: 0 deployed; 2 a malformed optional setting, the wrong chain id or an unfunded account
 * (nothing was sent); 1 anything else: a required OTA_DEPLOY_* variable missing or malformed
 * (Hardhat stops before this script runs), an unreachable endpoint, changed parameters, a failed
 * deployment.
 */
import path from "node:path";
import hre from "hardhat";
import { formatEther, keccak256, toUtf8Bytes } from "ethers";
import { deployRegistry, deploySettingsFromEnv } from "./lib/deployRegistry";
import { InputError } from "../agent/core/errors";
import { UpdateRegistry__factory } from "../typechain-types";

const EXTERNAL = "external";

async function main() {
  const settings = await deploySettingsFromEnv(process.env);
  const network = hre.network.name;
  const chainId = await checkEndpoint();
  const [deployer] = await hre.ethers.getSigners();
  if (!deployer) {
    throw new InputError("DEPLOYER_MISSING", `the network "${network}" has no account to deploy from`);
  }
  const balance = await hre.ethers.provider.getBalance(deployer.address);
  if (balance === 0n && network !== "hardhat") {
    throw new InputError(
      "DEPLOYER_UNFUNDED",
      `the deploying account ${deployer.address} has no funds on chain ${chainId}: send it some of the chain's currency first`,
    );
  }
  const admin = settings.parameters.admin ?? deployer.address;
  const ignitionId = settings.deploymentId ?? `chain-${chainId}`;
  console.log(`network ${network}: chain ${chainId}${endpointText()}`);
  console.log(`deploying account ${deployer.address} (balance ${formatEther(balance)})`);
  console.log(
    `admin ${admin}${admin === deployer.address ? " (the deploying account)" : ""}; admin transfer delay ` +
      `${settings.parameters.adminTransferDelay !== undefined ? `${settings.parameters.adminTransferDelay} s` : "172800 s (the module's default)"}` +
      `${settings.parametersFile ? `; parameters from ${settings.parametersFile}` : ""}`,
  );
  if (network === EXTERNAL && admin === deployer.address) {
    console.log("note: the deploying account becomes the admin; set OTA_DEPLOY_ADMIN to a multisig or an account kept apart from it");
  }
  console.log(`Ignition journal ${path.relative(process.cwd(), path.join(hre.config.paths.ignition, "deployments", ignitionId))}`);

  const { deployment, file } = await deployRegistry(hre, { ...settings, displayUi: true });
  console.log(`UpdateRegistry ${deployment.updateRegistry}`);
  console.log(`FleetRegistry  ${deployment.fleetRegistry}`);
  console.log(`UpdatePolicies ${deployment.updatePolicies}`);
  console.log(`StatusAnchors  ${deployment.statusAnchors}`);
  console.log(`ReleaseBundles ${deployment.releaseBundles}`);
  console.log(`ReleaseDeltas  ${deployment.releaseDeltas}`);

  // Read back what the ledger holds, not what was asked for: a resumed journal keeps its first parameters.
  const registry = UpdateRegistry__factory.connect(deployment.updateRegistry, hre.ethers.provider);
  const [defaultAdmin, delay, isAdministrator] = await Promise.all([
    registry.defaultAdmin(),
    registry.defaultAdminDelay(),
    registry.hasRole(keccak256(toUtf8Bytes("ADMINISTRATOR_ROLE")), admin),
  ]);
  console.log(`on the ledger: default admin ${defaultAdmin}, administrator ${isAdministrator ? "yes" : "NO"}, admin transfer delay ${delay} s`);
  if (defaultAdmin !== admin || !isAdministrator) {
    throw new Error(
      `the registry at ${deployment.updateRegistry} is administered by ${defaultAdmin}, not ${admin} (Ignition's journal ` +
        `${ignitionId} holds an earlier deployment, or the admin was transferred since): for a new registry, set OTA_DEPLOY_ID to a new id`,
    );
  }
  console.log(`chain ${deployment.chainId}, block ${deployment.deployedAtBlock}; written to ${file}`);
  console.log(`the agents: "network": "${deployment.network}" in an ota-ledger.json beside deployments/${path.basename(file)}`);
}

/** Asks the endpoint which chain it serves before anything else, and stops if it is not the configured one. */
async function checkEndpoint(): Promise<number> {
  const config = hre.network.config;
  if (!("url" in config)) return Number((await hre.ethers.provider.getNetwork()).chainId);
  const urlSetting = hre.network.name === EXTERNAL ? "OTA_DEPLOY_RPC_URL" : "OTA_RPC_URL";
  const where = new URL(config.url).origin;
  let answer: { result?: string; error?: { message?: string } };
  try {
    const res = await fetch(config.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      signal: AbortSignal.timeout(15_000),
    });
    if (!res.ok) throw new Error(`it answered HTTP ${res.status}`);
    answer = (await res.json()) as typeof answer;
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const why = e.cause?.code ?? (e.name === "TimeoutError" ? "no answer within 15 s" : e.message);
    throw new Error(
      `cannot reach the JSON-RPC endpoint at ${where} (${why}): check ${urlSetting}` +
        (hre.network.name === "localhost" ? " or start the node (npm run chain)" : ""),
      { cause: err },
    );
  }
  if (typeof answer.result !== "string") {
    throw new Error(`the JSON-RPC endpoint at ${where} did not answer eth_chainId (${answer.error?.message ?? "no result"}): check ${urlSetting}`);
  }
  const served = Number(BigInt(answer.result));
  if (config.chainId !== undefined && served !== config.chainId) {
    throw new InputError(
      "CHAIN_ID_MISMATCH",
      `the endpoint at ${where} serves chain ${served}, but OTA_DEPLOY_CHAIN_ID is ${config.chainId}: nothing was sent. ` +
        `Check OTA_DEPLOY_RPC_URL, or set OTA_DEPLOY_CHAIN_ID=${served} if that is the chain you mean`,
    );
  }
  return served;
}

/** " at <origin>" for a network reached over HTTP; only the origin, as a URL's path often holds an API key. */
function endpointText(): string {
  const config = hre.network.config;
  return "url" in config ? ` at ${new URL(config.url).origin}` : " (in-process)";
}

main().catch((err) => {
  console.error(`error: ${err instanceof Error ? err.message : err}`);
  process.exitCode = err instanceof InputError ? 2 : 1;
});
