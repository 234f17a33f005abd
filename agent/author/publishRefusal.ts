import { createReadStream, promises as fs } from "node:fs";
import { isError, type BlockTag, type ErrorDescription, type TransactionReceipt } from "ethers";
import type { UpdateRegistry } from "../chain/contracts";
import { OtaError } from "../core/errors";
import { formatVersion } from "../core/version";
import { decodeRevert } from "../chain/revertReason";
import { queryLogs } from "../chain/queryLogs";
import { computeCid } from "../storage/cid";
import type { ContentKeyStore } from "./contentKeyStore";
import type { PreparedRelease } from "./publishRelease";

/**
 * The registry refused a publication that passed every check beforehand: its state changed in
 * between (another author's release of the same version came first, the provider was barred...).
 * Exit status 1: the operation failed, though the request was sound when it was made.
 */
export class PublishRefusedError extends OtaError {}

/** The release that holds the version this publication wanted. */
interface TakenBy {
  releaseId: string;
  provider: number;
  version: string;
  fileLink?: string; // from its ReleasePublished event, once mined
  author?: string; // the account that sent it
  tx?: string;
  block?: number;
}

/** What became of the content key and the artifact file saved for a release that does not exist. */
interface Cleanup {
  contentKey: { file: string; removed: boolean };
  artifact: { file: string; removed: boolean; why: string };
}

/** Whether `err`, thrown while sending or awaiting a publication, is the contract refusing it (not an outage). */
export function isContractRefusal(err: unknown): boolean {
  return isError(err, "CALL_EXCEPTION");
}

/**
 * Re-checks the registry after it refused `p` (a revert at the gas estimate, nothing sent, or a
 * mined transaction that reverted: `receipt`) and returns the error that says why, having removed
 * the content key and the artifact file saved for the release, which does not exist. It looks at
 * the state the refusal met: after the reverted transaction's block, or the pending state the
 * node estimated against. A key or artifact of a release on the ledger is never removed.
 */
