import { expect } from "chai";
import { Wallet, ZeroHash, keccak256, toUtf8Bytes } from "ethers";
import { World } from "./harness/world";
import type { CliProcess } from "./harness/cliProcess";
import type { DeviceHandle } from "./harness/device";
import type { Published } from "./harness/author";
import { TrackerProxy } from "./harness/trackerProxy";
import { expectOutcome, expectRunning, shipInstalled } from "./harness/outcome";
import { sealMessage, type Envelope } from "../../agent/crypto/sealedMessage";
import { NOTICE_KIND, type UpdateNotice } from "../../agent/core/updateNotice";
import { componentId } from "../../agent/core/release";
import { encodeVersion } from "../../agent/core/version";
import { signRelease } from "../../agent/crypto/releaseSignature";

const BOOT = "acme.bootloader";

/**
 * The link between a device and its tracker module (client-module mode, DEP-8.2.2) and the
 * versions a device takes (REQ-10d-i): an older version refused by the registry and by the
 * device, update notices forged, altered or replayed on the way to the device (CAP-11.2-d,
 * CAP-11.2-m-b), a captured status report posted again (CAP-11.2-m-a), and the tracker process
 * killed mid-rollout (CAP-11.2-a). Real `server start`, `tracker start` and `device run`
 * processes; an HTTP proxy between the device and the tracker plays the network.
 */
