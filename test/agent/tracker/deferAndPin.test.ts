import { expect } from "chai";
import { ethers } from "hardhat";
import { takeSnapshot, time, type SnapshotRestorer } from "@nomicfoundation/hardhat-network-helpers";
import { keccak256, toUtf8Bytes } from "ethers";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { deviceAgentOptions, makeDevice, serverFixture, trackerBeside, writeImage } from "../../helpers/serverFixture";
import { DeviceAgent } from "../../../agent/consumer/deviceAgent";
import { loadDeviceConfig } from "../../../agent/consumer/deviceConfig";
import { nextWindowStart } from "../../../agent/core/devicePolicy";
import { componentId } from "../../../agent/core/release";
import { buildCohort } from "../../../agent/crypto/cohortTree";
import type { DeviceIdentity } from "../../../agent/consumer/downloadRelease";
import type { StatusReport } from "../../../agent/core/statusReport";
import type { DeviceView } from "../../../agent/tracker/fleetViews";
import type { StagedRollout } from "../../../typechain-types";

const BOOT = componentId("acme.bootloader").toLowerCase();
const HOUR = 3600;

/**
 * The device's own choices (X.1368 CAP-11.1-a-vi) end to end, through real parts: the in-process
 * chain with UpdatePolicies and a StagedRollout, the firmware server, a server tracker module that
 * posts failure totals to the rollout with its ledger account, and device agents whose policies come
 * from their device.json. An update window closed now is opened by moving the whole system's clock
 * (devices, tracker, server and chain) a couple of hours ahead, not by sleeping.
 */
