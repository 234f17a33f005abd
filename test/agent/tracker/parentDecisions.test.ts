import { expect } from "chai";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { rmSync } from "node:fs";
import { Wallet, encodeBytes32String } from "ethers";
import { verifyUpdateNotice } from "../../../agent/consumer/upstreamNotice";
import { sealMessage, type Envelope } from "../../../agent/crypto/sealedMessage";
import { TrackerModule } from "../../../agent/tracker/trackerModule";
import { DECISIONS_KIND, type UpdateDecisions } from "../../../agent/tracker/moduleMessages";
import { expectCode } from "../../helpers/expectCode";
import { BOOTLOADER, postReport, sealedReport, startTracker, testDevice, trackerChain, type TrackerChain } from "../../helpers/trackerFixture";

/**
 * DEP-8.2.3 and CAP-11.2-d: an intermediate module starts only what its registered parent decided
 * (TrackerModule.takeDecisions). Decisions signed by another key, sent by another module, from a
 * parent retired on the ledger (or below a retired module), or replayed, also after a restart, are
 * refused with their code and change nothing; the parent's genuine fresh decisions are taken.
 * Real modules on a real chain; the genuine decisions are the server module's own answers.
 */

type Module = Awaited<ReturnType<TrackerChain["registerModule"]>>;
type Running = Awaited<ReturnType<typeof startTracker>>;
type Decision = UpdateDecisions["decisions"][number];

/** Decisions as a module seals them to the module below: kind, sender, recipient, issue time, signed by `signedWith`. */
function decisionsFrom(from: string, signedWith: string, to: Module, decisions: Decision[], issuedAt = Date.now(), sealedTo = to.publicKey) {
  return sealMessage(
    { kind: DECISIONS_KIND, from, to: to.id, issuedAt, body: { decisions } },
    { kind: "account", signMessage: (m) => new Wallet(signedWith).signMessage(m) },
    sealedTo,
  );
}

/** What an intermediate holds of its parent's decisions: the decisions per device and the replay mark, and what is left to send up. */
function stateOf(tracker: TrackerModule, deviceIds: string[]) {
  return {
    decisions: Object.fromEntries(deviceIds.map((id) => [id, tracker.store.decisions.of(id)])),
    replayMark: tracker.store.marks.get("parent-decisions"),
    outbox: tracker.store.hierarchy.outbox(1000).length,
  };
}

/**
 * The link between an intermediate and its parent: it passes each exchange on and keeps the
 * parent's answer, or (with `playBack` set) answers that instead without passing anything on, as
 * someone on the wire replaying a captured answer would.
 */
