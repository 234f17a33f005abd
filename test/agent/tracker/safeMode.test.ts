import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ZeroHash, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { makeDevice, serverFixture, trackerBeside, writeImage, deviceAgentOptions } from "../../helpers/serverFixture";
import { DeviceAgent, type DeviceAgentOptions } from "../../../agent/consumer/deviceAgent";
import { FleetStore, type ReportBody } from "../../../agent/tracker/store";
import { FleetPlanner } from "../../../agent/tracker/fleetPlanner";
import { FleetViews } from "../../../agent/tracker/fleetViews";
import { statusRecordOf } from "../../../agent/tracker/statusRecords";
import { STATUS_OUTCOME } from "../../../agent/crypto/statusTree";
import { withSqlite } from "../../helpers/sqliteFile";

describe("agent/tracker: devices in safe mode are listed safe-mode, never up to date (CAP-11.1-b, CAP-11.2-a)", function () {
  this.timeout(180_000);

  describe("a real device agent reporting to a real tracker module", () => {
    let f: Awaited<ReturnType<typeof serverFixture>>;
    let t: Awaited<ReturnType<typeof trackerBeside>>;

    before(async () => {
      f = await serverFixture();
      t = await trackerBeside(f, "safe-mode tracker");
    });
    after(async () => {
      await t?.stop();
      await f?.close();
    });

    it("CAP-11.1-b CAP-11.2-a: a device whose boot state is torn reports safe mode and is listed safe-mode (not up to date), counted and listed; after a person's manual install and its next report it is no longer", async () => {
      const dev = makeDevice("tracker safe-mode device", 1);
      const id = dev.credential.record.id.toLowerCase();
      await f.fleet.connect(f.admin).enrolDevice(dev.credential.record);
      const v1 = await f.release(
        {
          component: "acme.bootloader",
          version: "1.0.0",
          file: writeImage(f.dir, "safe-boot-1.0.0.bin", 90 * 1024 + 7, 7),
          hardware: ["acme-board-rev-a"],
          depends: [],
        },
        { grant: [dev] },
      );
      await t.tracker.stream.pollOnce(); // the tracker knows the device and the release
      const options: DeviceAgentOptions = deviceAgentOptions(f, dev, "safe-mode-device", { tracker: t.deviceTracker });
      const views = t.tracker.views;
      const listed = (status: "safe-mode" | "up-to-date") => views.devices({ status, limit: 1000 }).devices.map((d) => d.id);

      // Healthy: it installs the release and is up to date.
      const healthy = await DeviceAgent.open(options);
      expect((await healthy.considerRelease(v1.releaseId, "new-release")).outcome).to.equal("confirmed");
      await healthy.settled();
      expect(views.device(id)!.device).to.deep.include({ statuses: ["up-to-date"], safeMode: false });
      expect(listed("up-to-date")).to.include(id);
      const before = views.summary();

      // The boot state is torn: at its next start the device runs in safe mode and says so in its report.
      writeFileSync(path.join(options.dataDir, "slots", "boot-state.json"), "{ torn");
      const agent = await DeviceAgent.open(options); // reports at start
      await agent.settled();
      expect(agent.safeMode).to.equal(true);
      const seen = views.device(id)!;
      expect(seen.device.safeMode).to.equal(true);
      expect(seen.device.statuses).to.include("safe-mode").and.not.include("up-to-date");
      expect(seen.device.installed, "in safe mode the device lists nothing installed").to.deep.equal([]);
      expect(seen.plan.steps, "nothing is planned for what is unknown: a person must act").to.deep.equal([]);
      expect((seen.reports[0].body as { safeMode: boolean }).safeMode).to.equal(true);
      expect(t.tracker.store.devices.get(id)!.safeMode).to.equal(true);

      // Counted, overall and in its network, and listed by status; no longer counted up to date.
      const during = views.summary();
      expect(during.counts.safeMode).to.equal(before.counts.safeMode + 1);
      expect(during.counts.upToDate).to.equal(before.counts.upToDate - 1);
      const network = (s: typeof during) => s.byNetwork.find((n) => n.network === "factory-floor")!;
      expect(network(during).safeMode).to.equal(network(before).safeMode + 1);
      expect(listed("safe-mode")).to.deep.equal([id]);
      expect(listed("up-to-date")).not.to.include(id);
      // The same through the HTTP API, which takes the new status as a filter.
      const res = await fetch(new URL("/v1/fleet/devices?status=safe-mode", t.http.url));
      expect(res.status).to.equal(200);
      const body = (await res.json()) as { total: number; devices: { id: string; statuses: string[]; safeMode: boolean }[] };
      expect(body.total).to.equal(1);
      expect(body.devices[0]).to.deep.include({ id, safeMode: true });
      const summary = (await (await fetch(new URL("/v1/fleet/summary", t.http.url))).json()) as { counts: { safeMode: number } };
      expect(summary.counts.safeMode).to.equal(during.counts.safeMode);

      // A heartbeat in safe mode changes nothing.
      await agent.report();
      await agent.settled();
      expect(views.device(id)!.device.statuses).to.include("safe-mode");

      // An administrator's decision for it is held back: nothing is sent to a device in safe mode.
      t.tracker.store.decisions.decide({
        deviceId: id,
        releaseId: v1.releaseId,
        component: v1.ledger.record.component,
        reason: "requested",
        origin: "request:test",
        at: Date.now(),
      });
      expect(t.tracker.pendingFor(t.tracker.store.devices.get(id)!)).to.deep.equal([]);

      // A person installs the release by hand (full verification), which ends safe mode; the report that follows clears the status.
      expect(await agent.manualInstall(v1.releaseId, { file: v1.artifactFile })).to.include({ outcome: "confirmed", code: "OK" });
      expect(agent.safeMode).to.equal(false);
      await agent.report();
      await agent.settled();
      const after = views.device(id)!.device;
      expect(after).to.deep.include({ statuses: ["up-to-date"], safeMode: false });
      expect(after.installed.map((i) => i.releaseId)).to.deep.equal([v1.releaseId.toLowerCase()]);
      expect(listed("safe-mode")).to.deep.equal([]);
      expect(views.summary().counts).to.deep.include({ safeMode: before.counts.safeMode, upToDate: before.counts.upToDate });
    });
  });

  describe("statuses, counts and lists over the fleet database", () => {
    const component = keccak256(toUtf8Bytes("acme.bootloader")).toLowerCase();
    const release = "0x" + "12".repeat(32);
    const idOf = (label: string) => keccak256(toUtf8Bytes(`safe-mode views ${label}`)).toLowerCase();
    const labels = ["ok", "safe", "safe-silent", "safe-failed", "safe-suspended", "left-safe-mode"] as const;
    let dir: string;
    let db: FleetStore;
    const now = 1_000_000;
    let views: FleetViews;

    before(() => {
      dir = mkdtempSync(path.join(tmpdir(), "ota-safemode-"));
      db = new FleetStore(path.join(dir, "fleet.db"));
      views = new FleetViews(db, new FleetPlanner(db), 60_000, () => now);
      for (const [i, label] of labels.entries()) {
        db.devices.upsert({
          id: idOf(label),
          publicKey: "0x02" + "11".repeat(32),
          hardwareClass: 1,
          network: encodeBytes32String(i % 2 ? "plant-1" : "plant-2"),
          region: "r",
          standing: "active",
        });
      }
      const running: ReportBody = { installed: [{ component, version: "1", releaseId: release }], lastResult: null, safeMode: false };
      const safe: ReportBody = { installed: [], lastResult: null, safeMode: true };
      db.reports.take(idOf("ok"), 1, now, running);
      db.reports.take(idOf("safe"), 1, now, safe);
      db.reports.take(idOf("safe-silent"), 1, now - 120_000, safe); // not heard from within the liveness window
      db.reports.take(idOf("safe-failed"), 1, now, { ...safe, lastResult: { releaseId: release, outcome: "rolled-back", code: "HEALTH_CHECK_FAILED" } });
      db.reports.take(idOf("safe-suspended"), 1, now, safe);
      db.devices.setStanding(idOf("safe-suspended"), "suspended");
      db.reports.take(idOf("left-safe-mode"), 1, now, safe);
      db.reports.take(idOf("left-safe-mode"), 2, now, running); // its latest report counts, not an earlier one
    });
    after(() => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("CAP-11.1-b CAP-11.2-a: safe-mode joins failed or unreachable, never up-to-date; suspended stays a suspended device's only status", () => {
      const statuses = Object.fromEntries(labels.map((l) => [l, views.device(idOf(l))!.device.statuses]));
      expect(statuses).to.deep.equal({
        ok: ["up-to-date"],
        safe: ["safe-mode"],
        "safe-silent": ["safe-mode", "unreachable"],
        "safe-failed": ["failed", "safe-mode"],
        "safe-suspended": ["suspended"],
        "left-safe-mode": ["up-to-date"],
      });
      expect(views.device(idOf("safe"))!.device.safeMode).to.equal(true);
      expect(views.device(idOf("left-safe-mode"))!.device.safeMode).to.equal(false);
    });

    it("CAP-11.1-b CAP-11.2-a: the summary counts them (overall and per network) and each status lists exactly the devices that carry it", () => {
      const s = views.summary();
      expect(s.counts).to.deep.equal({ upToDate: 2, outdated: 0, vulnerable: 0, failed: 1, blocked: 0, refused: 0, safeMode: 3, unreachable: 1, suspended: 1 });
      const byNetwork = Object.fromEntries(s.byNetwork.map((n) => [n.network, n]));
      // plant-2: ok, safe-silent, safe-suspended; plant-1: safe, safe-failed, left-safe-mode.
      expect(byNetwork["plant-1"]).to.deep.include({ total: 3, safeMode: 2, upToDate: 1, failed: 1 });
      expect(byNetwork["plant-2"]).to.deep.include({ total: 3, safeMode: 1, upToDate: 1, unreachable: 1 });
      for (const status of ["up-to-date", "failed", "safe-mode", "unreachable", "suspended"] as const) {
        const want = labels
          .filter((l) => views.device(idOf(l))!.device.statuses.includes(status))
          .map(idOf)
          .sort();
        const got = views.devices({ status, limit: 1000 });
        expect(
          got.devices.map((d) => d.id),
          status,
        ).to.deep.equal(want);
        expect(got.total, status).to.equal(want.length);
      }
      expect(views.devices({ status: "safe-mode", network: "plant-2" }).devices.map((d) => d.id)).to.deep.equal([idOf("safe-silent")]);
    });

    it("CAP-11.1-b CAP-11.2-a: a device that enters safe mode is anchored with no result: its status record claims nothing installed", () => {
      const id = idOf("anchored");
      db.devices.upsert({
        id,
        publicKey: "0x02" + "11".repeat(32),
        hardwareClass: 1,
        network: encodeBytes32String("plant-3"),
        region: "r",
        standing: "active",
      });
      db.reports.take(id, 1, now, {
        installed: [{ component, version: "1", releaseId: release }],
        lastResult: { releaseId: release, outcome: "confirmed", code: "OK" },
      });
      const row = () =>
        withSqlite(db.file, (raw) =>
          raw
            .prepare(
              `SELECT id, last_counter AS lastCounter, last_report_at AS lastReportAt, last_outcome AS lastOutcome, last_code AS lastCode, last_release AS lastRelease, NULL AS releaseVersion FROM devices WHERE id = ?`,
            )
            .get(id),
        ) as Parameters<typeof statusRecordOf>[0];
      expect(statusRecordOf(row())).to.include({ outcome: STATUS_OUTCOME.installed, releaseId: release });
      // Its boot state was torn: the safe-mode report has no result and lists nothing, and the record follows it.
      db.reports.take(id, 2, now + 1000, { installed: [], lastResult: null, safeMode: true });
      expect(statusRecordOf(row())).to.deep.include({ outcome: STATUS_OUTCOME.none, releaseId: ZeroHash, version: 0n, reportCounter: 2n });
      db.devices.delete(id);
    });

    it("CAP-11.2-a: the devices in safe mode are read from their own index, not by scanning the fleet", () => {
      const plan = withSqlite(
        db.file,
        (raw) =>
          raw.prepare(`EXPLAIN QUERY PLAN SELECT * FROM devices WHERE standing = 'active' AND safe_mode = 1 ORDER BY id LIMIT 50`).all() as {
            detail: string;
          }[],
      );
      expect(plan.map((p) => p.detail).join("\n")).to.include("devices_in_safe_mode");
    });
  });
});
