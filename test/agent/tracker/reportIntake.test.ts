import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import { FleetStore } from "../../../agent/tracker/store";
import { ReportIntake, takeSealedReport, takeSealedReports, type BatchedReport } from "../../../agent/tracker/reportIntake";
import { AuthenticationError, InputError } from "../../../agent/core/errors";
import { sealMessage, type Envelope } from "../../../agent/crypto/sealedMessage";
import { REPORT_KIND, type StatusReport } from "../../../agent/core/statusReport";
import { expectCode } from "../../helpers/expectCode";

const tracker = new Wallet(keccak256(toUtf8Bytes("intake tracker")));
const moduleId = keccak256(toUtf8Bytes("intake module"));
const me = { id: moduleId, privateKey: tracker.privateKey };
const component = keccak256(toUtf8Bytes("acme.bootloader"));
const releaseId = "0x" + "34".repeat(32);
const devices = ["a", "b", "c"].map((n) => ({ id: keccak256(toUtf8Bytes(`intake device ${n}`)), key: new Wallet(keccak256(toUtf8Bytes(`intake key ${n}`))) }));
const [a, b, c] = devices;

function report(
  deviceId: string,
  counter: number,
  installed: StatusReport["installed"] = [{ component, version: "4294967296", releaseId, slot: "a" }],
): StatusReport {
  return { deviceId, counter, installed, lastResult: null, needs: [], declined: [], safeMode: false };
}
const seal = (d: { id: string; key: Wallet }, body: StatusReport, key = d.key) =>
  sealMessage(
    { kind: REPORT_KIND, from: d.id, to: moduleId, issuedAt: Date.now(), body },
    { kind: "device", privateKey: key.privateKey },
    tracker.signingKey.compressedPublicKey,
  );
const codeOf = (r: BatchedReport) => (r.ok ? "ok" : ((r.error as { code?: string }).code ?? r.error.name));

