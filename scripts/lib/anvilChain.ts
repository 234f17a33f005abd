import { spawn } from "node:child_process";
import path from "node:path";
import { stopChild, isListening, type LocalChain } from "./localChain";

/**
 * Foundry's anvil in a child process on 127.0.0.1: a second, independent EVM node (its binary ships
 * in the npm package @foundry-rs/anvil-linux-amd64, a development dependency). Unlike Hardhat's
 * node it makes real reorganisations (`anvil_reorg`, `anvil_rollback`) and answers `eth_getProof`.
 * Its accounts are the same test mnemonic's as Hardhat's, funded alike. It stops with this process
 * (exitWithParent.js is not usable for a native binary: a watcher process holds its stdin instead).
 */
export interface AnvilOptions {
  port: number;
  chainId?: number; // default 31337, as Hardhat's node
  blockTimeSeconds?: number; // default: a block per transaction (automine)
  readyTimeoutMs?: number;
}

export function anvilBinary(): string {
  return path.join(require.resolve("@foundry-rs/anvil-linux-amd64/package.json"), "..", "bin", "anvil");
}

export async function startAnvil(o: AnvilOptions): Promise<LocalChain> {
  const host = "127.0.0.1";
  if (await isListening(host, o.port)) throw new Error(`something already listens on ${host}:${o.port}: choose another port`);
  const args = ["--host", host, "--port", String(o.port), "--chain-id", String(o.chainId ?? 31337), "--hardfork", "cancun", "--silent"];
  if (o.blockTimeSeconds !== undefined) args.push("--block-time", String(o.blockTimeSeconds));
  // The watcher: a node process whose stdin is our pipe; when this process dies the pipe closes and
  // it kills anvil. anvil itself gets no pipe to fill.
  const child = spawn(process.execPath, ["-e", WATCHER, anvilBinary(), ...args], { stdio: ["pipe", "ignore", "pipe"] });
  let output = "";
  child.stderr!.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  const deadline = Date.now() + (o.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`anvil exited with code ${child.exitCode} before it was ready:\n${output}`);
    if (await answers(`http://${host}:${o.port}`)) break;
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`anvil did not answer within ${o.readyTimeoutMs ?? 30_000} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `http://${host}:${o.port}`, stop: () => stopChild(child) };
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      signal: AbortSignal.timeout(1000),
    });
    return res.ok;
  } catch {
    return false;
  }
}

// Runs anvil; kills it when our stdin closes (the parent died) or on SIGTERM, and exits with it.
const WATCHER = `
const { spawn } = require("node:child_process");
const [bin, ...args] = process.argv.slice(1);
const anvil = spawn(bin, args, { stdio: ["ignore", "ignore", "inherit"] });
const end = () => { anvil.kill("SIGKILL"); };
process.stdin.on("close", end).on("end", end).resume();
process.on("SIGTERM", end);
anvil.on("exit", (code) => process.exit(code ?? 0));
`;
