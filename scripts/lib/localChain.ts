import { spawn, ChildProcess } from "node:child_process";
import net from "node:net";
import path from "node:path";

/**
 * A local Hardhat chain in a child process, bound to 127.0.0.1. The child is the node process
 * itself (not npx -> sh -> node), so stopping it stops the chain; and it stops by itself when this
 * process ends in any way, even killed (exitWithParent.js watches its stdin pipe).
 */
export interface LocalChain {
  url: string;
  stop(): Promise<void>;
}

export async function startLocalChain({ port = 8545, readyTimeoutMs = 60_000 } = {}): Promise<LocalChain> {
  const host = "127.0.0.1";
  if (await isListening(host, port)) {
    throw new Error(
      `something already listens on ${host}:${port} (another chain?). Stop it, or choose another port ` + `with OTA_RPC_URL=http://127.0.0.1:<port>`,
    );
  }
  const bootstrap = path.join(require.resolve("hardhat/package.json"), "..", "internal", "cli", "bootstrap.js");
  const child = spawn(
    process.execPath,
    ["--require", path.join(__dirname, "exitWithParent.js"), bootstrap, "node", "--hostname", host, "--port", String(port)],
    {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, HARDHAT_NETWORK: undefined },
    },
  );
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`the chain did not start within ${readyTimeoutMs} ms:\n${output}`)), readyTimeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Started HTTP and WebSocket JSON-RPC server")) {
        clearTimeout(timer);
        resolve();
      }
    };
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill("SIGTERM");
      reject(err);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => fail(new Error(`the chain exited with code ${code} before it was ready:\n${output}`)));
  });
  // Keep draining its output so that the pipe never fills and blocks the node.
  child.stdout!.removeAllListeners("data").resume();
  child.stderr!.removeAllListeners("data").resume();
  child.removeAllListeners("exit");
  return { url: `http://${host}:${port}`, stop: () => stopChild(child) };
}

export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

export function isListening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
