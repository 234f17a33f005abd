import type { Command } from "commander";
import { isHexString } from "ethers";
import type { CliContext } from "../context";
import { ReleaseBundles__factory, type ReleaseBundles } from "../../chain/contracts";
import { readDeployment } from "../../chain/deployment";
import { fetchRelease, type LedgerRelease } from "../../chain/releaseEvents";
import { queryLogs } from "../../chain/queryLogs";
import { InputError } from "../../core/errors";
import { componentIdOf } from "../../core/release";
import { encodeVersion, formatVersion } from "../../core/version";
import { parseAddress, parseName } from "../parse";
import { confirm, describeTx, findEvent } from "../transactions";

/**
 * Release bundles (docs/adr/0019): releases of several components a device installs together or
 * not at all, created on ReleaseBundles beside the registry by an author of their provider.
 */
export function register(program: Command, ctx: CliContext): void {
  const bundle = program.command("bundle").description("release bundles: releases of several components installed together or not at all");

  bundle
    .command("create <members...>")
    .description("create a bundle of releases (a release id, or component@version, per member; one per component); prints its id")
    .requiredOption("--name <name>", "the bundle's name (1 to 64 bytes), e.g. sensor-kit")
    .requiredOption("--version <version>", "the bundle's version (semver), above the latest bundle of that name")
    .option("--bundles <address>", "the ReleaseBundles contract (default: the deployment file's releaseBundles)")
    .action(async (memberTexts: string[], options: { name: string; version: string; bundles?: string }) => {
      const name = parseName(options.name, "--name");
      const version = parseBundleVersion(options.version);
      const chain = await ctx.connect();
      const bundles = (await bundlesContract(ctx, options.bundles)).connect(chain.signer);
      const members: LedgerRelease[] = [];
      for (const text of memberTexts) members.push(await resolveMember(chain, text));
      const components = new Set(members.map((m) => m.record.component.toLowerCase()));
      if (components.size !== members.length)
        throw new InputError("BUNDLE_MEMBERS_INVALID", "a bundle has one release per component: two members name the same component");
      members.sort((a, b) => (BigInt(a.record.component) < BigInt(b.record.component) ? -1 : 1)); // the contract's order
      const { receipt, tx } = await confirm(
        bundles.createBundle(
          name,
          version,
          members.map((m) => m.record),
        ),
      );
      const id = String(findEvent(receipt, bundles, "BundleCreated").args.bundleId);
      ctx.output(
        {
          bundle: {
            id,
            name,
            version: formatVersion(version),
            members: members.map((m) => ({ releaseId: m.id, component: m.record.component, version: formatVersion(m.record.version) })),
          },
          tx,
        },
        [
          `created bundle "${name}" ${formatVersion(version)}`,
          `  id ${id}`,
          ...members.map((m) => `  member ${m.id} (${m.record.component} ${formatVersion(m.record.version)})`),
          describeTx(tx),
        ].join("\n"),
      );
    });

  bundle
    .command("show <bundleId>")
    .description("a bundle's name, version, provider, creation time, members and the hardware every member supports")
    .option("--bundles <address>", "the ReleaseBundles contract (default: the deployment file's releaseBundles)")
    .action(async (idText: string, options: { bundles?: string }) => {
      if (!isHexString(idText, 32)) throw new InputError("BUNDLE_ID_INVALID", `bundle id ${idText} is not 0x + 64 hex digits`);
      const chain = await ctx.connectReadOnly();
      const bundles = await bundlesContract(ctx, options.bundles);
      const stored = await bundles.bundle(idText).catch((cause: unknown) => {
        throw new InputError("BUNDLE_UNKNOWN", `no bundle ${idText} on ReleaseBundles ${String(bundles.target)}`, { cause });
      });
      const [event] = await queryLogs(bundles, bundles.filters.BundleCreated(idText), chain.fromBlock);
      const args = event && "args" in event ? (event.args as unknown as { name: string; components: string[]; hardware: bigint[]; by: string }) : undefined;
      const members = stored.releaseIds.map((releaseId, i) => ({ releaseId, component: args?.components[i] ?? null }));
      const result = {
        bundle: {
          id: idText.toLowerCase(),
          name: args?.name ?? null,
          version: formatVersion(stored.version),
          provider: Number(stored.provider),
          createdAt: new Date(Number(stored.createdAt) * 1000).toISOString(),
          createdBy: args?.by ?? null,
          hardware: args?.hardware.map(Number) ?? null,
          members,
        },
      };
      ctx.output(
        result,
        [
          `bundle "${result.bundle.name ?? "?"}" ${result.bundle.version}`,
          `  id        ${result.bundle.id}`,
          `  provider  ${result.bundle.provider}`,
          `  created   ${result.bundle.createdAt}${args ? ` by ${args.by}` : ""}`,
          `  hardware  ${result.bundle.hardware?.join(", ") ?? "?"}`,
          ...members.map((m) => `  member    ${m.releaseId}${m.component ? ` (component ${m.component})` : ""}`),
        ].join("\n"),
      );
    });
}

function parseBundleVersion(text: string): bigint {
  try {
    return encodeVersion(text);
  } catch (cause) {
    throw new InputError("VERSION_INVALID", `--version ${text} is not a semantic version (e.g. 1.2.0)`, { cause });
  }
}

/** The ReleaseBundles contract: --bundles, else the deployment file's. */
async function bundlesContract(ctx: CliContext, address?: string): Promise<ReleaseBundles> {
  const chain = await ctx.connectReadOnly();
  if (address) return ReleaseBundles__factory.connect(parseAddress(address, "--bundles"), chain.provider);
  const config = await ctx.config();
  const deployment = await readDeployment(config.sources.deploymentFile).catch(() => undefined);
  if (!deployment?.releaseBundles)
    throw new InputError(
      "BUNDLES_NOT_DEPLOYED",
      `no ReleaseBundles in ${config.sources.deploymentFile}: deploy the registries again (it is deployed beside them since issue 19) or give --bundles <address>`,
    );
  return ReleaseBundles__factory.connect(deployment.releaseBundles, chain.provider);
}

/** A member given as a release id, or as component@version (the component's name or id). */
async function resolveMember(chain: Awaited<ReturnType<CliContext["connectReadOnly"]>>, text: string): Promise<LedgerRelease> {
  let id = text;
  if (!isHexString(text, 32)) {
    const at = text.lastIndexOf("@");
    if (at <= 0) throw new InputError("BUNDLE_MEMBER_INVALID", `member ${text} is neither a release id (0x + 64 hex digits) nor component@version`);
    const component = componentIdOf(text.slice(0, at));
    let version: bigint;
    try {
      version = encodeVersion(text.slice(at + 1));
    } catch (cause) {
      throw new InputError("BUNDLE_MEMBER_INVALID", `member ${text}: ${text.slice(at + 1)} is not a semantic version`, { cause });
    }
    id = await chain.registry.findSatisfyingRelease(component, version, version + 1n);
    if (BigInt(id) === 0n) throw new InputError("BUNDLE_MEMBER_UNKNOWN", `member ${text}: no unrevoked release of that component at that version`);
  }
  const release = await fetchRelease(chain.registry, chain.domain, id, chain.fromBlock);
  if (!release) throw new InputError("BUNDLE_MEMBER_UNKNOWN", `member ${text}: no release ${id} on the registry`);
  return release;
}
