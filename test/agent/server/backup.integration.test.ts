import { expect } from "chai";
import Database from "../../../agent/database/sqlite";
import { promises as fs, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { serverFixture, writeImage } from "../../helpers/serverFixture";
import { startIpfsDaemon } from "../../helpers/ipfsDaemon";
import { expectCode } from "../../helpers/expectCode";
import { busyWriter } from "../../helpers/busyWriter";
import { main } from "../../../agent/cli/main";
import { downloadArtifact, type DeviceIdentity } from "../../../agent/consumer/downloadRelease";
import { uploadArtifact } from "../../../agent/author/uploadArtifact";
import { grantKeys } from "../../../agent/author/grantKeys";
import { backupServer, restoreServer, type ServerBackupManifest } from "../../../agent/server/backup";
import { ServerDatabase } from "../../../agent/server/serverDatabase";
import { startFirmwareServer, type RunningFirmwareServer } from "../../../agent/server/firmwareServer";
import { EmbeddedStore } from "../../../agent/storage/embeddedStore";
import { KuboStore } from "../../../agent/storage/kuboStore";

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
type Release = Awaited<ReturnType<Fixture["release"]>>;

/** `ota-ledger <args> --json` in-process from `cwd` (where an ota-ledger.json may be), with only these settings. */
async function cli(args: string[], cwd: string, env: Record<string, string> = {}) {
  let stdout = "";
  let stderr = "";
  const code = await main([...args, "--json"], { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env, cwd, isTTY: false });
  return { code, out: JSON.parse(stdout || "{}"), stderr };
}

/** A firmware server started on a data folder and an embedded store (as `server start` does). */
async function startOn(
  f: Fixture,
  dataDir: string,
  storeDir: string,
): Promise<{ server: RunningFirmwareServer; db: ServerDatabase; store: EmbeddedStore; stop(): Promise<void> }> {
  const store = await EmbeddedStore.open({ directory: storeDir });
  const db = new ServerDatabase(path.join(dataDir, "server.db"));
  const server = await startFirmwareServer({ gate: f.gate, store, db, pollMs: 100 });
  return {
    server,
    db,
    store,
    async stop() {
      await server.close();
      await store.close();
      db.close();
    },
  };
}

/** How many download-log entries a server database holds, and the last id, read from a connection of its own. */
function logCount(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(`SELECT COUNT(*) AS n FROM downloads`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}
function lastLogId(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(`SELECT MAX(id) AS n FROM downloads`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe("agent/server/backup: ota-ledger server backup and restore", function () {
  this.timeout(240_000);
  let f: Fixture;
  let out: string;
  let boot: Release; // several 1 MiB blocks: a DAG
  let radio: Release; // one block
  let backupDir: string;
  let lastIdBefore: number; // the last download-log id before the restore (what a tracker would have read)
  const download = (serverUrl: string, device: DeviceIdentity, release: Release, name: string) =>
    downloadArtifact({ serverUrl, device, installed: [], release: { id: release.releaseId, record: release.record }, artifactFile: path.join(out, name) });

  before(async () => {
    f = await serverFixture();
    out = mkdtempSync(path.join(tmpdir(), "ota-server-backups-"));
    boot = await f.release(
      {
        component: "acme.bootloader",
        version: "1.0.0",
        file: writeImage(f.dir, "boot.bin", 2 * 1024 * 1024 + 4321, 7),
        hardware: ["acme-board-rev-a"],
        depends: [],
      },
      { grant: [f.devices.a, f.devices.b] },
    );
    radio = await f.release(
      { component: "acme.radio-fw", version: "1.0.0", file: writeImage(f.dir, "radio.bin", 90 * 1024, 8), hardware: ["acme-board-rev-a"], depends: [] },
      { grant: [f.devices.a] },
    );
    await download(f.server.url, f.devices.a, boot, "first.otae");
    backupDir = path.join(out, "server-backup");
  });
  after(async () => {
    await f?.close();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it("a backup taken while devices download (and another connection writes the log) is a consistent database with every download logged before it, and the artifacts checked against their CIDs", async () => {
    const live = path.join(f.dir, "server.db");
    // Some megabytes of log, then a second connection on its own thread logging without pause.
    const grow = new Database(live);
    grow.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
      INSERT INTO downloads (at, device_id, release_id, kind, range_start, range_end, bytes, complete) SELECT i, '0x' || hex(randomblob(32)), '0x' || hex(randomblob(32)), 'block', NULL, NULL, 1048576, 0 FROM n`);
    grow.close();
    const writer = await busyWriter(live, [
      `INSERT INTO downloads (at, device_id, release_id, kind, range_start, range_end, bytes, complete) VALUES ($n, '0x' || hex(randomblob(32)), '0x' || hex(randomblob(32)), 'block', NULL, NULL, 1048576, 0)`,
    ]);
    let downloading = true;
    let n = 0;
    const downloads = (async () => {
      while (downloading) {
        await Promise.all([download(f.server.url, f.devices.a, boot, `a-${n}.otae`), download(f.server.url, f.devices.b, boot, `b-${n}.otae`)]);
        n++;
      }
    })();
    while (n < 2) await new Promise((r) => setTimeout(r, 20));
    await writer.more(10);
    const before = logCount(live);
    const commitsBefore = writer.commits();
    const r = await backupServer({ dataDir: f.dir, storage: { kind: "embedded", path: path.join(f.dir, "ipfs") }, dir: backupDir });
    const commitsDuring = writer.commits() - commitsBefore;
    downloading = false;
    await downloads;
    await writer.stop();
    const after = logCount(live);
    expect(commitsDuring, "the other connection committed while the backup ran").to.be.greaterThan(0);

    const db = new Database(path.join(backupDir, "server.db"), { readonly: true });
    try {
      expect(db.pragma("quick_check", { simple: true })).to.equal("ok");
      expect(db.pragma("journal_mode", { simple: true })).to.equal("delete");
      const logged = (db.prepare(`SELECT COUNT(*) AS n FROM downloads`).get() as { n: number }).n;
      expect(logged).to.be.at.least(before).and.at.most(after);
      expect(r.downloads.entries).to.equal(logged);
      // The ids of a committed log have no hole: AUTOINCREMENT, one row per insert.
      const { lo, hi } = db.prepare(`SELECT MIN(id) AS lo, MAX(id) AS hi FROM downloads`).get() as { lo: number; hi: number };
      expect(hi - lo + 1).to.equal(logged);
      expect((db.prepare(`SELECT COUNT(*) AS n FROM wrapped_keys`).get() as { n: number }).n).to.equal(3);
    } finally {
      db.close();
    }
    expect(r.artifacts.map((a) => [a.releaseId, a.cid, a.file])).to.have.deep.members([
      [boot.releaseId.toLowerCase(), boot.record.fileLink, path.join("artifacts", `${boot.releaseId.toLowerCase()}.otae`)],
      [radio.releaseId.toLowerCase(), radio.record.fileLink, path.join("artifacts", `${radio.releaseId.toLowerCase()}.otae`)],
    ]);
    // The very bytes the author submitted: `release submit --artifact` takes them again.
    expect(readFileSync(path.join(backupDir, r.artifacts.find((a) => a.cid === boot.record.fileLink)!.file!))).to.deep.equal(readFileSync(boot.artifactFile));
    expect(readFileSync(path.join(backupDir, r.artifacts.find((a) => a.cid === radio.record.fileLink)!.file!))).to.deep.equal(readFileSync(radio.artifactFile));
    const manifest = JSON.parse(await fs.readFile(path.join(backupDir, "backup.json"), "utf8")) as ServerBackupManifest;
    expect(manifest).to.include({ kind: "ota-ledger server backup", version: 1, wrappedKeys: 3, withdrawn: 0 });
  });

  it("refuses to overwrite a backup unless told, and refuses bad paths with clear errors", async () => {
    const storage = { kind: "embedded" as const, path: path.join(f.dir, "ipfs") };
    await expectCode(backupServer({ dataDir: f.dir, storage, dir: backupDir }), "BACKUP_EXISTS");
    const other = path.join(out, "not-a-backup");
    await fs.mkdir(other);
    await fs.writeFile(path.join(other, "precious.txt"), "keep me");
    await expectCode(backupServer({ dataDir: f.dir, storage, dir: other, force: true }), "BACKUP_PATH_INVALID");
    expect(await fs.readFile(path.join(other, "precious.txt"), "utf8")).to.equal("keep me");
    await expectCode(backupServer({ dataDir: f.dir, storage, dir: path.join(f.dir, "backup") }), "BACKUP_PATH_INVALID"); // inside the data folder
    await expectCode(backupServer({ dataDir: f.dir, storage, dir: path.join(other, "precious.txt") }), "BACKUP_PATH_INVALID"); // a file
    await expectCode(backupServer({ dataDir: f.dir, storage, dir: path.join(other, "precious.txt", "b") }), "BACKUP_PATH_INVALID"); // through a file
    await expectCode(backupServer({ dataDir: path.join(out, "no-server"), storage, dir: path.join(out, "b2") }), "BACKUP_SOURCE_MISSING");
    await expectCode(
      backupServer({ dataDir: f.dir, storage: { kind: "embedded", path: path.join(out, "no-store") }, dir: path.join(out, "b3") }),
      "STORE_MISSING",
    );
    expect(await fs.readdir(out), "a refused backup leaves nothing behind").to.not.include.members(["b2", "b3"]);

    await expectCode(restoreServer({ dataDir: path.join(out, "r"), storage, dir: path.join(out, "missing") }), "BACKUP_SOURCE_MISSING");
    await expectCode(restoreServer({ dataDir: path.join(out, "r"), storage, dir: other }), "BACKUP_INVALID");
    await expectCode(restoreServer({ dataDir: f.dir, storage, dir: backupDir }), "RESTORE_TARGET_EXISTS");
    await expectCode(restoreServer({ dataDir: f.dir, storage, dir: backupDir, force: true }), "SERVICE_RUNNING"); // the server has it open

    // Through the CLI (configuration from ota-ledger.json): exit 2 with the code, and --force replaces an earlier backup.
    await fs.writeFile(path.join(out, "ota-ledger.json"), JSON.stringify({ storage: { kind: "embedded", path: storage.path }, server: { dataDir: f.dir } }));
    const refused = await cli(["server", "backup", "server-backup"], out);
    expect([refused.code, refused.out.error.code]).to.deep.equal([2, "BACKUP_EXISTS"]);
    expect(refused.out.error.message).to.include("--force");
    const forced = await cli(["server", "backup", "server-backup", "--force"], out);
    expect(forced.code, JSON.stringify(forced.out)).to.equal(0);
    expect(forced.out.dir).to.equal(backupDir);
    expect(forced.out.artifacts).to.have.length(2);
    lastIdBefore = lastLogId(path.join(f.dir, "server.db"));
  });

  it("restore on a new machine, then start: the server serves every artifact again, logs downloads past any id read before, and knows only the keys of the backup", async () => {
    // After the backup: a key granted to b for radio. Lost with the restore.
    await grantKeys({ registry: f.registry, fleet: f.fleet, domain: f.domain, author: f.acmeAuthor, keys: f.keys, serverUrl: f.server.url }, radio.releaseId, {
      deviceIds: [f.devices.b.credential.record.id],
    });
    const fresh = path.join(out, "new-machine");
    await fs.mkdir(fresh);
    await fs.writeFile(path.join(fresh, "ota-ledger.json"), JSON.stringify({ storage: { kind: "embedded", path: "./ipfs" }, server: { dataDir: "./server" } }));
    const r = await cli(["server", "restore", backupDir], fresh);
    expect(r.code, JSON.stringify(r.out)).to.equal(0);
    expect(r.out.restored.map((a: { cid: string; from: string }) => [a.cid, a.from])).to.have.deep.members([
      [boot.record.fileLink, "backup"],
      [radio.record.fileLink, "backup"],
    ]);
    expect(r.out.missing).to.deep.equal([]);
    expect(r.out.nextDownloadId).to.be.greaterThan(lastIdBefore);

    const s = await startOn(f, path.join(fresh, "server"), path.join(fresh, "ipfs"));
    try {
      expect(await s.store.isPinned(boot.record.fileLink)).to.equal(true);
      await download(s.server.url, f.devices.a, boot, "restored-boot.otae");
      expect(readFileSync(path.join(out, "restored-boot.otae"))).to.deep.equal(readFileSync(boot.artifactFile));
      await download(s.server.url, f.devices.a, radio, "restored-radio.otae");
      // What a tracker reads next (after the last id it saw) holds the new downloads.
      const next = s.db.downloads({ after: lastIdBefore });
      expect(next.map((d) => d.kind)).to.include.members(["manifest", "key", "artifact"]);
      expect(next[0].id).to.equal(r.out.nextDownloadId);
      await expectCode(download(s.server.url, f.devices.b, radio, "b-radio.otae"), "KEY_NOT_GRANTED");
    } finally {
      await s.stop();
    }
  });

  it("with --no-artifacts into an empty store: what the store lacks is taken out of the database and named, and a new submission serves it again", async () => {
    const storage = { kind: "embedded" as const, path: path.join(f.dir, "ipfs") };
    const light = path.join(out, "light-backup");
    const b = await backupServer({ dataDir: f.dir, storage, dir: light, artifacts: false });
    expect(b.artifacts.every((a) => a.file === null)).to.equal(true);
    expect(await fs.readdir(light)).to.have.members(["backup.json", "server.db"]);

    const dataDir = path.join(out, "light-restore");
    const r = await restoreServer({ dataDir, storage: { kind: "embedded", path: path.join(dataDir, "ipfs") }, dir: light });
    expect(r.restored).to.deep.equal([]);
    expect(r.missing.map((m) => m.cid)).to.have.members([boot.record.fileLink, radio.record.fileLink]);
    const s = await startOn(f, dataDir, path.join(dataDir, "ipfs"));
    try {
      await expectCode(download(s.server.url, f.devices.a, boot, "light-0.otae"), "ARTIFACT_NOT_AVAILABLE");
      expect((await uploadArtifact({ serverUrl: s.server.url, author: f.acmeAuthor }, boot.releaseId, boot.artifactFile)).status).to.equal(201);
      await download(s.server.url, f.devices.a, boot, "light-1.otae"); // the keys came back with the database
    } finally {
      await s.stop();
    }
  });

  describe("from a Kubo node (js-ipfs daemon) to the embedded store", () => {
    let daemon: Awaited<ReturnType<typeof startIpfsDaemon>>;
    let k: Fixture;
    before(async () => {
      daemon = await startIpfsDaemon();
      k = await serverFixture(() => KuboStore.open({ url: daemon.apiUrl, timeoutMs: 10_000 }));
    });
    after(async () => {
      await k?.close();
      await daemon?.stop();
    });

    it("backs up a running server's artifacts from the node, and a restore into the embedded store serves them", async () => {
      const fw = await k.release(
        { component: "acme.sensor-fw", version: "1.0.0", file: writeImage(k.dir, "fw.bin", 1024 * 1024 + 99, 31), hardware: ["acme-board-rev-a"], depends: [] },
        { grant: [k.devices.a] },
      );
      const dir = path.join(out, "kubo-backup");
      const b = await backupServer({ dataDir: k.dir, storage: { kind: "kubo", url: daemon.apiUrl, timeoutMs: 10_000 }, dir });
      expect(b.source.store).to.equal("kubo");
      expect(readFileSync(path.join(dir, b.artifacts[0].file!))).to.deep.equal(readFileSync(fw.artifactFile));
      const dataDir = path.join(out, "from-kubo");
      const r = await restoreServer({ dataDir, storage: { kind: "embedded", path: path.join(dataDir, "ipfs") }, dir });
      expect(r.restored.map((a) => a.from)).to.deep.equal(["backup"]);
      const s = await startOn(k, dataDir, path.join(dataDir, "ipfs"));
      try {
        await downloadArtifact({
          serverUrl: s.server.url,
          device: k.devices.a,
          installed: [],
          release: { id: fw.releaseId, record: fw.record },
          artifactFile: path.join(out, "kubo-restored.otae"),
        });
        expect(readFileSync(path.join(out, "kubo-restored.otae"))).to.deep.equal(readFileSync(fw.artifactFile));
      } finally {
        await s.stop();
      }
    });
  });
});
