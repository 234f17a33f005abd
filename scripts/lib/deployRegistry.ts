import { promises as fs } from "node:fs";
import path from "node:path";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import UpdateRegistryModule from "../../ignition/modules/UpdateRegistry";
import { Deployment, deploymentPath, writeDeployment, findDeploymentBlock } from "../../agent/chain/deployment";

/** The chain id of Hardhat's development chains, whose state dies with the node. */
const DEV_CHAIN_ID = 31337;

/**
 * Deploys the registries with the Ignition module and writes deployments/<network>.json, where
 * the agents read the addresses.
 */
export async function deployRegistry(
  hre: HardhatRuntimeEnvironment,
  { parameters = {} as Record<string, unknown>, displayUi = false } = {},
): Promise<{ deployment: Deployment; file: string }> {
  const chainId = Number((await hre.ethers.provider.getNetwork()).chainId);
  if (chainId === DEV_CHAIN_ID && hre.network.name !== "hardhat") {
    // A fresh development node forgets earlier deployments; so must Ignition's journal.
    await fs.rm(path.join(hre.config.paths.ignition, "deployments", `chain-${DEV_CHAIN_ID}`), { recursive: true, force: true });
  }
  const { updateRegistry, fleetRegistry, updatePolicies, statusAnchors } = await hre.ignition.deploy(UpdateRegistryModule, {
    parameters: { UpdateRegistry: parameters as Record<string, never> },
    displayUi,
  });
  const deployedAtBlock = await findDeploymentBlock(hre.ethers.provider, await updateRegistry.getAddress());
  const deployment: Deployment = {
    network: hre.network.name,
    chainId,
    updateRegistry: await updateRegistry.getAddress(),
    fleetRegistry: await fleetRegistry.getAddress(),
    updatePolicies: await updatePolicies.getAddress(),
    statusAnchors: await statusAnchors.getAddress(),
    deployedAtBlock,
  };
  const file = deploymentPath(hre.config.paths.root, hre.network.name);
  await writeDeployment(file, deployment);
  return { deployment, file };
}
