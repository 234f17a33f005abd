import { expect } from "chai";
import { ethers } from "hardhat";
import { takeSnapshot, time, type SnapshotRestorer } from "@nomicfoundation/hardhat-network-helpers";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { deviceAgentOptions, makeDevice, serverFixture, trackerBeside, writeImage } from "../../helpers/serverFixture";
import { DeviceAgent } from "../../../agent/consumer/deviceAgent";
import { loadDeviceConfig } from "../../../agent/consumer/deviceConfig";
import { componentId } from "../../../agent/core/release";
import { signAccountRequest } from "../../../agent/crypto/requestSignature";
import { verifyStatusProof, type StatusRecord } from "../../../agent/crypto/statusTree";
import { verifyTagsProof } from "../../../agent/tracker/deviceTags";
import type { DeviceIdentity } from "../../../agent/consumer/downloadRelease";
import type { DeviceView } from "../../../agent/tracker/fleetViews";
import type { StatusAnchors } from "../../../typechain-types";

const BOOT = componentId("acme.bootloader").toLowerCase();
const HOUR = 3600;

/**
 * Device groups and update campaigns with deadlines (issue 19, item 11) end to end, through real
 * parts: the in-process chain (registry, fleet registry, UpdatePolicies, StatusAnchors), the
 * firmware server, a server tracker module with its HTTP API and ledger account, and device agents
 * from their device.json. Administrators tag devices and save a group by a tag query; an update
 * request with a deadline targets the group; a device whose update window is closed defers, then
 * installs once the deadline passed (the whole system's clock moved, never slept); a device fresh
 * from the factory gets its first release; the request's progress shows each state; the tags are
 * anchored with the status.
 */
