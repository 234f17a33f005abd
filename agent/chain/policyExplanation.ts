import { Contract, Interface, isError, toQuantity, type ErrorDescription, type Provider } from "ethers";
import type { RpcSender } from "./eventStream";
import { findRevertData } from "./revertReason";
import { POLICY_REASONS, POLICY_REASONS_ID, declaresInterface, isRefusedCall } from "./policyInterfaces";
import {
  AllOfPolicy__factory,
  ApprovalPolicy__factory,
  IUpdatePolicy__factory,
  LocationPolicy__factory,
  MaintenanceWindowPolicy__factory,
  StagedRollout__factory,
  UpdatePolicies__factory,
} from "./contracts";
import type { InstalledVersion } from "../core/release";
import type { PolicyDevice } from "./updateCheckOnLedger";

/** UpdatePolicies.POLICY_FAILED: the attached policy reverted, ran out of gas or answered malformed data. */
export const POLICY_FAILED = 2n ** 256n - 1n;
/** ComposedPolicy.MEMBER_FAILED: a composer's member failed that way. */
export const MEMBER_FAILED = 2n ** 128n - 1n;
/** UpdatePolicies.POLICY_GAS: what a policy gets for one check. */
const POLICY_GAS = 500_000n;
/** Composers nest at most this deep in a refusal's path (ComposedPolicy keeps 16 levels). */
const MAX_DEPTH = 16;

/** Why the policy at the end of a refusal's path failed: the revert it made, decoded where its error is known. */
export interface PolicyFailure {
  /** The error's name and arguments, e.g. `PolicyMockStrictNoDevice()`, or `Error("...")`; null when unknown. */
  error: string | null;
  /** The revert data (0x when the policy ran out of gas or reverted without data). */
  data: string;
}

/** A policy's answer explained: which policy decided, down a composer's members, and the reason's name. */
export interface PolicyExplanation {
  /** The policy attached (the one UpdatePolicies asked). */
  policy: string;
  /** Its answer: 0 allowed. */
  reason: bigint;
  allowed: boolean;
  /** The members a composer's refusal went through, outermost first. */
  path: { composer: string; member: number; address: string }[];
  /** The policy that refused or failed (the attached one when it is not a composer), its own reason and that reason's name. */
  decidedBy: { policy: string; reason: bigint; name: string | null; failure?: PolicyFailure };
}

/** What the policy was asked, to ask a failed policy again directly and read its revert. */
export interface PolicyQuestion {
  releaseId: string;
  component: string;
  version: bigint;
  device: PolicyDevice;
  installed: InstalledVersion[];
  evidence: string;
}

const COMPOSER = AllOfPolicy__factory.createInterface();
/** The custom errors of every policy the project ships, and the checker's, to name a revert. */
const KNOWN_ERRORS = new Interface(
  [
    AllOfPolicy__factory.abi,
    ApprovalPolicy__factory.abi,
    LocationPolicy__factory.abi,
    MaintenanceWindowPolicy__factory.abi,
    StagedRollout__factory.abi,
    UpdatePolicies__factory.abi,
  ]
    .flat()
    .filter((f, i, all) => f.type === "error" && all.findIndex((g) => g.type === "error" && g.name === f.name) === i),
);

/**
 * Explains a policy's answer (issue 18): for a composer, follows its refusal's path
 * (decodeRefusal, members) to the member that refused; names that member's reason where it
 * declares names (ERC-165 IUpdatePolicyReasons: reasonName); and for a policy that failed
 * (POLICY_FAILED, MEMBER_FAILED) asks it again directly to read its revert and decode the error
 * (when given the `question`). Every call is a read; nothing here decides anything (the ledger's
 * answer stands).
 */
export async function explainPolicyAnswer(provider: Provider, policy: string, reason: bigint, question?: PolicyQuestion): Promise<PolicyExplanation> {
  const explanation: PolicyExplanation = { policy, reason, allowed: reason === 0n, path: [], decidedBy: { policy, reason, name: null } };
  if (reason === 0n) {
    explanation.decidedBy.name = await reasonName(provider, policy, 0n);
    return explanation;
  }
  let current = policy;
  let leaf = reason;
  if (reason !== POLICY_FAILED && reason > MEMBER_FAILED) {
    const refusal = await composerRefusal(provider, current, reason);
    if (refusal) {
      leaf = refusal.leafReason;
      for (const index of refusal.path) {
        if (explanation.path.length >= MAX_DEPTH) break;
        const members = (await new Contract(current, COMPOSER, provider).members()) as string[];
        const address = members[Number(index)];
        if (address === undefined) break; // a path that does not fit the members: stop at the composer
        explanation.path.push({ composer: current, member: Number(index), address });
        current = address;
      }
    }
  }
  explanation.decidedBy = { policy: current, reason: leaf, name: null };
  if (leaf === POLICY_FAILED || leaf === MEMBER_FAILED) {
    if (question) explanation.decidedBy.failure = await failureOf(provider, current, question);
  } else explanation.decidedBy.name = await reasonName(provider, current, leaf);
  return explanation;
}

/** A composer's decodeRefusal, or undefined for a policy that is not one. */
async function composerRefusal(provider: Provider, address: string, reason: bigint): Promise<{ path: bigint[]; leafReason: bigint } | undefined> {
  try {
    const [path, leafReason] = (await new Contract(address, COMPOSER, provider).decodeRefusal(reason)) as [bigint[], bigint];
    return { path: [...path], leafReason };
  } catch (err) {
    if (isRefusedCall(err)) return undefined;
    throw err;
  }
}

