import { getAddress, ZeroAddress, type Provider } from "ethers";
import { ComposedPolicy__factory, StagedRollout__factory } from "./contracts";
import { callLedger, LedgerUnavailable } from "./ledgerCall";
import { declaresInterface } from "./policyInterfaces";
import { InputError } from "../core/errors";
import { EVIDENCE_ENVELOPE_MAGIC } from "../core/policyEvidence";

/** How deep composers (AllOfPolicy, AnyOfPolicy) are searched for a staged rollout. */
export const MAX_POLICY_DEPTH = 4;

/**
 * Reads a release's policy as a tree (composers and their members) for the tracker's evidence:
 * finds the StagedRollout contracts in a policy: the policy itself, or among a composer's members,
 * recursively (at most MAX_POLICY_DEPTH deep). What a policy is never changes (a composer's
 * members are fixed at construction), so answers are cached. An outage (LEDGER_UNAVAILABLE) is
 * thrown, never taken for "not a rollout".
 */
export class StagedRolloutFinder {
  /** Policy address -> its members (a composer) or null (anything else). */
  private readonly members = new Map<string, string[] | null>();
  private readonly staged = new Map<string, boolean>();

  constructor(private readonly provider: Provider) {}

  async in(policy: string, depth = 0): Promise<string[]> {
    if (policy === ZeroAddress || depth > MAX_POLICY_DEPTH) return [];
    const members = await this.membersOf(policy);
    if (members === null) return (await this.isStagedRollout(policy)) ? [policy] : [];
    const out = new Set<string>();
    for (const m of members) for (const r of await this.in(m, depth + 1)) out.add(r);
    return [...out];
  }

  /** The leaf policies in `policy` (not composers): the ones that read evidence. */
  async leaves(policy: string, depth = 0): Promise<string[]> {
    if (policy === ZeroAddress || depth > MAX_POLICY_DEPTH) return [];
    const members = await this.membersOf(policy);
    if (members === null) return [getAddress(policy)];
    const out = new Set<string>();
    for (const m of members) for (const p of await this.leaves(m, depth + 1)) out.add(p);
    return [...out];
  }

  /**
   * Whether the policy takes its own part of an evidence envelope (it declares the envelope's
   * magic through ERC-165: the kit since issue 18). One deployed before reads evidence whole.
   */
  async readsParts(policy: string): Promise<boolean> {
    let reads = this.parts.get(policy);
    if (reads === undefined) {
      reads = (await this.answer(() => declaresInterface(this.provider, policy, EVIDENCE_ENVELOPE_MAGIC))) === "yes";
      this.parts.set(policy, reads);
    }
    return reads;
  }

  private readonly parts = new Map<string, boolean>();

  /**
   * The one check before a policy is given its own part of a device's evidence (the tracker's
   * evidence route, `policy evidence --device-config`): it is a leaf of the release's policy
   * `attached` (composers pass evidence on; POLICY_NOT_ATTACHED) and reads its part of an envelope
   * (POLICY_READS_WHOLE_EVIDENCE otherwise: one deployed before the envelope takes it whole).
   */
  async requirePartReader(attached: string, policy: string, releaseId: string): Promise<void> {
    if (!(await this.leaves(attached)).includes(getAddress(policy))) {
      throw new InputError(
        "POLICY_NOT_ATTACHED",
        `${policy} is not a policy deciding for release ${releaseId} (${attached}) nor a member of it that reads evidence (composers pass it on): check the address (ota-ledger policy show --release ${releaseId})`,
      );
    }
    if (!(await this.readsParts(policy))) {
      throw new InputError(
        "POLICY_READS_WHOLE_EVIDENCE",
        `${policy} reads its evidence whole (it does not declare the evidence envelope: built before it, or not on the policy kit): give its evidence without naming a policy, for every policy`,
      );
    }
  }

  private async membersOf(policy: string): Promise<string[] | null> {
    let members = this.members.get(policy);
    if (members === undefined) {
      const answered = await this.answer(() => ComposedPolicy__factory.connect(policy, this.provider).members());
      members = answered === undefined ? null : [...answered];
      this.members.set(policy, members);
    }
    return members;
  }

  private async isStagedRollout(policy: string): Promise<boolean> {
    let is = this.staged.get(policy);
    if (is === undefined) {
      is = (await this.answer(() => StagedRollout__factory.connect(policy, this.provider).MAX_WAVES())) !== undefined;
      this.staged.set(policy, is);
    }
    return is;
  }

  /** The call's answer, or undefined when the contract does not answer it (a revert, no such function). */
  private answer<T>(call: () => Promise<T>): Promise<T | undefined> {
    return callLedger(call).catch((err) => {
      if (err instanceof LedgerUnavailable) throw err;
      return undefined;
    });
  }
}
