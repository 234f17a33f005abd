import { expect } from "chai";
import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { freePort } from "../../scripts/lib/ports";
import { waitFor } from "../e2e/harness/waitFor";

const ROOT = path.join(__dirname, "..", "..");

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

describe("scripts/lib/localChain: the chain of npm start, the benches and the tests", function () {
  this.timeout(120_000);

  it("ends with the process that started it, even one killed with SIGKILL: nothing is left holding the port", async () => {
    const port = await freePort();
    // A process that starts a chain, says so, and waits to be killed.
    const script = `require("ts-node").register({ transpileOnly: true });
      require(${JSON.stringify(path.join(ROOT, "scripts", "lib", "localChain"))})
        .startLocalChain({ port: ${port} })
        .then((c) => { console.log("ready " + c.url); setInterval(() => {}, 1000); });`;
    const parent = spawn(process.execPath, ["-e", script], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    try {
      let out = "";
      parent.stdout!.on("data", (d) => (out += d));
      await waitFor("the chain to start", () => out.includes(`ready http://127.0.0.1:${port}`), { timeoutMs: 90_000 });
      expect(await listening(port)).to.equal(true);
      const exited = new Promise((resolve) => parent.once("exit", resolve));
      parent.kill("SIGKILL");
      await exited;
      await waitFor("the orphaned chain to stop", async () => !(await listening(port)), { timeoutMs: 15_000 });
    } finally {
      parent.kill("SIGKILL");
    }
  });
});
