/**
 * The whole system at fleet scale (issue 7), on this machine: a local chain, the firmware server on
 * the embedded IPFS store, the status tracker's server module, and N simulated devices in this
 * process (one DeviceRunner: one ledger watcher, N agents with their own keys, slots and state),
 * built from the same parts as `npm start` (scripts/demo). The devices are enrolled in one Merkle
 * batch (FleetRegistry.enrolDeviceBatch) and carry their record and proof. Then an author publishes
 * a release for every hardware class, submits the artifact to the server and grants the key to
 * every device, as `release publish` and `release grant` do; the devices learn of it from the
 * ledger, verify, download, decrypt into their inactive slot, boot it on trial and confirm.
 *
 * The firmware server and the tracker each run in a process of their own (as they would on their
 * own machines; `--in-process`: in this one), so that the devices' work in this process does not
 * share their event loop or core.
 *
 * Measured, per device: the time from the publish transaction's inclusion to the device's
 * confirmed install. Inclusion is the moment this process first saw the block holding the
 * transaction (eth_blockNumber polled every 25 ms on its own connection, or the publish receipt
 * if it came back first; the chain mines a block a second, as in the demo); confirmation is the agent's "confirmed" phase (the trial boot passed and
 * the boot state was written). Printed: p50, p99, max, the time the whole fleet had converged (the
 * last device confirmed, and the tracker holding every device's report of it), the peak
 * resident memory and open file handles of this process (the devices'), and the CPU time and peak
 * memory of each process (server, tracker, chain node).
 *
 *   npm run bench:e2e                          1,000 devices, a 256 KiB image
 *   npm run bench:e2e -- --devices 100         another fleet size (or BENCH_E2E_DEVICES=100)
 *   npm run bench:e2e -- --image-kib 1024      another image size (or BENCH_E2E_IMAGE_KIB)
 *   npm run bench:e2e -- --json                one JSON document (or BENCH_JSON=1)
 *   --retry-ms n (2,000)       how often a device retries what could not be done yet (e.g. its key
 *                              not granted yet), as in the demo (DeviceRunner's own default is 10,000)
 *   --heartbeat-ms n (30,000)  how often each device reports to the tracker (and after every outcome)
 *   --timeout-s n (900)        give up (exit status 1) when the fleet has not converged by then
 *   --node hardhat|anvil       the chain node (or BENCH_E2E_NODE): Hardhat's (JavaScript) or Foundry's anvil (Rust)
 *   --proofs auto|on|off       the devices' ledger proofs (or BENCH_E2E_PROOFS; default auto: on where the node has eth_getProof)
 *   --start-jitter-ms n        the devices' start jitter before a download (or BENCH_E2E_START_JITTER_MS; default the
 *                              agent's 2,000): 10,000 devices in one process need a wider one to stay under the
 *                              open-files limit (each download in flight holds both ends of its sockets and two files)
 *   --in-process               the firmware server and the tracker in this process (or BENCH_E2E_IN_PROCESS=1)
 *   --max-concurrent-updates n the updates at once among this process's agents (or BENCH_E2E_MAX_CONCURRENT_UPDATES;
 *                              default DeviceRunner's, 32): the simulated fleet shares one process's CPU
 * BENCH_PARTS_PROF=<dir> and `node --cpu-prof`: CPU profiles of every process, and the release window on their clock.
 *
 * Everything listens on 127.0.0.1 (the chain on a free port); everything is stopped and the
 * temporary folder removed at the end, on an error, and on Ctrl-C. Like `npm start`, the run
 * writes deployments/localhost.json and clears ignition/deployments/chain-31337 (both ignored by
 * git): do not run it beside `npm start` or a deployment to `npm run chain`.
 */
