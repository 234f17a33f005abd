import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { stopChild } from "../../scripts/lib/localChain";
import { freePort } from "../../scripts/lib/ports";
import type { ServerProcessConfig } from "./firmwareServerMain";

export interface ServerProcess {
  url: string;
  pid: number;
  /** CPU seconds (user + system) the server process has used so far; null off Linux. */
  cpuSeconds(): number | null;
  /** Its peak resident memory so far (VmHWM), MiB; null off Linux. */
  peakRssMiB(): number | null;
  stop(): Promise<void>;
}

/**
 * Starts the firmware server in a child process of its own (bench/lib/firmwareServerMain.ts) on
 * 127.0.0.1 and a free port, so that its work does not share the benchmark's event loop or core.
 * The child ends with this process however it ends (exitWithParent.js).
 */
export async function startServerProcess(o: Omit<ServerProcessConfig, "port">, readyTimeoutMs = 60_000): Promise<ServerProcess> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      // e.g. BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the server
      ...(process.env.BENCH_SERVER_NODE_ARGS ?? "").split(" ").filter(Boolean),
      "--require",
      path.join(__dirname, "..", "..", "scripts", "lib", "exitWithParent.js"),
      "--require",
      "ts-node/register/transpile-only",
      path.join(__dirname, "firmwareServerMain.ts"),
    ],
    { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, OTA_BENCH_SERVER: JSON.stringify({ ...o, port }) } },
  );
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`the firmware server did not start within ${readyTimeoutMs} ms:\n${output}`)), readyTimeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /^listening (\S+)$/m.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill("SIGTERM");
      reject(err);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => fail(new Error(`the firmware server exited with code ${code} before it was ready:\n${output}`)));
  });
  // Keep draining its output so that the pipe never fills and blocks the server; its log goes to ours.
  child.stdout!.removeAllListeners("data").resume();
  child.stderr!.removeAllListeners("data").on("data", (chunk: Buffer) => process.stderr.write(`[server] ${chunk}`));
  child.removeAllListeners("exit");
  const pid = child.pid!;
  return {
    url,
    pid,
    cpuSeconds: () => procCpuSeconds(pid),
    peakRssMiB: () => procPeakRssMiB(pid),
    stop: () => stopChild(child),
  };
}

function procCpuSeconds(pid: number): number | null {
  try {
    // /proc/<pid>/stat: fields 14 and 15 are utime and stime in clock ticks (100 a second on Linux).
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

function procPeakRssMiB(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}
