import type { Provider, TypedDataDomain } from "ethers";
import type { UpdateRegistry } from "./contracts";
import { VerificationError } from "../core/errors";
import { recoverReleaseSignerOf } from "../crypto/releaseSignature";
import type { LedgerRelease } from "./releaseEvents";
import { inlineHardwareOf } from "./provenFacts";
import { RELEASE_STATUS, type ReleaseStatusName } from "../core/ledgerCodes";
import type { ProvenView } from "./ledgerProofs";
import { readUpdateFacts, type UpdateFacts } from "./ledgerLens";

/** A release that does not check out against the ledger or its author's keys. */
export class ReleaseVerificationError extends VerificationError {}

export interface VerifyOptions {
  /**
   * Signing keys of the provider pinned outside the chain (e.g. in the device's trust store). When
   * given, the signer must be one of them as well as a registered signer: a node that lies about
   * state cannot then make a forged record pass.
   */
  pinnedSigners?: string[];
  /**
   * The release's stored record and its signer's registration, proven against a block's state root
   * (agent/chain/ledgerProofs.ts): the registry's eth_call answers must agree with them, or the
   * endpoint lied (LEDGER_PROOF_MISMATCH, thrown as it is: not a verdict on the release).
   */
  proven?: ProvenView;
}

/**
 * Checks a release rebuilt from its event against what the registry holds and against its
 * author's signature (REQ-10d-ii, CAP-11.4-a), on the ledger's facts of one read (ledgerLens):
 *  - the registry knows the id, and its stored component, provider (and its name), version, time
 *    and hardware match;
 *  - the signer is the key the registry recorded for the release and was valid for it: one of the
 *    provider's keys at its publication, not retired as compromised by then (a key rotated out
 *    since still counts, docs/adr/0016), and, if given, a pinned one;
 *  - the signature is valid: recovered for a key, vouched for by the contract for an ERC-1271 signer
 *    that is still a key of the provider (a retired contract key: the registry's check at publication).
 * Returns the release's status on success.
 */
export function checkReleaseFacts(release: LedgerRelease, facts: UpdateFacts, options: VerifyOptions = {}): ReleaseStatusName {
  const fail = (code: string, message: string): never => {
    throw new ReleaseVerificationError(code, `release ${release.id}: ${message}`, { details: { releaseId: release.id } });
  };
  const { proven } = options;
  const proof = proven?.release(release.id);
  const state = facts.stored;
  proven?.agree(
    `whether release ${release.id} is on the ledger`,
    state ? "published" : "unknown",
    proof && (proof.status === "none" ? "unknown" : "published"),
  );
  if (!state) return fail("RELEASE_NOT_ON_LEDGER", "the registry does not know this release id");
  if (proven && proof) {
    // What the registry stores for the release (one slot), as proven; the rest is committed to by the id.
    proven.agree(`the version of release ${release.id}`, state.version, proof.version);
    proven.agree(`the release time of release ${release.id}`, state.publishedAt, proof.publishedAt);
    proven.agree(`the status of release ${release.id}`, state.status, proof.status);
    const inline = state.hardware.slice(0, 6).join();
    proven.agree(`the hardware of release ${release.id}`, `${state.hardware.length}:${inline}`, `${proof.hardwareCount}:${inlineHardwareOf(proof).join()}`);
  }
  if (
    state.component !== release.record.component ||
    state.provider !== release.record.provider ||
    facts.providerName !== release.providerName ||
    state.version !== release.record.version ||
    state.publishedAt !== release.releasedAt ||
    state.hardware.join() !== release.record.hardware.join()
  ) {
    fail("RELEASE_STATE_MISMATCH", "the event disagrees with the registry's stored state");
  }
  // The signer's validity for this release is its key's term at the release's publication (docs/adr/0016:
  // a key rotated out since still counts; one retired as compromised does not, from its compromise time).
  proven?.agree(
    `whether ${release.signer} was a valid signing key of provider ${release.record.provider} for release ${release.id}`,
    facts.signerRegistered,
    proven.facts.signerRegistered,
  );
  proven?.agree(`whether ${release.signer} may sign for provider ${release.record.provider} now`, facts.signerActive, proven.facts.signerActive);
  if (!facts.signerRegistered) {
    if (
      proven
        ? proven.agree(`whether ${release.signer} was compromised for release ${release.id}`, facts.signerCompromised, proven.facts.signerCompromised)
        : facts.signerCompromised
    )
      fail("SIGNER_COMPROMISED", `${release.signer} was retired as compromised since a time at or before the release's publication`);
    fail("SIGNER_NOT_REGISTERED", `${release.signer} was not a signing key of provider ${release.record.provider} when the release was published`);
  }
  if (options.pinnedSigners && !options.pinnedSigners.some((s) => s.toLowerCase() === release.signer.toLowerCase())) {
    fail("SIGNER_NOT_PINNED", `${release.signer} is not among the pinned signing keys`);
  }
  if (!facts.signerIsContract) {
    let recovered = "";
    try {
      // Over the id: a LedgerRelease's id is its record's EIP-712 digest (decodeReleasePublished checks it).
      recovered = recoverReleaseSignerOf(release.id, release.signature);
    } catch {
      fail("SIGNATURE_INVALID", "the signature is malformed");
    }
    if (recovered.toLowerCase() !== release.signer.toLowerCase()) fail("SIGNATURE_INVALID", `the signature is not ${release.signer}'s`);
  } else if (!facts.signerVouches && facts.signerActive) {
    // The digest the contract was asked about is the release id (the record's EIP-712 hash). A
    // contract key retired since is not asked: its wallet may have changed owners or gone; the
    // registry checked its signature at publication and recorded the key (docs/adr/0016).
    fail("SIGNATURE_INVALID", `the contract signer ${release.signer} does not vouch for the signature`);
  }
  return state.status;
}

/**
 * {checkReleaseFacts} on a fresh read of the ledger (one eth_call, at the proofs' block when
 * proven). Returns the release status index (1 active, 2 vulnerable, 3 revoked) on success.
 */
export async function verifyLedgerRelease(
  deps: { registry: UpdateRegistry; domain: TypedDataDomain; provider?: Provider; lens?: string },
  release: LedgerRelease,
  options: VerifyOptions = {},
): Promise<bigint> {
  const provider = deps.provider ?? deps.registry.runner?.provider;
  if (!provider) throw new ReleaseVerificationError("NO_PROVIDER", "the registry client has no provider to read the ledger with");
  const facts = await readUpdateFacts({ provider, registry: deps.registry, lens: deps.lens }, { release }, options.proven?.at.blockTag);
  return BigInt(RELEASE_STATUS.indexOf(checkReleaseFacts(release, facts, options)));
}
