import { expect } from "chai";
import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";

const ROOT = path.join(__dirname, "..", "..");

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [require.resolve("ts-node/dist/bin.js"), "--transpile-only", "scripts/demo.ts", ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("exit", (code) => resolve({ code, output }));
  });
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
  });
}

describe("npm start (the README's main command)", function () {
  this.timeout(600_000);
  const port = 18545 + (process.pid % 1000);

  it("plays the whole story on embedded defaults (APP-II-1, APP-II-2, APP-II-3, APP-II-4), every step as expected, and stops everything it started", async function () {
    const { code, output } = await run(["--once"], { OTA_RPC_URL: `http://127.0.0.1:${port}`, OTA_SERVER_PORT: "0", OTA_TRACKER_PORT: "0" });
    expect(code, output).to.equal(0);
    expect(output).to.include(`a local chain at http://127.0.0.1:${port}`);
    for (const act of ["ledger", "services", "factory", "publish", "rollout", "bad release", "audit", "anchor", "summary"])
      expect(output, act).to.include(`== ${act}`);
    expect(output).to.match(/all \d+ steps behaved as expected/);
    expect(output).not.to.include("✗");
    expect(output).to.match(/refuses its tampered download; nothing installed .*CHUNK_MISMATCH/);
    expect(output).to.match(/the rollout halts itself on the ledger .*: halted/);
    const urls = [...output.matchAll(/(?:firmware server|tracker|gateway) +(http:\/\/127\.0\.0\.1:(\d+))/g)].map((m) => Number(m[2]));
    expect(urls, "the server, tracker and gateway URLs are printed").to.have.length(3);
    for (const p of [port, ...urls]) expect(await portIsFree(p), `port ${p} must be closed`).to.equal(true);
  });

  it("CAP-11.2-m-a DEP-8.2.2: npm start -- --mqtt plays the same story with plant-1's devices reporting to hq over Debian's mosquitto (ADR 0015), and stops the broker with the rest", async function () {
    const { code, output } = await run(["--once", "--mqtt"], { OTA_RPC_URL: `http://127.0.0.1:${port}`, OTA_SERVER_PORT: "0", OTA_TRACKER_PORT: "0" });
    expect(code, output).to.equal(0);
    const broker = /mqtt broker +mqtt:\/\/127\.0\.0\.1:(\d+) \(mosquitto; plant-1's devices report to hq over it\)/.exec(output);
    expect(broker, "the broker's URL is printed").to.not.equal(null);
    // plant-1's devices have no HTTP route to hq in this run: every step that needs their reports passed over the broker.
    expect(output).to.match(/all \d+ steps behaved as expected/);
    expect(output).not.to.include("✗");
    expect(output).to.match(/the tracker posts the failures .*: halted/);
    expect(await portIsFree(Number(broker![1])), "the broker is stopped").to.equal(true);
  });

  it("refuses to start over a port that is already taken, and says what to do", async function () {
    const server = net.createServer().listen(port, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    try {
      const { code, output } = await run(["--once"], { OTA_RPC_URL: `http://127.0.0.1:${port}`, OTA_SERVER_PORT: "0", OTA_TRACKER_PORT: "0" });
      expect(code).to.equal(1);
      expect(output).to.match(/already listens on 127\.0\.0\.1:\d+.*OTA_RPC_URL/s);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it("refuses a malformed port setting, naming it", async function () {
    const { code, output } = await run(["--once"], { OTA_RPC_URL: `http://127.0.0.1:${port}`, OTA_SERVER_PORT: "eighty", OTA_TRACKER_PORT: "0" });
    expect(code).to.equal(1);
    expect(output).to.include('OTA_SERVER_PORT="eighty" is not a port');
  });
});
