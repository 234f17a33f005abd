import { expect } from "chai";
import { ethers } from "hardhat";
import { takeSnapshot, time, type SnapshotRestorer } from "@nomicfoundation/hardhat-network-helpers";
import { Wallet, ZeroHash, keccak256, toUtf8Bytes } from "ethers";
import { serverFixture, trackerBeside, writeImage, deviceAgentOptions } from "../../helpers/serverFixture";
import { DeviceAgent } from "../../../agent/consumer/deviceAgent";
import { componentId } from "../../../agent/core/release";
import { buildCohort } from "../../../agent/crypto/cohortTree";
import { TrackerModule } from "../../../agent/tracker/trackerModule";
import { handleUpdateRequest } from "../../../agent/tracker/updateRequests";
import type { AllOfPolicy, AllowlistSoakPolicy, LocationPolicy, StagedRollout, UpdatePolicies } from "../../../typechain-types";
import { encodeListedEvidence } from "../../../agent/crypto/cohortTree";
import { splitEvidence } from "../../../agent/core/policyEvidence";
import { trackerPostSigned } from "../../../agent/cli/trackerClient";
import type { StatusReport } from "../../../agent/core/statusReport";
import { encodeBytes32String } from "ethers";
import { signDeviceRequest } from "../../../agent/crypto/requestSignature";
import { encodeDeviceCredential } from "../../../agent/crypto/deviceCredential";
import { encodeInstalled } from "../../../agent/core/installedContext";

const BOOT = componentId("acme.bootloader");
const DAY = 24 * 3600;

