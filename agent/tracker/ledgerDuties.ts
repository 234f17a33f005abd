import type { Provider, Signer, Wallet } from "ethers";
import type { StatusAnchors, UpdatePolicies, UpdateRegistry } from "../chain/contracts";
import { InputError } from "../core/errors";
import { pullDownloadLog } from "./downloadLog";
import { FailureReporter, type FailurePost } from "./failureReports";
import { LedgerAccount } from "./ledgerAccount";
import { fillMissingNames } from "./ledgerMirror";
import { StatusAnchoring, type AnchorResult } from "./statusAnchoring";
import type { FleetStore } from "./store";

/**
 * A tracker module's duties towards the ledger and the firmware servers, each run at most once at a
 * time (a round still running is joined, not doubled) and waited for at stop: the server module's
 * failure totals to staged rollouts and status anchors (issue 6), sent with its ledger account;
 * the names of the catalogue read from the registry's views (issue 19); the firmware servers'
 * download logs (CAP-11.2-b-i, CAP-11.3-g).
 */
export class LedgerDuties {
  /** The ledger duties of a server module (issue 6), when it has a ledger account (and StatusAnchors, for anchoring). */
  readonly ledgerAccount: LedgerAccount | undefined;
  readonly anchoring: StatusAnchoring | undefined;
  private readonly failures: FailureReporter | undefined;
  private readonly running = new Map<string, Promise<unknown>>();

  constructor(
    private readonly deps: {
      store: FleetStore;
      chain: { provider: Provider; registry: UpdateRegistry; policies?: UpdatePolicies; anchors?: StatusAnchors };
      /** The server module's ledger account; none for a module below (it sends nothing). */
      account: Signer | undefined;
      moduleId: string;
      /** The module's key, which signs its requests for the firmware servers' download logs. */
      wallet: Wallet;
      firmwareServers: string[];
      /** Decides for the devices the download logs show holding an outdated image (CAP-11.3-g). */
      downloadsTaken: () => void;
      timings: { ledgerTxDeadlineMs: number; ledgerTxPollMs: number; anchorRecordsKept: number };
      now: () => number;
      log: (line: string) => void;
    },
  ) {
    const { store, chain, log, now } = deps;
    if (!deps.account) return;
    const account = (this.ledgerAccount = new LedgerAccount(deps.account, chain.registry, {
      journal: store.ledger.txs,
      deadlineMs: deps.timings.ledgerTxDeadlineMs,
      pollMs: deps.timings.ledgerTxPollMs,
      log,
    }));
    if (chain.policies)
      this.failures = new FailureReporter({ db: store, provider: chain.provider, policies: chain.policies, account, moduleId: deps.moduleId, log });
    if (chain.anchors)
      this.anchoring = new StatusAnchoring({ db: store, anchors: chain.anchors, account, now, log }, { keepRecords: deps.timings.anchorRecordsKept });
  }

  /**
   * Starts the server module's duties on the ledger (issue 6) on `every`: failure totals to staged
   * rollouts every `failureReportMs`, status anchors every `anchorMs` (0: never). What an earlier
   * run left waiting is settled first.
   */
  startOnLedger(every: (ms: number, fn: () => unknown) => void, o: { failureReportMs: number; anchorMs: number }): void {
    const { log } = this.deps;
    // What an earlier run left waiting (stopped before it was mined, or dropped since) is cancelled first.
    void this.ledgerAccount?.settle().catch((err) => log(`ledger account: ${(err as Error).message} (settled before the next send)`));
    if (!this.ledgerAccount) {
      log("ledger duties: no ledger account (ledgerAccount): failure totals and status anchors are not posted on the ledger");
      return;
    }
    if (this.failures) every(o.failureReportMs, () => this.reportFailures());
    else log("ledger duties: no UpdatePolicies contract: failure totals are not posted");
    if (this.anchoring && o.anchorMs > 0) every(o.anchorMs, () => this.anchorStatus());
    else if (!this.anchoring) log("ledger duties: no StatusAnchors contract: the fleet's status is not anchored");
  }

  /** One duty at a time per kind: a round still running is joined, not doubled; stop() waits for them. */
  private duty<T>(name: string, run: () => Promise<T>): Promise<T> {
    const running = this.running.get(name);
    if (running) return running as Promise<T>;
    const p = run().finally(() => this.running.delete(name));
    this.running.set(name, p);
    return p;
  }

  /** The duties running now (stop waits for them). */
  inFlight(): Promise<unknown>[] {
    return [...this.running.values()];
  }

  /** Cuts short a duty waiting for its transaction (what it sent stays journalled and is settled at the next start). */
  stop(): void {
    this.ledgerAccount?.stop();
  }

  /**
   * Reads the component and hardware class names the mirror lacks from the registry's views
   * (issue 19: a database from before names were mirrored, or registrations before fromBlock), in
   * the background; nothing to read, one call. Errors are logged; the next catalogue change or
   * start tries again.
   */
  nameCatalogue(): void {
    void this.duty("names", () => fillMissingNames(this.deps.store, this.deps.chain.registry)).catch((err) =>
      this.deps.log(`ledger: names of components and hardware classes not read (${(err as Error).message}); tried again at the next catalogue change`),
    );
  }

  /**
   * Posts each staged rollout's failure total that rose (issue 6, APP-II-3): the devices that failed
   * the release, from the fleet database. Errors are logged; the next round tries again.
   */
  reportFailures(): Promise<FailurePost[]> {
    const failures = this.failures;
    if (!failures) return Promise.resolve([]);
    return this.duty("failures", () => failures.run());
  }

  /**
   * Anchors the fleet's status on StatusAnchors now (issue 6, CAP-11.2-a/b): every reported
   * device's status record, the device count and the counts per release; or says why not
   * (nothing changed since the last anchor, or no device has reported yet).
   */
  anchorStatus(): Promise<AnchorResult> {
    const anchoring = this.anchoring;
    if (!anchoring) {
      return Promise.reject(
        new InputError(
          "ANCHORING_OFF",
          "this module anchors nothing: it needs a ledger account (ledgerAccount) and the StatusAnchors contract (chain.anchors), and must be the server module",
        ),
      );
    }
    return this.duty("anchor", async () => {
      const result = await anchoring.anchor();
      if (result.anchored)
        this.deps.log(
          `status anchored: anchor ${result.anchor.index} of ${result.anchor.deviceCount} device(s), root ${result.anchor.root}, tx ${result.anchor.txHash}`,
        );
      return result;
    });
  }

  /** Reads every configured firmware server's download log from where it stopped. */
  async pullDownloadLogs(): Promise<number> {
    let n = 0;
    for (const url of this.deps.firmwareServers) n += await pullDownloadLog(this.deps.store, url, this.deps.wallet, this.deps.now);
    if (n > 0) this.deps.downloadsTaken();
    return n;
  }
}