async function startLink(parentUrl: string) {
  const link = {
    answers: [] as string[],
    playBack: undefined as string | undefined,
    url: "",
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (link.playBack !== undefined) return void res.writeHead(200, { "content-type": "application/json" }).end(link.playBack);
      fetch(new URL(req.url!, parentUrl), { method: req.method, headers: { "content-type": "application/json" }, body: Buffer.concat(chunks) }).then(
        async (answer) => {
          const text = await answer.text();
          if (answer.ok) link.answers.push(text);
          res.writeHead(answer.status, { "content-type": "application/json" }).end(text);
        },
        () => res.destroy(),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  link.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return link;
}

describe("agent/tracker/trackerModule: an intermediate takes decisions only from its registered parent (DEP-8.2.3, CAP-11.2-d)", function () {
  this.timeout(240_000);
  let t: TrackerChain;
  let server: Module;
  let sibling: Module;
  let plant: Module;
  let running: Running;
  let link: Awaited<ReturnType<typeof startLink>>;
  let mid: Running;
  let boot1: Awaited<ReturnType<TrackerChain["publish"]>>;
  let boot11: Awaited<ReturnType<TrackerChain["publish"]>>;
  let genuine: string; // the server's answer carrying its decision of 1.1.0 for the device, as it crossed the link
  const device = testDevice("parent decisions p1", 1, "decisions-plant");
  const deviceId = device.record.id.toLowerCase();
  const onBoot = (r: { id: string; version: string }) => [{ component: BOOTLOADER, release: r }];
  /** A decision a forger would like the intermediate to start: its device "requested" to take 1.0.0 again. */
  const forgedDecision = (): Decision => ({
    deviceId,
    releaseId: boot1.id,
    component: BOOTLOADER.toLowerCase(),
    reason: "requested",
    origin: "request:forged",
  });

  before(async () => {
    t = await trackerChain();
    server = await t.registerModule("decisions server");
    sibling = await t.registerModule("decisions sibling", server.id);
    plant = await t.registerModule("decisions plant", server.id);
    boot1 = await t.publish(BOOTLOADER, "1.0.0", [1, 2]);
    await t.enrol([device]);
    running = await startTracker(t, server);
    link = await startLink(running.http.url);
    mid = await startTracker(t, plant, {
      parent: { id: server.id, url: link.url },
      networks: [encodeBytes32String("decisions-plant")],
      upstreamMs: 3_600_000,
    });
    await running.tracker.stream.pollOnce();
    // The device reports to the plant on the newest release; its report goes up: nothing to decide yet.
    expect((await postReport(mid.http.url, await sealedReport(device, plant, onBoot(boot1)))).status).to.equal(200);
    await mid.tracker.syncUpstream();
    expect(running.tracker.store.devices.get(deviceId)).to.include({ upstream: plant.id.toLowerCase() });
  });
  after(async () => {
    await mid?.stop();
    await link?.close();
    await running?.stop();
    await t?.c.stop();
  });

  it("DEP-8.2.3 CAP-11.2-d CAP-11.2-m-b: decisions signed by another registered module's key or an unregistered key, sent by a module that is not the parent, sealed for another module or stale are refused and change nothing; the parent's fresh decision is taken", async () => {
    const before = stateOf(mid.tracker, [deviceId]);
    expect(before.decisions[deviceId]).to.deep.equal([]);
    const stranger = Wallet.createRandom().privateKey; // registered nowhere
    const refusals: [string, Promise<Envelope>][] = [
      ["MODULE_SIGNATURE", decisionsFrom(server.id, sibling.privateKey, plant, [forgedDecision()])], // the parent's name, a registered sibling's key
      ["MODULE_SIGNATURE", decisionsFrom(server.id, stranger, plant, [forgedDecision()])], // the parent's name, an unregistered key
      ["MODULE_SIGNATURE", decisionsFrom(server.id, plant.privateKey, plant, [forgedDecision()])], // the parent's name, the plant's own key
      ["MODULE_NOT_PARENT", decisionsFrom(sibling.id, sibling.privateKey, plant, [forgedDecision()])], // a registered module, correctly signed, not the parent
      ["MESSAGE_STALE", decisionsFrom(server.id, server.privateKey, plant, [forgedDecision()], Date.now() - 11 * 60_000)], // the parent's, too old
    ];
    for (const [code, envelope] of refusals) await expectCode(mid.tracker.takeDecisions(await envelope), code);
    // The parent's, sealed to the sibling: the plant cannot even open it.
    const forSibling = await sealMessage(
      { kind: DECISIONS_KIND, from: server.id, to: sibling.id, issuedAt: Date.now(), body: { decisions: [forgedDecision()] } },
      { kind: "account", signMessage: (m) => new Wallet(server.privateKey).signMessage(m) },
      sibling.publicKey,
    );
    await expectCode(mid.tracker.takeDecisions(forSibling), "MESSAGE_NOT_FOR_ME");
    // The same forgery on the wire, as the parent's answer to an exchange: refused by the same check.
    link.playBack = JSON.stringify({
      accepted: true,
      taken: 0,
      refused: [],
      decisions: await decisionsFrom(server.id, sibling.privateKey, plant, [forgedDecision()]),
    });
    try {
      await expectCode(mid.tracker.syncUpstream(), "MODULE_SIGNATURE");
    } finally {
      link.playBack = undefined;
    }
    expect(stateOf(mid.tracker, [deviceId]), "nothing of the refused decisions kept").to.deep.equal(before);

    // The parent's genuine decision: a new release, decided by the server module, down the link.
    boot11 = await t.publish(BOOTLOADER, "1.1.0", [1, 2]);
    await running.tracker.stream.pollOnce();
    await mid.tracker.stream.pollOnce();
    await mid.tracker.syncUpstream();
    genuine = link.answers.at(-1)!;
    expect(JSON.parse(genuine).decisions, "the server's answer carries its decisions").to.not.equal(null);
    const taken = mid.tracker.store.decisions.of(deviceId);
    expect(taken.map((d) => [d.releaseId, d.reason, d.origin])).to.deep.equal([[boot11.id, "outdated", "upstream:ledger"]]);
    expect(mid.tracker.store.marks.get("parent-decisions")).to.be.above(before.replayMark);
    // And started: the device's next report is answered with the plant's notice of it.
    const answer = await postReport(mid.http.url, await sealedReport(device, plant, onBoot(boot1)));
    const { notice } = await verifyUpdateNotice(
      t.c.fleet,
      answer.body.notices![0],
      { id: device.record.id, privateKey: device.key.privateKey },
      { upstream: plant.id, lastIssuedAt: 0, maxAgeMs: 60_000, now: Date.now() },
    );
    expect(notice).to.include({ releaseId: boot11.id, reason: "outdated" });
    await mid.tracker.syncUpstream(); // the report goes up; nothing new to decide (told within renoticeMs)
    expect(mid.tracker.store.hierarchy.outbox(1000)).to.deep.equal([]);
  });

  it("DEP-8.2.3 CAP-11.2-d CAP-11.2-m-b: the parent's genuine decisions replayed after the intermediate restarts (same database, a new module object) are refused MESSAGE_REPLAYED, on the wire and handed in directly, and change nothing; a fresh decision is taken", async () => {
    expect(genuine, "the previous test kept the server's genuine answer").to.be.a("string");
    const before = stateOf(mid.tracker, [deviceId]);
    await mid.http.close();
    await mid.tracker.stop();
    const again = new TrackerModule({ ...mid.tracker.options });
    const stopAgain = async () => {
      await again.stop();
      rmSync(again.options.dataDir, { recursive: true, force: true });
    };
    mid = { ...mid, tracker: again, stop: stopAgain };
    await again.start();
    expect(stateOf(again, [deviceId]), "the restarted module holds what it held").to.deep.equal(before);

    link.playBack = genuine; // someone on the wire answers the next exchange with the captured answer
    try {
      await expectCode(again.syncUpstream(), "MESSAGE_REPLAYED");
    } finally {
      link.playBack = undefined;
    }
    await expectCode(again.takeDecisions(JSON.parse(genuine).decisions as Envelope), "MESSAGE_REPLAYED");
    expect(stateOf(again, [deviceId]), "nothing of the replay kept").to.deep.equal(before);

    const boot12 = await t.publish(BOOTLOADER, "1.2.0", [1, 2]);
    await running.tracker.stream.pollOnce();
    await again.stream.pollOnce();
    await again.syncUpstream();
    expect(again.store.decisions.of(deviceId).map((d) => [d.releaseId, d.origin])).to.deep.include([boot12.id, "upstream:ledger"]);
    expect(again.store.marks.get("parent-decisions")).to.be.above(before.replayMark);
  });

  it("DEP-8.2.3 CAP-11.2-m-b: the reports an intermediate forwards are dropped only on its parent's signed acknowledgement of that status: a bare 200, a replayed genuine answer or an answer to another status keeps them, and they go up at the next exchange", async () => {
    // The device reports again to the plant (restarted by the test above, without its HTTP API): one report waits to go up.
    await mid.tracker.takeReport(await sealedReport(device, plant, onBoot(boot1)));
    const waiting = mid.tracker.store.hierarchy.outbox(1000).length;
    expect(waiting).to.be.greaterThan(0);
    const atServer = () => running.tracker.store.devices.get(deviceId)!.lastCounter;
    const counterAtServer = atServer();
    try {
      // Someone on the link answers 200 with no decisions: nothing proves the parent took the reports.
      link.playBack = JSON.stringify({ accepted: true, taken: 1, refused: [], decisions: null });
      await expectCode(mid.tracker.syncUpstream(), "UPSTREAM_UNACKNOWLEDGED");
      expect(mid.tracker.store.hierarchy.outbox(1000).length).to.equal(waiting);
      // A genuine answer of the parent's, captured earlier and played back: refused as a replay, the reports kept.
      link.playBack = link.answers[0];
      await expectCode(mid.tracker.syncUpstream(), "MESSAGE_REPLAYED");
      expect(mid.tracker.store.hierarchy.outbox(1000).length).to.equal(waiting);
      // The parent's fresh, signed answer, but to another status than the one just sent.
      link.playBack = JSON.stringify({
        accepted: true,
        taken: 1,
        refused: [],
        decisions: await sealMessage(
          { kind: DECISIONS_KIND, from: server.id, to: plant.id, issuedAt: Date.now() + 1000, body: { decisions: [], acknowledges: 1 } },
          { kind: "account", signMessage: (m) => new Wallet(server.privateKey).signMessage(m) },
          plant.publicKey,
        ),
      });
      await expectCode(mid.tracker.syncUpstream(), "UPSTREAM_UNACKNOWLEDGED");
      expect(mid.tracker.store.hierarchy.outbox(1000).length).to.equal(waiting);
      expect(atServer()).to.equal(counterAtServer);
    } finally {
      link.playBack = undefined;
    }
    // The real link: the parent takes the report and acknowledges it; only then is it dropped.
    await mid.tracker.syncUpstream();
    expect(mid.tracker.store.hierarchy.outbox(1000).length).to.equal(0);
    expect(atServer()).to.be.greaterThan(counterAtServer);
  });

  it("DEP-8.2.3 CAP-11.2-d: decisions from a parent retired on the ledger, or from a parent below a retired module, are refused MODULE_NOT_REGISTERED and change nothing; a parent still registered is still heard", async () => {
    // root -> parent -> child, root -> direct, root -> branch -> leaf: intermediates child, direct and leaf.
    const root = await t.registerModule("retire root");
    const parent = await t.registerModule("retire parent", root.id);
    const branch = await t.registerModule("retire branch", root.id);
    const child = await t.registerModule("retire child", parent.id);
    const direct = await t.registerModule("retire direct", root.id);
    const leaf = await t.registerModule("retire leaf", branch.id);
    const nowhere = "http://127.0.0.1:9"; // never asked: the decisions are handed in
    const started: Running[] = [];
    try {
      for (const [m, above] of [
        [child, parent],
        [direct, root],
        [leaf, branch],
      ] as const)
        started.push(await startTracker(t, m, { parent: { id: above.id, url: nowhere }, upstreamMs: 3_600_000 }));
      const [atChild, atDirect, atLeaf] = started.map((s) => s.tracker);
      const decision = (releaseId: string): Decision => ({
        deviceId,
        releaseId,
        component: BOOTLOADER.toLowerCase(),
        reason: "requested",
        origin: "request:retire",
      });
      const release = (await t.publish(BOOTLOADER, "1.3.0", [1, 2])).id;
      for (const s of started) await s.tracker.stream.pollOnce();

      // Registered: each parent's decisions are taken.
      expect(await atChild.takeDecisions(await decisionsFrom(parent.id, parent.privateKey, child, [decision(release)]))).to.equal(1);
      expect(await atDirect.takeDecisions(await decisionsFrom(root.id, root.privateKey, direct, [decision(release)]))).to.equal(1);
      expect(await atLeaf.takeDecisions(await decisionsFrom(branch.id, branch.privateKey, leaf, [decision(release)]))).to.equal(1);

      // The parent retired: its key, still the one it signed with, no longer speaks for it.
      await t.send((o) => t.fleet.retireTrackerModule(parent.id, o));
      const childBefore = stateOf(atChild, [deviceId]);
      await expectCode(atChild.takeDecisions(await decisionsFrom(parent.id, parent.privateKey, child, [decision(boot1.id)])), "MODULE_NOT_REGISTERED");
      expect(stateOf(atChild, [deviceId])).to.deep.equal(childBefore);
      // Its sibling branch is not touched: the root still speaks to the module right under it.
      expect(await atDirect.takeDecisions(await decisionsFrom(root.id, root.privateKey, direct, [decision(boot1.id)]))).to.equal(1);

      // The root retired: the branch is still registered itself, but nothing above it is active any more.
      await t.send((o) => t.fleet.retireTrackerModule(root.id, o));
      const leafBefore = stateOf(atLeaf, [deviceId]);
      const directBefore = stateOf(atDirect, [deviceId]);
      await expectCode(atLeaf.takeDecisions(await decisionsFrom(branch.id, branch.privateKey, leaf, [decision(boot1.id)])), "MODULE_NOT_REGISTERED");
      await expectCode(atDirect.takeDecisions(await decisionsFrom(root.id, root.privateKey, direct, [decision(boot11.id)])), "MODULE_NOT_REGISTERED");
      expect(stateOf(atLeaf, [deviceId])).to.deep.equal(leafBefore);
      expect(stateOf(atDirect, [deviceId])).to.deep.equal(directBefore);
    } finally {
      for (const s of started) await s.stop();
    }
  });

  it("PROC-2 DEP-8.2.3 CAP-11.1-a-vi: an administrator's deadline and pin override reach a device below an intermediate: the server's decision carries them, the intermediate keeps them and seals them in its notice (review finding)", async () => {
    const boot15 = await t.publish(BOOTLOADER, "1.5.0", [1, 2]);
    await running.tracker.stream.pollOnce();
    await mid.tracker.stream.pollOnce();
    // An administrator's request at the server module, with a deadline and pins overridden.
    const deadline = Date.now() + 3_600_000;
    const requestId = "0x" + "7e".repeat(16);
    running.tracker.store.requests.record({
      id: requestId,
      releaseId: boot15.id,
      component: BOOTLOADER,
      target: { devices: [deviceId] },
      deadline,
      overridePins: true,
      requestedBy: server.id.slice(0, 42),
      requestedAt: Date.now(),
      refused: [],
      devices: [deviceId],
    });
    running.tracker.store.decisions.decide({
      deviceId,
      releaseId: boot15.id,
      component: BOOTLOADER,
      reason: "requested",
      origin: `request:${requestId}`,
      at: Date.now(),
    });
    await mid.tracker.syncUpstream();
    expect(mid.tracker.store.decisions.terms(deviceId, boot15.id)).to.deep.equal({ deadline, overridePin: true });
    const notices = await mid.tracker.noticesFor(mid.tracker.store.devices.get(deviceId)!, "test");
    const { notice } = await verifyUpdateNotice(
      t.c.fleet,
      notices.find((n) => n)!,
      { id: device.record.id, privateKey: device.key.privateKey },
      { upstream: plant.id, lastIssuedAt: 0, maxAgeMs: 60_000, now: Date.now() },
    );
    expect(notice).to.include({ releaseId: boot15.id, deadline, overridePin: true });
  });
});
