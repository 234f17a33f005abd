import type { Command } from "commander";
import type { UpdateRegistry } from "../../../chain/contracts";
import type { CliContext } from "../../context";
import { InputError, OtaError } from "../../../core/errors";
import { componentId } from "../../../core/release";
import { formatRange, formatVersion } from "../../../core/version";
import { RELEASE_STATUS, ledgerName } from "../../../core/ledgerCodes";
import { fetchRelease } from "../../../chain/releaseEvents";
import { listHardwareClasses } from "../../../chain/hardwareClasses";
import { queryLogs } from "../../../chain/queryLogs";
import { parseBytes32, parseName, parseReason } from "../../parse";
import { releaseComponent } from "../../policyLookup";
import { formatTable } from "../../table";
import { confirm, describeTx } from "../../transactions";

/**
 * Reading a release's ledger record and status, and the auditors' actions on it (CAP-11.3-c,
 * REQ-10b-ii): `release show`, `release list`, `release revoke`, `release flag`, added to the
 * `release` command by commands/release.ts (after the author's commands).
 */
export function registerStatusCommands(release: Command, ctx: CliContext): void {
  release
    .command("show <releaseId>")
    .description("a release's ledger record (every Table II-1 field), its status and why it was revoked or flagged")
    .action(async (idText: string) => {
      const id = parseBytes32(idText, "release id");
      const conn = await ctx.connectReadOnly();
      await releaseComponent(conn.registry, id); // refuses an unknown id with a clear error
      const ledger = await fetchRelease(conn.registry, conn.domain, id, conn.fromBlock);
      if (!ledger) {
        throw new OtaError(
          "RELEASE_EVENT_MISSING",
          `the registry knows release ${id} but no ReleasePublished event was found from block ${conn.fromBlock}: check deployedAtBlock in the deployment file, or the node's log history`,
          { details: { releaseId: id, fromBlock: conn.fromBlock } },
        );
      }
      const state = await conn.registry.releaseState(id);
      const status = ledgerName(RELEASE_STATUS, state.status);
      const [componentName] = await conn.registry.component(ledger.record.component);
      const hardwareNames = new Map((await listHardwareClasses(conn.registry)).map((h) => [h.id, h.name]));
      const dependencies = await Promise.all(
        ledger.record.dependencies.map(async (d) => ({
          component: d.component,
          name: (await conn.registry.component(d.component))[0],
          range: formatRange({ min: d.minVersion, max: d.maxVersion }),
        })),
      );
      const notes = await statusNotes(conn.registry, id, conn.fromBlock);
      const r = ledger.record;
      const result = {
        release: {
          id,
          status,
          provider: { id: r.provider, name: ledger.providerName },
          component: { id: r.component, name: componentName },
          releasedAt: new Date(ledger.releasedAt * 1000).toISOString(),
          version: formatVersion(r.version),
          fileHash: r.fileHash,
          fileLink: r.fileLink,
          fileName: r.fileName,
          fileSize: Number(r.fileSize),
          hardware: r.hardware.map((h) => ({ id: h, name: hardwareNames.get(h) ?? null })),
          dependencies,
          merkleRoot: r.merkleRoot,
          signer: ledger.signer,
          transactionHash: ledger.transactionHash,
          blockNumber: ledger.blockNumber,
          ...notes,
        },
      };
      const lines = [
        `release ${id}`,
        `  status        ${status}`,
        ...(notes.revoked ? [`  revoked       by ${notes.revoked.by}: ${notes.revoked.reason}`] : []),
        ...(notes.vulnerable ? [`  vulnerable    flagged by ${notes.vulnerable.by}: ${notes.vulnerable.advisory}`] : []),
        `  provider      ${r.provider} "${ledger.providerName}"`,
        `  component     "${componentName}" (${r.component})`,
        `  released at   ${result.release.releasedAt}`,
        `  version       ${result.release.version}`,
        `  file hash     ${r.fileHash}`,
        `  file link     ${r.fileLink}`,
        `  file name     ${r.fileName}`,
        `  file size     ${r.fileSize} bytes`,
        `  hardware      ${result.release.hardware.map((h) => h.name ?? `#${h.id}`).join(", ")}`,
        `  depends on    ${dependencies.length === 0 ? "nothing" : dependencies.map((d) => `"${d.name}" ${d.range}`).join("; ")}`,
        `  merkle root   ${r.merkleRoot}`,
        `  signed by     ${ledger.signer}`,
        `  published in  block ${ledger.blockNumber}, transaction ${ledger.transactionHash}`,
      ];
      ctx.output(result, lines.join("\n"));
    });

  release
    .command("list")
    .description("a component's releases, oldest first, with their status")
    .requiredOption("--component <name>", "the component")
    .action(async (o: { component: string }) => {
      const name = parseName(o.component, "--component");
      const id = componentId(name);
      const { registry } = await ctx.connectReadOnly();
      const count = await releaseCountOf(registry, id, name);
      const releases = [];
      for (let i = 0; i < count; i++) {
        const releaseId = await registry.releaseAt(id, i);
        const state = await registry.releaseState(releaseId);
        releases.push({
          id: releaseId,
          version: formatVersion(state.version),
          status: ledgerName(RELEASE_STATUS, state.status),
          publishedAt: new Date(Number(state.publishedAt) * 1000).toISOString(),
        });
      }
      const human =
        releases.length === 0
          ? `component "${name}" has no releases yet`
          : formatTable(
              ["version", "status", "published at", "release id"],
              releases.map((r) => [r.version, r.status, r.publishedAt, r.id]),
            );
      ctx.output({ component: { id, name }, releases }, human);
    });

  release
    .command("revoke <releaseId>")
    .description("revoke a malicious release for good: no device installs it, servers stop serving it (CAP-11.3-c); an auditor or administrator")
    .requiredOption("--reason <text>", "why, recorded on the ledger")
    .action(async (idText: string, o: { reason: string }) => {
      const id = parseBytes32(idText, "release id");
      const reason = parseReason(o.reason);
      const { registry, signer } = await ctx.connect();
      const status = await statusBeforeAction(registry, id, signer.address, "revoke");
      if (status === "revoked") {
        throw new InputError("RELEASE_ALREADY_REVOKED", `release ${id} is already revoked: nothing to do`, { details: { releaseId: id } });
      }
      const { tx } = await confirm(registry.revokeRelease(id, reason));
      ctx.output({ releaseId: id, status: "revoked", reason, tx }, `release ${id} is revoked: ${reason}\n${describeTx(tx)}`);
    });

  release
    .command("flag <releaseId>")
    .description("flag a release vulnerable: devices running it are told to move on, none installs it anew (REQ-10b-ii); an auditor or administrator")
    .requiredOption("--advisory <text>", "the advisory (an identifier or a link), recorded on the ledger")
    .action(async (idText: string, o: { advisory: string }) => {
      const id = parseBytes32(idText, "release id");
      const advisory = parseReason(o.advisory, "--advisory");
      const { registry, signer } = await ctx.connect();
      const status = await statusBeforeAction(registry, id, signer.address, "flag");
      if (status !== "active") {
        throw new InputError(
          status === "revoked" ? "RELEASE_ALREADY_REVOKED" : "RELEASE_ALREADY_VULNERABLE",
          `release ${id} is already ${status}: ${status === "revoked" ? "a revoked release cannot be flagged" : "nothing to do"}`,
          { details: { releaseId: id, status } },
        );
      }
      const { tx } = await confirm(registry.flagVulnerable(id, advisory));
      ctx.output({ releaseId: id, status: "vulnerable", advisory, tx }, `release ${id} is flagged vulnerable: ${advisory}\n${describeTx(tx)}`);
    });
}