/** The name a policy gives its reason code, where it declares names through ERC-165; null otherwise. */
async function reasonName(provider: Provider, address: string, reason: bigint): Promise<string | null> {
  try {
    if ((await declaresInterface(provider, address, POLICY_REASONS_ID)) !== "yes") return null;
    const name = (await new Contract(address, POLICY_REASONS, provider).reasonName(reason)) as string;
    return name === "" ? null : name;
  } catch (err) {
    if (isRefusedCall(err)) return null;
    throw err;
  }
}

/** Asks a failed policy again, with the gas the checker gives it, and decodes its revert. */
async function failureOf(provider: Provider, address: string, q: PolicyQuestion): Promise<PolicyFailure> {
  const data = IUpdatePolicy__factory.createInterface().encodeFunctionData("check", [
    q.releaseId,
    q.component,
    q.version,
    { deviceId: q.device.id, hardwareClass: q.device.hardwareClass, network: q.device.network, region: q.device.region, installed: q.installed },
    q.evidence,
  ]);
  const send = (provider as Partial<RpcSender>).send;
  try {
    // Raw JSON-RPC where the provider has it: the node's revert data as it sent it, whatever ethers makes of it.
    const answer =
      typeof send === "function"
        ? ((await send.call(provider, "eth_call", [{ to: address, data, gas: toQuantity(POLICY_GAS) }, "latest"])) as string)
        : await provider.call({ to: address, data, gasLimit: POLICY_GAS });
    // It answered now: malformed data (not one word), or its state changed since the check.
    return { error: answer.length === 66 ? null : `an answer that is not one word (${(answer.length - 2) / 2} bytes)`, data: answer };
  } catch (err) {
    const revert = revertData(err);
    if (revert === undefined) throw err; // the node did not answer: not the policy's failure
    return { error: describeRevert(revert), data: revert };
  }
}

/** The revert data a node put in its error; "0x" for a revert without data; undefined when it is not a revert. */
function revertData(err: unknown): string | undefined {
  const data = findRevertData(err);
  if (data !== null && /^0x(?:[0-9a-fA-F]{2})*$/.test(data)) return data.toLowerCase();
  return isError(err, "CALL_EXCEPTION") || /revert/i.test(String((err as Error).message ?? "")) ? "0x" : undefined;
}

/** A revert's error by name with its arguments, for the errors of the shipped policies and Solidity's own; null when unknown. */
export function describeRevert(data: string): string | null {
  if (data === "0x") return null;
  let parsed: ErrorDescription | null;
  try {
    parsed = KNOWN_ERRORS.parseError(data);
  } catch {
    return null; // data too short for a selector, or arguments that do not decode
  }
  if (!parsed) return null;
  return `${parsed.name}(${parsed.args.map((a) => (typeof a === "string" ? JSON.stringify(a) : String(a))).join(", ")})`;
}

/** A refusal a device reported, explained for people (the tracker's API and dashboard): JSON-ready. */
export interface NamedRefusal {
  policy: string;
  reason: string;
  path: { composer: string; member: number; address: string }[];
  decidedBy: { policy: string; reason: string; name: string | null };
}

/**
 * The names of refusals, cached: what a policy's reason code means does not change (a composer's
 * members are fixed at construction; a kit policy's reasonName is a table), so each (policy,
 * reason) costs its few reads once. The policy and reason come from a device's report, so from
 * anyone who holds a device key: a name is kept only if it looks like one (at most 64 capitals,
 * digits and underscores), answers are shared while asked, an unanswered or failed question is
 * remembered as null for a minute, and no question waits more than five seconds.
 */
export class RefusalNames {
  private readonly known = new Map<string, { value: NamedRefusal | null; until: number }>();
  private readonly asking = new Map<string, Promise<NamedRefusal | null>>();

  constructor(
    private readonly provider: Provider,
    private readonly o: { max?: number; failureMs?: number; timeoutMs?: number; now?: () => number } = {},
  ) {}

  of(policy: string, reason: string): Promise<NamedRefusal | null> {
    const key = `${policy.toLowerCase()}:${reason}`;
    const now = (this.o.now ?? Date.now)();
    const hit = this.known.get(key);
    if (hit && hit.until > now) return Promise.resolve(hit.value);
    const pending = this.asking.get(key);
    if (pending) return pending;
    const asked = this.ask(policy, reason).then((value) => {
      this.asking.delete(key);
      const max = this.o.max ?? 1024;
      if (this.known.size >= max) this.known.delete(this.known.keys().next().value!);
      this.known.set(key, { value, until: value ? Number.POSITIVE_INFINITY : now + (this.o.failureMs ?? 60_000) });
      return value;
    });
    this.asking.set(key, asked);
    return asked;
  }

  private async ask(policy: string, reason: string): Promise<NamedRefusal | null> {
    if (!/^[0-9]{1,78}$/.test(reason)) return null; // not a reason code: shown as the device sent it
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), this.o.timeoutMs ?? 5_000)));
    try {
      const e = await Promise.race([explainPolicyAnswer(this.provider, policy, BigInt(reason)), timeout]);
      if (!e) return null;
      const name = e.decidedBy.name !== null && /^[A-Z0-9_]{1,64}$/.test(e.decidedBy.name) ? e.decidedBy.name : null;
      return {
        policy,
        reason,
        path: e.path,
        decidedBy: { policy: e.decidedBy.policy, reason: e.decidedBy.reason.toString(), name },
      };
    } catch {
      return null;
    } finally {
      clearTimeout(timer);
    }
  }
}
