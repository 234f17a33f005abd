import { ZeroHash, decodeBytes32String, getAddress, id as roleId, type Provider } from "ethers";
import { UPDATE_POLICY_ID, declaresInterface, isRefusedCall } from "../chain/policyInterfaces";
import { InputError, OtaError } from "../core/errors";
import { componentId } from "../core/release";
import { ConfigError } from "./config";
import { parseBytes32, parseName } from "./parse";
import {
  AllOfPolicy__factory,
  AnyOfPolicy__factory,
  ApprovalPolicy__factory,
  IUpdatePolicy__factory,
  LocationPolicy__factory,
  MaintenanceWindowPolicy__factory,
  StagedRollout__factory,
  type UpdatePolicies,
  type UpdateRegistry,
} from "../chain/contracts";

/**
 * Finding and recognising the update policies behind components and releases (ADR 0005): which
 * contract is attached, what kind of policy it is (by probing its views), and the StagedRollout
 * or ApprovalPolicy a release's commands act on, looked for through composers' members.
 */

export const DEPLOYABLE_KINDS = ["staged-rollout", "location", "approval", "maintenance-window", "all-of", "any-of"] as const;
export type DeployableKind = (typeof DEPLOYABLE_KINDS)[number];
/** StagedRollout.RolloutState, by index. */
export const ROLLOUT_STATES = ["none", "scheduled", "open", "paused", "halted", "aborted"] as const;

/** What a policy at an address is: a shipped kind, a composer not built from this code, or custom. */
export type PolicyKind = DeployableKind | "composer" | "custom";

export const KIND_NAMES: Record<PolicyKind, string> = {
  "staged-rollout": "staged rollout",
  location: "location policy",
  approval: "approval policy",
  "maintenance-window": "maintenance window",
  "all-of": "all-of composer",
  "any-of": "any-of composer",
  composer: "composer",
  custom: "custom policy",
};

/** The kind's name with its article: "a staged rollout", "an approval policy". */
export function aKind(kind: PolicyKind): string {
  return `${/^[aeiou]/.test(KIND_NAMES[kind]) ? "an" : "a"} ${KIND_NAMES[kind]}`;
}

/** A policy as probed: its kind, and a composer's members (recursively). */
export interface PolicyInfo {
  address: string;
  kind: PolicyKind;
  members?: PolicyInfo[];
}

/** Composers nest; past this depth the members are not listed. */
const MAX_DEPTH = 8;

const ADMINISTRATOR_ROLE = roleId("ADMINISTRATOR_ROLE");

/** The UpdatePolicies contract of the connection, or an error saying how to configure one. */
export function requirePolicies(conn: { policies?: UpdatePolicies }): UpdatePolicies {
  if (!conn.policies) {
    throw new ConfigError(
      "NO_POLICIES",
      "no UpdatePolicies contract is configured: redeploy with `npm run deploy:local` (it deploys UpdatePolicies and records it in the deployment file), or set policies (OTA_POLICIES) to its address",
    );
  }
  return conn.policies;
}

/** Refuses before sending when `account` lacks the registry's ADMINISTRATOR_ROLE (policies ask the registry). */
export async function requireAdministrator(registry: UpdateRegistry, account: string): Promise<void> {
  if (!(await registry.hasRole(ADMINISTRATOR_ROLE, account))) {
    throw new OtaError(
      "NOT_ADMINISTRATOR",
      `the account ${account} is not an administrator of the registry (ADMINISTRATOR_ROLE): send with an administrator's key (OTA_PRIVATE_KEY or keyFile)`,
      { details: { account } },
    );
  }
}

/** A component or a release, as `--component` / `--release` name it. */
export interface PolicyTarget {
  type: "component" | "release";
  id: string;
  /** The component's name when given by name. */
  name?: string;
  /** The component of a release (for a component target, its own id). */
  component: string;
}

/** Exactly one of --component <name|id> and --release <id>, checked in form only. */
export function parseTarget(o: { component?: string; release?: string }): { type: "component" | "release"; id: string; name?: string } {
  if ((o.component === undefined) === (o.release === undefined)) {
    throw new InputError("INVALID_INPUT", "give exactly one target: --component <name|id> or --release <release id>");
  }
  if (o.release !== undefined) return { type: "release", id: parseBytes32(o.release, "--release") };
  const text = o.component!.trim();
  if (/^0x[0-9a-fA-F]{64}$/.test(text)) return { type: "component", id: parseBytes32(text, "--component") };
  const name = parseName(text, "--component");
  return { type: "component", id: componentId(name), name };
}

