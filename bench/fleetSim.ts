/**
 * A simulated fleet at the largest size this machine holds (issue 17, "Toward a million devices"):
 * N clients that follow the real protocol of a release against the real firmware server (embedded
 * IPFS store, LedgerGate, ServerDatabase) and the real status tracker's server module, on a local
 * chain set up as the demo's. A client is not a full device agent (no slots, no watcher): it holds
 * a device key and its batch credential and does on the wire what a device does for one release
 * (bench/lib/fleetSimParts.ts runClients): its one ledger read (the update-check lens) and the
 * release checked on it, the signed manifest, artifact (every chunk verified) and key requests,
 * the key unwrap (and on a sample the decryption and hash check), and its sealed status report.
 *
 * It measures what a projection to a million devices needs, per operation and in total: the
 * JSON-RPC calls of every party per client, the time of one lens eth_call on the node (alone and
 * under load), the firmware server's requests/s, MB/s and CPU, its entitlement questions against
 * its ledger reads, the tracker's reports/s, CPU and SQLite rows written, the key wraps' and
 * report seals' cost, the peak memory of each part, and the time for all N clients (p50/p99 per
 * client). The firmware server runs in this process; the tracker and the clients each run in a
 * child process (so each part's CPU and memory are its process's), the chain node in its own.
 *
 *   npm run bench:fleetsim                        100,000 clients on anvil
 *   npm run bench:fleetsim -- --clients 10000     another fleet size (or BENCH_FLEETSIM_CLIENTS)
 *   --node hardhat|anvil (anvil)   the chain node: Foundry's anvil (Rust) or Hardhat's (JavaScript)
 *   --concurrency n (500)          clients in flight at once
 *   --ledger-every k (auto)        every k-th client makes the ledger read (auto: 1 up to 20,000
 *                                  clients, else N/20,000 rounded up); the RPC figures are then
 *                                  extrapolated to every client, and the output says so
 *   --decrypt-every k (10)         every k-th client decrypts and hash-checks the image (the others unwrap the key only)
 *   --image-kib n (256)            the release's image size
 *   --intake-workers n             the tracker's report-opening threads (default: the module's, one per core)
 *   --server-db-on-tmpfs           the firmware server's SQLite file under /dev/shm (its fsyncs cost nothing): shows the disk's share
 *   --in-process                   every part in this process (the test's mode; CPU is then not split by part)
 *   --timeout-s n (3600)           give up when the clients have not finished by then
 *   --stop-after-s n               hand out no more clients after n s of the run; those in flight
 *                                  finish and the figures are of the clients that ran (marked so)
 *   --json                         one JSON document (or BENCH_JSON=1)
 *
 * Open files: each client in flight holds a connection to the server or the tracker, and the
 * server the other end: about 2 x concurrency descriptors per process. The soft limit is printed;
 * the default concurrency stays well under this machine's 20,000 (raise it with `ulimit -n` in the
 * shell that starts the bench when it is lower than 4 x concurrency).
 *
 * Everything listens on 127.0.0.1; everything is stopped and the temporary folders removed at the
 * end, on an error and on Ctrl-C. The artifacts the clients verify are written under /dev/shm
 * when it exists (a client's artifact lives only until its check is done). Like bench:e2e it
 * writes deployments/localhost.json: do not run it beside `npm start`.
 */
