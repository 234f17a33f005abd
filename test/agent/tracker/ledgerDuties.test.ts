import { expect } from "chai";
import { keccak256, toUtf8Bytes, type Wallet } from "ethers";
import {
  AllOfPolicy__factory,
  AnyOfPolicy__factory,
  StagedRollout__factory,
  StatusAnchors__factory,
  UpdatePolicies__factory,
  type StagedRollout,
  type StatusAnchors,
  type UpdatePolicies,
} from "../../../typechain-types";
import { buildCohort } from "../../../agent/crypto/cohortTree";
import { signAccountRequest } from "../../../agent/crypto/requestSignature";
import { STATUS_OUTCOME, verifyStatusProof, type StatusRecord } from "../../../agent/crypto/statusTree";
import { BOOTLOADER, sealedReport, startTracker, testDevice, trackerChain, type TestDevice, type TrackerChain } from "../../helpers/trackerFixture";
import type { TrackerModuleOptions } from "../../../agent/tracker/trackerModule";
import { withSqlite } from "../../helpers/sqliteFile";

/**
 * The server module's duties on the ledger (issue 6): failure totals posted to staged rollouts
 * (APP-II-3), status anchors a device or auditor checks on the ledger (CAP-11.2-a, CAP-11.2-b),
 * and the administrators' cohorts route. A real Hardhat node, a real tracker.
 */
