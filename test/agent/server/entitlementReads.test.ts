import { expect } from "chai";
import path from "node:path";
import { makeDevice, serverFixture, writeImage } from "../../helpers/serverFixture";
import { downloadArtifact, type DeviceIdentity } from "../../../agent/consumer/downloadRelease";
import { encodeDeviceCredential } from "../../../agent/crypto/deviceCredential";
import { signDeviceRequest } from "../../../agent/crypto/requestSignature";
import { encodeInstalled } from "../../../agent/core/installedContext";
import { buildDeviceBatch } from "../../../agent/crypto/deviceTree";

type Fixture = Awaited<ReturnType<typeof serverFixture>>;

describe("agent/server: entitlement asked once per device and release, devices asking together in one read (issue 17)", function () {
  this.timeout(120_000);
  let f: Fixture;
  let boot: Awaited<ReturnType<Fixture["release"]>>;
  const fleet: DeviceIdentity[] = Array.from({ length: 12 }, (_, i) => makeDevice(`entitled-${i}`, 1));

  before(async () => {
    f = await serverFixture();
    for (const d of fleet) await f.fleet.connect(f.admin).enrolDevice(d.credential.record);
    const image = writeImage(f.dir, "bootloader.bin", 96 * 1024 + 5, 7);
    boot = await f.release(
      { component: "acme.bootloader", version: "1.0.0", file: image, hardware: ["acme-board-rev-a"], depends: [] },
      { grant: [f.devices.a, ...fleet] },
    );
  });
  after(async () => f?.close());

  const download = (device: DeviceIdentity, name: string) =>
    downloadArtifact({
      serverUrl: f.server.url,
      device,
      installed: [],
      release: { id: boot.releaseId, record: boot.record },
      artifactFile: path.join(f.dir, `${name}.otae`),
    });
  const keyRequest = async (device: DeviceIdentity) => {
    const pathname = `/v1/releases/${boot.releaseId.toLowerCase()}/key`;
    const headers = signDeviceRequest(device.privateKey, device.credential.record.id, encodeDeviceCredential(device.credential), {
      audience: f.server.url,
      method: "GET",
      path: pathname,
      context: encodeInstalled([]),
    });
    const res = await fetch(new URL(pathname, f.server.url), { headers });
    return { status: res.status, code: res.ok ? "OK" : ((await res.json()) as { error: { code: string } }).error.code };
  };

  it("CAP-11.3-b: each device's manifest, artifact and key requests cost one question of the ledger between them", async () => {
    const stats = f.gate.entitlements.stats;
    const before = { ...stats };
    const done = await Promise.all(fleet.map((d, i) => download(d, `together-${i}`)));
    expect(done.every((d) => d.wrappedKey.length > 0)).to.equal(true);
    expect(stats.questions - before.questions).to.equal(fleet.length); // one per device, not one per request
    expect(stats.reads - before.reads).to.be.at.most(fleet.length);
    expect(stats.remembered - before.remembered).to.be.at.least(2 * fleet.length); // the device's two later requests
  });

  it("questions asked within the window are one read of the ledger, each answered on its own (a suspended device among them)", async () => {
    f.gate.forgetEntitlements();
    const stats = f.gate.entitlements.stats;
    const before = { ...stats };
    const asking = [...fleet, f.devices.suspended, f.devices.stranger];
    const answers = await Promise.all(asking.map((d) => f.gate.entitlementFacts(boot.ledger, d.credential, [])));
    expect(stats.reads - before.reads).to.equal(1);
    expect(answers.map((a) => a.standing)).to.deep.equal([...fleet.map(() => "active"), "suspended", "unknown"]);
    expect(answers.every((a) => a.verdict.verdict === "INSTALLABLE")).to.equal(true);
  });

  it("the admission checks a batch device's proof against its batch's root, one read for the batch's devices arriving together; a forged proof is not enrolled, a withdrawn batch is withdrawn", async () => {
    const devices = Array.from({ length: 6 }, (_, i) => makeDevice(`batch-admission-${i}`, 1));
    const tree = buildDeviceBatch(devices.map((d) => d.credential.record));
    const receipt = await (await f.fleet.connect(f.admin).enrolDeviceBatch(tree.root, devices.length, "ipfs://records")).wait();
    const batchId = Number(f.fleet.interface.parseLog(receipt!.logs[0])!.args.batchId);
    const credentials = devices.map((d, i) => ({ record: d.credential.record, batchId, proof: tree.proofs[i] }));
    let reads = 0;
    const read = f.fleet.deviceBatch.bind(f.fleet);
    Object.assign(f.fleet, { deviceBatch: ((...args: Parameters<typeof read>) => (reads++, read(...args))) as typeof read });
    try {
      expect(await Promise.all(credentials.map((c) => f.gate.admitDevice(c)))).to.deep.equal(devices.map(() => "active"));
      expect(reads).to.equal(1);
      expect(await f.gate.admitDevice({ ...credentials[0], proof: tree.proofs[1] })).to.equal("unknown"); // another device's proof
      await (await f.fleet.connect(f.admin).revokeDeviceBatch(batchId, "keys leaked at the factory")).wait();
      f.gate.forgetEntitlements(); // what the follower does on DeviceBatchRevoked
      expect(await f.gate.admitDevice(credentials[2])).to.equal("revoked");
      expect(reads).to.equal(2);
    } finally {
      Object.assign(f.fleet, { deviceBatch: read });
    }
  });

  it("CAP-11.3-d: a suspension reaches the remembered answers (the server follows the event); a refusal is never remembered", async () => {
    const device = fleet[0];
    expect(await keyRequest(device)).to.deep.equal({ status: 200, code: "OK" }); // remembered from the download
    await (await f.fleet.connect(f.admin).suspendDevice(device.credential.record.id, "lost in transit")).wait();
    // The follower polls every 100 ms here: the remembered yes is forgotten with its next poll.
    let answer = await keyRequest(device);
    for (let i = 0; i < 50 && answer.code === "OK"; i++) {
      await new Promise((r) => setTimeout(r, 100));
      answer = await keyRequest(device);
    }
    expect(answer).to.deep.equal({ status: 403, code: "DEVICE_SUSPENDED" });
    // Reinstated: no event is needed, since a refusal is asked again on the next request.
    await (await f.fleet.connect(f.admin).reinstateDevice(device.credential.record.id)).wait();
    expect(await keyRequest(device)).to.deep.equal({ status: 200, code: "OK" });
  });

  it("CAP-11.3-c: a revocation reaches the remembered answers at once for the artifact (withdrawn) and the key", async () => {
    const device = fleet[1];
    expect(await keyRequest(device)).to.deep.equal({ status: 200, code: "OK" });
    await (await f.registry.connect(f.auditor).revokeRelease(boot.releaseId, "backdoor")).wait();
    let answer = await keyRequest(device);
    for (let i = 0; i < 50 && answer.code === "OK"; i++) {
      await new Promise((r) => setTimeout(r, 100));
      answer = await keyRequest(device);
    }
    expect(answer.code).to.equal("RELEASE_REVOKED");
  });
});
