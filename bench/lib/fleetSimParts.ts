/**
 * The simulated clients of bench/fleetSim.ts: each does what a device does on the wire for one
 * release, nothing more. They run in this process (`--in-process`, and the test) or in a child
 * process of their own (the default: then their CPU and memory are its process's), driven over
 * the IPC channel: the orchestrator hands out the clients' work in small lots as the client
 * process asks for it, so no process holds 100,000 clients at once. (The tracker, its other
 * part, is bench/lib/parts.ts's.)
 *
 * Child usage (started by fleetSim.ts only): `ts-node bench/lib/fleetSimParts.ts clients`, the
 * configuration as the first IPC message.
 */
// First: Node 20 lacks Promise.withResolvers, which Helia calls (this file is also a forked child's entry).
import "../../agent/runtime/node20";
import { createECDH, createHash } from "node:crypto";
import { mkdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { encodeBytes32String } from "ethers";
import type { Deployment } from "../../agent/chain/deployment";
import { fetchRelease } from "../../agent/chain/releaseEvents";
import { readUpdateFacts } from "../../agent/chain/ledgerLens";
import { checkReleaseFacts } from "../../agent/chain/verifyLedgerRelease";
import { decryptDownloaded, downloadArtifact } from "../../agent/consumer/downloadRelease";
import { sendStatusReport } from "../../agent/consumer/statusReport";
import { keyWrapContext, unwrapContentKey } from "../../agent/crypto/keyWrap";
import type { DeviceCredential } from "../../agent/crypto/deviceCredential";
import type { DeviceRecord } from "../../agent/crypto/deviceTree";
import { partChain, processFigures } from "./parts";

// ---------------------------------------------------------------------------------------------
// Shared pieces

/** One simulated device: its key and its batch credential (record and Merkle proof). */
export interface ClientJob {
  index: number;
  privateKey: string;
  credential: DeviceCredential;
}

/**
 * A simulated device's key and record, derived from its index: cheap (a SHA-256 and one native
 * secp256k1 multiplication, about 0.25 ms) and the same in every run.
 */
const ecdh = createECDH("secp256k1");
export function simulatedDevice(index: number): { privateKey: string; record: DeviceRecord } {
  const key = createHash("sha256").update(`OTA Ledger fleet simulation device key ${index}`).digest();
  ecdh.setPrivateKey(key);
  return {
    privateKey: "0x" + key.toString("hex"),
    record: {
      id: "0x" + createHash("sha256").update(`OTA Ledger fleet simulation device ${index}`).digest("hex"),
      publicKey: "0x" + ecdh.getPublicKey(undefined, "compressed").toString("hex"),
      hardwareClass: (index % 3) + 1,
      network: encodeBytes32String("plant-1"),
      region: encodeBytes32String("eu-west"),
    },
  };
}

export { countRpc, rpcDelta, type RpcCount } from "./benchRun";
import { countRpc, rpcDelta, type RpcCount } from "./benchRun";

/** The nearest-rank percentile of sorted values. */
export const percentile = (sorted: ArrayLike<number>, p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

// ---------------------------------------------------------------------------------------------
// The clients

export interface ClientsConfig {
  deployment: Deployment;
  rpcUrl: string;
  releaseId: string;
  serverUrl: string;
  tracker: { moduleId: string; publicKey: string; url: string };
  pinnedSigners: string[];
  /** Clients in flight at once. */
  concurrency: number;
  /** Every k-th client makes the device's ledger read (and checks the release on its answer); 1: all. */
  ledgerEvery: number;
  /** Every k-th client decrypts the artifact and checks the image's hash; the others unwrap the key only. */
  decryptEvery: number;
  /** Where the artifacts land while verified (removed after each client). */
  workDir: string;
  /** The clients' idle timeout on the firmware server (ms). */
  timeoutMs: number;
}

/** Per-client and total figures of the clients' part, gathered as they go (bounded: no per-client objects kept). */
export interface ClientsResult {
  done: number;
  failed: number;
  failures: Record<string, number>;
  /** Steps retried after a 503 (SERVER_BUSY), by code. */
  retries: Record<string, number>;
  /** Per-client wall time, job taken to report taken (ms), sorted. */
  latencyMs: { p50: number; p99: number; max: number; min: number; mean: number };
  /** Time in each step, summed over the clients that made it (ms) and how many did. */
  steps: Record<"ledger" | "download" | "unwrap" | "decrypt" | "report", { n: number; totalMs: number; p50: number; p99: number }>;
  firmwareServer: { requests: number; bytes: number };
  tracker: { requests: number; bytes: number };
  rpc: RpcCount;
  wallMs: number;
  firstDoneMs: number;
  lastDoneMs: number;
  process: { cpuS: number; peakRssMiB: number };
}

const MAX_BUSY_RETRIES = 60;
const BUSY_PAUSE_MS = 1000;

/** A bounded reservoir of step times: exact percentiles from up to `cap` samples, spread evenly. */
class StepTimes {
  private readonly samples: number[] = [];
  n = 0;
  totalMs = 0;
  constructor(private readonly cap = 20_000) {}
  add(ms: number) {
    this.n++;
    this.totalMs += ms;
    if (this.samples.length < this.cap) this.samples.push(ms);
    else {
      const j = Math.floor(Math.random() * this.n);
      if (j < this.cap) this.samples[j] = ms;
    }
  }
  figures() {
    const s = [...this.samples].sort((a, b) => a - b);
    return { n: this.n, totalMs: Math.round(this.totalMs), p50: round2(percentile(s, 50)), p99: round2(percentile(s, 99)) };
  }
}
const round2 = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : x);

/** Counts requests and answer bytes by origin (the firmware server's, the tracker's) in this process. */
function countHttp(origins: Record<string, string>) {
  const counts: Record<string, { requests: number; bytes: number }> = {};
  for (const name of Object.keys(origins)) counts[name] = { requests: 0, bytes: 0 };
  const plain = globalThis.fetch;
  globalThis.fetch = async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
    const name = Object.keys(origins).find((k) => origins[k] === url.origin);
    const res = await plain(input, init);
    if (name) {
      counts[name].requests++;
      // The artifact streams without a length: its bytes are counted from the verified file.
      if (!url.pathname.endsWith("/artifact")) counts[name].bytes += Number(res.headers.get("content-length") ?? 0);
    }
    return res;
  };
  return { counts, restore: () => (globalThis.fetch = plain) };
}