describe("e2e: the tracker link (DEP-8.2.2), downgrades and replays", function () {
  this.timeout(120_000);
  let world: World;
  let proxy: TrackerProxy;
  let d: DeviceHandle;
  let other: DeviceHandle;
  let device: CliProcess;
  let v100: Published;
  let running: Published;

  before(async () => {
    world = await World.start();
    // One transaction at a time (the node automines: a nonce ahead of the next is refused).
    d = await world.device("link-1");
    other = await world.device("link-other");
    await Promise.all([world.startServer(), world.startTracker()]);
    proxy = await TrackerProxy.start(world.trackerModule.url);
    d.writeConfig({ components: [BOOT], tracker: world.deviceTracker({ url: proxy.url, heartbeatMs: 300 }) });
    device = await world.startDevice(d);
    v100 = await shipInstalled(world, device, BOOT, "1.0.0", [d.id]);
    running = await shipInstalled(world, device, BOOT, "1.1.0", [d.id]);
  });
  after(async () => {
    await proxy?.close();
    await world?.stop();
  });

  /** A notice as the tracker module seals it (or as a forger does, with `o`). */
  function notice(r: Published, o: { signer?: Wallet; from?: string; to?: DeviceHandle; issuedAt?: number } = {}): Promise<Envelope> {
    const to = o.to ?? d;
    const signer = o.signer ?? world.trackerModule.key;
    const body: UpdateNotice = { releaseId: r.releaseId, component: componentId(r.component), reason: "requested" };
    return sealMessage(
      { kind: NOTICE_KIND, from: o.from ?? world.trackerModule.id, to: to.id, issuedAt: o.issuedAt ?? Date.now(), body },
      { kind: "account", signMessage: (m) => signer.signMessage(m) },
      to.record.publicKey,
    );
  }

  /**
   * Hands `envelope` (naming `r`) to the device in its tracker's next answer; returns the device's
   * log lines from then until it refused the notice or acted on it. (The tracker's own notices
   * for other releases may come and go meanwhile.)
   */
  async function deliver(envelope: Envelope, r: Published): Promise<string[]> {
    const from = device.lines.length;
    await proxy.inject(envelope);
    const done = new RegExp(`notice refused:|notice: release ${r.releaseId} `);
    await world.waitFor("the device to take or refuse the notice", () => device.lines.slice(from).some((l) => done.test(l)) || undefined);
    return device.lines.slice(from);
  }

  /** What the firmware server was asked about a release so far. */
  const fetched = (r: Published) => world.firmwareProxy.requests(new RegExp(r.releaseId)).length;

  it("REQ-10d-i: the registry refuses to publish a version not above the component's latest", async () => {
    // The author's tool refuses it before anything is sent ...
    await expect(world.author.publish(BOOT, "1.0.5")).to.be.rejectedWith(/VERSION_NOT_GREATER|not greater than the latest published 1\.1\.0/);
    // ... and the registry itself, for a correctly signed record sent past the tool.
    const { registry, admin, domain } = world.ledger;
    for (const version of ["1.0.5", "1.1.0"]) {
      const record = { ...running.record, version: encodeVersion(version), fileHash: keccak256(toUtf8Bytes(`older ${version}`)) };
      const signature = await signRelease(admin, domain, record);
      await expect(registry.publishRelease.staticCall(record, admin.address, signature, running.witnesses))
        .to.be.revertedWithCustomError(registry, "UpdateRegistryVersionNotIncreasing")
        .withArgs(running.record.component, running.record.version, encodeVersion(version));
    }
    expect(await world.ledger.registry.latestRelease(componentId(BOOT), true), "the latest release is still 1.1.0").to.equal(running.releaseId);
    await expectRunning(d, BOOT, running);
  });

  it("REQ-10d-i REQ-10d-ii: a genuine notice offering an older release is refused (NOT_NEWER_THAN_INSTALLED); replayed, it is refused before any check (NOTICE_REPLAYED)", async () => {
    const before = fetched(v100);
    const old = await notice(v100);
    const lines = await deliver(old, v100);
    expect(lines.join("\n")).to.include(`release ${v100.releaseId}: rejected (NOT_NEWER_THAN_INSTALLED)`);
    // The same envelope again (a replayed record): refused as a replay, nothing considered.
    const again = await deliver(old, v100);
    expect(
      again.find((l) => /notice refused:/.test(l)),
      again.join("\n"),
    ).to.match(/not newer than the last one/);
    expect(again.join("\n")).to.not.include(`release ${v100.releaseId}:`);
    expect(fetched(v100), "nothing of the older release was fetched").to.equal(before);
    await expectRunning(d, BOOT, running);
    // Not a failed update at the tracker: the device is up to date there.
    await world.waitFor("the tracker to list the device up to date", async () => {
      const { device: view } = await world.trackerDevice(d.id);
      return view.statuses.includes("up-to-date") && !view.statuses.includes("failed") ? view : undefined;
    });
  });

  const forgeries: { name: string; make: () => Promise<Envelope>; refusal: RegExp }[] = [
    {
      name: "signed by a key the ledger does not register for the module",
      make: () => notice(v100, { signer: Wallet.createRandom() as unknown as Wallet }),
      refusal: /not signed by module/,
    },
    {
      name: "from a module that is not registered",
      make: () => notice(v100, { from: keccak256(toUtf8Bytes("e2e unregistered module")) }),
      refusal: /not this device's upstream|not registered/,
    },
    { name: "sealed for another device", make: () => notice(v100, { to: other }).then((e) => ({ ...e, to: d.id })), refusal: /./ },
    {
      name: "altered on the way (one byte of the sealed body)",
      make: () => notice(v100).then((e) => ({ ...e, sealed: e.sealed.slice(0, 80) + (e.sealed[80] === "0" ? "1" : "0") + e.sealed.slice(81) })),
      refusal: /./,
    },
  ];
  for (const f of forgeries) {
    it(`CAP-11.2-d CAP-11.2-m-b: refuses an upstream notice ${f.name}, and acts on nothing`, async () => {
      const lines = await deliver(await f.make(), v100);
      expect(
        lines.find((l) => /notice refused:/.test(l)),
        lines.join("\n"),
      ).to.match(f.refusal);
      expect(lines.join("\n")).to.not.include(`release ${v100.releaseId}:`);
      await expectRunning(d, BOOT, running);
    });
  }

  it("CAP-11.2-d CAP-11.2-m-b: refuses a notice from another registered module (not its upstream), then still takes its own upstream's", async () => {
    const key = new Wallet(keccak256(toUtf8Bytes("e2e second module key")));
    const id = keccak256(toUtf8Bytes("e2e second module")).toLowerCase();
    await world.ledger.send(world.ledger.fleet.registerTrackerModule(id, key.address, key.signingKey.compressedPublicKey, ZeroHash));
    const lines = await deliver(await notice(v100, { signer: key, from: id }), v100);
    expect(
      lines.find((l) => /notice refused:/.test(l)),
      lines.join("\n"),
    ).to.match(/not this device's upstream/);
    // The genuine upstream is still heard (its notice checked, the older release refused on its merits).
    const genuine = await deliver(await notice(v100), v100);
    expect(genuine.join("\n")).to.include(`release ${v100.releaseId}: rejected (NOT_NEWER_THAN_INSTALLED)`);
    await expectRunning(d, BOOT, running);
  });

  it("CAP-11.2-m-a: a captured status report posted again is refused (REPORT_REPLAYED), and the tracker's record of the device does not move", async () => {
    const captured = await world.waitFor("an accepted report", () => proxy.reports.find((r) => r.status === 200 && r.answer?.counter !== undefined));
    await world.waitFor("a newer report", () => proxy.reports.some((r) => r.status === 200 && r.answer!.counter! > captured.answer!.counter!));
    const post = (body: unknown) =>
      fetch(new URL("/v1/reports", world.trackerModule.url), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const res = await post(captured.envelope);
    expect(res.status).to.equal(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).to.equal("REPORT_REPLAYED");
    // Altered: refused too, whatever byte was changed.
    const altered = {
      ...captured.envelope,
      sealed: captured.envelope.sealed.slice(0, 90) + (captured.envelope.sealed[90] === "0" ? "1" : "0") + captured.envelope.sealed.slice(91),
    };
    const res2 = await post(altered);
    expect(res2.status, await res2.text()).to.be.within(400, 499);
    const { reports } = (await world.trackerDevice(d.id)) as unknown as { reports: { counter: number }[] };
    const counters = reports.map((r) => r.counter);
    expect(new Set(counters).size, "every stored report has its own counter").to.equal(counters.length);
    expect(
      counters.filter((c) => c === captured.answer!.counter),
      "the replayed report was stored once",
    ).to.have.length(1);
    await expectRunning(d, BOOT, running);
  });

  it("CAP-11.2-a PROC-5: the tracker killed (SIGKILL) mid-rollout and restarted on its data catches up: the device's new version, its earlier reports kept", async () => {
    const { reports: earlier } = (await world.trackerDevice(d.id)) as unknown as { reports: { counter: number }[] };
    const lastBefore = Math.max(...earlier.map((x) => x.counter));
    const r = await world.author.publish(BOOT, "1.2.0");
    await world.author.submit(world.serverUrl, r);
    const held = world.firmwareProxy.hold(new RegExp(`/v1/releases/${r.releaseId}/manifest`));
    await world.author.grant(world.serverUrl, r, [d.id]);
    await held.reached; // the device is on its way
    await world.trackerProcess!.kill();
    world.processes.delete(world.trackerProcess!);
    held.release();
    await expectOutcome(world, device, r.releaseId, { outcome: "confirmed", code: "OK" });
    await expectRunning(d, BOOT, r);
    const from = device.lines.length;
    await device.waitForLine(/report: .*no tracker answers/, { from, context: world.context }); // reports fail meanwhile
    await world.startTracker();
    const view = await world.waitFor("the restarted tracker to see the device on 1.2.0", async () => {
      const v = await world.trackerDevice(d.id);
      return v.device.installed.some((i) => i.releaseId.toLowerCase() === r.releaseId) && v.device.statuses.includes("up-to-date") ? v : undefined;
    });
    const counters = (view as unknown as { reports: { counter: number }[] }).reports.map((x) => x.counter);
    expect(Math.min(...counters), "the restarted tracker kept its reports (and counters) from before the kill").to.be.at.most(lastBefore);
    const { releases } = await world.trackerGet<{ releases: { id: string }[] }>("/v1/releases");
    expect(
      releases.map((x) => x.id.toLowerCase()),
      "the release published while it was down is in its mirror",
    ).to.include(r.releaseId);
    running = r;
  });
});
