import path from "node:path";
import type { ReadOnlyConnection } from "./connect";
import { InputError, OtaError } from "../core/errors";
import { formatVersion } from "../core/version";
import type { InstalledVersion } from "../core/release";
import { fetchRelease } from "../chain/releaseEvents";
import { allowsUpdate, checkUpdateOnLedger } from "../chain/updateCheckOnLedger";
import { explainPolicyAnswer, type PolicyExplanation } from "../chain/policyExplanation";
import { loadDeviceConfig } from "../consumer/deviceConfig";
import { AgentMemory } from "../consumer/agentMemory";
import { loadBootState } from "../consumer/slots/bootState";
import { installedOf } from "../consumer/slots/bootTransitions";

/** `policy check`'s answer: the ledger's verdict for one device and one release, and the policy's explained. */
export interface PolicyCheckAnswer {
  release: { id: string; component: string; version: string };
  device: { id: string; installed: { component: string; version: string }[]; evidence: string; evidenceFrom: "device" | "--evidence" | "none" };
  /** The registry's installable check (INSTALLABLE, HARDWARE_NOT_SUPPORTED...). */
  verdict: string;
  /** The policy asked (null: none attached, or the registry refused first) and its answer explained. */
  policy: PolicyExplanation | null;
  allowed: boolean;
}

/**
 * Asks the ledger what the device would be told (issue 18): the release's record from its event,
 * the device's record from its device.json, what it runs from its boot state and the evidence it
 * holds for the release from its agent state (or `evidence`); then UpdatePolicies.checkUpdate, and
 * the policy's answer explained (agent/chain/policyExplanation). Reads only: the device's files
 * are not written, so it may run beside `device run`.
 */
export async function checkDevicePolicy(conn: ReadOnlyConnection, deviceConfig: string, releaseId: string, evidence?: string): Promise<PolicyCheckAnswer> {
  const d = await loadDeviceConfig(deviceConfig);
  const heard = await fetchRelease(conn.registry, conn.domain, releaseId, conn.fromBlock);
  if (!heard) {
    throw new InputError(
      "UNKNOWN_RELEASE",
      `no release ${releaseId} is published on this registry from block ${conn.fromBlock}: check the id (release publish prints it)`,
      {
        details: { releaseId },
      },
    );
  }
  const installed = await installedOn(d.dataDir);
  const held = (await AgentMemory.open(path.join(d.dataDir, "agent-state.json"))).evidence.get(releaseId.toLowerCase());
  const asked = evidence ?? held ?? "0x";
  const r = d.credential.record;
  const device = { id: r.id, hardwareClass: r.hardwareClass, network: r.network, region: r.region };
  const v = await checkUpdateOnLedger(conn, heard.record, device, installed, asked);
  const policy =
    v.policy === null
      ? null
      : await explainPolicyAnswer(conn.provider, v.policy, v.reason, {
          releaseId,
          component: heard.record.component,
          version: heard.record.version,
          device,
          installed,
          evidence: asked,
        });
  return {
    release: { id: releaseId.toLowerCase(), component: heard.record.component, version: formatVersion(heard.record.version) },
    device: {
      id: r.id,
      installed: installed.map((i) => ({ component: i.component, version: formatVersion(i.version) })),
      evidence: asked,
      evidenceFrom: evidence !== undefined ? "--evidence" : held !== undefined ? "device" : "none",
    },
    verdict: v.verdict,
    policy,
    allowed: allowsUpdate(v),
  };
}

/** What the device's boot state says it runs (nothing for a device that never started). */
async function installedOn(dataDir: string): Promise<InstalledVersion[]> {
  const loaded = await loadBootState(path.join(dataDir, "slots"));
  if ("corrupt" in loaded) {
    throw new OtaError(
      "BOOT_STATE_CORRUPT",
      `the device's boot state in ${dataDir} cannot be read (${loaded.corrupt}): it is in safe mode; see device install`,
      {
        details: { dataDir },
      },
    );
  }
  return installedOf(loaded.state);
}

/** The answer for people: the decision first, then who decided and why. */
export function policyCheckLines(a: PolicyCheckAnswer): string[] {
  const lines = [`${a.allowed ? "allowed" : "refused"}: device ${a.device.id} and release ${a.release.id} (${a.release.version})`, `  registry   ${a.verdict}`];
  if (!a.policy) {
    lines.push(
      `  policy     ${a.verdict === "INSTALLABLE" || a.verdict === "RELEASE_VULNERABLE" ? "none attached" : "not asked (the registry refused first)"}`,
    );
    return lines;
  }
  const p = a.policy;
  lines.push(`  policy     ${p.policy} answered ${p.reason === 0n ? "0 (allowed)" : p.reason.toString()}`);
  for (const step of p.path) lines.push(`    member ${step.member} of ${step.composer}: ${step.address}`);
  if (!p.allowed) {
    lines.push(`  refused by ${p.decidedBy.policy}: ${refusalWhy(p.decidedBy)}`);
  }
  lines.push(
    `  evidence   ${a.device.evidence === "0x" ? "none" : `${(a.device.evidence.length - 2) / 2} bytes`} (${a.device.evidenceFrom === "none" ? "the device holds none" : `from ${a.device.evidenceFrom}`})`,
  );
  return lines;
}

/** Why the policy that decided refused: its reason by name, or how it failed (policy check, device install). */
export function refusalWhy(by: PolicyExplanation["decidedBy"]): string {
  return by.failure
    ? `failed: ${by.failure.error ?? (by.failure.data === "0x" ? "reverted without data, or ran out of its gas" : `reverted with ${by.failure.data}`)}`
    : `reason ${by.reason}${by.name ? ` (${by.name})` : " (the policy names no reasons)"}`;
}
