import { expect } from "chai";
import { ethers } from "hardhat";
import { takeSnapshot, type SnapshotRestorer } from "@nomicfoundation/hardhat-network-helpers";
import { deviceAgentOptions, makeDevice, serverFixture, trackerBeside, writeImage } from "../../helpers/serverFixture";
import { DeviceAgent } from "../../../agent/consumer/deviceAgent";
import { componentId } from "../../../agent/core/release";
import { encodeVersion } from "../../../agent/core/version";
import { signAccountRequest } from "../../../agent/crypto/requestSignature";
import type { DeviceIdentity } from "../../../agent/consumer/downloadRelease";
import type { StatusReport } from "../../../agent/core/statusReport";
import type { DeviceView } from "../../../agent/tracker/fleetViews";
import type { ReleaseBundles } from "../../../typechain-types";

const BOOT = componentId("acme.bootloader").toLowerCase();
const SENSOR = componentId("acme.sensor-fw").toLowerCase();

/**
 * A release bundle requested by an administrator, end to end in one process (docs/adr/0019):
 * the in-process chain with ReleaseBundles beside the registry, the firmware server, a server
 * tracker module that mirrors bundles, and device agents that report to it and act on its notices.
 */
describe("PROC-2 end to end: an administrator's update request for a release bundle reaches a device through the tracker (docs/adr/0019)", function () {
  this.timeout(180_000);

  let f: Awaited<ReturnType<typeof serverFixture>>;
  let t: Awaited<ReturnType<typeof trackerBeside>>;
  let bundles: ReleaseBundles;
  let snapshot: SnapshotRestorer;
  let unhealthy = new Set<string>();
  const devices = { first: makeDevice("bundle request: first", 1), second: makeDevice("bundle request: second", 1) };
  const idOf = (d: DeviceIdentity) => d.credential.record.id.toLowerCase();

  let seed = 900;
  const release = (component: string, version: string, depends: string[] = []) =>
    f.release(
      {
        component,
        version,
        file: writeImage(f.dir, `req-${component}-${version}.bin`, 90 * 1024 + seed, seed++),
        hardware: ["acme-board-rev-a"],
        depends,
      },
      { grant: Object.values(devices) },
    );
  type Rel = Awaited<ReturnType<typeof release>>;
  const ordered = (members: Rel[]) => [...members].sort((a, b) => (BigInt(a.record.component) < BigInt(b.record.component) ? -1 : 1));
  async function bundleOf(name: string, version: string, members: Rel[]): Promise<string> {
    await (
      await bundles.connect(f.acmeAuthor).createBundle(
        name,
        encodeVersion(version),
        ordered(members).map((m) => m.record),
      )
    ).wait();
    const id = (await bundles.bundleId(1, name, encodeVersion(version))).toLowerCase();
    await t.tracker.stream.pollOnce(); // the tracker mirrors BundleCreated
    expect(t.tracker.store.catalogue.bundle(id)).to.deep.include({ name });
    return id;
  }

  const signed = async (method: string, pathname: string, body?: unknown) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const headers = await signAccountRequest(f.admin, { audience: new URL(t.http.url).origin, method, path: pathname, body: text ?? "" });
    const res = await fetch(new URL(pathname, t.http.url), {
      method,
      headers: { ...(text === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: text,
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: { code: string } } };
  };
  const api = async <T>(pathname: string): Promise<T> => {
    const res = await fetch(new URL(pathname, t.http.url));
    expect(res.status, pathname).to.equal(200);
    return (await res.json()) as T;
  };
  type Detail = {
    device: DeviceView;
    reports: { body: StatusReport }[];
    decisions: { releaseId: string; releaseName: string | null }[];
    deliveries: { releaseId: string; releaseName: string | null }[];
  };
  const detail = (d: DeviceIdentity) => api<Detail>(`/v1/fleet/devices/${idOf(d)}`);
  type Rollout = { releaseId: string; bundle?: { name: string; version: string }; installed: number; failed: number; decided: number };
  const rollouts = async () => (await api<{ rollouts: Rollout[] }>("/v1/rollouts")).rollouts;
  const heartbeat = async (a: DeviceAgent) => {
    await a.report();
    await a.settled();
  };
  const running = (a: DeviceAgent) =>
    Object.fromEntries(
      [BOOT, SENSOR].map((c) => {
        const boot = a.slots.snapshot().components[c];
        return [c, boot?.slots[boot.active]?.releaseId];
      }),
    );

  let agents: { first: DeviceAgent; second: DeviceAgent };

  before(async () => {
    snapshot = await takeSnapshot();
    f = await serverFixture();
    bundles = (await ethers.deployContract("ReleaseBundles", [await f.registry.getAddress()])) as unknown as ReleaseBundles;
    for (const d of Object.values(devices)) await f.fleet.connect(f.admin).enrolDevice(d.credential.record);
    t = await trackerBeside(f, "bundle request tracker", {
      chain: { provider: ethers.provider, registry: f.registry, fleet: f.fleet, bundles, domain: f.domain, fromBlock: 0 },
    });
    const boot1 = await release("acme.bootloader", "1.0.0");
    const sensor1 = await release("acme.sensor-fw", "1.0.0", ["acme.bootloader ^1.0.0"]);
    const open = async (d: DeviceIdentity, name: string) => {
      const a = await DeviceAgent.open(
        deviceAgentOptions(f, d, name, {
          chain: { provider: ethers.provider, registry: f.registry, fleet: f.fleet, bundles, domain: f.domain, fromBlock: 0 },
          components: [BOOT, SENSOR],
          tracker: t.deviceTracker,
          healthCheck: async (_dir, image) => !unhealthy.has(image.releaseId.toLowerCase()),
        }),
      );
      // The factory images.
      for (const r of [boot1, sensor1]) expect(await a.considerRelease(r.releaseId, "factory")).to.include({ outcome: "confirmed" });
      await heartbeat(a);
      return a;
    };
    agents = { first: await open(devices.first, "bundle-first"), second: await open(devices.second, "bundle-second") };
    for (const d of Object.values(devices)) expect((await detail(d)).device.statuses).to.deep.equal(["up-to-date"]);
  });
  after(async () => {
    for (const a of Object.values(agents ?? {})) await a.close();
    await t?.stop();
    await f?.close();
    await snapshot?.restore();
  });
  afterEach(() => (unhealthy = new Set()));

  it("PROC-2 APP-II-2 REQ-10c-ii CAP-11.2-c: an update request names a 2-component bundle; the device takes it as one notice, installs both members in one transaction, and the tracker lists it up to date with the bundle by name", async () => {
    const boot2 = await release("acme.bootloader", "2.0.0");
    const sensor2 = await release("acme.sensor-fw", "2.0.0", ["acme.bootloader ^2.0.0"]);
    const kit = await bundleOf("sensor-kit", "2.0.0", [boot2, sensor2]);

    // Bad requests: both a release and a bundle; an unknown bundle.
    expect((await signed("POST", "/v1/update-requests", { releaseId: boot2.releaseId, bundleId: kit, devices: [idOf(devices.first)] })).status).to.equal(400);
    const unknown = await signed("POST", "/v1/update-requests", { bundleId: "0x" + "ab".repeat(32), devices: [idOf(devices.first)] });
    expect(unknown.status).to.equal(400);
    expect(unknown.body.error?.code).to.equal("BUNDLE_UNKNOWN");

    const requested = await signed("POST", "/v1/update-requests", { bundleId: kit, devices: [idOf(devices.first)] });
    expect(requested.status, JSON.stringify(requested.body)).to.equal(200);
    expect(requested.body).to.deep.include({ releaseId: kit, bundle: { id: kit, name: "sensor-kit", version: "2.0.0" }, decided: 1, refused: [] });

    // One step: the notice names the bundle; the plan does not hand out its members one by one meanwhile.
    const steps = t.tracker.pendingFor(t.tracker.store.devices.get(idOf(devices.first))!);
    expect(steps.map((s) => s.releaseId)).to.deep.equal([kit]);

    let trials = 0;
    const trial = agents.first.slots.beginBundleTrial.bind(agents.first.slots);
    agents.first.slots.beginBundleTrial = (...args) => {
      trials++;
      return trial(...args);
    };
    await heartbeat(agents.first);
    expect(trials).to.equal(1); // one A/B transaction for both members
    expect(running(agents.first)).to.deep.equal({ [BOOT]: boot2.releaseId.toLowerCase(), [SENSOR]: sensor2.releaseId.toLowerCase() });

    const d = await detail(devices.first);
    expect(d.reports[0].body.lastResult).to.include({ releaseId: kit, outcome: "confirmed" });
    expect(d.device.statuses).to.deep.equal(["up-to-date"]);
    expect(d.device.installed.map((i) => i.releaseId).sort()).to.deep.equal([boot2.releaseId.toLowerCase(), sensor2.releaseId.toLowerCase()].sort());
    expect(d.device.lastReleaseName).to.equal("bundle sensor-kit 2.0.0");
    expect(d.decisions).to.deep.include({ ...d.decisions.find((x) => x.releaseId === kit)!, releaseName: "bundle sensor-kit 2.0.0" });
    expect(d.deliveries.map((x) => [x.releaseId, x.releaseName])).to.deep.include([kit, "bundle sensor-kit 2.0.0"]);
    expect(t.tracker.pendingFor(t.tracker.store.devices.get(idOf(devices.first))!)).to.deep.equal([]);

    const r = (await rollouts()).find((x) => x.releaseId === kit);
    expect(r).to.deep.include({ bundle: r!.bundle, installed: 1, failed: 0 });
    expect(r!.bundle).to.deep.include({ name: "sensor-kit", version: "2.0.0" });
    const progress = await api<{ counts: { installed: number }; bundle: { name: string } }>(`/v1/update-requests/${String(requested.body.requestId)}`);
    expect(progress.counts.installed).to.equal(1);
    expect(progress.bundle.name).to.equal("sensor-kit");

    // Already running every member: a second request refuses the device with the ledger's checkBundle answer.
    const again = await signed("POST", "/v1/update-requests", { bundleId: kit, devices: [idOf(devices.first)] });
    expect(again.body).to.deep.include({ decided: 0 });
    expect((again.body.refused as { code: string }[])[0].code).to.equal("NOT_NEWER_THAN_INSTALLED");
  });

  it("REQ-10c-ii CAP-11.1-a-iii CAP-11.2-c: the second member's health check fails; both members roll back and the tracker lists the device failed once, for the bundle (not for each member)", async () => {
    const boot3 = await release("acme.bootloader", "3.0.0");
    const sensor3 = await release("acme.sensor-fw", "3.0.0", ["acme.bootloader ^3.0.0"]);
    const kit = await bundleOf("sensor-kit", "3.0.0", [boot3, sensor3]);
    const before = running(agents.second);
    unhealthy = new Set([ordered([boot3, sensor3])[1].releaseId.toLowerCase()]); // the second member in the bundle's order

    const requested = await signed("POST", "/v1/update-requests", { bundleId: kit, devices: [idOf(devices.second)] });
    expect(requested.body).to.deep.include({ decided: 1, refused: [] });
    await heartbeat(agents.second);
    expect(running(agents.second)).to.deep.equal(before);

    const d = await detail(devices.second);
    expect(d.reports[0].body.lastResult).to.include({ releaseId: kit, outcome: "rolled-back" });
    expect(d.device).to.include({ lastKind: "failed", lastRelease: kit, lastReleaseName: "bundle sensor-kit 3.0.0" });
    expect(d.device.statuses).to.include("failed");
    // Counted once, under the bundle: no member is charged (a member's staged rollout does not halt on it).
    const totals = t.tracker.store.rollouts.failureTotals();
    expect(totals.get(kit)).to.equal(1);
    expect(totals.get(boot3.releaseId.toLowerCase())).to.equal(undefined);
    expect(totals.get(sensor3.releaseId.toLowerCase())).to.equal(undefined);
    const all = await rollouts();
    expect(all.find((x) => x.releaseId === kit)).to.deep.include({ failed: 1, installed: 0 });
    for (const m of [boot3, sensor3]) expect(all.find((x) => x.releaseId === m.releaseId.toLowerCase())?.failed ?? 0).to.equal(0);
    const progress = await api<{ counts: { failed: number; installed: number } }>(`/v1/update-requests/${String(requested.body.requestId)}`);
    expect(progress.counts).to.deep.include({ failed: 1, installed: 0 });
  });
});