// First: Node 20 lacks Promise.withResolvers, which Helia calls.
import "../agent/runtime/node20";
import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import type { JsonRpcProvider } from "ethers";
import { startLocalChain, type LocalChain } from "../scripts/lib/localChain";
import { startAnvil } from "../scripts/lib/anvilChain";
import { setUpLedger, BOOTLOADER } from "../scripts/demo/ledgerSetup";
import { agentChain } from "../scripts/demo/services";
import { deviceRecord, planFleet, startFleet, type DemoDevice } from "../scripts/demo/simulatedFleet";
import { publishSample } from "../scripts/demo/sampleRelease";
import { StoryLog } from "../scripts/demo/storyLog";
import { buildDeviceBatch } from "../agent/crypto/deviceTree";
import { DEFAULT_MAX_CONCURRENT_UPDATES } from "../agent/consumer/deviceRunner";
import type { DeviceCredential } from "../agent/crypto/deviceCredential";
import { peakRssMiB, round } from "./lib/measure";
import { freePort } from "../scripts/lib/ports";
import { chainNodePid, countRpc, processFigures, rpcDelta, rpcSum, stopsOnExit, wholeFlag } from "./lib/benchRun";
import { processFigures as ownFigures, startPart } from "./lib/parts";

const argv = process.argv.slice(2);
const flag = (name: string, env: string, fallback: number): number => wholeFlag(argv, name, env, fallback);
const json = argv.includes("--json") || process.env.BENCH_JSON === "1";
const DEVICES = flag("--devices", "BENCH_E2E_DEVICES", 1000);
const IMAGE_KIB = flag("--image-kib", "BENCH_E2E_IMAGE_KIB", 256);
const HEARTBEAT_MS = flag("--heartbeat-ms", "BENCH_E2E_HEARTBEAT_MS", 30_000);
const RETRY_MS = flag("--retry-ms", "BENCH_E2E_RETRY_MS", 2000);
const TIMEOUT_S = flag("--timeout-s", "BENCH_E2E_TIMEOUT_S", 900);
const choice = <T extends string>(name: string, env: string, allowed: readonly T[]): T => {
  const i = argv.indexOf(name);
  const text = (i >= 0 ? argv[i + 1] : process.env[env]) ?? allowed[0];
  if (!allowed.includes(text as T)) throw new Error(`${i >= 0 ? name : env}="${text}" is not one of ${allowed.join(", ")}`);
  return text as T;
};
const NODE = choice("--node", "BENCH_E2E_NODE", ["hardhat", "anvil"] as const);
const PROOFS = choice("--proofs", "BENCH_E2E_PROOFS", ["auto", "on", "off"] as const);
const IN_PROCESS = argv.includes("--in-process") || process.env.BENCH_E2E_IN_PROCESS === "1";
const MAX_CONCURRENT_UPDATES = flag("--max-concurrent-updates", "BENCH_E2E_MAX_CONCURRENT_UPDATES", DEFAULT_MAX_CONCURRENT_UPDATES);
const START_JITTER_MS =
  argv.includes("--start-jitter-ms") || process.env.BENCH_E2E_START_JITTER_MS ? flag("--start-jitter-ms", "BENCH_E2E_START_JITTER_MS", 2000) : undefined;

const log = (line: string) => {
  if (!json) process.stderr.write(line + "\n");
};
const seconds = (ms: number) => Math.round(ms) / 1000;
/** The nearest-rank percentile of sorted values. */
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

