import { expect } from "chai";
import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { createHash } from "node:crypto";
import { rawCidV1 } from "../helpers/rawCid";

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
  this.timeout(180_000);
  const port = 18545 + (process.pid % 1000);

  it("starts a chain on 127.0.0.1, deploys, publishes dependent releases, prints the ledger, serves a device through the firmware server, and stops both", async function () {
    const { code, output } = await run(["--once"], { OTA_RPC_URL: `http://127.0.0.1:${port}` });
    expect(code, output).to.equal(0);
    expect(output).to.include(`chain        http://127.0.0.1:${port}`);
    expect(output).to.include("acme.sensor-fw 2.0.0, needs acme.bootloader ^1.0.0");
    expect(output).to.match(/downgrade acme\.sensor-fw to 1\.9\.0 \(REQ-10d-i\): UpdateRegistryVersionNotIncreasing/);
    expect(output).to.match(/\(APP-II-2\): UpdateRegistryDependencyNotSatisfied/);
    expect(output).to.include("dependencies          acme.bootloader >=1.0.0 <2.0.0");
    expect(output.match(/\(valid, a registered and pinned signing key of the provider\)/g)).to.have.length(3);
    expect(output).to.include("rev-b device with bootloader 1.0.0 -> sensor-fw 2.1.0: installable");
    expect(output.match(/submitted: CID, size and Merkle root match the ledger \(CAP-11\.3-a\)/g)).to.have.length(3);
    expect(output).to.match(/rev-b-0001 fetched acme\.bootloader-1\.0\.0\.bin: every chunk matched .* = ledger/);
    expect(output).to.include("an unenrolled device asks for it: DEVICE_NOT_ENROLLED (PROC-4)");
    expect(await portIsFree(port), "the chain must be stopped").to.equal(true);
  });

  it("refuses to start over a port that is already taken, and says what to do", async function () {
    const server = net.createServer().listen(port, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    try {
      const { code, output } = await run(["--once"], { OTA_RPC_URL: `http://127.0.0.1:${port}` });
      expect(code).to.equal(1);
      expect(output).to.match(/already listens on 127\.0\.0\.1:\d+.*OTA_RPC_URL/s);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it("records the real IPFS CID of a sample image (raw block, sha2-256)", function () {
    // The CID of the empty raw block is well known.
    expect(rawCidV1(createHash("sha256").update(new Uint8Array(0)).digest())).to.equal("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
  });
});