/** The target checked against the ledger: the component is registered, the release published. */
export async function resolveTarget(registry: UpdateRegistry, o: { component?: string; release?: string }): Promise<PolicyTarget> {
  const target = parseTarget(o);
  if (target.type === "release") return { ...target, component: await releaseComponent(registry, target.id) };
  try {
    await registry.component(target.id);
  } catch (err) {
    if (!refused(err)) throw err;
    // Not passed on as the cause: the CLI would report the revert instead of this error.
    throw new InputError(
      "UNKNOWN_COMPONENT",
      `no component ${target.name ? `"${target.name}" (id ${target.id})` : target.id} is registered: check the name, or register it (ota-ledger component register <name> --provider <id>)`,
      { details: { component: target.id } },
    );
  }
  return { ...target, component: target.id };
}

/** The component of a published release; refuses an id the registry does not know. */
export async function releaseComponent(registry: UpdateRegistry, releaseId: string): Promise<string> {
  if ((await registry.releaseStatus(releaseId)) === 0n) {
    throw new InputError("UNKNOWN_RELEASE", `no release ${releaseId} is published on this registry: check the id (release publish prints it)`, {
      details: { releaseId },
    });
  }
  return (await registry.releaseState(releaseId)).component;
}

/** The policy attached to exactly this target (not the one it inherits), or undefined. */
export async function attachedTo(policies: UpdatePolicies, target: string): Promise<string | undefined> {
  // policyFor(t, t) answers the policy of t itself: its own, else "its component's", which is t's again.
  const address = await policies.policyFor(target, target);
  return address === "0x0000000000000000000000000000000000000000" ? undefined : getAddress(address);
}

const zeroDevice = { deviceId: ZeroHash, hardwareClass: 0, network: ZeroHash, region: ZeroHash, installed: [] };

/**
 * Whether the address holds an update policy: one that declares IUpdatePolicy through ERC-165, or
 * (without ERC-165) code that answers IUpdatePolicy.check asked with an empty context. A contract
 * declaring ERC-165 without IUpdatePolicy is not one; a kit policy that refuses all-zero inputs is.
 */
export async function answersPolicyCheck(provider: Provider, address: string): Promise<"ok" | "no-code" | "no-answer"> {
  if ((await provider.getCode(address)) === "0x") return "no-code";
  // ERC-165 first (the policy kit and the composers declare IUpdatePolicy); "silent": a policy written before the kit.
  const declared = await declaresInterface(provider, address, UPDATE_POLICY_ID);
  if (declared !== "silent") return declared === "yes" ? "ok" : "no-answer";
  try {
    await IUpdatePolicy__factory.connect(address, provider).check(ZeroHash, ZeroHash, 0, zeroDevice, "0x");
    return "ok";
  } catch (err) {
    if (refused(err)) return "no-answer";
    throw err;
  }
}

/** Refuses an address that is not a contract answering IUpdatePolicy.check. */
export async function requireUpdatePolicy(provider: Provider, address: string, what: string): Promise<void> {
  const answer = await answersPolicyCheck(provider, address);
  if (answer === "no-code") {
    throw new InputError("NOT_A_POLICY", `${what}: there is no contract at ${address} on this chain: deploy a policy first (ota-ledger policy deploy <kind>)`, {
      details: { address },
    });
  }
  if (answer === "no-answer") {
    throw new InputError(
      "NOT_A_POLICY",
      `${what}: the contract at ${address} neither declares IUpdatePolicy through ERC-165 nor answers IUpdatePolicy.check(releaseId, component, version, device, evidence): it is not an update policy (build policies on contracts/policies/UpdatePolicyBase.sol)`,
      { details: { address } },
    );
  }
}

const refused = isRefusedCall;

/** Whether a view call succeeds and decodes (a probe: a refusal means "not this kind"; an RPC failure is thrown). */
async function answers(call: () => Promise<unknown>): Promise<boolean> {
  try {
    await call();
    return true;
  } catch (err) {
    if (refused(err)) return false;
    throw err;
  }
}

/**
 * What the policy at `address` is, by probing the views each shipped kind has: rolloutWaves
 * (staged rollout), approvers (approval), window (maintenance window), members (a composer,
 * its members probed in turn), rule (location); else custom.
 */
