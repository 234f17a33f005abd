import { expect } from "chai";
import { ethers } from "hardhat";
import { takeSnapshot, time, type SnapshotRestorer } from "@nomicfoundation/hardhat-network-helpers";
import { keccak256, toUtf8Bytes } from "ethers";
import { serverFixture, trackerBeside, writeImage, deviceAgentOptions, makeDevice } from "../../helpers/serverFixture";
import { DeviceAgent, type UpdateOutcome } from "../../../agent/consumer/deviceAgent";
import type { DeviceIdentity } from "../../../agent/consumer/downloadRelease";
import { componentId } from "../../../agent/core/release";
import { ROLLOUT_STATE, ledgerName } from "../../../agent/core/ledgerCodes";
import { isDeliveryFault } from "../../../agent/core/updateOutcome";
import { buildCohort } from "../../../agent/crypto/cohortTree";
import { HEADER_SIZE } from "../../../agent/crypto/artifactCipher";
import type { StagedRollout } from "../../../typechain-types";
import { FirmwareProxy } from "../../e2e/harness/firmwareProxy";

const BOOT = componentId("acme.bootloader");

/**
 * Issue 15 end to end, in one process with every part real: the ledger (Hardhat) with a staged
 * rollout, the firmware server, a tracker module posting failure totals, device agents, and two
 * mirrors in front of the server that lie (real HTTP proxies). A delivery fault must never halt a
 * rollout; a release that really fails on devices still does.
 */
