import { expect } from "chai";
import { BOOTLOADER, postReport, sealedReport, startTracker, testDevice, trackerChain, type TrackerChain } from "../../helpers/trackerFixture";

/**
 * `ota-ledger device tag`, `group` and `update` (issue 19, item 11) against a real tracker on a
 * real chain: the administrator's signed requests from the CLI, their answers as tables and
 * --json, and bad input refused with exit 2 before anything is sent.
 */
describe("ota-ledger device tag, group, update request|status (issue 19, item 11)", function () {
  this.timeout(180_000);
  let t: TrackerChain;
  let run: Awaited<ReturnType<typeof startTracker>>;
  let env: Record<string, string>;
  const devA = testDevice("campaign cli A", 1, "plant-1");
  const devB = testDevice("campaign cli B", 1, "plant-2");
  const idA = devA.record.id.toLowerCase();
  const idB = devB.record.id.toLowerCase();
  let boot1: { id: string; version: string };
  let boot2: { id: string; version: string };

  before(async () => {
    t = await trackerChain();
    boot1 = await t.publish(BOOTLOADER, "1.0.0", [1]);
    boot2 = await t.publish(BOOTLOADER, "1.1.0", [1]);
    await t.enrol([devA, devB]);
    const module = await t.registerModule("campaign cli");
    run = await startTracker(t, module);
    await run.tracker.stream.pollOnce();
    const me = { id: module.id, publicKey: module.publicKey };
    for (const d of [devA, devB])
      expect((await postReport(run.http.url, await sealedReport(d, me, [{ component: BOOTLOADER, release: boot1 }]))).status).to.equal(200);
    env = { OTA_TRACKER_URL: run.http.url };
  });
  after(async () => {
    await run?.stop();
    await t?.c.stop();
  });

  it("CAP-11.2-a: device tag set|rm changes a device's tags through a signed request; group create|list|rm keeps named queries", async () => {
    const set = await t.c.run(["device", "tag", "set", idA, "site=plant-1", "ring=canary", "--json"], env);
    expect(set.code, set.stderr).to.equal(0);
    expect(set.json()).to.deep.include({ deviceId: idA, tags: { ring: "canary", site: "plant-1" } });
    expect((await t.c.run(["device", "tag", "set", idB, "site=plant-2", "ring=canary"], env)).stdout).to.include(`device ${idB}: ring=canary site=plant-2`);
    const rm = await t.c.run(["device", "tag", "rm", idB, "ring"], env);
    expect(rm.code, rm.stderr).to.equal(0);
    expect(rm.stdout).to.include(`device ${idB}: site=plant-2`);

    const created = await t.c.run(["group", "create", "canaries", "ring=canary", "--json"], env);
    expect(created.code, created.stderr).to.equal(0);
    expect(created.json()).to.deep.include({ name: "canaries", query: "ring=canary", devices: 1 });
    expect((await t.c.run(["group", "create", "everyone", "site"], env)).stdout).to.include("group everyone = site: 2 device(s) now");
    const list = await t.c.run(["group", "list"], env);
    expect(list.stdout).to.match(/^canaries\s+ring=canary\s+1$/m);
    expect(list.stdout).to.match(/^everyone\s+site\s+2$/m);
    const removed = await t.c.run(["group", "rm", "everyone", "--json"], env);
    expect(removed.json()).to.deep.include({ name: "everyone", removed: true });
    expect((await t.c.run(["group", "list", "--json"], env)).json().groups.map((g: { name: string }) => g.name)).to.deep.equal(["canaries"]);
  });

  it("PROC-2: update request --group with --deadline decides the group's devices; update status shows the request and its devices", async () => {
    const req = await t.c.run(["update", "request", "--release", boot2.id, "--group", "canaries", "--deadline", "+2h", "--json"], env);
    expect(req.code, req.stderr).to.equal(0);
    const answer = req.json();
    expect(answer).to.deep.include({ releaseId: boot2.id, decided: 1, refused: [] });
    expect(answer.deadline).to.be.within(Date.now() + 2 * 3_600_000 - 60_000, Date.now() + 2 * 3_600_000 + 1000);
    expect(run.tracker.store.decisions.of(idA).map((d) => d.origin)).to.deep.equal([`request:${answer.requestId}`]);
    expect(run.tracker.store.decisions.of(idB)).to.deep.equal([]);

    const status = await t.c.run(["update", "status", answer.requestId, "--json"], env);
    expect(status.code, status.stderr).to.equal(0);
    expect(status.json().counts).to.deep.include({ decided: 1, installed: 0, pastDeadline: 0 });
    // It was told of the release at its report already (its plan), before the request: it counts as notified.
    expect(status.json().devices).to.deep.equal([{ deviceId: idA, state: "notified", code: null, pastDeadline: false }]);
    const human = await t.c.run(["update", "status"], env);
    expect(human.stdout).to.include(`${answer.requestId} `);
    expect(human.stdout).to.include("to group canaries, deadline ");
    expect(human.stdout).to.include("1 decided, 1 notified, 0 installed");
    const byQuery = await t.c.run(["update", "request", "--release", boot2.id, "--query", "site=plant-2", "--json"], env);
    expect(byQuery.json()).to.deep.include({ decided: 1, deadline: null });
  });

  it("CAP-11.2-a: bad input is refused with exit 2 before anything is sent; the tracker's refusals (an unknown group, a non-administrator) exit 1 with its code", async () => {
    const bad: [string[], RegExp][] = [
      [["device", "tag", "set", idA, "site"], /"site" is not key=value/],
      [["device", "tag", "set", idA, `site=${"x".repeat(200)}`], /TAG_INVALID/],
      [["device", "tag", "set", idA, "network=x"], /TAG_KEY_RESERVED/],
      [["group", "create", "sneaky", "site=a' OR 1=1 --"], /QUERY_INVALID/],
      [["update", "request", "--release", boot2.id], /give exactly one of --group, --query or --devices/],
      [["update", "request", "--release", boot2.id, "--group", "canaries", "--deadline", "tomorrow"], /--deadline "tomorrow"/],
      [["update", "request", "--release", boot2.id, "--group", "canaries", "--override-pins"], /give --deadline too/],
      [["update", "status", "nope"], /a request id is 0x followed by 32 hex digits/],
    ];
    for (const [args, message] of bad) {
      const r = await t.c.run(args, env);
      expect(r.code, args.join(" ")).to.equal(2);
      expect(r.stderr, args.join(" ")).to.match(message);
    }
    const unknown = await t.c.run(["update", "request", "--release", boot2.id, "--group", "nosuch"], env);
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr).to.include("GROUP_UNKNOWN");
    const outsider = await t.c.run(["device", "tag", "set", idA, "site=evil"], { ...env, OTA_PRIVATE_KEY: "0x" + "5a".repeat(32) });
    expect(outsider.code).to.equal(1);
    expect(outsider.stderr).to.include("NOT_ADMINISTRATOR");
    expect(run.tracker.store.tags.of(idA)).to.deep.equal({ ring: "canary", site: "plant-1" });
  });
});
