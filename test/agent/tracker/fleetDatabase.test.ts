import { expect } from "chai";
import { joinEvidence } from "../../../agent/core/policyEvidence";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import { FLEET_SCHEMA, FleetStore } from "../../../agent/tracker/store";
import { takeForwardedReport, takeSealedReport } from "../../../agent/tracker/reportIntake";
import { openMessage, sealMessage } from "../../../agent/crypto/sealedMessage";
import { REPORT_KIND, type StatusReport } from "../../../agent/core/statusReport";
import { expectCode } from "../../helpers/expectCode";
import { withSqlite } from "../../helpers/sqliteFile";
import type { SqliteDatabase } from "../../../agent/database/sqlite";

const device = new Wallet(keccak256(toUtf8Bytes("fleet db device")));
const deviceId = keccak256(toUtf8Bytes("fleet-db-1"));
const tracker = new Wallet(keccak256(toUtf8Bytes("fleet db tracker")));
const moduleId = keccak256(toUtf8Bytes("tracker module"));
const component = keccak256(toUtf8Bytes("acme.bootloader"));
const releaseId = "0x" + "12".repeat(32);

function report(counter: number, code = "OK"): StatusReport {
  return {
    deviceId,
    counter,
    installed: [{ component, version: "4294967296", releaseId, slot: "a" }],
    lastResult: { releaseId, component, outcome: "confirmed", code, at: 1 },
    needs: [],
    declined: [],
    safeMode: false,
  };
}
const seal = (r: StatusReport, key = device) =>
  sealMessage(
    { kind: REPORT_KIND, from: deviceId, to: moduleId, issuedAt: Date.now(), body: r },
    { kind: "device", privateKey: key.privateKey },
    tracker.signingKey.compressedPublicKey,
  );

/**
 * Issue 19's migrations (names, tags and campaigns, bundles, decisions' terms), the last ones: a test that takes a
 * database back to before them sets user_version this far back.
 */
const MIGRATIONS_OF_ISSUE_19 = 4;

/** Undoes what issue 19's campaigns migration adds that cannot be added twice (columns; its tables are IF NOT EXISTS). */
function undoCampaignsColumns(db: SqliteDatabase): void {
  db.exec(`ALTER TABLE status_anchors DROP COLUMN format; ALTER TABLE status_anchor_records DROP COLUMN tags;`);
}