describe("issue 15 end to end: delivery faults do not halt a staged rollout; real failures still do (APP-II-3, REQ-10f-ii, CAP-11.2-b)", function () {
  this.timeout(300_000);
  let f: Awaited<ReturnType<typeof serverFixture>>;
  let t: Awaited<ReturnType<typeof trackerBeside>>;
  let flipping: FirmwareProxy;
  let busy: FirmwareProxy;
  let rollout: StagedRollout;
  let snapshot: SnapshotRestorer;
  const devices: DeviceIdentity[] = [];
  const agents: DeviceAgent[] = [];
  let factory = ""; // the release every device runs first
  const healthy = new Array<boolean>(12).fill(true); // each device's health check after a trial boot

  before(async () => {
    snapshot = await takeSnapshot();
    f = await serverFixture(undefined, { withPolicies: true });
    await f.registry.connect(f.admin).grantRole(keccak256(toUtf8Bytes("TRACKER_ROLE")), f.tracker.address);
    t = await trackerBeside(f, "delivery faults tracker", { ledgerAccount: f.tracker });
    [flipping, busy] = await Promise.all([FirmwareProxy.start(f.server.url), FirmwareProxy.start(f.server.url)]);
    for (let i = 0; i < 12; i++) {
      const d = makeDevice(`delivery-fault-${i}`, 1);
      await f.fleet.connect(f.admin).enrolDevice(d.credential.record);
      for (const proxy of [flipping, busy]) proxy.addDevice(d.credential.record.id, d.privateKey);
      devices.push(d);
    }
    await t.tracker.stream.pollOnce();
  });
  after(async () => {
    await Promise.all([flipping?.close(), busy?.close()]);
    await t?.stop();
    await f?.close();
    await snapshot?.restore();
  });

  let seed = 700;
  const release = (version: string, grant: DeviceIdentity[]) =>
    f.release(
      {
        component: "acme.bootloader",
        version,
        file: writeImage(f.dir, `faults-${version}.bin`, 70 * 1024 + seed, seed++),
        hardware: ["acme-board-rev-a"],
        depends: [],
      },
      { grant },
    );
  const running = (a: DeviceAgent) => {
    const c = a.slots.snapshot().components[BOOT.toLowerCase()];
    return c?.slots[c.active]?.releaseId;
  };
  /** A rollout of one wave open now over these devices, halting at `threshold` failures; the tracker holds the cohort. */
  const rollOut = async (releaseId: string, wave: DeviceIdentity[], threshold: number) => {
    const ids = wave.map((d) => d.credential.record.id);
    await rollout.connect(f.admin).createRollout(releaseId, [{ cohortRoot: buildCohort(ids).root, startsAt: await time.latest() }], threshold);
    await t.tracker.stream.pollOnce();
    await t.tracker.setRolloutCohorts(releaseId, [ids]);
  };
  const stateOf = async (releaseId: string) => {
    const s = await rollout.rolloutStatus(releaseId);
    return { state: ledgerName(ROLLOUT_STATE, s.state), failures: Number(s.failures) };
  };
  /** Each agent reports, takes the tracker's notices (with its cohort proof) and acts on them. */
  const heartbeat = async (list: DeviceAgent[]) => {
    for (const a of list) {
      await a.report();
      await a.settled();
    }
  };

  it("a mirror flipping bytes for 5 devices and another answering 503 to 3 more: the rollout (threshold 2) is not halted, the 8 show as blocked with their cause, and all install once the faults stop", async () => {
    const v1 = await release("1.0.0", devices);
    factory = v1.releaseId.toLowerCase();
    for (let i = 0; i < 12; i++) {
      // devices 0-4 fetch through the flipping mirror, 5-7 through the busy one, 8-11 from the server itself
      const serverUrl = i < 5 ? flipping.url : i < 8 ? busy.url : f.server.url;
      const a = await DeviceAgent.open(
        deviceAgentOptions(f, devices[i], `fault-device-${i}`, {
          serverUrl,
          tracker: t.deviceTracker,
          download: { startJitterMs: 0, timeoutMs: 5000, attempts: 2, backoffMs: 10 },
          healthCheck: async () => healthy[i],
        }),
      );
      const first = await a.considerRelease(v1.releaseId, "factory");
      expect(first.outcome, `device ${i}: ${first.code}`).to.equal("confirmed");
      agents.push(a);
    }
    const faulty = agents.slice(0, 8);
    // From here on, the component's releases go out through a staged rollout.
    rollout = (await ethers.deployContract("StagedRollout", [await f.registry.getAddress(), await f.fleet.getAddress()])) as unknown as StagedRollout;
    await f.policies!.connect(f.admin).attachPolicy(BOOT, await rollout.getAddress());

    const v2 = await release("1.1.0", devices.slice(0, 8));
    flipping.setFault(v2.releaseId, { kind: "alter", offset: HEADER_SIZE + 100 });
    busy.refusing = 503;
    await rollOut(v2.releaseId, devices.slice(0, 8), 2);
    await heartbeat(faulty);

    // Each device was told, tried, and was blocked: not a failure of the release.
    for (const [i, a] of faulty.entries()) {
      const last = (await a.statusReport()).lastResult!;
      expect(last, `device ${i}`).to.include({ releaseId: v2.releaseId.toLowerCase(), outcome: "blocked" });
      expect(i < 5 ? ["CHUNK_MISMATCH"] : ["HTTP_503", "HTTP_ERROR"], `device ${i}: ${last.code}`).to.include(last.code);
      expect(isDeliveryFault(last.code)).to.equal(true);
      expect(running(a)).to.equal(v1.releaseId.toLowerCase());
    }
    // The tracker lists them blocked, with the cause and since when; it posts no failure, and the rollout runs on.
    const blocked = t.tracker.views.devices({ status: "blocked", limit: 100 }).devices;
    expect(blocked.map((d) => d.id).sort()).to.deep.equal(
      devices
        .slice(0, 8)
        .map((d) => d.credential.record.id.toLowerCase())
        .sort(),
    );
    for (const d of blocked) {
      expect(d.lastRelease).to.equal(v2.releaseId.toLowerCase());
      expect(d.blockedSince).to.be.a("number");
      expect(d.statuses).to.not.include("failed");
    }
    expect(t.tracker.views.summary().counts).to.include({ blocked: 8, failed: 0 });
    expect(t.tracker.views.rollouts().find((r) => r.releaseId === v2.releaseId.toLowerCase())).to.include({ failed: 0, blocked: 8 });
    expect(await t.tracker.reportFailures()).to.deep.equal([]);
    expect(await stateOf(v2.releaseId)).to.deep.equal({ state: "open", failures: 0 });

    // The faults stop: each device's next try installs the release (from the verified prefix it kept).
    flipping.clearFaults();
    busy.refusing = undefined;
    const retried: UpdateOutcome[] = [];
    for (const a of faulty) retried.push(...(await a.retryPending()));
    expect(retried.map((r) => [r.releaseId, r.outcome])).to.deep.equal(faulty.map(() => [v2.releaseId.toLowerCase(), "confirmed"]));
    for (const a of faulty) expect(running(a)).to.equal(v2.releaseId.toLowerCase());
    await heartbeat(faulty);
    expect(t.tracker.views.summary().counts).to.include({ blocked: 0, failed: 0 });
    expect(await stateOf(v2.releaseId)).to.deep.equal({ state: "open", failures: 0 });
  });

  it("4 devices really fail their health check: the failures are posted and the rollout (threshold 2) halts, as before", async () => {
    const four = devices.slice(8, 12);
    const failing = agents.slice(8, 12);
    const v3 = await release("1.2.0", four);
    await rollOut(v3.releaseId, four, 2);
    // The image is delivered intact, then fails the health check on these devices.
    for (let i = 8; i < 12; i++) healthy[i] = false;
    await heartbeat(failing);
    for (const a of failing) {
      expect((await a.statusReport()).lastResult).to.include({ releaseId: v3.releaseId.toLowerCase(), outcome: "rolled-back", code: "HEALTH_CHECK_FAILED" });
      expect(running(a)).to.equal(factory);
    }
    expect(t.tracker.views.summary().counts).to.include({ failed: 4 });
    const posted = await t.tracker.reportFailures();
    expect(posted.map((p) => p.total)).to.deep.equal([4]);
    expect(await stateOf(v3.releaseId)).to.deep.equal({ state: "halted", failures: 4 });
  });
});
