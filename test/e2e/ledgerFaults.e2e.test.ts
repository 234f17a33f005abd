import { expect } from "chai";
import { World } from "./harness/world";
import type { CliProcess } from "./harness/cliProcess";
import type { DeviceHandle } from "./harness/device";
import type { Published } from "./harness/author";
import { expectOutcome, expectRunning, expectUntouched, shipInstalled } from "./harness/outcome";

const BOOT = "acme.bootloader";

/**
 * The ledger as the agents see it, failing: the RPC link to the node cut and restored (a node
 * down, then back with its state), before and during an update, and the chain reorganised under
 * a release the agents had already seen. The device (`device run`, in-device tracker, DEP-8.2.1)
 * and the tracker reach the node through a TCP proxy; the firmware server reaches it directly,
 * and the test publishes to the node directly. Nothing may be installed from a view the ledger
 * no longer backs (REQ-10c-ii), and every agent catches up once the node answers again.
 */
describe("e2e: the ledger unreachable, then back; the chain reorganised", function () {
  this.timeout(120_000);
  let world: World;
  let d: DeviceHandle;
  let device: CliProcess;
  let running: Published;
  let minor = 0;
  const next = () => `1.${++minor}.0`;

  before(async () => {
    world = await World.start();
    d = await world.device("ledger-1");
    await Promise.all([world.startServer({ directRpc: true }), world.startTracker()]);
    d.writeConfig({ components: [BOOT], tracker: world.deviceTracker({ heartbeatMs: 300 }) });
    device = await world.startDevice(d);
    running = await shipInstalled(world, device, BOOT, "1.0.0", [d.id]);
  });
  after(async () => {
    await world?.stop();
  });
  afterEach(async () => {
    world.firmwareProxy.clearFaults();
    await world.rpcProxy.restore();
  });

  /** The tracker's view: the device runs `r` and is up to date, and `r` is in its mirror of the ledger. */
  async function trackerSees(r: Published): Promise<void> {
    await world.waitFor(`the tracker to see the device on ${r.version}`, async () => {
      const { device: view } = await world.trackerDevice(d.id);
      return view.installed.some((i) => i.releaseId.toLowerCase() === r.releaseId) && view.statuses.includes("up-to-date") ? view : undefined;
    });
  }

  it("DEP-8.2.1 REQ-10c-ii: releases published and revoked while the node is unreachable: once it is back, every agent catches up and nothing revoked is installed", async () => {
    const from = device.lines.length;
    await world.rpcProxy.cut();
    await device.waitForLine(/^err: ledger: /, { from, context: world.context }); // the watcher noticed
    // Meanwhile on the ledger: a release published and revoked, then the next one.
    const revoked = await world.author.ship(world.serverUrl, BOOT, next(), [d.id]);
    await world.ledger.send(world.ledger.registry.revokeRelease(revoked.releaseId, "withdrawn during the outage"));
    await expectUntouched(d, BOOT, running, revoked);
    await world.rpcProxy.restore();
    await expectOutcome(world, device, revoked.releaseId, { outcome: "rejected", code: "RELEASE_REVOKED" }, { from });
    await expectUntouched(d, BOOT, running, revoked);
    expect(world.firmwareProxy.requests(new RegExp(revoked.releaseId)), "nothing of the revoked release was fetched").to.deep.equal([]);
    const good = await world.author.ship(world.serverUrl, BOOT, next(), [d.id]);
    await expectOutcome(world, device, good.releaseId, { outcome: "confirmed", code: "OK" }, { from });
    await expectRunning(d, BOOT, good);
    running = good;
    await trackerSees(good);
  });

  it("REQ-10c-ii DEP-8.2.1: the node unreachable in the middle of an update (after the download) is a reason to retry (LEDGER_UNAVAILABLE), and the update completes once it is back", async () => {
    const r = await world.author.publish(BOOT, next());
    await world.author.submit(world.serverUrl, r);
    const held = world.firmwareProxy.hold(new RegExp(`/v1/releases/${r.releaseId}/key`));
    const from = device.lines.length;
    await world.author.grant(world.serverUrl, r, [d.id]);
    await held.reached; // downloaded and verified; the device's next ledger read is the revocation check
    await world.rpcProxy.cut();
    held.release();
    await expectOutcome(world, device, r.releaseId, { outcome: "blocked", code: "LEDGER_UNAVAILABLE" }, { from });
    await expectUntouched(d, BOOT, running);
    expect(await d.partialDownload(r.releaseId), "the verified download is kept to resume from").to.be.above(0);
    await world.rpcProxy.restore();
    await device.waitForLine(new RegExp(`release ${r.releaseId}: confirmed \\(OK\\)`), { from, timeoutMs: 40_000, context: world.context });
    const tries = device.lines.slice(from).filter((l) => l.includes(`release ${r.releaseId}: blocked`));
    for (const t of tries) expect(t).to.match(/\(LEDGER_UNAVAILABLE\)$/);
    await expectRunning(d, BOOT, r);
    running = r;
    await trackerSees(r);
  });

  it("REQ-10d-ii REQ-10c-ii CAP-11.4-a: a release the agents saw, then reorganised away, is not installed; the replacement branch's release is", async () => {
    const snapshot = await world.ledger.rpc("evm_snapshot");
    const version = next();
    const gone = await world.author.publish(BOOT, version);
    await world.author.submit(world.serverUrl, gone);
    const held = world.firmwareProxy.hold(new RegExp(`/v1/releases/${gone.releaseId}/key`));
    const from = device.lines.length;
    await world.author.grant(world.serverUrl, gone, [d.id]);
    await held.reached; // the device saw the release and downloaded it
    await world.waitFor("the tracker to mirror the release", async () => {
      const { releases } = await world.trackerGet<{ releases: { id: string }[] }>("/v1/releases");
      return releases.some((x) => x.id.toLowerCase() === gone.releaseId);
    });
    // The chain drops the blocks from the snapshot on, and grows another branch: the same version, other bytes.
    expect(await world.ledger.rpc("evm_revert", [snapshot])).to.equal(true);
    world.ledger.sender.reset();
    const replacement = await world.author.publish(BOOT, version, { seed: 4242 });
    expect(replacement.releaseId).to.not.equal(gone.releaseId);
    await world.author.submit(world.serverUrl, replacement);
    await world.author.grant(world.serverUrl, replacement, [d.id]);
    held.release();
    // A release the ledger no longer knows is not trusted: checked again after the download, it is as revoked.
    await expectOutcome(world, device, gone.releaseId, { outcome: "rejected", code: "RELEASE_REVOKED" }, { from });
    await expectOutcome(world, device, replacement.releaseId, { outcome: "confirmed", code: "OK" }, { from });
    await expectRunning(d, BOOT, replacement);
    const boot = (await d.boot())!;
    const c = boot.components[replacement.record.component.toLowerCase()];
    expect(
      [c.slots.a, c.slots.b].map((s) => s?.releaseId),
      "no slot records the reorganised release",
    ).to.not.include(gone.releaseId);
    running = replacement;
    // The tracker dropped it too, and took the replacement.
    await world.waitFor("the tracker to drop the reorganised release", async () => {
      const { releases } = await world.trackerGet<{ releases: { id: string }[] }>("/v1/releases");
      const ids = releases.map((x) => x.id.toLowerCase());
      return !ids.includes(gone.releaseId) && ids.includes(replacement.releaseId);
    });
    await trackerSees(replacement);
  });
});
