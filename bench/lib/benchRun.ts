/**
 * What the whole-system benchmarks share (bench/e2e.ts, bench/fleetSim.ts): the JSON-RPC calls a
 * provider sends, the chain node's process and its figures, and stopping everything a run
 * started, on an error and on Ctrl-C.
 */
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import type { JsonRpcPayload, JsonRpcProvider } from "ethers";

/** A whole-number setting of at least 1 from a `--name n` flag, else the environment, else `fallback`. */
export function wholeFlag(argv: string[], name: string, env: string, fallback: number): number {
  const i = argv.indexOf(name);
  const text = i >= 0 ? argv[i + 1] : process.env[env];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${i >= 0 ? name : env}="${text}" is not a whole number of at least 1`);
  return value;
}

/** Counts the JSON-RPC calls a provider sends, by method, and the HTTP requests that carried them (ethers batches up to 100). */
export function countRpc(provider: JsonRpcProvider) {
  const byMethod: Record<string, number> = {};
  let requests = 0;
  const send = provider._send.bind(provider);
  provider._send = async (payload: JsonRpcPayload | JsonRpcPayload[]) => {
    requests++;
    for (const p of Array.isArray(payload) ? payload : [payload]) byMethod[p.method] = (byMethod[p.method] ?? 0) + 1;
    return send(payload);
  };
  return {
    snapshot: () => ({ total: Object.values(byMethod).reduce((a, b) => a + b, 0), byMethod: { ...byMethod }, requests }),
  };
}
export type RpcCount = ReturnType<ReturnType<typeof countRpc>["snapshot"]>;

/** The figures of the JSON-RPC count between two snapshots. */
export function rpcDelta(a: RpcCount, b: RpcCount): RpcCount {
  const byMethod: Record<string, number> = {};
  for (const [m, n] of Object.entries(b.byMethod)) if (n - (a.byMethod[m] ?? 0) > 0) byMethod[m] = n - (a.byMethod[m] ?? 0);
  return { total: b.total - a.total, byMethod, requests: b.requests - a.requests };
}

/** The figures of several JSON-RPC counts together (e.g. each party's, on its own connection). */
export function rpcSum(counts: RpcCount[]): RpcCount {
  const byMethod: Record<string, number> = {};
  for (const c of counts) for (const [m, n] of Object.entries(c.byMethod)) byMethod[m] = (byMethod[m] ?? 0) + n;
  return { total: counts.reduce((a, c) => a + c.total, 0), byMethod, requests: counts.reduce((a, c) => a + c.requests, 0) };
}

/** The pid of this process's descendant running the chain node (Hardhat's or anvil), if any. */
export function chainNodePid(node: "hardhat" | "anvil"): number | undefined {
  try {
    const all = execFileSync("ps", ["-eo", "pid=,ppid=,args="], { encoding: "utf8" })
      .split("\n")
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length >= 3);
    const mine = new Set([String(process.pid)]);
    for (let grew = true; grew;) {
      grew = false;
      for (const [pid, ppid] of all) if (mine.has(ppid) && !mine.has(pid)) grew = Boolean(mine.add(pid));
    }
    const found = all.find(([pid, , ...args]) => {
      const cmd = args.join(" ");
      return mine.has(pid) && (node === "anvil" ? /\/anvil$/.test(args[0]) : cmd.includes("hardhat") && cmd.includes(" node"));
    });
    return found ? Number(found[0]) : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) and peak RSS (MiB) of another process, from /proc. */
export async function processFigures(pid: number | undefined): Promise<{ cpuS: number; peakRssMiB: number } | null> {
  if (!pid) return null;
  try {
    const stat = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1].split(" ");
    const ticks = Number(stat[11]) + Number(stat[12]); // utime, stime (fields 14 and 15)
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1]);
    return { cpuS: ticks / 100, peakRssMiB: Math.round(hwm / 1024) };
  } catch {
    return null;
  }
}

/**
 * What a run started, stopped in reverse order once (at the end, on an error, on Ctrl-C or
 * SIGTERM: then the process exits 130).
 */
export function stopsOnExit(name: string) {
  const stops: (() => Promise<unknown> | unknown)[] = [];
  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      for (const stop of stops.reverse())
        await Promise.resolve()
          .then(stop)
          .catch(() => {});
    })());
  const interrupted = () => {
    process.stderr.write(`\n${name} interrupted: stopping everything\n`);
    void stopAll().finally(() => process.exit(130));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  return { stops, stopAll };
}
