import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { StatusAnchors__factory, type StatusAnchors } from "../../../agent/chain/contracts";
import { StagedRollout__factory, UpdatePolicies__factory, type UpdatePolicies } from "../../../typechain-types";
import { buildCohort } from "../../../agent/crypto/cohortTree";
import { FleetStore } from "../../../agent/tracker/store";
import { TrackerModule, type TrackerModuleOptions } from "../../../agent/tracker/trackerModule";
import { startTrackerHttp } from "../../../agent/tracker/trackerHttp";
import { CliProcess } from "../../e2e/harness/cliProcess";
import { BOOTLOADER, sealedReport, startTrackerProcess, testDevice, trackerChain, type TrackerChain } from "../../helpers/trackerFixture";
import { withSqlite } from "../../helpers/sqliteFile";

/**
 * Issue 16: the tracker on Foundry's anvil, a real EVM node written elsewhere that makes real
 * reorganisations (anvil_reorg: the last `depth` blocks replaced, their transactions dropped).
 * REQ-10b-i, REQ-10b-ii: the fleet's view of the registry is the canonical chain's, whatever the
 * crash and the reorganisation.
 */
describe("agent/tracker on anvil: crashes, reorganisations and dropped transactions (issue 16, REQ-10b-i, REQ-10b-ii)", function () {
  this.timeout(300_000);
  let t: TrackerChain;
  let module: Awaited<ReturnType<TrackerChain["registerModule"]>>;
  let out: string;
  let version = 0;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    t = await trackerChain({ node: "anvil" });
    module = await t.registerModule("chain faults module");
    out = mkdtempSync(path.join(tmpdir(), "ota-chain-faults-"));
    // The tracker processes read their settings from the chain's folder: fast polling.
    writeFileSync(path.join(t.c.dir, "ota-ledger.json"), JSON.stringify({ tracker: { pollMs: 100 } }));
  });
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });
  after(async () => {
    await t?.c.stop();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  const head = async () => Number(await t.c.provider.send("eth_blockNumber", []));
  /** The last `depth` blocks replaced by empty ones: their transactions are gone from the chain and from the pool. */
  const reorg = async (depth: number) => {
    await t.c.provider.send("anvil_reorg", [depth, []]);
    await t.recountNonce();
  };
  /** Some ledger activity: a release, two enrolments, and the previous release revoked (when the chain still has it). */
  const activity = async () => {
    const release = await t.publish(BOOTLOADER, `1.${++version}.0`, [1]);
    await t.enrol([testDevice(`faults ${version} a`, 1, "plant-1"), testDevice(`faults ${version} b`, 1, "plant-1")]);
    return release;
  };
  const chainOptions = (dataDir: string, extra: Partial<TrackerModuleOptions> = {}): TrackerModuleOptions => ({
    chain: { provider: t.c.provider, registry: t.c.registry, fleet: t.c.fleet, domain: t.domain, fromBlock: t.fromBlock },
    module,
    dataDir,
    pollMs: 100,
    ...extra,
  });
  /** What the module derived from the ledger: the rows a replay of the canonical chain must give again. */
  const ledgerView = (file: string) => {
    const db = new FleetStore(file);
    try {
      const rows = (sql: string) => withSqlite(file, (raw) => raw.prepare(sql).raw().all());
      return {
        releases: rows(`SELECT id, status, version FROM releases ORDER BY id`),
        devices: rows(`SELECT id, standing, hardware_class FROM devices ORDER BY id`),
        providers: rows(`SELECT id, barred FROM providers ORDER BY id`),
        events: rows(`SELECT block_hash, log_index, subject FROM ledger_events ORDER BY block_number, log_index`),
        position: db.ledger.position()?.block,
      };
    } finally {
      db.close();
    }
  };
  /** A fresh module on an empty folder, caught up with the head: the canonical chain's view. */
  const replay = async () => {
    const dir = mkdtempSync(path.join(out, "replay-"));
    const fresh = new TrackerModule(chainOptions(dir));
    await fresh.start();
    await fresh.stop();
    return ledgerView(path.join(dir, "fleet.db"));
  };

  it("killed with SIGKILL at random points while blocks are reorganised, then restarted: its fleet database equals a fresh replay", async () => {
    const dataDir = path.join(out, "killed");
    let p: CliProcess | undefined;
    cleanups.push(async () => void (await p?.kill()));
    const start = async () => {
      const started = await startTrackerProcess(t, module, dataDir);
      p = started.process;
      return started.url;
    };
    const random = (n: number) => Math.floor(Math.random() * n);
    for (let round = 0; round < 6; round++) {
      await start();
      // Activity and reorganisations of 1 to 3 blocks while it follows; killed at a random moment among them.
      const kill = new Promise<void>((resolve) => setTimeout(() => void p!.kill().then(resolve), 50 + random(600)));
      await activity();
      await reorg(1 + random(3));
      await activity();
      if (random(2) === 0) await reorg(1 + random(2));
      await kill;
    }
    // Reorganised once more while it is down, then restarted: it must find its blocks gone.
    await activity();
    await reorg(2);
    const url = await start();
    const target = await head();
    for (let i = 0; i < 200; i++) {
      const health = (await (await fetch(`${url}/v1/health`)).json()) as { ledger: { block: number | null } };
      if (health.ledger.block === target) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const stopping = Date.now();
    expect((await p!.stop()).code, p!.output()).to.equal(0);
    expect(Date.now() - stopping, "SIGTERM stops it within seconds").to.be.below(5_000);

    const view = ledgerView(path.join(dataDir, "fleet.db"));
    const canonical = await replay();
    expect(view.position).to.equal(target);
    expect(view).to.deep.equal(canonical);
    expect(canonical.releases.length, "the chain still holds releases").to.be.greaterThan(0);
  });

  it("a reorganisation below its window halts it: one log line names REORG_TOO_DEEP, health answers 503; `tracker resync` recovers it to a fresh replay", async () => {
    const dataDir = path.join(out, "deep");
    const lines: string[] = [];
    const tracker = new TrackerModule(chainOptions(dataDir, { reorgWindow: 3, log: (l) => lines.push(l) }));
    await tracker.start();
    const http = await startTrackerHttp(tracker, {});
    cleanups.push(async () => {
      await http.close().catch(() => {});
      await tracker.stop().catch(() => {});
    });
    await activity();
    await activity();
    await tracker.stream.pollOnce();
    await reorg(6); // deeper than the 3 blocks it remembers
    await tracker.stream.pollOnce().catch(() => {});
    await new Promise((r) => setTimeout(r, 500)); // several poll intervals: still one line
    const named = lines.filter((l) => l.includes("REORG_TOO_DEEP"));
    expect(named, lines.join("\n")).to.have.length(1);
    expect(named[0]).to.include("ota-ledger tracker resync");
    const res = await fetch(`${http.url}/v1/health`);
    expect(res.status).to.equal(503);
    const health = (await res.json()) as { status: string; ledger: { halted: { code: string; fix: string }; ageSeconds: number; newestBlockTime: number } };
    expect(health.status).to.equal("ledger-halted");
    expect(health.ledger.halted.code).to.equal("REORG_TOO_DEEP");
    // How fresh the chain it reads is, for a supervisor (a frozen endpoint keeps answering with old blocks).
    const newest = await t.c.provider.getBlock("latest");
    expect(health.ledger.newestBlockTime).to.be.at.most(newest!.timestamp);
    expect(health.ledger.ageSeconds).to.be.a("number").and.at.least(0);
    await http.close();
    await tracker.stop();

    // The operator's command, with the tracker stopped (the chain's folder holds the deployment file).
    const resync = await t.c.run(["tracker", "resync", "--json"], { OTA_TRACKER_DATA: dataDir });
    expect(resync.code, resync.stderr).to.equal(0);
    expect(resync.json()).to.include({ fromBlock: t.fromBlock === 0 ? 1 : t.fromBlock });
    const restarted = new TrackerModule(chainOptions(dataDir, { reorgWindow: 3 }));
    await restarted.start();
    await restarted.stop();
    expect(ledgerView(path.join(dataDir, "fleet.db"))).to.deep.equal(await replay());

    // Refused with a clear error: a block past the head, and a tracker still running on the folder.
    const past = await t.c.run(["tracker", "resync", "--from-block", String((await head()) + 100), "--json"], { OTA_TRACKER_DATA: dataDir });
    expect(past.code).to.equal(2);
    expect(past.stderr + past.stdout).to.match(/past the chain's head/);
  });

  describe("its ledger account's transactions", () => {
    let anchors: StatusAnchors;
    let policies: UpdatePolicies;
    let account: Awaited<ReturnType<TrackerChain["ledgerAccount"]>>;
    let server: Awaited<ReturnType<TrackerChain["registerModule"]>>;
    before(async () => {
      anchors = await t.deploy((o) => new StatusAnchors__factory(t.c.admin).deploy(String(t.c.registry.target), o));
      policies = await t.deploy((o) => new UpdatePolicies__factory(t.c.admin).deploy(String(t.c.registry.target), o));
      account = await t.ledgerAccount();
      server = await t.registerModule("chain faults anchoring", undefined, account);
    });
    const withAccount = (dataDir: string, extra: Partial<TrackerModuleOptions> = {}) => {
      const o = chainOptions(dataDir, { ...extra, module: server, ledgerAccount: account, anchorMs: 0, failureReportMs: 3_600_000 });
      return new TrackerModule({ ...o, chain: { ...o.chain, anchors, policies } });
    };
    const report = async (tracker: TrackerModule, label: string) => {
      const d = testDevice(label, 1, "plant-1");
      await t.enrol([d]);
      await tracker.stream.pollOnce();
      const release = await activity();
      await tracker.stream.pollOnce();
      await tracker.takeReport(await sealedReport(d, server, [{ component: BOOTLOADER, release }]));
    };

    it("an anchor a reorganisation dropped is made again, its nonce taken back by a cancel: no gap, anchoring goes on", async () => {
      const lines: string[] = [];
      const tracker = withAccount(path.join(out, "dropped"), { log: (l) => lines.push(l) });
      await tracker.start();
      cleanups.push(() => tracker.stop());
      await report(tracker, "anchored a");
      const first = await tracker.anchorStatus();
      if (!first.anchored) throw new Error(first.reason);
      const count = await anchors.anchorCount();
      await reorg(1); // the anchor's block replaced: its transaction is gone
      expect(await anchors.anchorCount()).to.equal(count - 1n);
      await tracker.stream.pollOnce();

      const again = await tracker.anchorStatus();
      if (!again.anchored) throw new Error(`not anchored again: ${again.reason}`);
      expect(again.anchor.index).to.equal(first.anchor.index);
      expect((await anchors.anchorAt(again.anchor.index)).statusRoot).to.equal(again.anchor.root);
      expect(lines.join("\n")).to.match(/no longer on the chain/);
      // And the next one still goes through (no nonce gap behind the dropped transaction).
      await report(tracker, "anchored b");
      const next = await tracker.anchorStatus();
      expect(next.anchored).to.equal(true);
      expect(await anchors.anchorCount()).to.equal(BigInt(again.anchor.index) + 2n);
    });

    it("APP-II-3: a failure total a reorganisation dropped is posted again at the next round, though the total did not rise", async () => {
      const tracker = withAccount(path.join(out, "failures"));
      await tracker.start();
      cleanups.push(() => tracker.stop());
      const failing = [testDevice("failing a", 1, "plant-1"), testDevice("failing b", 1, "plant-1")];
      await t.enrol(failing);
      const release = await t.publish(BOOTLOADER, `1.${++version}.0`, [1]);
      const rollout = await t.deploy((o) => new StagedRollout__factory(t.c.admin).deploy(String(t.c.registry.target), String(t.c.fleet.target), o));
      await t.send((o) => policies.connect(t.c.admin).attachPolicy(release.id, rollout, o));
      await t.send((o) =>
        rollout.connect(t.c.admin).createRollout(release.id, [{ cohortRoot: buildCohort(failing.map((d) => d.record.id)).root, startsAt: 0 }], 100, o),
      );
      await tracker.stream.pollOnce();
      const failed = { releaseId: release.id, component: BOOTLOADER, outcome: "rolled-back" as const, code: "HEALTH_CHECK_FAILED", at: Date.now() };
      for (const d of failing) await tracker.takeReport(await sealedReport(d, server, [{ component: BOOTLOADER, release }], failed));
      expect((await tracker.reportFailures()).map((p) => p.total)).to.deep.equal([2]);
      expect(Number(await rollout.moduleFailures(release.id, server.id))).to.equal(2);

      await reorg(1); // the post's block replaced: the rollout has no failures again
      expect(Number(await rollout.moduleFailures(release.id, server.id))).to.equal(0);
      await tracker.stream.pollOnce();
      expect((await tracker.reportFailures()).map((p) => p.total)).to.deep.equal([2]);
      expect(Number(await rollout.moduleFailures(release.id, server.id))).to.equal(2);
    });

    it("a transaction not mined by its deadline is cancelled and never mined later; stop() returns within seconds with one pending", async () => {
      const lines: string[] = [];
      const tracker = withAccount(path.join(out, "stuck"), { ledgerTxDeadlineMs: 1500, ledgerTxPollMs: 100, log: (l) => lines.push(l) });
      await tracker.start();
      cleanups.push(async () => {
        await t.c.provider.send("evm_setAutomine", [true]);
        await tracker.stop().catch(() => {});
      });
      await report(tracker, "stuck a");
      const count = await anchors.anchorCount();
      await t.c.provider.send("evm_setAutomine", [false]);
      let refused: unknown;
      await tracker.anchorStatus().catch((err) => (refused = err));
      expect((refused as { code?: string })?.code).to.equal("LEDGER_TX_DEADLINE");
      expect(lines.join("\n")).to.match(/cancelled with 0x[0-9a-f]{64}/);
      await t.c.provider.send("evm_mine", []);
      await t.c.provider.send("evm_mine", []);
      expect(await anchors.anchorCount(), "the stale anchor was never mined").to.equal(count);

      // Stopping with a transaction waiting: cut short, not waited for.
      const waiting = tracker.anchorStatus().catch((err: { code?: string }) => err.code);
      await new Promise((r) => setTimeout(r, 300));
      const stopping = Date.now();
      await tracker.stop();
      expect(Date.now() - stopping).to.be.below(4_000);
      expect(await waiting).to.equal("LEDGER_ACCOUNT_STOPPED");

      // Restarted: what the stopped run left in the pool is cancelled before anything else.
      const restarted = withAccount(path.join(out, "stuck"), { log: (l) => lines.push(l) });
      await restarted.start();
      cleanups.push(() => restarted.stop());
      await restarted.ledgerAccount!.settle();
      await t.c.provider.send("evm_mine", []);
      expect(await anchors.anchorCount(), "nothing stale mined after the restart").to.equal(count);
      await t.c.provider.send("evm_setAutomine", [true]);
      const fresh = await restarted.anchorStatus();
      expect(fresh.anchored).to.equal(true);
      expect(await anchors.anchorCount()).to.equal(count + 1n);
    });
  });
});
