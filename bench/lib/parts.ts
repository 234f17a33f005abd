/**
 * The services a whole-system benchmark starts (the firmware server, the status tracker's server
 * module), each in this process or in a child process of its own, with the same interface either
 * way: in a child, each method is one request over the IPC channel. A child's CPU and memory are
 * its own process's, and its work does not share the benchmark's event loop or core.
 *
 * Child usage (started by startPart only): `ts-node bench/lib/parts.ts server|tracker`, the
 * configuration as the first IPC message. The child ends with its parent (exitWithParent.js).
 */
// First: Node 20 lacks Promise.withResolvers, which Helia calls (this file is also a forked child's entry).
import "../../agent/runtime/node20";
import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { JsonRpcProvider, Network } from "ethers";
import { FleetRegistry__factory, UpdatePolicies__factory, UpdateRegistry__factory } from "../../typechain-types";
import { registryDomain } from "../../agent/crypto/releaseSignature";
import { EmbeddedStore } from "../../agent/storage/embeddedStore";
import { ServerDatabase } from "../../agent/server/serverDatabase";
import { LedgerGate } from "../../agent/server/ledgerGate";
import { startFirmwareServer } from "../../agent/server/firmwareServer";
import { TrackerModule } from "../../agent/tracker/trackerModule";
import { startTrackerHttp } from "../../agent/tracker/trackerHttp";
import type { Deployment } from "../../agent/chain/deployment";
import { agentChain, type AgentChain } from "../../scripts/demo/services";
import type { DemoLedger } from "../../scripts/demo/ledgerSetup";
import { countRpc, type RpcCount } from "./benchRun";

/** This process's CPU seconds (user + system) and peak resident memory (MiB). */
export function processFigures() {
  const u = process.resourceUsage();
  return { cpuS: (u.userCPUTime + u.systemCPUTime) / 1e6, peakRssMiB: Math.round(u.maxRSS / 1024) };
}
export type ProcessFigures = ReturnType<typeof processFigures>;

/** The chain as a part outside the orchestrator sees it: over its own connection, from the deployment. */
export function partChain(deployment: Deployment, rpcUrl: string): AgentChain {
  const ledger = { deployment, domain: registryDomain(deployment.chainId, deployment.updateRegistry) } as unknown as DemoLedger;
  return agentChain(ledger, rpcUrl);
}

// ---------------------------------------------------------------------------------------------
// The firmware server

export interface ServerConfig {
  rpcUrl: string;
  chainId: number;
  registry: string;
  fleet: string;
  /** Where administrators attach update policies (the server asks them too), if deployed. */
  policies?: string;
  /** A deployed update-check lens, if there is one. */
  lens?: string;
  /** The deployment block: where the server's ledger follower starts. */
  fromBlock?: number;
  /** The embedded IPFS store and the server's database go here. */
  dir: string;
  /** How often the server's follower polls the ledger (ms; the server's default if absent). */
  pollMs?: number;
}

export interface ServerFigures {
  /** The JSON-RPC calls the server sent since it started. */
  rpc: RpcCount;
  /** Its entitlement questions, the ledger reads that answered them, and the answers it remembered. */
  entitlements: { questions: number; reads: number; remembered: number };
  process: ProcessFigures;
}

export interface ServerPart {
  url: string;
  figures(): Promise<ServerFigures>;
  stop(): Promise<void>;
}

