import type { Command } from "commander";
import type { CliContext } from "../context";
import { InputError } from "../../core/errors";
import { parseBytes32 } from "../parse";
import { formatTable } from "../table";
import { trackerGet, trackerPostSigned, trackerTargetOf } from "../trackerClient";
import { adminTarget } from "../trackerAdmin";
import { checkGroupName, parseTagQuery } from "../../tracker/deviceTags";

/**
 * `update`: administrators' update requests (issue 19, item 11; PROC-2) to a group
 * (commands/group.ts), a tag query or named devices, with a deadline, through the tracker's API:
 * `update request`, `update status`. Requests are signed by the configured account, which needs
 * the registry's ADMINISTRATOR_ROLE; reads take the tracker's API token.
 */
export function register(program: Command, ctx: CliContext): void {
  const update = program.command("update").description("administrators' update requests (PROC-2) to a group, a query or devices, with a deadline (issue 19)");
  update
    .command("request")
    .description("ask the tracker to install a release on a group, a tag query or named devices")
    .requiredOption("--release <id>", "the release id")
    .option("--group <name>", "a group saved on the tracker (devices that join it later join the request)")
    .option("--query <q>", 'a tag query, e.g. "site=plant-1,ring=canary"')
    .option("--devices <ids>", "device ids, comma-separated")
    .option(
      "--deadline <time>",
      "after it, devices that defer to their update window install anyway: an ISO time (2030-01-01T02:00:00Z) or +<n>h / +<n>d / +<n>m from now",
    )
    .option("--override-pins", "with --deadline: after it, devices pinned to another version install too")
    .option("--tracker <url>", "the tracker's URL (overrides tracker.url / OTA_TRACKER_URL)")
    .action(async (o: { release: string; group?: string; query?: string; devices?: string; deadline?: string; overridePins?: boolean; tracker?: string }) => {
      const releaseId = parseBytes32(o.release, "--release");
      const targets = (["group", "query", "devices"] as const).filter((k) => o[k] !== undefined);
      if (targets.length !== 1) throw new InputError("INVALID_INPUT", "give exactly one of --group, --query or --devices");
      const body: Record<string, unknown> = { releaseId };
      if (o.group !== undefined) body.group = checkGroupName(o.group);
      if (o.query !== undefined) parseTagQuery((body.query = o.query));
      if (o.devices !== undefined) body.devices = o.devices.split(",").map((d, i) => parseBytes32(d.trim(), `--devices entry ${i + 1}`));
      if (o.deadline !== undefined) body.deadline = parseDeadline(o.deadline, Date.now());
      if (o.overridePins) {
        if (body.deadline === undefined) throw new InputError("INVALID_INPUT", "--override-pins takes effect at the deadline: give --deadline too");
        body.overridePins = true;
      }
      const { target, signer } = await adminTarget(ctx, o.tracker);
      const r = await trackerPostSigned<{
        requestId: string;
        releaseId: string;
        decided: number;
        refused: { deviceId: string; code: string }[];
        deadline: number | null;
      }>(signer, target, "/v1/update-requests", body);
      const human = [
        `update request ${r.requestId}: release ${r.releaseId} decided for ${r.decided} device(s)${
          r.deadline === null ? "" : `, deadline ${new Date(r.deadline).toISOString()}`
        }`,
        ...r.refused.map((x) => `  left out ${x.deviceId}: ${x.code}`),
        `progress: ota-ledger update status ${r.requestId}`,
      ];
      ctx.output({ tracker: target.url, ...r }, human.join("\n"));
    });
  update
    .command("status [requestId]")
    .description("an update request's progress, device by device; without an id, every request with its counts")
    .option("--tracker <url>", "the tracker's URL (overrides tracker.url / OTA_TRACKER_URL)")
    .action(async (requestId: string | undefined, o: { tracker?: string }) => {
      const { url, token } = trackerTargetOf(await ctx.config(), o.tracker);
      if (requestId !== undefined) {
        if (!/^0x[0-9a-fA-F]{32}$/.test(requestId)) throw new InputError("INVALID_INPUT", "a request id is 0x followed by 32 hex digits");
        const p = await trackerGet<Progress>(url, `/v1/update-requests/${requestId.toLowerCase()}`, token);
        const human = [
          describe(p),
          ...(p.devices?.length
            ? [
                "",
                formatTable(
                  ["device", "state", "code", "past deadline"],
                  p.devices.map((d) => [d.deviceId, d.state, d.code ?? "-", d.pastDeadline ? "yes" : "-"]),
                ),
              ]
            : []),
        ];
        ctx.output({ tracker: url, ...p }, human.join("\n"));
        return;
      }
      const r = await trackerGet<{ total: number; requests: Progress[] }>(url, "/v1/update-requests", token);
      ctx.output({ tracker: url, ...r }, r.requests.length === 0 ? "no update requests" : r.requests.map(describe).join("\n"));
    });
}

interface Progress {
  requestId: string;
  releaseId: string;
  releaseName: string | null;
  target: { devices?: number; group?: string; query?: string; filter?: unknown };
  deadline: number | null;
  counts: Record<"decided" | "notified" | "installed" | "failed" | "blocked" | "refused" | "pending" | "pastDeadline", number>;
  devices?: { deviceId: string; state: string; code: string | null; pastDeadline: boolean }[];
}

function describe(p: Progress): string {
  const t =
    p.target.group !== undefined
      ? `group ${p.target.group}`
      : p.target.query !== undefined
        ? `query ${p.target.query}`
        : p.target.devices !== undefined
          ? `${p.target.devices} device(s)`
          : "a filter";
  const c = p.counts;
  return (
    `${p.requestId} ${p.releaseName ?? p.releaseId} to ${t}${p.deadline === null ? "" : `, deadline ${new Date(p.deadline).toISOString()}`}: ` +
    `${c.decided} decided, ${c.notified} notified, ${c.installed} installed, ${c.failed} failed, ${c.blocked} blocked, ${c.refused} refused, ${c.pending} pending, ${c.pastDeadline} past deadline`
  );
}

/** --deadline: an ISO 8601 time, or +<n>m / +<n>h / +<n>d from now. */
export function parseDeadline(text: string, now: number): number {
  const rel = /^\+(\d{1,6})([mhd])$/.exec(text.trim());
  if (rel) return now + Number(rel[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as "m" | "h" | "d"];
  const at = /^\d{4}-\d{2}-\d{2}T/.test(text) ? Date.parse(text) : NaN;
  if (!Number.isFinite(at))
    throw new InputError("INVALID_INPUT", `--deadline "${text}": give an ISO time such as 2030-01-01T02:00:00Z, or +<n>h, +<n>d, +<n>m`);
  return at;
}
