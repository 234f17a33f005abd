import type { Command } from "commander";
import { ledgerName, RELEASE_STATUS } from "../../core/ledgerCodes";
import { isHexString } from "ethers";
import type { CliContext } from "../context";
import { ReleaseBundles__factory, type ReleaseBundles } from "../../chain/contracts";
import { decodeReleasePublished, fetchRelease, type LedgerRelease } from "../../chain/releaseEvents";
import { queryLogs } from "../../chain/queryLogs";
import { decodeRevert } from "../../chain/revertReason";
import { InputError } from "../../core/errors";
import { componentIdOf } from "../../core/release";
import { encodeVersion, formatRange, formatVersion, inRange } from "../../core/version";
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
      // What ReleaseBundles.createBundle refuses in its input is checked here first (exit 2, nothing
      // sent); the rest (the sender an author, the provider not barred, one provider for all) is the
      // contract's revert, explained (revertHints).
      const name = parseName(options.name, "--name");
      const version = parseBundleVersion(options.version);
      checkMemberCount(memberTexts.length);
      const chain = await ctx.connect();
      const bundles = (await bundlesContract(ctx, options.bundles)).connect(chain.signer);
      const members: LedgerRelease[] = [];
      for (const text of memberTexts) members.push(await resolveMember(chain, text));
      await checkMemberSet(chain, memberTexts, members);
      members.sort((a, b) => (BigInt(a.record.component) < BigInt(b.record.component) ? -1 : 1)); // the contract's order
      const labels = new Map<LedgerRelease, string>(); // "acme.bootloader 2.0.0", for messages
      for (const m of members) labels.set(m, `${await componentName(chain, m.record.component)} ${formatVersion(m.record.version)}`);
      const hardware = commonHardware(members);
      if (hardware.length === 0)
        throw new InputError(
          "BUNDLE_NO_COMMON_HARDWARE",
          `no hardware class is supported by every member (${members.map((m) => `${labels.get(m)}: ${m.record.hardware.join(", ")}`).join("; ")}): bundle releases built for a common hardware class (ota-ledger hardware list names the ids)`,
          { details: { hardware: members.map((m) => ({ releaseId: m.id, hardware: m.record.hardware })) } },
        );
      checkDependenciesWithin(members, labels);
      await checkVersionAbove(bundles, members[0].record.provider, name, version);
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
            provider: members[0].record.provider,
            hardware,
            members: members.map((m) => ({ releaseId: m.id, component: m.record.component, version: formatVersion(m.record.version) })),
          },
          tx,
        },
        [
          `created bundle "${name}" ${formatVersion(version)}`,
          `  id ${id}`,
          `  hardware ${hardware.join(", ")}`,
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
      const stored = await bundles.bundle(idText).catch((err: unknown) => {
        // Not wrapped: a revert in the cause would be reported in its place (reportError decodes the whole chain).
        if (decodeRevert(err, [bundles.interface])?.name !== "ReleaseBundlesUnknownBundle") throw err;
        throw new InputError("BUNDLE_UNKNOWN", `no bundle ${idText} on ReleaseBundles ${String(bundles.target)}: check the id (bundle create prints it)`);
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
  if (!config.bundles)
    throw new InputError(
      "BUNDLES_NOT_DEPLOYED",
      `no ReleaseBundles beside this registry in ${config.sources.deploymentFile}: deploy the registries again (it is deployed beside them since issue 19) or give --bundles <address>`,
    );
  return ReleaseBundles__factory.connect(config.bundles, chain.provider);
}

/** ReleaseBundles' MIN_MEMBERS and MAX_MEMBERS. */
const MIN_MEMBERS = 2;
const MAX_MEMBERS = 8;

function checkMemberCount(count: number): void {
  if (count < MIN_MEMBERS || count > MAX_MEMBERS)
    throw new InputError(
      "BUNDLE_MEMBER_COUNT",
      `${count} member${count === 1 ? "" : "s"} given: a bundle has ${MIN_MEMBERS} to ${MAX_MEMBERS} members, one release per component (${count < MIN_MEMBERS ? "a single release is installed on its own, not bundled" : `split the set into bundles of at most ${MAX_MEMBERS}`})`,
      { details: { count, min: MIN_MEMBERS, max: MAX_MEMBERS } },
    );
}

type Chain = Awaited<ReturnType<CliContext["connectReadOnly"]>>;

/**
 * A member given as a release id, or as component@version (the component's name or id): a
 * published release that is not revoked (CAP-11.3-c), else exit 2 saying which and what to give.
 */
async function resolveMember(chain: Chain, text: string): Promise<LedgerRelease> {
  let id: string;
  if (isHexString(text, 32)) {
    id = text.toLowerCase();
    const status = ledgerName(RELEASE_STATUS, await chain.registry.releaseStatus(id));
    if (status === "none")
      throw new InputError(
        "BUNDLE_MEMBER_UNKNOWN",
        `member ${text}: no release has this id on the registry: give a published release's id or component@version (ota-ledger release list --component <name> lists a component's releases)`,
        { details: { member: text } },
      );
    if (status === "revoked") throw revoked(text, id);
  } else {
    const at = text.lastIndexOf("@");
    if (at <= 0)
      throw new InputError(
        "BUNDLE_MEMBER_INVALID",
        `member ${text} is neither a release id (0x + 64 hex digits) nor component@version (e.g. acme.bootloader@2.0.0)`,
        { details: { member: text } },
      );
    const componentText = text.slice(0, at);
    const component = componentIdOf(componentText);
    let version: bigint;
    try {
      version = encodeVersion(text.slice(at + 1));
    } catch (cause) {
      throw new InputError("BUNDLE_MEMBER_INVALID", `member ${text}: ${text.slice(at + 1)} is not a semantic version (e.g. ${componentText}@2.0.0)`, {
        cause,
        details: { member: text },
      });
    }
    const noRelease = (why: string) =>
      new InputError(
        "BUNDLE_MEMBER_UNKNOWN",
        `member ${text}: ${why}: give a published version (ota-ledger release list --component ${componentText} lists them)`,
        { details: { member: text, component } },
      );
    id = (
      await chain.registry.findSatisfyingRelease(component, version, version + 1n).catch((err: unknown) => {
        if (decodeRevert(err, [chain.registry.interface])?.name !== "UpdateRegistryUnknownComponent") throw err;
        throw noRelease(`no component ${componentText} is registered`);
      })
    ).toLowerCase();
    if (BigInt(id) === 0n) {
      // None unrevoked: a revoked one is named as such, else there is none.
      const logs = await queryLogs(chain.registry, chain.registry.filters.ReleasePublished(undefined, component), chain.fromBlock);
      const published = logs.map((log) => decodeReleasePublished(chain.registry, chain.domain, log)).find((r) => r.record.version === version);
      if (published) throw revoked(text, published.id);
      throw noRelease(`the ledger has no release ${formatVersion(version)} of ${componentText}`);
    }
  }
  const release = await fetchRelease(chain.registry, chain.domain, id, chain.fromBlock);
  if (!release)
    throw new InputError("BUNDLE_MEMBER_UNKNOWN", `member ${text}: no ReleasePublished event of release ${id} on the registry`, { details: { member: text } });
  return release;
}

function revoked(text: string, id: string): InputError {
  return new InputError(
    "BUNDLE_MEMBER_REVOKED",
    `member ${text}: release ${id} is revoked (CAP-11.3-c) and is never installed, alone or in a bundle: bundle a newer release of its component instead`,
    { details: { member: text, releaseId: id } },
  );
}

/** One release per component (two members of one component, or one release named twice, are refused). */
async function checkMemberSet(chain: Chain, texts: string[], members: LedgerRelease[]): Promise<void> {
  for (let i = 0; i < members.length; i++) {
    for (let j = 0; j < i; j++) {
      if (members[i].record.component.toLowerCase() !== members[j].record.component.toLowerCase()) continue;
      const component = `${await componentName(chain, members[i].record.component)} (${members[i].record.component})`;
      throw new InputError(
        "BUNDLE_MEMBERS_INVALID",
        members[i].id === members[j].id
          ? `members ${texts[j]} and ${texts[i]} are the same release (${members[i].id}): name each member once`
          : `members ${texts[j]} and ${texts[i]} are both releases of ${component}: a bundle has one release per component, keep one`,
        { details: { members: [texts[j], texts[i]], component: members[i].record.component } },
      );
    }
  }
}

/** The hardware classes every member supports, ascending (the contract's intersection). */
function commonHardware(members: LedgerRelease[]): number[] {
  return members
    .slice(1)
    .reduce((common, m) => common.filter((h) => m.record.hardware.includes(h)), [...members[0].record.hardware])
    .sort((a, b) => a - b);
}

/** APP-II-2 over the set: a member's dependency on another member's component holds for that member's version. */
function checkDependenciesWithin(members: LedgerRelease[], labels: Map<LedgerRelease, string>): void {
  for (const m of members) {
    for (const d of m.record.dependencies) {
      const other = members.find((o) => o.record.component.toLowerCase() === d.component.toLowerCase());
      if (!other || inRange(other.record.version, { min: d.minVersion, max: d.maxVersion })) continue;
      const range = formatRange({ min: d.minVersion, max: d.maxVersion });
      throw new InputError(
        "BUNDLE_DEPENDENCY_NOT_MET",
        `${labels.get(m)} depends on ${range} of the bundle's ${labels.get(other)} (APP-II-2): bundle a release of that component in ${range}`,
        { details: { member: m.id, dependency: d.component, range, memberReleaseId: other.id, memberVersion: formatVersion(other.record.version) } },
      );
    }
  }
}

/** REQ-10d-i for bundles: the version is above the provider's latest bundle of that name. */
async function checkVersionAbove(bundles: ReleaseBundles, provider: number, name: string, version: bigint): Promise<void> {
  const latest = await bundles.latestBundleVersion(provider, name);
  if (version > latest) return;
  const latestId = await bundles.bundleId(provider, name, latest);
  throw new InputError(
    "BUNDLE_VERSION_NOT_INCREASING",
    `--version ${formatVersion(version)} is not above ${formatVersion(latest)}, provider ${provider}'s latest bundle "${name}" (REQ-10d-i): give a higher version (ota-ledger bundle show ${latestId} shows it)`,
    { details: { name, provider, latest: formatVersion(latest), version: formatVersion(version), latestBundleId: latestId } },
  );
}

/** A component's registered name, for messages (its id when the registry has none). */
async function componentName(chain: Chain, component: string): Promise<string> {
  try {
    const [name] = await chain.registry.component(component);
    return name || component;
  } catch {
    return component;
  }
}
