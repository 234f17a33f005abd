import { expect } from "chai";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { World } from "./harness/world";
import type { CliProcess } from "./harness/cliProcess";
import type { DeviceHandle } from "./harness/device";
import type { Published } from "./harness/author";
import { expectOutcome, expectRunning, expectUntouched, shipInstalled } from "./harness/outcome";

const BOOT = "acme.bootloader";

/**
 * A health check the test holds: it waits while `<dir>/hold` exists, fails if `<dir>/fail`
 * exists, passes otherwise (and gives up after a minute, so that nothing outlives the test).
 */
const HEALTH_SCRIPT = `
const fs = require("node:fs"), path = require("node:path");
const dir = process.argv[2], until = Date.now() + 60000;
if (!fs.existsSync(process.env.OTA_IMAGE)) process.exit(2);
const t = setInterval(() => {
  if (fs.existsSync(path.join(dir, "fail")) || Date.now() > until) process.exit(1);
  if (!fs.existsSync(path.join(dir, "hold"))) process.exit(0);
}, 50);
`;

/**
 * The device agent killed (SIGKILL, as a power cut) in each phase of an install that can be
 * caught from outside, then started again on the same data folder (CAP-11.1-a-v, REQ-10c-ii,
 * CAP-11.1-a-iii; the kill-in-every-state table of Mender's install tests): during the download,
 * after it while waiting for the content key, and during the trial boot (a health check that
 * blocks). After the restart the device runs either its old image or the completed new one, byte
 * for byte, with the floor that goes with it; a slot is never left half written and in use. The
 * device reports to a real tracker, which must end up with the true last result.
 */
