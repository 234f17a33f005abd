import type { CliContext } from "./context";
import { trackerTargetOf, type TrackerTarget } from "./trackerClient";
import type { Wallet } from "ethers";

/**
 * The tracker an administrator's write goes to (--tracker, else tracker.url) and the configured
 * account that signs it (it needs the registry's ADMINISTRATOR_ROLE): `device tag`, `group` and
 * `update` (issue 19).
 */
export async function adminTarget(ctx: CliContext, option: string | undefined): Promise<{ target: TrackerTarget; signer: Wallet }> {
  const target = trackerTargetOf(await ctx.config(), option);
  const { signer } = await ctx.connect();
  return { target, signer };
}
