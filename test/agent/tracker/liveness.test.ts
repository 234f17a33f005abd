import { expect } from "chai";
import { encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { DeviceAgent } from "../../../agent/consumer/deviceAgent";
import { deviceAgentOptions, makeDevice, serverFixture, trackerBeside, writeImage } from "../../helpers/serverFixture";
import { BOOTLOADER, postReport, sealedReport, startTracker, testDevice, trackerChain, type TestDevice, type TrackerChain } from "../../helpers/trackerFixture";

/**
 * CAP-11.2-b-i and CAP-11.2-m-c: a tracker knows whether what it manages is up from its contact
 * with it (reports, a module's downstream status, a firmware server's download log), and says so
 * when that contact stops: after the liveness window a silent device, or every device behind a
 * silent intermediate module, is listed unreachable, never up to date. Real tracker modules on a
 * real chain, real sealed reports; the trackers' clocks are injected and moved, not waited for.
 */

/** A tracker's clock, held still and moved by the test. */
function testClock() {
  const clock = { at: Date.now(), now: () => clock.at };
  return clock;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** A GET of the tracker's HTTP API, as an operator's tool sends it. */
async function get(baseUrl: string, path: string): Promise<Json> {
  const res = await fetch(new URL(path, baseUrl));
  expect(res.status, path).to.equal(200);
  return res.json();
}

const idOf = (d: TestDevice) => d.record.id.toLowerCase();

describe("agent/tracker liveness: silence is unreachable, never up to date (CAP-11.2-b-i, CAP-11.2-m-c)", function () {
  this.timeout(240_000);
  let t: TrackerChain;
  let boot1: Awaited<ReturnType<TrackerChain["publish"]>>;
  const installed = () => [{ component: BOOTLOADER, release: boot1 }];

  before(async () => {
    t = await trackerChain();
    boot1 = await t.publish(BOOTLOADER, "1.0.0", [1, 2]);
  });
  after(async () => {
    await t?.c.stop();
  });

  it("CAP-11.2-b-i CAP-11.2-a: a device that reported and then went silent is listed unreachable, not up to date, once the liveness window has passed", async () => {
    const clock = testClock();
    const module = await t.registerModule("liveness server a");
    const silent = testDevice("liveness a silent", 1, "liveness-a");
    const chatty = testDevice("liveness a chatty", 1, "liveness-a");
    await t.enrol([silent, chatty]);
    const running = await startTracker(t, module, { now: clock.now });
    try {
      const url = running.http.url;
      await running.tracker.stream.pollOnce();
      for (const d of [silent, chatty]) expect((await postReport(url, await sealedReport(d, module, installed()))).status).to.equal(200);
      const reportedAt = clock.at;
      const detail = async (d: TestDevice) => (await get(url, `/v1/fleet/devices/${d.record.id}`)).device;
      const listed = async (status: string) =>
        ((await get(url, `/v1/fleet/devices?network=liveness-a&status=${status}`)).devices as { id: string }[]).map((d) => d.id);
      expect(await detail(silent)).to.deep.include({ statuses: ["up-to-date"], lastSeen: reportedAt });
      expect(await listed("up-to-date")).to.have.members([idOf(silent), idOf(chatty)]);

      const { livenessMs } = await get(url, "/v1/fleet/summary");
      expect(livenessMs, "the default liveness window").to.equal(15 * 60_000);
      clock.at = reportedAt + livenessMs; // the last instant of the window: still up
      expect((await detail(silent)).statuses).to.deep.equal(["up-to-date"]);

      clock.at = reportedAt + livenessMs + 1;
      expect((await postReport(url, await sealedReport(chatty, module, installed()))).status).to.equal(200); // chatty keeps reporting
      const gone = await detail(silent);
      // What it ran when last heard from is kept and shown, but not vouched for as up to date.
      expect(gone).to.deep.include({ statuses: ["unreachable"], lastSeen: reportedAt, lastKind: null });
      expect(gone.installed.map((i: { releaseId: string }) => i.releaseId)).to.deep.equal([boot1.id]);
      expect(await listed("up-to-date")).to.deep.equal([idOf(chatty)]);
      expect(await listed("unreachable")).to.deep.equal([idOf(silent)]);
      const all = (await get(url, "/v1/fleet/devices?network=liveness-a")).devices as { id: string; statuses: string[] }[];
      expect(Object.fromEntries(all.map((d) => [d.id, d.statuses]))).to.deep.equal({
        [idOf(silent)]: ["unreachable"],
        [idOf(chatty)]: ["up-to-date"],
      });
      const network = (await get(url, "/v1/fleet/summary")).byNetwork.find((n: { network: string }) => n.network === "liveness-a");
      expect(network).to.include({ total: 2, upToDate: 1, unreachable: 1 });

      // Its next report brings it back: liveness comes from the contact itself.
      expect((await postReport(url, await sealedReport(silent, module, installed()))).status).to.equal(200);
      expect(await detail(silent)).to.deep.include({ statuses: ["up-to-date"], lastSeen: clock.at });
    } finally {
      await running.stop();
    }
  });

  it("CAP-11.2-b-i CAP-11.2-m-c: an intermediate module gone silent is shown unreachable, and the devices of its subtree unreachable, not up to date", async () => {
    const clock = testClock(); // the server module's; the modules below keep the real time
    const top = await t.registerModule("liveness top");
    const plant = await t.registerModule("liveness plant", top.id);
    const line = await t.registerModule("liveness plant line", plant.id);
    const p1 = testDevice("liveness b p1", 1, "liveness-b");
    const p2 = testDevice("liveness b p2", 2, "liveness-b");
    const l1 = testDevice("liveness b l1", 1, "liveness-b");
    const direct = testDevice("liveness b direct", 1, "liveness-b-direct");
    await t.enrol([p1, p2, l1, direct]);
    const server = await startTracker(t, top, { now: clock.now });
    const started: Awaited<ReturnType<typeof startTracker>>[] = [];
    try {
      const url = server.http.url;
      const mid = await startTracker(t, plant, {
        parent: { id: top.id, url },
        networks: [encodeBytes32String("liveness-b")],
        upstreamMs: 3_600_000,
      });
      started.push(mid);
      const sub = await startTracker(t, line, { parent: { id: plant.id, url: mid.http.url }, upstreamMs: 3_600_000 });
      started.push(sub);
      await server.tracker.stream.pollOnce();
      for (const d of [p1, p2]) expect((await postReport(mid.http.url, await sealedReport(d, plant, installed()))).status).to.equal(200);
      expect((await postReport(sub.http.url, await sealedReport(l1, line, installed()))).status).to.equal(200);
      expect((await postReport(url, await sealedReport(direct, top, installed()))).status).to.equal(200);
      await sub.tracker.syncUpstream(); // line -> plant
      await mid.tracker.syncUpstream(); // plant -> top, with its own reachability and its child's
      const heardAt = clock.at;
      const lineSeen = mid.tracker.store.hierarchy.modules()[0].lastSeen; // when the plant last heard from the line

      const plantRow = async () => ((await get(url, "/v1/modules")).modules as { id: string }[]).find((m) => m.id === plant.id.toLowerCase());
      const subtree = async () =>
        Object.fromEntries(
          ((await get(url, "/v1/fleet/devices?network=liveness-b")).devices as { id: string; statuses: string[]; upstream: string }[]).map((d) => [
            d.id,
            { statuses: d.statuses, upstream: d.upstream },
          ]),
        );
      const through = (statuses: string[]) => ({ statuses, upstream: plant.id.toLowerCase() });
      expect(await plantRow()).to.deep.include({
        reachable: true,
        lastSeen: heardAt,
        devices: 3,
        unreachableDevices: 0,
        children: [{ id: line.id.toLowerCase(), lastSeen: lineSeen, reachable: true, devices: 1, unreachableDevices: 0 }],
      });
      expect(await subtree()).to.deep.equal({
        [idOf(p1)]: through(["up-to-date"]),
        [idOf(p2)]: through(["up-to-date"]),
        [idOf(l1)]: through(["up-to-date"]),
      });

      // The plant's module stops: nothing comes up from it or from below it any more.
      await mid.stop();
      started.splice(started.indexOf(mid), 1);
      await sub.tracker.syncUpstream().then(
        () => expect.fail("the line reached a stopped module"),
        (err) => expect(err.code).to.equal("UPSTREAM_UNREACHABLE"),
      );
      const { livenessMs } = await get(url, "/v1/fleet/summary");
      clock.at = heardAt + livenessMs + 1;
      expect((await postReport(url, await sealedReport(direct, top, installed()))).status).to.equal(200); // the server's own device still reports

      expect(await plantRow(), "the silent module vouches for nothing below it").to.deep.include({
        reachable: false,
        lastSeen: heardAt,
        devices: 3,
        unreachableDevices: 3,
        children: [{ id: line.id.toLowerCase(), lastSeen: lineSeen, reachable: false, devices: 1, unreachableDevices: 1 }],
      });
      expect(await subtree()).to.deep.equal({
        [idOf(p1)]: through(["unreachable"]),
        [idOf(p2)]: through(["unreachable"]),
        [idOf(l1)]: through(["unreachable"]),
      });
      expect((await get(url, "/v1/fleet/devices?network=liveness-b&status=up-to-date")).total).to.equal(0);
      expect((await get(url, "/v1/fleet/devices?network=liveness-b&status=unreachable")).total).to.equal(3);
      const byNetwork = (await get(url, "/v1/fleet/summary")).byNetwork as { network: string }[];
      expect(byNetwork.find((n) => n.network === "liveness-b")).to.include({ total: 3, upToDate: 0, unreachable: 3 });
      expect(byNetwork.find((n) => n.network === "liveness-b-direct")).to.include({ total: 1, upToDate: 1, unreachable: 0 });
      expect((await get(url, `/v1/fleet/devices/${direct.record.id}`)).device.statuses).to.deep.equal(["up-to-date"]);
    } finally {
      for (const s of started.reverse()) await s.stop();
      await server.stop();
    }
  });
});

describe("agent/tracker liveness from a firmware server's download log alone (CAP-11.2-b-i)", function () {
  this.timeout(180_000);
  let f: Awaited<ReturnType<typeof serverFixture>>;
  let tr: Awaited<ReturnType<typeof trackerBeside>>;
  const clock = testClock();

  before(async () => {
    f = await serverFixture();
    clock.at = Date.now();
    tr = await trackerBeside(f, "liveness download-log tracker", { firmwareServers: [f.server.url], downloadLogMs: 3_600_000, now: clock.now });
    await (await f.registry.connect(f.admin).grantRole(keccak256(toUtf8Bytes("TRACKER_ROLE")), tr.key.address)).wait(); // to read the log
  });
  after(async () => {
    await tr?.stop();
    await f?.close();
  });

  it("CAP-11.2-b-i: a device that never reports but downloaded from the firmware server is shown seen at its download's time, then unreachable once the window has passed", async () => {
    const dev = makeDevice("liveness download only", 1);
    await (await f.fleet.connect(f.admin).enrolDevice(dev.credential.record)).wait();
    const v1 = await f.release(
      {
        component: "acme.bootloader",
        version: "1.0.0",
        file: writeImage(f.dir, "liveness-boot.bin", 64 * 1024, 7),
        hardware: ["acme-board-rev-a"],
        depends: [],
      },
      { grant: [dev] },
    );
    await tr.tracker.stream.pollOnce();
    const url = tr.http.url;
    const id = dev.credential.record.id.toLowerCase();
    const detail = async () => get(url, `/v1/fleet/devices/${id}`);
    const unreachable = async () => ((await get(url, "/v1/fleet/devices?status=unreachable")).devices as { id: string }[]).map((d) => d.id);
    expect((await detail()).device).to.deep.include({ statuses: ["unreachable"], lastSeen: null });

    // The device agent has no tracker configured: it fetches and installs, and reports to no one.
    const agent = await DeviceAgent.open(deviceAgentOptions(f, dev, "liveness-download-only"));
    expect((await agent.considerRelease(v1.releaseId, "new-release")).outcome).to.equal("confirmed");
    await agent.settled();
    const logged = f.db.downloads({ deviceId: id }); // the firmware server's own log
    expect(logged.length).to.be.greaterThan(0);
    const downloadedAt = Math.max(...logged.map((d) => d.at));

    clock.at = Date.now(); // the tracker reads the log after the downloads
    expect(await tr.tracker.pullDownloadLogs()).to.be.at.least(logged.length);
    const seen = await detail();
    expect(seen.device.lastSeen, "seen at the time the server logged the download").to.equal(downloadedAt);
    // Up, but never reported: what it runs is unknown, so it is neither unreachable nor up to date.
    expect(seen.device.statuses).to.deep.equal([]);
    expect(seen.reports).to.deep.equal([]);
    expect(seen.downloads.map((d: { releaseId: string; at: number }) => [d.releaseId, d.at])).to.have.deep.members(
      logged.map((d) => [v1.releaseId.toLowerCase(), d.at]),
    );
    expect(await unreachable()).to.not.include(id);

    clock.at = downloadedAt + tr.tracker.views.summary().livenessMs; // the window's last instant
    expect(await unreachable()).to.not.include(id);
    clock.at += 1;
    expect(await unreachable()).to.include(id);
    expect((await detail()).device).to.deep.include({ statuses: ["unreachable"], lastSeen: downloadedAt });
  });
});
