import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { launchBrowser, openPage } from "../../helpers/browser";
import { REPORT_KIND, type StatusReport } from "../../../agent/core/statusReport";
import { sealMessage } from "../../../agent/crypto/sealedMessage";
import { postReport, startSeededTracker, testDevice, type SeededTracker } from "../../helpers/trackerFixture";

// The answers of the tracker's read API (docs/adr/0004-tracker.md), as far as these tests read them.
interface Summary {
  total: number;
  counts: Record<"upToDate" | "outdated" | "vulnerable" | "failed" | "safeMode" | "unreachable" | "suspended", number>;
}
interface Health {
  module: { id: string; role: string };
  ledger: { block: number };
}
interface DeviceDetail {
  device: { id: string; installed: unknown[] };
  reports: { counter: number }[];
}
interface NamedDevice {
  id: string;
  hardwareClass: number;
  hardwareName: string | null;
  installed: { component: string; componentName: string | null; version: string; releaseId: string }[];
}
interface Rollout {
  releaseId: string;
  decided: number;
  installed: number;
  failed: number;
  pending: number;
}

const ROW = '[data-testid="device-row"]';
const CARD_KEYS = [
  ["up-to-date", "upToDate"],
  ["outdated", "outdated"],
  ["vulnerable", "vulnerable"],
  ["failed", "failed"],
  ["safe-mode", "safeMode"],
  ["unreachable", "unreachable"],
  ["suspended", "suspended"],
] as const;