describe("PROC-2 CAP-11.2-c end to end: device tags, groups and update requests with deadlines", function () {
  this.timeout(180_000);

  let offsetMs = 0;
  const clock = () => Date.now() + offsetMs;

  let f: Awaited<ReturnType<typeof serverFixture>>;
  let t: Awaited<ReturnType<typeof trackerBeside>>;
  let anchors: StatusAnchors;
  let snapshot: SnapshotRestorer;

  const devices = {
    anytime: makeDevice("campaign: any time", 1),
    windowed: makeDevice("campaign: windowed", 1),
    pinned: makeDevice("campaign: pinned", 1),
    fresh: makeDevice("campaign: factory fresh", 1),
    other: makeDevice("campaign: other site", 1),
    late: makeDevice("campaign: tagged late", 1),
  };
  const all = Object.values(devices);
  const idOf = (d: DeviceIdentity) => d.credential.record.id.toLowerCase();

  before(async () => {
    snapshot = await takeSnapshot();
    f = await serverFixture(undefined, { withPolicies: true, now: clock });
    for (const d of all) await f.fleet.connect(f.admin).enrolDevice(d.credential.record);
    await f.registry.connect(f.admin).grantRole(keccak256(toUtf8Bytes("TRACKER_ROLE")), f.tracker.address);
    anchors = (await ethers.deployContract("StatusAnchors", [await f.registry.getAddress()])) as unknown as StatusAnchors;
    t = await trackerBeside(f, "campaign tracker", {
      now: clock,
      ledgerAccount: f.tracker,
      failureReportMs: 3_600_000,
      anchorMs: 0,
      chain: { provider: ethers.provider, registry: f.registry, fleet: f.fleet, policies: f.policies, anchors, domain: f.domain, fromBlock: 0 },
    });
  });
  after(async () => {
    offsetMs = 0;
    await t?.stop();
    await f?.close();
    await snapshot?.restore();
  });

  let seed = 90;
  const release = async (version: string) =>
    f.release(
      {
        component: "acme.bootloader",
        version,
        file: writeImage(f.dir, `campaign-${version}.bin`, 60 * 1024 + seed, seed++),
        hardware: ["acme-board-rev-a"],
        depends: [],
      },
      { grant: all },
    );

  /** A device agent from its own device.json; `factory`: the factory image installed first (else the device runs nothing yet). */
  async function deviceFrom(d: DeviceIdentity, name: string, policy: Record<string, unknown>, factory = true): Promise<DeviceAgent> {
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
    if (factory) {
      const at = await DeviceAgent.open(options);
      expect((await at.manualInstall(v1.releaseId, { file: v1.artifactFile })).outcome).to.equal("confirmed");
    }
    return DeviceAgent.open({ ...options, policy: c.policy, tracker: c.tracker });
  }

  const running = (a: DeviceAgent) => {
    const c = a.slots.snapshot().components[BOOT];
    return c?.slots[c.active]?.releaseId.toLowerCase();
  };
  const heartbeat = async (a: DeviceAgent) => {
    await a.report();
    await a.settled();
  };
  const api = async <T>(pathname: string): Promise<T> => {
    const res = await fetch(new URL(pathname, t.http.url));
    expect(res.status, `${pathname}: ${await res.clone().text()}`).to.equal(200);
    return (await res.json()) as T;
  };
  /** An administrator's (or anyone's) signed request to the tracker, as the CLI sends it. */
  const signed = async (signer: Wallet | typeof f.admin, method: string, pathname: string, body?: unknown) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const headers = await signAccountRequest(signer, { audience: new URL(t.http.url).origin, method, path: pathname, body: text ?? "" });
    const res = await fetch(new URL(pathname, t.http.url), {
      method,
      headers: { ...(text === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: text,
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: { code: string; message: string } } };
  };
  const tag = (d: DeviceIdentity, set: Record<string, string>, remove: string[] = []) =>
    signed(f.admin, "POST", `/v1/fleet/devices/${idOf(d)}/tags`, { set, ...(remove.length ? { remove } : {}) });

  let v1: Awaited<ReturnType<typeof release>>;
  let anytime: DeviceAgent, windowed: DeviceAgent, pinned: DeviceAgent, fresh: DeviceAgent, other: DeviceAgent, late: DeviceAgent;

  before(async () => {
    v1 = await release("1.0.0");
    const hour = Math.floor(clock() / 1000 / HOUR) % 24;
    const window = { startHourUtc: (hour + 6) % 24, endHourUtc: (hour + 7) % 24 }; // closed now, and for the next six hours
    anytime = await deviceFrom(devices.anytime, "anytime", { maxLedgerAgeSeconds: HOUR });
    windowed = await deviceFrom(devices.windowed, "windowed", { maxLedgerAgeSeconds: HOUR, window });
    pinned = await deviceFrom(devices.pinned, "pinned", { maxLedgerAgeSeconds: HOUR, pins: { "acme.bootloader": "1.0.0" } });
    fresh = await deviceFrom(devices.fresh, "fresh", { maxLedgerAgeSeconds: HOUR }, false);
    other = await deviceFrom(devices.other, "other", { maxLedgerAgeSeconds: HOUR });
    late = await deviceFrom(devices.late, "late", { maxLedgerAgeSeconds: HOUR }, false);
    for (const a of [anytime, windowed, pinned, fresh, other, late]) await heartbeat(a);
    expect(running(fresh)).to.equal(undefined); // nothing installed: the tracker plans nothing for it on its own
  });

  it("CAP-11.2-a: administrators tag devices through signed requests; the tags show in the device list and detail and filter it (?tag=k=v)", async () => {
    for (const d of [devices.anytime, devices.windowed, devices.pinned, devices.fresh])
      expect((await tag(d, { site: "plant-1", ring: "canary" })).status).to.equal(200);
    expect((await tag(devices.other, { site: "plant-2" })).body).to.deep.include({ tags: { site: "plant-2" } });
    // Change one: set and remove in one request.
    const changed = await tag(devices.pinned, { owner: "ops" }, ["ring"]);
    expect(changed.body.tags).to.deep.equal({ owner: "ops", site: "plant-1" });

    const detail = await api<{ device: DeviceView }>(`/v1/fleet/devices/${idOf(devices.windowed)}`);
    expect(detail.device.tags).to.deep.equal({ ring: "canary", site: "plant-1" });
    const plant1 = await api<{ total: number; devices: DeviceView[] }>(`/v1/fleet/devices?tag=site=plant-1`);
    expect(plant1.devices.map((d) => d.id).sort()).to.deep.equal([devices.anytime, devices.windowed, devices.pinned, devices.fresh].map(idOf).sort());
    const canaryAt1 = await api<{ devices: DeviceView[] }>(`/v1/fleet/devices?tag=site=plant-1&tag=ring=canary`);
    expect(canaryAt1.devices.map((d) => d.id).sort()).to.deep.equal([devices.anytime, devices.windowed, devices.fresh].map(idOf).sort());
    const notCanary = await api<{ devices: DeviceView[] }>(`/v1/fleet/devices?tag=${encodeURIComponent("site,!ring")}`);
    expect(notCanary.devices.map((d) => d.id).sort()).to.deep.equal([devices.pinned, devices.other].map(idOf).sort());
    const onNetwork = await api<{ devices: DeviceView[] }>(`/v1/fleet/devices?tag=${encodeURIComponent("site=plant-2,hardware=1")}`);
    expect(onNetwork.devices.map((d) => d.id)).to.deep.equal([idOf(devices.other)]);
  });

  it("CAP-11.2-a: attacker cases: a non-administrator's tag change or group is refused 403; a tag value too large, too many tags or an injection-looking query is refused 400 with nothing changed", async () => {
    const outsider = new Wallet(keccak256(toUtf8Bytes("campaign outsider")));
    const byOutsider = await signed(outsider, "POST", `/v1/fleet/devices/${idOf(devices.anytime)}/tags`, { set: { site: "evil" } });
    expect(byOutsider.status).to.equal(403);
    expect(byOutsider.body.error?.code).to.equal("NOT_ADMINISTRATOR");
    expect((await signed(outsider, "POST", "/v1/groups", { name: "evil", query: "site=plant-1" })).body.error?.code).to.equal("NOT_ADMINISTRATOR");
    // Unsigned: refused before anything.
    const unsigned = await fetch(new URL(`/v1/fleet/devices/${idOf(devices.anytime)}/tags`, t.http.url), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ set: { site: "evil" } }),
    });
    expect(unsigned.status).to.equal(401);

    const tooLarge = await tag(devices.anytime, { site: "x".repeat(129) });
    expect(tooLarge.status).to.equal(400);
    expect(tooLarge.body.error?.code).to.equal("TAG_INVALID");
    const tooMany = await tag(devices.anytime, Object.fromEntries(Array.from({ length: 31 }, (_, i) => [`k${i}`, "v"])));
    expect(tooMany.status).to.equal(400);
    expect(tooMany.body.error?.code).to.equal("TAG_LIMIT");
    expect((await tag(devices.anytime, { network: "elsewhere" })).body.error?.code).to.equal("TAG_KEY_RESERVED");
    const injected = await signed(f.admin, "POST", "/v1/groups", { name: "sneaky", query: "site=plant-1' OR 1=1 --" });
    expect(injected.status).to.equal(400);
    expect(injected.body.error?.code).to.equal("QUERY_INVALID");
    const res = await fetch(new URL(`/v1/fleet/devices?tag=${encodeURIComponent("site=x'); DROP TABLE devices; --")}`, t.http.url));
    expect(res.status).to.equal(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).to.equal("QUERY_INVALID");

    // Nothing changed.
    expect((await api<{ device: DeviceView }>(`/v1/fleet/devices/${idOf(devices.anytime)}`)).device.tags).to.deep.equal({ ring: "canary", site: "plant-1" });
    expect((await api<{ groups: unknown[] }>("/v1/groups")).groups).to.deep.equal([]);
    expect((await api<{ total: number }>("/v1/fleet/devices")).total).to.be.at.least(all.length);
  });

  let requestId: string;
  let v2: Awaited<ReturnType<typeof release>>;
  let deadline: number;

  it("PROC-2 CAP-11.2-c CAP-11.1-a-vi: an update request with a deadline targets a group; the devices it selects are decided, the device whose window is closed defers (DEFERRED_TO_WINDOW), the pinned one declines, and a factory-fresh device gets its first release", async () => {
    const group = await signed(f.admin, "POST", "/v1/groups", { name: "plant-1", query: "site=plant-1" });
    expect(group.body).to.deep.equal({ name: "plant-1", query: "site=plant-1", devices: 4 });
    expect((await api<{ groups: { name: string; devices: number }[] }>("/v1/groups")).groups).to.deep.include({
      name: "plant-1",
      query: "site=plant-1",
      createdBy: (await f.admin.getAddress()).toLowerCase(),
      createdAt: (await api<{ groups: { createdAt: number }[] }>("/v1/groups")).groups[0].createdAt,
      devices: 4,
    });

    v2 = await release("1.1.0");
    await t.tracker.stream.pollOnce();
    deadline = clock() + 2 * HOUR * 1000;
    const requested = await signed(f.admin, "POST", "/v1/update-requests", { releaseId: v2.releaseId, group: "plant-1", deadline });
    expect(requested.status, JSON.stringify(requested.body)).to.equal(200);
    expect(requested.body).to.deep.include({ decided: 4, refused: [], deadline });
    requestId = requested.body.requestId as string;

    for (const a of [anytime, windowed, pinned, fresh, other, late]) await heartbeat(a);
    expect(running(anytime)).to.equal(v2.releaseId.toLowerCase());
    expect(running(fresh)).to.equal(v2.releaseId.toLowerCase()); // its first release, from the request alone
    expect(running(windowed)).to.equal(v1.releaseId.toLowerCase()); // deferred to its window
    expect(running(pinned)).to.equal(v1.releaseId.toLowerCase()); // its pin holds: the request did not say otherwise
    // Not in the group: the request decided nothing for them. The other site's device moves by the
    // tracker's own plan (it runs the component); the untagged factory-fresh one runs nothing, so nothing is planned.
    expect(t.tracker.store.decisions.of(idOf(devices.other))).to.deep.equal([]);
    expect(t.tracker.store.decisions.lastDelivery(idOf(devices.other), v2.releaseId)).to.deep.include({ reason: "outdated" });
    expect(running(late)).to.equal(undefined);

    const freshView = await api<{ device: DeviceView }>(`/v1/fleet/devices/${idOf(devices.fresh)}`);
    expect(freshView.device.installed.map((i) => i.releaseId)).to.deep.equal([v2.releaseId.toLowerCase()]);
    const w = await api<{ device: DeviceView }>(`/v1/fleet/devices/${idOf(devices.windowed)}`);
    expect(w.device).to.include({ lastKind: "refused", lastCode: "DEFERRED_TO_WINDOW" });

    const progress = await api<{ counts: Record<string, number>; deadline: number; devices: { deviceId: string; state: string; code: string | null }[] }>(
      `/v1/update-requests/${requestId}`,
    );
    expect(progress.deadline).to.equal(deadline);
    expect(progress.counts).to.deep.equal({ decided: 4, notified: 4, installed: 2, failed: 0, blocked: 0, refused: 2, pending: 0, pastDeadline: 0 });
    const stateOf = (d: DeviceIdentity) => progress.devices.find((x) => x.deviceId === idOf(d));
    expect(stateOf(devices.windowed)).to.deep.include({ state: "refused", code: "DEFERRED_TO_WINDOW" });
    expect(stateOf(devices.pinned)).to.deep.include({ state: "refused", code: "VERSION_PINNED" });
    expect(stateOf(devices.fresh)).to.deep.include({ state: "installed" });
    const list = await api<{ total: number; requests: { requestId: string; counts: { decided: number } }[] }>("/v1/update-requests");
    expect(list.requests.map((r) => r.requestId)).to.include(requestId);
  });

  it("PROC-2 CAP-11.1-a-vi: once the deadline passed, the device that deferred to its closed window installs (DEFERRED_TO_WINDOW stops); the pinned device stays on its pin; the progress counts it past the deadline", async () => {
    // Still before the deadline: the retry defers again.
    expect(await windowed.retryPending()).to.deep.equal([{ releaseId: v2.releaseId.toLowerCase(), outcome: "declined", code: "DEFERRED_TO_WINDOW" }]);
    // The whole system's clock moves a minute past the deadline (the window is still closed: it opens in six hours).
    // It stays moved for the rest of the file (the tracker's notices are dated by it from now on).
    offsetMs += deadline + 60_000 - clock();
    {
      if ((await time.latest()) < Math.floor(clock() / 1000)) await time.increaseTo(Math.floor(clock() / 1000));
      expect(await windowed.retryPending()).to.deep.equal([{ releaseId: v2.releaseId.toLowerCase(), outcome: "confirmed", code: "OK" }]);
      expect(running(windowed)).to.equal(v2.releaseId.toLowerCase());
      await heartbeat(pinned);
      expect(running(pinned)).to.equal(v1.releaseId.toLowerCase());

      const progress = await api<{ counts: Record<string, number>; devices: { deviceId: string; state: string; pastDeadline: boolean }[] }>(
        `/v1/update-requests/${requestId}`,
      );
      expect(progress.counts).to.deep.include({ decided: 4, installed: 3, refused: 1, pastDeadline: 1 });
      expect(progress.devices.find((d) => d.deviceId === idOf(devices.pinned))).to.deep.include({ state: "refused", pastDeadline: true });
      const w = await api<{ device: DeviceView; reports: { body: { declined: { releaseId: string }[] } }[] }>(`/v1/fleet/devices/${idOf(devices.windowed)}`);
      expect(w.device.statuses).to.deep.equal(["up-to-date"]);
      expect(w.reports[0].body.declined.map((d) => d.releaseId)).to.not.include(v2.releaseId.toLowerCase());
    }
  });

  it("CAP-11.2-a: a device tagged into the group later joins the request; each device's tags are anchored with its status, provable against the anchor (status on the ledger, tags off it)", async () => {
    const joined = await tag(devices.late, { site: "plant-1" });
    expect(joined.body).to.deep.include({ joinedRequests: 1 });
    await heartbeat(late);
    expect(running(late)).to.equal(v2.releaseId.toLowerCase());
    expect((await api<{ counts: { decided: number } }>(`/v1/update-requests/${requestId}`)).counts.decided).to.equal(5);

    const made = await t.tracker.anchorStatus();
    expect(made.anchored).to.equal(true);
    const index = made.anchored ? made.anchor.index : -1;
    const p = await api<{
      root: string;
      format: number;
      tags: Record<string, string>;
      record: { deviceId: string; releaseId: string; version: string; outcome: number; reportCounter: string; reportedAt: number };
      proof: string[];
    }>(`/v1/anchors/${index}/devices/${idOf(devices.pinned)}`);
    expect(p.format).to.equal(2);
    expect(p.tags).to.deep.equal({ owner: "ops", site: "plant-1" });
    const record: StatusRecord = {
      ...p.record,
      version: BigInt(p.record.version),
      reportCounter: BigInt(p.record.reportCounter),
      outcome: p.record.outcome as never,
    };
    const onLedger = (await anchors.anchorAt(index)).statusRoot;
    expect(onLedger).to.equal(p.root);
    expect((await anchors.verifyStatus(index, p.record, p.proof)).valid).to.equal(true); // the status leaf, unchanged, on the ledger
    expect(verifyStatusProof(record, p.proof, onLedger)).to.equal(true);
    expect(verifyTagsProof(record, p.tags, p.proof, onLedger)).to.equal(true);
    expect(verifyTagsProof(record, { ...p.tags, owner: "someone-else" }, p.proof, onLedger)).to.equal(false);
    expect(verifyTagsProof(record, {}, p.proof, onLedger)).to.equal(false);
  });
});