describe("e2e: a device killed in each install phase", function () {
  this.timeout(120_000);
  let world: World;
  let d: DeviceHandle;
  let device: CliProcess;
  let running: Published;
  let healthDir: string;
  let minor = 0;
  const next = () => `1.${++minor}.0`;

  before(async () => {
    world = await World.start();
    d = await world.device("crash-1");
    await Promise.all([world.startServer(), world.startTracker()]);
    healthDir = path.join(world.dir, "health");
    mkdirSync(healthDir, { recursive: true });
    const script = path.join(healthDir, "check.js");
    writeFileSync(script, HEALTH_SCRIPT);
    d.writeConfig({
      components: [BOOT],
      tracker: world.deviceTracker({ heartbeatMs: 300 }),
      healthCheck: { command: [process.execPath, script, healthDir], timeoutMs: 60_000 },
    });
    device = await world.startDevice(d);
    running = await shipInstalled(world, device, BOOT, "1.0.0", [d.id]);
  });
  after(async () => {
    rmSync(path.join(healthDir, "hold"), { force: true }); // a check left running by a killed device ends
    await world?.stop();
  });
  afterEach(() => {
    world.firmwareProxy.clearFaults();
    rmSync(path.join(healthDir, "hold"), { force: true });
    rmSync(path.join(healthDir, "fail"), { force: true });
  });

  /** SIGKILL to the device's process group: no clean shutdown, whatever was in flight is lost. */
  async function killDevice(): Promise<void> {
    await device.kill();
    world.processes.delete(device);
  }

  /** `device run` again on the same device.json and data folder; not waited for (it may finish an update first). */
  function restartDevice(): CliProcess {
    device = world.spawn(`device ${d.label}`, ["device", "run", "--device-config", d.configFile], { OTA_SERVER_URL: world.firmwareProxy.url });
    return device;
  }

  /** The tracker's last word on the device: it runs `r`, and its last result is `r` confirmed. */
  async function trackerSeesConfirmed(r: Published): Promise<void> {
    await world.waitFor(`the tracker to see ${r.version} confirmed`, async () => {
      const { device: v } = await world.trackerDevice(d.id);
      return v.installed.some((i) => i.releaseId.toLowerCase() === r.releaseId) && v.lastOutcome !== null ? v : undefined;
    });
    // A few heartbeats later, still so: nothing reported after the confirmation overrides it.
    await new Promise((r) => setTimeout(r, 1_000));
    const { device: v } = await world.trackerDevice(d.id);
    expect({ outcome: v.lastOutcome, code: v.lastCode, statuses: v.statuses }, "the tracker's view of the device").to.deep.equal({
      outcome: "confirmed",
      code: "OK",
      statuses: ["up-to-date"],
    });
  }

  it("REQ-10c-ii CAP-11.1-a-v: killed during the download, it keeps only verified chunks, and after the restart resumes and installs", async () => {
    const r = await world.author.publish(BOOT, next());
    world.firmwareProxy.setFault(r.releaseId, { kind: "trickle", pieceBytes: 8 * 1024, delayMs: 40 });
    await world.author.submit(world.serverUrl, r);
    await world.author.grant(world.serverUrl, r, [d.id]);
    const kept = await world.waitFor("some verified chunks on disk", async () => (await d.partialDownload(r.releaseId)) || undefined);
    await killDevice();
    await expectUntouched(d, BOOT, running);
    expect(await d.partialDownload(r.releaseId), "what was kept is still there").to.be.at.least(kept);
    expect((await d.updateState())?.phase, "the interrupted update's persisted phase").to.equal("downloading");
    world.firmwareProxy.clearFaults();
    const requestsBefore = world.firmwareProxy.requests(new RegExp(`/v1/releases/${r.releaseId}/artifact`)).length;
    restartDevice();
    await expectOutcome(world, device, r.releaseId, { outcome: "confirmed", code: "OK" }, { timeoutMs: 60_000 });
    const resumed = world.firmwareProxy.requests(new RegExp(`/v1/releases/${r.releaseId}/artifact`)).slice(requestsBefore);
    expect(resumed.map((e) => e.range).filter(Boolean), "the restarted device asked only for the rest (Range)").to.not.deep.equal([]);
    await expectRunning(d, BOOT, r);
    running = r;
    await trackerSeesConfirmed(r);
  });

  it("REQ-10c-ii: killed after the download while waiting for the key, it installs after the restart without downloading the artifact again", async () => {
    const r = await world.author.publish(BOOT, next());
    await world.author.submit(world.serverUrl, r);
    const held = world.firmwareProxy.hold(new RegExp(`/v1/releases/${r.releaseId}/key`));
    await world.author.grant(world.serverUrl, r, [d.id]);
    await held.reached;
    await killDevice();
    held.release(); // the answer goes to a device that is no longer there
    await expectUntouched(d, BOOT, running);
    expect(await d.partialDownload(r.releaseId), "the whole verified download is kept").to.be.above(0);
    const fullBefore = world.firmwareProxy.requests(new RegExp(`/v1/releases/${r.releaseId}/artifact`)).filter((e) => !e.range).length;
    restartDevice();
    await expectOutcome(world, device, r.releaseId, { outcome: "confirmed", code: "OK" }, { timeoutMs: 60_000 });
    const fullAfter = world.firmwareProxy.requests(new RegExp(`/v1/releases/${r.releaseId}/artifact`)).filter((e) => !e.range).length;
    expect(fullAfter, "no second download from the start").to.equal(fullBefore);
    await expectRunning(d, BOOT, r);
    running = r;
    await trackerSeesConfirmed(r);
  });

  /** Ships a release, holds its trial boot, kills the device then; returns the release once the kill is done. */
  async function killedInTrial(): Promise<Published> {
    writeFileSync(path.join(healthDir, "hold"), "");
    const r = await world.author.ship(world.serverUrl, BOOT, next(), [d.id]);
    await world.waitFor("the trial boot to start", async () =>
      (await d.updateState())?.phase === "trial" && (await d.boot())?.components[r.record.component.toLowerCase()]?.trial ? true : undefined,
    );
    await killDevice();
    // On "flash": the old image still active and whole, the new one complete in the other slot, on trial.
    const boot = (await d.boot())!;
    const c = boot.components[r.record.component.toLowerCase()];
    expect(c.trial, "a trial is under way").to.not.equal(null);
    expect(c.slots[c.trial!.slot]?.releaseId).to.equal(r.releaseId);
    const active = await d.active(BOOT);
    expect(active?.releaseId).to.equal(running.releaseId);
    expect(active!.bytes.equals(running.image), "the old image is intact").to.equal(true);
    expect(await d.partialDownload(r.releaseId), "the download was removed once installed").to.equal(0);
    return r;
  }

  it("CAP-11.1-a-v REQ-10c-ii CAP-11.1-a-i: killed during the trial boot, it finishes the trial after the restart (confirmed), and reports the confirmation", async () => {
    const r = await killedInTrial();
    rmSync(path.join(healthDir, "hold"));
    restartDevice();
    await device.waitForLine(new RegExp(`trial of ${r.releaseId} after restart: confirmed \\(OK\\)`), { timeoutMs: 60_000, context: world.context });
    await device.waitForLine(/running 1 device agent/, { timeoutMs: 60_000, context: world.context });
    await expectRunning(d, BOOT, r);
    running = r;
    await trackerSeesConfirmed(r);
  });

  it("CAP-11.1-a-iii REQ-10c-ii: killed during the trial boot of an image that then fails its health check, it rolls back to the old image after the restart", async () => {
    const r = await killedInTrial();
    writeFileSync(path.join(healthDir, "fail"), "");
    rmSync(path.join(healthDir, "hold"));
    restartDevice();
    await device.waitForLine(new RegExp(`trial of ${r.releaseId} after restart: rolled-back \\([A-Z_]+\\)`), { timeoutMs: 60_000, context: world.context });
    await device.waitForLine(/running 1 device agent/, { timeoutMs: 60_000, context: world.context });
    await expectUntouched(d, BOOT, running);
    await world.waitFor("the tracker to hear of the failed update", async () => {
      const { device: v } = await world.trackerDevice(d.id);
      return v.lastOutcome === "rolled-back" && v.statuses.includes("failed") ? v : undefined;
    });
    // The fault cleared, the next release installs.
    rmSync(path.join(healthDir, "fail"));
    const good = await shipInstalled(world, device, BOOT, next(), [d.id]);
    await expectRunning(d, BOOT, good);
    running = good;
    await trackerSeesConfirmed(good);
  });
});
