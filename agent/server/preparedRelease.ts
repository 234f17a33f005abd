import { artifactSize, MIN_SERVED_CHUNK_SIZE } from "../crypto/artifactCipher";
import { computeReleaseId, recoverReleaseSignerOf } from "../crypto/releaseSignature";
import { decodeReleaseClaim, type ReleaseClaim } from "../core/releaseClaim";
import { InputError } from "../core/errors";
import { PREPARED_DEFAULTS } from "../core/serviceDefaults";
import type { ContentStore } from "../storage/contentStore";
import type { LedgerGate } from "./ledgerGate";
import { Refusal } from "./refusals";
import type { ServerDatabase } from "./serverDatabase";

export type PreparedLimits = typeof PREPARED_DEFAULTS;

/**
 * Checks a release its author shows before publishing it (the x-ota-release header), before the
 * server stores anything, in this order, the first failure being the answer:
 *  1. the request's signer (`account`) is an author of the record's provider (NOT_AUTHORIZED);
 *  2. the record hashes to the release id in the path (RELEASE_CLAIM_MISMATCH): what is screened
 *     and served later is exactly what the ledger will hold under that id;
 *  3. the signature is the signer's over the record: recovered for a key, asked of the contract
 *     for an ERC-1271 signer (RELEASE_SIGNATURE_INVALID);
 *  4. the signer is a registered signing key of the provider (SIGNER_NOT_REGISTERED);
 *  5. the provider is not barred (PROVIDER_BARRED).
 * These are the registry's own checks at publication, so a claim that passes would be published
 * as it stands; what the server cannot know yet (version order, dependencies) only decides
 * whether it ever is, and an unpublished artifact expires.
 */
export async function checkReleaseClaim(gate: LedgerGate, account: string, releaseId: string, header: string): Promise<ReleaseClaim> {
  let claim: ReleaseClaim;
  try {
    claim = decodeReleaseClaim(header);
  } catch (err) {
    if (err instanceof InputError) throw new Refusal("BAD_REQUEST", err.message);
    throw err;
  }
  const { record } = claim;
  if ((await gate.authorProvider(account)) !== record.provider) {
    throw new Refusal("NOT_AUTHORIZED", `${account} is not an author of provider ${record.provider}, whose release ${releaseId} this is`);
  }
  const id = computeReleaseId(gate.domain, record).toLowerCase();
  if (id !== releaseId.toLowerCase()) {
    throw new Refusal("RELEASE_CLAIM_MISMATCH", `the record in x-ota-release hashes to release ${id}, not ${releaseId}`, { recordId: id });
  }
  // The signer, its registration and the provider's bar in one read of the update-check lens, as a device asks.
  const facts = await gate.releaseFacts({ id, record, signer: claim.signer, signature: claim.signature });
  let signed = facts.signerVouches;
  if (!facts.signerIsContract) {
    try {
      signed = recoverReleaseSignerOf(id, claim.signature).toLowerCase() === claim.signer.toLowerCase();
    } catch {
      signed = false; // malformed
    }
  }
  if (!signed)
    throw new Refusal(
      "RELEASE_SIGNATURE_INVALID",
      facts.signerIsContract
        ? `the contract signer ${claim.signer} does not vouch for the signature of release ${id}`
        : `the release signature is not ${claim.signer}'s over the record of release ${id}`,
    );
  if (!facts.signerRegistered) {
    throw new Refusal("SIGNER_NOT_REGISTERED", `${claim.signer} is not a registered signing key of provider ${record.provider}`, {
      signer: claim.signer,
    });
  }
  if (facts.providerBarred) throw new Refusal("PROVIDER_BARRED", `provider ${record.provider} is barred on the ledger`);
  return claim;
}

/**
 * The firmware server's prepared artifacts: the per-provider limits (with the submissions still
 * streaming in counted at their largest size) and the removal of those that expired unpublished.
 */
export class PreparedArtifacts {
  private readonly streaming = new Map<number, { count: number; bytes: bigint }>();

  constructor(
    private readonly deps: {
      gate: LedgerGate;
      db: ServerDatabase;
      store: ContentStore;
      now: () => number;
      /** Blocks a submission in progress wrote: never deleted under it. */
      inFlight: (cid: string) => boolean;
      log?: (line: string) => void;
    },
    readonly limits: PreparedLimits = PREPARED_DEFAULTS,
  ) {}

  /**
   * Reserves room for a prepared submission of `claim`'s provider, or refuses
   * PREPARED_QUOTA_EXCEEDED; call the returned function when the submission ends (accepted or not).
   */
  async reserve(claim: ReleaseClaim): Promise<() => void> {
    await this.sweep(); // what expired makes room first
    const provider = claim.record.provider;
    const bytes = artifactSize(claim.record.fileSize, MIN_SERVED_CHUNK_SIZE);
    const held = this.deps.db.preparedUsage(provider);
    const pending = this.streaming.get(provider) ?? { count: 0, bytes: 0n };
    const count = held.count + pending.count + 1;
    const total = held.bytes + pending.bytes + bytes;
    if (count > this.limits.maxPerProvider || total > BigInt(this.limits.maxBytesPerProvider)) {
      throw new Refusal(
        "PREPARED_QUOTA_EXCEEDED",
        `provider ${provider} already holds ${held.count + pending.count} unpublished artifact(s) of ${held.bytes + pending.bytes} bytes here; the limit is ${this.limits.maxPerProvider} and ${this.limits.maxBytesPerProvider} bytes`,
        {
          count: held.count + pending.count,
          bytes: (held.bytes + pending.bytes).toString(),
          maxPerProvider: this.limits.maxPerProvider,
          maxBytesPerProvider: this.limits.maxBytesPerProvider,
          ttlMs: this.limits.ttlMs,
        },
      );
    }
    this.streaming.set(provider, { count: pending.count + 1, bytes: pending.bytes + bytes });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const p = this.streaming.get(provider)!;
      if (p.count <= 1) this.streaming.delete(provider);
      else this.streaming.set(provider, { count: p.count - 1, bytes: p.bytes - bytes });
    };
  }

  /** When an artifact accepted now expires if its release is not published. */
  expiresAt(): number {
    return this.deps.now() + this.limits.ttlMs;
  }

  /**
   * Removes every prepared artifact past its expiry whose release is still not on the ledger (with
   * the keys granted for it); one that was published meanwhile (the follower missed it) is served
   * from now on instead. Returns the release ids removed. A ledger outage postpones the sweep.
   */
  async sweep(): Promise<string[]> {
    const { gate, db, store, now } = this.deps;
    const removed: string[] = [];
    for (const a of db.artifacts("prepared")) {
      if (a.expiresAt === null || a.expiresAt > now()) continue;
      let status;
      try {
        status = await gate.releaseStatus(a.releaseId);
      } catch (err) {
        if (err instanceof Refusal && err.code === "LEDGER_UNAVAILABLE") return removed;
        throw err;
      }
      if (status !== "none") {
        db.promoteArtifact(a.releaseId);
        continue;
      }
      const gone = db.removePrepared(a.releaseId);
      if (!gone) continue;
      removed.push(a.releaseId);
      try {
        if (!db.cidStillServed(gone.cid, a.releaseId)) await store.unpin(gone.cid);
        await store.deleteBlocks(gone.orphanBlocks.filter((c) => !this.deps.inFlight(c)));
      } catch (err) {
        this.deps.log?.(`removing the expired prepared artifact of release ${a.releaseId}: ${(err as Error).message}`);
      }
    }
    return removed;
  }
}
