import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import { FleetDatabase } from "../../../agent/tracker/fleetDatabase";
import { takeSealedReport } from "../../../agent/tracker/reportIntake";
import { sealMessage } from "../../../agent/crypto/sealedMessage";
import { REPORT_KIND, type StatusReport } from "../../../agent/core/statusReport";
import { expectCode } from "../../helpers/expectCode";

const device = new Wallet(keccak256(toUtf8Bytes("fleet db device")));
const deviceId = keccak256(toUtf8Bytes("fleet-db-1"));
const tracker = new Wallet(keccak256(toUtf8Bytes("fleet db tracker")));
const moduleId = keccak256(toUtf8Bytes("tracker module"));
const component = keccak256(toUtf8Bytes("acme.bootloader"));
const releaseId = "0x" + "12".repeat(32);

function report(counter: number, code = "OK"): StatusReport {
  return { deviceId, counter, installed: [{ component, version: "4294967296", releaseId, slot: "a" }], lastResult: { releaseId, component, outcome: "confirmed", code, at: 1 }, needs: [], declined: [], safeMode: false };
}
const seal = (r: StatusReport, key = device) => sealMessage({ kind: REPORT_KIND, from: deviceId, to: moduleId, issuedAt: Date.now(), body: r }, { kind: "device", privateKey: key.privateKey }, tracker.signingKey.compressedPublicKey);

describe("agent/tracker: the fleet database and report intake (PROC-5, CAP-11.2-a, CAP-11.2-b)", () => {
  let dir: string;
  let db: FleetDatabase;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "ota-fleetdb-"));
    db = new FleetDatabase(path.join(dir, "fleet.db"));
    db.upsertDevice({ id: deviceId, publicKey: device.signingKey.compressedPublicKey, hardwareClass: 1, network: "n", region: "r", standing: "active" });
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("PROC-5: takes a report signed by the enrolled key, stores what the device runs, and refuses a replay", async () => {
    const r = await seal(report(5));
    takeSealedReport(db, r, { id: moduleId, privateKey: tracker.privateKey }, 1000);
    expect(db.installed(deviceId)).to.deep.equal([{ deviceId: deviceId.toLowerCase(), component: component.toLowerCase(), version: 4294967296n, releaseId }]);
    expect(db.device(deviceId)).to.include({ lastCounter: 5, lastSeen: 1000, lastOutcome: "confirmed", lastCode: "OK" });
    await expectCode((async () => takeSealedReport(db, r, { id: moduleId, privateKey: tracker.privateKey }, 2000))(), "REPORT_REPLAYED");
    await expectCode((async () => takeSealedReport(db, await seal(report(4)), { id: moduleId, privateKey: tracker.privateKey }, 2000))(), "REPORT_REPLAYED");
  });

  it("refuses a report signed by another key, from an unknown or suspended device", async () => {
    await expectCode((async () => takeSealedReport(db, await seal(report(6), Wallet.createRandom() as unknown as Wallet), { id: moduleId, privateKey: tracker.privateKey }, 1))(), "REPORT_SIGNATURE");
    db.setStanding(deviceId, "suspended");
    await expectCode((async () => takeSealedReport(db, await seal(report(7)), { id: moduleId, privateKey: tracker.privateKey }, 1))(), "REPORT_DEVICE_NOT_ACTIVE");
    expect(db.installed(deviceId)).to.deep.equal([]);
  });

  it("CAP-11.2-a CAP-11.2-b: lists devices running flagged releases, failed ones and unreachable ones, and survives a reopen", async () => {
    const record = { provider: 1, component, version: 4294967296n, fileHash: "0x" + "01".repeat(32), fileLink: "bafy", fileName: "f.bin", fileSize: 10n, merkleRoot: "0x" + "02".repeat(32), hardware: [1], dependencies: [] };
    db.upsertRelease({ id: releaseId, component, provider: 1, version: 4294967296n, hardware: [1], status: "active", blockHash: "0xaa", logIndex: 0, record, publishedAt: 3 });
    takeSealedReport(db, await seal(report(1, "HEALTH_CHECK_FAILED")), { id: moduleId, privateKey: tracker.privateKey }, 10);
    db.setReleaseStatus(releaseId, "vulnerable");
    expect(db.runningFlagged()).to.deep.equal([{ deviceId: deviceId.toLowerCase(), releaseId, status: "vulnerable" }]);
    expect(db.unreachable(5)).to.have.length(0);
    expect(db.unreachable(11).map((d) => d.id)).to.deep.equal([deviceId.toLowerCase()]);
    db.close();
    db = new FleetDatabase(path.join(dir, "fleet.db"));
    expect(db.releases()[0]).to.include({ status: "vulnerable", publishedAt: 3 });
    expect(db.releases()[0].record).to.deep.equal(record);
    db.dropReleasesOfBlocks(["0xaa"]);
    expect(db.releases()).to.have.length(0);
  });
});