export async function explainRefusedPublish(
  deps: { registry: UpdateRegistry; keys: ContentKeyStore },
  p: PreparedRelease,
  err: unknown,
  receipt?: TransactionReceipt,
): Promise<OtaError> {
  const { registry } = deps;
  const at: BlockTag = receipt ? receipt.blockNumber : "pending";
  const sent = receipt ? `your transaction ${receipt.hash} was mined in block ${receipt.blockNumber} and reverted` : "nothing was sent";
  const version = formatVersion(p.record.version);
  // The release itself on the ledger after all (another transaction carried the same signed
  // record): nothing to clean up, and nothing may be.
  if ((await registry.releaseStatus(p.releaseId, { blockTag: receipt ? "latest" : "pending" })) !== 0n) {
    return new PublishRefusedError(
      "RELEASE_EXISTS",
      `release ${p.releaseId} is on the ledger although this publication was refused (${sent}): another transaction carried the same record. Its content key and artifact ${p.artifactFile} are kept: submit it with \`ota-ledger release submit ${p.releaseId} --artifact ${p.artifactFile}\``,
      { details: { releaseId: p.releaseId, artifactFile: p.artifactFile } },
    );
  }
  const [name] = await registry.component(p.record.component, { blockTag: at });
  const reason = decodeRevert(err, [registry.interface]) ?? (await replay(registry, p, at));
  const taken = reason?.name === "UpdateRegistryVersionNotIncreasing" ? await holderOf(registry, p, at, receipt) : undefined;
  const cleanup = await discard(deps.keys, p, taken);
  const cleaned = describeCleanup(cleanup);
  const details: Record<string, unknown> = {
    component: name,
    version,
    releaseId: p.releaseId,
    published: false,
    tx: receipt ? { hash: receipt.hash, block: receipt.blockNumber, gasUsed: Number(receipt.gasUsed) } : null,
    cleanup,
  };
  if (reason?.name === "UpdateRegistryVersionNotIncreasing") {
    const latest = formatVersion(BigInt(reason.args[1] as bigint));
    if (taken || latest === version) {
      const holder = taken ? `release ${taken.releaseId} of provider ${taken.provider}` : "another release";
      const where =
        taken?.block !== undefined
          ? `published${taken.author ? ` by ${taken.author}` : ""} in block ${taken.block} (tx ${taken.tx})`
          : "in a transaction not yet mined";
      return new PublishRefusedError(
        "VERSION_TAKEN",
        `version ${version} of ${name} was taken first by ${holder}, ${where}; ${sent}, so release ${p.releaseId} does not exist. ${cleaned}`,
        {
          details: {
            ...details,
            takenBy: taken ?? null,
            hint: `if your image is not the one published as ${version}, publish it as a version above ${latest}; \`ota-ledger release list --component ${name}\` lists its releases`,
          },
        },
      );
    }
    return new PublishRefusedError(
      "VERSION_NOT_GREATER",
      `a higher version of ${name}, ${latest}, was published first, so ${version} can no longer be published (REQ-10d-i); ${sent}, so release ${p.releaseId} does not exist. ${cleaned}`,
      { details: { ...details, latest, hint: `publish a version above ${latest}` } },
    );
  }
  const because = reason ? REASONS[reason.name]?.(reason) : undefined;
  if (because) {
    return new PublishRefusedError(because.code, `${because.why}; ${sent}, so release ${p.releaseId} does not exist. ${cleaned}`, {
      details: { ...details, revert: reason!.name, hint: because.hint },
    });
  }
  if (reason) {
    return new PublishRefusedError(
      "PUBLISH_REFUSED",
      `the registry refused release ${p.releaseId} with ${reason.name}(${reason.args.join(", ")}); ${sent}. ${cleaned}`,
      { details: { ...details, revert: reason.name } },
    );
  }
  // Reverted, yet the registry would take it now: not a rule of the registry (out of gas?).
  return new PublishRefusedError(
    "PUBLISH_REVERTED",
    `${sent}, but the registry would accept release ${p.releaseId} in that state (the transaction may have run out of gas); it does not exist. ${cleaned}`,
    { details: { ...details, hint: "run `ota-ledger release publish` again" } },
  );
}

/** Refusals a change of state explains, with the code the checks before sending give them. */
const REASONS: Record<string, (r: ErrorDescription) => { code: string; why: string; hint?: string }> = {
  UpdateRegistryProviderBarred: (r) => ({
    code: "PROVIDER_BARRED",
    why: `provider ${r.args[0]} was barred before the release was published`,
    hint: `nothing can be published for it until an administrator lifts the bar (\`ota-ledger provider unbar ${r.args[0]}\`)`,
  }),
  UpdateRegistryPublisherNotAuthor: (r) => ({
    code: "NOT_AN_AUTHOR",
    why: `${r.args[0]} was no longer an author of provider ${r.args[1]} when the release was published`,
    hint: `ask an administrator to run \`ota-ledger provider author add ${r.args[0]} --provider ${r.args[1]}\``,
  }),
  UpdateRegistrySignerNotAuthorized: (r) => ({
    code: "SIGNER_NOT_REGISTERED",
    why: `${r.args[1]} was no longer a release-signing key of provider ${r.args[0]} when the release was published`,
    hint: `sign with a registered key (--signer-key-file), or ask an administrator to run \`ota-ledger provider signer add ${r.args[0]} ${r.args[1]}\``,
  }),
  UpdateRegistryDependencyNotSatisfied: (r) => ({
    code: "DEPENDENCY_UNSATISFIED",
    why: `dependency ${r.args[0]} was no longer satisfied (its witness release was revoked) when the release was published`,
    hint: "publish again: the tool looks for a satisfying release afresh",
  }),
  UpdateRegistryDependencyProviderBarred: (r) => ({
    code: "DEPENDENCY_UNSATISFIED",
    why: `dependency ${r.args[0]}'s provider ${r.args[2]} was barred before the release was published`,
  }),
};