/**
 * Runs clients as they are handed out by `next` (a lot at a time, `concurrency` in flight) until
 * it hands out none. Each client does what a device does for a release on the wire: (1) its one
 * ledger read (the update-check lens, at the head) and the release checked on its answer (every
 * `ledgerEvery`-th client), (2) the signed manifest, artifact (every chunk verified against the
 * ledger's root) and key requests to the firmware server, (3) the key unwrapped (and, every
 * `decryptEvery`-th, the artifact decrypted and its hash checked against the ledger), (4) its
 * sealed status report, naming the release as installed, to the tracker.
 */
export async function runClients(
  cfg: ClientsConfig,
  next: (max: number) => Promise<ClientJob[]>,
  onProgress?: (done: number, failed: number) => void,
): Promise<ClientsResult> {
  const chain = partChain(cfg.deployment, cfg.rpcUrl);
  const rpc = countRpc(chain.provider);
  const http = countHttp({ firmwareServer: new URL(cfg.serverUrl).origin, tracker: new URL(cfg.tracker.url).origin });
  await mkdir(cfg.workDir, { recursive: true });
  try {
    // The release as the device's watcher decodes it from the ReleasePublished event (one log read
    // for the process: a device's watcher reads the event once, with every other event it follows).
    const release = await fetchRelease(chain.registry, chain.domain, cfg.releaseId, chain.fromBlock);
    if (!release) throw new Error(`the ledger has no release ${cfg.releaseId}: publish it before the clients start`);
    const rpcAtStart = rpc.snapshot();
    const cpuAtStart = processFigures().cpuS; // the process's start (ts-node, imports) is not the clients' cost
    const component = release.record.component;
    const latencies: number[] = [];
    const steps = { ledger: new StepTimes(), download: new StepTimes(), unwrap: new StepTimes(), decrypt: new StepTimes(), report: new StepTimes() };
    const failures: Record<string, number> = {};
    let done = 0;
    let failed = 0;
    let firstDone = 0;
    let lastDone = 0;
    const t0 = performance.now();

    // A server that sheds load answers 503 SERVER_BUSY (e.g. more unknown devices being admitted
    // at once than its lookup limit): the client retries after a jittered pause, as a device
    // retries a blocked delivery; the retries are counted by code.
    const retries: Record<string, number> = {};
    const whenNotBusy = async <T>(step: () => Promise<T>): Promise<T> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await step();
        } catch (err) {
          const e = err as { code?: string; message?: string };
          const busy = e.code === "SERVER_BUSY" || (e.code === "TRACKER_REFUSED" && / 503 /.test(e.message ?? ""));
          if (!busy || attempt >= MAX_BUSY_RETRIES) throw err;
          retries[e.code!] = (retries[e.code!] ?? 0) + 1;
          await new Promise((r) => setTimeout(r, BUSY_PAUSE_MS * (0.5 + Math.random())));
        }
      }
    };

    const one = async (job: ClientJob) => {
      const begin = performance.now();
      const device = { privateKey: job.privateKey, credential: job.credential };
      const artifactFile = path.join(cfg.workDir, `${job.index}.otae`);
      const imageFile = path.join(cfg.workDir, `${job.index}.img`);
      try {
        let t = performance.now();
        if (job.index % cfg.ledgerEvery === 0) {
          const facts = await readUpdateFacts(chain, { release, device: job.credential, installed: [], running: [] });
          checkReleaseFacts(release, facts, { pinnedSigners: cfg.pinnedSigners });
          if (facts.standing !== "active")
            throw Object.assign(new Error(`device ${job.index} is ${facts.standing} on the ledger`), { code: "DEVICE_NOT_ACTIVE" });
          if (facts.verdict.verdict !== "INSTALLABLE")
            throw Object.assign(new Error(`the ledger says ${facts.verdict.verdict}`), { code: facts.verdict.verdict });
          steps.ledger.add(performance.now() - t);
        }
        t = performance.now();
        const { wrappedKey } = await whenNotBusy(() =>
          downloadArtifact({
            serverUrl: cfg.serverUrl,
            device,
            installed: [],
            release: { id: release.id, record: release.record },
            artifactFile,
            timeoutMs: cfg.timeoutMs,
          }),
        );
        steps.download.add(performance.now() - t);
        const artifactBytes = (await stat(artifactFile)).size; // apart: `x += await y` would lose the others' additions meanwhile
        http.counts.firmwareServer.bytes += artifactBytes;
        t = performance.now();
        if (job.index % cfg.decryptEvery === 0) {
          await decryptDownloaded({ device, release, artifactFile, imageFile, wrappedKey });
          steps.decrypt.add(performance.now() - t);
        } else {
          unwrapContentKey(wrappedKey, Buffer.from(job.privateKey.slice(2), "hex"), keyWrapContext(release.id, job.credential.record.id));
          steps.unwrap.add(performance.now() - t);
        }
        await rm(artifactFile, { force: true });
        await rm(imageFile, { force: true });
        t = performance.now();
        await whenNotBusy(() =>
          sendStatusReport(
            {
              deviceId: job.credential.record.id,
              counter: 1,
              installed: [{ component, version: release.record.version.toString(), releaseId: release.id, slot: "b" }],
              lastResult: { releaseId: release.id, component, outcome: "confirmed", code: "OK", at: Date.now() },
              needs: [],
              declined: [],
              safeMode: false,
              credential: job.credential,
            },
            { privateKey: job.privateKey },
            cfg.tracker,
          ),
        );
        steps.report.add(performance.now() - t);
        const end = performance.now();
        latencies.push(end - begin);
        done++;
        if (!firstDone) firstDone = end;
        lastDone = end;
      } catch (err) {
        failed++;
        const code = (err as { code?: string }).code ?? (err as Error).name ?? "ERROR";
        failures[code] = (failures[code] ?? 0) + 1;
        if (failures[code] <= 3) process.stderr.write(`fleetSim client ${job.index}: ${code}: ${(err as Error).message}\n`);
        await rm(artifactFile, { force: true }).catch(() => {});
        await rm(imageFile, { force: true }).catch(() => {});
      }
    };

    // A pool of `concurrency` workers, each taking the next client as it finishes one; lots
    // of work are fetched ahead so a worker rarely waits for the orchestrator.
    let queue: ClientJob[] = [];
    let exhausted = false;
    let refill: Promise<void> | undefined;
    const lot = Math.max(50, cfg.concurrency);
    const take = async (): Promise<ClientJob | undefined> => {
      for (;;) {
        if (queue.length > 0) {
          const job = queue.shift()!;
          if (queue.length < lot && !exhausted && !refill) refill = fill();
          return job;
        }
        if (exhausted) return undefined;
        await (refill ??= fill());
      }
    };
    const fill = async () => {
      const more = await next(lot);
      if (more.length === 0) exhausted = true;
      queue = queue.concat(more);
      refill = undefined;
    };
    const progress = onProgress && setInterval(() => onProgress(done, failed), 2000);
    await Promise.all(
      Array.from({ length: cfg.concurrency }, async () => {
        for (let job = await take(); job; job = await take()) await one(job);
      }),
    );
    if (progress) clearInterval(progress);
    latencies.sort((a, b) => a - b);
    return {
      done,
      failed,
      failures,
      retries,
      latencyMs: {
        p50: round2(percentile(latencies, 50)),
        p99: round2(percentile(latencies, 99)),
        max: round2(latencies[latencies.length - 1]),
        min: round2(latencies[0]),
        mean: round2(latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)),
      },
      steps: {
        ledger: steps.ledger.figures(),
        download: steps.download.figures(),
        unwrap: steps.unwrap.figures(),
        decrypt: steps.decrypt.figures(),
        report: steps.report.figures(),
      },
      firmwareServer: http.counts.firmwareServer,
      tracker: http.counts.tracker,
      rpc: rpcDelta(rpcAtStart, rpc.snapshot()),
      wallMs: Math.round(performance.now() - t0),
      firstDoneMs: firstDone ? Math.round(firstDone - t0) : 0,
      lastDoneMs: lastDone ? Math.round(lastDone - t0) : 0,
      process: { cpuS: processFigures().cpuS - cpuAtStart, peakRssMiB: processFigures().peakRssMiB },
    };
  } finally {
    http.restore();
    chain.provider.destroy();
    await rm(cfg.workDir, { recursive: true, force: true }).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// The child's side of the IPC channel

type Message = { id?: number; type: string; [k: string]: unknown };

/** The child's side: answers the orchestrator's requests, one part per process. */
async function childMain(role: string): Promise<void> {
  const send = (m: Message) => process.send!(m);
  const config = await new Promise<Message>((resolve) => process.once("message", (m) => resolve(m as Message)));
  if (role === "clients") {
    let asked = 0;
    const waiting = new Map<number, (jobs: ClientJob[]) => void>();
    process.on("message", (raw) => {
      const m = raw as Message;
      if (m.type === "jobs") {
        waiting.get(m.id!)?.(m.jobs as ClientJob[]);
        waiting.delete(m.id!);
      }
    });
    const next = (max: number) =>
      new Promise<ClientJob[]>((resolve) => {
        const id = ++asked;
        waiting.set(id, resolve);
        send({ id, type: "next", max });
      });
    const result = await runClients(config.config as ClientsConfig, next, (done, failed) =>
      send({ type: "progress", done, failed, rssMiB: Math.round(process.memoryUsage().rss / 1024 / 1024) }),
    );
    send({ type: "result", result });
    process.disconnect();
    return;
  }
  throw new Error(`fleetSimParts: unknown role "${role}" (clients)`);
}

if (require.main === module) {
  childMain(process.argv[2]).catch((err) => {
    process.stderr.write(`fleetSimParts ${process.argv[2]} failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
