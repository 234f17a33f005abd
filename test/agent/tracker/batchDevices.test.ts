import { expect } from "chai";
import { buildDeviceBatch } from "../../../agent/crypto/deviceTree";
import { BOOTLOADER, postReport, sealedReport, startTracker, testDevice, trackerChain, type TrackerChain } from "../../helpers/trackerFixture";

describe("agent/tracker: devices enrolled in Merkle batches introduce themselves with their proof (CAP-11.3-d, CAP-11.2-a)", function () {
  this.timeout(120_000);
  let t: TrackerChain;
  let running: Awaited<ReturnType<typeof startTracker>>;
  let server: Awaited<ReturnType<TrackerChain["registerModule"]>>;
  let boot: Awaited<ReturnType<TrackerChain["publish"]>>;
  const members = [testDevice("batch 1", 1, "plant-9"), testDevice("batch 2", 2, "plant-9"), testDevice("batch 3", 1, "plant-9")];
  const batch = buildDeviceBatch(members.map((m) => m.record));
  const credential = (i: number, proof = batch.proofs[i], batchId = 1) => ({ record: members[i].record, batchId, proof });
  const report = (i: number, c = credential(i)) =>
    sealedReport(members[i], { id: server.id, publicKey: server.publicKey }, [{ component: BOOTLOADER, release: boot }], null, undefined, c);

  before(async () => {
    t = await trackerChain();
    server = await t.registerModule("batch server");
    boot = await t.publish(BOOTLOADER, "1.0.0", [1, 2]);
    await t.send((o) => t.fleet.enrolDeviceBatch(batch.root, members.length, "bafy-records", o));
    running = await startTracker(t, server);
  });
  after(async () => {
    await running?.stop();
    await t?.c.stop();
  });

  it("takes a batch device's first report with its record and proof, and lists it", async () => {
    expect(running.tracker.store.devices.batch(1)).to.deep.equal({ root: batch.root.toLowerCase(), revoked: false });
    const res = await postReport(running.http.url, await report(0));
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    const d = running.tracker.views.device(members[0].record.id)!.device;
    expect(d).to.include({ standing: "active", network: "plant-9", hardwareClass: 1 });
    expect(d.statuses).to.deep.equal(["up-to-date"]);
  });

  it("refuses a proof that does not lead to the batch root, another batch, and another device's record", async () => {
    const wrongProof = await postReport(running.http.url, await report(1, credential(1, batch.proofs[0])));
    expect(wrongProof.body.error?.code).to.equal("REPORT_UNKNOWN_DEVICE");
    const wrongBatch = await postReport(running.http.url, await report(1, credential(1, batch.proofs[1], 2)));
    expect(wrongBatch.body.error?.code).to.equal("REPORT_UNKNOWN_DEVICE");
    const someoneElse = await postReport(running.http.url, await report(1, credential(2)));
    expect(someoneElse.body.error?.code).to.equal("REPORT_CREDENTIAL");
    expect(running.tracker.store.devices.get(members[1].record.id)).to.equal(undefined);
  });

  it("follows the ledger: a withdrawn record, then the whole batch withdrawn, stop its devices' reports", async () => {
    expect((await postReport(running.http.url, await report(1))).status).to.equal(200);
    await t.send((o) => t.fleet.revokeDeviceRecord(members[1].record, 1, batch.proofs[1], "key leaked", o));
    await running.tracker.stream.pollOnce();
    expect(running.tracker.store.devices.get(members[1].record.id)!.standing).to.equal("revoked");
    expect((await postReport(running.http.url, await report(1))).body.error?.code).to.equal("REPORT_DEVICE_NOT_ACTIVE");
    expect(running.tracker.store.devices.get(members[0].record.id)!.standing).to.equal("active");
    await t.send((o) => t.fleet.revokeDeviceBatch(1, "batch compromised", o));
    await running.tracker.stream.pollOnce();
    expect(running.tracker.store.devices.get(members[0].record.id)!.standing).to.equal("revoked");
    const late = await postReport(running.http.url, await report(2));
    expect(late.body.error?.code).to.equal("REPORT_DEVICE_NOT_ACTIVE"); // introduced, but its batch is withdrawn
  });
});
