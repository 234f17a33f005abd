import { readFileSync } from "node:fs";
import path from "node:path";

/** The network that stands for any EVM JSON-RPC endpoint, set by the environment alone. */
export const EXTERNAL_NETWORK = "external";

/** The URL the `external` network gets while OTA_DEPLOY_RPC_URL is unset or wrong: it never resolves (.invalid). */
const UNSET_RPC_URL = "http://ota-deploy-rpc-url-is-not-set.invalid";

export interface ExternalNetwork {
  url: string;
  chainId?: number;
  /** The deploying account's key, or nothing. Never print it. */
  accounts: string[];
  /** What is missing or wrong, one sentence each naming the variable to set; empty when usable. */
  problems: string[];
}

/**
 * The `external` network from OTA_DEPLOY_RPC_URL, OTA_DEPLOY_CHAIN_ID and OTA_DEPLOY_KEY or
 * OTA_DEPLOY_KEY_FILE (docs/guides/administrator.md). It never throws: with none of them set the
 * configuration still loads, and `problems` says what to set once `--network external` is used.
 * No message repeats a key, and none repeats the URL beyond its origin (URLs often carry an API key).
 */
export function externalNetworkFromEnv(env: NodeJS.ProcessEnv, cwd = process.cwd()): ExternalNetwork {
  const problems: string[] = [];
  const value = (name: string) => {
    const v = env[name]?.trim();
    return v === undefined || v === "" ? undefined : v;
  };
  let url = UNSET_RPC_URL;
  const rawUrl = value("OTA_DEPLOY_RPC_URL");
  if (rawUrl === undefined) {
    problems.push("OTA_DEPLOY_RPC_URL is not set: set it to the chain's JSON-RPC endpoint (e.g. https://rpc.example.org)");
  } else if (!isHttpUrl(rawUrl)) {
    problems.push("OTA_DEPLOY_RPC_URL must be an http(s) URL such as https://rpc.example.org");
  } else {
    url = rawUrl;
  }
  let chainId: number | undefined;
  const rawChainId = value("OTA_DEPLOY_CHAIN_ID");
  if (rawChainId === undefined) {
    problems.push(
      "OTA_DEPLOY_CHAIN_ID is not set: set it to the chain id the endpoint must serve (e.g. 11155111 for Sepolia); the deployment stops if the endpoint serves another",
    );
  } else if (!/^\d+$/.test(rawChainId) || !Number.isSafeInteger(Number(rawChainId)) || Number(rawChainId) === 0) {
    problems.push(`OTA_DEPLOY_CHAIN_ID must be a chain id (a positive integer), not "${rawChainId}"`);
  } else {
    chainId = Number(rawChainId);
  }
  const accounts: string[] = [];
  const key = value("OTA_DEPLOY_KEY");
  const keyFile = value("OTA_DEPLOY_KEY_FILE");
  const KEY_FORM = "one private key: 0x followed by 64 hex digits";
  if (key !== undefined && keyFile !== undefined) {
    problems.push("OTA_DEPLOY_KEY and OTA_DEPLOY_KEY_FILE are both set: set only one");
  } else if (key !== undefined) {
    if (isPrivateKey(key)) accounts.push(key);
    else problems.push(`OTA_DEPLOY_KEY must be ${KEY_FORM}`);
  } else if (keyFile !== undefined) {
    const file = path.resolve(cwd, keyFile);
    let text: string | undefined;
    try {
      text = readFileSync(file, "utf8").trim();
    } catch (err) {
      problems.push(`OTA_DEPLOY_KEY_FILE: ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"}): fix the path`);
    }
    if (text !== undefined) {
      if (isPrivateKey(text)) accounts.push(text);
      else problems.push(`OTA_DEPLOY_KEY_FILE: ${file} must hold ${KEY_FORM}`);
    }
  } else {
    problems.push("the deploying account's key is not set: set OTA_DEPLOY_KEY_FILE to a file holding it (mode 0600), or OTA_DEPLOY_KEY");
  }
  return { url, chainId, accounts, problems };
}

function isHttpUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "";
  } catch {
    return false;
  }
}

function isPrivateKey(text: string): boolean {
  return /^0x[0-9a-fA-F]{64}$/.test(text) && BigInt(text) !== 0n;
}
