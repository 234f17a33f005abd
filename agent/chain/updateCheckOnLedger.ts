import type { UpdatePolicies, UpdateRegistry } from "./contracts";
import { INSTALL_CHECK, ledgerName, type InstallCheckCode } from "../core/ledgerCodes";
import type { InstalledVersion, ReleaseRecord } from "../core/release";

/** The device as a policy is asked about it (its ledger record) and what it runs. */
export interface PolicyDevice {
  id: string;
  hardwareClass: number;
  network: string; // bytes32
  region: string; // bytes32
}

/** The ledger's answer for one device and one release: the registry's verdict, then the attached policy's. */
export interface LedgerUpdateVerdict {
  verdict: InstallCheckCode;
  policy: string | null; // the policy asked, if any
  reason: bigint; // its answer: 0 allowed; UpdatePolicies.POLICY_FAILED when it reverted
}

/**
 * Asks the ledger whether `device` may take the release now (APP-II-3, CAP-11.3-h): through
 * UpdatePolicies.checkUpdate when the deployment has it (the registry's installable check, then the
 * administrators' policy attached to the release or its component), else the registry's check
 * alone. Every agent asks this one question, so no policy rule is written again off-chain.
 */
export async function checkUpdateOnLedger(
  chain: { registry: UpdateRegistry; policies?: UpdatePolicies },
  record: ReleaseRecord,
  device: PolicyDevice,
  installed: InstalledVersion[],
  evidence = "0x",
): Promise<LedgerUpdateVerdict> {
  if (!chain.policies) {
    return { verdict: ledgerName(INSTALL_CHECK, await chain.registry.checkInstallable(record, device.hardwareClass, installed)), policy: null, reason: 0n };
  }
  const [verdict, policy, reason] = await chain.policies.checkUpdate(
    record,
    { deviceId: device.id, hardwareClass: device.hardwareClass, network: device.network, region: device.region, installed },
    evidence,
  );
  return { verdict: ledgerName(INSTALL_CHECK, verdict), policy: BigInt(policy) === 0n ? null : policy, reason };
}

/** Whether the verdict lets the device take the release (a vulnerable one is the device's own call). */
export function allowsUpdate(v: LedgerUpdateVerdict): boolean {
  return (v.verdict === "INSTALLABLE" || v.verdict === "RELEASE_VULNERABLE") && v.reason === 0n;
}
