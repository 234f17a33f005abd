import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { WebSocketProvider } from "ethers";
import { startCliChain, type CliChain } from "../cli/cliHarness";
import { LedgerWatcher, type LedgerEvent } from "../../../agent/consumer/ledgerWatcher";
import { UpdateRegistry__factory } from "../../../typechain-types";

describe("agent/consumer/ledgerWatcher over a WebSocket endpoint (DEP-8.2.1)", function () {
  this.timeout(60_000);
  let c: CliChain;
  let dir: string;
  before(async () => {
    c = await startCliChain();
    dir = mkdtempSync(path.join(tmpdir(), "ota-ws-"));
  });
  after(async () => {
    await c?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("DEP-8.2.1: a new block pushed over the subscription is read at once, without waiting for the poll", async () => {
    const ws = new WebSocketProvider(c.url.replace(/^http/, "ws"));
    try {
      const registry = UpdateRegistry__factory.connect(String(c.registry.target), ws);
      const seen: LedgerEvent[] = [];
      const watcher = new LedgerWatcher(ws, registry, path.join(dir, "cp.json"), async (e) => void seen.push(...e), { fromBlock: 0, pollMs: 600_000 });
      await watcher.start();
      const start = Date.now();
      // Nonces asked of the node directly: ethers briefly caches an identical nonce answer.
      const admin = c.registry.connect(c.admin);
      const nonce = Number(await c.provider.send("eth_getTransactionCount", [c.admin.address, "pending"]));
      await (await admin.registerProvider("Pushed", { nonce })).wait();
      await (await admin.barProvider(1, "pushed over ws", { nonce: nonce + 1 })).wait();
      while (!seen.some((e) => e.kind === "barred") && Date.now() - start < 20_000) await new Promise((r) => setTimeout(r, 100));
      await watcher.stop();
      // Seen within the loop's 20 s: the poll alone would have waited 10 minutes.
      expect(seen.some((e) => e.kind === "barred")).to.equal(true);
    } finally {
      await ws.destroy();
    }
  });
});
