import { expect } from "chai";
import Database from "../../../agent/database/sqlite";
import { promises as fs, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { main } from "../../../agent/cli/main";
import { backupTracker, restoreTracker } from "../../../agent/tracker/backup";
import { FleetStore } from "../../../agent/tracker/store";
import { TrackerModule } from "../../../agent/tracker/trackerModule";
import { CliProcess } from "../../e2e/harness/cliProcess";
import { expectCode } from "../../helpers/expectCode";
import { BOOTLOADER, postReport, sealedReport, startTrackerProcess, testDevice, trackerChain, type TrackerChain } from "../../helpers/trackerFixture";
import { withSqlite } from "../../helpers/sqliteFile";

type Release = Awaited<ReturnType<TrackerChain["publish"]>>;

/** `ota-ledger <args> --json` in-process, from `cwd`, with only these settings. */
async function cli(args: string[], cwd: string, env: Record<string, string>) {
  let stdout = "";
  let stderr = "";
  const code = await main([...args, "--json"], { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env, cwd, isTTY: false });
  return { code, out: JSON.parse(stdout || "{}"), stderr };
}

/** What must hold in any committed state of a fleet database, whatever the moment it was copied at. */
function checkConsistent(file: string): { devices: number; reports: number; checkpointBlock: number | null } {
  const db = new Database(file, { readonly: true });
  try {
    expect(db.pragma("quick_check", { simple: true })).to.equal("ok");
    expect(db.pragma("journal_mode", { simple: true }), "one self-contained file").to.equal("delete");
    // A report and its device's counter are written in one transaction.
    const torn = db
      .prepare(`SELECT d.id FROM devices d WHERE d.last_counter <> coalesce((SELECT MAX(counter) FROM reports r WHERE r.device_id = d.id), 0)`)
      .all();
    expect(torn, "devices whose counter is not their last report's").to.deep.equal([]);
    // Configuration counts are kept by triggers in the same transactions.
    const counted = db.prepare(`SELECT coalesce(SUM(devices), 0) AS n FROM config_devices`).get() as { n: number };
    const actual = db.prepare(`SELECT COUNT(*) AS n FROM devices WHERE config_id IS NOT NULL`).get() as { n: number };
    expect(counted.n).to.equal(actual.n);
    const meta = db.prepare(`SELECT checkpoint FROM ota_backup`).get() as { checkpoint: string | null };
    const checkpointBlock = meta.checkpoint ? (JSON.parse(meta.checkpoint) as { block: number }).block : null;
    const newest = (db.prepare(`SELECT MAX(block_number) AS n FROM ledger_events`).get() as { n: number | null }).n;
    if (newest !== null) expect(newest, "no ledger event past the backup's checkpoint").to.be.at.most(checkpointBlock ?? -1);
    const n = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    return { devices: n(`SELECT COUNT(*) AS n FROM devices`), reports: n(`SELECT COUNT(*) AS n FROM reports`), checkpointBlock };
  } finally {
    db.close();
  }
}

describe("agent/tracker/backup: ota-ledger tracker backup and restore", function () {
  this.timeout(240_000);
  let t: TrackerChain;
  let module: Awaited<ReturnType<TrackerChain["registerModule"]>>;
  let boot1: Release;
  let out: string; // backups, and the trackers' data folders
  let liveDir: string;
  let process_: CliProcess | undefined; // `ota-ledger tracker start`, in a process of its own
  let url: string;
  const devices = Array.from({ length: 16 }, (_, i) => testDevice(`backup ${i}`, 1 + (i % 2), i % 2 ? "plant-2" : "plant-1"));
  const late = testDevice("backup late", 1, "plant-1"); // enrolled after the backup
  let backupFile: string;

  const report = (d: ReturnType<typeof testDevice>, release: Release = boot1) => sealedReport(d, module, [{ component: BOOTLOADER, release }]);

  /** `ota-ledger tracker start` on `dataDir`, as an operator runs it; waited for until it listens. */
  async function startProcess(dataDir: string) {
    const started = await startTrackerProcess(t, module, dataDir);
    process_ = started.process;
    url = started.url;
    return started.process;
  }
  const get = async <T>(route: string): Promise<T> => {
    const res = await fetch(new URL(route, url));
    expect(res.status, route).to.equal(200);
    return (await res.json()) as T;
  };

  before(async () => {
    t = await trackerChain();
    module = await t.registerModule("backup server module");
    boot1 = await t.publish(BOOTLOADER, "1.0.0", [1, 2]);
    await t.enrol(devices);
    out = mkdtempSync(path.join(tmpdir(), "ota-tracker-backups-"));
    backupFile = path.join(out, "tracker.backup");
    liveDir = path.join(out, "live");
    // Some megabytes in the database (a table the tracker does not know), so that copying takes a while.
    new FleetStore(path.join(liveDir, "fleet.db")).close();
    withSqlite(path.join(liveDir, "fleet.db"), (db) =>
      db.exec(
        `CREATE TABLE padding (x BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000) INSERT INTO padding SELECT randomblob(2048) FROM n;`,
      ),
    );
    await startProcess(liveDir);
  });
  after(async () => {
    await process_?.stop();
    await t?.c.stop();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it("a backup taken while the running tracker takes reports is one consistent database with every report acknowledged before it began", async () => {
    let writing = true;
    let acknowledged = 0;
    let failed: unknown;
    const writer = (async () => {
      while (writing) {
        await Promise.all(
          devices.map(async (d) => {
            const res = await postReport(url, await report(d));
            expect(res.status, JSON.stringify(res.body)).to.equal(200);
            acknowledged++;
          }),
        );
      }
    })().catch((err) => (failed = err));
    while (acknowledged < devices.length * 3 && !failed) await new Promise((r) => setTimeout(r, 20));
    const before = acknowledged;
    const result = await backupTracker({ dataDir: liveDir, file: backupFile, moduleId: module.id });
    writing = false;
    await writer;
    if (failed) throw failed;

    const copy = checkConsistent(backupFile);
    expect(copy.reports).to.be.at.least(before).and.at.most(acknowledged);
    expect(copy.devices).to.equal(devices.length);
    expect(copy.checkpointBlock).to.be.a("number");
    expect(result).to.include({ file: backupFile, devices: devices.length, reports: copy.reports, moduleId: module.id.toLowerCase(), trimmedBlocks: 0 });
    expect(result.checkpoint!.block).to.equal(copy.checkpointBlock);
    expect(result.bytes).to.equal((await fs.stat(backupFile)).size);
    expect(result.bytes).to.be.greaterThan(8 * 1024 * 1024);
  });

  it("refuses to overwrite a backup unless told, and refuses bad paths with clear errors", async () => {
    const before = await fs.readFile(backupFile);
    await expectCode(backupTracker({ dataDir: liveDir, file: backupFile }), "BACKUP_EXISTS");
    expect(await fs.readFile(backupFile)).to.deep.equal(before);
    // The live database itself, a folder, a path through a file, a data folder without a tracker.
    await expectCode(backupTracker({ dataDir: liveDir, file: path.join(liveDir, "fleet.db"), force: true }), "BACKUP_PATH_INVALID");
    await expectCode(backupTracker({ dataDir: liveDir, file: out }), "BACKUP_PATH_INVALID");
    await expectCode(backupTracker({ dataDir: liveDir, file: path.join(backupFile, "x.backup") }), "BACKUP_PATH_INVALID");
    await expectCode(backupTracker({ dataDir: path.join(out, "nothing-here"), file: path.join(out, "y.backup") }), "BACKUP_SOURCE_MISSING");
    // Restoring: from nothing, from a file that is not a database, over a running tracker, another module's backup.
    await expectCode(restoreTracker({ dataDir: path.join(out, "r0"), file: path.join(out, "missing.backup") }), "BACKUP_SOURCE_MISSING");
    await fs.writeFile(path.join(out, "junk.backup"), "not a database at all, but long enough to be read as one".repeat(100));
    await expectCode(restoreTracker({ dataDir: path.join(out, "r0"), file: path.join(out, "junk.backup") }), "BACKUP_INVALID");
    await expectCode(restoreTracker({ dataDir: liveDir, file: backupFile }), "RESTORE_TARGET_EXISTS");
    await expectCode(restoreTracker({ dataDir: liveDir, file: backupFile, force: true }), "SERVICE_RUNNING"); // the tracker process has it open
    await expectCode(restoreTracker({ dataDir: path.join(out, "r0"), file: backupFile, moduleId: "0x" + "77".repeat(32) }), "BACKUP_OTHER_MODULE");
    expect(process_!.running).to.equal(true);
    // A database of a newer tracker than this code: neither backed up nor restored.
    const newer = path.join(out, "newer");
    new FleetStore(path.join(newer, "fleet.db")).close();
    withSqlite(path.join(newer, "fleet.db"), (db) => db.pragma("user_version = 99"));
    await expectCode(backupTracker({ dataDir: newer, file: path.join(out, "newer.backup") }), "BACKUP_SCHEMA_NEWER");
    await expectCode(restoreTracker({ dataDir: path.join(out, "r0"), file: path.join(newer, "fleet.db") }), "BACKUP_SCHEMA_NEWER");

    // Through the CLI: exit 2 with the code; --force replaces the file in one rename.
    const env = { OTA_TRACKER_DATA: liveDir };
    const refused = await cli(["tracker", "backup", backupFile], out, env);
    expect([refused.code, refused.out.error.code]).to.deep.equal([2, "BACKUP_EXISTS"]);
    expect(refused.out.error.message).to.include("--force");
    const forced = await cli(["tracker", "backup", "tracker.backup", "--force"], out, env);
    expect(forced.code, forced.stderr).to.equal(0);
    expect(forced.out.file).to.equal(backupFile);
    checkConsistent(backupFile);
  });

  it("restore, then restart: the tracker resumes from the backup's checkpoint, lists the same devices, follows what the ledger did since, and takes reports again", async () => {
    type Devices = { total: number; devices: { id: string; installed: { releaseId: string }[] }[] };
    const listed = (await get<Devices>("/v1/fleet/devices?limit=1000")).devices.map((d) => [d.id, d.installed.map((i) => i.releaseId)]);
    // After the backup: a release, a device enrolled. Both must come back from the ledger.
    const boot11 = await t.publish(BOOTLOADER, "1.1.0", [1, 2]);
    await t.enrol([late]);
    expect((await process_!.stop()).code).to.equal(0);

    const restoredDir = path.join(out, "restored");
    const restored = await cli(["tracker", "restore", backupFile], out, { OTA_TRACKER_DATA: "restored" });
    expect(restored.code, JSON.stringify(restored.out)).to.equal(0);
    expect(restored.out).to.include({ devices: devices.length, dataDir: restoredDir });
    expect(restored.out.replaced).to.deep.equal({ database: null, checkpoint: null });
    // The position travels inside the database (issue 16): no file beside it.
    const inside = new FleetStore(path.join(restoredDir, "fleet.db"));
    expect(inside.ledger.position()!.block).to.equal(restored.out.checkpoint.block);
    inside.close();
    expect(await fs.stat(path.join(restoredDir, "ledger-checkpoint.json")).catch(() => "absent")).to.equal("absent");

    await startProcess(restoredDir);
    const now = await get<Devices>("/v1/fleet/devices?limit=1000");
    expect(now.total).to.equal(devices.length + 1);
    expect(now.devices.filter((d) => d.id !== late.record.id.toLowerCase()).map((d) => [d.id, d.installed.map((i) => i.releaseId)])).to.have.deep.members(
      listed,
    );
    expect((await get<{ releases: { id: string }[] }>("/v1/releases")).releases.map((r) => r.id)).to.include(boot11.id);
    // Devices report again with higher counters; 1.1.0 is out, so the answer carries a notice.
    const res = await postReport(url, await report(devices[0]));
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(res.body.notices).to.have.length(1);
    expect((await postReport(url, await report(late))).status).to.equal(200);
    expect((await process_!.stop()).code).to.equal(0);

    // Restoring over it again needs --force; what it replaces is kept beside.
    const again = await restoreTracker({ dataDir: restoredDir, file: backupFile, force: true });
    expect(path.basename(again.replaced.database!)).to.match(/^fleet\.db\.replaced-/);
    expect(again.replaced.checkpoint, "no position file to put aside").to.equal(null);
  });

  it("a database of an earlier version, ahead of its position file: undone in the copy, read again after a restore; a plain copy of fleet.db restores too", async () => {
    // A tracker of an earlier version (its position in a file) stopped between applying a batch and
    // saving its position: its database is ahead. (Since issue 16 both commit in one transaction.)
    const dir = path.join(out, "restored");
    const boot12 = await t.publish(BOOTLOADER, "1.2.0", [1]);
    const options = {
      chain: { provider: t.c.provider, registry: t.c.registry, fleet: t.c.fleet, domain: t.domain, fromBlock: t.fromBlock },
      module,
      pollMs: 200,
    };
    const tracker = new TrackerModule({ ...options, dataDir: dir });
    await tracker.start();
    const block = withSqlite(
      tracker.store.file,
      (db) => (db.prepare(`SELECT block_number AS n FROM ledger_events WHERE subject = ?`).get(`release:${boot12.id}`) as { n: number }).n,
    );
    await tracker.stop();
    const checkpointFile = path.join(dir, "ledger-checkpoint.json");
    const stopped = new FleetStore(path.join(dir, "fleet.db"));
    const saved = stopped.ledger.position()!;
    stopped.ledger.clearPosition();
    stopped.close();
    const header = await t.c.provider.send("eth_getBlockByNumber", ["0x" + (block - 1).toString(16), false]);
    await fs.writeFile(
      checkpointFile,
      JSON.stringify({ block: block - 1, hash: header.hash, window: saved.window.filter((b: { number: number }) => b.number < block) }),
    );

    const file = path.join(out, "behind.backup");
    const r = await backupTracker({ dataDir: dir, file });
    expect(r.trimmedBlocks).to.be.at.least(1);
    expect(r.checkpoint!.block).to.equal(block - 1);
    checkConsistent(file);
    const copy = new Database(file, { readonly: true });
    expect(copy.prepare(`SELECT 1 FROM releases WHERE id = ?`).get(boot12.id), "undone as a reorganisation would").to.equal(undefined);
    copy.close();

    const target = path.join(out, "behind");
    await restoreTracker({ dataDir: target, file });
    const restarted = new TrackerModule({ ...options, dataDir: target });
    await restarted.start();
    try {
      expect(restarted.views.releases().map((x) => x.id)).to.include(boot12.id);
      expect(restarted.views.devices({ limit: 1000 }).total).to.equal(devices.length + 1);
    } finally {
      await restarted.stop();
    }

    // A plain copy of fleet.db: its position is inside, so the module resumes from it.
    const plain = path.join(out, "plain.db");
    const source = new Database(path.join(target, "fleet.db"), { readonly: true });
    await source.backup(plain);
    source.close();
    const r2 = await restoreTracker({ dataDir: path.join(out, "plain"), file: plain });
    expect([r2.checkpoint?.block, r2.takenAt, r2.devices]).to.deep.equal([restarted.stream.position!.block, null, devices.length + 1]);
    const fromPlain = new TrackerModule({ ...options, dataDir: path.join(out, "plain") });
    await fromPlain.start();
    try {
      expect(fromPlain.views.releases().map((x) => x.id)).to.include(boot12.id);
      expect(fromPlain.views.devices({ limit: 1000 }).total).to.equal(devices.length + 1);
    } finally {
      await fromPlain.stop();
    }
  });
});
