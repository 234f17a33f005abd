import { FetchRequest, Network, Wallet, getAddress, type TypedDataDomain } from "ethers";
import { QuorumProvider } from "../chain/endpointQuorum";
import { registryDomain } from "../crypto/releaseSignature";
import { shownEndpoint } from "../chain/rpcEndpoint";
import { OtaError } from "../core/errors";
import { ConfigError, requireContracts, requirePrivateKey, type OtaConfig } from "./config";
import {
  UpdateRegistry__factory,
  FleetRegistry__factory,
  UpdatePolicies__factory,
  StatusAnchors__factory,
  ReleaseDeltas__factory,
  type ReleaseDeltas,
  type UpdateRegistry,
  type FleetRegistry,
  type UpdatePolicies,
  type StatusAnchors,
} from "../chain/contracts";

/** The ledger as a command sees it: contracts bound to the signer (or read-only to the provider). */
export interface Connection {
  /** With several endpoints, every read agrees across a quorum of them (agent/chain/endpointQuorum); with one, a plain JsonRpcProvider. */
  provider: QuorumProvider;
  signer: Wallet;
  registry: UpdateRegistry;
  fleet: FleetRegistry;
  policies?: UpdatePolicies; // where administrators attach update policies, when deployed
  anchors?: StatusAnchors; // where trackers anchor the fleet's status, when deployed
  deltas?: ReleaseDeltas; // where releases' deltas are recorded (ADR 0018), when deployed
  lens?: string; // a deployed update-check lens, when deployed (agent/chain/ledgerLens checks its code before use)
  chainId: bigint;
  network: string;
  domain: TypedDataDomain; // the registry's EIP-712 domain: release ids and signatures
  fromBlock: number; // the deployment block, where log scans start
}
export type ReadOnlyConnection = Omit<Connection, "signer">;

/** The RPC does not answer: a failure of the operation, not of the configuration's form. */
export class RpcUnreachableError extends OtaError {}

const PROBE_TIMEOUT_MS = 10_000;
/** How long one JSON-RPC request may take before it counts as the ledger not answering. */
const RPC_TIMEOUT_MS = 60_000;

/**
 * Opens the chain the configuration names and checks it before any command uses it: the RPC
 * answers, serves the configured chain id, and has code at the registry and fleet addresses
 * (a restarted development chain forgets its contracts), and the fleet uses that registry.
 * With several endpoints (rpcUrls), every one that answers must serve that chain, at least the
 * quorum must answer, and every read after this goes through the quorum.
 */
export async function openChain(config: OtaConfig): Promise<ReadOnlyConnection> {
  const addresses = requireContracts(config);
  const chainId = await probeChainIds(config);
  // A static network: ethers would otherwise retry network detection forever on a dead RPC. A
  // request timeout well under ethers' 5 minutes: a hung endpoint is then an outage the agents
  // retry (LEDGER_UNAVAILABLE), not a command or a device request that hangs.
  const requests = config.rpcUrls.map((url) => {
    const request = new FetchRequest(url);
    request.timeout = RPC_TIMEOUT_MS;
    return request;
  });
  const provider = new QuorumProvider(requests, Network.from(chainId), {
    quorum: config.rpcQuorum,
    provider: { staticNetwork: true, pollingInterval: 1000 },
  });
  try {
    for (const [field, address] of [
      ["registry", addresses.registry],
      ["fleet", addresses.fleet],
    ] as const) {
      if ((await provider.getCode(address)) === "0x") {
        throw new ConfigError(
          "NO_CONTRACT",
          `no contract at the ${field} address ${address} on chain ${chainId} (${shownEndpoint(config.rpcUrl)}): the chain may have been ` +
            `restarted since it was deployed; deploy again (\`npm run deploy:local\`, or \`npm run deploy\` for another network) or fix ${field} (OTA_${field.toUpperCase()})`,
        );
      }
    }
    const registry = UpdateRegistry__factory.connect(addresses.registry, provider);
    const fleet = FleetRegistry__factory.connect(addresses.fleet, provider);
    const fleetsRegistry = getAddress(await fleet.updateRegistry());
    if (fleetsRegistry !== addresses.registry) {
      throw new ConfigError(
        "CONTRACT_MISMATCH",
        `the fleet ${addresses.fleet} belongs to the registry ${fleetsRegistry}, not the configured ${addresses.registry}: set both from one deployment`,
      );
    }
    // The optional contracts beside the registry: each must be there and use the configured registry.
    const beside = async <T extends { updateRegistry(): Promise<string> }>(
      address: string | undefined,
      field: string,
      env: string,
      bind: (a: string) => T,
    ): Promise<T | undefined> => {
      if (!address) return undefined;
      if ((await provider.getCode(address)) === "0x") {
        throw new ConfigError("NO_CONTRACT", `no contract at the ${field} address ${address} on chain ${chainId}: redeploy, or fix ${field} (${env})`);
      }
      const contract = bind(address);
      const itsRegistry = getAddress(await contract.updateRegistry());
      if (itsRegistry !== addresses.registry) {
        throw new ConfigError(
          "CONTRACT_MISMATCH",
          `the ${field} contract ${address} belongs to the registry ${itsRegistry}, not the configured ${addresses.registry}: set both from one deployment`,
        );
      }
      return contract;
    };
    const policies = await beside(config.policies, "policies", "OTA_POLICIES", (a) => UpdatePolicies__factory.connect(a, provider));
    const anchors = await beside(config.anchors, "anchors", "OTA_ANCHORS", (a) => StatusAnchors__factory.connect(a, provider));
    const deltas = await beside(config.deltas, "releaseDeltas", "the deployment file's releaseDeltas", (a) => ReleaseDeltas__factory.connect(a, provider));
    const domain = registryDomain(chainId, addresses.registry);
    return {
      provider,
      registry,
      fleet,
      policies,
      anchors,
      deltas,
      lens: config.lens,
      chainId,
      network: config.network,
      domain,
      fromBlock: config.sources.deployedAtBlock ?? 0,
    };
  } catch (err) {
    provider.destroy();
    throw err;
  }
}

