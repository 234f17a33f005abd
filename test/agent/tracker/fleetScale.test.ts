import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { keccak256, toUtf8Bytes } from "ethers";
import { FleetStore } from "../../../agent/tracker/store";
import { withSqlite } from "../../helpers/sqliteFile";

const component = keccak256(toUtf8Bytes("acme.bootloader")).toLowerCase();
const release = (n: number) => "0x" + n.toString(16).padStart(64, "0");
const id = (n: number) => keccak256(toUtf8Bytes(`scale device ${n}`)).toLowerCase();
const body = (v: number) => ({ installed: [{ component, version: String(v), releaseId: release(v) }], lastResult: null });

describe("agent/tracker/fleetDatabase at fleet scale: per-configuration counts kept by the database (issue 5)", () => {
  let dir: string;
  let db: FleetStore;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "ota-fleetscale-"));
    db = new FleetStore(path.join(dir, "fleet.db"));
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What the counts must be: counted from the devices themselves. */
  const counted = () =>
    withSqlite(db.file, (raw) => {
      const active = new Map(
        raw.prepare(`SELECT config_id, COUNT(*) FROM devices WHERE config_id IS NOT NULL AND standing = 'active' GROUP BY config_id`).raw().all() as [
          number,
          number,
        ][],
      );
      const all = raw.prepare(`SELECT DISTINCT config_id FROM devices WHERE config_id IS NOT NULL ORDER BY 1`).pluck().all() as number[];
      return { active, all };
    });
  const expectConsistent = () => {
    const { active, all } = counted();
    expect(db.configs.activeCounts()).to.deep.equal(active);
    expect(
      db.configs
        .all()
        .map((c) => c.id)
        .sort((a, b) => a - b),
    ).to.deep.equal(all);
    for (const configId of all) {
      const ids = [...db.configs.activeDevicesIn([configId])].sort();
      expect(ids).to.deep.equal(
        withSqlite(
          db.file,
          (raw) => raw.prepare(`SELECT id FROM devices WHERE config_id = ? AND standing = 'active' ORDER BY id`).pluck().all(configId) as string[],
        ),
      );
    }
  };

  it("devicesPerConfig, configs and activeDevicesIn follow reports, standing, re-enrolment and removal", () => {
    for (let n = 0; n < 6; n++)
      db.devices.upsert({ id: id(n), publicKey: "0x02" + "11".repeat(32), hardwareClass: 1, network: "n", region: "r", standing: "active" });
    expect(db.configs.activeCounts()).to.deep.equal(new Map());
    expect(db.configs.all()).to.deep.equal([]);
    // Reports put devices into configurations and move them between them.
    for (let n = 0; n < 6; n++) db.reports.take(id(n), 1, 10, body(n % 2));
    expectConsistent();
    expect([...db.configs.activeCounts().values()]).to.deep.equal([3, 3]);
    db.reports.take(id(0), 2, 11, body(1));
    db.reports.take(id(1), 2, 11, body(7)); // a new configuration
    expectConsistent();
    // A heartbeat that runs what it ran keeps its configuration and its installed rows; a change rewrites them.
    const installedOf = (n: number) => db.devices.installed(id(n)).map((i) => [i.component, i.version, i.releaseId]);
    db.reports.take(id(1), 3, 12, body(7));
    expect(installedOf(1)).to.deep.equal([[component, 7n, release(7)]]);
    db.reports.take(id(1), 4, 13, { installed: [...body(7).installed, { component: release(99), version: "3", releaseId: release(3) }], lastResult: null });
    expect(installedOf(1)).to.have.deep.members([
      [component, 7n, release(7)],
      [release(99), 3n, release(3)],
    ]);
    expect(db.configs.get(db.devices.get(id(1))!.configId!)!.installed).to.have.length(2);
    db.reports.take(id(1), 5, 14, body(7));
    expect(installedOf(1)).to.deep.equal([[component, 7n, release(7)]]);
    expectConsistent();
    // Standing: suspended devices leave the active count, not the configuration.
    db.devices.setStanding(id(2), "suspended");
    db.devices.setStanding(id(4), "suspended");
    expectConsistent();
    const cfg = db.devices.get(id(2))!.configId!;
    expect(db.configs.activeCounts().has(cfg)).to.equal(false);
    expect(db.configs.all().map((c) => c.id)).to.include(cfg);
    db.devices.setStanding(id(2), "active");
    // Re-enrolment with another hardware class moves the device to another configuration.
    db.devices.upsert({ id: id(3), publicKey: "0x02" + "22".repeat(32), hardwareClass: 2, network: "n", region: "r", standing: "active" });
    expectConsistent();
    // Removal (a reorganised enrolment) takes the device out of the counts.
    db.devices.delete(id(5));
    db.devices.delete(id(4));
    expectConsistent();
  });

  it("a database from before the counts gets them from its devices when opened", () => {
    for (let n = 0; n < 5; n++)
      db.devices.upsert({
        id: id(n),
        publicKey: "0x02" + "11".repeat(32),
        hardwareClass: 1,
        network: "n",
        region: "r",
        standing: n === 4 ? "suspended" : "active",
      });
    for (let n = 0; n < 5; n++) db.reports.take(id(n), 1, 10, body(n % 3));
    const expected = counted();
    // Back to schema 3: no counts, no triggers, no partial index (and nothing of the later migrations).
    db.close();
    withSqlite(path.join(dir, "fleet.db"), (raw) => {
      raw.exec(
        `DROP TRIGGER devices_counted_insert; DROP TRIGGER devices_counted_delete; DROP TRIGGER devices_counted_update; DROP INDEX devices_active_by_config; DROP TABLE config_devices; DROP TABLE policy_evidence;`,
      );
      raw.exec(`DROP INDEX devices_reported; ALTER TABLE devices DROP COLUMN last_release; ALTER TABLE devices DROP COLUMN last_report_at;
      DROP TABLE release_failures; DROP TABLE status_anchors; DROP TABLE status_anchor_records;`);
      raw.exec(`DROP INDEX devices_in_safe_mode; ALTER TABLE devices DROP COLUMN safe_mode;`);
      raw.exec(`DROP INDEX devices_by_kind; ALTER TABLE devices DROP COLUMN last_kind; ALTER TABLE devices DROP COLUMN blocked_since;`);
      raw.pragma("user_version = 3");
    });
    db = new FleetStore(path.join(dir, "fleet.db"));
    expect(db.configs.activeCounts()).to.deep.equal(expected.active);
    expectConsistent();
  });
});
