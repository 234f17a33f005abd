import type { Command } from "commander";
import { ZeroHash } from "ethers";
import type { CliContext } from "../context";
import { componentId } from "../../core/release";
import { formatVersion } from "../../core/version";
import { RELEASE_STATUS, ledgerName } from "../../core/ledgerCodes";
import { parseId, parseName } from "../parse";
import { confirm, describeTx, findEvent } from "../transactions";

/** Components: the named pieces of software a provider releases versions of. */
export function register(program: Command, ctx: CliContext): void {
  const component = program.command("component").description("software components (e.g. acme.bootloader)");

  component
    .command("register <name>")
    .description("register a component owned by a provider; prints its id (keccak256 of the name)")
    .requiredOption("--provider <id>", "the provider that owns it")
    .action(async (nameText: string, options: { provider: string }) => {
      const name = parseName(nameText, "component name");
      const providerId = parseId(options.provider, "--provider");
      const { registry } = await ctx.connect();
      const { receipt, tx } = await confirm(registry.registerComponent(name, providerId));
      const id = String(findEvent(receipt, registry, "ComponentRegistered").args.component);
      ctx.output(
        { component: { id, name, provider: providerId }, tx },
        `registered component "${name}" of provider ${providerId}\n  id ${id}\n${describeTx(tx)}`,
      );
    });

  component
    .command("show <name>")
    .description("a component's owner and latest release")
    .action(async (nameText: string) => {
      const name = parseName(nameText, "component name");
      const id = componentId(name);
      const { registry } = await ctx.connectReadOnly();
      const [, owner, , releaseCount] = await registry.component(id);
      const [ownerName] = (await registry.getFunction("provider")(owner)) as [string, boolean];
      const latestId = await registry.latestRelease(id, true);
      const latest = latestId === ZeroHash ? null : await describeRelease(ctx, latestId);
      const result = {
        component: { id, name, owner: { id: Number(owner), name: ownerName }, releaseCount: Number(releaseCount), latest },
      };
      const latestLine = latest ? `${latest.version} (${latest.status}), release ${latest.id}` : "none";
      ctx.output(
        result,
        [
          `component "${name}"`,
          `  id        ${id}`,
          `  owner     provider ${owner} "${ownerName}"`,
          `  releases  ${releaseCount}`,
          `  latest    ${latestLine}`,
        ].join("\n"),
      );
    });
}

async function describeRelease(ctx: CliContext, releaseId: string) {
  const { registry } = await ctx.connectReadOnly();
  const state = await registry.releaseState(releaseId);
  return {
    id: releaseId,
    version: formatVersion(state.version),
    status: ledgerName(RELEASE_STATUS, state.status),
    publishedAt: new Date(Number(state.publishedAt) * 1000).toISOString(),
  };
}
