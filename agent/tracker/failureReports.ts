import type { Provider } from "ethers";
import { FleetRegistry__factory, StagedRollout__factory, type UpdatePolicies } from "../chain/contracts";
import { callLedger, LedgerUnavailable } from "../chain/ledgerCall";
import { StagedRolloutFinder } from "../chain/stagedRollouts";
import type { FleetStore } from "./store";
import type { LedgerAccount } from "./ledgerAccount";

/** StagedRollout.RolloutState: only Scheduled, Open and Paused rollouts are told of failures. */
const LIVE_STATES: ReadonlySet<bigint> = new Set([1n, 2n, 3n]);

/** One failure total sent to a staged rollout, for this module (in one or more transactions). */
export interface FailurePost {
  releaseId: string;
  rollout: string; // the StagedRollout's address
  total: number; // this module's total, as the rollout now holds it
  previous: number; // this module's total the rollout held before
  txHash: string; // the last transaction
  halted: boolean; // the rollout's total reached the threshold: the rollout halted itself
}

/**
 * The failure totals a server module posts to the staged rollouts (issue 6, APP-II-3): for each
 * release some device failed (failed or rolled back, or rejected for good: agent/core/updateOutcome),
 * whose attached policy is a StagedRollout or a composer holding one, the number of devices that
 * failed it, when that number is above the rollout's own and the rollout is live. The totals come
 * from the fleet database each time, so a post that fails loses nothing: it is made at the next run.
 *
 * Totals are attributed per tracker module (issue 15): the rollout counts this module's failures
 * apart from other modules' (`reportFailures(release, moduleId, total)`, the ledger account must own
 * the module in the FleetRegistry) and sums them; one post may raise a module's total by at most the
 * rollout's threshold, so a larger total is posted in steps of the threshold.
 */
export class FailureReporter {
  /** `${rollout}|${release}` -> the highest total the rollout is known to hold. */
  private readonly held = new Map<string, number>();
  private cancelledSeen = 0;

  private readonly rollouts: StagedRolloutFinder;

  constructor(
    private readonly deps: {
      db: FleetStore;
      provider: Provider;
      policies: UpdatePolicies;
      account: LedgerAccount;
      /** The tracker module the totals are this module's (its subtree's) failures of; the account owns it on the FleetRegistry. */
      moduleId: string;
      log: (line: string) => void;
    },
  ) {
    this.rollouts = new StagedRolloutFinder(deps.provider);
  }

  /** One round: posts every total that rose. A failure for one release is logged and does not stop the others; an outage ends the round. */
  async run(): Promise<FailurePost[]> {
    const posts: FailurePost[] = [];
    const totals = this.deps.db.rollouts.failureTotals();
    // The account looks at what it sent before (a post a reorganisation dropped is cancelled and no
    // longer believed posted, see post()): without it, a dropped post whose total did not rise was
    // never sent again. Two reads while nothing is pending; an outage here is the next one's.
    if (totals.size > 0) await this.deps.account.settle().catch(() => {});
    for (const [releaseId, total] of totals) {
      const release = this.deps.db.catalogue.release(releaseId);
      if (!release) continue; // not (or no longer) on the ledger as this module follows it
      try {
        const policy = await callLedger(() => this.deps.policies.policyFor(releaseId, release.component));
        for (const rollout of await this.rollouts.in(policy)) {
          const post = await this.post(rollout, releaseId, Math.min(total, 0xffffffff));
          if (post) posts.push(post);
        }
      } catch (err) {
        this.deps.log(`failure totals: release ${releaseId}: ${(err as Error).message} (tried again at the next interval)`);
        if (err instanceof LedgerUnavailable) break;
      }
    }
    return posts;
  }

  private async post(rollout: string, releaseId: string, total: number): Promise<FailurePost | undefined> {
    // A post the account later found not mined (a reorganisation dropped it) is no longer believed.
    if (this.cancelledSeen !== this.deps.account.cancelled) {
      this.cancelledSeen = this.deps.account.cancelled;
      this.held.clear();
    }
    const key = `${rollout}|${releaseId}`;
    if ((this.held.get(key) ?? -1) >= total) return undefined;
    const staged = StagedRollout__factory.connect(rollout, this.deps.provider);
    const moduleId = this.deps.moduleId;
    const [status, held] = await Promise.all([callLedger(() => staged.rolloutStatus(releaseId)), callLedger(() => staged.moduleFailures(releaseId, moduleId))]);
    if (!LIVE_STATES.has(status.state)) return undefined; // none, halted or aborted: nothing to tell it
    const previous = Number(held);
    if (previous >= total) {
      this.held.set(key, previous);
      return undefined;
    }
    await this.requireOwnModule(staged);
    // One post raises the module's total by at most the threshold: larger totals go in steps.
    const step = Number(status.failureThreshold);
    let posted = previous;
    let halted = false;
    let txHash = "";
    while (posted < total) {
      const next = Math.min(total, posted + step);
      const receipt = await this.deps.account.send(
        `posting ${next} failed device(s) of release ${releaseId} seen by module ${moduleId} to the staged rollout ${rollout}`,
        (s) => staged.connect(s).reportFailures(releaseId, moduleId, next),
      );
      posted = next;
      this.held.set(key, posted);
      txHash = receipt.hash;
      halted ||= receipt.logs.some((l) => l.address.toLowerCase() === rollout.toLowerCase() && staged.interface.parseLog(l)?.name === "RolloutHalted");
    }
    this.deps.log(
      `failure totals: release ${releaseId}: ${total} failed device(s) seen by module ${moduleId} posted to the staged rollout ${rollout} (was ${previous})${halted ? "; the rollout halted" : ""}`,
    );
    return { releaseId, rollout, total, previous, txHash, halted };
  }

  /** The rollout takes a module's totals only from the module's owner on the FleetRegistry: say so plainly when this account is not it. */
  private async requireOwnModule(staged: ReturnType<typeof StagedRollout__factory.connect>): Promise<void> {
    const fleet = FleetRegistry__factory.connect(await callLedger(() => staged.FLEET()), this.deps.provider);
    const [owner, account] = await Promise.all([callLedger(() => fleet.trackerModuleOwner(this.deps.moduleId)), this.deps.account.getAddress()]);
    if (owner.toLowerCase() !== account.toLowerCase()) {
      throw new Error(
        `module ${this.deps.moduleId} is owned on the FleetRegistry by ${owner}, not by this tracker's ledger account ${account}: only the owner may post its failure totals (configure that account as ledgerAccount)`,
      );
    }
  }
}