/** GETs a read endpoint directly, to compare the page with what the tracker says. */
async function read<T>(tracker: SeededTracker, urlPath: string, token?: string): Promise<T> {
  const res = await fetch(`${tracker.url}${urlPath}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  expect(res.status, `GET ${urlPath}`).to.equal(200);
  return (await res.json()) as T;
}

/**
 * Adds to the seeded fleet a device in safe mode (CAP-11.1-b): enrolled on the ledger, then its
 * report (nothing installed, safeMode true) taken by the tracker.
 */
async function addSafeModeDevice(tracker: SeededTracker): Promise<string> {
  const d = testDevice("seeded safe-1", 1, "plant-2");
  await (await tracker.tracker.options.chain.fleet.connect(tracker.admin).enrolDevice(d.record)).wait();
  await tracker.tracker.stream.pollOnce();
  const health = (await (await fetch(`${tracker.url}/v1/health`)).json()) as { module: { id: string; publicKey: string } };
  const body: StatusReport = { deviceId: d.record.id, counter: 1, installed: [], lastResult: null, needs: [], declined: [], safeMode: true };
  const sealed = await sealMessage(
    { kind: REPORT_KIND, from: d.record.id, to: health.module.id, issuedAt: Date.now(), body },
    { kind: "device", privateKey: d.key.privateKey },
    health.module.publicKey,
  );
  const res = await postReport(tracker.url, sealed);
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
  const id = d.record.id.toLowerCase();
  tracker.devices.push({ id, statuses: ["safe-mode"], network: "plant-2" });
  return id;
}

/** Opens the dashboard and waits for its first complete refresh. */
async function openDashboard(browser: Browser, url: string) {
  const opened = await openPage(browser);
  const requests: { url: string; authorization?: string }[] = [];
  opened.page.on("request", (r) => requests.push({ url: r.url(), authorization: r.headers().authorization }));
  await opened.page.goto(url);
  await opened.page.waitForSelector('body[data-refreshes="1"]');
  return { ...opened, requests };
}

function text(page: Page, testid: string): Promise<string> {
  return page.locator(`[data-testid="${testid}"]`).first().innerText();
}

/** A computed style property of the first element matching `selector`. */
function computed(page: Page, selector: string, property: "borderLeftColor" | "backgroundColor"): Promise<string> {
  type Styled = { getComputedStyle(el: unknown): Record<string, string> };
  return page
    .locator(selector)
    .first()
    .evaluate((el, p) => (globalThis as unknown as Styled).getComputedStyle(el)[p], property);
}

function rowIds(page: Page): Promise<string[]> {
  return page.locator(ROW).evaluateAll((rows) => rows.map((r) => r.getAttribute("data-device-id") as string));
}

/** Types into the search box and waits for the table to show that query's answer. */
async function search(page: Page, q: string): Promise<void> {
  await page.fill('[data-testid="search"]', q);
  await page.waitForSelector(`[data-testid="device-table"][data-query*="q=${encodeURIComponent(q)}&"]`);
}

describe("agent/tracker/dashboard: the fleet dashboard in headless Chromium against a real tracker", function () {
  this.timeout(120_000);
  let tracker: SeededTracker;
  let browser: Browser;
  let page: Page;
  let pageErrors: string[];
  let requests: { url: string }[];
  let safeModeId: string;

  before(async () => {
    tracker = await startSeededTracker();
    safeModeId = await addSafeModeDevice(tracker);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await tracker?.close();
  });
  beforeEach(async () => {
    ({ page, pageErrors, requests } = await openDashboard(browser, `${tracker.url}/`));
  });
  afterEach(async () => {
    await page?.context().close();
  });

  /** The page ran without an uncaught exception, a console error or an error banner. */
  async function expectCleanPage() {
    expect(pageErrors).to.deep.equal([]);
    expect(await page.locator('[data-testid="error-banner"]').isHidden()).to.equal(true);
  }

  it("shows the module, its ledger block and the fleet summary's counts, and asks nothing outside the tracker", async () => {
    const health = await read<Health>(tracker, "/v1/health");
    const summary = await read<Summary>(tracker, "/v1/fleet/summary");
    expect(await page.getAttribute('[data-testid="module-id"]', "title")).to.match(new RegExp(`^${health.module.id},`));
    expect(await text(page, "module-role")).to.equal(health.module.role);
    expect(Number(await text(page, "ledger-block"))).to.be.at.least(1);
    expect(Number(await text(page, "count-total"))).to.equal(summary.total);
    for (const [card, key] of CARD_KEYS) {
      expect(Number(await text(page, `count-${card}`)), card).to.equal(summary.counts[key]);
    }
    // The seeded fleet has devices in every status; the outdated card is the fixture's outdated devices.
    expect(summary.counts.outdated)
      .to.equal(tracker.devices.filter((d) => d.statuses.includes("outdated")).length)
      .and.to.be.above(0);
    expect(await page.locator("main").innerText()).not.to.match(/\bnull\b|\bundefined\b|NaN|\[object/);
    expect(requests.map((r) => r.url).filter((u) => !u.startsWith(`${tracker.url}/`))).to.deep.equal([]);
    await expectCleanPage();
  });

  it("CAP-11.1-b CAP-11.2-a: a card counts the devices in safe mode, which need a person; filtering by it lists them with their badge and detail", async () => {
    const summary = await read<Summary>(tracker, "/v1/fleet/summary");
    expect(summary.counts.safeMode).to.equal(1);
    const card = page.locator('[data-testid="count-safe-mode"]');
    expect(await card.innerText()).to.equal("1");
    const cardBox = page.locator(".card.status-safe-mode");
    expect(await cardBox.innerText())
      .to.match(/safe mode/i)
      .and.to.match(/person/i);
    // Its own colour, not the grey of the unreachable card (and of a badge without a colour of its own).
    const grey = await computed(page, ".card.status-unreachable", "borderLeftColor");
    expect(await computed(page, ".card.status-safe-mode", "borderLeftColor")).not.to.equal(grey);

    await page.selectOption('[data-testid="filter-status"]', "safe-mode");
    await page.waitForSelector('[data-testid="device-table"][data-query*="status=safe-mode"]');
    expect(await rowIds(page)).to.deep.equal([safeModeId]);
    const badge = page.locator(`${ROW}[data-device-id="${safeModeId}"] .badge.status-safe-mode`);
    expect(await badge.innerText()).to.equal("safe-mode");
    expect(await computed(page, `${ROW}[data-device-id="${safeModeId}"] .badge.status-safe-mode`, "backgroundColor")).not.to.equal(grey);

    await page.click(`${ROW}[data-device-id="${safeModeId}"]`);
    await page.waitForSelector(`[data-testid="device-detail"][data-loaded="true"][data-device-id="${safeModeId}"]`);
    expect(await text(page, "detail-safe-mode")).to.match(/person/);
    expect(await text(page, "detail-installed-empty")).to.match(/safe mode/);
    await expectCleanPage();
  });

  it("filtering by status 'outdated' lists exactly the outdated devices", async () => {
    const outdated = tracker.devices.filter((d) => d.statuses.includes("outdated")).map((d) => d.id);
    expect(outdated.length).to.be.above(0);
    expect(outdated.length, "the fleet also has devices that are not outdated").to.be.below(tracker.devices.length);
    await page.selectOption('[data-testid="filter-status"]', "outdated");
    await page.waitForSelector('[data-testid="device-table"][data-query*="status=outdated"]');

    const shown = await rowIds(page);
    expect(Number(await page.getAttribute('[data-testid="device-table"]', "data-total"))).to.equal(outdated.length);
    if (outdated.length <= 50) expect([...shown].sort()).to.deep.equal([...outdated].sort());
    else
      expect(shown)
        .to.have.length(50)
        .and.to.satisfy((ids: string[]) => ids.every((id) => outdated.includes(id)));
    const badges = await page.locator(ROW).evaluateAll((rows) => rows.map((r) => r.getAttribute("data-statuses") as string));
    expect(badges.every((b) => b.split(" ").includes("outdated"))).to.equal(true);
    await expectCleanPage();
  });

  it("searching by a device id prefix finds that device", async () => {
    const target = tracker.devices[tracker.devices.length - 1];
    const prefix = target.id.slice(0, 12);
    await search(page, prefix);
    const shown = await rowIds(page);
    expect(shown).to.include(target.id);
    expect(shown.every((id) => id.toLowerCase().includes(prefix.toLowerCase()))).to.equal(true);
    const cell = page.locator(`${ROW}[data-device-id="${target.id}"] [data-testid="device-id"]`);
    expect(await cell.getAttribute("title")).to.equal(target.id); // the full id, while the cell shows it shortened
    expect((await cell.innerText()).length).to.be.below(target.id.length);
    await expectCleanPage();
  });

  it("clicking a device row opens its detail with its installed components and report history", async () => {
    const target = await deviceWithReports();
    await search(page, target.device.id.slice(0, 12));
    await page.click(`${ROW}[data-device-id="${target.device.id}"]`);
    await page.waitForSelector(`[data-testid="device-detail"][data-loaded="true"][data-device-id="${target.device.id}"]`);

    expect(await text(page, "detail-id")).to.equal(target.device.id);
    const counters = await page.locator('[data-testid="report-row"]').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute("data-counter"))));
    expect(counters).to.deep.equal(target.reports.map((r) => r.counter));
    expect(await page.locator('[data-testid="detail-installed"] tbody tr').count()).to.equal(target.device.installed.length);
    expect(await page.locator('[data-testid="device-detail"]').innerText()).not.to.match(/\bnull\b|\bundefined\b|NaN|\[object/);
    await expectCleanPage();
  });

  it("CAP-11.2-a CAP-11.2-b-iii: the device list names each device's hardware class and the components and releases it runs; the ids are on hover and in the detail", async () => {
    const { devices } = await read<{ devices: NamedDevice[] }>(tracker, "/v1/fleet/devices?limit=50");
    const target = devices.find((d) => d.installed.length > 1 && d.installed.every((i) => i.componentName))!;
    expect(target, "a seeded device runs two named components").to.not.equal(undefined);
    await search(page, target.id.slice(0, 12));
    const row = page.locator(`${ROW}[data-device-id="${target.id}"]`);

    // The hardware class by its name, its number on hover.
    const hardware = row.locator('[data-testid="device-hardware"]');
    expect(await hardware.innerText()).to.equal(target.hardwareName);
    expect(await hardware.getAttribute("title")).to.equal(`hardware class ${target.hardwareClass}`);

    // Each component by its name and version ("acme.bootloader 1.1.0"), its id and its release's id on hover.
    const items = row.locator('[data-testid="installed-item"]');
    expect(await items.allInnerTexts()).to.have.members(target.installed.map((i) => `${i.componentName} ${i.version}`));
    expect(await items.allInnerTexts()).to.include.members(["acme.bootloader 1.1.0", "acme.firmware 2.0.0"]);
    for (const i of target.installed) {
      const item = row.locator(`[data-testid="installed-item"][data-component="${i.component}"]`);
      expect(await item.getAttribute("title")).to.equal(`component ${i.component}, release ${i.releaseId}`);
    }
    // Hovering shows the title: the ids behind the name.
    await items.first().hover();
    expect(await items.first().getAttribute("title")).to.match(/^component 0x[0-9a-f]{64}, release 0x[0-9a-f]{64}$/);
    expect((await items.allInnerTexts()).join(" ")).not.to.match(/0x/); // names where they are known, no hashes

    // The detail names them too, with every id in full beside.
    await row.click();
    await page.waitForSelector(`[data-testid="device-detail"][data-loaded="true"][data-device-id="${target.id}"]`);
    expect(await text(page, "detail-hardware")).to.equal(`${target.hardwareName} (class ${target.hardwareClass})`);
    const names = page.locator('[data-testid="detail-installed"] [data-testid="installed-name"]');
    expect(await names.allInnerTexts()).to.have.members(target.installed.map((i) => i.componentName!));
    expect(await names.evaluateAll((cells) => cells.map((c) => c.getAttribute("title")))).to.have.members(target.installed.map((i) => i.component));
    const hexTitles = await page.locator('[data-testid="detail-installed"] td.mono').evaluateAll((cells) => cells.map((c) => c.getAttribute("title")));
    expect(hexTitles).to.include.members(target.installed.flatMap((i) => [i.component, i.releaseId]));
    await expectCleanPage();
  });

  it("CAP-11.2-b-iii: names are ledger data drawn as text, never as markup; without a name the shortened id stands in", async () => {
    const { devices } = await read<{ devices: NamedDevice[] }>(tracker, "/v1/fleet/devices?limit=50");
    const target = devices.find((d) => d.installed.length > 1 && d.installed.every((i) => i.componentName))!;
    const [named, unnamed] = target.installed;
    const db = tracker.tracker.store;
    // Whoever registers a component or a hardware class chooses its name: one that is markup, and one the mirror lost.
    const HOSTILE = '<img src=x data-testid="injected">';
    db.catalogue.setComponentName(named.component, HOSTILE);
    db.catalogue.setHardwareName(target.hardwareClass, `<b data-testid="injected">x</b>`);
    db.catalogue.setComponentName(unnamed.component, null);
    try {
      const after = (await read<{ devices: NamedDevice[] }>(tracker, `/v1/fleet/devices?q=${target.id.slice(0, 12)}`)).devices[0];
      expect(after.installed.find((i) => i.component === unnamed.component)!.componentName).to.equal(null);
      await search(page, target.id.slice(0, 8));
      const row = page.locator(`${ROW}[data-device-id="${target.id}"]`);
      // The search asks again after the names changed: its rows are drawn from the new answer.
      expect(await row.locator(`[data-testid="installed-item"][data-component="${named.component}"]`).innerText()).to.equal(`${HOSTILE} ${named.version}`);
      expect(await row.locator('[data-testid="device-hardware"]').innerText()).to.equal(`<b data-testid="injected">x</b>`);
      expect(await page.locator('[data-testid="injected"]').count()).to.equal(0);
      // No name: the shortened id, the full one on hover.
      const fallback = row.locator(`[data-testid="installed-item"][data-component="${unnamed.component}"]`);
      expect(await fallback.innerText()).to.equal(`${unnamed.component.slice(0, 10)}…${unnamed.component.slice(-6)} ${unnamed.version}`);
      expect(await fallback.getAttribute("title")).to.include(unnamed.component);
      await expectCleanPage();
    } finally {
      db.catalogue.setComponentName(named.component, named.componentName);
      db.catalogue.setComponentName(unnamed.component, unnamed.componentName);
      db.catalogue.setHardwareName(target.hardwareClass, target.hardwareName);
    }
  });

  it("keeps the filters and the open detail when it refreshes", async () => {
    const target = await deviceWithReports();
    await page.selectOption('[data-testid="filter-status"]', target.statuses[0]);
    await search(page, target.device.id.slice(0, 12));
    await page.click(`${ROW}[data-device-id="${target.device.id}"]`);
    await page.waitForSelector(`[data-testid="device-detail"][data-loaded="true"]`);
    const refreshes = Number(await page.getAttribute("body", "data-refreshes"));
    const asked = requests.length;

    await page.waitForSelector(`body[data-refreshes="${refreshes + 1}"]`, { timeout: 15_000 });
    const since = requests.slice(asked).map((r) => r.url);
    expect(
      since.some((u) => u.includes(`/v1/fleet/devices/${target.device.id}`)),
      "the detail was read again",
    ).to.equal(true);
    expect(
      since.some((u) => u.includes(`status=${target.statuses[0]}`) && u.includes("q=")),
      "with the same filters",
    ).to.equal(true);
    expect(await page.inputValue('[data-testid="filter-status"]')).to.equal(target.statuses[0]);
    expect(await page.inputValue('[data-testid="search"]')).to.equal(target.device.id.slice(0, 12));
    expect(await page.getAttribute('[data-testid="device-detail"]', "data-device-id")).to.equal(target.device.id);
    expect(await page.locator('[data-testid="device-detail"]').isVisible()).to.equal(true);
    expect(await rowIds(page)).to.include(target.device.id);
    await expectCleanPage();
  });

  it("draws the chosen release's adoption as a line through its points, left to right, higher for more devices", async () => {
    const { release, points } = await releaseWithMostAdoption();
    expect(points.length, "the seeded fleet has adoption points").to.be.at.least(1);
    await page.selectOption('[data-testid="adoption-release"]', release.id);
    await page.waitForSelector(`[data-testid="adoption-chart"][data-release-id="${release.id}"]`);

    const d = (await page.getAttribute('[data-testid="adoption-line"]', "d")) as string;
    const drawn = [...d.matchAll(/[ML](-?[\d.]+),(-?[\d.]+)/g)].map((m) => ({ x: Number(m[1]), y: Number(m[2]) }));
    expect(drawn).to.have.length(points.length);
    expect(await page.locator('[data-testid="adoption-point"]').count()).to.equal(points.length);
    const sorted = [...points].sort((a, b) => a.t - b.t);
    for (let i = 1; i < drawn.length; i++) {
      expect(drawn[i].x).to.be.at.least(drawn[i - 1].x);
      const rising = Math.sign(sorted[i].installed - sorted[i - 1].installed);
      expect(Math.sign(drawn[i - 1].y - drawn[i].y), `segment ${i} goes the way the count goes`).to.equal(rising);
    }
    const axes = await page.locator('[data-testid="adoption-chart"] text').evaluateAll((texts) => texts.map((t) => t.textContent));
    expect(axes).to.include.members(["0", "time", "devices installed"]);
    await expectCleanPage();
  });

  it("shows one bar per rollout with its installed, failed, pending and decided numbers", async () => {
    const { rollouts } = await read<{ rollouts: Rollout[] }>(tracker, "/v1/rollouts");
    expect(rollouts.length, "the seeded tracker has a rollout").to.be.at.least(1);
    const rows = page.locator('[data-testid="rollout-row"]');
    expect(await rows.count()).to.equal(rollouts.length);
    for (const [i, r] of rollouts.entries()) {
      const row = rows.nth(i);
      expect(await row.getAttribute("data-release-id")).to.equal(r.releaseId);
      for (const kind of ["installed", "failed", "pending", "decided"] as const) {
        expect(Number(await row.locator(`[data-testid="rollout-${kind}"]`).innerText()), kind).to.equal(r[kind]);
      }
      const width = await row.locator(".segment-installed").evaluate((el) => (el as unknown as { style: { width: string } }).style.width);
      expect(parseFloat(width)).to.be.closeTo(r.decided ? (100 * r.installed) / r.decided : 0, 0.01);
    }
    await expectCleanPage();
  });

  it("lists the downstream modules the tracker knows", async () => {
    const { modules } = await read<{ modules: { id: string }[] }>(tracker, "/v1/modules");
    const ids = await page.locator('[data-testid="module-row"]').evaluateAll((rows) => rows.map((r) => r.getAttribute("data-module-id")));
    expect(ids).to.deep.equal(modules.map((m) => m.id));
    await expectCleanPage();
  });

  it("pages through the devices fifty at a time", async () => {
    const total = tracker.devices.length;
    expect(await text(page, "page-info")).to.equal(`1–${Math.min(50, total)} of ${total}`);
    expect(await page.isDisabled('[data-testid="page-prev"]')).to.equal(true);
    expect(await page.isDisabled('[data-testid="page-next"]')).to.equal(total <= 50);
    if (total > 50) {
      const first = await rowIds(page);
      await page.click('[data-testid="page-next"]');
      await page.waitForSelector('[data-testid="device-table"][data-query*="offset=50"]');
      const second = await rowIds(page);
      expect(second).to.have.length(Math.min(50, total - 50));
      expect(second.filter((id) => first.includes(id))).to.deep.equal([]);
      expect(await page.isDisabled('[data-testid="page-prev"]')).to.equal(false);
    }
    await expectCleanPage();
  });

  it("never parses data as HTML: the script builds its nodes with textContent", () => {
    const source = readFileSync(path.join(__dirname, "../../../agent/tracker/dashboard/dashboard.js"), "utf8");
    expect(source).not.to.match(/\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
  });

  /** A seeded device that has sent reports, with the tracker's detail of it. */
  async function deviceWithReports(): Promise<DeviceDetail & { statuses: string[] }> {
    for (const d of tracker.devices) {
      const detail = await read<DeviceDetail>(tracker, `/v1/fleet/devices/${d.id}`);
      if (detail.reports.length > 0 && d.statuses.length > 0) return { ...detail, statuses: d.statuses };
    }
    throw new Error("the seeded fleet has no device with reports");
  }

  async function releaseWithMostAdoption() {
    let best = { release: tracker.releases[0], points: [] as { t: number; installed: number }[] };
    for (const release of tracker.releases) {
      const { points } = await read<{ points: { t: number; installed: number }[] }>(tracker, `/v1/releases/${release.id}/adoption`);
      if (points.length > best.points.length) best = { release, points };
    }
    return best;
  }
});

describe("agent/tracker/dashboard: a tracker that asks readers for a bearer token", function () {
  this.timeout(120_000);
  const TOKEN = "dashboard-test-token";
  let tracker: SeededTracker;
  let browser: Browser;

  before(async () => {
    tracker = await startSeededTracker({ apiToken: TOKEN });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await tracker?.close();
  });

  it("shows the tracker's refusal in the error banner when the page has no token", async () => {
    const { page } = await openDashboard(browser, `${tracker.url}/`);
    try {
      const banner = page.locator('[data-testid="error-banner"]');
      expect(await banner.isVisible()).to.equal(true);
      const messages = await page.locator('[data-testid="error-list"] li').allInnerTexts();
      expect(messages.some((m) => m.includes("/v1/fleet/summary") && m.includes("401"))).to.equal(true);
      expect(await text(page, "count-total")).to.equal("–"); // nothing drawn from a refused answer
      expect(await page.locator(ROW).count()).to.equal(0);
    } finally {
      await page.context().close();
    }
  });

  it("sends the token from #token= with every request and shows the fleet", async () => {
    const { page, pageErrors, requests } = await openDashboard(browser, `${tracker.url}/#token=${TOKEN}`);
    try {
      const apiRequests = requests.filter((r) => r.url.includes("/v1/"));
      expect(apiRequests.length).to.be.at.least(7);
      expect(apiRequests.filter((r) => r.authorization !== `Bearer ${TOKEN}`)).to.deep.equal([]);
      const summary = await read<Summary>(tracker, "/v1/fleet/summary", TOKEN);
      expect(Number(await text(page, "count-total"))).to.equal(summary.total);
      expect(await page.locator(ROW).count()).to.equal(Math.min(50, summary.total));
      expect(await page.locator('[data-testid="error-banner"]').isHidden()).to.equal(true);
      expect(pageErrors).to.deep.equal([]);
    } finally {
      await page.context().close();
    }
  });
});
