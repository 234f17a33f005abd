import { expect } from "chai";
import { World } from "./harness/world";
import type { CliProcess } from "./harness/cliProcess";
import type { DeviceHandle } from "./harness/device";
import type { Published } from "./harness/author";
import { expectOutcome, expectRunning, expectUntouched, shipInstalled } from "./harness/outcome";
import { signDeviceRequest } from "../../agent/crypto/requestSignature";
import { encodeDeviceCredential } from "../../agent/crypto/deviceCredential";
import { encodeInstalled } from "../../agent/core/installedContext";

const BOOT = "acme.bootloader";
const SENSOR = "acme.sensor-fw";

/**
 * What the ledger records decides what a device installs (APP-II-2, REQ-10d, CAP-11.3-c): a
 * release for other hardware, one whose dependency the device does not meet, one revoked while
 * the device was downloading it, one from a provider barred before the device fetched it. Real
 * `server start` and `device run` processes; the ledger changes are sent by the test as the
 * administrator, auditor and author would.
 */
describe("e2e: ledger records a device must refuse", function () {
  this.timeout(120_000);
  let world: World;
  let d: DeviceHandle;
  let device: CliProcess;
  let boot: Published;
  let sensor: Published;

  before(async () => {
    world = await World.start();
    [d] = await Promise.all([world.device("records-1", 1), world.startServer()]);
    d.writeConfig({ components: [BOOT, SENSOR] });
    device = await world.startDevice(d);
    boot = await shipInstalled(world, device, BOOT, "1.0.0", [d.id]);
    sensor = await shipInstalled(world, device, SENSOR, "1.0.0", [d.id], { depends: [`${BOOT} >=1.0.0 <2.0.0`] });
  });
  after(async () => {
    await world?.stop();
  });
  afterEach(() => world.firmwareProxy.clearFaults());

  it("APP-II-2 CAP-11.1-a-v: refuses a release that does not support its hardware (HARDWARE_NOT_SUPPORTED), without asking the server for it", async () => {
    const other = await world.author.publish(BOOT, "1.1.0", { hardware: ["rev-b"] });
    await world.author.submit(world.serverUrl, other);
    await expectOutcome(world, device, other.releaseId, { outcome: "rejected", code: "HARDWARE_NOT_SUPPORTED" });
    await expectUntouched(d, BOOT, boot, other);
    expect(world.firmwareProxy.requests(new RegExp(other.releaseId)), "nothing of it was fetched").to.deep.equal([]);
  });

  it("APP-II-2: refuses a release whose dependency it does not meet (DEPENDENCY_OUT_OF_RANGE), keeps it as needed, and takes it once the dependency is installed", async () => {
    // sensor-fw 2.0.0 needs bootloader 2.x, which exists (for rev-b only) but this rev-a device does not run.
    await world.author.ship(world.serverUrl, BOOT, "2.0.0", [], { hardware: ["rev-b"] });
    const needs2 = await world.author.ship(world.serverUrl, SENSOR, "2.0.0", [d.id], { depends: [`${BOOT} >=2.0.0 <3.0.0`] });
    await expectOutcome(world, device, needs2.releaseId, { outcome: "rejected", code: "DEPENDENCY_OUT_OF_RANGE" });
    await expectUntouched(d, SENSOR, sensor, needs2);
    await expectUntouched(d, BOOT, boot);
    // The dependency arrives for rev-a: the device takes it, then the sensor release it kept as
    // needed (a refusal another release lifts, retried on the device's own timer), in that order.
    const from = device.lines.length;
    const boot21 = await world.author.ship(world.serverUrl, BOOT, "2.1.0", [d.id]);
    await expectOutcome(world, device, boot21.releaseId, { outcome: "confirmed", code: "OK" }, { from });
    const taken = device.lines.findIndex((l, i) => i >= from && l.includes(`release ${boot21.releaseId}: confirmed`));
    await device.waitForLine(new RegExp(`release ${needs2.releaseId}: confirmed \\(OK\\)`), { from: taken, timeoutMs: 40_000, context: world.context });
    // Until then, every try was refused for the dependency only.
    for (const t of device.lines.slice(from).filter((l) => l.includes(`release ${needs2.releaseId}: rejected`)))
      expect(t).to.match(/\(DEPENDENCY_OUT_OF_RANGE\)$/);
    await expectRunning(d, BOOT, boot21);
    await expectRunning(d, SENSOR, needs2);
    boot = boot21;
    sensor = needs2;
  });

  it("CAP-11.3-c REQ-10d-ii: a release revoked between the download and the install is not installed (RELEASE_REVOKED), nothing written to a slot", async () => {
    const r = await world.author.publish(BOOT, "2.2.0");
    await world.author.submit(world.serverUrl, r);
    // The server hands out the key; the proxy holds that answer while an auditor revokes the release.
    const held = world.firmwareProxy.hold(new RegExp(`/v1/releases/${r.releaseId}/key`));
    await world.author.grant(world.serverUrl, r, [d.id]);
    await held.reached;
    expect(await d.partialDownload(r.releaseId), "the artifact is downloaded and verified").to.be.above(0);
    await world.ledger.send(world.ledger.registry.revokeRelease(r.releaseId, "malware found in 2.2.0"));
    held.release();
    await expectOutcome(world, device, r.releaseId, { outcome: "rejected", code: "RELEASE_REVOKED" });
    await expectUntouched(d, BOOT, boot, r);
    // The server withdrew it too (its revocation follower): it serves it to no one now.
    await world.waitFor("the server to withdraw the revoked release", async () => {
      const list = (await (await fetch(`${world.serverUrl}/v1/releases`)).json()) as { releaseId: string; state: string }[];
      return list.find((x) => x.releaseId.toLowerCase() === r.releaseId && x.state === "withdrawn");
    });
  });

  it("CAP-11.3-c CAP-11.3-d: a release of a provider barred after publication is refused (PROVIDER_BARRED), and the device stays on its image", async () => {
    const r = await world.author.publish(BOOT, "2.3.0");
    await world.author.submit(world.serverUrl, r);
    // The manifest answer is held until the provider is barred.
    const held = world.firmwareProxy.hold(new RegExp(`/v1/releases/${r.releaseId}/manifest`));
    await world.author.grant(world.serverUrl, r, [d.id]);
    await held.reached;
    await world.ledger.send(world.ledger.registry.barProvider(1, "signed malware"));
    held.release();
    await expectOutcome(world, device, r.releaseId, { outcome: "rejected", code: "PROVIDER_BARRED" });
    await expectUntouched(d, BOOT, boot, r);
    // The device refused it on its own re-check after the download. The server refuses the
    // release too, from its follower's next poll on (a yes it remembered ends with the
    // ProviderBarred event: docs/server.md, ADR 0012).
    const keyPath = `/v1/releases/${r.releaseId}/key`;
    await world.waitFor("the server to refuse the barred provider's release", async () => {
      const headers = signDeviceRequest(d.key.privateKey, d.id, encodeDeviceCredential({ record: d.record, batchId: 0, proof: [] }), {
        audience: world.serverUrl,
        method: "GET",
        path: keyPath,
        context: encodeInstalled([]),
      });
      const res = await fetch(new URL(keyPath, world.serverUrl), { headers });
      return res.status === 403 && ((await res.json()) as { error: { code: string } }).error.code === "PROVIDER_BARRED";
    });
  });
});
