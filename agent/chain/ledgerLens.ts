import { toQuantity, type BlockTag, type Provider } from "ethers";
import type { RpcSender } from "./eventStream";
import { UpdateCheckLens__factory, type FleetRegistry, type UpdatePolicies, type UpdateRegistry } from "./contracts";
import { DEVICE_STANDING, INSTALL_CHECK, RELEASE_STATUS, ledgerName, type DeviceStandingName, type ReleaseStatusName } from "../core/ledgerCodes";
import type { InstalledVersion } from "../core/release";
import type { DeviceCredential } from "../crypto/deviceCredential";
import type { LedgerRelease } from "./releaseEvents";
import type { LedgerUpdateVerdict } from "./updateCheckOnLedger";
import { decodeFunctionResult, encodeArguments, encodeFunctionCall } from "./abiCodec";
import { LedgerUnavailable } from "./ledgerCall";

const ZERO_ADDRESS = "0x" + "00".repeat(20);
const ZERO_ID = "0x" + "00".repeat(32);
const NO_DEVICE: DeviceCredential = {
  record: { id: ZERO_ID, publicKey: "0x", hardwareClass: 0, network: ZERO_ID, region: ZERO_ID },
  batchId: 0,
  proof: [],
};
const lens = UpdateCheckLens__factory.createInterface();
const answer = lens.getFunction("answer");

/** What the registry stores for a release (ReleaseState). */
export interface RegisteredRelease {
  component: string;
  provider: number;
  version: bigint;
  publishedAt: number;
  status: ReleaseStatusName;
  hardware: number[];
}

/** Everything the ledger knows now that one update check decides on, read at one block. */
export interface UpdateFacts {
  block: { number: number; timestamp: number };
  /** The registry's state of the release; undefined when it does not know the id. */
  stored: RegisteredRelease | undefined;
  providerName: string;
  providerBarred: boolean;
  /**
   * Whether the signer is valid for the release (docs/adr/0016): for a published release, the key
   * the registry recorded for it, valid by its term at the release's publication (a key retired
   * since still counts); for one not yet published, whether the key may sign now.
   */
  signerRegistered: boolean;
  /** Whether the signer may sign new releases now (added, not retired). */
  signerActive: boolean;
  /** Whether the release's recorded key was retired as compromised at or before its publication. */
  signerCompromised: boolean;
  /** Whether the signer is a contract (ERC-1271), and whether it vouched for the signature. */
  signerIsContract: boolean;
  signerVouches: boolean;
  /** The status of each release the query named as running, by id (lower case). */
  running: Map<string, ReleaseStatusName>;
  /** The registry's installable check, then the attached policy's (as checkUpdateOnLedger). */
  verdict: LedgerUpdateVerdict;
  /** The device's standing; undefined when the query named no device. */
  standing: DeviceStandingName | undefined;
}

export interface UpdateFactsQuery {
  /** The release as its event told it (or as its author claims it, before publication). */
  release: Pick<LedgerRelease, "id" | "record" | "signer" | "signature">;
  device?: DeviceCredential;
  installed?: InstalledVersion[];
  running?: string[];
  evidence?: string;
}

type LensChain = {
  provider: Provider;
  registry: UpdateRegistry;
  fleet?: FleetRegistry;
  policies?: UpdatePolicies;
  /**
   * The address of a deployed lens (the deployment's updateCheckLens, or the `lens` setting): it is
   * asked with `answer`, so a read carries the query only, not the lens's 12 KB of creation code.
   * Used once its code is verified to be this build's lens; else the creation code is sent.
   */
  lens?: string;
};

/**
 * Reads every ledger fact of one update check in one `eth_call` (docs/adr/0012): the creation code
 * of contracts/lens/UpdateCheckLens.sol with the query, sent with no `to`, whose constructor asks
 * the registries and answers. Nothing needs to be deployed or configured; any EVM node that runs
 * `eth_call` runs it. Where the lens is deployed (chain.lens), the same read calls it instead and
 * sends about a twelfth of the bytes. `blockTag` pins the read (e.g. to the block a storage proof is for).
 */
export async function readUpdateFacts(chain: LensChain, q: UpdateFactsQuery, blockTag?: BlockTag): Promise<UpdateFacts> {
  return (await readUpdateFactsOf(chain, [q], blockTag))[0];
}

/**
 * {readUpdateFacts} for several queries at one block, in as few eth_calls as the initcode limit
 * allows (EIP-3860: 48 KiB of creation code and arguments per call).
 */
export async function readUpdateFactsOf(chain: LensChain, queries: UpdateFactsQuery[], blockTag?: BlockTag): Promise<UpdateFacts[]> {
  if (queries.length === 0) return [];
  const encoded = queries.map((q) => lensQuery(chain, q));
  const deployed = await deployedLens(chain);
  const call = deployed
    ? { to: deployed, data: encodeFunctionCall(answer, [encoded]) }
    : { data: UpdateCheckLens__factory.bytecode + encodeArguments(lens.deploy.inputs, [encoded]) };
  // The same bound for a call to the deployed lens: it keeps one request's size and gas in reason.
  if ((call.data.length - 2) / 2 > MAX_INITCODE_BYTES && queries.length > 1) {
    const half = Math.ceil(queries.length / 2);
    return [...(await readUpdateFactsOf(chain, queries.slice(0, half), blockTag)), ...(await readUpdateFactsOf(chain, queries.slice(half), blockTag))];
  }
  // The constructor answers exactly as `answer` returns.
  const all = answerOf(await ethCall(chain.provider, call, blockTag), queries.length);
  return queries.map((q, i) => factsOf(q, all[i]));
}

