import type { Command } from "commander";
import type { CliContext } from "../context";
import { formatTable } from "../table";
import { trackerGet, trackerPostSigned, trackerSendSigned, trackerTargetOf } from "../trackerClient";
import { adminTarget } from "../trackerAdmin";
import { checkGroupName, parseTagQuery } from "../../tracker/deviceTags";

/**
 * `group`: device groups as saved tag queries on the tracker (issue 19, item 11), evaluated
 * whenever they are used: `group create|list|rm`. Writes are signed by the configured account,
 * which needs the registry's ADMINISTRATOR_ROLE; reads take the tracker's API token. Devices get
 * their tags with `device tag` (commands/device/tags.ts).
 */
export function register(program: Command, ctx: CliContext): void {
  const group = program.command("group").description("device groups on the tracker: named tag queries, evaluated whenever they are used (issue 19)");
  group
    .command("create <name> <query>")
    .description('save a group: a tag query, terms joined by commas (k=v, k!=v, k, !k, network=, region=, hardware=<id>), e.g. "site=plant-1,ring=canary"')
    .option("--tracker <url>", "the tracker's URL (overrides tracker.url / OTA_TRACKER_URL)")
    .action(async (name: string, query: string, o: { tracker?: string }) => {
      checkGroupName(name);
      parseTagQuery(query);
      const { target, signer } = await adminTarget(ctx, o.tracker);
      const r = await trackerPostSigned<{ name: string; query: string; devices: number }>(signer, target, "/v1/groups", { name, query });
      ctx.output({ tracker: target.url, ...r }, `group ${r.name} = ${r.query}: ${r.devices} device(s) now`);
    });
  group
    .command("list")
    .description("the groups, their queries and how many devices each selects now")
    .option("--tracker <url>", "the tracker's URL (overrides tracker.url / OTA_TRACKER_URL)")
    .action(async (o: { tracker?: string }) => {
      const { url, token } = trackerTargetOf(await ctx.config(), o.tracker);
      const r = await trackerGet<{ groups: { name: string; query: string; devices: number; createdBy: string; createdAt: number }[] }>(
        url,
        "/v1/groups",
        token,
      );
      ctx.output(
        { tracker: url, groups: r.groups },
        r.groups.length === 0
          ? "no groups"
          : formatTable(
              ["group", "query", "devices"],
              r.groups.map((g) => [g.name, g.query, String(g.devices)]),
              new Set([2]),
            ),
      );
    });
  group
    .command("rm <name>")
    .description("remove a group (requests that targeted it keep the devices they decided)")
    .option("--tracker <url>", "the tracker's URL (overrides tracker.url / OTA_TRACKER_URL)")
    .action(async (name: string, o: { tracker?: string }) => {
      checkGroupName(name);
      const { target, signer } = await adminTarget(ctx, o.tracker);
      await trackerSendSigned(signer, target, "DELETE", `/v1/groups/${encodeURIComponent(name)}`);
      ctx.output({ tracker: target.url, name, removed: true }, `group ${name} removed`);
    });
}
