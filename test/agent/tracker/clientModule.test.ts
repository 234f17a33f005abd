import { expect } from "chai";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ethers } from "hardhat";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import { serverFixture, trackerBeside, writeImage, makeDevice, deviceAgentOptions } from "../../helpers/serverFixture";
import { DeviceAgent } from "../../../agent/consumer/deviceAgent";
import { componentId } from "../../../agent/core/release";
import { TrackerModule } from "../../../agent/tracker/trackerModule";

const BOOT = componentId("acme.bootloader");

describe("agent/tracker with real device agents in client-module mode (DEP-8.1-b, DEP-8.2.2, CAP-11.2-b, CAP-11.2-c, PROC-5, CAP-11.3-g)", function () {
  this.timeout(180_000);
  let f: Awaited<ReturnType<typeof serverFixture>>;
  let t: Awaited<ReturnType<typeof trackerBeside>>;
  let tracker: TrackerModule;
  let healthy = true;

  before(async () => {
    f = await serverFixture();
    t = await trackerBeside(f, "client-mode tracker", { firmwareServers: [f.server.url], downloadLogMs: 3_600_000 }); // the log is read on demand below
    tracker = t.tracker;
    await f.registry.connect(f.admin).grantRole(keccak256(toUtf8Bytes("TRACKER_ROLE")), t.key.address); // to read the download log
  });
  after(async () => {
    await t?.stop();
    await f?.close();
  });

  let seed = 1;
  const release = (version: string, grant = [f.devices.a]) =>
    f.release(
      {
        component: "acme.bootloader",
        version,
        file: writeImage(f.dir, `boot-${version}.bin`, 100 * 1024 + seed, seed++),
        hardware: ["acme-board-rev-a"],
        depends: [],
      },
      { grant },
    );

  it("a device reports to the tracker, is told of the release it needs, installs it, and is listed up to date; REQ-10c-i: a failed install is listed as failed", async () => {
    const v1 = await release("1.0.0");
    const agent = await DeviceAgent.open(deviceAgentOptions(f, f.devices.a, "device-a", { healthCheck: async () => healthy, tracker: t.deviceTracker }));
    expect((await agent.considerRelease(v1.releaseId, "new-release")).outcome).to.equal("confirmed"); // reports at the end
    await agent.settled();
    const id = f.devices.a.credential.record.id;
    expect(tracker.views.device(id)!.device).to.deep.include({ statuses: ["up-to-date"], lastOutcome: "confirmed" });

    const v2 = await release("1.1.0");
    await tracker.stream.pollOnce();
    expect(tracker.views.device(id)!.device.statuses).to.deep.equal(["outdated"]);
    await agent.report(); // the heartbeat: its answer carries the notice
    await agent.settled();
    expect(agent.slots.snapshot().components[BOOT.toLowerCase()] ?? agent.slots.snapshot().components[BOOT]).to.satisfy(
      (c: { active: "a" | "b"; slots: Record<string, { releaseId: string }> }) => c.slots[c.active].releaseId === v2.releaseId.toLowerCase(),
    );
    expect(tracker.views.device(id)!.device).to.deep.include({ statuses: ["up-to-date"], lastOutcome: "confirmed" });
    expect(tracker.views.rollouts().find((r) => r.releaseId === v2.releaseId.toLowerCase())).to.include({ installed: 1, pending: 0, notified: 1 });
    // CAP-11.2-b-i: the firmware server's download log is contact too, and shows what the device fetched.
    expect(await tracker.pullDownloadLogs()).to.be.greaterThan(0);
    expect(await tracker.pullDownloadLogs()).to.equal(0); // taken once
    const fetched = tracker.views.device(id)!.downloads;
    expect(fetched.some((d) => d.releaseId === v2.releaseId.toLowerCase() && d.kind === "artifact" && d.complete)).to.equal(true);

    healthy = false;
    const v3 = await release("1.2.0");
    await tracker.stream.pollOnce();
    await agent.report();
    await agent.settled();
    const after = tracker.views.device(id)!;
    expect(after.device.statuses).to.include("failed");
    expect(after.device).to.include({ lastOutcome: "rolled-back" });
    expect(after.plan.unchanged).to.deep.include({ component: BOOT.toLowerCase(), componentName: "acme.bootloader", code: "PREVIOUSLY_FAILED" });
    // The failed release is not offered again: the next heartbeat brings no notice.
    const before = tracker.store.decisions.lastDelivery(id, v3.releaseId)!.at;
    await agent.report();
    await agent.settled();
    expect(tracker.store.decisions.lastDelivery(id, v3.releaseId)!.at).to.equal(before);
  });

  it("CAP-11.2-m-a: reports sent at once (a heartbeat meeting an update's end) go one at a time, so none is overtaken and refused as a replay", async () => {
    // Between the device and the tracker, a link that holds the second request (the first of those
    // sent at once; the first is the report at start) back for a while.
    const upstream = new URL(t.deviceTracker.url);
    let seen = 0;
    const slowLink = http.createServer((req, res) => {
      const delay = ++seen === 2 ? 300 : 0;
      const body: Buffer[] = [];
      req.on("data", (d: Buffer) => body.push(d));
      req.on("end", () =>
        setTimeout(() => {
          const out = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          });
          out.on("error", () => res.destroy());
          out.end(Buffer.concat(body));
        }, delay),
      );
    });
    await new Promise<void>((resolve) => slowLink.listen(0, "127.0.0.1", resolve));
    try {
      const agent = await DeviceAgent.open(
        deviceAgentOptions(f, f.devices.b, "device-b-reports", {
          tracker: { ...t.deviceTracker, url: `http://127.0.0.1:${(slowLink.address() as AddressInfo).port}` },
        }),
      );
      const sent = await Promise.all(Array.from({ length: 4 }, () => agent.report()));
      const counters = sent.map((r) => r.counter);
      expect(counters, "sent in counter order").to.deep.equal([...counters].sort((a, b) => a - b));
      expect(new Set(counters).size).to.equal(4);
    } finally {
      await new Promise<void>((resolve) => slowLink.close(() => resolve()));
    }
  });

  it("DEP-8.2.2 REQ-10c-ii: a notice that comes while the ledger does not answer is kept, and taken once it does", async () => {
    const dev = makeDevice("outage-device", 1);
    await f.fleet.connect(f.admin).enrolDevice(dev.credential.record);
    // The device's view of the fleet registry, where it checks the notice's sender: cut at will.
    let down = false;
    const fleet = new Proxy(f.fleet, {
      get(target, prop) {
        if (down && prop === "trackerModule") {
          return async () => {
            throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8545"), { code: "ECONNREFUSED" });
          };
        }
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const lines: string[] = [];
    const agent = await DeviceAgent.open(
      deviceAgentOptions(f, dev, "outage-device", {
        chain: { provider: ethers.provider, registry: f.registry, fleet, domain: f.domain, fromBlock: 0 },
        tracker: t.deviceTracker,
        log: (l) => lines.push(l),
      }),
    );
    const active = () => {
      const c = agent.slots.snapshot().components[BOOT.toLowerCase()];
      return c?.slots[c.active]?.releaseId;
    };
    const v2 = await release("2.0.0", [dev]);
    expect((await agent.considerRelease(v2.releaseId, "new-release")).outcome).to.equal("confirmed");
    const v21 = await release("2.1.0", [dev]);
    await tracker.stream.pollOnce();
    down = true;
    await agent.report();
    await agent.settled();
    expect(lines.join("\n")).to.include("notice kept for later");
    expect(active(), "nothing taken while the sender cannot be checked").to.equal(v2.releaseId.toLowerCase());
    down = false;
    await agent.retryPending();
    await agent.settled();
    expect(active(), "the kept notice is taken once the ledger answers").to.equal(v21.releaseId.toLowerCase());
  });

  it("CAP-11.3-g CAP-11.1-a-vi: a release a security-only device declined is offered again once what it runs is flagged vulnerable, and taken", async () => {
    const dev = makeDevice("security-only-client", 1);
    await f.fleet.connect(f.admin).enrolDevice(dev.credential.record);
    const options = deviceAgentOptions(f, dev, "security-only-client", { tracker: t.deviceTracker });
    const v3 = await release("3.0.0", [dev]);
    const first = await DeviceAgent.open(options);
    expect((await first.considerRelease(v3.releaseId, "new-release")).outcome).to.equal("confirmed");
    const agent = await DeviceAgent.open({ ...options, policy: { ...options.policy, securityOnly: true } });
    const active = () => {
      const c = agent.slots.snapshot().components[BOOT.toLowerCase()];
      return c?.slots[c.active]?.releaseId;
    };
    const v31 = await release("3.1.0", [dev]);
    await tracker.stream.pollOnce();
    await agent.report(); // told of 3.1.0 as an outdated step: declined
    await agent.settled();
    expect((await agent.statusReport()).declined).to.deep.include({ releaseId: v31.releaseId.toLowerCase(), code: "NOT_A_SECURITY_FIX" });
    expect(active()).to.equal(v3.releaseId.toLowerCase());
    await agent.report(); // reports the decline: not offered again while nothing changes
    await agent.settled();
    expect(active()).to.equal(v3.releaseId.toLowerCase());

    await (await f.registry.connect(f.admin).flagVulnerable(v3.releaseId, "CVE-2026-3")).wait();
    await tracker.stream.pollOnce();
    await agent.report(); // now a fix for what it runs: offered again, and taken
    await agent.settled();
    expect(active()).to.equal(v31.releaseId.toLowerCase());
    expect(tracker.views.device(dev.credential.record.id)!.device.statuses).to.deep.equal(["up-to-date"]);
  });

  it("CAP-11.2-b-i: a firmware server does not hand its download log to a key without TRACKER_ROLE", async () => {
    const { pullDownloadLog } = await import("../../../agent/tracker/downloadLog");
    await pullDownloadLog(tracker.store, f.server.url, new Wallet(Wallet.createRandom().privateKey)).then(
      () => expect.fail("read without the role"),
      (err) => expect(err.code).to.equal("DOWNLOAD_LOG_REFUSED"),
    );
  });
});