/** The release's status, after refusing an unknown release and a sender that is neither auditor nor administrator. */
async function statusBeforeAction(registry: UpdateRegistry, id: string, account: string, verb: string) {
  await releaseComponent(registry, id);
  const [administrator, auditor] = await Promise.all([
    registry.hasRole(await registry.ADMINISTRATOR_ROLE(), account),
    registry.hasRole(await registry.AUDITOR_ROLE(), account),
  ]);
  if (!administrator && !auditor) {
    throw new OtaError(
      "NOT_AUDITOR",
      `the account ${account} may not ${verb} releases: it holds neither AUDITOR_ROLE nor ADMINISTRATOR_ROLE (an administrator grants them: ota-ledger role grant auditor <address>)`,
      { details: { account } },
    );
  }
  return ledgerName(RELEASE_STATUS, await registry.releaseStatus(id));
}

/** The component's release count, or a clear error when no such component is registered. */
async function releaseCountOf(registry: UpdateRegistry, id: string, name: string): Promise<number> {
  try {
    return Number((await registry.component(id)).releaseCount);
  } catch {
    throw new InputError("UNKNOWN_COMPONENT", `no component "${name}" is registered: check the name (ota-ledger component show <name>)`, {
      details: { component: id },
    });
  }
}

/** Who revoked or flagged the release, and why, from the registry's events. */
async function statusNotes(registry: UpdateRegistry, id: string, fromBlock: number) {
  const [revokedLogs, flaggedLogs] = await Promise.all([
    queryLogs(registry, registry.filters.ReleaseRevoked(id), fromBlock),
    queryLogs(registry, registry.filters.ReleaseFlaggedVulnerable(id), fromBlock),
  ]);
  const args = (log: (typeof revokedLogs)[number]) => registry.interface.parseLog({ topics: [...log.topics], data: log.data })!.args;
  const revoked = revokedLogs.length > 0 ? args(revokedLogs[0]) : undefined;
  const flagged = flaggedLogs.length > 0 ? args(flaggedLogs[0]) : undefined;
  return {
    ...(revoked ? { revoked: { by: String(revoked.by), reason: String(revoked.reason) } } : {}),
    ...(flagged ? { vulnerable: { by: String(flagged.by), advisory: String(flagged.advisory) } } : {}),
  };
}