describe("agent/tracker: the fleet database and report intake (PROC-5, CAP-11.2-a, CAP-11.2-b)", () => {
  let dir: string;
  let db: FleetStore;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "ota-fleetdb-"));
    db = new FleetStore(path.join(dir, "fleet.db"));
    db.devices.upsert({ id: deviceId, publicKey: device.signingKey.compressedPublicKey, hardwareClass: 1, network: "n", region: "r", standing: "active" });
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("PROC-5: takes a report signed by the enrolled key, stores what the device runs, and refuses a replay", async () => {
    const r = await seal(report(5));
    takeSealedReport(db, r, { id: moduleId, privateKey: tracker.privateKey }, 1000);
    expect(db.devices.installed(deviceId)).to.deep.equal([
      { deviceId: deviceId.toLowerCase(), component: component.toLowerCase(), version: 4294967296n, releaseId },
    ]);
    expect(db.devices.get(deviceId)).to.include({ lastCounter: 5, lastSeen: 1000, lastOutcome: "confirmed", lastCode: "OK" });
    await expectCode((async () => takeSealedReport(db, r, { id: moduleId, privateKey: tracker.privateKey }, 2000))(), "REPORT_REPLAYED");
    await expectCode((async () => takeSealedReport(db, await seal(report(4)), { id: moduleId, privateKey: tracker.privateKey }, 2000))(), "REPORT_REPLAYED");
  });

  it("refuses a report signed by another key, from an unknown or suspended device", async () => {
    await expectCode(
      (async () =>
        takeSealedReport(db, await seal(report(6), Wallet.createRandom() as unknown as Wallet), { id: moduleId, privateKey: tracker.privateKey }, 1))(),
      "REPORT_SIGNATURE",
    );
    db.devices.setStanding(deviceId, "suspended");
    await expectCode(
      (async () => takeSealedReport(db, await seal(report(7)), { id: moduleId, privateKey: tracker.privateKey }, 1))(),
      "REPORT_DEVICE_NOT_ACTIVE",
    );
    expect(db.devices.installed(deviceId)).to.deep.equal([]);
  });

  it("CAP-11.2-a CAP-11.2-b: lists devices running flagged releases, failed ones and unreachable ones, and survives a reopen", async () => {
    const record = {
      provider: 1,
      component,
      version: 4294967296n,
      fileHash: "0x" + "01".repeat(32),
      fileLink: "bafy",
      fileName: "f.bin",
      fileSize: 10n,
      merkleRoot: "0x" + "02".repeat(32),
      hardware: [1],
      dependencies: [],
    };
    db.catalogue.upsertRelease({
      id: releaseId,
      component,
      provider: 1,
      version: 4294967296n,
      hardware: [1],
      status: "active",
      blockHash: "0xaa",
      logIndex: 0,
      record,
      publishedAt: 3,
    });
    takeSealedReport(db, await seal(report(1, "HEALTH_CHECK_FAILED")), { id: moduleId, privateKey: tracker.privateKey }, 10);
    db.catalogue.setReleaseStatus(releaseId, "vulnerable");
    expect(db.devices.runningFlagged()).to.deep.equal([{ deviceId: deviceId.toLowerCase(), releaseId, status: "vulnerable" }]);
    expect(db.devices.unreachable(5)).to.have.length(0);
    expect(db.devices.unreachable(11).map((d) => d.id)).to.deep.equal([deviceId.toLowerCase()]);
    db.close();
    db = new FleetStore(path.join(dir, "fleet.db"));
    expect(db.catalogue.releases()[0]).to.include({ status: "vulnerable", publishedAt: 3 });
    expect(db.catalogue.releases()[0].record).to.deep.equal(record);
    db.catalogue.dropReleasesOfBlocks(["0xaa"]);
    expect(db.catalogue.releases()).to.have.length(0);
  });

  it("CAP-11.1-b CAP-11.2-a: keeps the safe mode of each device's latest report, also of a report relayed by a module below", async () => {
    const take = async (r: StatusReport, at: number) => takeSealedReport(db, await seal(r), { id: moduleId, privateKey: tracker.privateKey }, at);
    await take({ ...report(20), installed: [], lastResult: null, safeMode: true }, 100);
    expect(db.devices.get(deviceId)!.safeMode).to.equal(true);
    await take(report(21), 200);
    expect(db.devices.get(deviceId)!.safeMode).to.equal(false);
    expect(db.reports.take(deviceId, 21, 250, { installed: [], lastResult: null, safeMode: true }), "a replay changes nothing").to.equal(false);
    expect(db.devices.get(deviceId)!.safeMode).to.equal(false);
    // A report without the field (an older device) is not in safe mode; one with anything but a boolean is refused.
    const older: Partial<StatusReport> = report(22);
    delete older.safeMode;
    await take(older as StatusReport, 300);
    expect(db.devices.get(deviceId)!.safeMode).to.equal(false);
    await expectCode(take({ ...report(23), safeMode: "yes" as never }, 400), "REPORT_MALFORMED");
    // Relayed: the report as the device signed it, forwarded by a module below (DEP-8.2.3).
    const child = keccak256(toUtf8Bytes("child module")).toLowerCase();
    const opened = openMessage<StatusReport>(
      await seal({ ...report(24), installed: [], lastResult: null, safeMode: true }),
      tracker.privateKey,
      moduleId,
      "device",
    );
    takeForwardedReport(db, { message: opened.message, signature: opened.signature }, child, 500);
    expect(db.devices.get(deviceId)).to.include({ safeMode: true, upstream: child, lastCounter: 24 });
  });

  describe("issue 15: a delivery fault is not a failed release", () => {
    const other = "0x" + "34".repeat(32);
    const body = (outcome: string, code: string, release = releaseId) => ({ installed: [], lastResult: { releaseId: release, outcome, code } });

    it("finding: a mirror's flipped byte made the device failed and kept the release from it; now it is blocked, since its first blocked report", () => {
      db.reports.take(deviceId, 1, 1000, body("blocked", "CHUNK_MISMATCH"));
      expect(db.devices.get(deviceId)).to.include({ lastKind: "blocked", blockedSince: 1000, failedRelease: null, lastRelease: releaseId });
      db.reports.take(deviceId, 2, 2000, body("blocked", "SERVER_BUSY")); // still blocked on the same release, by another cause
      expect(db.devices.get(deviceId)).to.include({ lastKind: "blocked", blockedSince: 1000, lastCode: "SERVER_BUSY" });
      db.reports.take(deviceId, 3, 3000, body("blocked", "SERVER_BUSY", other)); // another release: blocked since now
      expect(db.devices.get(deviceId)).to.include({ blockedSince: 3000, lastRelease: other });
      db.reports.take(deviceId, 4, 4000, body("confirmed", "OK", other));
      expect(db.devices.get(deviceId)).to.include({ lastKind: "installed", blockedSince: null });
      expect(db.rollouts.failureTotals().size).to.equal(0);
      expect(db.rollouts.counts().get(releaseId)?.failed ?? 0).to.equal(0);
    });

    it("an old agent's delivery fault sent as rejected is blocked too; only a failure after an intact delivery counts", () => {
      db.reports.take(deviceId, 1, 1000, body("rejected", "MANIFEST_ROOT_MISMATCH"));
      expect(db.devices.get(deviceId)).to.include({ lastKind: "blocked", failedRelease: null });
      expect(db.rollouts.counts().get(releaseId)).to.include({ blocked: 1, failed: 0 });
      db.reports.take(deviceId, 2, 2000, body("rejected", "RELEASE_REVOKED"));
      expect(db.devices.get(deviceId)).to.include({ lastKind: "refused", failedRelease: null, blockedSince: null });
      db.reports.take(deviceId, 3, 3000, body("failed", "FILE_HASH_MISMATCH"));
      expect(db.devices.get(deviceId)).to.include({ lastKind: "failed", failedRelease: releaseId });
      expect([...db.rollouts.failureTotals()]).to.deep.equal([[releaseId, 1]]);
    });

    it("a database from before issue 15 takes each device's kind from its last result, and forgets failures that were delivery faults; APP-II-3 issue 18: its policy evidence is kept for every policy", () => {
      const ids = ["fleet-db-tampered", "fleet-db-broken"].map((l) => keccak256(toUtf8Bytes(l)).toLowerCase());
      for (const id of ids)
        db.devices.upsert({ id, publicKey: device.signingKey.compressedPublicKey, hardwareClass: 1, network: "n", region: "r", standing: "active" });
      db.reports.take(ids[0], 1, 1000, body("rejected", "CHUNK_MISMATCH"));
      db.reports.take(ids[1], 1, 1000, body("rolled-back", "HEALTH_CHECK_FAILED"));
      // Back to the schema before issue 15, as the earlier version wrote it: the tampered device counted as failed.
      db.close();
      withSqlite(path.join(dir, "fleet.db"), (raw) => {
        raw.exec(`DROP INDEX devices_by_kind; ALTER TABLE devices DROP COLUMN last_kind; ALTER TABLE devices DROP COLUMN blocked_since;
        DROP TABLE ledger_position; DROP TABLE ledger_txs; DROP TABLE report_sessions;
        DROP TABLE policy_evidence;
        CREATE TABLE policy_evidence (release_id TEXT NOT NULL, device_id TEXT NOT NULL, evidence TEXT NOT NULL, PRIMARY KEY (release_id, device_id));`);
        // Evidence as the tracker kept it before issue 18: one string per release and device, for every policy.
        raw.prepare(`INSERT INTO policy_evidence (release_id, device_id, evidence) VALUES (?, ?, '0x0102')`).run(releaseId, ids[0]);
        raw.prepare(`UPDATE devices SET failed_release = ? WHERE id = ?`).run(releaseId, ids[0]);
        raw.prepare(`INSERT INTO release_failures (release_id, device_id, at) VALUES (?, ?, 1000)`).run(releaseId, ids[0]);
        undoCampaignsColumns(raw);
        raw.pragma(`user_version = ${FLEET_SCHEMA - 4 - MIGRATIONS_OF_ISSUE_19}`); // before issue 15's, 16's, 17's, 18's and 19's migrations
      });
      db = new FleetStore(path.join(dir, "fleet.db"));
      expect(db.devices.get(ids[0])).to.include({ lastKind: "blocked", blockedSince: 1000, failedRelease: null });
      expect(db.devices.get(ids[1])).to.include({ lastKind: "failed", failedRelease: releaseId });
      expect([...db.rollouts.failureTotals()]).to.deep.equal([[releaseId, 1]]);
      // Issue 18: the old evidence is kept for every policy; a policy's own part then replaces it.
      expect(db.evidence.of(releaseId, ids[0])).to.equal("0x0102");
      const policy = Wallet.createRandom().address;
      db.evidence.set(releaseId, policy, [{ deviceId: ids[0], evidence: "0x03" }]);
      expect(db.evidence.of(releaseId, ids[0])).to.equal(joinEvidence(new Map([[policy, "0x03"]])));
    });
  });

  it("CAP-11.2-a CAP-11.2-b-iii: a database from before names were mirrored keeps every row, and names what it holds once the names come", () => {
    db.devices.upsert({ id: deviceId, publicKey: device.signingKey.compressedPublicKey, hardwareClass: 1, network: "n", region: "r", standing: "active" });
    db.reports.take(deviceId, 1, 10, { installed: [{ component, version: "4294967296", releaseId }], lastResult: null });
    // Back to the schema before issue 19: no name tables.
    db.close();
    withSqlite(path.join(dir, "fleet.db"), (raw) => {
      raw.exec(`DROP TABLE component_names; DROP TABLE hardware_classes;`);
      undoCampaignsColumns(raw);
      raw.pragma(`user_version = ${FLEET_SCHEMA - MIGRATIONS_OF_ISSUE_19}`);
    });
    db = new FleetStore(path.join(dir, "fleet.db"));
    expect(withSqlite(db.file, (raw) => raw.pragma("user_version", { simple: true }))).to.equal(FLEET_SCHEMA);
    expect(db.devices.get(deviceId)).to.include({ hardwareClass: 1, lastCounter: 1 });
    expect(db.devices.installed(deviceId).map((i) => i.component)).to.deep.equal([component]);
    // Nothing named yet: null, and the component is listed for the registry's views to name.
    expect([db.catalogue.names().component(component), db.catalogue.names().hardware(1)]).to.deep.equal([null, null]);
    expect(db.catalogue.unnamedComponents()).to.deep.equal([component]);
    db.catalogue.setComponentName(component, "acme.bootloader");
    db.catalogue.setHardwareName(1, "rev-c");
    expect([db.catalogue.names().component(component.toUpperCase().replace("0X", "0x")), db.catalogue.names().hardware(1)]).to.deep.equal([
      "acme.bootloader",
      "rev-c",
    ]);
    expect(db.catalogue.unnamedComponents()).to.deep.equal([]);
  });

  it("CAP-11.1-b: a database from before safe mode was kept (schema 6) takes each device's flag from its latest report when opened", async () => {
    const other = { id: keccak256(toUtf8Bytes("fleet-db-2")).toLowerCase(), silent: keccak256(toUtf8Bytes("fleet-db-3")).toLowerCase() };
    for (const id of [other.id, other.silent])
      db.devices.upsert({ id, publicKey: device.signingKey.compressedPublicKey, hardwareClass: 1, network: "n", region: "r", standing: "active" });
    const body = (safeMode: boolean) => ({ installed: [], lastResult: null, safeMode });
    db.reports.take(deviceId, 1, 10, body(false));
    db.reports.take(deviceId, 2, 11, body(true)); // in safe mode now
    db.reports.take(other.id, 1, 10, body(true));
    db.reports.take(other.id, 2, 11, body(false)); // was in safe mode, no longer
    // Back to schema 6: no flag, no index.
    db.close();
    withSqlite(path.join(dir, "fleet.db"), (raw) => {
      raw.exec(
        `DROP INDEX devices_in_safe_mode; ALTER TABLE devices DROP COLUMN safe_mode;
       DROP INDEX devices_by_kind; ALTER TABLE devices DROP COLUMN last_kind; ALTER TABLE devices DROP COLUMN blocked_since;`,
      );
      undoCampaignsColumns(raw);
      raw.pragma("user_version = 6");
    });
    db = new FleetStore(path.join(dir, "fleet.db"));
    expect(withSqlite(db.file, (raw) => raw.pragma("user_version", { simple: true }))).to.equal(FLEET_SCHEMA);
    expect([deviceId, other.id, other.silent].map((id) => db.devices.get(id)!.safeMode)).to.deep.equal([true, false, false]);
    expect(withSqlite(db.file, (raw) => raw.prepare(`SELECT id FROM devices WHERE safe_mode = 1`).pluck().all())).to.deep.equal([deviceId.toLowerCase()]);
    expect(
      withSqlite(db.file, (raw) => raw.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'devices_in_safe_mode'`).pluck().get()),
    ).to.equal("devices_in_safe_mode");
    // And the next report moves it as usual.
    db.reports.take(deviceId, 3, 12, body(false));
    expect(db.devices.get(deviceId)!.safeMode).to.equal(false);
  });
});