/** The publication replayed as a call against the state at `at`: the custom error it meets, or null if it would pass. */
async function replay(registry: UpdateRegistry, p: PreparedRelease, at: BlockTag): Promise<ErrorDescription | null> {
  try {
    await registry.publishRelease.staticCall(p.record, p.signer, p.signature, p.witnesses, { blockTag: at });
    return null;
  } catch (err) {
    if (!isContractRefusal(err)) throw err;
    return decodeRevert(err, [registry.interface]);
  }
}

/** How far back to look for the release holding the version: versions strictly increase, so it is near the end. */
const MAX_RELEASES_SCANNED = 64;

/** The release of `p`'s component at exactly `p`'s version in the state at `at`, with who sent it once it is mined. */
async function holderOf(registry: UpdateRegistry, p: PreparedRelease, at: BlockTag, receipt?: TransactionReceipt): Promise<TakenBy | undefined> {
  const [, , , count] = await registry.component(p.record.component, { blockTag: at });
  for (let i = Number(count) - 1; i >= Math.max(0, Number(count) - MAX_RELEASES_SCANNED); i--) {
    const id = await registry.releaseAt(p.record.component, i, { blockTag: at });
    const state = await registry.releaseState(id, { blockTag: at });
    if (state.version < p.record.version) return undefined;
    if (state.version !== p.record.version) continue;
    const taken: TakenBy = { releaseId: id, provider: Number(state.provider), version: formatVersion(state.version) };
    // Its event, between the preparation (the version was free then) and the refusal, or the head
    // as the node sees it now (not ethers' cached block number, which may be older than the event).
    const [log] = await queryLogs(registry, registry.filters.ReleasePublished(id), Math.max(0, p.preparedAtBlock - 1), receipt?.blockNumber).catch(() => []);
    if (log) {
      const parsed = registry.interface.parseLog(log);
      const sentBy = await registry.runner!.provider!.getTransaction(log.transactionHash);
      Object.assign(taken, {
        fileLink: parsed?.args.release.fileLink as string | undefined,
        author: sentBy?.from,
        tx: log.transactionHash,
        block: log.blockNumber,
      });
    }
    return taken;
  }
  return undefined;
}

/**
 * Removes what was saved for `p`, a release that does not exist: its content key, and its
 * artifact file if the file still holds its artifact (by CID) and that is not the artifact of the
 * release that holds the version (another run writing to the same folder).
 */
async function discard(keys: ContentKeyStore, p: PreparedRelease, taken: TakenBy | undefined): Promise<Cleanup> {
  const contentKey = { file: keys.fileOf(p.releaseId), removed: await keys.remove(p.releaseId) };
  const artifact = { file: p.artifactFile, removed: false, why: "" };
  let cid: string;
  try {
    cid = await computeCid(createReadStream(p.artifactFile));
  } catch {
    return { contentKey, artifact: { ...artifact, why: "not there" } };
  }
  if (taken?.fileLink !== undefined && cid === taken.fileLink) {
    artifact.why = `it holds the artifact of release ${taken.releaseId}, which is on the ledger`;
  } else if (cid !== p.record.fileLink) {
    artifact.why = "another run has written it since: it no longer holds this release's artifact";
  } else {
    await fs.rm(p.artifactFile, { force: true });
    artifact.removed = true;
    artifact.why = "removed";
  }
  return { contentKey, artifact };
}

function describeCleanup(c: Cleanup): string {
  const key = c.contentKey.removed ? `Removed its content key (${c.contentKey.file})` : `Its content key was not in ${c.contentKey.file}`;
  if (c.artifact.removed) return `${key} and its artifact (${c.artifact.file}).`;
  if (c.artifact.why === "not there") return `${key}; its artifact ${c.artifact.file} was not there.`;
  return `${key}; kept the artifact file ${c.artifact.file}: ${c.artifact.why}.`;
}
