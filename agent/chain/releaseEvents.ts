import type { Log, TypedDataDomain } from "ethers";
import type { UpdateRegistry } from "./contracts";
import type { ReleaseRecord } from "../core/release";
import { OtaError, VerificationError } from "../core/errors";
import { computeReleaseId } from "../crypto/releaseSignature";
import { queryLogs } from "./queryLogs";
import type { StreamLog } from "./eventStream";

/**
 * A release as the ledger holds it: every Table II-1 block-data field, from one event. Made by
 * decodeReleasePublished, which checks that `id` is the record's EIP-712 digest: what the author
 * signed, so the signature is checked over the id.
 */
export interface LedgerRelease {
  id: string;
  providerName: string;
  releasedAt: number; // unix seconds, the block's time
  record: ReleaseRecord;
  signer: string;
  signature: string;
  blockNumber: number;
  blockHash: string;
  transactionHash: string;
  logIndex: number;
}

/** The event data does not hash to the release id it claims: the RPC answer is not to be trusted. */
export class ReleaseEventMismatchError extends VerificationError {}

/**
 * Rebuilds a release from its ReleasePublished log and checks that it comes from the registry and
 * that its data hashes to the release id. That catches corruption and mixed-up logs, not a node
 * that fabricates a whole event: for that, {verifyLedgerRelease} checks the record against the
 * registry's storage and the author's signature against the provider's keys.
 */
export function decodeReleasePublished(registry: UpdateRegistry, domain: TypedDataDomain, log: Log): LedgerRelease {
  const registryAddress = String(registry.target).toLowerCase();
  if (log.address.toLowerCase() !== registryAddress) {
    throw new ReleaseEventMismatchError(
      "NOT_FROM_REGISTRY",
      `log ${log.transactionHash}:${log.index} was emitted by ${log.address}, not the registry ${registry.target}`,
    );
  }
  const parsed = registry.interface.parseLog({ topics: [...log.topics], data: log.data });
  if (!parsed || parsed.name !== "ReleasePublished") {
    throw new OtaError("NOT_RELEASE_EVENT", `log ${log.transactionHash}:${log.index} is not a ReleasePublished event`);
  }
  const r = parsed.args.release;
  const record: ReleaseRecord = {
    provider: Number(r.provider),
    component: r.component,
    version: r.version,
    fileHash: r.fileHash,
    fileLink: r.fileLink,
    fileName: r.fileName,
    fileSize: r.fileSize,
    merkleRoot: r.merkleRoot,
    hardware: r.hardware.map(Number),
    dependencies: r.dependencies.map((d: { component: string; minVersion: bigint; maxVersion: bigint }) => ({
      component: d.component,
      minVersion: d.minVersion,
      maxVersion: d.maxVersion,
    })),
  };
  const id: string = parsed.args.releaseId;
  const recomputed = computeReleaseId(domain, record);
  if (recomputed !== id) {
    throw new ReleaseEventMismatchError("RELEASE_EVENT_MISMATCH", `event data of release ${id} hashes to ${recomputed}`, {
      details: { transactionHash: log.transactionHash, logIndex: log.index },
    });
  }
  return {
    id,
    providerName: parsed.args.providerName,
    releasedAt: Number(parsed.args.releasedAt),
    record,
    signer: parsed.args.signer,
    signature: parsed.args.signature,
    blockNumber: log.blockNumber,
    blockHash: log.blockHash,
    transactionHash: log.transactionHash,
    logIndex: log.index,
  };
}

/** {decodeReleasePublished} on a log the event stream handed over (agent/chain/eventStream). */
export function decodeStreamedRelease(registry: UpdateRegistry, domain: TypedDataDomain, log: StreamLog): LedgerRelease {
  return decodeReleasePublished(registry, domain, { ...log, index: log.logIndex, topics: [...log.topics] } as unknown as Log);
}

/** Every release published between two blocks, in ledger order. */
export async function fetchReleases(
  registry: UpdateRegistry,
  domain: TypedDataDomain,
  fromBlock: number,
  toBlock: number | "latest" = "latest",
): Promise<LedgerRelease[]> {
  const logs = await queryLogs(registry, registry.filters.ReleasePublished(), fromBlock, toBlock === "latest" ? undefined : toBlock);
  return logs.map((log) => decodeReleasePublished(registry, domain, log));
}

/** The release with this id, from its ReleasePublished log, or undefined if none was emitted. */
export async function fetchRelease(registry: UpdateRegistry, domain: TypedDataDomain, releaseId: string, fromBlock = 0): Promise<LedgerRelease | undefined> {
  const logs = await queryLogs(registry, registry.filters.ReleasePublished(releaseId), fromBlock);
  return logs.length === 0 ? undefined : decodeReleasePublished(registry, domain, logs[0]);
}
