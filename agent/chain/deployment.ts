import { promises as fs } from "node:fs";
import path from "node:path";
import { getAddress } from "ethers";
import { InputError } from "../core/errors";
import { writeFileAtomic } from "../files/atomicFile";

/** Where the registry contracts of one network live; written by deploy, read by every agent. */
export interface Deployment {
  network: string;
  chainId: number;
  updateRegistry: string;
  fleetRegistry: string;
  /** Where administrators attach update policies (deployments made before issue 6 have none). */
  updatePolicies?: string;
  /** Where trackers anchor the fleet's status (deployments made before issue 6 have none). */
  statusAnchors?: string;
  /** Where authors create release bundles (docs/adr/0019; deployments made before issue 19 have none). */
  releaseBundles?: string;
  /** A deployed update-check lens (agent/chain/ledgerLens): reads send the query only (deployments made before it have none). */
  updateCheckLens?: string;
  /** Where authors record a release's delta artifacts (ADR 0018; deployments made before it have none). */
  releaseDeltas?: string;
  /** The block the registry was deployed in: event streams start here. */
  deployedAtBlock: number;
}

/** The deployment file of `network`: deployments/<network>.json under `root`. */
export function deploymentPath(root: string, network: string): string {
  return path.join(root, "deployments", `${network}.json`);
}

export async function writeDeployment(file: string, deployment: Deployment): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(deployment, null, 2) + "\n");
}

/** Reads and checks a deployment file; the error says how to make one. */
export async function readDeployment(file: string): Promise<Deployment> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (cause) {
    throw new InputError(
      "DEPLOYMENT_MISSING",
      `no deployment file at ${file}: deploy first (npm run deploy:local for the local chain, npm run deploy for another network)`,
      {
        cause,
      },
    );
  }
  let raw: Partial<Deployment>;
  try {
    raw = JSON.parse(text) as Partial<Deployment>;
  } catch (cause) {
    throw new InputError("DEPLOYMENT_INVALID", `${file} is not valid JSON: redeploy or restore it`, { cause });
  }
  const problems: string[] = [];
  if (typeof raw.network !== "string") problems.push("network");
  if (!Number.isInteger(raw.chainId)) problems.push("chainId");
  if (!Number.isInteger(raw.deployedAtBlock)) problems.push("deployedAtBlock");
  for (const key of ["updateRegistry", "fleetRegistry"] as const) {
    try {
      raw[key] = getAddress(String(raw[key]));
    } catch {
      problems.push(key);
    }
  }
  for (const key of ["updatePolicies", "statusAnchors", "releaseBundles", "updateCheckLens", "releaseDeltas"] as const) {
    if (raw[key] === undefined) continue;
    try {
      raw[key] = getAddress(String(raw[key]));
    } catch {
      problems.push(key);
    }
  }
  if (problems.length > 0) {
    throw new InputError("DEPLOYMENT_INVALID", `${file} has missing or malformed fields: ${problems.join(", ")}`);
  }
  return raw as Deployment;
}

/**
 * The first block in which `address` has code: where event streams over the contract start.
 * A binary search over eth_getCode, so it works on any node that serves historical state
 * (archive or recent enough); deployment tools do not all report the receipt.
 */
export async function findDeploymentBlock(
  provider: { getCode(address: string, blockTag?: number): Promise<string>; getBlockNumber(): Promise<number> },
  address: string,
): Promise<number> {
  let high = await provider.getBlockNumber();
  if ((await provider.getCode(address, high)) === "0x") {
    throw new InputError("NO_CONTRACT", `no contract at ${address} on this chain: check the address and the network`);
  }
  let low = 0;
  while (low < high) {
    const mid = Math.floor((low + high) / 2);
    if ((await provider.getCode(address, mid)) === "0x") low = mid + 1;
    else high = mid;
  }
  return low;
}