/**
 * The lens's answer decoded. An answer that is not one (cut short, lengths or values that do not
 * fit, another number of facts than queries) comes from the endpoint, not the ledger: an outage
 * of the ledger connection, tried again (LEDGER_UNAVAILABLE), never a refusal of the release.
 */
function answerOf(data: string, queries: number): unknown[] {
  let all: unknown[];
  try {
    [all] = decodeFunctionResult(answer, data) as [unknown[]];
  } catch (err) {
    throw new LedgerUnavailable("LEDGER_UNAVAILABLE", `the RPC endpoint's answer to the update check is not the lens's: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (all.length !== queries)
    throw new LedgerUnavailable("LEDGER_UNAVAILABLE", `the RPC endpoint's answer to the update check holds ${all.length} facts for ${queries} queries`);
  return all;
}

/**
 * An eth_call, as raw JSON-RPC where the provider has it: ethers' call() copies and checks the
 * 12 KB of creation code byte by byte several times, which a fleet in one process pays per device.
 */
async function ethCall(provider: Provider, call: { to?: string; data: string }, blockTag?: BlockTag): Promise<string> {
  const raw = (provider as Partial<RpcSender>).send;
  if (typeof raw !== "function") return provider.call({ ...call, ...(blockTag === undefined ? {} : { blockTag }) });
  return raw.call(provider, "eth_call", [call, blockTag === undefined ? "latest" : typeof blockTag === "string" ? blockTag : toQuantity(blockTag)]);
}

/** Per provider, per address: whether the code there is this build's lens (a failed check is asked again). */
const verifiedLenses = new WeakMap<Provider, Map<string, Promise<boolean>>>();

/**
 * The chain's deployed lens, if its code is the runtime code this build's lens deploys: what the
 * node answers for the creation code run with no query (one check per provider and address, two
 * calls). Code that differs (another build's lens, or another contract) is not trusted with the
 * device's questions: the creation code is sent instead.
 */
async function deployedLens(chain: LensChain): Promise<string | undefined> {
  if (!chain.lens) return undefined;
  const address = chain.lens.toLowerCase();
  let checks = verifiedLenses.get(chain.provider);
  if (!checks) verifiedLenses.set(chain.provider, (checks = new Map()));
  let check = checks.get(address);
  if (!check) {
    check = Promise.all([
      chain.provider.getCode(address),
      ethCall(chain.provider, { data: UpdateCheckLens__factory.bytecode + lens.encodeDeploy([[]]).slice(2) }),
    ]).then(([code, runtime]) => code !== "0x" && code.toLowerCase() === runtime.toLowerCase());
    checks.set(address, check);
    check.catch(() => checks.delete(address)); // the ledger did not answer: ask again next time
  }
  return (await check) ? chain.lens : undefined;
}

const MAX_INITCODE_BYTES = 49_152;

function lensQuery(chain: LensChain, q: UpdateFactsQuery) {
  if (q.device && !chain.fleet) throw new TypeError("readUpdateFacts: a device's standing needs the fleet registry");
  const device = q.device ?? NO_DEVICE;
  return {
    registry: String(chain.registry.target),
    fleet: chain.fleet ? String(chain.fleet.target) : ZERO_ADDRESS, // asked only about a device
    policies: chain.policies ? String(chain.policies.target) : ZERO_ADDRESS,
    releaseId: q.release.id,
    release: q.release.record,
    signer: q.release.signer,
    signature: q.release.signature,
    device: device.record,
    batchId: device.batchId,
    proof: device.proof,
    installed: q.installed ?? [],
    running: q.running ?? [],
    evidence: q.evidence ?? "0x",
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function factsOf(q: UpdateFactsQuery, f: any): UpdateFacts {
  const status = (i: bigint) => ledgerName(RELEASE_STATUS, i);
  return {
    block: { number: Number(f.blockNumber), timestamp: Number(f.blockTimestamp) },
    stored: f.known
      ? {
          component: f.state.component,
          provider: Number(f.state.provider),
          version: f.state.version,
          publishedAt: Number(f.state.publishedAt),
          status: status(f.state.status),
          hardware: f.state.hardware.map(Number),
        }
      : undefined,
    providerName: f.providerName,
    providerBarred: f.providerBarred,
    signerRegistered: f.signerRegistered,
    signerActive: f.signerActive,
    signerCompromised: f.signerCompromised,
    signerIsContract: f.signerCodeSize > 0n,
    signerVouches: f.signerVouches,
    running: new Map((q.running ?? []).map((id, i) => [id.toLowerCase(), status(f.runningStatus[i])])),
    verdict: {
      verdict: ledgerName(INSTALL_CHECK, f.verdict),
      policy: BigInt(f.policy) === 0n ? null : f.policy,
      reason: f.reason,
    },
    standing: q.device ? ledgerName(DEVICE_STANDING, f.standing) : undefined,
  };
}
