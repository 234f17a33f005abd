import type { Command } from "commander";
import path from "node:path";
import type { CliContext } from "../context";
import { LedgerGate } from "../../server/ledgerGate";
import { ServerDatabase } from "../../server/serverDatabase";
import { startFirmwareServer } from "../../server/firmwareServer";
import { openContentStore } from "../../storage/openStore";

/** The firmware server (X.1368 11.3), run until Ctrl-C. */
export function register(program: Command, ctx: CliContext): void {
  const server = program.command("server").description("the firmware server");
  server
    .command("start")
    .description("serve artifacts to entitled devices (127.0.0.1 unless server.host says otherwise)")
    .action(async () => {
      const config = await ctx.config();
      const { registry, fleet, domain, fromBlock, policies } = await ctx.connectReadOnly();
      const store = await openContentStore(config.storage);
      const db = new ServerDatabase(path.join(config.server.dataDir, "server.db"));
      const gate = new LedgerGate(registry, fleet, domain, fromBlock, policies);
      let running;
      try {
        running = await startFirmwareServer({ gate, store, db, host: config.server.host, port: config.server.port, log: (l) => ctx.io.stderr(l + "\n") });
      } catch (err) {
        await store.close();
        db.close();
        throw err;
      }
      ctx.output({ url: running.url, store: store.kind }, `firmware server on ${running.url} (store: ${store.kind}); Ctrl-C stops it`);
      await ctx.untilStopped();
      await running.close();
      await store.close();
      db.close();
    });
}