/** The read-only connection with the configured key's wallet, its contracts bound to it. */
export function withSigner(config: OtaConfig, chain: ReadOnlyConnection): Connection {
  const signer = new Wallet(requirePrivateKey(config), chain.provider);
  return {
    ...chain,
    signer,
    registry: chain.registry.connect(signer),
    fleet: chain.fleet.connect(signer),
    policies: chain.policies?.connect(signer),
    anchors: chain.anchors?.connect(signer),
    deltas: chain.deltas?.connect(signer),
  };
}

/**
 * The chain id every endpoint serves, asked of all at once: an endpoint on another chain (or the
 * configured chainId differing) is a configuration error naming it; one that does not answer now
 * is left to the quorum, as long as enough others answer.
 */
async function probeChainIds(config: OtaConfig): Promise<bigint> {
  const urls = config.rpcUrls;
  const answers = await Promise.allSettled(urls.map((url) => probeChainId(url)));
  const served = answers.flatMap((a, i) => (a.status === "fulfilled" ? [{ url: urls[i], chainId: a.value }] : []));
  if (served.length < config.rpcQuorum) {
    if (urls.length === 1) throw (answers[0] as PromiseRejectedResult).reason;
    const why = (reason: unknown) => String((reason as RpcUnreachableError).details?.why ?? (reason as Error).message);
    const down = answers.flatMap((a, i) => (a.status === "rejected" ? [`${shownEndpoint(urls[i])} (${why(a.reason)})`] : []));
    throw new RpcUnreachableError(
      "RPC_UNREACHABLE",
      `only ${served.length} of the ${urls.length} RPC endpoints answer, and ${config.rpcQuorum} must agree: ${down.join(", ")} do not; ` +
        `start them or fix rpcUrls (OTA_RPC_URLS or --rpc), or lower rpcQuorum`,
      { details: { endpoints: urls.map(shownEndpoint), answering: served.length, quorum: config.rpcQuorum } },
    );
  }
  const expected = config.chainId !== undefined ? BigInt(config.chainId) : served[0].chainId;
  const wrong = served.find((s) => s.chainId !== expected);
  if (wrong) {
    const said = config.chainId !== undefined ? `the config says ${config.chainId}` : `${shownEndpoint(served[0].url)} is chain ${expected}`;
    throw new ConfigError(
      "WRONG_CHAIN_ID",
      `wrong chain id: the RPC at ${shownEndpoint(wrong.url)} is chain ${wrong.chainId}, ${said}; fix chainId or ${urls.length > 1 ? "rpcUrls" : "rpcUrl"}`,
      { details: { rpcUrl: shownEndpoint(wrong.url), rpcChainId: Number(wrong.chainId), configChainId: config.chainId } },
    );
  }
  return expected;
}

/** eth_chainId over plain fetch, with a timeout and an error that says what to check. */
async function probeChainId(rpcUrl: string): Promise<bigint> {
  const fail = (why: string, cause?: unknown): never => {
    throw new RpcUnreachableError(
      "RPC_UNREACHABLE",
      `the RPC at ${shownEndpoint(rpcUrl)} does not answer (${why}): start the chain (npm run chain) or fix rpcUrl (OTA_RPC_URL or --rpc)`,
      { cause, details: { rpcUrl: shownEndpoint(rpcUrl), why } },
    );
  };
  let body: { result?: unknown };
  try {
    const response = await fetch(rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    if (!response.ok) return fail(`HTTP ${response.status}`);
    body = (await response.json()) as { result?: unknown };
  } catch (cause) {
    // fetch wraps the socket error: its code (ECONNREFUSED, ENOTFOUND) says most.
    const inner = (cause as { cause?: { code?: string; message?: string } }).cause;
    return fail(inner?.code ?? inner?.message ?? (cause as Error).message, cause);
  }
  if (typeof body.result !== "string" || !/^0x[0-9a-f]+$/i.test(body.result)) return fail("not a JSON-RPC answer to eth_chainId");
  return BigInt(body.result);
}
