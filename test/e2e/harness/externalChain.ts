import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { HDNodeWallet, JsonRpcProvider, Network, NonceManager, parseEther } from "ethers";
import { main } from "../../../agent/cli/main";
import { freePort } from "../../../scripts/lib/ports";
import { startAnvil } from "../../../scripts/lib/anvilChain";

const ROOT = path.join(__dirname, "..", "..", "..");

/** Every process group started here and still running, killed if the test process exits without its after hooks. */
const live = new Set<number>();
process.once("exit", () => {
  for (const pid of live) killGroup(pid, "SIGKILL");
});

/** The environment of a child: the test run's, without its OTA_* settings and Hardhat's network choice. */
function childEnv(extra: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("OTA_") && k !== "HARDHAT_NETWORK") env[k] = v;
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/**
 * A Hardhat node standing in for an external EVM JSON-RPC endpoint: its own process group on a
 * free 127.0.0.1 port, with a chain id other than Hardhat's 31337 (from a one-line Hardhat config
 * in a temporary folder), so that nothing can lean on the development chain's defaults. Only its
 * first development account is used, as the chain's faucet: `fund` sends currency to fresh keys.
 */
export async function startExternalChain({ chainId, readyTimeoutMs = 60_000 }: { chainId: number; readyTimeoutMs?: number }) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), "ota-ext-chain-"));
  const config = path.join(dir, "hardhat.config.js");
  writeFileSync(config, `module.exports = { networks: { hardhat: { chainId: ${chainId}, hardfork: "cancun" } } };\n`);
  const bootstrap = path.join(require.resolve("hardhat/package.json"), "..", "internal", "cli", "bootstrap.js");
  // exitWithParent.js: the chain ends with the test run, even one that was killed.
  const exitWithParent = path.join(ROOT, "scripts", "lib", "exitWithParent.js");
  const child = spawn(
    process.execPath,
    ["--require", exitWithParent, bootstrap, "--config", config, "node", "--hostname", "127.0.0.1", "--port", String(port)],
    {
      cwd: ROOT,
      env: childEnv({}),
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    },
  );
  live.add(child.pid!);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      killGroup(child.pid!, "SIGTERM");
      const timer = setTimeout(() => killGroup(child.pid!, "SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    live.delete(child.pid!);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForOutput(child, "Started HTTP and WebSocket JSON-RPC server", readyTimeoutMs);
  } catch (err) {
    await stop();
    throw err;
  }
  return endpointOn(`http://127.0.0.1:${port}`, port, chainId, stop);
}

/**
 * Foundry's anvil as the external endpoint instead (a node written elsewhere, that reorganises its
 * chain on request: `anvil_reorg`), with the same chain id, accounts and `fund`; it mines a block
 * per transaction.
 */
export async function startAnvilEndpoint({ chainId }: { chainId: number }) {
  const port = await freePort();
  const anvil = await startAnvil({ port, chainId });
  return endpointOn(anvil.url, port, chainId, () => anvil.stop());
}

/** The endpoint as the tests use it: a provider, a faucet (the mnemonic's first account) and stop. */
function endpointOn(url: string, port: number, chainId: number, stop: () => Promise<void>) {
  const provider = new JsonRpcProvider(url, Network.from(chainId), { staticNetwork: true, pollingInterval: 200 });
  // ethers answers an identical request from a cache for 250 ms: one NonceManager counts the faucet's nonces.
  const faucet = new NonceManager(HDNodeWallet.fromPhrase("test test test test test test test test test test test junk").connect(provider));
  return {
    url,
    port,
    chainId,
    provider,
    /** Sends `ether` to each address, one after the other. */
    async fund(addresses: string[], ether = "10"): Promise<void> {
      for (const to of addresses) await (await faucet.sendTransaction({ to, value: parseEther(ether) })).wait();
    },
    async stop(): Promise<void> {
      provider.destroy();
      await stop();
    },
  };
}

export type ExternalChain = Awaited<ReturnType<typeof startExternalChain>>;

/**
 * `npx hardhat <args>` from the project's folder, as an administrator runs it, in its own process
 * group, with `env` over the test run's environment (its OTA_* settings and HARDHAT_NETWORK
 * removed). Resolves with the exit code and the whole output; killed after `timeoutMs`.
 */
export function runHardhat(args: string[], env: Record<string, string | undefined>, timeoutMs = 120_000): Promise<{ code: number | null; output: string }> {
  const child = spawn("npx", ["hardhat", ...args], { cwd: ROOT, env: childEnv(env), stdio: ["ignore", "pipe", "pipe"], detached: true });
  live.add(child.pid!);
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString("utf8")));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString("utf8")));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      output += `\n(killed after ${timeoutMs} ms)`;
      killGroup(child.pid!, "SIGKILL");
    }, timeoutMs);
    child.once("close", (code) => {
      clearTimeout(timer);
      live.delete(child.pid!);
      resolve({ code, output });
    });
  });
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  json: () => any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * One `ota-ledger` command line, run in-process by the CLI's own `main` (the same code as the
 * `ota-ledger` binary, without a process start per command), in `cwd` with `env` as its whole
 * environment: it sees ota-ledger.json and deployments/ there and nothing of the test run's.
 */
export async function runCli(cwd: string, args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env: { ...env }, cwd, isTTY: false });
  return { code, stdout, stderr, json: () => JSON.parse(stdout) };
}

function waitForOutput(child: ChildProcess, text: string, timeoutMs: number): Promise<void> {
  let output = "";
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`the Hardhat node ${why}; its output:\n${output.slice(-4000)}`));
    };
    const timer = setTimeout(() => fail(`was not ready within ${timeoutMs} ms`), timeoutMs);
    const onData = (d: Buffer) => {
      output += d.toString("utf8");
      if (output.includes(text)) {
        clearTimeout(timer);
        child.removeListener("exit", onExit);
        // Keep draining its output so that a full pipe never blocks the node.
        child.stdout!.removeListener("data", onData).resume();
        child.stderr!.removeListener("data", onData).resume();
        resolve();
      }
    };
    const onExit = (code: number | null) => fail(`exited with code ${code} before it was ready`);
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", onExit);
  });
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}
