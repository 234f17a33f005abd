import { expect } from "chai";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { freePort } from "../../scripts/lib/ports";

const ROOT = path.join(__dirname, "..", "..");
const GUIDE = path.join(ROOT, "docs", "writing-a-policy.md");
const RUNBOOK = path.join(ROOT, "docs", "runbooks", "allowlist-soak.sh");

/** The ```sh block of the guide that follows the runbook marker. */
function runbookInGuide(): string {
  const guide = readFileSync(GUIDE, "utf8");
  const marker = guide.indexOf("<!-- runbook: docs/runbooks/allowlist-soak.sh -->");
  expect(marker, "the guide marks its runbook").to.be.greaterThan(0);
  const start = guide.indexOf("```sh\n", marker) + "```sh\n".length;
  return guide.slice(start, guide.indexOf("\n```", start) + 1);
}

/** Whether something listens on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

/**
 * The guide's runbook (docs/writing-a-policy.md, issue 18) walked as written: a fresh Hardhat node
 * on a port other than 8545, the registries, the catalogue, a firmware server, a device, the
 * AllowlistSoakPolicy deployed with Ignition, and the device refused, then installing. It runs in a
 * copy of the checkout (the files git knows, with node_modules and the compiled contracts beside
 * them), so the checkout's own deployments/localhost.json is left alone.
 */
describe("docs/writing-a-policy.md: the runbook from a fresh chain (APP-II-3, issue 18)", function () {
  this.timeout(15 * 60_000);
  let copy: string;

  before(() => {
    copy = mkdtempSync(path.join(os.tmpdir(), "ota-runbook-checkout-"));
    const files = spawnSync("git", ["ls-files", "-co", "--exclude-standard", "-z"], { cwd: ROOT, encoding: "utf8" });
    expect(files.status, files.stderr).to.equal(0);
    for (const f of files.stdout.split("\0").filter((f) => f !== "")) cpSync(path.join(ROOT, f), path.join(copy, f), { recursive: true });
    for (const built of ["artifacts", "cache", "typechain-types"]) cpSync(path.join(ROOT, built), path.join(copy, built), { recursive: true });
    symlinkSync(path.join(ROOT, "node_modules"), path.join(copy, "node_modules"), "dir");
  });
  let running: ChildProcess | undefined;
  after(() => {
    if (running?.pid !== undefined && running.exitCode === null && running.signalCode === null) {
      try {
        process.kill(-running.pid, "SIGTERM"); // the script's trap stops the chain and the server
      } catch {
        // already gone
      }
    }
    if (copy) rmSync(copy, { recursive: true, force: true });
  });

  it("the guide shows the runbook script as it is, so the two cannot drift", () => {
    expect(runbookInGuide()).to.equal(readFileSync(RUNBOOK, "utf8"));
  });

  it("APP-II-3 issue 18: runs as written on another port: the device is refused without its proof, refused while the release soaks, then installs", async () => {
    let port = await freePort();
    while (port === 8545 || (await listening(port + 1))) port = await freePort();
    const work = mkdtempSync(path.join(os.tmpdir(), "ota-runbook-tmp-"));
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("OTA_")));
    // Its own process group: if this test times out, `after` stops the script and the chain and server it started.
    const child = spawn("bash", ["docs/runbooks/allowlist-soak.sh", String(port)], {
      cwd: copy,
      env: { ...env, TMPDIR: work },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    running = child;
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    try {
      expect(code, out.slice(-6000)).to.equal(0);
      const order = [
        "reason 3 (NO_EVIDENCE)",
        "now holds evidence for release",
        "reason 6 (SOAKING)",
        "rejected (POLICY_REFUSED)",
        "reason 6 (SOAKING)); ota-ledger policy check", // device install names the policy's reason (issue 18)
        "answered 0 (allowed)",
        "confirmed (OK)",
        "== done",
      ];
      let at = 0;
      for (const line of order) {
        const next = out.indexOf(line, at);
        expect(next, `"${line}" after the earlier steps\n${out.slice(-4000)}`).to.be.greaterThan(-1);
        at = next;
      }
      // The script stops what it started (a process may take a moment to let go of its port).
      for (const [p, what] of [
        [port, "the chain"],
        [port + 1, "the firmware server"],
      ] as const) {
        for (let i = 0; i < 50 && (await listening(p)); i++) await new Promise((r) => setTimeout(r, 200));
        expect(await listening(p), `${what} is stopped`).to.equal(false);
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
