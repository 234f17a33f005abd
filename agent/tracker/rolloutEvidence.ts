import { getAddress, type Provider } from "ethers";
import { StagedRollout__factory, type UpdatePolicies } from "../chain/contracts";
import { callLedger } from "../chain/ledgerCall";
import { StagedRolloutFinder } from "../chain/stagedRollouts";
import { InputError } from "../core/errors";
import { EVERY_POLICY, splitEvidence } from "../core/policyEvidence";
import { buildCohort, encodeRolloutEvidence } from "../crypto/cohortTree";
import type { FleetStore } from "./store";

/**
 * The evidence the update policies read (APP-II-3), kept per release and device and handed to each
 * device with its notices: a staged rollout's cohorts (checked against the roots on the ledger),
 * an administrator's evidence for one policy or all, and what a parent module hands down.
 */
export class RolloutEvidence {
  /** The staged rollouts in a release's policy, whose cohort roots the cohorts sent here must match. */
  private readonly stagedRollouts: StagedRolloutFinder;

  constructor(
    private readonly deps: {
      store: FleetStore;
      chain: { provider: Provider; policies?: UpdatePolicies };
      log: (line: string) => void;
    },
  ) {
    this.stagedRollouts = new StagedRolloutFinder(deps.chain.provider);
  }

  /**
   * The cohorts of a staged rollout (device ids per wave, as the administrator built them): each
   * device's evidence (wave index and Merkle proof, agent/crypto/cohortTree) is kept, checked by
   * the ledger with every notice and handed to the device with it. When the release's policy is
   * a StagedRollout, each cohort's root must be the root it holds on the ledger.
   */
  async setRolloutCohorts(releaseId: string, waves: string[][]): Promise<{ devices: number; roots: string[] }> {
    const cohorts = waves.map((ids) => buildCohort(ids));
    const policies = this.deps.chain.policies;
    const release = this.deps.store.catalogue.release(releaseId);
    // The evidence is keyed by each staged rollout of a composed policy, so that the policies
    // composed with it keep their own parts; otherwise it goes whole to every policy.
    let keys = [EVERY_POLICY];
    if (policies && release) {
      const policy = await callLedger(() => policies.policyFor(releaseId, release.component));
      // Each staged rollout in the release's policy (itself, or inside composers) must hold these roots. An outage is not skipped.
      const rollouts = await this.stagedRollouts.in(policy);
      for (const rollout of rollouts) {
        const onLedger = await callLedger(() => StagedRollout__factory.connect(rollout, this.deps.chain.provider).rolloutWaves(releaseId));
        cohorts.forEach((c, i) => {
          if (onLedger[i]?.cohortRoot.toLowerCase() !== c.root.toLowerCase()) {
            throw new InputError(
              "ROLLOUT_ROOT_MISMATCH",
              `wave ${i}'s cohort has root ${c.root}, the rollout ${rollout} on the ledger has ${onLedger[i]?.cohortRoot ?? "no such wave"}`,
            );
          }
        });
      }
      // A rollout that is the release's whole policy takes the evidence whole, as it always has;
      // so does one deployed before the envelope (it would read an envelope as malformed evidence).
      const alone = rollouts.length === 1 && getAddress(rollouts[0]) === getAddress(policy);
      let readParts = true;
      for (const r of rollouts) readParts = readParts && (await this.stagedRollouts.readsParts(r));
      if (rollouts.length > 0 && !alone && readParts) keys = rollouts;
    }
    const entries = new Map<string, string>();
    cohorts.forEach((c, wave) =>
      c.deviceIds.forEach((id, k) => entries.has(id.toLowerCase()) || entries.set(id.toLowerCase(), encodeRolloutEvidence(wave, c.proofs[k]))),
    );
    const list = [...entries].map(([deviceId, evidence]) => ({ deviceId, evidence }));
    this.deps.store.transaction(() => keys.forEach((key) => this.deps.store.evidence.set(releaseId, key, list)));
    return { devices: entries.size, roots: cohorts.map((c) => c.root) };
  }

  /**
   * An administrator's evidence for one policy (its address) or for every policy (EVERY_POLICY),
   * per device, for a release: kept and handed to each device with its notices, each policy of a
   * composition reading its own part (agent/core/policyEvidence). Nothing is kept when one entry
   * is refused.
   */
  async setPolicyEvidence(releaseId: string, policy: string, devices: Record<string, string>): Promise<{ devices: number }> {
    const policies = this.deps.chain.policies;
    const release = this.deps.store.catalogue.release(releaseId);
    const ids = Object.keys(devices);
    if (policy !== EVERY_POLICY) {
      // Evidence held for every policy (a rollout's cohort proofs from before the envelope) would be
      // replaced by this part: it becomes the part of the release's staged rollouts that read parts.
      const whole = this.deps.store.evidence.devicesWithWhole(releaseId, ids);
      let rekeyTo: string[] = [];
      if (policies && release) {
        const attached = await callLedger(() => policies.policyFor(releaseId, release.component));
        await this.stagedRollouts.requirePartReader(attached, policy, releaseId);
        if (whole.length > 0) {
          rekeyTo = [];
          for (const r of await this.stagedRollouts.in(attached))
            if (getAddress(r) !== getAddress(policy) && (await this.stagedRollouts.readsParts(r))) rekeyTo.push(r);
        }
      }
      if (whole.length > 0 && rekeyTo.length === 0) {
        throw new InputError(
          "EVIDENCE_CONFLICT",
          `${whole.length} device(s) (${whole.slice(0, 3).join(", ")}${whole.length > 3 ? ", ..." : ""}) hold evidence for every policy of release ${releaseId}, which a part for one policy would replace: send each policy's evidence with its policy named, or this one without`,
        );
      }
      if (whole.length > 0) this.deps.store.evidence.keyWhole(releaseId, whole, rekeyTo);
    }
    const list = ids.map((deviceId) => ({ deviceId, evidence: devices[deviceId] }));
    this.deps.store.evidence.set(releaseId, policy, list);
    return { devices: list.length };
  }

  /**
   * Evidence a parent module handed down for a device: it replaces what this module held for the
   * device and release, part by part. Evidence that does not fit (a malformed envelope, parts over
   * the limit) is dropped with a log, never stopping the other decisions.
   */
  keepFromParent(releaseId: string, deviceId: string, evidence: string): void {
    try {
      this.deps.store.evidence.replace(releaseId, deviceId, splitEvidence(evidence));
    } catch (err) {
      this.deps.log(`evidence from the parent for ${deviceId} and release ${releaseId} not kept: ${(err as Error).message}`);
    }
  }
}