describe("agent/tracker/reportIntake: several sealed reports per durable commit (PROC-5, issue 5)", () => {
  let dir: string;
  let db: FleetStore;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "ota-intake-"));
    db = new FleetStore(path.join(dir, "fleet.db"));
    for (const d of devices)
      db.devices.upsert({ id: d.id, publicKey: d.key.signingKey.compressedPublicKey, hardwareClass: 1, network: "n", region: "r", standing: "active" });
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("applies the single intake's checks to each report, in order, and keeps the ones taken after a reopen", async () => {
    const a1 = await seal(a, report(a.id, 1));
    const stranger = { id: keccak256(toUtf8Bytes("not enrolled")), key: Wallet.createRandom() as unknown as Wallet };
    db.devices.setStanding(c.id, "suspended");
    const batch: Envelope[] = [
      a1,
      await seal(b, report(b.id, 7)),
      a1, // the same report again, within the batch: a replay
      await seal(a, report(a.id, 2)), // a newer one of the same device: taken after the first
      await seal(b, report(b.id, 8), a.key), // signed by another device's key
      await seal(stranger, report(stranger.id, 1)),
      await seal(c, report(c.id, 1)), // suspended
      { ...a1, sealed: "0x01" + "00".repeat(80) }, // does not open
      await seal(b, report(a.id, 9)), // names another device
    ];
    const results = takeSealedReports(db, batch, me, 1234);
    expect(results.map(codeOf)).to.deep.equal([
      "ok",
      "ok",
      "REPORT_REPLAYED",
      "ok",
      "REPORT_SIGNATURE",
      "REPORT_UNKNOWN_DEVICE",
      "REPORT_DEVICE_NOT_ACTIVE",
      "MESSAGE_FORMAT",
      "REPORT_MALFORMED",
    ]);
    // A taken report comes back as its device signed it, to forward upstream.
    const first = results[0] as Extract<BatchedReport, { ok: true }>;
    expect(first.report.message.body.counter).to.equal(1);
    expect(first.report.signature).to.match(/^0x[0-9a-f]{130}$/);

    db.close();
    db = new FleetStore(path.join(dir, "fleet.db"));
    expect(db.devices.get(a.id)).to.include({ lastCounter: 2, lastSeen: 1234, upstream: moduleId });
    expect(db.devices.get(b.id)).to.include({ lastCounter: 7 });
    expect(db.devices.get(c.id)).to.include({ lastCounter: 0 });
    expect(db.reports.of(a.id).map((r) => r.counter)).to.deep.equal([2, 1]);
    expect(db.reports.of(b.id).map((r) => r.counter)).to.deep.equal([7]);
    // The batch is as good as single intakes: what it took is now a replay there too.
    await expectCode((async () => takeSealedReport(db, await seal(b, report(b.id, 7)), me, 2000))(), "REPORT_REPLAYED");
  });

  it("a report that fails half-way through its writes undoes only its own writes", async () => {
    // The same component twice passes the report's shape check but breaks the installed table's key
    // after the report row is written: that report fails, the batch goes on.
    const twice: StatusReport["installed"] = [
      { component, version: "4294967296", releaseId, slot: "a" },
      { component, version: "4294967297", releaseId, slot: "b" },
    ];
    const results = takeSealedReports(db, [await seal(a, report(a.id, 1)), await seal(b, report(b.id, 1, twice)), await seal(c, report(c.id, 1))], me, 10);
    expect(results.map((r) => r.ok)).to.deep.equal([true, false, true]);
    expect((results[1] as { error: Error }).error.message).to.match(/UNIQUE/);
    expect(db.devices.get(b.id)).to.include({ lastCounter: 0, lastSeen: null, configId: null });
    expect(db.reports.of(b.id)).to.deep.equal([]);
    expect(db.devices.installed(b.id)).to.deep.equal([]);
    expect(db.devices.get(a.id)!.lastCounter).to.equal(1);
    expect(db.devices.get(c.id)!.lastCounter).to.equal(1);
    expect(db.devices.installed(c.id)).to.have.length(1);
    // The same report taken alone fails the same way.
    let single: unknown;
    try {
      takeSealedReport(db, await seal(b, report(b.id, 2, twice)), me, 11);
    } catch (err) {
      single = err;
    }
    expect(String(single)).to.match(/UNIQUE/);
  });

  for (const workers of [0, 2]) {
    it(`ReportIntake (${workers} worker threads): concurrent reports settle as single intakes would, each once stored`, async function () {
      this.timeout(60_000);
      const intake = new ReportIntake(db, me, () => 4321, { workers, maxBatch: 3 });
      try {
        await intake.start();
        const a1 = await seal(a, report(a.id, 1));
        const envelopes = [
          a1,
          await seal(b, report(b.id, 1)),
          a1,
          await seal(c, report(c.id, 1), b.key),
          { ...a1, sealed: "0x01" + "00".repeat(80) },
          { ...a1, v: 2 as 1 },
          await seal(a, report(a.id, 2)),
        ];
        // A second connection sees what the intake acknowledged: it was committed before the promise settled.
        const reader = new FleetStore(path.join(dir, "fleet.db"));
        const settled = await Promise.all(
          envelopes.map((e) =>
            intake.take(e).then(
              (r) => ({ ok: r.message.body.counter, stored: reader.devices.get(r.message.from)!.lastCounter >= r.message.body.counter }),
              (err: Error & { code?: string }) => ({
                code: err.code,
                kind: err instanceof AuthenticationError ? "auth" : err instanceof InputError ? "input" : "other",
              }),
            ),
          ),
        );
        reader.close();
        expect(settled).to.deep.equal([
          { ok: 1, stored: true },
          { ok: 1, stored: true },
          { code: "REPORT_REPLAYED", kind: "auth" },
          { code: "REPORT_SIGNATURE", kind: "auth" },
          { code: "MESSAGE_FORMAT", kind: "auth" },
          { code: "MESSAGE_MALFORMED", kind: "input" },
          { ok: 2, stored: true },
        ]);
        expect(db.devices.get(a.id)).to.include({ lastCounter: 2, lastSeen: 4321 });
        expect(db.reports.of(c.id)).to.deep.equal([]);
        // Later reports go on being taken, one at a time too, and those handed in the moment one settles.
        const [c5, c6, b7] = [await seal(c, report(c.id, 5)), await seal(c, report(c.id, 6)), await seal(b, report(b.id, 7))];
        expect((await intake.take(c5)).message.body.counter).to.equal(5);
        const after = await Promise.all([intake.take(c6), intake.take(b7)]);
        expect(after.map((r) => r.message.body.counter)).to.deep.equal([6, 7]);
      } finally {
        await intake.close();
      }
      await expectCode(intake.take(await seal(c, report(c.id, 8))), "INTAKE_CLOSED");
    });
  }

  it("an empty batch takes nothing", () => {
    expect(takeSealedReports(db, [], me, 1)).to.deep.equal([]);
  });
});