describe("agent/tracker: ledger duties (APP-II-3: failure totals, status anchors, rollout cohorts)", function () {
  this.timeout(240_000);
  let t: TrackerChain;
  let policies: UpdatePolicies;
  let anchors: StatusAnchors;
  let account: Awaited<ReturnType<TrackerChain["ledgerAccount"]>>;
  let server: { id: string; privateKey: string; publicKey: string };
  let devices: TestDevice[];
  let boot1: Awaited<ReturnType<TrackerChain["publish"]>>;
  const stops: (() => Promise<void>)[] = [];

  before(async () => {
    t = await trackerChain();
    const registry = String(t.c.registry.target);
    policies = await t.deploy((o) => new UpdatePolicies__factory(t.c.admin).deploy(registry, o));
    anchors = await t.deploy((o) => new StatusAnchors__factory(t.c.admin).deploy(registry, o));
    account = await t.ledgerAccount();
    // The module's operator registers it with its ledger account, which then owns it and posts its failure totals.
    server = await t.registerModule("ledger duties server", undefined, account);
    devices = ["a", "b", "c", "d", "e", "f"].map((l) => testDevice(`duties ${l}`, 1, "plant-1"));
    await t.enrol(devices);
    boot1 = await t.publish(BOOTLOADER, "1.0.0", [1, 2]);
  });
  afterEach(async () => {
    while (stops.length) await stops.pop()!();
  });
  after(async () => {
    await t?.c.stop();
  });

  const start = async (o: Partial<TrackerModuleOptions> & { withAccount?: boolean; apiToken?: string; as?: typeof server } = {}) => {
    const lines: string[] = [];
    const { withAccount = true, as = server, ...rest } = o;
    const s = await startTracker(t, as, {
      chain: { provider: t.c.provider, registry: t.c.registry, fleet: t.c.fleet, policies, anchors, domain: t.domain, fromBlock: t.fromBlock },
      ledgerAccount: withAccount ? account : undefined,
      failureReportMs: 3_600_000, // the tests run the rounds themselves
      anchorMs: 0,
      log: (l) => lines.push(l),
      ...rest,
    });
    stops.push(s.stop);
    await s.tracker.stream.pollOnce();
    return { ...s, lines };
  };
  const me = () => ({ id: server.id, publicKey: server.publicKey });
  const onBoot = (r: { id: string; version: string }) => [{ component: BOOTLOADER, release: r }];
  const failed = (releaseId: string, outcome = "rolled-back", code = "HEALTH_CHECK_FAILED") => ({
    releaseId,
    component: BOOTLOADER,
    outcome,
    code,
    at: Date.now(),
  });
  const stagedRollout = () => t.deploy((o) => new StagedRollout__factory(t.c.admin).deploy(String(t.c.registry.target), String(t.c.fleet.target), o));
  /** A release of the bootloader with a live rollout of one open wave of every device, halting at `threshold` failures. */
  const rolledOut = async (version: string, threshold: number, attach: (rollout: StagedRollout, releaseId: string) => Promise<unknown>) => {
    const release = await t.publish(BOOTLOADER, version, [1, 2]);
    const rollout = await stagedRollout();
    await attach(rollout, release.id);
    const ids = devices.map((d) => d.record.id);
    await t.send((o) => rollout.connect(t.c.admin).createRollout(release.id, [{ cohortRoot: buildCohort(ids).root, startsAt: 0 }], threshold, o));
    return { release, rollout, ids };
  };
  /** ethers answers an identical request (the refused gas estimate) from a 250 ms cache; the tracker's next round is 30 s later. */
  const pastEthersCache = () => new Promise((r) => setTimeout(r, 300));
  const failuresOf = async (rollout: StagedRollout, releaseId: string) => Number((await rollout.rolloutStatus(releaseId)).failures);

  it("APP-II-3: devices' failures are posted to the staged rollout, which halts at its threshold; no notice of the release follows", async () => {
    const { release, rollout, ids } = await rolledOut("1.1.0", 2, (r) => t.send((o) => policies.connect(t.c.admin).attachPolicy(BOOTLOADER, r, o)));
    const { tracker } = await start();
    await tracker.setRolloutCohorts(release.id, [ids]);
    const [a, b, c] = devices;

    // a is told of 1.1.0 (its wave is open), installs it and rolls back.
    const first = await tracker.takeReport(await sealedReport(a, me(), onBoot(boot1)));
    expect(first.notices, "a is told of 1.1.0").to.have.length(1);
    await tracker.takeReport(await sealedReport(a, me(), onBoot(boot1), failed(release.id)));
    const posted = await tracker.reportFailures();
    expect(posted).to.have.length(1);
    expect(posted[0]).to.deep.include({ releaseId: release.id, rollout: String(rollout.target), total: 1, previous: 0, halted: false });
    expect(await failuresOf(rollout, release.id)).to.equal(1);

    // Nothing rose: nothing is sent.
    expect(await tracker.reportFailures()).to.deep.equal([]);
    expect(await rollout.queryFilter(rollout.filters.FailuresReported(release.id))).to.have.length(1);

    // b fails outright: the total reaches the threshold and the rollout halts itself.
    await tracker.takeReport(await sealedReport(b, me(), onBoot(boot1), failed(release.id, "failed", "IMAGE_INVALID")));
    const second = await tracker.reportFailures();
    expect(second.map((p) => [p.total, p.halted])).to.deep.equal([[2, true]]);
    const status = await rollout.rolloutStatus(release.id);
    expect([status.state, status.failures]).to.deep.equal([4n, 2n]); // Halted

    // c, in the same open wave, is told of nothing now: the ledger's policy refuses.
    expect((await tracker.takeReport(await sealedReport(c, me(), onBoot(boot1)))).notices).to.deep.equal([]);
    // A halted rollout is not posted to any more.
    await tracker.takeReport(await sealedReport(c, me(), onBoot(boot1), failed(release.id)));
    expect(await tracker.reportFailures()).to.deep.equal([]);
    expect(await failuresOf(rollout, release.id)).to.equal(2);
  });

  it("APP-II-3 issue 15: a blocked delivery or a refusal is not a failure, a release failing after an intact delivery is; a staged rollout inside composers (AnyOf of AllOf) is found", async () => {
    const { release, rollout } = await rolledOut("1.2.0", 10, async (r, releaseId) => {
      const inner = await t.deploy((o) => new AllOfPolicy__factory(t.c.admin).deploy([String(r.target)], o));
      const outer = await t.deploy((o) => new AnyOfPolicy__factory(t.c.admin).deploy([String(inner.target)], o));
      await t.send((o) => policies.connect(t.c.admin).attachPolicy(releaseId, String(outer.target), o));
    });
    const { tracker } = await start();
    const [, , , d, e, g] = devices;
    await tracker.takeReport(await sealedReport(d, me(), onBoot(boot1), failed(release.id, "rejected", "KEY_NOT_GRANTED")));
    expect(await tracker.reportFailures(), "a key not granted yet passes by itself").to.deep.equal([]);
    // finding (issue 15): a mirror's flipped byte was a failed update; it is a blocked delivery
    await tracker.takeReport(await sealedReport(g, me(), onBoot(boot1), failed(release.id, "blocked", "CHUNK_MISMATCH")));
    expect(await tracker.reportFailures(), "a delivery fault is not a failure").to.deep.equal([]);
    await tracker.takeReport(await sealedReport(e, me(), onBoot(boot1), failed(release.id, "rejected", "SIGNATURE_INVALID")));
    expect(await tracker.reportFailures(), "a correct refusal is not a failure").to.deep.equal([]);
    await tracker.takeReport(await sealedReport(e, me(), onBoot(boot1), failed(release.id, "failed", "FILE_HASH_MISMATCH")));
    const posted = await tracker.reportFailures();
    expect(posted.map((p) => [p.rollout, p.total])).to.deep.equal([[String(rollout.target), 1]]);
    expect(await failuresOf(rollout, release.id)).to.equal(1);
  });

  it("without a ledger account nothing is sent, and that is logged once", async () => {
    const { release, rollout } = await rolledOut("1.3.0", 10, (r, id) => t.send((o) => policies.connect(t.c.admin).attachPolicy(id, r, o)));
    const { tracker, lines } = await start({ withAccount: false, failureReportMs: 50 });
    await tracker.takeReport(await sealedReport(devices[5], me(), onBoot(boot1), failed(release.id)));
    await new Promise((r) => setTimeout(r, 300));
    expect(await tracker.reportFailures()).to.deep.equal([]);
    expect(lines.filter((l) => /no ledger account/.test(l))).to.have.length(1);
    await expect(tracker.anchorStatus()).to.be.rejectedWith(/ledger account/);
    expect(await failuresOf(rollout, release.id)).to.equal(0);
  });

  it("an account without TRACKER_ROLE: the refusal is logged with the fix, and the total is posted once the role is granted", async () => {
    const { release, rollout } = await rolledOut("1.4.0", 10, (r, id) => t.send((o) => policies.connect(t.c.admin).attachPolicy(id, r, o)));
    // The account registered its module, and then lost the tracker role.
    const roleless = await t.ledgerAccount();
    const own = await t.registerModule("roleless operator's server", undefined, roleless);
    await t.send((o) => t.registry.revokeRole(keccak256(toUtf8Bytes("TRACKER_ROLE")), roleless.address, o));
    const { tracker, lines } = await start({ ledgerAccount: roleless, as: own });
    await tracker.takeReport(await sealedReport(devices[0], { id: own.id, publicKey: own.publicKey }, onBoot(boot1), failed(release.id)));
    expect(await tracker.reportFailures()).to.deep.equal([]);
    const refusal = lines.find((l) => /TRACKER_ROLE/.test(l));
    expect(refusal, lines.join("\n")).to.include(`ota-ledger tracker grant ${roleless.address}`);
    expect(await failuresOf(rollout, release.id)).to.equal(0);

    await t.send((o) => t.registry.grantRole(keccak256(toUtf8Bytes("TRACKER_ROLE")), roleless.address, o));
    await pastEthersCache();
    const posted = await tracker.reportFailures();
    expect(
      posted.map((p) => p.total),
      lines.join("\n"),
    ).to.deep.equal([1]);
    expect(await failuresOf(rollout, release.id)).to.equal(1);
  });

  it("finding: totals are posted per tracker module, by the module's owner: another account's posts are refused with the fix named, and two modules' totals add up", async () => {
    const { release, rollout } = await rolledOut("1.4.5", 10, (r, id) => t.send((o) => policies.connect(t.c.admin).attachPolicy(id, r, o)));
    // A ledger account that does not own the server module (`account` registered it).
    const stranger = await t.ledgerAccount();
    const first = await start({ ledgerAccount: stranger });
    await first.tracker.takeReport(await sealedReport(devices[1], me(), onBoot(boot1), failed(release.id)));
    expect(await first.tracker.reportFailures()).to.deep.equal([]);
    expect(
      first.lines.find((l) => l.includes("only the owner may post")),
      first.lines.join("\n"),
    ).to.include(`not by this tracker's ledger account ${stranger.address}`);
    expect(await failuresOf(rollout, release.id)).to.equal(0);

    // The owner posts the module's total; a second operator's module posts its own; the rollout sums them.
    const owner = await start();
    await owner.tracker.takeReport(await sealedReport(devices[1], me(), onBoot(boot1), failed(release.id)));
    expect((await owner.tracker.reportFailures()).map((p) => [p.total, p.previous])).to.deep.equal([[1, 0]]);
    const second = await t.registerModule("second operator's server", undefined, stranger);
    const other = await start({ ledgerAccount: stranger, as: second });
    await other.tracker.takeReport(await sealedReport(devices[2], { id: second.id, publicKey: second.publicKey }, onBoot(boot1), failed(release.id)));
    expect((await other.tracker.reportFailures()).map((p) => [p.total, p.previous])).to.deep.equal([[1, 0]]);
    expect(Number(await rollout.moduleFailures(release.id, server.id))).to.equal(1);
    expect(Number(await rollout.moduleFailures(release.id, second.id))).to.equal(1);
    expect(await failuresOf(rollout, release.id)).to.equal(2);
  });

  it("posts a module's total above the threshold in steps of the threshold, and reports one post that halted the rollout", async () => {
    const { release, rollout } = await rolledOut("1.4.6", 2, (r, id) => t.send((o) => policies.connect(t.c.admin).attachPolicy(id, r, o)));
    const { tracker } = await start();
    for (const d of devices.slice(0, 5)) await tracker.takeReport(await sealedReport(d, me(), onBoot(boot1), failed(release.id)));
    const posted = await tracker.reportFailures();
    expect(posted.map((p) => [p.total, p.previous, p.halted])).to.deep.equal([[5, 0, true]]);
    expect(Number(await rollout.moduleFailures(release.id, server.id))).to.equal(5);
    const status = await rollout.rolloutStatus(release.id);
    expect([status.state, status.failures]).to.deep.equal([4n, 5n]); // Halted, every real failure on record
  });

  describe("status anchors (CAP-11.2-a, CAP-11.2-b)", () => {
    const get = async (url: string, p: string) => {
      const res = await fetch(new URL(p, url));
      return { status: res.status, body: (await res.json()) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
    };
    const asRecord = (r: {
      deviceId: string;
      releaseId: string;
      version: string;
      outcome: number;
      reportCounter: string;
      reportedAt: number;
    }): StatusRecord => ({
      ...r,
      version: BigInt(r.version),
      reportCounter: BigInt(r.reportCounter),
      outcome: r.outcome as StatusRecord["outcome"],
    });

    it("CAP-11.2-a/b: the fleet's status is anchored; a device's proof from the API verifies on the ledger and off it; a tampered record does not", async () => {
      const { tracker, http } = await start();
      const [a, b, c, , , f] = devices;
      await tracker.takeReport(
        await sealedReport(a, me(), onBoot(boot1), { releaseId: boot1.id, component: BOOTLOADER, outcome: "confirmed", code: "OK", at: Date.now() }),
      );
      await tracker.takeReport(await sealedReport(b, me(), onBoot(boot1), failed(boot1.id)));
      await tracker.takeReport(await sealedReport(c, me(), onBoot(boot1), failed(boot1.id, "rejected", "KEY_NOT_GRANTED")));
      const before = await anchors.anchorCount();

      const result = await tracker.anchorStatus();
      if (!result.anchored) throw new Error(`not anchored: ${result.reason}`);
      const anchor = result.anchor;
      expect(anchor.index).to.equal(Number(before));
      expect(anchor.deviceCount).to.equal(3);
      expect(anchor.counts).to.deep.equal([{ releaseId: boot1.id, installed: 1, failed: 1, pending: 1 }]);
      expect((await anchors.anchorAt(anchor.index)).statusRoot).to.equal(anchor.root);

      // The counts are what the fleet database says of the reported devices.
      const rows = withSqlite(
        tracker.store.file,
        (db) =>
          db.prepare(`SELECT last_outcome, last_code FROM devices WHERE last_counter > 0 AND last_release = ?`).all(boot1.id) as {
            last_outcome: string;
            last_code: string;
          }[],
      );
      expect(rows.filter((r) => r.last_outcome === "confirmed")).to.have.length(anchor.counts[0].installed);
      expect(rows.filter((r) => r.last_outcome === "rolled-back")).to.have.length(anchor.counts[0].failed);

      const list = await get(http.url, "/v1/anchors");
      expect(list.status).to.equal(200);
      expect(list.body.anchors[0]).to.deep.include({ index: anchor.index, root: anchor.root, txHash: anchor.txHash, deviceCount: 3 });

      for (const d of [a, b, c]) {
        const res = await get(http.url, `/v1/anchors/${anchor.index}/devices/${d.record.id.toUpperCase().replace("0X", "0x")}`);
        expect(res.status, JSON.stringify(res.body)).to.equal(200);
        const [valid, anchoredBy] = await anchors.verifyStatus(anchor.index, res.body.record, res.body.proof);
        expect([valid, anchoredBy]).to.deep.equal([true, await tracker.ledgerAccount!.getAddress()]);
        expect(verifyStatusProof(asRecord(res.body.record), res.body.proof, anchor.root)).to.equal(true);
      }
      const proofOfB = (await get(http.url, `/v1/anchors/${anchor.index}/devices/${b.record.id}`)).body;
      expect(proofOfB.record.outcome).to.equal(STATUS_OUTCOME.rolledBack);
      const tampered = { ...proofOfB.record, outcome: STATUS_OUTCOME.installed };
      expect((await anchors.verifyStatus(anchor.index, tampered, proofOfB.proof)).valid).to.equal(false);
      expect(verifyStatusProof(asRecord(tampered), proofOfB.proof, anchor.root)).to.equal(false);

      expect((await get(http.url, `/v1/anchors/${anchor.index}/devices/${f.record.id}`)).body.error.code).to.equal("DEVICE_NOT_IN_ANCHOR");
      const unknown = await get(http.url, `/v1/anchors/${anchor.index + 100}/devices/${a.record.id}`);
      expect([unknown.status, unknown.body.error.code]).to.deep.equal([404, "ANCHOR_UNKNOWN"]);

      // Nothing changed: no new anchor. A new report: a new anchor.
      expect(await tracker.anchorStatus()).to.deep.equal({ anchored: false, reason: "unchanged" });
      expect(await anchors.anchorCount()).to.equal(before + 1n);
      await tracker.takeReport(await sealedReport(f, me(), onBoot(boot1)));
      const next = await tracker.anchorStatus();
      expect(next.anchored && [next.anchor.index, next.anchor.deviceCount]).to.deep.equal([anchor.index + 1, 4]);
      expect((await get(http.url, "/v1/anchors?limit=1")).body).to.deep.include({ total: 2 });
    });

    it("an account without TRACKER_ROLE anchors nothing and records nothing; the next round anchors once it holds the role", async () => {
      const roleless = await t.ledgerAccount({ trackerRole: false });
      const { tracker } = await start({ ledgerAccount: roleless });
      await tracker.takeReport(await sealedReport(devices[1], me(), onBoot(boot1)));
      await expect(tracker.anchorStatus()).to.be.rejectedWith(new RegExp(`ota-ledger tracker grant ${roleless.address}`));
      expect(tracker.anchoring!.list().total).to.equal(0);
      await t.send((o) => t.registry.grantRole(keccak256(toUtf8Bytes("TRACKER_ROLE")), roleless.address, o));
      await pastEthersCache();
      expect((await tracker.anchorStatus()).anchored).to.equal(true);
    });
  });

  describe("POST /v1/rollouts/{releaseId}/cohorts (APP-II-3)", () => {
    const post = async (url: string, releaseId: string, body: unknown, signer: Wallet | undefined, headersFrom?: Record<string, string>) => {
      const text = typeof body === "string" ? body : JSON.stringify(body);
      const path = `/v1/rollouts/${releaseId}/cohorts`;
      const headers = headersFrom ?? (signer ? await signAccountRequest(signer, { audience: url, method: "POST", path, body: text }) : {});
      const res = await fetch(new URL(path, url), { method: "POST", body: text, headers: { ...headers, "content-type": "application/json" } });
      return { status: res.status, body: (await res.json()) as any, headers }; // eslint-disable-line @typescript-eslint/no-explicit-any
    };

    it("an administrator's signed cohorts are kept, their roots as buildCohort's; others are refused with their codes", async () => {
      const { release } = await rolledOut("1.5.0", 10, (r, id) => t.send((o) => policies.connect(t.c.admin).attachPolicy(id, r, o)));
      const { tracker, http } = await start();
      await tracker.stream.pollOnce();
      const waves = [devices.map((d) => d.record.id)];
      const ok = await post(http.url, release.id, { waves }, t.c.admin);
      expect(ok.status, JSON.stringify(ok.body)).to.equal(200);
      expect(ok.body).to.deep.equal({ releaseId: release.id, devices: devices.length, roots: [buildCohort(waves[0]).root] });
      expect(tracker.store.evidence.of(release.id, devices[0].record.id)).to.be.a("string");

      const unsigned = await post(http.url, release.id, { waves }, undefined);
      expect([unsigned.status, unsigned.body.error.code]).to.deep.equal([401, "AUTH_MISSING"]);
      const outsider = await post(http.url, release.id, { waves }, t.c.outsider);
      expect([outsider.status, outsider.body.error.code]).to.deep.equal([403, "NOT_ADMINISTRATOR"]);
      const replay = await post(http.url, release.id, { waves }, undefined, ok.headers);
      expect([replay.status, replay.body.error.code]).to.deep.equal([409, "AUTH_REPLAY"]);
      const malformed: [unknown, RegExp][] = [
        ["{not json", /JSON/],
        [{}, /waves/],
        [{ waves: [] }, /1 to 64/],
        [{ waves: [[]] }, /wave 0/],
        [{ waves: [["0x1234"]] }, /wave 0, device 0/],
        [{ waves: [[waves[0][0], waves[0][0]]] }, /twice/],
        [{ waves, extra: 1 }, /extra/],
        [{ waves: Array.from({ length: 65 }, () => [waves[0][0]]) }, /1 to 64/],
      ];
      for (const [body, message] of malformed) {
        const res = await post(http.url, release.id, body, t.c.admin);
        expect([res.status, res.body.error.code], JSON.stringify(body).slice(0, 80)).to.deep.equal([400, "BAD_REQUEST"]);
        expect(res.body.error.message).to.match(message);
      }
      const badPath = await post(http.url, "0x1234", { waves }, t.c.admin);
      expect([badPath.status, badPath.body.error.code]).to.deep.equal([400, "BAD_REQUEST"]);
      const unknown = await post(http.url, "0x" + "77".repeat(32), { waves }, t.c.admin);
      expect([unknown.status, unknown.body.error.code]).to.deep.equal([404, "RELEASE_UNKNOWN"]);

      // Waves other than the rollout's: the roots differ from the ledger's, and the wave is named.
      const mismatch = await post(http.url, release.id, { waves: [waves[0].slice(1)] }, t.c.admin);
      expect([mismatch.status, mismatch.body.error.code]).to.deep.equal([409, "ROLLOUT_ROOT_MISMATCH"]);
      expect(mismatch.body.error.message).to.match(/wave 0/);
    });
  });
});