export async function identifyPolicy(runner: Provider, address: string, depth = 0): Promise<PolicyInfo> {
  address = getAddress(address);
  if (await answers(() => StagedRollout__factory.connect(address, runner).rolloutWaves(ZeroHash))) return { address, kind: "staged-rollout" };
  if (await answers(() => ApprovalPolicy__factory.connect(address, runner).approvers())) return { address, kind: "approval" };
  if (await answers(() => MaintenanceWindowPolicy__factory.connect(address, runner).window())) return { address, kind: "maintenance-window" };
  let members: string[] | undefined;
  try {
    members = await AllOfPolicy__factory.connect(address, runner).members();
  } catch (err) {
    if (!refused(err)) throw err;
    members = undefined;
  }
  if (members) {
    // A composer has no immutables, so its deployed code is a slice of its creation code.
    const code = (await runner.getCode(address)).slice(2);
    const kind: PolicyKind = AllOfPolicy__factory.bytecode.includes(code) ? "all-of" : AnyOfPolicy__factory.bytecode.includes(code) ? "any-of" : "composer";
    if (depth >= MAX_DEPTH) return { address, kind };
    const listed: PolicyInfo[] = [];
    for (const m of members) listed.push(await identifyPolicy(runner, m, depth + 1));
    return { address, kind, members: listed };
  }
  if (await answers(() => LocationPolicy__factory.connect(address, runner).rule(ZeroHash))) return { address, kind: "location" };
  return { address, kind: "custom" };
}

/** The policies of `kind` in the tree (the policy itself, or members at any depth). */
export function policiesOfKind(info: PolicyInfo, kind: PolicyKind): string[] {
  const own = info.kind === kind ? [info.address] : [];
  const inner = (info.members ?? []).flatMap((m) => policiesOfKind(m, kind));
  return [...new Set([...own, ...inner])];
}

/** Refuses a policy given by address when it is not of the kind the command acts on. */
export async function requireKind(provider: Provider, address: string, kind: PolicyKind, what = "--policy"): Promise<PolicyInfo> {
  const info = await identifyPolicy(provider, address);
  if (info.kind !== kind) {
    const given = (await provider.getCode(address)) === "0x" ? "no contract" : aKind(info.kind);
    throw new InputError(
      "POLICY_WRONG_KIND",
      `${what}: ${address} is ${given}, not ${aKind(kind)}: give the address of ${aKind(kind)} (ota-ledger policy show shows what is attached)`,
      {
        details: { address, kind: info.kind, expected: kind },
      },
    );
  }
  return info;
}

/**
 * The policy of `kind` a release's command acts on: `explicit` (--policy) when given, checked to be
 * of that kind; else the one in the policy that decides for the release (its own, else its
 * component's), looked for through composers' members. The release must be published.
 */
export async function policyOfRelease(
  conn: { provider: Provider; registry: UpdateRegistry; policies?: UpdatePolicies },
  releaseId: string,
  kind: "staged-rollout" | "approval",
  explicit?: string,
): Promise<string> {
  const component = await releaseComponent(conn.registry, releaseId);
  if (explicit) return (await requireKind(conn.provider, explicit, kind)).address;
  const policies = requirePolicies(conn);
  const attached = await policies.policyFor(releaseId, component);
  if (attached === "0x0000000000000000000000000000000000000000") {
    throw new OtaError(
      "NO_POLICY_ATTACHED",
      `release ${releaseId} has no update policy attached (neither its own nor its component's): attach ${aKind(kind)} (ota-ledger policy attach <address> --release ${releaseId}) or give --policy <address>`,
      { details: { releaseId } },
    );
  }
  const tree = await identifyPolicy(conn.provider, attached);
  const found = policiesOfKind(tree, kind);
  if (found.length === 0) {
    throw new OtaError(
      "NO_SUCH_POLICY",
      `the policy deciding for release ${releaseId} (${tree.address}, ${aKind(tree.kind)}) is not and does not contain ${aKind(kind)}: attach one, or give --policy <address>`,
      { details: { releaseId, attached: tree.address, kind: tree.kind } },
    );
  }
  if (found.length > 1) {
    throw new InputError(
      "SEVERAL_POLICIES",
      `the policy deciding for release ${releaseId} contains ${found.length} ${KIND_NAMES[kind]}s (${found.join(", ")}): choose one with --policy <address>`,
      {
        details: { releaseId, candidates: found },
      },
    );
  }
  return found[0];
}

/** A bytes32 label as text when it is a short string, else as hex. */
export function labelText(label: string): string {
  try {
    return decodeBytes32String(label);
  } catch {
    return label;
  }
}
