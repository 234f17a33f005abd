import { expect } from "chai";
import { Wallet, encodeBytes32String } from "ethers";
import { verifyUpdateNotice } from "../../../agent/consumer/upstreamNotice";
import { signAccountRequest } from "../../../agent/crypto/requestSignature";
import { sealMessage, type Envelope } from "../../../agent/crypto/sealedMessage";
import { REPORT_KIND, type StatusReport } from "../../../agent/core/statusReport";
import { encodeVersion } from "../../../agent/core/version";
import { DOWNSTREAM_KIND } from "../../../agent/tracker/moduleMessages";
import { dependsOn } from "../../../agent/core/release";
import {
  BOOTLOADER,
  FIRMWARE,
  postReport,
  sealedReport,
  startTracker,
  testDevice,
  trackerChain,
  type TestDevice,
  type TrackerChain,
} from "../../helpers/trackerFixture";

type Release = Awaited<ReturnType<TrackerChain["publish"]>>;

/** Opens the notices a device received, as the device agent does (its upstream's registered key, fresh, newer). */
async function openNotices(t: TrackerChain, d: TestDevice, upstream: string, notices: Envelope[]) {
  let last = 0;
  const out = [];
  for (const n of notices) {
    const { notice, issuedAt } = await verifyUpdateNotice(
      t.c.fleet,
      n,
      { id: d.record.id, privateKey: d.key.privateKey },
      { upstream, lastIssuedAt: last, maxAgeMs: 60_000, now: Date.now() },
    );
    last = issuedAt;
    // The newest block the module had read (issue 16: the device's floor), a block of the chain; the rest compared by the tests.
    const { ledgerBlock, ...body } = notice;
    expect(ledgerBlock)
      .to.be.a("number")
      .within(0, Number(await t.c.provider.send("eth_blockNumber", [])));
    out.push(body);
  }
  return out;
}