/** The first wall-clock moment (performance.now) each block number was seen over RPC. */
function watchBlocks(url: string, everyMs = 25) {
  const firstSeen = new Map<number, number>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] }),
        });
        const n = Number(((await res.json()) as { result: string }).result);
        const now = performance.now();
        for (let b = Math.max(0, n - 5); b <= n; b++) if (!firstSeen.has(b)) firstSeen.set(b, now);
      } catch {
        // the chain is stopping; the loop ends with it
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    seen: (block: number) => firstSeen.get(block),
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

const traced = new Map<string, number>();
/**
 * The JSON-RPC calls sent through a provider (the agents', the server's and the tracker's
 * connection), by method, counted from the last reset; BENCH_E2E_TRACE=1 also names their callers.
 */
function countCalls(provider: JsonRpcProvider) {
  const rpc = countRpc(provider);
  if (process.env.BENCH_E2E_TRACE) {
    const plain = provider.send.bind(provider);
    provider.send = (method: string, params: unknown[] | Record<string, unknown>) => {
      const where = (new Error().stack ?? "")
        .split("\n")
        .filter((l) => /\/(agent|scripts)\//.test(l))
        .slice(0, 2)
        .map((l) =>
          l
            .trim()
            .replace(/.*\/(agent|scripts)\//, "")
            .replace(/:\d+\)?$/, ""),
        )
        .join(" < ");
      traced.set(`${method} ${where}`, (traced.get(`${method} ${where}`) ?? 0) + 1);
      return plain(method, params);
    };
  }
  let from = rpc.snapshot();
  return {
    reset() {
      const now = rpc.snapshot();
      const out = rpcDelta(from, now);
      from = now;
      traced.clear();
      return out;
    },
  };
}

/** Open file handles and resident memory of this process, sampled while the fleet works. */
function sampleProcess(everyMs = 250) {
  let peakFds = 0;
  let peakRss = 0;
  const take = async () => {
    peakFds = Math.max(peakFds, (await readdir("/proc/self/fd").catch(() => [])).length);
    try {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    } catch {
      // EMFILE: the fleet holds every descriptor for a moment (memoryUsage opens /proc); the next sample counts
    }
  };
  const timer = setInterval(() => void take(), everyMs);
  return {
    take,
    stop: () => clearInterval(timer),
    get peakFds() {
      return peakFds;
    },
    get peakRssMiB() {
      return Math.round(peakRss / 1024 / 1024);
    },
  };
}

async function main(): Promise<void> {
  const port = await freePort();
  process.env.OTA_RPC_URL = `http://127.0.0.1:${port}`;
  process.env.HARDHAT_NETWORK = "localhost";
  const hre: HardhatRuntimeEnvironment = (await import("hardhat")).default;
  await hre.run("compile", { quiet: true });

  const { stops, stopAll } = stopsOnExit("bench:e2e");

  try {
    const t0 = performance.now();
    const dir = await mkdtemp(path.join(os.tmpdir(), "ota-bench-e2e-"));
    // Removed last, when nothing can write there any more (an agent's update in flight when the
    // runner stops may still write a file or two), with retries for that race.
    stops.push(async () => {
      await new Promise((r) => setTimeout(r, 500));
      await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    });
    // A block a second, as in the demo (anvil's own interval; Hardhat's set over RPC).
    const chain: LocalChain = NODE === "anvil" ? await startAnvil({ port, blockTimeSeconds: 1 }) : await startLocalChain({ port });
    stops.push(() => chain.stop());
    if (NODE === "hardhat") await hre.ethers.provider.send("evm_setIntervalMining", [1000]);
    log(`${NODE} node at ${chain.url}, ${DEVICES} devices, a ${IMAGE_KIB} KiB image, work in ${dir}`);

    const ledger = await setUpLedger(hre, new StoryLog(process.env.BENCH_E2E_TRACE ? (l) => process.stderr.write(`SETUP ${l}\n`) : () => {}));
    const agents = agentChain(ledger, chain.url);
    const rpc = countCalls(agents.provider);
    stops.push(() => agents.provider.destroy());
    const d = ledger.deployment;
    const server = await startPart(
      "server",
      {
        rpcUrl: chain.url,
        chainId: Number(d.chainId),
        registry: d.updateRegistry,
        fleet: d.fleetRegistry,
        policies: d.updatePolicies,
        lens: d.updateCheckLens,
        fromBlock: d.deployedAtBlock,
        dir,
        pollMs: 1000,
      },
      IN_PROCESS,
    );
    stops.push(() => server.stop());
    const tracker = await startPart(
      "tracker",
      {
        deployment: d,
        rpcUrl: chain.url,
        module: { id: ledger.modules.server.id, privateKey: ledger.modules.server.privateKey },
        dataDir: path.join(dir, "tracker-hq"),
      },
      IN_PROCESS,
    );
    stops.push(() => tracker.stop());
    const setupMs = performance.now() - t0;
    log(
      `ledger set up, firmware server ${server.url}, tracker ${tracker.url}${IN_PROCESS ? " (in this process)" : " (each in its own process)"} (${seconds(setupMs)} s)`,
    );

    // Enrolment: one Merkle batch; each device carries its record and proof.
    let t = performance.now();
    const devices = planFleet({ perNetwork: { "plant-1": DEVICES, "plant-2": 0 } }, path.join(dir, "fleet"));
    const records = devices.map(deviceRecord);
    const batch = buildDeviceBatch(records);
    const enrolReceipt = await (await ledger.fleet.connect(ledger.actors.admin).enrolDeviceBatch(batch.root, devices.length, "bench:e2e")).wait();
    const enrolled = enrolReceipt!.logs.map((l) => ledger.fleet.interface.parseLog(l)).find((p) => p?.name === "DeviceBatchEnrolled");
    if (!enrolled) throw new Error("the batch enrolment emitted no DeviceBatchEnrolled event");
    const batchId = Number(enrolled.args.batchId);
    const credentials = new Map<DemoDevice, DeviceCredential>(devices.map((d, i) => [d, { record: records[i], batchId, proof: batch.proofs[i] }]));
    const enrolMs = performance.now() - t;
    log(`${devices.length} devices enrolled in batch ${batchId} (${enrolReceipt!.gasUsed} gas, ${seconds(enrolMs)} s)`);
    // The tracker takes a batch device's first report once it has mirrored the batch's root.
    await tracker.batchMirrored(batchId, 60_000);

    // The fleet: each device introduces itself to the tracker with its proof as it starts.
    const beforeFleet = { rss: process.memoryUsage().rss, fds: (await readdir("/proc/self/fd")).length };
    const sampler = sampleProcess();
    stops.push(() => sampler.stop());
    const confirmedAt = new Map<DemoDevice, number>();
    let releaseId = "";
    let allConfirmed: () => void = () => {};
    const converged = new Promise<void>((resolve) => (allConfirmed = resolve));
    t = performance.now();
    const runner = await startFleet({
      chain: agents,
      devices,
      stateDir: path.join(dir, "fleet"),
      serverUrlOf: () => server.url,
      trackers: { "plant-1": { key: ledger.modules.server, url: tracker.url }, "plant-2": { key: ledger.modules.server, url: tracker.url } },
      pinnedSigners: [ledger.actors.releaseKey.address],
      credentialOf: (d) => credentials.get(d)!,
      heartbeatMs: HEARTBEAT_MS,
      retryMs: RETRY_MS,
      ledgerProofs: PROOFS,
      ...(START_JITTER_MS === undefined ? {} : { startJitterMs: START_JITTER_MS }),
      maxConcurrentUpdates: MAX_CONCURRENT_UPDATES,
      onPhase: (d, phase, id) => {
        if (process.env.BENCH_E2E_TRACE && d === devices[0]) process.stderr.write(`TRACE ${phase} ${Math.round(performance.now())}\n`);
        if (phase !== "confirmed" || id !== releaseId || confirmedAt.has(d)) return;
        confirmedAt.set(d, performance.now());
        if (confirmedAt.size === devices.length) allConfirmed();
      },
    });
    stops.push(() => runner.stop());
    const fleetStartMs = performance.now() - t;
    const introduced = (await tracker.figures()).seen;
    await sampler.take();
    const idle = { rssMiB: Math.round(process.memoryUsage().rss / 1024 / 1024), fds: (await readdir("/proc/self/fd")).length };
    log(
      `${runner.agents.length} device agents started in ${seconds(fleetStartMs)} s; the tracker knows ${introduced} of them; RSS ${idle.rssMiB} MiB, ${idle.fds} open files`,
    );

    // The release: published, submitted, granted to every device (timed from the block that holds it).
    rpc.reset();
    const before = { server: await server.figures(), tracker: await tracker.figures(), devices: ownFigures(), chain: await processFigures(chainNodePid(NODE)) };
    const blocks = watchBlocks(chain.url);
    stops.push(() => blocks.stop());
    let published: { block: number; receiptAt: number; timestamp: number } | undefined;
    t = performance.now();
    const release = await publishSample(
      ledger,
      {
        component: BOOTLOADER,
        version: "1.0.0",
        size: IMAGE_KIB * 1024,
        hardware: [1, 2, 3],
        credentials: [...credentials.values()],
        onPublished: (receipt) => {
          if (process.env.BENCH_E2E_TRACE) process.stderr.write(`TRACE published ${Math.round(performance.now())}\n`);
          published = { block: receipt.blockNumber, receiptAt: performance.now(), timestamp: 0 };
          const event = receipt.logs.map((l) => ledger.registry.interface.parseLog(l)).find((p) => p?.name === "ReleasePublished");
          releaseId = String(event?.args.releaseId ?? "").toLowerCase();
        },
      },
      { dir, serverUrl: server.url },
    );
    if (!published || releaseId !== release.id) throw new Error("the publish receipt was not heard, or named another release");
    // The earlier of the block first seen and the receipt back (the receipt can win the race).
    const includedAt = Math.min(blocks.seen(published.block) ?? Infinity, published.receiptAt);
    log(
      `release ${release.label} (${release.id.slice(0, 10)}…) in block ${published.block}; packaged, submitted and ${devices.length} keys granted before the transaction (the author's flow took ${seconds(published.receiptAt - t)} s)`,
    );

    const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), TIMEOUT_S * 1000).unref());
    const progress = setInterval(() => log(`  ${confirmedAt.size} of ${devices.length} confirmed after ${seconds(performance.now() - includedAt)} s`), 5000);
    const ended = await Promise.race([converged.then(() => "converged" as const), timeout]);
    clearInterval(progress);
    const convergedAt = performance.now();
    // With BENCH_PARTS_PROF (CPU profiles), the release window on the profiles' clock (monotonic µs).
    if (process.env.BENCH_PARTS_PROF) {
      const nowUs = Number(process.hrtime.bigint() / 1000n);
      process.stderr.write(`profile window (monotonic us): ${Math.round(nowUs - (convergedAt - includedAt) * 1000)} ${nowUs}\n`);
    }

    // The tracker's view: every device's report of the release held (reports follow each outcome).
    let trackerAt: number | null = null;
    const trackerDeadline = performance.now() + 60_000;
    while (ended === "converged" && performance.now() < trackerDeadline) {
      if ((await tracker.figures(release.id)).holding >= devices.length) {
        trackerAt = performance.now();
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await sampler.take();
    sampler.stop();
    const block = await hre.ethers.provider.getBlock(published.block);
    published.timestamp = block?.timestamp ?? 0;

    // Tries that did not install on the way (e.g. the key not granted yet when a device first
    // asked: a blocked delivery since issue 15), by outcome and code, from the agents' logs.
    const refusals: Record<string, number> = {};
    for (const d of devices) {
      for (const l of d.log) {
        const m = /^release (0x[0-9a-f]+): (rejected|blocked|failed) \(([A-Z0-9_]+)\)/.exec(l);
        if (m && m[1] === release.id) refusals[`${m[2]} ${m[3]}`] = (refusals[`${m[2]} ${m[3]}`] ?? 0) + 1;
      }
    }
    if (process.env.BENCH_E2E_TRACE) for (const [k, v] of [...traced].sort((a, b) => b[1] - a[1]).slice(0, 25)) process.stderr.write(`TRACE ${v} ${k}\n`);
    const after = { server: await server.figures(), tracker: await tracker.figures(), devices: ownFigures(), chain: await processFigures(chainNodePid(NODE)) };
    const agentCalls = rpc.reset();
    const serverCalls = rpcDelta(before.server.rpc, after.server.rpc);
    const trackerCalls = rpcDelta(before.tracker.rpc, after.tracker.rpc);
    // Every party's calls, each on its own connection.
    const calls = rpcSum([agentCalls, serverCalls, trackerCalls]);
    const cpu = (a: { cpuS: number } | null | undefined, b: { cpuS: number } | null | undefined) => (a && b ? round(b.cpuS - a.cpuS, 1) : null);
    const latencies = [...confirmedAt.values()].map((at) => at - includedAt).sort((a, b) => a - b);
    const chainPeak = after.chain?.peakRssMiB ?? null;
    const figures = {
      devices: devices.length,
      imageKiB: IMAGE_KIB,
      "device retry ms": RETRY_MS,
      "device heartbeat ms": HEARTBEAT_MS,
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadavg: os.loadavg().map((x) => round(x)) },
      "setup: chain, ledger, server, tracker s (not measured)": seconds(setupMs),
      "batch enrolment s": seconds(enrolMs),
      "batch enrolment gas": Number(enrolReceipt!.gasUsed),
      "fleet start (agents opened, first reports) s": seconds(fleetStartMs),
      "devices known to the tracker before the release": introduced,
      "publish receipt came back after the block was seen ms": Math.round(published.receiptAt - includedAt),
      "author's flow before the block (package, submit, grant every key, publish) s": seconds(published.receiptAt - t),
      outcome: ended,
      confirmed: latencies.length,
      "release -> device confirmed p50 s": latencies.length ? seconds(percentile(latencies, 50)) : null,
      "release -> device confirmed p99 s": latencies.length ? seconds(percentile(latencies, 99)) : null,
      "release -> device confirmed max s": latencies.length ? seconds(latencies[latencies.length - 1]) : null,
      "release -> device confirmed min s": latencies.length ? seconds(latencies[0]) : null,
      "whole fleet converged (last device confirmed) s": ended === "converged" ? seconds(convergedAt - includedAt) : null,
      "whole fleet converged on the tracker (every report held) s": trackerAt === null ? null : seconds(trackerAt - includedAt),
      "tries that did not install, by outcome and code (all retried)": refusals,
      "JSON-RPC calls by the agents, server and tracker, release to convergence": calls.total,
      "JSON-RPC calls per device (every party)": round(calls.total / devices.length),
      "JSON-RPC calls by method": calls.byMethod,
      "JSON-RPC calls: devices / firmware server / tracker": [agentCalls.total, serverCalls.total, trackerCalls.total],
      "firmware server: entitlement questions / ledger reads / answers remembered": [
        after.server.entitlements.questions - before.server.entitlements.questions,
        after.server.entitlements.reads - before.server.entitlements.reads,
        after.server.entitlements.remembered - before.server.entitlements.remembered,
      ],
      "parts in": IN_PROCESS ? "one process (devices, server, tracker) and the chain node" : "processes: this (devices), firmware server, tracker, chain node",
      "CPU s, release to convergence: devices' process / server / tracker / chain node": IN_PROCESS
        ? [cpu(before.devices, after.devices), null, null, cpu(before.chain, after.chain)]
        : [
            cpu(before.devices, after.devices),
            cpu(before.server.process, after.server.process),
            cpu(before.tracker.process, after.tracker.process),
            cpu(before.chain, after.chain),
          ],
      "chain node": NODE,
      "device ledger proofs": PROOFS,
      "device start jitter ms": START_JITTER_MS ?? 2000,
      "updates at once in the devices' process (DeviceRunner maxConcurrentUpdates)": MAX_CONCURRENT_UPDATES,
      "JSON-RPC HTTP requests (ethers batches calls)": calls.requests,
      "block timestamp of the release (unix s)": published.timestamp,
      "peak RSS MiB (this process: the devices, and the server and tracker if in process)": peakRssMiB(),
      "peak RSS MiB of the firmware server / tracker processes": IN_PROCESS ? null : [after.server.process.peakRssMiB, after.tracker.process.peakRssMiB],
      "RSS MiB with the fleet idle, before the release": idle.rssMiB,
      "open files with the fleet idle": idle.fds,
      "RSS KiB per idle device (the fleet's growth / devices)": Math.round((idle.rssMiB * 1024 * 1024 - beforeFleet.rss) / 1024 / devices.length),
      "open files per idle device": round((idle.fds - beforeFleet.fds) / devices.length),
      "open files, peak (sampled every 250 ms)": sampler.peakFds,
      "peak RSS MiB of the chain node (its own process)": chainPeak,
      "soft limit on open files": Number(execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim()) || null,
    };
    if (json) console.log(JSON.stringify(figures, null, 2));
    else {
      console.log(`\nend to end, ${devices.length} devices, ${os.cpus().length} cores (${os.cpus()[0]?.model}), node ${process.version}`);
      for (const [k, v] of Object.entries(figures)) {
        if (k === "devices" || k === "machine") continue;
        console.log(`${k.padEnd(64)} ${typeof v === "object" && v !== null ? JSON.stringify(v) : v}`);
      }
    }
    if (ended !== "converged") process.exitCode = 1;
  } finally {
    await stopAll();
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err) => {
    console.error(`bench:e2e failed: ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  },
);
