import type { Command } from "commander";
import type { CliContext } from "../../context";
import { InputError } from "../../../core/errors";
import { parseBytes32 } from "../../parse";
import { trackerPostSigned } from "../../trackerClient";
import { adminTarget } from "../../trackerAdmin";
import { checkTagKey, checkTagValue, MAX_TAGS_PER_DEVICE } from "../../../tracker/deviceTags";

/**
 * The tracker's tags on a device (issue 19, item 11), added to the `device` command by
 * commands/device.ts: `device tag set|rm`, key=value labels that groups (commands/group.ts) select
 * by. Written through the tracker's API, signed by the configured account (ADMINISTRATOR_ROLE).
 */
export function registerTagCommands(device: Command, ctx: CliContext): void {
  const tag = device.command("tag").description("the tracker's tags on a device (issue 19): set or remove key=value labels groups select by");
  tag
    .command("set <deviceId> <tags...>")
    .description("set tags (key=value ...) on a device; at most 32 a device")
    .option("--tracker <url>", "the tracker's URL (overrides tracker.url / OTA_TRACKER_URL)")
    .action(async (deviceId: string, tags: string[], o: { tracker?: string }) => {
      const set: Record<string, string> = {};
      for (const t of tags) {
        const at = t.indexOf("=");
        if (at <= 0) throw new InputError("INVALID_INPUT", `"${t}" is not key=value`);
        const key = checkTagKey(t.slice(0, at));
        set[key] = checkTagValue(t.slice(at + 1), key);
      }
      if (Object.keys(set).length > MAX_TAGS_PER_DEVICE) throw new InputError("TAG_LIMIT", `a device has at most ${MAX_TAGS_PER_DEVICE} tags`);
      await changeTags(ctx, deviceId, { set }, o.tracker);
    });
  tag
    .command("rm <deviceId> <keys...>")
    .description("remove tags from a device (key, or key=value: the key is removed)")
    .option("--tracker <url>", "the tracker's URL (overrides tracker.url / OTA_TRACKER_URL)")
    .action(async (deviceId: string, keys: string[], o: { tracker?: string }) => {
      const remove = [...new Set(keys.map((k) => checkTagKey(k.split("=")[0])))];
      await changeTags(ctx, deviceId, { remove }, o.tracker);
    });
}

async function changeTags(ctx: CliContext, deviceText: string, change: { set?: Record<string, string>; remove?: string[] }, option: string | undefined) {
  const deviceId = parseBytes32(deviceText, "device id").toLowerCase();
  const { target, signer } = await adminTarget(ctx, option);
  const r = await trackerPostSigned<{ deviceId: string; tags: Record<string, string>; joinedRequests: number }>(
    signer,
    target,
    `/v1/fleet/devices/${deviceId}/tags`,
    change,
  );
  const shown = Object.entries(r.tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  ctx.output(
    { tracker: target.url, ...r },
    `device ${r.deviceId}: ${shown || "(no tags)"}${r.joinedRequests > 0 ? `; joined ${r.joinedRequests} update request(s)` : ""}`,
  );
}
