import { ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort } from "../../scripts/lib/ports";

/** The js-ipfs daemon (npm `ipfs`), installed apart in tools/ipfs-daemon with its own lockfile. */
const DAEMON_DIR = path.resolve(__dirname, "../../tools/ipfs-daemon");
const CLI = path.join(DAEMON_DIR, "node_modules/ipfs/src/cli.js");
const POLYFILL = path.join(DAEMON_DIR, "polyfill.mjs");

export interface IpfsDaemon {
  /** Its Kubo RPC API, e.g. "http://127.0.0.1:40123". */
  apiUrl: string;
  /** Its read-only HTTP gateway (not a trustless one: it ignores ?format=raw|car). */
  gatewayUrl: string;
  /** Kills the daemon's process group and deletes its repo. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts a real, independent Kubo-RPC server for tests: js-ipfs in a fresh temporary repo, offline,
 * listening on 127.0.0.1 only (no swarm, no bootstrap, no MDNS, no preload).
 */
export async function startIpfsDaemon({ readyTimeoutMs = 60_000 } = {}): Promise<IpfsDaemon> {
  if (!existsSync(CLI)) {
    throw new Error(`the js-ipfs test daemon is not installed in ${DAEMON_DIR}: run \`npm ci --prefix tools/ipfs-daemon\` (npm test does it)`);
  }
  const dir = await mkdtemp(path.join(tmpdir(), "ota-ipfs-"));
  const [apiPort, gatewayPort] = [await freePort(), await freePort()];
  // NODE_OPTIONS replaces whatever the test runner set: the daemon needs only the polyfill.
  const env = { ...process.env, IPFS_PATH: path.join(dir, "repo"), NODE_OPTIONS: `--import ${POLYFILL}` };
  try {
    const config = path.join(dir, "init-config.json");
    await writeFile(config, JSON.stringify(initConfig(apiPort, gatewayPort)));
    // One init with the addresses merged in: cheaper than a `jsipfs config` run per setting.
    await promisify(execFile)(process.execPath, [CLI, "init", "--profile", "test", "--emptyRepo", config], { env, timeout: readyTimeoutMs });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    const { killed, stderr } = err as { killed?: boolean; stderr?: string };
    const why = killed ? `did not finish within ${readyTimeoutMs} ms` : "failed";
    throw new Error(`jsipfs init ${why}: ${stderr || (err as Error).message}`, { cause: err });
  }
  // Its own process group (detached), so stop() reaches the daemon and anything it starts.
  const child = spawn(process.execPath, [CLI, "daemon", "--offline", "--enable-preload=false"], {
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const killOnExit = () => killGroup(child, "SIGKILL");
  process.once("exit", killOnExit);
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      process.removeListener("exit", killOnExit);
      await terminate(child);
      await rm(dir, { recursive: true, force: true });
    })());
  try {
    await waitForReady(child, readyTimeoutMs);
  } catch (err) {
    await stop();
    throw err;
  }
  return { apiUrl: `http://127.0.0.1:${apiPort}`, gatewayUrl: `http://127.0.0.1:${gatewayPort}`, stop };
}

function initConfig(apiPort: number, gatewayPort: number) {
  return {
    Addresses: {
      API: `/ip4/127.0.0.1/tcp/${apiPort}`,
      Gateway: `/ip4/127.0.0.1/tcp/${gatewayPort}`,
      RPC: "", // the gRPC-over-websocket API would otherwise take the fixed port 5003
      Swarm: [],
      Announce: [],
      NoAnnounce: [],
      Delegates: [],
    },
    Bootstrap: [],
    Discovery: { MDNS: { Enabled: false }, webRTCStar: { Enabled: false } },
  };
}

/** Resolves on "Daemon is ready"; rejects with the daemon's output if it exits or stays silent. */
function waitForReady(child: ChildProcess, timeoutMs: number): Promise<void> {
  let output = "";
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`the js-ipfs test daemon ${why}; its output:\n${output.slice(-8000)}`));
    };
    const timer = setTimeout(() => fail(`was not ready within ${timeoutMs} ms`), timeoutMs);
    const onData = (data: Buffer) => {
      output += data.toString();
      if (output.includes("Daemon is ready")) {
        clearTimeout(timer);
        child.removeListener("exit", onExit);
        resolve();
      }
    };
    const onExit = (code: number | null, signal: string | null) => fail(`exited (code ${code}, signal ${signal}) before it was ready`);
    // Keep reading after ready too, or a full pipe would block the daemon.
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", onExit);
    child.once("error", (err) => fail(`could not start: ${err.message}`));
  });
}

/** SIGTERM to the group, SIGKILL if it is still there after 10 s. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  killGroup(child, "SIGTERM");
  const timer = setTimeout(() => killGroup(child, "SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
  child.stdout?.destroy();
  child.stderr?.destroy();
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

export { freePort };