describe("update policies end to end: the ledger's policy, the tracker's notices with cohort proofs, the server and the devices (APP-II-3, CAP-11.3-h)", function () {
  this.timeout(180_000);
  let f: Awaited<ReturnType<typeof serverFixture>>;
  let t: Awaited<ReturnType<typeof trackerBeside>>;
  let tracker: TrackerModule;

  // The test moves the chain's clock a day ahead: it gives the chain back as it found it.
  let snapshot: SnapshotRestorer;
  before(async () => {
    snapshot = await takeSnapshot();
    f = await serverFixture(undefined, { withPolicies: true });
    t = await trackerBeside(f, "rollout tracker");
    tracker = t.tracker;
  });
  after(async () => {
    await t?.stop();
    await f?.close();
    await snapshot?.restore();
  });

  let seed = 40;
  const release = (version: string) =>
    f.release(
      {
        component: "acme.bootloader",
        version,
        file: writeImage(f.dir, `rollout-${version}.bin`, 90 * 1024 + seed, seed++),
        hardware: ["acme-board-rev-a"],
        depends: [],
      },
      { grant: [f.devices.a, f.devices.b] },
    );
  const agentFor = (d: typeof f.devices.a, name: string) => DeviceAgent.open(deviceAgentOptions(f, d, name, { tracker: t.deviceTracker }));
  const running = (a: DeviceAgent) => {
    const c = a.slots.snapshot().components[BOOT.toLowerCase()] ?? a.slots.snapshot().components[BOOT];
    return c.slots[c.active]!.releaseId;
  };

  let a: DeviceAgent;
  let b: DeviceAgent;

  it("a rollout in two waves reaches only the devices of the open wave; the second wave follows when it opens", async () => {
    const v1 = await release("1.0.0");
    a = await agentFor(f.devices.a, "wave-1-device");
    b = await agentFor(f.devices.b, "wave-2-device");
    for (const agent of [a, b]) expect((await agent.considerRelease(v1.releaseId, "new-release")).outcome).to.equal("confirmed");

    // The administrator attaches a staged rollout to the component and schedules 1.1.0 in two waves.
    const rollout = (await ethers.deployContract("StagedRollout", [await f.registry.getAddress(), await f.fleet.getAddress()])) as unknown as StagedRollout;
    await f.policies!.connect(f.admin).attachPolicy(BOOT, await rollout.getAddress());
    const v2 = await release("1.1.0");
    const waves = [[f.devices.a.credential.record.id], [f.devices.b.credential.record.id]];
    const now = await time.latest();
    await rollout.connect(f.admin).createRollout(
      v2.releaseId,
      waves.map((ids, i) => ({ cohortRoot: buildCohort(ids).root, startsAt: now + i * DAY })),
      5,
    );
    await tracker.stream.pollOnce();
    expect(await tracker.setRolloutCohorts(v2.releaseId, waves)).to.deep.include({ devices: 2 });
    await expect(tracker.setRolloutCohorts(v2.releaseId, [waves[1], waves[0]])).to.be.rejectedWith(/ROLLOUT_ROOT_MISMATCH|root/);

    // Wave 1 is open: a is told, with its proof, and the server serves it.
    await a.report();
    await a.settled();
    expect(running(a)).to.equal(v2.releaseId.toLowerCase());
    // Wave 2 is not: b gets no notice, and its own check refuses the release (the ledger's policy).
    await b.report();
    await b.settled();
    expect(running(b)).to.equal(v1.releaseId.toLowerCase());
    // The refusal names the policy and its reason (issue 18): NO_EVIDENCE, b was told nothing, so it holds no cohort proof.
    expect(await b.considerRelease(v2.releaseId, "new-release")).to.deep.include({
      outcome: "rejected",
      code: "POLICY_REFUSED",
      policy: { address: await rollout.getAddress(), reason: String(await rollout.NO_EVIDENCE()) },
    });

    // A day later wave 2 opens: b's next heartbeat brings the notice.
    await time.increase(DAY);
    await b.report();
    await b.settled();
    expect(running(b)).to.equal(v2.releaseId.toLowerCase());
  });

  it("a halted rollout stops the rest: failures posted by a tracker reach the threshold", async () => {
    const c = a; // the wave-1 device, on 1.1.0
    const v3 = await release("1.2.0");
    const rollout = (await ethers.getContractAt("StagedRollout", await f.policies!.policyFor(v3.releaseId, BOOT))) as unknown as StagedRollout;
    const now = await time.latest();
    await rollout.connect(f.admin).createRollout(v3.releaseId, [{ cohortRoot: buildCohort([f.devices.a.credential.record.id]).root, startsAt: now }], 2);
    await tracker.stream.pollOnce();
    await tracker.setRolloutCohorts(v3.releaseId, [[f.devices.a.credential.record.id]]);
    await f.registry.connect(f.admin).grantRole(keccak256(toUtf8Bytes("TRACKER_ROLE")), f.tracker.address);
    // The tracker operator posts the failures its module saw (it owns the module on the FleetRegistry).
    const moduleKey = Wallet.createRandom();
    const moduleId = keccak256(toUtf8Bytes("rollout test: the failure poster's module"));
    await f.fleet.connect(f.tracker).registerTrackerModule(moduleId, moduleKey.address, moduleKey.signingKey.compressedPublicKey, ZeroHash);
    await rollout.connect(f.tracker).reportFailures(v3.releaseId, moduleId, 2);
    await c.report();
    await c.settled();
    expect(tracker.store.decisions.lastDelivery(f.devices.a.credential.record.id, v3.releaseId)).to.equal(undefined); // no notice while halted
    expect(await c.considerRelease(v3.releaseId, "new-release")).to.deep.include({ outcome: "rejected", code: "POLICY_REFUSED" });
  });

  it("CAP-11.3-h: a device outside the allowed region is never served the image, nor told of it", async () => {
    const v4 = await release("1.3.0");
    const location = (await ethers.deployContract("LocationPolicy", [await f.registry.getAddress()])) as unknown as LocationPolicy;
    // Only devices of region "us-east" may take 1.3.0; the fixture's devices are in "eu-west".
    await location
      .connect(f.admin)
      .setRule(v4.releaseId, { allowedRegions: [encodeBytes32String("us-east")], deniedRegions: [], allowedNetworks: [], deniedNetworks: [] });
    await f.policies!.connect(f.admin).attachPolicy(v4.releaseId, await location.getAddress()); // the release's own policy replaces the component's
    await tracker.stream.pollOnce();
    await a.report();
    await a.settled();
    expect(tracker.store.decisions.lastDelivery(f.devices.a.credential.record.id, v4.releaseId)).to.equal(undefined); // not told
    expect(await a.considerRelease(v4.releaseId, "new-release")).to.deep.include({ outcome: "rejected", code: "POLICY_REFUSED" }); // refuses it itself
    // And asked directly, the firmware server refuses to serve it (its own check of the ledger's policy).
    for (const what of ["manifest", "artifact", "key"]) {
      const pathname = `/v1/releases/${v4.releaseId.toLowerCase()}/${what}`;
      const headers = signDeviceRequest(f.devices.a.privateKey, f.devices.a.credential.record.id, encodeDeviceCredential(f.devices.a.credential), {
        audience: f.server.url,
        method: "GET",
        path: pathname,
        context: encodeInstalled(a.slots.installed()),
      });
      const res = await fetch(new URL(pathname, f.server.url), { headers });
      const body = (await res.json()) as { error: { code: string; details?: { reason?: string } } };
      expect([res.status, body.error.code], what).to.deep.equal([403, "POLICY_REFUSED"]);
    }
    expect(f.db.downloads({ releaseId: v4.releaseId })).to.deep.equal([]); // nothing was served
  });

  it("APP-II-3: cohorts for a staged rollout inside an all-of composer are checked against its roots too", async () => {
    const v5 = await release("1.4.0");
    const rollout = (await ethers.deployContract("StagedRollout", [await f.registry.getAddress(), await f.fleet.getAddress()])) as unknown as StagedRollout;
    const location = await ethers.deployContract("LocationPolicy", [await f.registry.getAddress()]);
    const allOf = await ethers.deployContract("AllOfPolicy", [[await location.getAddress(), await rollout.getAddress()]]);
    await f.policies!.connect(f.admin).attachPolicy(v5.releaseId, await allOf.getAddress());
    const waves = [[f.devices.a.credential.record.id], [f.devices.b.credential.record.id]];
    const now = await time.latest();
    await rollout.connect(f.admin).createRollout(
      v5.releaseId,
      waves.map((ids, i) => ({ cohortRoot: buildCohort(ids).root, startsAt: now + i * DAY })),
      5,
    );
    await tracker.stream.pollOnce();
    await expect(tracker.setRolloutCohorts(v5.releaseId, [waves[1], waves[0]])).to.be.rejectedWith(
      new RegExp(`wave 0's cohort has root .*the rollout ${await rollout.getAddress()} on the ledger has`),
    );
    expect(await tracker.setRolloutCohorts(v5.releaseId, waves)).to.deep.include({ devices: 2 });
    // PROC-2: an administrator's update request is checked with each device's cohort proof: the open wave's device is decided.
    const requested = await handleUpdateRequest(
      { registry: f.registry, policies: f.policies, domain: f.domain, fromBlock: 0, db: tracker.store, now: Date.now },
      f.admin.address,
      {
        releaseId: v5.releaseId,
        devices: waves.flat(),
      },
    );
    expect(requested.decided).to.equal(1);
    expect(requested.refused.map((r) => [r.deviceId, r.code])).to.deep.equal([[f.devices.b.credential.record.id.toLowerCase(), "POLICY_REFUSED"]]);

    // The policies not answering (an RPC outage): the device's report is still taken, no notice is
    // handed out unchecked, and its next report brings the notice.
    const chain = tracker.options.chain as { policies?: UpdatePolicies };
    const real = chain.policies!;
    chain.policies = new Proxy(real, {
      get(target, prop) {
        if (prop === "checkUpdate")
          return async () => Promise.reject(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8545"), { code: "ECONNREFUSED" }));
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    try {
      await a.report(); // would throw on a 503
      await a.settled();
    } finally {
      chain.policies = real;
    }
    expect(tracker.store.decisions.lastDelivery(f.devices.a.credential.record.id, v5.releaseId)).to.equal(undefined);
    await a.report();
    await a.settled();
    expect(running(a)).to.equal(v5.releaseId.toLowerCase());
  });

  it("APP-II-3 issue 18: an allowlist-and-soak policy composed with a staged rollout: the administrator hands each device its allowlist proof through the tracker, which joins it with the cohort proof; no device is told while the release soaks, then the listed one installs and the other is still refused", async () => {
    const v6 = await release("1.5.0");
    const registry = await f.registry.getAddress();
    const allowlist = (await ethers.deployContract("AllowlistSoakPolicy", [registry, DAY])) as unknown as AllowlistSoakPolicy;
    const rollout = (await ethers.deployContract("StagedRollout", [registry, await f.fleet.getAddress()])) as unknown as StagedRollout;
    const allOf = (await ethers.deployContract("AllOfPolicy", [[await allowlist.getAddress(), await rollout.getAddress()]])) as unknown as AllOfPolicy;
    await f.policies!.connect(f.admin).attachPolicy(v6.releaseId, await allOf.getAddress());
    const [idA, idB] = [f.devices.a.credential.record.id.toLowerCase(), f.devices.b.credential.record.id.toLowerCase()];
    // Both devices are in the rollout's one wave; only a is on the allowlist (as `policy allowlist` builds it).
    const list = buildCohort([idA]);
    await allowlist.connect(f.admin).setAllowlist(list.root);
    await rollout.connect(f.admin).createRollout(v6.releaseId, [{ cohortRoot: buildCohort([idA, idB]).root, startsAt: await time.latest() }], 5);
    await tracker.stream.pollOnce();
    await tracker.setRolloutCohorts(v6.releaseId, [[idA, idB]]);

    // The CLI's request (policy evidence --policy --file): signed by an administrator, for the allowlist only.
    const target = { url: t.http.url, audience: new URL(t.http.url).origin };
    const path = `/v1/releases/${v6.releaseId.toLowerCase()}/evidence`;
    const body = { policy: await allowlist.getAddress(), devices: { [idA]: encodeListedEvidence(list.proofs[0]) } };
    await expect(trackerPostSigned(f.outsider, target, path, body)).to.be.rejectedWith(/NOT_ADMINISTRATOR/);
    await expect(trackerPostSigned(f.admin, target, path, { ...body, policy: registry })).to.be.rejectedWith(/POLICY_NOT_ATTACHED/);
    expect(await trackerPostSigned(f.admin, target, path, body)).to.deep.equal({ releaseId: v6.releaseId.toLowerCase(), policy: body.policy, devices: 1 });
    const held = tracker.store.evidence.of(v6.releaseId, idA)!;
    expect([...splitEvidence(held).keys()].sort()).to.deep.equal([await allowlist.getAddress(), await rollout.getAddress()].sort());

    // The release soaks: the ledger refuses a with its evidence, so the tracker tells nobody.
    const ask = (id: string, evidence: string) =>
      allOf.check(v6.releaseId, BOOT, 0, { deviceId: id, hardwareClass: 1, network: ZeroHash, region: ZeroHash, installed: [] }, evidence);
    expect(await ask(idA, held)).to.equal(await allOf.encodeRefusal(0, await allowlist.SOAKING()));
    for (const agent of [a, b]) {
      await agent.report();
      await agent.settled();
    }
    expect(tracker.store.decisions.lastDelivery(idA, v6.releaseId)).to.equal(undefined);
    expect(running(a)).to.not.equal(v6.releaseId.toLowerCase());

    // A day later: a's next report brings the notice with both parts, and it installs; b is not on the list.
    await time.increase(DAY);
    await a.report();
    await a.settled();
    expect(running(a)).to.equal(v6.releaseId.toLowerCase());
    await b.report();
    await b.settled();
    expect(running(b)).to.not.equal(v6.releaseId.toLowerCase());
    expect(tracker.store.decisions.lastDelivery(idB, v6.releaseId)).to.equal(undefined);
    expect(await b.considerRelease(v6.releaseId, "new-release")).to.deep.include({
      outcome: "rejected",
      code: "POLICY_REFUSED",
      policy: { address: await allOf.getAddress(), reason: String(await allOf.encodeRefusal(0, await allowlist.NO_EVIDENCE())) },
    });
    // b's report names the policy and its answer; the tracker's API names the member that refused and its reason (issue 18).
    const detail = (await (await fetch(new URL(`/v1/fleet/devices/${idB}`, t.http.url))).json()) as {
      policyRefusal: unknown;
      reports: { body: StatusReport }[];
    };
    expect(detail.reports[0].body.lastResult?.policy).to.deep.equal({
      address: await allOf.getAddress(),
      reason: String(await allOf.encodeRefusal(0, await allowlist.NO_EVIDENCE())),
    });
    expect(detail.policyRefusal).to.deep.equal({
      releaseId: v6.releaseId.toLowerCase(),
      policy: await allOf.getAddress(),
      reason: String(await allOf.encodeRefusal(0, await allowlist.NO_EVIDENCE())),
      path: [{ composer: await allOf.getAddress(), member: 0, address: await allowlist.getAddress() }],
      decidedBy: { policy: await allowlist.getAddress(), reason: String(await allowlist.NO_EVIDENCE()), name: "NO_EVIDENCE" },
    });
  });

  it("APP-II-3 issue 18 review: evidence is taken only for a leaf policy that reads its part; a rollout deployed before the envelope keeps its proofs whole; cohort proofs held whole become the rollout's part", async () => {
    const v7 = await release("1.6.0");
    const registry = await f.registry.getAddress();
    const idA = f.devices.a.credential.record.id.toLowerCase();
    const allowlist = (await ethers.deployContract("AllowlistSoakPolicy", [registry, 0])) as unknown as AllowlistSoakPolicy;
    const rollout = (await ethers.deployContract("StagedRollout", [registry, await f.fleet.getAddress()])) as unknown as StagedRollout;
    const legacy = await ethers.deployContract("PolicyMockFixed", [0, ZeroHash]); // no ERC-165: reads its evidence whole
    const allOf = (await ethers.deployContract("AllOfPolicy", [
      [await allowlist.getAddress(), await rollout.getAddress(), await legacy.getAddress()],
    ])) as unknown as AllOfPolicy;
    await f.policies!.connect(f.admin).attachPolicy(v7.releaseId, await allOf.getAddress());
    await tracker.stream.pollOnce();
    const set = (policy: string, evidence = "0x01") => tracker.setPolicyEvidence(v7.releaseId.toLowerCase(), policy, { [idA]: evidence });
    await expect(set(await allOf.getAddress())).to.be.rejectedWith(/POLICY_NOT_ATTACHED|nor a member of it that reads evidence/);
    await expect(set(await legacy.getAddress())).to.be.rejectedWith(/reads its evidence whole/);
    // Cohort proofs held for every policy (as a tracker kept them before the envelope): a part for the allowlist keeps them as the rollout's part.
    tracker.store.evidence.set(v7.releaseId, "", [{ deviceId: idA, evidence: "0xc0c0" }]);
    await set(await allowlist.getAddress(), "0xa1");
    expect(splitEvidence(tracker.store.evidence.of(v7.releaseId, idA)!)).to.deep.equal(
      new Map([
        [await allowlist.getAddress(), "0xa1"],
        [await rollout.getAddress(), "0xc0c0"],
      ]),
    );
  });
});
