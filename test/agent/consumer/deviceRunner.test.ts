import { expect } from "chai";
import { existsSync, promises as fs } from "node:fs";
import path from "node:path";
import { ethers } from "hardhat";
import { serverFixture, trackerBeside, writeImage } from "../../helpers/serverFixture";
import { DeviceRunner } from "../../../agent/consumer/deviceRunner";
import { loadDeviceConfig } from "../../../agent/consumer/deviceConfig";
import { componentId } from "../../../agent/core/release";
import { expectCode } from "../../helpers/expectCode";

const BOOT = componentId("acme.bootloader");

/**
 * The device's runner in its two deployments: an in-device tracker that follows the ledger
 * (DEP-8.1-a, DEP-8.2.1), or, on a constrained device, only a client module that learns of
 * releases from its upstream server module (DEP-8.1-b, DEP-8.2.2).
 */
describe("agent/consumer/deviceRunner: in-device tracker or client module only (DEP-8.1-a, DEP-8.1-b, DEP-8.2.2)", function () {
  this.timeout(180_000);
  let f: Awaited<ReturnType<typeof serverFixture>>;
  let t: Awaited<ReturnType<typeof trackerBeside>>;
  const chain = () => ({ provider: ethers.provider, registry: f.registry, fleet: f.fleet, domain: f.domain, fromBlock: 0 });

  before(async () => {
    f = await serverFixture();
    t = await trackerBeside(f, "runner tracker");
  });
  after(async () => {
    await t?.stop();
    await f?.close();
  });

  it("DEP-8.1-b: a device with only a client module scans no ledger events, is told of a release by its tracker, and installs it", async () => {
    const dataDir = path.join(f.dir, "client-only");
    const runner = await DeviceRunner.start(
      chain(),
      [
        {
          dataDir,
          device: f.devices.a,
          serverUrl: f.server.url,
          components: [BOOT],
          policy: { maxLedgerAgeSeconds: 10 * 365 * 24 * 3600 },
          healthCheck: async () => true,
          download: { startJitterMs: 0 },
          tracker: t.deviceTracker,
        },
      ],
      { stateDir: dataDir, followLedger: false, heartbeatMs: 200 },
    );
    try {
      expect(runner.watcher).to.equal(undefined);
      const [agent] = runner.agents;
      const publish = (version: string, seed: number) =>
        f.release(
          {
            component: "acme.bootloader",
            version,
            file: writeImage(f.dir, `runner-${version}.bin`, 64 * 1024, seed),
            hardware: ["acme-board-rev-a"],
            depends: [],
          },
          { grant: [f.devices.a] },
        );
      // The tracker plans for what a device runs: its first image is installed as at the factory.
      const v1 = await publish("1.0.0", 7);
      expect((await agent.considerRelease(v1.releaseId, "new-release")).outcome).to.equal("confirmed");
      const v2 = await publish("1.1.0", 8);
      await t.tracker.stream.pollOnce(); // the server module follows the ledger, not the device
      const active = () => {
        const c = agent.slots.snapshot().components[BOOT.toLowerCase()];
        return c?.slots[c.active]?.releaseId;
      };
      const deadline = Date.now() + 60_000;
      while (active() !== v2.releaseId.toLowerCase() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(active(), "installed from its upstream's notice").to.equal(v2.releaseId.toLowerCase());
      expect(existsSync(path.join(dataDir, "ledger-checkpoint.json")), "no ledger event scan").to.equal(false);
    } finally {
      await runner.stop();
    }
  });

  it("DEP-8.1-a: one in-device tracker (one ledger watcher, one checkpoint) serves every component the device's consumer runs", async () => {
    const dataDir = path.join(f.dir, "in-device");
    const sensor = componentId("acme.sensor-fw");
    const runner = await DeviceRunner.start(
      chain(),
      [
        {
          dataDir,
          device: f.devices.b,
          serverUrl: f.server.url,
          components: [BOOT, sensor],
          policy: { maxLedgerAgeSeconds: 10 * 365 * 24 * 3600 },
          healthCheck: async () => true,
          download: { startJitterMs: 0 },
        },
      ],
      { stateDir: dataDir, pollMs: 100 },
    );
    try {
      expect(runner.watcher).to.not.equal(undefined);
      const [agent] = runner.agents;
      const boot = await f.release(
        {
          component: "acme.bootloader",
          version: "5.0.0",
          file: writeImage(f.dir, "runner-boot-5.bin", 64 * 1024, 21),
          hardware: ["acme-board-rev-a"],
          depends: [],
        },
        { grant: [f.devices.b] },
      );
      const fw = await f.release(
        {
          component: "acme.sensor-fw",
          version: "5.0.0",
          file: writeImage(f.dir, "runner-sensor-5.bin", 64 * 1024, 22),
          hardware: ["acme-board-rev-a"],
          depends: ["acme.bootloader ^5.0.0"],
        },
        { grant: [f.devices.b] },
      );
      const active = (component: string) => {
        const c = agent.slots.snapshot().components[component.toLowerCase()];
        return c?.slots[c.active]?.releaseId;
      };
      const deadline = Date.now() + 60_000;
      while ((active(BOOT) !== boot.releaseId.toLowerCase() || active(sensor) !== fw.releaseId.toLowerCase()) && Date.now() < deadline) {
        await runner.agents[0].retryPending(); // the sensor firmware waits for its bootloader
        await new Promise((r) => setTimeout(r, 100));
      }
      expect([active(BOOT), active(sensor)], "both learned of from the ledger by the one watcher").to.deep.equal([
        boot.releaseId.toLowerCase(),
        fw.releaseId.toLowerCase(),
      ]);
      expect(existsSync(path.join(dataDir, "ledger-checkpoint.json")), "the in-device tracker's checkpoint").to.equal(true);
    } finally {
      await runner.stop();
    }
  });

  it("CAP-11.3-b issue 17: the agents of one process take turns past maxConcurrentUpdates: with a limit of 1, never two updates at once", async () => {
    const dataDir = path.join(f.dir, "turns");
    // An update runs from its ledger check ("checked") to its outcome (the agent's "release …: outcome" line).
    const events: string[] = [];
    const inFlight = new Set<string>();
    let most = 0;
    const device = (name: "a" | "b") => ({
      dataDir: path.join(dataDir, name),
      device: f.devices[name],
      serverUrl: f.server.url,
      components: [BOOT],
      policy: { maxLedgerAgeSeconds: 10 * 365 * 24 * 3600 },
      healthCheck: async () => true,
      download: { startJitterMs: 0 },
      onPhase: (phase: string) => {
        events.push(`${name} ${phase}`);
        if (phase === "checked") most = Math.max(most, inFlight.add(name).size);
      },
      log: (line: string) => {
        const m = /^release (0x[0-9a-f]+): (\S+) \(([A-Z0-9_]+)\)/.exec(line);
        if (m) {
          events.push(`${name} ${m[2]} ${m[3]} ${m[1]}`);
          inFlight.delete(name);
        }
      },
    });
    const runner = await DeviceRunner.start(chain(), [device("a"), device("b")], { stateDir: dataDir, pollMs: 100, retryMs: 200, maxConcurrentUpdates: 1 });
    try {
      // (The watcher also hears the fixture's earlier releases: the count is of this one, the limit of all.)
      const { releaseId } = await f.release(
        { component: "acme.bootloader", version: "6.0.0", file: writeImage(f.dir, "turns-6.bin", 64 * 1024, 31), hardware: ["acme-board-rev-a"], depends: [] },
        { grant: [f.devices.a, f.devices.b] },
      );
      const deadline = Date.now() + 60_000;
      const done = () => events.filter((e) => e.endsWith(` confirmed OK ${releaseId.toLowerCase()}`)).sort();
      while (done().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(done(), events.join(", ")).to.deep.equal([`a confirmed OK ${releaseId.toLowerCase()}`, `b confirmed OK ${releaseId.toLowerCase()}`]);
      expect(most, events.join(", ")).to.equal(1);
    } finally {
      await runner.stop();
    }
  });

  it("REQ-10b-i issue 16: an idle device following the ledger says once when its view freezes (LEDGER_STALE) and once when it moves again, without asking the ledger more", async () => {
    const dataDir = path.join(f.dir, "idle-freeze");
    const lines: string[] = [];
    await ethers.provider.send("evm_mine", []);
    // The fixture's chain runs ahead of this machine's clock (earlier tests moved its time): the device's clock follows it.
    const skew = (await ethers.provider.getBlock("latest"))!.timestamp * 1000 - Date.now();
    const runner = await DeviceRunner.start(
      chain(),
      [
        {
          dataDir,
          device: f.devices.b,
          serverUrl: f.server.url,
          components: [BOOT],
          policy: { maxLedgerAgeSeconds: 2 },
          healthCheck: async () => true,
          download: { startJitterMs: 0 },
          clock: () => Date.now() + skew,
        },
      ],
      { stateDir: dataDir, retryMs: 100, pollMs: 100, log: (l) => lines.push(l) },
    );
    try {
      const until = async (what: RegExp) => {
        for (let i = 0; i < 100 && !lines.some((l) => what.test(l)); i++) await new Promise((r) => setTimeout(r, 100));
        expect(lines.join("\n")).to.match(what);
      };
      await until(/ledger: LEDGER_STALE: the newest ledger block seen is \d+ s old \(limit 2 s\)/);
      await new Promise((r) => setTimeout(r, 500)); // more rounds: still one line
      expect(lines.filter((l) => l.includes("LEDGER_STALE"))).to.have.length(1);
      await ethers.provider.send("evm_mine", []);
      await runner.watcher!.poll();
      await until(/ledger: the view moves again \(was LEDGER_STALE\)/);
    } finally {
      await runner.stop();
    }
  });

  it("refuses a device that neither follows the ledger nor has a tracker, in the runner and in device.json", async () => {
    const dataDir = path.join(f.dir, "nowhere");
    await expectCode(
      DeviceRunner.start(
        chain(),
        [{ dataDir, device: f.devices.b, serverUrl: f.server.url, components: [BOOT], policy: { maxLedgerAgeSeconds: 3600 }, healthCheck: async () => true }],
        {
          stateDir: dataDir,
          followLedger: false,
        },
      ),
      "NO_UPSTREAM",
    );
    const file = path.join(f.dir, "device-nowhere.json");
    await fs.writeFile(
      file,
      JSON.stringify({
        privateKey: "0x" + "11".repeat(32),
        credential: {},
        components: ["acme.bootloader"],
        dataDir: "d",
        healthCheck: "pass",
        followLedger: false,
      }),
    );
    const err = await loadDeviceConfig(file).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(err?.code).to.equal("DEVICE_CONFIG");
    expect(err?.message).to.match(/followLedger is false but no tracker is given/);
  });
});