describe("agent/tracker/trackerModule: decisions, notices, administrators' requests and the module hierarchy", function () {
  this.timeout(240_000);
  let t: TrackerChain;
  let server: Awaited<ReturnType<TrackerChain["registerModule"]>>;
  let running: Awaited<ReturnType<typeof startTracker>>;
  let boot1: Release;
  let boot11: Release;
  const devices = {
    a1: testDevice("module a1", 1, "plant-1"),
    a2: testDevice("module a2", 1, "plant-1"),
    b1: testDevice("module b1", 2, "plant-2"),
    b2: testDevice("module b2", 2, "plant-2"),
  };

  before(async () => {
    t = await trackerChain();
    server = await t.registerModule("server");
    boot1 = await t.publish(BOOTLOADER, "1.0.0", [1, 2]);
    await t.enrol(Object.values(devices));
    running = await startTracker(t, server);
  });
  after(async () => {
    await running?.stop();
    await t?.c.stop();
  });

  const report = (d: TestDevice, installed: { component: string; release: Release }[], lastResult: Parameters<typeof sealedReport>[3] = null, to = server) =>
    sealedReport(d, { id: to.id, publicKey: to.publicKey }, installed, lastResult);

  it("PROC-5 CAP-11.2-c: a device already on the newest release gets no notice", async () => {
    const res = await postReport(running.http.url, await report(devices.a1, [{ component: BOOTLOADER, release: boot1 }]));
    expect(res.status).to.equal(200);
    expect(res.body).to.include({ accepted: true });
    expect(res.body.notices).to.deep.equal([]);
  });

  it("CAP-11.2-c REQ-10e-i: a new release is decided for the configurations it fits, within one ledger poll", async () => {
    await postReport(running.http.url, await report(devices.b1, [{ component: BOOTLOADER, release: boot1 }]));
    boot11 = await t.publish(BOOTLOADER, "1.1.0", [1]); // rev-a only
    await running.tracker.stream.pollOnce();
    const decided = running.tracker.lastDecision!;
    expect(decided.releases).to.deep.equal([{ releaseId: boot11.id, configs: 1, devices: 1 }]); // a1; b1 is rev-b
    expect(running.tracker.planner.affectedBy(boot11.id).devices).to.equal(1);
  });

  it("CAP-11.2-c DEP-8.2.2: the report's answer carries a sealed notice the device verifies; it is not repeated at once", async () => {
    const res = await postReport(running.http.url, await report(devices.a1, [{ component: BOOTLOADER, release: boot1 }]));
    const notices = await openNotices(t, devices.a1, server.id, res.body.notices!);
    expect(notices).to.deep.equal([{ releaseId: boot11.id, component: BOOTLOADER.toLowerCase(), reason: "outdated" }]);
    const again = await postReport(running.http.url, await report(devices.a1, [{ component: BOOTLOADER, release: boot1 }]));
    expect(again.body.notices).to.deep.equal([]); // told within renoticeMs
    // Another device cannot read it: the notice is sealed to a1's key.
    await verifyUpdateNotice(
      t.c.fleet,
      res.body.notices![0],
      { id: devices.a2.record.id, privateKey: devices.a2.key.privateKey },
      { upstream: server.id, lastIssuedAt: 0, maxAgeMs: 60_000, now: Date.now() },
    ).then(
      () => expect.fail("opened by another device"),
      (err) => expect(err.code).to.equal("MESSAGE_NOT_FOR_ME"),
    );
  });

  it("PROC-5: refuses a replayed report, a report from an unknown device, one signed by another key, and garbage", async () => {
    const e = await report(devices.a2, [{ component: BOOTLOADER, release: boot1 }]);
    expect((await postReport(running.http.url, e)).status).to.equal(200);
    const replay = await postReport(running.http.url, e);
    expect([replay.status, replay.body.error?.code]).to.deep.equal([409, "REPORT_REPLAYED"]);
    const stranger = testDevice("never enrolled", 1, "plant-1");
    expect((await postReport(running.http.url, await report(stranger, []))).body.error?.code).to.equal("REPORT_UNKNOWN_DEVICE");
    const impostor = { ...devices.a2, key: new Wallet(Wallet.createRandom().privateKey) };
    const forged = await postReport(running.http.url, await report(impostor, []));
    expect([forged.status, forged.body.error?.code]).to.deep.equal([401, "REPORT_SIGNATURE"]);
    const res = await fetch(new URL("/v1/reports", running.http.url), { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" });
    expect(res.status).to.equal(400);
    const bad = await postReport(running.http.url, { v: 1, kind: "status-report", from: devices.a2.record.id, to: server.id, sealed: "0x00" } as Envelope);
    expect(bad.status).to.be.oneOf([400, 401]);
  });

  it("CAP-11.3-g REQ-10b-ii: a release flagged vulnerable moves the devices running it to the replacement", async () => {
    await t.send((o) => t.registry.flagVulnerable(boot1.id, "CVE-2026-1000", o));
    await running.tracker.stream.pollOnce();
    const a2 = running.tracker.views.device(devices.a2.record.id)!;
    expect(a2.device.statuses).to.have.members(["outdated", "vulnerable"]);
    expect(a2.plan.steps.map((s) => [s.releaseId, s.reason])).to.deep.equal([[boot11.id, "vulnerable-installed"]]);
    const res = await postReport(running.http.url, await report(devices.a2, [{ component: BOOTLOADER, release: boot1 }]));
    expect((await openNotices(t, devices.a2, server.id, res.body.notices!)).map((n) => n.reason)).to.deep.equal(["vulnerable-installed"]);
    // b1 (rev-b) has nothing to move to: listed vulnerable, not notified.
    const b1 = running.tracker.views.device(devices.b1.record.id)!;
    expect(b1.device.statuses).to.have.members(["vulnerable"]);
    expect(b1.plan.steps).to.deep.equal([]);
  });

  it("CAP-11.2-b issue 15: a blocked delivery keeps the release offered and lists the device blocked; a failure stops the plan's offers, not an administrator's request", async () => {
    const d = testDevice("module a3", 1, "plant-1");
    await t.enrol([d]);
    await running.tracker.stream.pollOnce(); // the enrolment mirrored before the first report
    const installed = [{ component: BOOTLOADER, release: boot1 }];
    const result = (outcome: string, code: string) => ({ releaseId: boot11.id, component: BOOTLOADER, outcome, code, at: 1 });
    await postReport(running.http.url, await report(d, installed, result("blocked", "CHUNK_MISMATCH")));
    let view = running.tracker.views.device(d.record.id)!;
    expect(view.device.statuses).to.include("blocked").and.not.include("failed");
    expect(view.device).to.include({ lastKind: "blocked", lastCode: "CHUNK_MISMATCH", lastRelease: boot11.id });
    expect(view.device.blockedSince).to.be.a("number");
    expect(view.plan.steps.map((s) => s.releaseId)).to.deep.equal([boot11.id]);
    expect(running.tracker.views.devices({ status: "blocked" }).devices.map((x) => x.id)).to.include(d.record.id.toLowerCase());

    await postReport(running.http.url, await report(d, installed, result("failed", "FILE_HASH_MISMATCH")));
    view = running.tracker.views.device(d.record.id)!;
    expect(view.device.statuses).to.include("failed").and.not.include("blocked");
    expect(view.plan.steps).to.deep.equal([]);
    const row = () => running.tracker.store.devices.get(d.record.id)!;
    expect(running.tracker.pendingFor(row()).map((s) => s.releaseId)).to.deep.equal([]);
    // An administrator asks for it again on purpose: offered despite the failure.
    running.tracker.store.decisions.decide({
      deviceId: d.record.id.toLowerCase(),
      releaseId: boot11.id,
      component: BOOTLOADER.toLowerCase(),
      reason: "requested",
      origin: "request:issue-15",
      at: Date.now(),
    });
    expect(running.tracker.pendingFor(row()).map((s) => [s.releaseId, s.origin])).to.deep.equal([[boot11.id, "request:issue-15"]]);
  });

  describe("PROC-2: administrators' update requests, checked against the ledger", () => {
    let fw: Release;
    const request = async (body: object, signer: Wallet = t.c.admin, mutate?: (h: Record<string, string>) => void) => {
      const text = JSON.stringify(body);
      const headers = await signAccountRequest(signer, { audience: running.http.url, method: "POST", path: "/v1/update-requests", body: text });
      mutate?.(headers);
      const res = await fetch(new URL("/v1/update-requests", running.http.url), {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: text,
      });
      return { status: res.status, body: (await res.json()) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
    };
    before(async () => {
      fw = await t.publish(FIRMWARE, "2.0.0", [1, 2], [dependsOn(BOOTLOADER, ">=1.1.0 <2.0.0")]);
      await running.tracker.stream.pollOnce();
    });

    it("PROC-2: decides a release for named devices that pass the registry's installable check, lists the others with the ledger's reason", async () => {
      await postReport(running.http.url, await report(devices.a1, [{ component: BOOTLOADER, release: boot11 }]));
      const res = await request({ releaseId: fw.id, devices: [devices.a1.record.id, devices.b1.record.id], imageLocation: fw.record.fileLink });
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ releaseId: fw.id, decided: 1 });
      expect(res.body.refused).to.deep.equal([
        {
          deviceId: devices.b1.record.id.toLowerCase(),
          code: "DEPENDENCY_VERSION_OUT_OF_RANGE",
          message: "the registry's installable check answers DEPENDENCY_VERSION_OUT_OF_RANGE for this device",
        },
      ]);
      const answer = await postReport(running.http.url, await report(devices.a1, [{ component: BOOTLOADER, release: boot11 }]));
      expect(await openNotices(t, devices.a1, server.id, answer.body.notices!)).to.deep.equal([
        { releaseId: fw.id, component: FIRMWARE.toLowerCase(), reason: "requested" },
      ]);
      expect(running.tracker.views.rollouts().find((r) => r.releaseId === fw.id)).to.include({ origin: `request:${res.body.requestId}` });
    });

    it("PROC-2: with the ledger unreachable, a request is answered LEDGER_UNAVAILABLE and decides nothing", async () => {
      const { JsonRpcProvider } = await import("ethers");
      const { handleUpdateRequest } = await import("../../../agent/tracker/updateRequests");
      const dead = new JsonRpcProvider("http://127.0.0.1:9", 31337, { staticNetwork: true, batchMaxCount: 1 });
      try {
        await handleUpdateRequest(
          { registry: t.c.registry.connect(dead), domain: t.domain, fromBlock: 0, db: running.tracker.store, now: Date.now },
          t.c.admin.address,
          { releaseId: fw.id, devices: [devices.a1.record.id] },
        ).then(
          () => expect.fail("decided without the ledger"),
          (err) => expect(err.code).to.equal("LEDGER_UNAVAILABLE"),
        );
      } finally {
        dead.destroy();
      }
    });

    it("PROC-2: takes a filter over the fleet (network)", async () => {
      const res = await request({ releaseId: fw.id, filter: { network: "plant-2" } });
      expect(res.status).to.equal(200);
      expect(res.body.decided + res.body.refused.length).to.equal(2);
    });

    it("PROC-2: refuses, deciding nothing, a non-administrator, a replayed or tampered signature, an unknown release, a wrong image location, a revoked release", async () => {
      const before = running.tracker.store.decisions.of(devices.a2.record.id).length;
      const outsider = new Wallet(Wallet.createRandom().privateKey);
      expect((await request({ releaseId: fw.id, devices: [devices.a2.record.id] }, outsider)).body.error.code).to.equal("NOT_ADMINISTRATOR");
      let saved: Record<string, string> = {};
      await request({ releaseId: fw.id, devices: [devices.a2.record.id], imageLocation: "bafy-other" }, t.c.admin, (h) => (saved = { ...h }));
      const text = JSON.stringify({ releaseId: fw.id, devices: [devices.a2.record.id], imageLocation: "bafy-other" });
      const replay = await fetch(new URL("/v1/update-requests", running.http.url), {
        method: "POST",
        headers: { ...saved, "content-type": "application/json" },
        body: text,
      });
      expect([replay.status, ((await replay.json()) as { error: { code: string } }).error.code]).to.deep.equal([409, "AUTH_REPLAY"]);
      // Signed by the administrator, then its nonce changed on the way: the signature does not hold.
      const tampered = await request({ releaseId: fw.id, devices: [devices.a2.record.id] }, t.c.admin, (h) => (h["x-ota-nonce"] = "00".repeat(16)));
      expect([tampered.status, tampered.body.error.code]).to.deep.equal([401, "AUTH_SIGNATURE"]);
      // Claiming another account: one without the role is refused before its signature is even recovered (issue 15).
      const claimed = await request({ releaseId: fw.id, devices: [devices.a2.record.id] }, t.c.admin, (h) => (h["x-ota-account"] = outsider.address));
      expect([claimed.status, claimed.body.error.code]).to.deep.equal([403, "NOT_ADMINISTRATOR"]);
      expect((await request({ releaseId: "0x" + "77".repeat(32), devices: [devices.a2.record.id] })).body.error.code).to.equal("RELEASE_UNKNOWN");
      expect((await request({ releaseId: fw.id, devices: [devices.a2.record.id], imageLocation: "bafy-other" })).body.error.code).to.equal(
        "IMAGE_LOCATION_MISMATCH",
      );
      expect((await request({ releaseId: fw.id })).body.error.code).to.equal("BAD_REQUEST");
      await t.send((o) => t.registry.revokeRelease(boot1.id, "malware", o));
      expect((await request({ releaseId: boot1.id, devices: [devices.a2.record.id] })).body.error.code).to.equal("RELEASE_NOT_ACTIVE");
      expect(running.tracker.store.decisions.of(devices.a2.record.id).length).to.equal(before);
    });
  });

  describe("DEP-8.2.2 DEP-8.2.3 CAP-11.2-m APP-II-4: intermediate modules per network, reports up, decisions down", () => {
    let plant1: Awaited<ReturnType<TrackerChain["registerModule"]>>;
    let plant2: Awaited<ReturnType<TrackerChain["registerModule"]>>;
    let mid1: Awaited<ReturnType<typeof startTracker>>;
    let mid2: Awaited<ReturnType<typeof startTracker>>;
    let boot12: Release;
    const c1 = testDevice("module c1", 1, "plant-1");
    const c2 = testDevice("module c2", 2, "plant-2");
    before(async () => {
      plant1 = await t.registerModule("plant-1", server.id);
      plant2 = await t.registerModule("plant-2", server.id);
      await t.enrol([c1, c2]);
      mid1 = await startTracker(t, plant1, {
        parent: { id: server.id, url: running.http.url },
        networks: [encodeBytes32String("plant-1")],
        upstreamMs: 3_600_000,
      });
      mid2 = await startTracker(t, plant2, {
        parent: { id: server.id, url: running.http.url },
        networks: [encodeBytes32String("plant-2")],
        upstreamMs: 3_600_000,
      });
      // The server learns c1's and c2's enrolment from the ledger before their reports come up:
      // left to its own polling, a busy machine could forward them first (REPORT_UNKNOWN_DEVICE).
      await running.tracker.stream.pollOnce();
    });
    after(async () => {
      await mid1?.stop();
      await mid2?.stop();
    });

    it("DEP-8.2.3 CAP-11.2-d: a report taken by an intermediate reaches the server with the device's own signature, and the server's decision comes back down as the intermediate's notice (the device refuses it from anyone but its upstream)", async () => {
      const first = await postReport(mid1.http.url, await report(c1, [{ component: BOOTLOADER, release: boot11 }], null, plant1));
      expect(first.status).to.equal(200);
      expect(first.body.notices).to.deep.equal([]); // an intermediate does not decide
      await mid1.tracker.syncUpstream();
      const atServer = running.tracker.store.devices.get(c1.record.id)!;
      expect(atServer).to.include({ upstream: plant1.id.toLowerCase(), lastCounter: 1 });
      boot12 = await t.publish(BOOTLOADER, "1.2.0", [1, 2]);
      await running.tracker.stream.pollOnce();
      await mid1.tracker.stream.pollOnce();
      await mid1.tracker.syncUpstream(); // the server's answer carries the decision for c1
      expect(mid1.tracker.store.decisions.of(c1.record.id).map((d) => d.releaseId)).to.deep.equal([boot12.id]);
      const answer = await postReport(mid1.http.url, await report(c1, [{ component: BOOTLOADER, release: boot11 }], null, plant1));
      expect(await openNotices(t, c1, plant1.id, answer.body.notices!)).to.deep.equal([
        { releaseId: boot12.id, component: BOOTLOADER.toLowerCase(), reason: "outdated" },
      ]);
      // The device refuses the same notice if it claims to come from the server instead of its upstream.
      await verifyUpdateNotice(
        t.c.fleet,
        answer.body.notices![0],
        { id: c1.record.id, privateKey: c1.key.privateKey },
        { upstream: server.id, lastIssuedAt: 0, maxAgeMs: 60_000, now: Date.now() },
      ).then(
        () => expect.fail("accepted from the wrong upstream"),
        (err) => expect(err.code).to.equal("UPSTREAM_UNEXPECTED"),
      );
    });

    it("DEP-8.2.3 REQ-10e-ii: modules cascade: a report two levels down reaches the server, and its decision comes back down both levels", async () => {
      const line = await t.registerModule("plant-1 line 4", plant1.id);
      const c3 = testDevice("module c3", 1, "plant-1");
      await t.enrol([c3]);
      await running.tracker.stream.pollOnce();
      await mid1.tracker.stream.pollOnce();
      const sub = await startTracker(t, line, {
        parent: { id: plant1.id, url: mid1.http.url },
        networks: [encodeBytes32String("plant-1")],
        upstreamMs: 3_600_000,
      });
      try {
        expect((await postReport(sub.http.url, await report(c3, [{ component: BOOTLOADER, release: boot11 }], null, line))).status).to.equal(200);
        await sub.tracker.syncUpstream(); // line 4 -> plant-1
        await mid1.tracker.syncUpstream(); // plant-1 -> server (the device's own signature checked there)
        expect(running.tracker.store.devices.get(c3.record.id)).to.include({ upstream: plant1.id.toLowerCase(), lastCounter: 1 });
        expect(running.tracker.views.modules().find((m) => m.id === plant1.id.toLowerCase())!.children).to.deep.include({
          id: line.id.toLowerCase(),
          lastSeen: mid1.tracker.store.hierarchy.modules()[0].lastSeen,
          reachable: true,
          devices: 1,
          unreachableDevices: 0,
        });
        await mid1.tracker.syncUpstream(); // the server's decision for c3 comes down to plant-1
        await sub.tracker.syncUpstream(); // and on to line 4
        const answer = await postReport(sub.http.url, await report(c3, [{ component: BOOTLOADER, release: boot11 }], null, line));
        expect(await openNotices(t, c3, line.id, answer.body.notices!)).to.deep.equal([
          { releaseId: boot12.id, component: BOOTLOADER.toLowerCase(), reason: "outdated" },
        ]);
      } finally {
        await sub.stop();
      }
    });

    it("APP-II-4 CAP-11.2-m-c: each network's intermediate reports its reachability; the server lists both", async () => {
      await postReport(mid2.http.url, await report(c2, [{ component: BOOTLOADER, release: boot11 }], null, plant2));
      await mid2.tracker.syncUpstream();
      const modules = running.tracker.views.modules();
      const byId = new Map(modules.map((m) => [m.id, m]));
      expect(byId.get(plant1.id.toLowerCase())).to.include({ reachable: true });
      expect(byId.get(plant2.id.toLowerCase())).to.include({ reachable: true, devices: 1, unreachableDevices: 0 });
      expect(byId.get(plant2.id.toLowerCase())!.networks).to.deep.equal(["plant-2"]);
    });

    it("CAP-11.1-b CAP-11.2-a DEP-8.2.3: a device's safe mode, reported to an intermediate, is relayed to the server and listed safe-mode at both; its next report out of safe mode clears it", async () => {
      const c4 = testDevice("module c4 safe mode", 1, "plant-1");
      await t.enrol([c4]);
      await running.tracker.stream.pollOnce();
      await mid1.tracker.stream.pollOnce();
      // The report a device in safe mode sends (agent/core/statusReport.ts): nothing installed, safeMode true.
      const sealed = (counter: number, safeMode: boolean, installed: { component: string; version: string; releaseId: string; slot: "a" }[]) =>
        sealMessage(
          {
            kind: REPORT_KIND,
            from: c4.record.id,
            to: plant1.id,
            issuedAt: Date.now(),
            body: { deviceId: c4.record.id, counter, installed, lastResult: null, needs: [], declined: [], safeMode } satisfies StatusReport,
          },
          { kind: "device", privateKey: c4.key.privateKey },
          plant1.publicKey,
        );
      expect((await postReport(mid1.http.url, await sealed(1, true, []))).status).to.equal(200);
      expect(mid1.tracker.views.device(c4.record.id)!.device).to.deep.include({ statuses: ["safe-mode"], safeMode: true });
      await mid1.tracker.syncUpstream();
      const atServer = running.tracker.views.device(c4.record.id)!.device;
      expect(atServer).to.deep.include({ statuses: ["safe-mode"], safeMode: true, upstream: plant1.id.toLowerCase() });
      expect(running.tracker.views.devices({ status: "safe-mode" }).devices.map((d) => d.id)).to.deep.equal([c4.record.id.toLowerCase()]);
      expect(running.tracker.views.summary().byNetwork.find((n) => n.network === "plant-1")).to.include({ safeMode: 1 });
      // A person installed the newest release by hand: the next report, relayed, is out of safe mode.
      const newest = [{ component: BOOTLOADER, version: encodeVersion(boot12.version).toString(), releaseId: boot12.id, slot: "a" as const }];
      expect((await postReport(mid1.http.url, await sealed(2, false, newest))).status).to.equal(200);
      await mid1.tracker.syncUpstream();
      expect(running.tracker.views.device(c4.record.id)!.device).to.deep.include({ statuses: ["up-to-date"], safeMode: false });
      expect(running.tracker.views.devices({ status: "safe-mode" }).total).to.equal(0);
    });

    it("DEP-8.2.3 CAP-11.2-m-b: the server refuses a status from a module that is not its child, a replay, and a forwarded report altered on the way", async () => {
      const stranger = await t.registerModule("not a child"); // a second server module
      const status = (from: { id: string; privateKey: string }, counter: number, reports: unknown[] = []) =>
        sealMessage(
          {
            kind: DOWNSTREAM_KIND,
            from: from.id,
            to: server.id,
            issuedAt: Date.now(),
            body: { counter, networks: [], reports, devices: 0, unreachableDevices: 0, children: [] },
          },
          { kind: "account", signMessage: (m) => new Wallet(from.privateKey).signMessage(m) },
          server.publicKey,
        );
      const post = async (e: Envelope) => {
        const res = await fetch(new URL("/v1/downstream", running.http.url), {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(e),
        });
        return { status: res.status, body: (await res.json()) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
      };
      expect((await post(await status(stranger, Date.now()))).body.error.code).to.equal("MODULE_NOT_CHILD");
      const impostor = { id: plant1.id, privateKey: Wallet.createRandom().privateKey };
      expect((await post(await status(impostor, Date.now()))).body.error.code).to.equal("MODULE_SIGNATURE");
      const e = await status(plant1, Date.now() + 1);
      expect((await post(e)).status).to.equal(200);
      expect((await post(e)).body.error.code).to.equal("MESSAGE_REPLAYED");
      // A report c1 sealed for plant1, with the installed version changed by plant1 before forwarding.
      const { openMessage } = await import("../../../agent/crypto/sealedMessage");
      const sealed = await report(c1, [{ component: BOOTLOADER, release: boot12 }], null, plant1);
      const opened = openMessage<{ installed: unknown[] }>(sealed, plant1.privateKey, plant1.id, "device");
      const altered = { message: { ...opened.message, body: { ...opened.message.body, installed: [] } }, signature: opened.signature };
      const misrouted = { ...altered, message: { ...altered.message, to: "not a module id" } };
      const res = await post(await status(plant1, Date.now() + 2, [altered, misrouted]));
      expect(res.body).to.include({ taken: 0 });
      expect(res.body.refused).to.deep.equal([
        { deviceId: c1.record.id, code: "REPORT_SIGNATURE" },
        { deviceId: c1.record.id, code: "REPORT_NOT_FOR_MODULE" },
      ]);
      // Malformed statuses are refused before anything is stored: a sender that is not a module id, bad counts.
      const raw = (from: string, body: object) =>
        sealMessage(
          { kind: DOWNSTREAM_KIND, from, to: server.id, issuedAt: Date.now(), body },
          { kind: "account", signMessage: (m) => new Wallet(plant1.privateKey).signMessage(m) },
          server.publicKey,
        );
      const noId = await post(await raw("plant-1", { counter: Date.now() + 3, networks: [], reports: [], devices: 0, unreachableDevices: 0, children: [] }));
      expect([noId.status, noId.body.error.code]).to.deep.equal([400, "MESSAGE_MALFORMED"]);
      const badCounts = await post(
        await raw(plant1.id, { counter: Date.now() + 4, networks: ["plant-1"], reports: [], devices: -1, unreachableDevices: "x", children: [{}] }),
      );
      expect([badCounts.status, badCounts.body.error.code]).to.deep.equal([400, "BAD_REQUEST"]);
    });
  });

  describe("restart", () =>
    it("keeps its state across a restart and follows the ledger from its checkpoint", async () => {
      const before = running.tracker.views.summary();
      await running.http.close();
      await running.tracker.stop();
      const { TrackerModule } = await import("../../../agent/tracker/trackerModule");
      const again = new TrackerModule({ ...running.tracker.options });
      await again.start();
      try {
        expect(again.views.summary().counts).to.deep.equal(before.counts);
        expect(again.stream.position!.block).to.be.at.least(running.tracker.stream.position!.block);
      } finally {
        await again.stop();
        running = { ...running, stop: async () => {} };
      }
    }));
});