describe("CAP-11.1-a-vi end to end: a device defers a release to its update window, or stays on its pinned version, through the tracker and a staged rollout", function () {
  this.timeout(120_000);

  // One clock for every part: the devices, the tracker and the firmware server read it; the chain is moved with it.
  let offsetMs = 0;
  const clock = () => Date.now() + offsetMs;

  let f: Awaited<ReturnType<typeof serverFixture>>;
  let t: Awaited<ReturnType<typeof trackerBeside>>;
  let snapshot: SnapshotRestorer;

  const devices = {
    pinned: makeDevice("choices: pinned", 1),
    waveA: makeDevice("choices: wave a", 1),
    waveB: makeDevice("choices: wave b", 1),
    windowed: makeDevice("choices: windowed", 1),
    anytime: makeDevice("choices: any time", 1),
  };
  const all = Object.values(devices);
  const idOf = (d: DeviceIdentity) => d.credential.record.id.toLowerCase();

  before(async () => {
    snapshot = await takeSnapshot();
    f = await serverFixture(undefined, { withPolicies: true, now: clock });
    for (const d of all) await f.fleet.connect(f.admin).enrolDevice(d.credential.record);
    // The tracker's operator account posts failure totals to staged rollouts (it owns the module on the FleetRegistry).
    await f.registry.connect(f.admin).grantRole(keccak256(toUtf8Bytes("TRACKER_ROLE")), f.tracker.address);
    t = await trackerBeside(f, "device choices tracker", { now: clock, ledgerAccount: f.tracker, failureReportMs: 3_600_000 });
  });
  after(async () => {
    offsetMs = 0;
    await t?.stop();
    await f?.close();
    await snapshot?.restore();
  });

  let seed = 70;
  const release = async (version: string) =>
    f.release(
      {
        component: "acme.bootloader",
        version,
        file: writeImage(f.dir, `choices-${version}.bin`, 70 * 1024 + seed, seed++),
        hardware: ["acme-board-rev-a"],
        depends: [],
      },
      { grant: all },
    );

  /** A device agent from its own device.json (policy, tracker, health check), on the fixture's chain and the shared clock. */
  async function deviceFrom(d: DeviceIdentity, name: string, policy: Record<string, unknown>): Promise<DeviceAgent> {
    const file = path.join(f.dir, `${name}.json`);
    const json = {
      privateKey: d.privateKey,
      credential: d.credential,
      components: ["acme.bootloader"],
      dataDir: `./${name}-data`,
      policy,
      healthCheck: "pass",
      tracker: t.deviceTracker,
      followLedger: false,
      startJitterMs: 0,
    };
    writeFileSync(file, JSON.stringify(json, null, 2));
    const c = await loadDeviceConfig(file);
    const options = deviceAgentOptions(f, { privateKey: c.privateKey, credential: c.credential }, name, {
      dataDir: c.dataDir,
      components: c.components,
      healthCheck: c.healthCheck,
      ledgerProofs: c.ledgerProofs,
      download: { startJitterMs: c.startJitterMs },
      clock,
    });
    // The factory image, installed at the factory by hand, before the device's own policy applies.
    const factory = await DeviceAgent.open(options);
    expect((await factory.manualInstall(v1.releaseId, { file: v1.artifactFile })).outcome).to.equal("confirmed");
    return DeviceAgent.open({ ...options, policy: c.policy, tracker: c.tracker });
  }

  const running = (a: DeviceAgent) => {
    const c = a.slots.snapshot().components[BOOT];
    return c.slots[c.active]!.releaseId.toLowerCase();
  };
  /** One heartbeat: the device reports, and acts on the notices in the answer. */
  const heartbeat = async (a: DeviceAgent) => {
    await a.report();
    await a.settled();
  };
  const api = async <T>(pathname: string): Promise<T> => {
    const res = await fetch(new URL(pathname, t.http.url));
    expect(res.status, pathname).to.equal(200);
    return (await res.json()) as T;
  };
  const listed = async (status: string) => (await api<{ devices: DeviceView[] }>(`/v1/fleet/devices?status=${status}`)).devices.map((d) => d.id);
  const detail = (d: DeviceIdentity) => api<{ device: DeviceView; reports: { body: StatusReport }[] }>(`/v1/fleet/devices/${idOf(d)}`);

  /** A staged rollout of `releaseId` alone, in one open wave of `wave`, halting at the first failure; the tracker holds the cohort proofs. */
  async function rolloutOf(releaseId: string, wave: DeviceIdentity[]): Promise<StagedRollout> {
    const rollout = (await ethers.deployContract("StagedRollout", [await f.registry.getAddress(), await f.fleet.getAddress()])) as unknown as StagedRollout;
    await f.policies!.connect(f.admin).attachPolicy(releaseId, await rollout.getAddress());
    const ids = wave.map(idOf);
    await rollout.connect(f.admin).createRollout(releaseId, [{ cohortRoot: buildCohort(ids).root, startsAt: await time.latest() }], 1);
    await t.tracker.stream.pollOnce();
    expect(await t.tracker.setRolloutCohorts(releaseId, [ids])).to.deep.include({ devices: ids.length });
    return rollout;
  }

  /** What the rollout counted: on the ledger after the tracker's failure round, and in the tracker's own rollout view. */
  async function expectNoFailureCounted(rollout: StagedRollout, releaseId: string, installed: number) {
    expect(await t.tracker.reportFailures()).to.deep.equal([]); // nothing to post
    const status = await rollout.rolloutStatus(releaseId);
    expect(status.failures).to.equal(0n);
    expect(status.state).to.equal(2n); // Open: not halted by a failure threshold of 1
    const view = (await api<{ rollouts: { releaseId: string; failed: number; blocked: number; installed: number }[] }>("/v1/rollouts")).rollouts.find(
      (r) => r.releaseId === releaseId.toLowerCase(),
    );
    expect(view).to.deep.include({ failed: 0, blocked: 0, installed });
  }

  let v1: Awaited<ReturnType<typeof release>>;
  let pinned: DeviceAgent, waveA: DeviceAgent, waveB: DeviceAgent, windowed: DeviceAgent, anytime: DeviceAgent;

  before(async () => {
    v1 = await release("1.0.0");
    // The update window: two hours from the current hour, one hour long, so it is closed now (in UTC, as device.json says it).
    const hour = Math.floor(clock() / 1000 / HOUR) % 24;
    const window = { startHourUtc: (hour + 2) % 24, endHourUtc: (hour + 3) % 24 };
    pinned = await deviceFrom(devices.pinned, "pinned", { maxLedgerAgeSeconds: HOUR, pins: { "acme.bootloader": "1.0.0" } });
    waveA = await deviceFrom(devices.waveA, "wave-a", { maxLedgerAgeSeconds: HOUR });
    waveB = await deviceFrom(devices.waveB, "wave-b", { maxLedgerAgeSeconds: HOUR });
    windowed = await deviceFrom(devices.windowed, "windowed", { maxLedgerAgeSeconds: HOUR, window });
    anytime = await deviceFrom(devices.anytime, "anytime", { maxLedgerAgeSeconds: HOUR });
  });

  it("CAP-11.1-a-vi APP-II-3: a pinned device stays on its pinned version while the rest of its staged-rollout wave moves to the new release; the tracker lists it refused (VERSION_PINNED), not failed nor blocked, and the wave's failure count stays 0", async () => {
    const v2 = await release("1.1.0");
    const rollout = await rolloutOf(v2.releaseId, [devices.pinned, devices.waveA, devices.waveB]);

    for (const a of [pinned, waveA, waveB]) await heartbeat(a);
    expect(running(waveA)).to.equal(v2.releaseId.toLowerCase());
    expect(running(waveB)).to.equal(v2.releaseId.toLowerCase());
    expect(running(pinned)).to.equal(v1.releaseId.toLowerCase());
    expect(pinned.slots.installed().find((i) => i.component.toLowerCase() === BOOT)?.version).to.equal(v1.ledger.record.version);

    // It was told of the release (its wave is open) and declined it by its pin: its tracker got the reason.
    expect(t.tracker.store.decisions.lastDelivery(idOf(devices.pinned), v2.releaseId)).to.not.equal(undefined);
    const { device, reports } = await detail(devices.pinned);
    expect(reports[0].body.declined).to.deep.include({ releaseId: v2.releaseId.toLowerCase(), code: "VERSION_PINNED" });
    expect(reports[0].body.lastResult).to.include({ releaseId: v2.releaseId.toLowerCase(), outcome: "declined", code: "VERSION_PINNED" });

    // The tracker: behind by its own choice, refused with its reason; not failed, not blocked; the others up to date.
    expect(device).to.include({ lastKind: "refused", lastCode: "VERSION_PINNED", lastRelease: v2.releaseId.toLowerCase() });
    expect(device.statuses).to.deep.equal(["outdated", "refused"]);
    expect(await listed("refused")).to.include(idOf(devices.pinned));
    expect(await listed("failed")).to.not.include(idOf(devices.pinned));
    expect(await listed("blocked")).to.not.include(idOf(devices.pinned));
    for (const d of [devices.waveA, devices.waveB]) expect((await detail(d)).device.statuses).to.deep.equal(["up-to-date"]);

    // A pin is not "not yet": nothing is retried, and the next heartbeat brings no new notice.
    expect(await pinned.retryPending()).to.deep.equal([]);
    const told = t.tracker.store.decisions.lastDelivery(idOf(devices.pinned), v2.releaseId);
    await heartbeat(pinned);
    expect(t.tracker.store.decisions.lastDelivery(idOf(devices.pinned), v2.releaseId)).to.deep.equal(told);
    expect(running(pinned)).to.equal(v1.releaseId.toLowerCase());

    await expectNoFailureCounted(rollout, v2.releaseId, 2);
  });

  it("CAP-11.1-a-vi APP-II-3: a device whose update window is closed defers a new release (reported as declined, DEFERRED_TO_WINDOW, not counted against the rollout) and installs it once the window opens", async () => {
    const v3 = await release("1.2.0");
    const rollout = await rolloutOf(v3.releaseId, [devices.windowed, devices.anytime]);

    await heartbeat(anytime);
    expect(running(anytime)).to.equal(v3.releaseId.toLowerCase());
    await heartbeat(windowed);
    expect(running(windowed)).to.equal(v1.releaseId.toLowerCase());

    // Deferred, with the reason, to the tracker: refused (not yet), not failed, not blocked.
    const { device, reports } = await detail(devices.windowed);
    expect(reports[0].body.declined).to.deep.include({ releaseId: v3.releaseId.toLowerCase(), code: "DEFERRED_TO_WINDOW" });
    expect(reports[0].body.lastResult).to.include({ releaseId: v3.releaseId.toLowerCase(), outcome: "declined", code: "DEFERRED_TO_WINDOW" });
    expect(device).to.include({ lastKind: "refused", lastCode: "DEFERRED_TO_WINDOW", lastRelease: v3.releaseId.toLowerCase() });
    expect(device.statuses).to.deep.equal(["outdated", "refused"]);
    expect(await listed("blocked")).to.not.include(idOf(devices.windowed));
    expect(await listed("failed")).to.not.include(idOf(devices.windowed));
    await expectNoFailureCounted(rollout, v3.releaseId, 1);

    // Still closed: the device's retry (DeviceRunner's timer) declines it again.
    expect(await windowed.retryPending()).to.deep.equal([{ releaseId: v3.releaseId.toLowerCase(), outcome: "declined", code: "DEFERRED_TO_WINDOW" }]);

    // The window opens: the whole system's clock moves to a minute past its start (the chain with it).
    const opens = nextWindowStart((await loadDeviceConfig(path.join(f.dir, "windowed.json"))).policy.window!, Math.floor(clock() / 1000));
    offsetMs = (opens + 60) * 1000 - Date.now();
    expect(offsetMs)
      .to.be.above(0)
      .and.below(2 * HOUR * 1000 + 60_000); // hours, not a day: the clock moves, nothing sleeps
    try {
      if ((await time.latest()) < opens + 60) await time.increaseTo(opens + 60);
      // The next retry installs it, with the cohort proof its notice brought.
      expect(await windowed.retryPending()).to.deep.equal([{ releaseId: v3.releaseId.toLowerCase(), outcome: "confirmed", code: "OK" }]);
      expect(running(windowed)).to.equal(v3.releaseId.toLowerCase());
      const now = await detail(devices.windowed);
      expect(now.reports[0].body.lastResult).to.include({ releaseId: v3.releaseId.toLowerCase(), outcome: "confirmed" });
      expect(now.reports[0].body.declined.map((d) => d.releaseId)).to.not.include(v3.releaseId.toLowerCase()); // no longer declined
      expect(now.device.statuses).to.deep.equal(["up-to-date"]);
      expect(now.device.installed.map((i) => i.releaseId)).to.deep.equal([v3.releaseId.toLowerCase()]);
      await expectNoFailureCounted(rollout, v3.releaseId, 2);
    } finally {
      offsetMs = 0; // the author's tools sign with the real clock
    }
  });
});