// First: Node 20 lacks Promise.withResolvers, which Helia calls.
import "../agent/runtime/node20";
import { chainNodePid, processFigures as procFigures, stopsOnExit, wholeFlag } from "./lib/benchRun";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import { startLocalChain, type LocalChain } from "../scripts/lib/localChain";
import { startAnvil } from "../scripts/lib/anvilChain";
import { freePort } from "../scripts/lib/ports";
import { setUpLedger, BOOTLOADER } from "../scripts/demo/ledgerSetup";
import { agentChain } from "../scripts/demo/services";
import { publishSample } from "../scripts/demo/sampleRelease";
import { StoryLog } from "../scripts/demo/storyLog";
import { EmbeddedStore } from "../agent/storage/embeddedStore";
import { ServerDatabase } from "../agent/server/serverDatabase";
import { LedgerGate } from "../agent/server/ledgerGate";
import { startFirmwareServer } from "../agent/server/firmwareServer";
import { buildDeviceBatch, type DeviceRecord } from "../agent/crypto/deviceTree";
import { grantKeys } from "../agent/author/grantKeys";
import { ContentKeyStore } from "../agent/author/contentKeyStore";
import { newContentKey } from "../agent/crypto/artifactCipher";
import { keyWrapContext, wrapContentKey } from "../agent/crypto/keyWrap";
import { openMessage, sealMessage } from "../agent/crypto/sealedMessage";
import { fetchRelease } from "../agent/chain/releaseEvents";
import { readUpdateFactsOf, readUpdateFacts } from "../agent/chain/ledgerLens";
import type { DeviceCredential } from "../agent/crypto/deviceCredential";
import { countRpc, percentile, rpcDelta, runClients, simulatedDevice, type ClientJob, type ClientsConfig, type ClientsResult } from "./lib/fleetSimParts";
import { forkPart, processFigures, startPart, type TrackerConfig } from "./lib/parts";
import { round } from "./lib/measure";

const argv = process.argv.slice(2);
const flag = (name: string, env: string, fallback: number): number => wholeFlag(argv, name, env, fallback);
const json = argv.includes("--json") || process.env.BENCH_JSON === "1";
const CLIENTS = flag("--clients", "BENCH_FLEETSIM_CLIENTS", 100_000);
const CONCURRENCY = flag("--concurrency", "BENCH_FLEETSIM_CONCURRENCY", 500);
const AUTO_LEDGER_EVERY = Math.max(1, Math.ceil(CLIENTS / 20_000));
const LEDGER_EVERY = flag("--ledger-every", "BENCH_FLEETSIM_LEDGER_EVERY", AUTO_LEDGER_EVERY);
const DECRYPT_EVERY = flag("--decrypt-every", "BENCH_FLEETSIM_DECRYPT_EVERY", 10);
const IMAGE_KIB = flag("--image-kib", "BENCH_FLEETSIM_IMAGE_KIB", 256);
const TIMEOUT_S = flag("--timeout-s", "BENCH_FLEETSIM_TIMEOUT_S", 3600);
const STOP_AFTER_S = flag("--stop-after-s", "BENCH_FLEETSIM_STOP_AFTER_S", 1e9);
const INTAKE_WORKERS = argv.includes("--intake-workers") ? flag("--intake-workers", "", 1) : undefined;
const SERVER_DB_ON_TMPFS = argv.includes("--server-db-on-tmpfs");
const IN_PROCESS = argv.includes("--in-process") || process.env.BENCH_FLEETSIM_IN_PROCESS === "1";
const NODE = (() => {
  const i = argv.indexOf("--node");
  const text = (i >= 0 ? argv[i + 1] : process.env.BENCH_FLEETSIM_NODE) ?? "anvil";
  if (text !== "anvil" && text !== "hardhat") throw new Error(`--node "${text}" is not one of anvil, hardhat`);
  return text;
})();
/** The batch of credentials granted per grantKeys call (grantKeys itself sends 1,000 keys a request). */
const GRANT_LOT = 10_000;

// Progress goes to stderr in both modes (a run of 100,000 clients is long); --json's document is stdout's only content.
const log = (line: string) => process.stderr.write(line + "\n");
const seconds = (ms: number) => Math.round(ms) / 1000;
const mib = (bytes: number) => Math.round(bytes / 1024 / 1024);

