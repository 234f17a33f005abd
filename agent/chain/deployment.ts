import { promises as fs } from "node:fs";
import path from "node:path";
import { getAddress } from "ethers";
import { InputError } from "../core/errors";
import { writeFileAtomic } from "../io/atomicFile";

/** Where the registry contracts of one network live; written by deploy, read by every agent. */
export interface Deployment {
  network: string;
  chainId: number;
  updateRegistry: string;
  fleetRegistry: string;
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
    throw new InputError("DEPLOYMENT_MISSING", `no deployment file at ${file}: deploy first (npm run deploy:local)`, {
      cause,
    });
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
  if (problems.length > 0) {
    throw new InputError("DEPLOYMENT_INVALID", `${file} has missing or malformed fields: ${problems.join(", ")}`);
  }
  return raw as Deployment;
}
