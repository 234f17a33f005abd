import type { Command } from "commander";
import type { CliContext } from "../../context";
import { InputError } from "../../../core/errors";
import { DEVICE_STATUSES, type DeviceStatus, type DeviceView, type FleetViews } from "../../../tracker/fleetViews";
import { parseId, parseLabel } from "../../parse";
import { describeMs, formatTable, shortHex } from "../../table";
import { trackerGet, trackerTargetOf } from "../../trackerClient";

/**
 * Reading the fleet's status from a status tracker (X.1368 clause 8.2, ADR 0004), added to the
 * `fleet` command by commands/fleet.ts: `fleet status`, `fleet list`, `fleet outdated`,
 * `fleet vulnerable`.
 */
export function registerStatusCommands(fleet: Command, ctx: CliContext): void {
  fleet
    .command("status")
    .description("the fleet's status from the tracker: how many devices are up to date, outdated, vulnerable, ... per network")
    .option("--tracker <url>", "the tracker's URL (overrides tracker.url / OTA_TRACKER_URL)")
    .action(async (o: { tracker?: string }) => showStatus(ctx, o.tracker));

  const listOptions = (cmd: Command) =>
    cmd
      .option("--network <label>", "only devices of this network")
      .option("--region <label>", "only devices of this region")
      .option("--hardware <id>", "only devices of this hardware class id")
      .option("--limit <n>", "devices per page (1 to 1000)", "50")
      .option("--offset <n>", "skip this many devices first", "0")
      .option("--all", "every matching device, fetched page by page")
      .option("--tracker <url>", "the tracker's URL (overrides tracker.url / OTA_TRACKER_URL)");
  listOptions(
    fleet
      .command("list")
      .description("devices known to the tracker, optionally of one status")
      .option("--status <status>", `one of ${DEVICE_STATUSES.join(", ")}`),
  ).action(async (o: ListOptions) => listDevices(ctx, o));
  listOptions(fleet.command("outdated").description("devices with an update to install (fleet list --status outdated)")).action(async (o: ListOptions) =>
    listDevices(ctx, { ...o, status: "outdated" }),
  );
  listOptions(fleet.command("vulnerable").description("devices running a release flagged vulnerable or revoked (fleet list --status vulnerable)")).action(
    async (o: ListOptions) => listDevices(ctx, { ...o, status: "vulnerable" }),
  );
}

type Summary = ReturnType<FleetViews["summary"]>;
interface Health {
  status: string;
  module: { id: string; role: string; parent: string | null };
  ledger: { block: number | null; ageSeconds?: number | null; halted?: { code: string; message: string; fix: string } };
}

/** The tracker's URL (--tracker, else tracker.url) and the configured bearer token. */
async function trackerTarget(ctx: CliContext, option: string | undefined): Promise<{ url: string; token?: string }> {
  return trackerTargetOf(await ctx.config(), option);
}

async function showStatus(ctx: CliContext, option: string | undefined): Promise<void> {
  const { url, token } = await trackerTarget(ctx, option);
  const summary = await trackerGet<Summary>(url, "/v1/fleet/summary", token);
  const health = await trackerGet<Health>(url, "/v1/health", token, { alsoOk: [503] }); // 503: its ledger mirror is halted, said below
  const c = summary.counts;
  const counts: [string, number][] = [
    ["up to date", c.upToDate],
    ["outdated", c.outdated],
    ["vulnerable", c.vulnerable],
    ["failed", c.failed],
    ["blocked", c.blocked],
    ["refused", c.refused],
    ["safe mode", c.safeMode],
    ["unreachable", c.unreachable],
    ["suspended", c.suspended],
  ];
  const human = [
    `tracker ${url}: module ${health.module.id} (${health.module.role}), ledger block ${health.ledger.block ?? "(none yet)"}${
      typeof health.ledger.ageSeconds === "number" ? ` (its newest block ${describeMs(health.ledger.ageSeconds * 1000)} old)` : ""
    }`,
    ...(health.ledger.halted ? [`warning: ${health.ledger.halted.code}: the fleet view no longer follows the ledger: ${health.ledger.halted.fix}`] : []),
    `${summary.total} device(s); unreachable means no report for ${describeMs(summary.livenessMs)}; a device may be in several lists`,
    "",
    formatTable(
      ["status", "devices"],
      counts.map(([k, n]) => [k, String(n)]),
      new Set([1]),
    ),
  ];
  if (summary.byNetwork.length > 0) {
    human.push(
      "",
      formatTable(
        ["network", "total", "up to date", "outdated", "vulnerable", "failed", "blocked", "refused", "safe mode", "unreachable"],
        summary.byNetwork.map((n) =>
          [n.network, n.total, n.upToDate, n.outdated, n.vulnerable, n.failed, n.blocked, n.refused, n.safeMode, n.unreachable].map(String),
        ),
        new Set([1, 2, 3, 4, 5, 6, 7, 8, 9]),
      ),
    );
  }
  if (c.blocked > 0) {
    // Issue 15: a delivery blocked by a server, a mirror, the network or a clock; not a failure of the release.
    human.push(
      "",
      `${c.blocked} device(s) are blocked from a delivery (a server, a mirror, the network, their clock; retried, not counted as failures): \`ota-ledger fleet list --status blocked\``,
    );
  }
  if (c.safeMode > 0) {
    // CAP-11.1-b: these devices take no automatic update; they wait for a person.
    human.push(
      "",
      `${c.safeMode} device(s) in safe mode need a person to install a release by hand (\`ota-ledger device install\`): \`ota-ledger fleet list --status safe-mode\``,
    );
  }
  ctx.output({ tracker: url, module: health.module, ledger: health.ledger, summary }, human.join("\n"));
}

