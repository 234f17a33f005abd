// OTA Ledger fleet dashboard: reads the status tracker's v1 read endpoints (docs/adr/0004-tracker.md)
// and redraws them every few seconds. No framework and no build step, so that the tracker can serve
// this folder as it is. Every text from the network goes into the page through textContent or
// setAttribute, never through innerHTML: device ids and labels are not ours to trust.
"use strict";

(function dashboard() {
  const REFRESH_MS = 5000;
  const PAGE_SIZE = 50;
  const TYPING_DELAY_MS = 300;
  const SVG_NS = "http://www.w3.org/2000/svg";
  /** The summary's count key for each status card. */
  const COUNT_KEYS = {
    total: "total",
    "up-to-date": "upToDate",
    outdated: "outdated",
    vulnerable: "vulnerable",
    failed: "failed",
    blocked: "blocked",
    refused: "refused",
    "safe-mode": "safeMode",
    unreachable: "unreachable",
    suspended: "suspended",
  };

  // What the reader chose; redraws read it, so a refresh never resets it.
  const state = {
    token: readToken(),
    filters: { status: "", network: "", hardware: "", q: "" },
    offset: 0,
    openDeviceId: null,
    releaseId: null,
    refreshes: 0,
  };
  /** The latest request number per section: an older answer arriving late is dropped. */
  const tickets = new Map();
  /** The current error per section; a section's next success clears its error. */
  const errors = new Map();

  // ---- DOM helpers ----------------------------------------------------------------------------

  function byId(id) {
    return document.getElementById(id);
  }

  /** An element with props {class, testid, title, data: {...}, attrs: {...}} and children (text or nodes). */
  function h(tag, props, ...children) {
    return fill(document.createElement(tag), props, children);
  }

  function s(tag, attrs, ...children) {
    return fill(document.createElementNS(SVG_NS, tag), { attrs }, children);
  }

  function fill(node, props = {}, children = []) {
    if (props.class) node.setAttribute("class", props.class);
    if (props.testid) node.setAttribute("data-testid", props.testid);
    if (props.title != null) node.setAttribute("title", String(props.title));
    for (const [k, v] of Object.entries(props.data || {})) node.dataset[k] = String(v);
    for (const [k, v] of Object.entries(props.attrs || {})) node.setAttribute(k, String(v));
    for (const child of children.flat(Infinity)) {
      if (child == null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** Replaces a node's children; null children (optional parts) are left out. */
  function replace(node, ...children) {
    node.replaceChildren();
    return fill(node, {}, children);
  }

  function byTestId(testid) {
    return document.querySelector(`[data-testid="${testid}"]`);
  }

  function setText(testid, text) {
    byTestId(testid).textContent = String(text);
  }

  // ---- formatting -----------------------------------------------------------------------------

  /** 0x-hex identifiers (device ids, components, releases) are long; show both ends. */
  function shortHex(value) {
    const text = String(value ?? "");
    return /^0x[0-9a-f]{20,}$/i.test(text) ? `${text.slice(0, 10)}…${text.slice(-6)}` : text;
  }

  function relativeTime(ms, now = Date.now()) {
    if (ms == null) return "never";
    const seconds = Math.round((now - ms) / 1000);
    if (seconds < 5) return "just now";
    if (seconds < 60) return `${seconds} s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
    return `${Math.floor(seconds / 86400)} d ago`;
  }

  function absoluteTime(ms) {
    return ms == null ? "" : new Date(ms).toISOString();
  }

  /** A cell with the relative time, and the exact time on hover. */
  function timeCell(ms) {
    return h("td", { title: absoluteTime(ms), class: "time" }, relativeTime(ms));
  }

  function badge(label, kind) {
    return h("span", { class: `badge status-${kind}`, data: { status: label } }, label);
  }

  /** The device's statuses; a standing other than active (revoked, say) is shown too. */
  function statusBadges(device) {
    const statuses = device.statuses || [];
    const badges = statuses.map((st) => badge(st, st));
    if (device.standing && device.standing !== "active" && !statuses.includes(device.standing)) badges.push(badge(device.standing, "suspended"));
    return badges;
  }

  // Names beside ids (issue 19): the tracker sends each component's, release's and hardware class's
  // registered name beside its id (componentName, releaseName, hardwareName), null until its mirror
  // holds it. The page shows the name (the shortened id without one) and keeps the id on hover and
  // in the detail. Names are ledger data anyone registering may choose: text nodes only.

  /** A component's name, or its shortened id while the tracker has no name for it. */
  function componentText(id, name) {
    return name != null && name !== "" ? String(name) : shortHex(id);
  }

  /** A name with its id on hover; the shortened id, monospace, when there is no name. */
  function named(id, name, props = {}) {
    const hasName = name != null && name !== "";
    return h(
      "span",
      { ...props, class: [props.class, hasName ? "name" : "mono"].filter(Boolean).join(" "), title: props.title ?? id },
      hasName ? String(name) : shortHex(id),
    );
  }

  /** "rev-c", or the class number while the tracker has no name for it; the number on hover. */
  function hardwareText(device) {
    return device.hardwareName != null && device.hardwareName !== "" ? String(device.hardwareName) : String(device.hardwareClass);
  }

  function installedList(installed) {
    return h(
      "ul",
      { class: "plain" },
      (installed || []).map((c) =>
        h(
          "li",
          { testid: "installed-item", title: `component ${c.component}, release ${c.releaseId}`, data: { component: c.component, releaseId: c.releaseId } },
          `${componentText(c.component, c.componentName)} ${c.version}`,
        ),
      ),
    );
  }

  /** A small table, or a line saying it is empty. */
  function table(headers, rows, emptyText, testid) {
    if (rows.length === 0) return h("p", { class: "empty", testid: testid && `${testid}-empty` }, emptyText);
    return h(
      "table",
      { class: "compact", testid },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          headers.map((x) => h("th", {}, x)),
        ),
      ),
      h("tbody", {}, rows),
    );
  }

  function cells(values) {
    return values.map((v) => (v instanceof Node && v.nodeName === "TD" ? v : h("td", {}, v)));
  }

  function hexCell(value) {
    return h("td", { class: "mono", title: value }, shortHex(value));
  }

  // ---- talking to the tracker -----------------------------------------------------------------

  /** The bearer token given in the page address (#token=...), if any. */
  function readToken() {
    return new URLSearchParams(location.hash.slice(1)).get("token") || null;
  }

  /** GETs a JSON document; throws with the tracker's own error code and message. */
  async function api(path) {
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    let res;
    try {
      res = await fetch(path, { headers, cache: "no-store" });
    } catch (e) {
      throw new Error(`the tracker cannot be reached (${e.message})`, { cause: e });
    }
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      const err = body && body.error;
      throw new Error(`${res.status} ${err ? `${err.code}: ${err.message}` : res.statusText}`);
    }
    if (body === null) throw new Error("the answer is not JSON");
    return body;
  }

  /**
   * Fetches one section's data and draws it. Failures (of the request or of drawing an unexpected
   * answer) go to the error banner under the section's name; the section's next success clears it.
   */
  async function load(section, path, draw) {
    const ticket = (tickets.get(section) || 0) + 1;
    tickets.set(section, ticket);
    try {
      const data = await api(path);
      if (tickets.get(section) !== ticket) return;
      draw(data);
      errors.delete(section);
    } catch (e) {
      if (tickets.get(section) !== ticket) return;
      errors.set(section, `${path}: ${e.message}`);
    }
    drawErrors();
  }

  /** Forgets a section's pending request and error, when what it showed is closed. */
  function cancel(section) {
    tickets.set(section, (tickets.get(section) || 0) + 1);
    errors.delete(section);
    drawErrors();
  }

  function drawErrors() {
    const banner = byId("error-banner");
    const list = banner.querySelector("ul");
    list.replaceChildren(...[...errors.values()].map((m) => h("li", {}, m)));
    banner.hidden = errors.size === 0;
  }

  // ---- health and counts ----------------------------------------------------------------------

  function loadHealth() {
    return load("health", "/v1/health", (health) => {
      setText("module-id", shortHex(health.module.id));
      byTestId("module-id").title = `${health.module.id}${health.module.parent ? `, below module ${health.module.parent}` : ", top of the module hierarchy"}`;
      setText("module-role", health.module.role);
      setText("ledger-block", health.ledger.block);
    });
  }

  function loadSummary() {
    return load("summary", "/v1/fleet/summary", (summary) => {
      for (const [status, key] of Object.entries(COUNT_KEYS)) {
        setText(`count-${status}`, key === "total" ? summary.total : summary.counts[key]);
      }
      drawNetworkOptions(summary.byNetwork);
    });
  }

  /** Networks come from the summary; the chosen one stays chosen even if it left the summary. */
  function drawNetworkOptions(byNetwork) {
    const select = byId("filter-network");
    const networks = byNetwork.map((n) => n.network);
    if (state.filters.network && !networks.includes(state.filters.network)) networks.push(state.filters.network);
    const options = networks.map((n) => {
      const entry = byNetwork.find((b) => b.network === n);
      return h("option", { attrs: { value: n } }, entry ? `${n} (${entry.total})` : n);
    });
    select.replaceChildren(h("option", { attrs: { value: "" } }, "any"), ...options);
    select.value = state.filters.network;
  }

  // ---- device table ---------------------------------------------------------------------------

  function deviceQuery() {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(state.filters)) if (v !== "") params.set(k, v);
    params.set("limit", String(PAGE_SIZE));
    params.set("offset", String(state.offset));
    return params.toString();
  }

  function loadDevices() {
    const query = deviceQuery();
    return load("devices", `/v1/fleet/devices?${query}`, (data) => drawDevices(data, query));
  }

  function drawDevices(data, query) {
    byId("device-rows").replaceChildren(...data.devices.map(deviceRow));
    // Tests (and curious readers) can see which query the rows shown answer.
    byId("device-table").dataset.query = query;
    byId("device-table").dataset.total = String(data.total);
    drawPager(data.total, data.devices.length);
  }

  function deviceRow(device) {
    const row = h(
      "tr",
      {
        testid: "device-row",
        class: device.id === state.openDeviceId ? "selected" : null,
        data: { deviceId: device.id, statuses: (device.statuses || []).join(" ") },
        attrs: { tabindex: 0 },
      },
      h("td", { class: "mono", title: device.id, testid: "device-id" }, shortHex(device.id)),
      h("td", { testid: "device-hardware", title: `hardware class ${device.hardwareClass}` }, hardwareText(device)),
      h("td", {}, device.network),
      h("td", {}, device.region),
      h("td", { testid: "device-statuses" }, statusBadges(device)),
      h("td", {}, installedList(device.installed)),
      timeCell(device.lastSeen),
    );
    row.addEventListener("click", () => openDetail(device.id));
    row.addEventListener("keydown", (e) => {
      if (e.key === "Enter") openDetail(device.id);
    });
    return row;
  }

  function drawPager(total, shown) {
    const from = shown === 0 ? 0 : state.offset + 1;
    setText("page-info", `${from}–${state.offset + shown} of ${total}`);
    byId("page-prev").disabled = state.offset === 0;
    byId("page-next").disabled = state.offset + PAGE_SIZE >= total;
  }

  function setFilter(name, value) {
    if (state.filters[name] === value) return;
    state.filters[name] = value;
    state.offset = 0; // the old page may not exist under the new filter
    loadDevices();
  }

  /** Text inputs wait until typing pauses, so that each key does not cost a request. */
  function onTyping(input, name) {
    let timer = null;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => setFilter(name, input.value.trim()), TYPING_DELAY_MS);
    });
  }

  function turnPage(step) {
    state.offset = Math.max(0, state.offset + step * PAGE_SIZE);
    loadDevices();
  }

  // ---- device detail --------------------------------------------------------------------------

  function openDetail(id) {
    state.openDeviceId = id;
    for (const row of document.querySelectorAll('[data-testid="device-row"]')) row.classList.toggle("selected", row.dataset.deviceId === id);
    const panel = byId("device-detail");
    panel.hidden = false;
    panel.dataset.deviceId = id;
    delete panel.dataset.loaded;
    byId("detail-title").textContent = `Device ${shortHex(id)}`;
    byId("detail-body").replaceChildren(h("p", { class: "empty" }, "loading…"));
    return loadDetail();
  }

  function closeDetail() {
    state.openDeviceId = null;
    cancel("detail");
    byId("device-detail").hidden = true;
    for (const row of document.querySelectorAll('[data-testid="device-row"].selected')) row.classList.remove("selected");
  }

  function loadDetail() {
    const id = state.openDeviceId;
    if (!id) return Promise.resolve();
    return load("detail", `/v1/fleet/devices/${encodeURIComponent(id)}`, (data) => {
      if (state.openDeviceId === id) drawDetail(data);
    });
  }

  function drawDetail({ device, plan, reports, decisions, policyRefusal }) {
    replace(
      byId("detail-body"),
      detailFacts(device, policyRefusal),
      h("h3", {}, "Installed components"),
      table(
        ["component", "version", "component id", "release id"],
        device.installed.map((c) =>
          h(
            "tr",
            {},
            cells([
              h("td", { testid: "installed-name", title: c.component }, componentText(c.component, c.componentName)),
              c.version,
              hexCell(c.component),
              hexCell(c.releaseId),
            ]),
          ),
        ),
        device.safeMode ? "unknown: the device is in safe mode and lists nothing installed" : "nothing reported yet",
        "detail-installed",
      ),
      h("h3", {}, "Plan"),
      table(
        ["component", "version", "release", "reason"],
        plan.steps.map((st) =>
          h(
            "tr",
            { testid: "plan-step" },
            cells([h("td", { title: st.component }, componentText(st.component, st.componentName)), st.version, hexCell(st.releaseId), st.reason]),
          ),
        ),
        "no steps: nothing to install",
        "detail-plan",
      ),
      unchangedList(plan.unchanged || []),
      h("h3", {}, "Decisions"),
      table(["release", "component", "reason", "origin", "state", "decided"], decisions.map(decisionRow), "no decisions", "detail-decisions"),
      h("h3", {}, "Reports"),
      table(["counter", "received", "last result"], reports.map(reportRow), "no reports received", "detail-reports"),
    );
    byId("device-detail").dataset.loaded = "true";
  }

  /** "refused by 0x4B3f…e2: reason 6 (SOAKING)", through a composer's members (issue 18). */
  function refusalText(r) {
    const by = r.decidedBy;
    const via = r.path.length ? ` (member ${r.path.map((p) => p.member).join(" > ")} of ${shortHex(r.policy)})` : "";
    return `refused by ${shortHex(by.policy)}${via}: reason ${by.reason}${by.name ? ` (${by.name})` : ""}`;
  }

  function detailFacts(device, policyRefusal) {
    const fact = (label, value, testid) => [h("dt", {}, label), h("dd", { testid }, value)];
    return h(
      "dl",
      { class: "facts" },
      fact("id", h("span", { class: "mono wrap" }, device.id), "detail-id"),
      fact("status", statusBadges(device), "detail-statuses"),
      device.safeMode
        ? fact("safe mode", "yes: it refuses automatic updates; a person must install a release by hand (ota-ledger device install)", "detail-safe-mode")
        : null,
      fact("standing", device.standing),
      fact(
        "hardware class",
        device.hardwareName != null ? `${device.hardwareName} (class ${device.hardwareClass})` : String(device.hardwareClass),
        "detail-hardware",
      ),
      fact("network / region", `${device.network} / ${device.region}`),
      fact("upstream", device.upstream ? h("span", { class: "mono", title: device.upstream }, shortHex(device.upstream)) : "—"),
      fact("last outcome", device.lastOutcome ? `${device.lastOutcome}${device.lastCode ? ` (${device.lastCode})` : ""}` : "—"),
      device.lastRelease
        ? fact(
            "about release",
            [named(device.lastRelease, device.lastReleaseName), " ", h("span", { class: "mono wrap" }, device.lastRelease)],
            "detail-last-release",
          )
        : null,
      policyRefusal
        ? fact("update policy", h("span", { class: "mono", title: `release ${policyRefusal.releaseId}` }, refusalText(policyRefusal)), "detail-policy-refusal")
        : null,
      device.lastKind === "blocked"
        ? fact(
            "blocked",
            h(
              "span",
              { title: absoluteTime(device.blockedSince) },
              `${device.lastCode || "a delivery fault"}, first seen ${relativeTime(device.blockedSince)}`,
            ),
            "detail-blocked",
          )
        : null,
      fact("last seen", h("span", { title: absoluteTime(device.lastSeen) }, relativeTime(device.lastSeen))),
    );
  }

  function unchangedList(unchanged) {
    if (unchanged.length === 0) return null;
    return h(
      "p",
      { class: "note" },
      "unchanged: ",
      unchanged.map((u, i) => [i ? ", " : "", h("span", { title: u.component }, `${componentText(u.component, u.componentName)} ${u.code}`)]),
    );
  }

  function decisionRow(d) {
    return h(
      "tr",
      { testid: "decision-row" },
      cells([
        h("td", {}, named(d.releaseId, d.releaseName)),
        h("td", {}, named(d.component, d.componentName)),
        d.reason,
        d.origin,
        d.state,
        timeCell(d.decidedAt),
      ]),
    );
  }

  /** A report row: its counter, when it came, and what the device said of its last update. */
  function reportRow(report) {
    const last = report.body && report.body.lastResult;
    const result = last ? `${last.outcome}${last.code ? ` (${last.code})` : ""} for ${shortHex(last.releaseId)}` : "none";
    return h("tr", { testid: "report-row", data: { counter: report.counter } }, cells([report.counter, timeCell(report.receivedAt), result]));
  }

  // ---- releases and adoption ------------------------------------------------------------------

  function loadReleases() {
    return load("releases", "/v1/releases", (data) => drawReleaseOptions(data.releases));
  }

  function drawReleaseOptions(releases) {
    const select = byId("adoption-release");
    if (!releases.some((r) => r.id === state.releaseId)) state.releaseId = releases.length ? releases[0].id : null;
    select.replaceChildren(
      ...releases.map((r) =>
        h(
          "option",
          { attrs: { value: r.id }, title: r.id },
          `${componentText(r.component, r.componentName)} ${r.version} (${r.status}): ${r.installed} installed`,
        ),
      ),
    );
    select.value = state.releaseId ?? "";
    if (!state.releaseId) drawChart(byId("adoption-chart"), null, []);
  }

  function loadAdoption() {
    const id = state.releaseId;
    if (!id) return Promise.resolve();
    return load("adoption", `/v1/releases/${encodeURIComponent(id)}/adoption`, (data) => {
      if (state.releaseId === id) drawChart(byId("adoption-chart"), id, data.points);
    });
  }

  // ---- the adoption chart ---------------------------------------------------------------------

  const CHART = { width: 640, height: 260, left: 56, right: 36, top: 16, bottom: 44 };

  /** Round steps (1, 2, 5 × 10^n) so that the axis reads easily; at least one device per step. */
  function niceStep(max, ticks) {
    const raw = Math.max(1, max / ticks);
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * magnitude).find((x) => x >= raw);
    return Math.max(1, step);
  }

  /** A time label as precise as the chart's span needs, so that the ticks differ. */
  function formatTick(ms, span) {
    const d = new Date(ms);
    const pad = (n, width = 2) => String(n).padStart(width, "0");
    const minutes = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    if (span < 10_000) return `${minutes}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
    if (span < 3600_000) return `${minutes}:${pad(d.getSeconds())}`;
    if (span < 86_400_000) return minutes;
    return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${minutes}`;
  }

  /** Scales from data to pixels. A single point (or a flat series) still gets a usable range. */
  function chartScales(points) {
    const ts = points.map((p) => p.t);
    let t0 = Math.min(...ts);
    let t1 = Math.max(...ts);
    if (t0 === t1) [t0, t1] = [t0 - 30_000, t1 + 30_000];
    const step = niceStep(Math.max(...points.map((p) => p.installed)), 4);
    const yMax = Math.max(step, Math.ceil(Math.max(...points.map((p) => p.installed)) / step) * step);
    const { width, height, left, right, top, bottom } = CHART;
    return {
      t0,
      t1,
      step,
      yMax,
      x: (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right),
      y: (n) => height - bottom - (n / yMax) * (height - top - bottom),
    };
  }

  function drawChart(svgEl, releaseId, rawPoints) {
    const points = [...rawPoints].sort((a, b) => a.t - b.t);
    svgEl.dataset.releaseId = releaseId ?? "";
    svgEl.dataset.points = String(points.length);
    if (points.length === 0) {
      svgEl.replaceChildren(
        s(
          "text",
          { x: CHART.width / 2, y: CHART.height / 2, "text-anchor": "middle", class: "chart-empty" },
          releaseId ? "no device has installed this release yet" : "no releases on the ledger yet",
        ),
      );
      return;
    }
    const sc = chartScales(points);
    const d = points.map((p, i) => `${i ? "L" : "M"}${sc.x(p.t).toFixed(1)},${sc.y(p.installed).toFixed(1)}`).join(" ");
    svgEl.replaceChildren(
      yAxis(sc),
      xAxis(sc),
      s("path", { d, class: "chart-line", "data-testid": "adoption-line" }),
      ...points.map((p) =>
        s(
          "circle",
          { cx: sc.x(p.t).toFixed(1), cy: sc.y(p.installed).toFixed(1), r: 3, class: "chart-point", "data-testid": "adoption-point" },
          s("title", {}, `${absoluteTime(p.t)}: ${p.installed} installed`),
        ),
      ),
    );
  }

  function yAxis(sc) {
    const { left, right, width, top, height, bottom } = CHART;
    const ticks = [];
    for (let n = 0; n <= sc.yMax; n += sc.step) {
      ticks.push(s("line", { x1: left, x2: width - right, y1: sc.y(n), y2: sc.y(n), class: n === 0 ? "chart-axis" : "chart-grid" }));
      ticks.push(s("text", { x: left - 6, y: sc.y(n) + 4, "text-anchor": "end", class: "chart-tick" }, n));
    }
    const labelY = top + (height - top - bottom) / 2;
    return s(
      "g",
      { "data-testid": "adoption-y-axis" },
      ticks,
      s("text", { x: 14, y: labelY, transform: `rotate(-90 14 ${labelY})`, "text-anchor": "middle", class: "chart-label" }, "devices installed"),
    );
  }

  function xAxis(sc) {
    const { left, right, width, top, height, bottom } = CHART;
    const ticks = [];
    for (let i = 0; i <= 3; i++) {
      const t = sc.t0 + ((sc.t1 - sc.t0) * i) / 3;
      ticks.push(s("line", { x1: sc.x(t), x2: sc.x(t), y1: height - bottom, y2: height - bottom + 4, class: "chart-axis" }));
      ticks.push(s("text", { x: sc.x(t), y: height - bottom + 16, "text-anchor": "middle", class: "chart-tick" }, formatTick(t, sc.t1 - sc.t0)));
    }
    return s(
      "g",
      { "data-testid": "adoption-x-axis" },
      s("line", { x1: left, x2: left, y1: top, y2: height - bottom, class: "chart-axis" }),
      ticks,
      s("text", { x: left + (width - left - right) / 2, y: height - 6, "text-anchor": "middle", class: "chart-label" }, "time"),
    );
  }

  // ---- rollouts and modules -------------------------------------------------------------------

  function loadRollouts() {
    return load("rollouts", "/v1/rollouts", (data) => {
      byId("rollouts").replaceChildren(...(data.rollouts.length ? data.rollouts.map(rolloutRow) : [h("li", { class: "empty" }, "no rollouts yet")]));
    });
  }

  /** One bar per rollout: installed, failed and pending as shares of the devices decided. */
  function rolloutRow(r) {
    const segment = (kind, n) => {
      const part = h("span", { class: `segment segment-${kind}`, title: `${n} ${kind}` });
      part.style.width = `${r.decided > 0 ? (100 * n) / r.decided : 0}%`;
      return part;
    };
    const number = (kind, n) => h("span", { class: "number" }, `${kind} `, h("strong", { testid: `rollout-${kind}` }, n));
    return h(
      "li",
      { testid: "rollout-row", data: { releaseId: r.releaseId } },
      h(
        "div",
        { class: "rollout-title" },
        h("span", { title: r.releaseId }, `${componentText(r.component, r.componentName)} ${r.version}`),
        ` · ${r.origin} · started `,
        h("span", { title: absoluteTime(r.startedAt) }, relativeTime(r.startedAt)),
      ),
      h(
        "div",
        { class: "bar", attrs: { role: "img", "aria-label": `${r.installed} installed, ${r.failed} failed, ${r.pending} pending of ${r.decided}` } },
        segment("installed", r.installed),
        segment("failed", r.failed),
        segment("pending", r.pending),
      ),
      h(
        "div",
        { class: "numbers" },
        number("installed", r.installed),
        number("failed", r.failed),
        number("blocked", r.blocked),
        number("pending", r.pending),
        number("notified", r.notified),
        number("decided", r.decided),
      ),
    );
  }

  function loadModules() {
    return load("modules", "/v1/modules", (data) => {
      const rows = data.modules.map((m) =>
        h(
          "tr",
          { testid: "module-row", data: { moduleId: m.id } },
          cells([
            hexCell(m.id),
            m.role,
            (m.networks || []).join(", "),
            m.devices,
            m.unreachableDevices,
            h("td", {}, badge(m.reachable ? "reachable" : "unreachable", m.reachable ? "up-to-date" : "unreachable")),
            timeCell(m.lastSeen),
          ]),
        ),
      );
      byId("module-rows").replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { class: "empty", attrs: { colspan: 7 } }, "no downstream modules"))]));
    });
  }

  // ---- refresh loop and wiring ----------------------------------------------------------------

  async function refreshAll() {
    await Promise.all([loadHealth(), loadSummary(), loadDevices(), loadDetail(), loadReleases().then(loadAdoption), loadRollouts(), loadModules()]);
    state.refreshes += 1;
    document.body.dataset.refreshes = String(state.refreshes);
    setText("updated-at", new Date().toLocaleTimeString());
  }

  /** The next refresh starts once this one ended, so that slow answers never pile up. */
  async function refreshForever() {
    try {
      await refreshAll();
    } finally {
      setTimeout(refreshForever, REFRESH_MS); // a bug in one redraw must not stop the page for good
    }
  }

  function wire() {
    byId("device-filters").addEventListener("submit", (e) => e.preventDefault());
    byId("filter-status").addEventListener("change", (e) => setFilter("status", e.target.value));
    byId("filter-network").addEventListener("change", (e) => setFilter("network", e.target.value));
    onTyping(byId("filter-hardware"), "hardware");
    onTyping(byId("filter-q"), "q");
    byId("page-prev").addEventListener("click", () => turnPage(-1));
    byId("page-next").addEventListener("click", () => turnPage(1));
    byId("detail-close").addEventListener("click", closeDetail);
    byId("adoption-release").addEventListener("change", (e) => {
      state.releaseId = e.target.value;
      loadAdoption();
    });
  }

  wire();
  refreshForever();
})();
