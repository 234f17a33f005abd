import { expect } from "chai";
import { BOOTLOADER, FIRMWARE, startSeededTracker, type SeededTracker } from "../../helpers/trackerFixture";

describe("agent/tracker HTTP API: the fleet's lists, details, releases and rollouts (CAP-11.2-a, CAP-11.2-b, CAP-11.2-c)", function () {
  this.timeout(180_000);
  let s: SeededTracker;
  const get = async (p: string, headers: Record<string, string> = {}) => {
    const res = await fetch(new URL(p, s.url), { headers });
    return { status: res.status, body: (await res.json()) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  before(async () => {
    s = await startSeededTracker();
  });
  after(async () => s?.close());

  it("CAP-11.2-a CAP-11.2-b: the summary counts every status, overall and per network", async () => {
    const { status, body } = await get("/v1/fleet/summary");
    expect(status).to.equal(200);
    const count = (st: string) => s.devices.filter((d) => d.statuses.includes(st)).length;
    expect(body.total).to.equal(s.devices.length);
    expect(body.counts).to.deep.equal({
      upToDate: count("up-to-date"),
      outdated: count("outdated"),
      vulnerable: count("vulnerable"),
      failed: count("failed"),
      blocked: count("blocked"),
      refused: count("refused"),
      safeMode: count("safe-mode"),
      unreachable: count("unreachable"),
      suspended: count("suspended"),
    });
    const plant1 = body.byNetwork.find((n: { network: string }) => n.network === "plant-1");
    expect(plant1.total).to.equal(s.devices.filter((d) => d.network === "plant-1").length);
  });

  // Each list with the IDs it proves (literals: scripts/checkTraceability.js reads these titles).
  for (const [st, ids] of [
    ["up-to-date", "CAP-11.2-a CAP-11.2-b"],
    ["outdated", "CAP-11.2-a CAP-11.2-b REQ-10b-i"],
    ["vulnerable", "CAP-11.2-a CAP-11.2-b REQ-10b-ii"],
    ["failed", "CAP-11.2-a CAP-11.2-b"],
    ["safe-mode", "CAP-11.2-a CAP-11.2-b"],
    ["unreachable", "CAP-11.2-a CAP-11.2-b"],
    ["suspended", "CAP-11.2-a CAP-11.2-b"],
  ]) {
    it(`${ids}: lists the ${st} devices, each with its unique id`, async () => {
      const { status, body } = await get(`/v1/fleet/devices?status=${st}`);
      expect(status).to.equal(200);
      const want = s.devices
        .filter((d) => d.statuses.includes(st))
        .map((d) => d.id)
        .sort();
      expect(body.devices.map((d: { id: string }) => d.id).sort()).to.deep.equal(want);
      expect(body.total).to.equal(want.length);
      for (const d of body.devices) expect(d.statuses).to.include(st);
    });
  }

  it("APP-II-4: filters by network and hardware, searches by id prefix and pages", async () => {
    const plant2 = (await get("/v1/fleet/devices?network=plant-2")).body;
    expect(plant2.devices.every((d: { network: string }) => d.network === "plant-2")).to.equal(true);
    expect(plant2.total).to.equal(s.devices.filter((d) => d.network === "plant-2").length);
    const hw2 = (await get("/v1/fleet/devices?hardware=2")).body;
    expect(hw2.devices.every((d: { hardwareClass: number }) => d.hardwareClass === 2)).to.equal(true);
    const one = s.devices[3].id;
    const found = (await get(`/v1/fleet/devices?q=${one.slice(0, 10)}`)).body;
    expect(found.devices.map((d: { id: string }) => d.id)).to.include(one);
    const page = (await get("/v1/fleet/devices?limit=2&offset=2")).body;
    expect(page.devices).to.have.length(2);
    expect(page.total).to.equal(s.devices.length);
    expect((await get("/v1/fleet/devices?status=nonsense")).status).to.equal(400);
    expect((await get("/v1/fleet/devices?limit=-1")).status).to.equal(400);
    expect((await get("/v1/fleet/devices?q=zz'--")).status).to.equal(400);
  });

  it("CAP-11.2-a CAP-11.2-b-iii: the fleet list and a device's detail name each hardware class, component and release beside its id", async () => {
    const COMPONENT_NAMES: Record<string, string> = { [BOOTLOADER]: "acme.bootloader", [FIRMWARE]: "acme.firmware" };
    const HARDWARE_NAMES: Record<number, string> = { 1: "rev-a", 2: "rev-b" };
    const { body } = await get("/v1/fleet/devices?limit=1000");
    expect(body.devices).to.have.length(s.devices.length);
    let named = 0;
    for (const d of body.devices) {
      expect(d.hardwareName, d.id).to.equal(HARDWARE_NAMES[d.hardwareClass]);
      for (const i of d.installed) {
        // The ids stay (clients key on them); the name and the version name the release it runs.
        expect(i.component).to.match(/^0x[0-9a-f]{64}$/);
        expect(i.releaseId).to.match(/^0x[0-9a-f]{64}$/);
        expect(i.componentName, i.component).to.equal(COMPONENT_NAMES[i.component]);
        named++;
      }
    }
    expect(named, "the seeded fleet runs components").to.be.above(0);
    const ok1 = body.devices.find((d: { id: string }) => d.id === s.devices[0].id);
    expect(ok1.installed.map((i: { componentName: string; version: string }) => `${i.componentName} ${i.version}`).sort()).to.deep.equal([
      "acme.bootloader 1.1.0",
      "acme.firmware 2.0.0",
    ]);
    // The failed device's last result is about acme.firmware 2.0.0; a silent one has none.
    const failed = body.devices.find((d: { statuses: string[] }) => d.statuses.includes("failed"));
    expect(failed).to.include({ lastRelease: s.releases[2].id, lastReleaseName: "acme.firmware 2.0.0" });
    const silent = body.devices.find((d: { statuses: string[] }) => d.statuses.includes("unreachable") && d.statuses.length === 1);
    expect(silent).to.include({ lastRelease: null, lastReleaseName: null });

    // The detail: plan steps, decisions' and notices' releases named too.
    const outdated = s.devices.find((d) => d.statuses.includes("outdated"))!;
    const detail = (await get(`/v1/fleet/devices/${outdated.id}`)).body;
    expect(detail.plan.steps.map((x: { componentName: string; version: string }) => `${x.componentName} ${x.version}`)).to.deep.equal([
      "acme.bootloader 1.1.0",
    ]);
    for (const u of detail.plan.unchanged) expect(u.componentName).to.equal(COMPONENT_NAMES[u.component]);
    expect(detail.deliveries.map((x: { releaseId: string; releaseName: string }) => [x.releaseId, x.releaseName])).to.deep.equal([
      [s.releases[1].id, "acme.bootloader 1.1.0"],
    ]);
    // Releases and rollouts name their component.
    const releases = (await get("/v1/releases")).body.releases;
    expect(releases.map((r: { componentName: string; version: string }) => `${r.componentName} ${r.version}`)).to.have.members([
      "acme.bootloader 1.0.0",
      "acme.bootloader 1.1.0",
      "acme.firmware 2.0.0",
    ]);
    for (const r of (await get("/v1/rollouts")).body.rollouts) expect(r.componentName).to.equal(COMPONENT_NAMES[r.component]);
  });

  it("CAP-11.2-c: a device's detail has its plan (dependencies first), report history and notices", async () => {
    const outdated = s.devices.find((d) => d.statuses.includes("outdated"))!;
    const { status, body } = await get(`/v1/fleet/devices/${outdated.id}`);
    expect(status).to.equal(200);
    expect(body.device.id).to.equal(outdated.id);
    expect(body.plan.steps.map((x: { releaseId: string; version: string }) => [x.releaseId, x.version])).to.deep.equal([[s.releases[1].id, "1.1.0"]]);
    expect(body.reports.length).to.be.greaterThan(0);
    expect(body.deliveries.map((x: { releaseId: string }) => x.releaseId)).to.deep.equal([s.releases[1].id]);
    expect((await get(`/v1/fleet/devices/0x${"00".repeat(32)}`)).status).to.equal(404);
  });

  it("releases with how many devices run each, adoption over time and rollout progress", async () => {
    const { body } = await get("/v1/releases");
    const v11 = body.releases.find((r: { id: string }) => r.id === s.releases[1].id);
    expect(v11).to.include({ version: "1.1.0", status: "active", installed: 3 });
    const v10 = body.releases.find((r: { id: string }) => r.id === s.releases[0].id);
    expect(v10).to.include({ status: "vulnerable", installed: 3 });
    const adoption = (await get(`/v1/releases/${s.releases[1].id}/adoption`)).body;
    expect(adoption.points.map((p: { installed: number }) => p.installed)).to.deep.equal([0, 1, 3].filter((n, i) => i > 0 || n > 0));
    const rollouts = (await get("/v1/rollouts")).body.rollouts;
    const r11 = rollouts.find((r: { releaseId: string }) => r.releaseId === s.releases[1].id);
    expect(r11).to.include({ installed: 3, pending: 3, failed: 0 });
    expect(r11.notified).to.be.greaterThan(0);
    expect((await get(`/v1/releases/0x${"00".repeat(32)}/adoption`)).status).to.equal(404);
  });

  it("serves its OpenAPI document and the dashboard page", async () => {
    const doc = await get("/openapi.json");
    expect(doc.body.openapi).to.match(/^3\.1/);
    const page = await fetch(new URL("/", s.url));
    expect(page.headers.get("content-type")).to.match(/text\/html/);
    expect((await fetch(new URL("/dashboard/..%2Fpackage.json", s.url))).status).to.equal(404);
  });
});