interface ListOptions {
  status?: string;
  network?: string;
  region?: string;
  hardware?: string;
  limit: string;
  offset: string;
  all?: boolean;
  tracker?: string;
}

async function listDevices(ctx: CliContext, o: ListOptions): Promise<void> {
  if (o.status !== undefined && !(DEVICE_STATUSES as readonly string[]).includes(o.status)) {
    throw new InputError("INVALID_INPUT", `--status: "${o.status}" is not a status: give one of ${DEVICE_STATUSES.join(", ")}`);
  }
  const limit = parseId(o.limit, "--limit", 1000);
  const offset = o.offset.trim() === "0" ? 0 : parseId(o.offset, "--offset", 999_999_999);
  const query = new URLSearchParams();
  if (o.status) query.set("status", o.status);
  if (o.network !== undefined) query.set("network", parseLabel(o.network, "--network"));
  if (o.region !== undefined) query.set("region", parseLabel(o.region, "--region"));
  if (o.hardware !== undefined) query.set("hardware", String(parseId(o.hardware, "--hardware", 0xffff)));
  const { url, token } = await trackerTarget(ctx, o.tracker);

  const devices: DeviceView[] = [];
  let total: number;
  for (let at = offset; ;) {
    query.set("limit", String(limit));
    query.set("offset", String(at));
    const page = await trackerGet<{ total: number; devices: DeviceView[] }>(url, `/v1/fleet/devices?${query}`, token);
    total = page.total;
    devices.push(...page.devices);
    at += page.devices.length;
    if (!o.all || page.devices.length === 0 || at >= total) break;
  }

  const status = (o.status ?? "any") as DeviceStatus | "any";
  // Names, not hashes (issue 19): the registered names the tracker sends beside the ids (the ids
  // stay in --json); the shortened id or the class number while the tracker has no name.
  const rows = devices.map((d) => [
    d.id,
    d.hardwareName ?? String(d.hardwareClass),
    d.network,
    d.region,
    d.statuses.join(",") || "-",
    d.installed.map((i) => `${i.componentName ?? shortHex(i.component)} ${i.version}`).join(", ") || (d.safeMode ? "(safe mode: unknown)" : "(no report)"),
    d.lastSeen === null ? "never" : new Date(d.lastSeen).toISOString().replace(/\.\d+Z$/, "Z"),
  ]);
  const human = [
    devices.length === 0
      ? `no ${status === "any" ? "" : `${status} `}devices${offset > 0 ? ` from offset ${offset}` : ""} (${total} match)`
      : formatTable(["device", "hardware", "network", "region", "statuses", "installed", "last seen"], rows),
  ];
  if (devices.length > 0) {
    const shownAll = offset === 0 && devices.length >= total;
    human.push(
      shownAll
        ? `${total} ${status === "any" ? "" : `${status} `}device(s)`
        : `devices ${offset + 1} to ${offset + devices.length} of ${total}${o.all ? "" : `: --all for every one, or --offset ${offset + devices.length} for the next page`}`,
    );
  }
  ctx.output({ tracker: url, status: o.status ?? null, total, offset, devices }, human.join("\n"));
}
