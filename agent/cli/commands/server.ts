import type { Command } from "commander";
import path from "node:path";
import type { CliContext } from "../context";
import { formatBytes } from "../table";
import { LedgerGate } from "../../server/ledgerGate";
import { ServerDatabase } from "../../server/serverDatabase";
import { startFirmwareServer } from "../../server/firmwareServer";
import { openContentStore } from "../../storage/openStore";
import { backupServer, restoreServer } from "../../server/backup";
import { lockFolder } from "../../files/pidLock";

/** The firmware server (X.1368 11.3), run until Ctrl-C. */
export function register(program: Command, ctx: CliContext): void {
  const server = program.command("server").description("the firmware server");
  server
    .command("start")
    .description("serve artifacts to entitled devices (127.0.0.1 unless server.host says otherwise)")
    .action(async () => {
      const config = await ctx.config();
      const { registry, fleet, domain, fromBlock, policies, deltas } = await ctx.connectReadOnly();
      // One server per data folder: two would write one download log and pin into one store.
      const lock = await lockFolder(config.server.dataDir, "a firmware server");
      try {
        await serve(ctx, config, { registry, fleet, domain, fromBlock, policies, deltas });
      } finally {
        await lock.release();
      }
    });

  server
    .command("backup <dir>")
    .description("copy the server's database and every artifact it serves into a new folder, the server running or not (never overwrites without --force)")
    .option("--force", "replace <dir> if it holds an earlier server backup")
    .option("--no-artifacts", "leave the artifacts out (a Kubo node backed up on its own)")
    .action(async (dir: string, o: { force?: boolean; artifacts: boolean }) => {
      const config = await ctx.config();
      const r = await backupServer({
        dataDir: config.server.dataDir,
        storage: config.storage,
        dir: path.resolve(ctx.io.cwd, dir),
        force: o.force === true,
        artifacts: o.artifacts,
      });
      const kept = r.artifacts.filter((a) => a.file).length;
      ctx.output(
        r,
        [
          `server backup written to ${r.dir} (${formatBytes(r.bytes)})`,
          `  from        ${config.server.dataDir}, ${config.storage.kind} store`,
          `  artifacts   ${r.artifacts.length} served${o.artifacts ? `, ${kept} copied (checked against their CIDs)` : ", none copied (--no-artifacts): back up the store yourself"}; ${r.withdrawn} withdrawn (not copied)`,
          `  keys        ${r.wrappedKeys} wrapped key(s)`,
          `  downloads   ${r.downloads.entries} log entries`,
          "restore with `ota-ledger server restore <dir>` while the server is stopped",
        ].join("\n"),
      );
    });

  server
    .command("restore <dir>")
    .description("put a backup made by `server backup` back: its artifacts into the configured store, its database into server.dataDir; stop the server first")
    .option("--force", "replace the database there (it is kept beside as server.db.replaced-<time>)")
    .action(async (dir: string, o: { force?: boolean }) => {
      const config = await ctx.config();
      const r = await restoreServer({
        dataDir: config.server.dataDir,
        storage: config.storage,
        dir: path.resolve(ctx.io.cwd, dir),
        force: o.force === true,
        log: (l) => ctx.io.stderr(l + "\n"),
      });
      const lines = [
        `server restored into ${r.dataDir} from ${r.dir} (taken ${new Date(r.takenAt).toISOString()})`,
        `  artifacts   ${r.restored.length} in the ${r.store} store (${r.restored.filter((a) => a.from === "backup").length} imported from the backup)`,
        `  downloads   the log goes on from id ${r.nextDownloadId}`,
      ];
      if (r.replaced) lines.push(`  replaced    ${r.replaced} (kept: delete it once the server runs)`);
      if (r.missing.length > 0) {
        lines.push(`  missing     ${r.missing.length} artifact(s) neither in the backup nor in the store, taken out of the database: submit each again:`);
        for (const m of r.missing) lines.push(`              ota-ledger release submit ${m.releaseId} --artifact <its .otae file>`);
      }
      lines.push(
        "start it with `ota-ledger server start`; keys granted and artifacts submitted since the backup must be granted (`release grant`) and submitted (`release submit`) again",
      );
      ctx.output(r, lines.join("\n"));
    });
}

/** `server start`'s work, on a data folder it holds, until stopped. */
async function serve(
  ctx: CliContext,
  config: Awaited<ReturnType<CliContext["config"]>>,
  {
    registry,
    fleet,
    domain,
    fromBlock,
    policies,
    lens,
    deltas,
  }: Pick<Awaited<ReturnType<CliContext["connectReadOnly"]>>, "registry" | "fleet" | "domain" | "fromBlock" | "policies" | "lens" | "deltas">,
): Promise<void> {
  const store = await openContentStore(config.storage);
  const db = new ServerDatabase(path.join(config.server.dataDir, "server.db"));
  const gate = new LedgerGate(registry, fleet, domain, fromBlock, policies, { lens });
  let running;
  try {
    running = await startFirmwareServer({
      gate,
      store,
      db,
      host: config.server.host,
      port: config.server.port,
      // Behind a reverse proxy devices sign their requests for the public origin, not the listening one.
      ...(config.server.publicUrl ? { publicOrigin: new URL(config.server.publicUrl).origin } : {}),
      log: (l) => ctx.io.stderr(l + "\n"),
      ...(config.server.prepared ? { prepared: config.server.prepared } : {}),
      // Deltas (ADR 0018) are taken and served when the deployment has ReleaseDeltas: no setting of their own.
      ...(deltas ? { deltas } : {}),
    });
  } catch (err) {
    await store.close();
    db.close();
    throw err;
  }
  const origin = config.server.publicUrl ? new URL(config.server.publicUrl).origin : undefined;
  ctx.output(
    { url: running.url, store: store.kind, deltas: deltas ? String(deltas.target) : null, ...(origin ? { publicOrigin: origin } : {}) },
    `firmware server on ${running.url}${origin ? `, answering requests signed for ${origin}` : ""} (store: ${store.kind}${deltas ? ", deltas served" : ""}); Ctrl-C stops it`,
  );
  if (!origin && !["127.0.0.1", "localhost", "::1"].includes(config.server.host)) {
    ctx.io.stderr(
      `warning: devices sign their requests for ${running.url}; if they reach this server by another name or through a proxy, set server.publicUrl (OTA_SERVER_PUBLIC_URL) to the URL they use\n`,
    );
  }
  await ctx.untilStopped();
  await running.close();
  await store.close();
  db.close();
}