async function main(): Promise<void> {
  const port = await freePort();
  process.env.OTA_RPC_URL = `http://127.0.0.1:${port}`;
  process.env.HARDHAT_NETWORK = "localhost";
  const hre: HardhatRuntimeEnvironment = (await import("hardhat")).default;
  await hre.run("compile", { quiet: true });

  const { stops, stopAll } = stopsOnExit("bench:fleetsim");

  try {
    const t0 = performance.now();
    const dir = await mkdtemp(path.join(os.tmpdir(), "ota-bench-fleetsim-"));
    stops.push(() => rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }));
    const shm = existsSync("/dev/shm") ? await mkdtemp(path.join("/dev/shm", "ota-fleetsim-")) : dir;
    stops.push(() => rm(shm, { recursive: true, force: true }));
    const chain: LocalChain = NODE === "anvil" ? await startAnvil({ port }) : await startLocalChain({ port });
    stops.push(() => chain.stop());
    log(`${NODE} node at ${chain.url}; ${CLIENTS} clients, ${CONCURRENCY} in flight, a ${IMAGE_KIB} KiB image; work in ${dir}`);
    const ledger = await setUpLedger(hre, new StoryLog(() => {}));
    const chainProcess = chainNodePid(NODE);

    // The firmware server, in this process, on its own counted connection.
    const serverChain = agentChain(ledger, chain.url);
    stops.push(() => serverChain.provider.destroy());
    const serverRpc = countRpc(serverChain.provider);
    const store = await EmbeddedStore.open({ directory: path.join(dir, "ipfs") });
    stops.push(() => store.close());
    // The server's SQLite file on disk (each write an fsync: synchronous FULL) unless told to put it on tmpfs.
    const serverDb = new ServerDatabase(path.join(SERVER_DB_ON_TMPFS ? shm : dir, "server.db"));
    stops.push(() => serverDb.close());
    const gate = new LedgerGate(serverChain.registry, serverChain.fleet, serverChain.domain, serverChain.fromBlock, serverChain.policies, {
      lens: serverChain.lens,
    });
    const server = await startFirmwareServer({ gate, store, db: serverDb, port: 0, pollMs: 1000 });
    stops.push(() => server.close());

    // The tracker's server module, in its own process (or here).
    const trackerConfig: TrackerConfig = {
      deployment: ledger.deployment,
      rpcUrl: chain.url,
      module: { id: ledger.modules.server.id, privateKey: ledger.modules.server.privateKey },
      dataDir: path.join(dir, "tracker"),
      ...(INTAKE_WORKERS !== undefined ? { intakeWorkers: INTAKE_WORKERS } : IN_PROCESS ? { intakeWorkers: 0 } : {}),
    };
    const tracker = await startPart("tracker", trackerConfig, IN_PROCESS);
    stops.push(() => tracker.stop());
    const setupMs = performance.now() - t0;
    log(`ledger set up, firmware server ${server.url}, tracker ${tracker.url} (${seconds(setupMs)} s)`);

    // Key material: N device keys, derived; one batch tree; one enrolment transaction.
    let t = performance.now();
    const privateKeys: string[] = new Array(CLIENTS);
    const records: DeviceRecord[] = new Array(CLIENTS);
    for (let i = 0; i < CLIENTS; i++) {
      const d = simulatedDevice(i);
      privateKeys[i] = d.privateKey;
      records[i] = d.record;
    }
    const keysMs = performance.now() - t;
    t = performance.now();
    const batch = buildDeviceBatch(records);
    const treeMs = performance.now() - t;
    const rssAfterTree = process.memoryUsage().rss;
    t = performance.now();
    const enrolReceipt = await (await ledger.fleet.connect(ledger.actors.admin).enrolDeviceBatch(batch.root, CLIENTS, "bench:fleetsim")).wait();
    const enrolled = enrolReceipt!.logs.map((l) => ledger.fleet.interface.parseLog(l)).find((p) => p?.name === "DeviceBatchEnrolled");
    if (!enrolled) throw new Error("the batch enrolment emitted no DeviceBatchEnrolled event");
    const batchId = Number(enrolled.args.batchId);
    const credential = (i: number): DeviceCredential => ({ record: records[i], batchId, proof: batch.proofs[i] });
    await tracker.batchMirrored(batchId, 120_000);
    const enrolMs = performance.now() - t;
    log(
      `${CLIENTS} keys derived (${seconds(keysMs)} s), batch tree built (${seconds(treeMs)} s, ${batch.proofs[0].length} hashes a proof, RSS ${mib(rssAfterTree)} MiB), enrolled in batch ${batchId} (${enrolReceipt!.gasUsed} gas)`,
    );

    // The release: published, artifact submitted (publishSample), then the keys granted in lots.
    t = performance.now();
    const release = await publishSample(
      ledger,
      { component: BOOTLOADER, version: "1.0.0", size: IMAGE_KIB * 1024, hardware: [1, 2, 3], credentials: [] },
      { dir, serverUrl: server.url },
    );
    const publishMs = performance.now() - t;
    const authorChain = agentChain(ledger, chain.url);
    stops.push(() => authorChain.provider.destroy());
    const authorRpc = countRpc(authorChain.provider);
    const keys = new ContentKeyStore(path.join(dir, "author-keys"));
    t = performance.now();
    let granted = 0;
    for (let i = 0; i < CLIENTS; i += GRANT_LOT) {
      const lot = Array.from({ length: Math.min(GRANT_LOT, CLIENTS - i) }, (_, k) => credential(i + k));
      const r = await grantKeys(
        {
          registry: authorChain.registry,
          fleet: authorChain.fleet,
          domain: ledger.domain,
          author: ledger.actors.author,
          keys,
          serverUrl: server.url,
          fromBlock: ledger.deployment.deployedAtBlock,
        },
        release.id,
        { allEligible: true, credentials: lot },
      );
      granted += r.granted.length;
      if (r.skipped.length) throw new Error(`the grant skipped ${r.skipped.length} devices, e.g. ${JSON.stringify(r.skipped[0])}`);
      log(`  ${granted} of ${CLIENTS} keys granted after ${seconds(performance.now() - t)} s`);
    }
    const grantMs = performance.now() - t;
    const grantRpc = authorRpc.snapshot();
    log(
      `release ${release.label} published and submitted (${seconds(publishMs)} s); ${granted} keys granted (${seconds(grantMs)} s, ${grantRpc.total} JSON-RPC calls)`,
    );

    // Per-operation costs, apart: a key wrap (one ECIES), a report's seal and open, one lens eth_call.
    const perOp = await measureOperations(ledger, chain.url, release.id, credential, privateKeys, Math.min(CLIENTS, 2000));
    log(`per operation: ${JSON.stringify(perOp)}`);

    // The run.
    const ledgerRelease = (await fetchRelease(ledger.registry, ledger.domain, release.id, ledger.deployment.deployedAtBlock))!;
    const clientsConfig: ClientsConfig = {
      deployment: ledger.deployment,
      rpcUrl: chain.url,
      releaseId: release.id,
      serverUrl: server.url,
      tracker: { moduleId: ledger.modules.server.id, publicKey: ledger.modules.server.publicKey, url: tracker.url },
      pinnedSigners: [ledgerRelease.signer],
      concurrency: CONCURRENCY,
      ledgerEvery: LEDGER_EVERY,
      decryptEvery: DECRYPT_EVERY,
      workDir: path.join(shm, "clients"),
      timeoutMs: 60_000,
    };
    // Past --stop-after-s no more clients are handed out: those in flight finish, and the figures
    // are of the clients that ran (a time-limited sample of a fleet too large for the time at hand).
    let handedOut = 0;
    let stoppedEarly = false;
    const next = async (max: number): Promise<ClientJob[]> => {
      const jobs: ClientJob[] = [];
      if (performance.now() - runStart > STOP_AFTER_S * 1000) {
        stoppedEarly ||= handedOut < CLIENTS;
        return jobs;
      }
      while (jobs.length < max && handedOut < CLIENTS) {
        const i = handedOut++;
        jobs.push({ index: i, privateKey: privateKeys[i], credential: credential(i) });
      }
      return jobs;
    };
    const before = {
      server: serverRpc.snapshot(),
      entitlements: { ...gate.entitlements.stats },
      tracker: await tracker.figures(release.id),
      me: processFigures(),
      chain: await procFigures(chainProcess),
    };
    const progress = (done: number, failed: number, rssMiB?: number) =>
      log(
        `  ${done} clients done, ${failed} failed, after ${seconds(performance.now() - runStart)} s (RSS MiB: server ${mib(process.memoryUsage().rss)}${rssMiB ? `, clients ${rssMiB}` : ""})`,
      );
    const runStart = performance.now();
    let result: ClientsResult;
    let clientsPid: number | undefined;
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`the clients did not finish within ${TIMEOUT_S} s`)), TIMEOUT_S * 1000).unref(),
    );
    if (IN_PROCESS) result = await Promise.race([runClients(clientsConfig, next, progress), timeout]);
    else {
      const part = forkPart(path.join(__dirname, "lib", "fleetSimParts.ts"), "clients", clientsConfig);
      clientsPid = part.child.pid;
      stops.push(() => part.child.kill("SIGKILL"));
      part.on((m) => {
        if (m.type === "next") void next(m.max as number).then((jobs) => part.child.send({ type: "jobs", id: m.id, jobs }));
        else if (m.type === "progress") progress(m.done as number, m.failed as number, m.rssMiB as number);
      });
      result = (await Promise.race([part.waitFor("result", TIMEOUT_S * 1000), timeout])).result as ClientsResult;
      // It exits by itself once done (and writes its CPU profile, if asked).
      await Promise.race([part.exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
    const runMs = performance.now() - runStart;
    // The tracker holds every client's report (each was answered 2xx before the client counted as done).
    let held = await tracker.figures(release.id);
    for (const deadline = performance.now() + 30_000; held.holding < result.done && performance.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 200));
      held = await tracker.figures(release.id);
    }
    const after = {
      server: serverRpc.snapshot(),
      entitlements: { ...gate.entitlements.stats },
      me: processFigures(),
      chain: await procFigures(chainProcess),
    };
    log(`${result.done} clients done, ${result.failed} failed, in ${seconds(runMs)} s; the tracker holds ${held.holding} reports of the release`);

    const run = runMs / 1000;
    const serverCpu = after.me.cpuS - before.me.cpuS;
    const trackerCpu = held.process.cpuS - before.tracker.process.cpuS;
    const chainCpu = after.chain && before.chain ? after.chain.cpuS - before.chain.cpuS : null;
    const serverCalls = rpcDelta(before.server, after.server);
    const trackerCalls = rpcDelta(before.tracker.rpc, held.rpc);
    const ledgerClients = result.steps.ledger.n;
    const perClientLedger = ledgerClients ? result.rpc.total / ledgerClients : 0;
    const extrapolatedClientCalls = Math.round(perClientLedger * result.done);
    const questions = after.entitlements.questions - before.entitlements.questions;
    const reads = after.entitlements.reads - before.entitlements.reads;
    const figures = {
      clients: CLIENTS,
      "chain node": NODE,
      "clients in flight": CONCURRENCY,
      "image KiB": IMAGE_KIB,
      "firmware server database": SERVER_DB_ON_TMPFS ? "tmpfs (/dev/shm)" : "disk (the work folder)",
      "parts in": IN_PROCESS ? "one process" : "processes: this (firmware server), tracker, clients, chain node",
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadavg: os.loadavg().map((x) => round(x)) },
      "setup: chain, ledger, server, tracker s": seconds(setupMs),
      "key material: device keys derived s": seconds(keysMs),
      "key material: batch tree built s": seconds(treeMs),
      "key material: RSS after the tree MiB": mib(rssAfterTree),
      "batch enrolment (one transaction, tracker mirrored it) s": seconds(enrolMs),
      "release published + artifact submitted s": seconds(publishMs),
      "keys granted s": seconds(grantMs),
      "keys granted per s": round(CLIENTS / (grantMs / 1000)),
      "grant: JSON-RPC calls by the author": grantRpc.total,
      "grant: JSON-RPC calls by method": grantRpc.byMethod,
      "per operation (measured apart)": perOp,
      "run: stopped handing out clients at --stop-after-s (figures are of those that ran)": stoppedEarly,
      "run: all clients done s": seconds(runMs),
      "run: clients done / failed": [result.done, result.failed],
      "run: failures by code": result.failures,
      "run: steps retried after 503 SERVER_BUSY (about 1 s, jittered), by code": result.retries,
      "run: first client done s": seconds(result.firstDoneMs),
      "run: clients per s": round(result.done / run),
      "per client: job taken -> report taken, p50 / p99 / max ms": [result.latencyMs.p50, result.latencyMs.p99, result.latencyMs.max],
      "per client step ms (n, p50, p99)": Object.fromEntries(Object.entries(result.steps).map(([k, v]) => [k, [v.n, v.p50, v.p99]])),
      "ledger reads: clients that made one (every k-th)": [ledgerClients, LEDGER_EVERY],
      "JSON-RPC calls: clients (measured, sampled clients only)": result.rpc.total,
      "JSON-RPC calls: clients, extrapolated to every client": extrapolatedClientCalls,
      "JSON-RPC calls: clients by method": result.rpc.byMethod,
      "JSON-RPC calls: firmware server": serverCalls.total,
      "JSON-RPC calls: firmware server by method": serverCalls.byMethod,
      "JSON-RPC calls: tracker": trackerCalls.total,
      "JSON-RPC calls: tracker by method": trackerCalls.byMethod,
      "JSON-RPC calls per client, every party (clients' extrapolated)": round(
        (extrapolatedClientCalls + serverCalls.total + trackerCalls.total) / Math.max(1, result.done),
        3,
      ),
      "JSON-RPC calls per s at the node during the run (clients' as measured)": round((result.rpc.total + serverCalls.total + trackerCalls.total) / run),
      "firmware server: requests": result.firmwareServer.requests,
      "firmware server: requests per s": round(result.firmwareServer.requests / run),
      "firmware server: MB served": round(result.firmwareServer.bytes / 1e6),
      "firmware server: MB per s": round(result.firmwareServer.bytes / 1e6 / run),
      "firmware server: entitlement questions / ledger reads": [questions, reads],
      "firmware server: devices per entitlement read": reads ? round(questions / reads) : null,
      "firmware server: CPU s (this process) / share of the run": IN_PROCESS ? null : [round(serverCpu), round(serverCpu / run, 2)],
      "firmware server: CPU ms per client": IN_PROCESS ? null : round((serverCpu * 1000) / Math.max(1, result.done), 2),
      "tracker: reports taken (held for the release)": held.holding,
      "tracker: reports per s over the run": round(held.holding / run),
      "tracker: SQLite rows written during the run": held.sqliteRowsWritten - before.tracker.sqliteRowsWritten,
      "tracker: SQLite rows written per report": round((held.sqliteRowsWritten - before.tracker.sqliteRowsWritten) / Math.max(1, held.holding), 2),
      "tracker: CPU s / share of the run": IN_PROCESS ? null : [round(trackerCpu), round(trackerCpu / run, 2)],
      "tracker: CPU ms per report": IN_PROCESS ? null : round((trackerCpu * 1000) / Math.max(1, held.holding), 2),
      "clients: CPU s / share of the run": IN_PROCESS ? null : [round(result.process.cpuS), round(result.process.cpuS / run, 2)],
      "clients: CPU ms per client": IN_PROCESS ? null : round((result.process.cpuS * 1000) / Math.max(1, result.done), 2),
      "chain node: CPU s / share of the run": chainCpu === null ? null : [round(chainCpu), round(chainCpu / run, 2)],
      "peak RSS MiB: this process (firmware server, author, key material)": after.me.peakRssMiB,
      "peak RSS MiB: tracker": IN_PROCESS ? null : held.process.peakRssMiB,
      "peak RSS MiB: clients": IN_PROCESS ? null : result.process.peakRssMiB,
      "peak RSS MiB: chain node": after.chain?.peakRssMiB ?? null,
      "soft limit on open files": Number(execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim()) || null,
      "client pid (for profiling)": clientsPid ?? null,
    };
    if (json) console.log(JSON.stringify(figures, null, 2));
    else {
      console.log(`\nfleet simulation, ${CLIENTS} clients, ${os.cpus().length} cores (${os.cpus()[0]?.model}), node ${process.version}`);
      for (const [k, v] of Object.entries(figures)) {
        if (k === "clients" || k === "machine") continue;
        console.log(`${k.padEnd(72)} ${typeof v === "object" && v !== null ? JSON.stringify(v) : v}`);
      }
    }
    if (result.failed > 0 || held.holding < result.done || stoppedEarly) process.exitCode = 1;
  } finally {
    await stopAll();
  }
}

