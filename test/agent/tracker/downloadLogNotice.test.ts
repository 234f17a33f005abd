import { expect } from "chai";
import { keccak256, toUtf8Bytes } from "ethers";
import { serverFixture, trackerBeside, writeImage, deviceAgentOptions } from "../../helpers/serverFixture";
import { DeviceAgent } from "../../../agent/consumer/deviceAgent";
import { componentId } from "../../../agent/core/release";
import { DOWNLOAD_LOG_ORIGIN } from "../../../agent/tracker/fleetDecisions";

const BOOT = componentId("acme.bootloader").toLowerCase();

// CAP-11.3-g asks that devices which downloaded an outdated image be told a new version exists.
// Here the holders are found in the firmware server's download log, not in their reports: a device
// that runs its own in-device tracker and never reports to the module is still decided the newer
// release, and the module's sealed notice, however its transport carries it, is taken by the device.
describe("agent/tracker: devices found in the firmware servers' download logs are told of the newer release (CAP-11.3-g)", function () {
  this.timeout(180_000);
  let f: Awaited<ReturnType<typeof serverFixture>>;
  let t: Awaited<ReturnType<typeof trackerBeside>>;

  before(async () => {
    f = await serverFixture();
    // The log is read on demand below (pullDownloadLogs), as the module's timer would.
    t = await trackerBeside(f, "download-log tracker", { firmwareServers: [f.server.url], downloadLogMs: 3_600_000 });
    await f.registry.connect(f.admin).grantRole(keccak256(toUtf8Bytes("TRACKER_ROLE")), t.key.address);
  });
  after(async () => {
    await t?.stop();
    await f?.close();
  });

  let seed = 1;
  const release = (version: string) =>
    f.release(
      {
        component: "acme.bootloader",
        version,
        file: writeImage(f.dir, `boot-${version}.bin`, 64 * 1024 + seed, seed++),
        hardware: ["acme-board-rev-a"],
        depends: [],
      },
      { grant: [f.devices.a, f.devices.b] },
    );
  const activeRelease = (agent: DeviceAgent) => {
    const c = agent.slots.snapshot().components[BOOT];
    return c?.slots[c.active]?.releaseId;
  };

  it("CAP-11.3-g CAP-11.2-b-i: a device that never reports, seen only downloading, is decided the newer release, takes the module's notice and installs it; a revoked one is replaced by the next", async () => {
    const holderId = f.devices.b.credential.record.id.toLowerCase();
    const reporterId = f.devices.a.credential.record.id.toLowerCase();
    // Device b follows the ledger itself and names the module as its upstream, with no URL: it never reports.
    const holder = await DeviceAgent.open(deviceAgentOptions(f, f.devices.b, "holder", { upstream: t.id }));
    // Device a reports to the module: what it runs is the module's to plan from its reports alone.
    const reporter = await DeviceAgent.open(deviceAgentOptions(f, f.devices.a, "reporter", { tracker: t.deviceTracker }));
    const v1 = await release("1.0.0");
    expect((await holder.considerRelease(v1.releaseId, "new-release")).outcome).to.equal("confirmed");
    expect((await reporter.considerRelease(v1.releaseId, "new-release")).outcome).to.equal("confirmed");
    await reporter.settled();
    await t.tracker.stream.pollOnce();
    expect(t.tracker.views.device(holderId)!.reports).to.deep.equal([]);

    // The log shows the holder fetched v1 whole; v1 is the newest, so nothing is decided yet.
    expect(await t.tracker.pullDownloadLogs()).to.be.greaterThan(0);
    expect(t.tracker.views.device(holderId)!.device.lastSeen).to.be.a("number"); // CAP-11.2-b-i: seen by the log alone
    expect(t.tracker.views.device(holderId)!.decisions).to.deep.equal([]);

    // A newer release: the holder is found in the log and decided it; the reporter is planned from its report, not the log.
    const v2 = await release("1.1.0");
    await t.tracker.stream.pollOnce();
    const decided = t.tracker.views.device(holderId)!.decisions;
    expect(decided).to.have.length(1);
    expect(decided[0]).to.include({ releaseId: v2.releaseId.toLowerCase(), component: BOOT, origin: DOWNLOAD_LOG_ORIGIN });
    expect(decided[0].releaseName).to.equal("acme.bootloader 1.1.0");
    expect(t.tracker.views.device(reporterId)!.decisions).to.deep.equal([]);
    expect(t.tracker.views.rollouts().find((r) => r.releaseId === v2.releaseId.toLowerCase())).to.include({ decided: 2 });

    // The revocation of v2 (and a v3): the decision moves to v3, the revoked one is dropped.
    await (await f.registry.connect(f.admin).revokeRelease(v2.releaseId, "malicious")).wait();
    const v3 = await release("1.2.0");
    await t.tracker.stream.pollOnce();
    expect(t.tracker.views.device(holderId)!.decisions.map((d) => d.releaseId)).to.deep.equal([v3.releaseId.toLowerCase()]);

    // The module's sealed notice for the holder, built for a transport that pushes: the device
    // verifies it against the ledger (its registered upstream) and installs v3.
    const notices = await t.tracker.noticesFor(t.tracker.store.devices.get(holderId)!, "push");
    expect(notices).to.have.length(1);
    const outcome = await holder.onNotice(notices[0]);
    expect(outcome).to.include({ outcome: "confirmed" });
    expect(activeRelease(holder)).to.equal(v3.releaseId.toLowerCase());
    expect(t.tracker.store.decisions.lastDelivery(holderId, v3.releaseId)).to.include({ reason: decided[0].reason });
    // The next pull of the log sees v3 fetched: v3 is the newest, so nothing more is decided and no notice is repeated.
    await t.tracker.pullDownloadLogs();
    expect(t.tracker.views.device(holderId)!.decisions.map((d) => d.releaseId)).to.deep.equal([v3.releaseId.toLowerCase()]);
    expect(await t.tracker.noticesFor(t.tracker.store.devices.get(holderId)!, "push")).to.deep.equal([]);
    await holder.close();
    await reporter.close();
  });

  it("CAP-11.3-g: a device whose download the server logged incomplete, or one suspended, is not decided from the log", async () => {
    // What the log says is untrusted: an incomplete fetch proves no holding, and a suspended device takes nothing.
    const before = t.tracker.store.downloads.holders().map((h) => h.deviceId);
    t.tracker.store.downloads.take(
      "http://127.0.0.1:1",
      [
        {
          id: 1,
          at: Date.now(),
          deviceId: f.devices.suspended.credential.record.id,
          releaseId: (await t.tracker.store.catalogue.releases())[0].id,
          kind: "artifact",
          complete: true,
        },
        {
          id: 2,
          at: Date.now(),
          deviceId: f.devices.gateway.credential.record.id,
          releaseId: (await t.tracker.store.catalogue.releases())[0].id,
          kind: "artifact",
          complete: false,
        },
      ],
      Date.now(),
    );
    expect(t.tracker.store.downloads.holders().map((h) => h.deviceId)).to.deep.equal(before);
  });

  it("CAP-11.3-g REQ-10e-i: a device the log shows fetching a release's delta to its last byte (kind delta, complete) holds the release; part of a delta proves nothing", async () => {
    const releaseId = (await t.tracker.store.catalogue.releases())[0].id.toLowerCase();
    const gateway = f.devices.gateway.credential.record.id.toLowerCase();
    const held = () =>
      t.tracker.store.downloads
        .holders()
        .find((h) => h.deviceId.toLowerCase() === gateway)
        ?.held.map((h) => h.releaseId.toLowerCase());
    const entry = (id: number, complete: boolean) => ({ id, at: Date.now(), deviceId: gateway, releaseId, kind: "delta", complete });
    expect(held()).to.equal(undefined);
    t.tracker.store.downloads.take("http://127.0.0.1:2", [entry(1, false)], Date.now());
    expect(held(), "an incomplete delta").to.equal(undefined);
    t.tracker.store.downloads.take("http://127.0.0.1:2", [entry(2, true)], Date.now());
    expect(held()).to.deep.equal([releaseId]);
  });
});
