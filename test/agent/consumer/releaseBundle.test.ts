import { expect } from "chai";
import path from "node:path";
import { ethers } from "hardhat";
import { serverFixture, writeImage } from "../../helpers/serverFixture";
import { DeviceAgent, type DeviceAgentOptions } from "../../../agent/consumer/deviceAgent";
import type { DeviceIdentity } from "../../../agent/consumer/downloadRelease";
import { componentId } from "../../../agent/core/release";
import type { ReleaseBundles } from "../../../typechain-types";
import { encodeVersion } from "../../../agent/core/version";

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
const BOOT = componentId("acme.bootloader");
const SENSOR = componentId("acme.sensor-fw");

/**
 * A release bundle end to end in one process (docs/adr/0019): a real chain with ReleaseBundles
 * beside the registry, a real firmware server and store, device agents with A/B slots.
 */
describe("agent/consumer: a release bundle installed as one A/B transaction (issue 19, item 9)", function () {
  this.timeout(180_000);
  let f: Fixture;
  let bundles: ReleaseBundles;
  let n = 0;
  let unhealthy = new Set<string>(); // release ids whose health check fails

  before(async () => {
    f = await serverFixture();
    bundles = (await ethers.deployContract("ReleaseBundles", [await f.registry.getAddress()])) as unknown as ReleaseBundles;
  });
  after(async () => f?.close());
  afterEach(() => {
    f.store.fault = { kind: "none" };
    unhealthy = new Set();
  });

  function agentFor(device: DeviceIdentity, extra: Partial<DeviceAgentOptions> = {}) {
    n += 1;
    return DeviceAgent.open({
      dataDir: path.join(f.dir, `bundle-device-${n}`),
      device,
      serverUrl: f.server.url,
      chain: { provider: ethers.provider, registry: f.registry, fleet: f.fleet, bundles, domain: f.domain, fromBlock: 0 },
      components: [BOOT, SENSOR],
      policy: { maxLedgerAgeSeconds: 10 * 365 * 24 * 3600 },
      healthCheck: async (_dir, image) => !unhealthy.has(image.releaseId),
      download: { startJitterMs: 0, timeoutMs: 2000, attempts: 1, backoffMs: 10 },
      blockedRetry: { baseMs: 1, maxMs: 1 },
      ...extra,
    });
  }
  let seed = 500;
  const release = (component: string, version: string, extra: { depends?: string[]; hardware?: string[] } = {}) =>
    f.release(
      {
        component,
        version,
        file: writeImage(f.dir, `${component}-${version}.bin`, 120 * 1024 + seed, seed++),
        hardware: extra.hardware ?? ["acme-board-rev-a"],
        depends: extra.depends ?? [],
      },
      { grant: [f.devices.a, f.devices.b] },
    );
  type Rel = Awaited<ReturnType<typeof release>>;
  /** Creates a bundle of `members` as the acme author would and returns its id. */
  async function bundleOf(name: string, version: string, members: Rel[]): Promise<string> {
    const ordered = [...members].sort((a, b) => (BigInt(a.record.component) < BigInt(b.record.component) ? -1 : 1));
    await (
      await bundles.connect(f.acmeAuthor).createBundle(
        name,
        encodeVersion(version),
        ordered.map((m) => m.record),
      )
    ).wait();
    return (await bundles.bundleId(1, name, encodeVersion(version))).toLowerCase();
  }
  const running = (a: DeviceAgent) =>
    Object.fromEntries(
      [BOOT, SENSOR].map((c) => {
        const boot = a.slots.snapshot().components[c];
        return [c, boot && { releaseId: boot.slots[boot.active]?.releaseId, floor: boot.floor }];
      }),
    );

  let agent: DeviceAgent;
  let boot2: Rel;
  let sensor2: Rel;

  it("APP-II-2 REQ-10c-ii REQ-10d-i: a 2-component bundle whose member depends on the other's new version is installed together (one trial), where the member alone is refused", async () => {
    const boot1 = await release("acme.bootloader", "1.0.0");
    const sensor1 = await release("acme.sensor-fw", "1.0.0", { depends: ["acme.bootloader ^1.0.0"] });
    agent = await agentFor(f.devices.a);
    expect(await agent.considerRelease(boot1.releaseId, "new-release")).to.include({ outcome: "confirmed" });
    expect(await agent.considerRelease(sensor1.releaseId, "new-release")).to.include({ outcome: "confirmed" });

    boot2 = await release("acme.bootloader", "2.0.0");
    sensor2 = await release("acme.sensor-fw", "2.0.0", { depends: ["acme.bootloader ^2.0.0"] });
    const kit = await bundleOf("sensor-kit", "2.0.0", [boot2, sensor2]);
    const before = running(agent);
    // Alone, the sensor firmware 2.0.0 needs a bootloader the device does not run (APP-II-2).
    expect(await agent.considerRelease(sensor2.releaseId, "new-release")).to.include({ outcome: "rejected", code: "DEPENDENCY_OUT_OF_RANGE" });
    expect(running(agent)).to.deep.equal(before);

    expect(await agent.considerBundle(kit, "new-release")).to.deep.equal({ releaseId: kit, outcome: "confirmed", code: "OK" });
    expect(running(agent)).to.deep.equal({
      [BOOT]: { releaseId: boot2.releaseId.toLowerCase(), floor: boot2.record.version.toString() },
      [SENSOR]: { releaseId: sensor2.releaseId.toLowerCase(), floor: sensor2.record.version.toString() },
    });
    const report = await agent.statusReport();
    expect(report.lastResult).to.include({ releaseId: kit, outcome: "confirmed", code: "OK" });
    // Installed whole: offered again, nothing to do.
    expect(await agent.considerBundle(kit, "replayed")).to.include({ outcome: "rejected", code: "NOT_NEWER_THAN_INSTALLED" });
  });

  it("REQ-10c-ii CAP-11.1-a-iii: the second member's failing health check rolls both members back; floors stay; the bundle is not retried blindly", async () => {
    const boot3 = await release("acme.bootloader", "3.0.0");
    const sensor3 = await release("acme.sensor-fw", "3.0.0", { depends: ["acme.bootloader ^3.0.0"] });
    const kit = await bundleOf("sensor-kit", "3.0.0", [boot3, sensor3]);
    const before = running(agent);
    unhealthy = new Set([[boot3, sensor3].sort((a, b) => (BigInt(a.record.component) < BigInt(b.record.component) ? -1 : 1))[1].releaseId.toLowerCase()]);
    expect(await agent.considerBundle(kit, "new-release")).to.deep.equal({ releaseId: kit, outcome: "rolled-back", code: "HEALTH_CHECK_FAILED" });
    expect(running(agent)).to.deep.equal(before);
    expect((await agent.statusReport()).lastResult).to.include({ releaseId: kit, outcome: "rolled-back" });
    unhealthy = new Set();
    expect(await agent.considerBundle(kit, "new-release")).to.include({ outcome: "declined", code: "PREVIOUSLY_FAILED" });
    expect(running(agent)).to.deep.equal(before);
  });

  it("APP-II-2: a bundle that does not fit the device's hardware, or whose member's dependency outside the bundle the device does not meet, installs nothing", async () => {
    const gateway = await agentFor(f.devices.gateway); // hardware class 3: no acme release supports it
    const kit = (await bundles.bundleId(1, "sensor-kit", encodeVersion("2.0.0"))).toLowerCase();
    expect(await gateway.considerBundle(kit, "new-release")).to.deep.equal({ releaseId: kit, outcome: "rejected", code: "HARDWARE_NOT_SUPPORTED" });
    expect(gateway.slots.snapshot().components).to.deep.equal({});

    // Radio firmware 1.0.0 needs sensor firmware ^9.0.0, outside its bundle with the bootloader.
    const sensor9 = await release("acme.sensor-fw", "9.0.0", { depends: ["acme.bootloader ^3.0.0"] });
    const boot4 = await release("acme.bootloader", "4.0.0");
    const radio = await release("acme.radio-fw", "1.0.0", { depends: ["acme.sensor-fw ^9.0.0"] });
    const radioKit = await bundleOf("radio-kit", "1.0.0", [boot4, radio]);
    const fresh = await agentFor(f.devices.b);
    expect(await fresh.considerRelease(boot2.releaseId, "new-release")).to.include({ outcome: "confirmed" });
    expect(await fresh.considerRelease(sensor2.releaseId, "new-release")).to.include({ outcome: "confirmed" });
    const before = fresh.slots.snapshot();
    expect(await fresh.considerBundle(radioKit, "new-release")).to.deep.equal({
      releaseId: radioKit,
      outcome: "rejected",
      code: "DEPENDENCY_VERSION_OUT_OF_RANGE",
    });
    expect(fresh.slots.snapshot().components).to.deep.equal(before.components);
    expect(sensor9.releaseId).to.be.a("string");
  });

  it("ADR 0009 REQ-10c-ii: a delivery fault on a member is a blocked delivery of the bundle (nothing booted, not failed), and the bundle installs once it clears", async () => {
    const boot5 = await release("acme.bootloader", "5.0.0");
    const sensor10 = await release("acme.sensor-fw", "10.0.0", { depends: ["acme.bootloader ^5.0.0"] });
    const kit = await bundleOf("sensor-kit", "5.0.0", [boot5, sensor10]);
    const before = running(agent);
    f.store.fault = { kind: "flip", at: 5000 }; // a mirror that flips a byte of every artifact
    expect(await agent.considerBundle(kit, "new-release")).to.include({ releaseId: kit, outcome: "blocked", code: "CHUNK_MISMATCH" });
    expect(running(agent)).to.deep.equal(before);
    expect(agent.slots.snapshot().failedReleases).to.not.have.property(kit);
    f.store.fault = { kind: "none" };
    const retried = await agent.retryPending();
    expect(retried).to.deep.include({ releaseId: kit, outcome: "confirmed", code: "OK" });
    expect(running(agent)[SENSOR]!.releaseId).to.equal(sensor10.releaseId.toLowerCase());
  });

  it("REQ-10c-ii CAP-11.1-a-iii: a bundle's blocked delivery is retried as the bundle after the agent restarts mid-retry (the retry list remembers it is a bundle)", async () => {
    const boot6 = await release("acme.bootloader", "6.0.0");
    const sensor11 = await release("acme.sensor-fw", "11.0.0", { depends: ["acme.bootloader ^6.0.0"] });
    const kit = await bundleOf("sensor-kit", "6.0.0", [boot6, sensor11]);
    const dataDir = path.join(f.dir, "bundle-restart");
    const first = await agentFor(f.devices.a, { dataDir });
    f.store.fault = { kind: "flip", at: 5000 };
    expect(await first.considerBundle(kit, "requested")).to.include({ releaseId: kit, outcome: "blocked" });
    await first.close(); // a power cut between two retries
    f.store.fault = { kind: "none" };

    const again = await agentFor(f.devices.a, { dataDir });
    const retried = await again.retryPending();
    expect(retried).to.deep.include({ releaseId: kit, outcome: "confirmed", code: "OK" });
    expect(retried.map((r) => r.code)).to.not.include("RELEASE_UNKNOWN");
    expect(running(again)).to.deep.equal({
      [BOOT]: { releaseId: boot6.releaseId.toLowerCase(), floor: boot6.record.version.toString() },
      [SENSOR]: { releaseId: sensor11.releaseId.toLowerCase(), floor: sensor11.record.version.toString() },
    });
    expect(await again.retryPending()).to.deep.equal([]); // done: no longer on the retry list
    await again.close();
  });
});