/**
 * What one operation costs, measured apart from the run: a content key wrapped for a device (one
 * ECIES), a status report sealed (device) and opened (tracker), and the update-check lens on the
 * node: alone (sequential, p50) and under load (32 in flight, calls/s), and 50 queries a call.
 */
async function measureOperations(
  ledger: Awaited<ReturnType<typeof setUpLedger>>,
  rpcUrl: string,
  releaseId: string,
  credential: (i: number) => DeviceCredential,
  privateKeys: string[],
  n: number,
) {
  const key = newContentKey();
  let t = performance.now();
  const wraps = Math.min(n, 1000);
  for (let i = 0; i < wraps; i++)
    wrapContentKey(key, Buffer.from(credential(i).record.publicKey.slice(2), "hex"), keyWrapContext(releaseId, credential(i).record.id));
  const wrapUs = ((performance.now() - t) * 1000) / wraps;

  const seals = Math.min(n, 300);
  const module = ledger.modules.server;
  const envelopes = [];
  t = performance.now();
  for (let i = 0; i < seals; i++) {
    const c = credential(i);
    envelopes.push(
      await sealMessage(
        { kind: "status-report", from: c.record.id, to: module.id, issuedAt: Date.now(), body: { deviceId: c.record.id, counter: 1, credential: c } },
        { kind: "device", privateKey: privateKeys[i] },
        module.publicKey,
      ),
    );
  }
  const sealUs = ((performance.now() - t) * 1000) / seals;
  t = performance.now();
  for (const e of envelopes) openMessage(e, module.privateKey, module.id, "device");
  const openUs = ((performance.now() - t) * 1000) / seals;

  const chain = agentChain(ledger, rpcUrl);
  try {
    const release = (await fetchRelease(chain.registry, chain.domain, releaseId, chain.fromBlock))!;
    const q = (i: number) => ({ release, device: credential(i % privateKeys.length), installed: [], running: [] });
    const sequential = Math.min(n, 200);
    const times: number[] = [];
    for (let i = 0; i < sequential; i++) {
      const s = performance.now();
      await readUpdateFacts(chain, q(i));
      times.push(performance.now() - s);
    }
    times.sort((a, b) => a - b);
    // The node's own share: the same eth_call (its payload captured once) sent raw, with no ABI
    // encoding or decoding on this side.
    let payload: unknown;
    const send = chain.provider._send.bind(chain.provider);
    chain.provider._send = async (p) => {
      payload ??= Array.isArray(p) ? p[0] : p;
      return send(p);
    };
    await readUpdateFacts(chain, q(0));
    chain.provider._send = send;
    const raw: number[] = [];
    for (let i = 0; i < sequential; i++) {
      const s = performance.now();
      const res = await fetch(rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(payload) });
      if (!(((await res.json()) as { result?: string }).result ?? "").startsWith("0x")) throw new Error("the raw lens eth_call failed");
      raw.push(performance.now() - s);
    }
    raw.sort((a, b) => a - b);
    const loaded = Math.min(n * 2, 4000);
    let k = 0;
    t = performance.now();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (k < loaded) await readUpdateFacts(chain, q(k++));
      }),
    );
    const loadedPerS = loaded / ((performance.now() - t) / 1000);
    t = performance.now();
    const multi = 50;
    const rounds = n >= 500 ? 10 : 1;
    for (let r = 0; r < rounds; r++)
      await readUpdateFactsOf(
        chain,
        Array.from({ length: multi }, (_, i) => q(r * multi + i)),
      );
    const multiMs = (performance.now() - t) / rounds;
    return {
      "key wrap (ECIES) us": round(wrapUs),
      "report seal (device) us": round(sealUs),
      "report open (tracker) us": round(openUs),
      "lens eth_call alone p50 / p99 ms": [round(percentile(times, 50), 2), round(percentile(times, 99), 2)],
      "lens eth_call raw (node + HTTP only) p50 / p99 ms": [round(percentile(raw, 50), 2), round(percentile(raw, 99), 2)],
      "lens eth_calls per s, 32 in flight": round(loadedPerS),
      [`lens eth_call of ${multi} devices ms`]: round(multiMs, 1),
    };
  } finally {
    chain.provider.destroy();
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err) => {
    console.error(`bench:fleetsim failed: ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  },
);
