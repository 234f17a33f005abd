import { expect } from "chai";
import { makeDevice, serverFixture, trackerBeside, writeImage, deviceAgentOptions } from "../../helpers/serverFixture";
import { TcpProxy } from "../../e2e/harness/tcpProxy";
import { DeviceAgent } from "../../../agent/consumer/deviceAgent";
import { componentId } from "../../../agent/core/release";
import path from "node:path";
import { keccak256, toUtf8Bytes } from "ethers";
import { ACME_SIGNER } from "../../helpers/registryFixture";
import { prepareRelease, publishPrepared } from "../../../agent/author/publishRelease";
import { uploadArtifact } from "../../../agent/author/uploadArtifact";
import { grantKeys } from "../../../agent/author/grantKeys";
import { computeReleaseId, signRelease } from "../../../agent/crypto/releaseSignature";

/**
 * A device reports only its last result. A release that really failed on it (its trial rolled
 * back) must reach the tracker even when the network dropped the report that carried it and a
 * blocked delivery came after: otherwise whoever blocks deliveries and the device's link to its
 * tracker hides real failures from the rollout's failure total (issue 15, ADR 0009).
 * Real parts: a firmware server and a tracker module on 127.0.0.1, a TCP proxy as the network
 * between the device and its tracker, the Hardhat network.
 */
describe("agent/tracker: a real failure is not hidden behind a later blocked delivery (issue 15 review, REQ-10c-i, CAP-11.1-a-i, APP-II-3)", function () {
  this.timeout(180_000);
  let f: Awaited<ReturnType<typeof serverFixture>>;
  let t: Awaited<ReturnType<typeof trackerBeside>>;
  let link: TcpProxy;

  before(async () => {
    f = await serverFixture();
    t = await trackerBeside(f, "unreported-failure tracker");
    link = await TcpProxy.start(Number(new URL(t.http.url).port));
  });
  after(async () => {
    await link?.close();
    await t?.stop();
    await f?.close();
  });

  it("review (issue 15): a rolled-back release whose report the network dropped is still reported failed (and counted) after a later blocked delivery of another release", async () => {
    const dev = makeDevice("unreported failure device", 1);
    const id = dev.credential.record.id.toLowerCase();
    await f.fleet.connect(f.admin).enrolDevice(dev.credential.record);
    const image = (name: string, seed: number) => writeImage(f.dir, `${name}.bin`, 80 * 1024 + seed, seed);
    const rel = (component: string, version: string, seed: number, grant = [dev]) =>
      f.release({ component, version, file: image(`${component}-${version}`, seed), hardware: ["acme-board-rev-a"], depends: [] }, { grant });
    const good = await rel("acme.bootloader", "1.0.0", 11);
    await t.tracker.stream.pollOnce();

    let healthy = true;
    const agent = await DeviceAgent.open(
      deviceAgentOptions(f, dev, "unreported-failure-device", {
        tracker: { ...t.deviceTracker, url: link.url },
        components: [componentId("acme.bootloader"), componentId("acme.sensor-fw")],
        healthCheck: async () => healthy,
      }),
    );
    expect(await agent.considerRelease(good.releaseId, "new-release")).to.include({ outcome: "confirmed" });
    await agent.settled();

    // The release really fails on the device, while the network drops its report.
    await link.cut();
    const bad = await rel("acme.bootloader", "1.1.0", 12);
    const ungranted = await rel("acme.sensor-fw", "1.0.0", 13, []); // no key granted: a blocked delivery (KEY_NOT_GRANTED)
    healthy = false;
    expect(await agent.considerRelease(bad.releaseId, "new-release")).to.include({ outcome: "rolled-back" });
    // Then a delivery is blocked (the report of that is dropped too, or not: the same).
    expect(await agent.considerRelease(ungranted.releaseId, "new-release")).to.include({ outcome: "blocked", code: "KEY_NOT_GRANTED" });
    await link.restore();
    await agent.report();
    await agent.settled();

    // The tracker learned of the failure: counted toward the rollout and not offered again.
    expect(t.tracker.store.rollouts.failureTotals().get(bad.releaseId.toLowerCase()), "the failure total of the release").to.equal(1);
    expect(t.tracker.store.devices.get(id)!.failedRelease).to.equal(bad.releaseId.toLowerCase());
    // And the next report lists the blocked delivery, as it is now.
    await agent.report();
    expect(t.tracker.store.devices.get(id)).to.deep.include({ lastKind: "blocked", failedRelease: bad.releaseId.toLowerCase() });
  });

  it("review (issue 15): once a failure (a hash mismatch, recorded by the slots and the attempt alike) has been reported, a later blocked delivery is listed blocked", async () => {
    const dev = makeDevice("reported failure device", 1);
    const id = dev.credential.record.id.toLowerCase();
    await f.fleet.connect(f.admin).enrolDevice(dev.credential.record);
    // An author key signs a record whose file hash is not its image's: it fails on the device after an intact delivery.
    const prepared = await prepareRelease(
      { registry: f.registry, domain: f.domain, sender: f.acmeAuthor, releaseSigner: ACME_SIGNER },
      { component: "acme.bootloader", version: "3.0.0", file: writeImage(f.dir, "reported-failure.bin", 90 * 1024, 21), hardware: ["1"], depends: [] },
      path.join(f.dir, "reported-failure"),
    );
    const record = { ...prepared.record, fileHash: keccak256(toUtf8Bytes("not this image")) };
    const forged = { ...prepared, record, releaseId: computeReleaseId(f.domain, record), signature: await signRelease(ACME_SIGNER, f.domain, record) };
    await publishPrepared({ registry: f.registry, sender: f.acmeAuthor, keys: f.keys }, forged);
    await uploadArtifact({ serverUrl: f.server.url, author: f.acmeAuthor }, forged.releaseId, prepared.artifactFile);
    await grantKeys({ registry: f.registry, fleet: f.fleet, domain: f.domain, author: f.acmeAuthor, keys: f.keys, serverUrl: f.server.url }, forged.releaseId, {
      deviceIds: [dev.credential.record.id],
    });
    const agent = await DeviceAgent.open(
      deviceAgentOptions(f, dev, "reported-failure-device", {
        tracker: t.deviceTracker,
        components: [componentId("acme.bootloader"), componentId("acme.sensor-fw")],
      }),
    );
    expect(await agent.considerRelease(forged.releaseId, "new-release")).to.include({ outcome: "failed", code: "FILE_HASH_MISMATCH" });
    await agent.settled();
    expect(t.tracker.store.devices.get(id)).to.deep.include({ lastKind: "failed", failedRelease: forged.releaseId.toLowerCase() });
    const ungranted = await f.release(
      {
        component: "acme.sensor-fw",
        version: "3.0.0",
        file: writeImage(f.dir, "reported-failure-sensor.bin", 80 * 1024, 22),
        hardware: ["acme-board-rev-a"],
        depends: [],
      },
      { grant: [] },
    );
    expect(await agent.considerRelease(ungranted.releaseId, "new-release")).to.include({ outcome: "blocked", code: "KEY_NOT_GRANTED" });
    await agent.settled();
    expect(t.tracker.store.devices.get(id)).to.deep.include({ lastKind: "blocked", failedRelease: forged.releaseId.toLowerCase() });
  });
});