/** The firmware server on the embedded IPFS store, on its own counted JSON-RPC connection, listening on 127.0.0.1. */
export async function startServerPart(c: ServerConfig): Promise<ServerPart> {
  const provider = new JsonRpcProvider(c.rpcUrl, Network.from(c.chainId), { staticNetwork: true, pollingInterval: 1000 });
  const rpc = countRpc(provider);
  const store = await EmbeddedStore.open({ directory: path.join(c.dir, "ipfs") });
  const db = new ServerDatabase(path.join(c.dir, "server.db"));
  const gate = new LedgerGate(
    UpdateRegistry__factory.connect(c.registry, provider),
    FleetRegistry__factory.connect(c.fleet, provider),
    registryDomain(BigInt(c.chainId), c.registry),
    c.fromBlock ?? 0,
    c.policies ? UpdatePolicies__factory.connect(c.policies, provider) : undefined,
    { lens: c.lens },
  );
  const server = await startFirmwareServer({
    gate,
    store,
    db,
    port: 0,
    ...(c.pollMs ? { pollMs: c.pollMs } : {}),
    log: (l) => process.stderr.write(`[server] ${l}\n`),
  });
  return {
    url: server.url,
    figures: async () => ({ rpc: rpc.snapshot(), entitlements: { ...gate.entitlements.stats }, process: processFigures() }),
    stop: async () => {
      await server.close();
      await store.close();
      db.close();
      provider.destroy();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The tracker's server module

export interface TrackerConfig {
  deployment: Deployment;
  rpcUrl: string;
  module: { id: string; privateKey: string };
  dataDir: string;
  /** Threads that open reports (TrackerModule intakeWorkers; default one per core). */
  intakeWorkers?: number;
}

export interface TrackerFigures {
  /** Devices whose report names the release as installed. */
  holding: number;
  /** Devices that have reported at least once. */
  seen: number;
  /** Rows the tracker's SQLite connection inserted, updated or deleted since it opened (total_changes()). */
  sqliteRowsWritten: number;
  rpc: RpcCount;
  process: ProcessFigures;
}

export interface TrackerPart {
  url: string;
  /** The tracker's counts; `releaseId` names the release whose holders are counted (none: 0). */
  figures(releaseId?: string): Promise<TrackerFigures>;
  /** Waits until the tracker has mirrored a device batch's root (it takes the batch's reports from then on). */
  batchMirrored(batchId: number, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** The status tracker's server module and its HTTP intake, as services.ts starts "hq", on its own chain connection. */
export async function startTrackerPart(cfg: TrackerConfig): Promise<TrackerPart> {
  const chain = partChain(cfg.deployment, cfg.rpcUrl);
  const rpc = countRpc(chain.provider);
  const tracker = new TrackerModule({
    chain,
    module: cfg.module,
    dataDir: cfg.dataDir,
    pollMs: 1000,
    confirmations: 0,
    adoptionSampleMs: 2000,
    livenessMs: 60_000,
    renoticeMs: 5000,
    anchorMs: 0,
    ...(cfg.intakeWorkers === undefined ? {} : { intakeWorkers: cfg.intakeWorkers }),
  });
  await tracker.start();
  const http = await startTrackerHttp(tracker, { port: 0 });
  return {
    url: http.url,
    figures: async (releaseId) => ({
      holding: releaseId ? tracker.store.devices.countRunning(releaseId) : 0,
      seen: tracker.store.devices.countSeen(),
      sqliteRowsWritten: tracker.store.rowsWritten(),
      rpc: rpc.snapshot(),
      process: processFigures(),
    }),
    batchMirrored: async (batchId, timeoutMs) => {
      const deadline = performance.now() + timeoutMs;
      while (!tracker.store.devices.batch(batchId)) {
        if (performance.now() > deadline) throw new Error(`the tracker did not mirror batch ${batchId} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stop: async () => {
      await http.close();
      await tracker.stop();
      chain.provider.destroy();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// In this process or in a child: the orchestrator's side

const STARTERS = { server: startServerPart, tracker: startTrackerPart };
type Role = keyof typeof STARTERS;
type PartOf<R extends Role> = Awaited<ReturnType<(typeof STARTERS)[R]>>;
type ConfigOf<R extends Role> = Parameters<(typeof STARTERS)[R]>[0];

type Message = { id?: number; type: string; [k: string]: unknown };

/**
 * A child process running `file` (a bench module with a child's main) with ts-node, its output
 * going to ours, and an IPC channel: `ask` sends a request and waits for its answer, `waitFor` for
 * a message the child sends of its own accord. BENCH_PARTS_PROF=<dir>: each child writes a V8 CPU
 * profile there (node --cpu-prof).
 */
export function forkPart(file: string, role: string, config: unknown) {
  const prof = process.env.BENCH_PARTS_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PARTS_PROF}`] : [];
  const child: ChildProcess = fork(file, [role], {
    execArgv: [...prof, "--require", path.join(__dirname, "..", "..", "scripts", "lib", "exitWithParent.js"), "-r", "ts-node/register/transpile-only"],
    // stdin a pipe: exitWithParent.js ends the child when it closes, however this process ends
    stdio: ["pipe", "inherit", "inherit", "ipc"],
  });
  let asked = 0;
  const answers = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const listeners: ((m: Message) => void)[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  void exited.then((code) => {
    for (const a of answers.values()) a.reject(new Error(`the ${role} process exited (code ${code}) before it answered`));
    answers.clear();
  });
  child.on("message", (raw) => {
    const m = raw as Message & { value?: unknown; error?: string };
    if (m.type === "answer" && m.id !== undefined) {
      const a = answers.get(m.id);
      answers.delete(m.id);
      if (m.error) a?.reject(new Error(m.error));
      else a?.resolve(m.value);
    } else for (const l of listeners) l(m);
  });
  child.send({ type: "config", config });
  return {
    child,
    exited,
    on: (l: (m: Message) => void) => listeners.push(l),
    ask: <T>(m: Record<string, unknown>) =>
      new Promise<T>((resolve, reject) => {
        const id = ++asked;
        answers.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ ...m, id });
      }),
    waitFor: (type: string, timeoutMs: number) =>
      new Promise<Message>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the ${role} process sent no "${type}" within ${timeoutMs} ms`)), timeoutMs);
        listeners.push((m) => {
          if (m.type === type) {
            clearTimeout(timer);
            resolve(m);
          }
        });
        void exited.then((code) => reject(new Error(`the ${role} process exited (code ${code}) before it sent "${type}"`)));
      }),
  };
}

/**
 * Starts a part here (`inProcess`) or in a child process of its own. Either way the answer has the
 * part's methods; a child's also has its pid, and its stop ends the process.
 */
export async function startPart<R extends Role>(role: R, config: ConfigOf<R>, inProcess = false): Promise<PartOf<R> & { pid: number }> {
  if (inProcess) return { ...((await (STARTERS[role] as (c: ConfigOf<R>) => Promise<PartOf<R>>)(config)) as PartOf<R>), pid: process.pid };
  const part = forkPart(__filename, role, config);
  const ready = await part.waitFor("ready", 120_000).catch(async (err) => {
    part.child.kill("SIGKILL");
    throw err;
  });
  const methods = ready.methods as string[];
  const remote: Record<string, unknown> = { url: ready.url, pid: part.child.pid };
  for (const m of methods) remote[m] = (...args: unknown[]) => part.ask({ type: "call", method: m, args });
  remote.stop = async () => {
    await part.ask({ type: "call", method: "stop", args: [] }).catch(() => {});
    // It exits by itself once stopped (after writing its CPU profile, if asked); else it is killed.
    const timer = setTimeout(() => part.child.kill("SIGKILL"), 10_000);
    await part.exited;
    clearTimeout(timer);
  };
  return remote as PartOf<R> & { pid: number };
}

// ---------------------------------------------------------------------------------------------
// The child's side

async function childMain(role: string): Promise<void> {
  if (!(role in STARTERS)) throw new Error(`bench/lib/parts.ts: unknown role "${role}" (${Object.keys(STARTERS).join(" or ")})`);
  const send = (m: Message) => process.send!(m);
  const config = await new Promise<Message>((resolve) => process.once("message", (m) => resolve(m as Message)));
  const part = (await (STARTERS[role as Role] as (c: unknown) => Promise<unknown>)(config.config)) as Record<string, unknown>;
  const methods = Object.keys(part).filter((k) => typeof part[k] === "function");
  process.on("message", (raw) => {
    const m = raw as Message & { method: string; args: unknown[] };
    if (m.type !== "call") return;
    const fn = part[m.method] as ((...a: unknown[]) => Promise<unknown>) | undefined;
    const answer = fn ? Promise.resolve().then(() => fn(...m.args)) : Promise.reject(new Error(`the ${role} part has no method "${m.method}"`));
    void answer.then(
      (value) => (m.method === "stop" ? process.send!({ id: m.id, type: "answer", value }, () => process.exit(0)) : send({ id: m.id, type: "answer", value })),
      (err) => send({ id: m.id, type: "answer", error: String((err as Error).message) }),
    );
  });
  send({ type: "ready", url: part.url, methods });
}

if (require.main === module) {
  childMain(process.argv[2]).catch((err) => {
    process.stderr.write(`bench/lib/parts.ts ${process.argv[2]} failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
