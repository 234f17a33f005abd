import path from "node:path";
import type { Provider } from "ethers";
import { DeviceAgent, type DeviceAgentOptions } from "./deviceAgent";
import { LedgerWatcher } from "./ledgerWatcher";
import { InputError } from "../core/errors";
import { mapLimit } from "../core/mapLimit";
import { ConcurrencyLimit } from "../core/concurrencyLimit";

/** Updates at once among one DeviceRunner's agents (its maxConcurrentUpdates option). */
export const DEFAULT_MAX_CONCURRENT_UPDATES = 32;
import type { RpcSender } from "../chain/eventStream";

/**
 * Runs device agents in in-device tracker mode (DEP-8.2.1): one ledger watcher, whose events go to
 * every agent, and a timer that retries what could not be done yet (a key not granted, a server
 * down). One agent is a device; several are a simulated fleet on one machine, each with its own
 * key, hardware class, slots and state. Devices with a tracker send it their status report at
 * start and every `heartbeatMs`; the notices in its answers are acted on (client-module mode).
 */
export class DeviceRunner {
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private constructor(
    readonly agents: DeviceAgent[],
    /** Undefined for devices that keep only a client module (DEP-8.1-b): they learn of releases from their upstream. */
    readonly watcher: LedgerWatcher | undefined,
  ) {}

  static async start(
    // The agents' chain, its provider able to send raw JSON-RPC (the ledger watcher's log scans).
    chain: DeviceAgentOptions["chain"] & { provider: Provider & RpcSender },
    devices: Omit<DeviceAgentOptions, "chain">[],
    o: {
      stateDir: string;
      pollMs?: number;
      retryMs?: number;
      heartbeatMs?: number;
      followLedger?: boolean;
      reorgWindow?: number; // recent blocks the watcher remembers (default 64); past it, it resyncs from the head
      /** Updates at once among this process's agents (default DEFAULT_MAX_CONCURRENT_UPDATES); the others wait their turn. */
      maxConcurrentUpdates?: number;
      log?: (line: string) => void;
    },
  ): Promise<DeviceRunner> {
    if (o.followLedger === false && devices.some((d) => !d.tracker)) {
      throw new InputError(
        "NO_UPSTREAM",
        "a device that does not follow the ledger learns of releases only from its tracker: give each device a tracker, or follow the ledger",
      );
    }
    // A blocked delivery backs off from the retry interval up to 60 times it (10 s to 10 min by default), with jitter.
    const retryMs = o.retryMs ?? 10_000;
    // A simulated fleet opens (and first reports) 16 devices at a time: one by one, 10,000 devices
    // wait on 10,000 round trips to the tracker.
    // The agents take turns past a few updates at once: one process's CPU serves each update in
    // tens of milliseconds, so 1,000 at once would all finish last and hold 1,000 downloads' files.
    const updates = new ConcurrencyLimit(o.maxConcurrentUpdates ?? DEFAULT_MAX_CONCURRENT_UPDATES);
    const agents = await mapLimit(devices, 16, (d) => DeviceAgent.open({ blockedRetry: { baseMs: retryMs, maxMs: 60 * retryMs }, updates, ...d, chain }));
    // A constrained device (DEP-8.1-b) keeps only the client module: no event scan; it still reads
    // the release's record from the ledger when its upstream tells it of one (CAP-11.4-c).
    const watcher =
      o.followLedger === false
        ? undefined
        : new LedgerWatcher(
            chain.provider,
            chain.registry,
            path.join(o.stateDir, "ledger-checkpoint.json"),
            async (events) => {
              for (const a of agents) a.noteHead(watcher!.head.timestamp, watcher!.head.number);
              await Promise.all(agents.map((a) => a.onLedgerEvents(events)));
            },
            {
              fromBlock: chain.fromBlock,
              domain: chain.domain,
              pollMs: o.pollMs ?? 4000,
              reorgDepth: o.reorgWindow,
              onError: (err) => o.log?.(`ledger: ${(err as { code?: string }).code ? `${(err as { code?: string }).code}: ` : ""}${(err as Error).message}`),
              onResync: async () => void (await Promise.all(agents.map((a) => a.catchUp().catch(() => [])))),
            },
          );
    const runner = new DeviceRunner(agents, watcher);
    await watcher?.start();
    // TUF's freeze attack on an idle device: nothing to install means no check, so the runner looks
    // at each device's view on every round and logs when it freezes (LEDGER_STALE, LEDGER_BEHIND)
    // and when it moves again; no ledger call is added (the watcher reads the head anyway).
    const frozen = new Map<DeviceAgent, string>();
    const checkViews = () => {
      const lines = new Map<string, number>(); // one line per change, with how many devices it is of
      const say = (line: string) => lines.set(line, (lines.get(line) ?? 0) + 1);
      for (const a of agents) {
        if (watcher && watcher.head.number >= 0) a.noteHead(watcher.head.timestamp, watcher.head.number);
        const problem = a.viewProblem();
        const was = frozen.get(a);
        if (problem && problem.code !== was) say(`ledger: ${problem.code}: ${problem.message}`);
        if (!problem && was) say(`ledger: the view moves again (was ${was})`);
        if (problem) frozen.set(a, problem.code);
        else frozen.delete(a);
      }
      for (const [line, n] of lines) o.log?.(agents.length > 1 ? `${line} (${n} of ${agents.length} devices)` : line);
    };
    const retry = () => {
      runner.timer = setTimeout(async () => {
        if (watcher) checkViews();
        await Promise.all(agents.map((a) => a.retryPending().catch(() => []))).catch(() => {});
        retry();
      }, retryMs);
      runner.timer.unref();
    };
    retry();
    // Client-module mode: the status report is the heartbeat, and its answer brings the notices.
    const reporting = agents.filter((a) => a.reportsToTracker);
    if (reporting.length > 0) {
      const beat = async () => {
        await mapLimit(reporting, 16, (a) => a.report().catch((err) => void o.log?.(`report: ${(err as Error).message}`)));
      };
      await beat();
      // The runner's own setting, else the shortest a device asks for (device.json tracker.heartbeatMs), else 60 s.
      const asked = reporting.map((a) => a.heartbeatMs).filter((ms): ms is number => ms !== undefined);
      runner.heartbeat = setInterval(() => void beat(), o.heartbeatMs ?? (asked.length > 0 ? Math.min(...asked) : 60_000));
      // Without a ledger watcher the heartbeat is the runner's only clock: it must keep the process
      // alive (`device run` with followLedger false), until stop().
      if (watcher) runner.heartbeat.unref();
    }
    return runner;
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    await this.watcher?.stop();
    await Promise.all(this.agents.map((a) => a.close().catch(() => {})));
  }
}
