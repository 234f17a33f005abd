import { Contract, Interface, TypedDataDomain } from "ethers";
import type { UpdateRegistry } from "./contracts";
import { VerificationError } from "../core/errors";
import { computeReleaseId, recoverReleaseSigner } from "../crypto/releaseSignature";
import type { LedgerRelease } from "./releaseEvents";
import { decodeRevert } from "./revertReason";
import { inlineHardwareOf } from "./provenFacts";
import { RELEASE_STATUS, ledgerName } from "../core/ledgerCodes";
import type { ProvenView } from "./ledgerProofs";

/** A release that does not check out against the ledger or its author's keys. */
export class ReleaseVerificationError extends VerificationError {}

const ERC1271 = new Interface(["function isValidSignature(bytes32 hash, bytes signature) view returns (bytes4)"]);
const ERC1271_MAGIC = "0x1626ba7e";

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
 * author's signature (REQ-10d-ii, CAP-11.4-a):
 *  - the registry knows the id, and its stored component, provider (and its name), version, time
 *    and hardware match;
 *  - the signer is one of the provider's registered keys (and, if given, a pinned one);
 *  - the signature is valid: recovered for a key, asked of the contract for an ERC-1271 signer.
 * Returns the release status (1 active, 2 vulnerable, 3 revoked) on success.
 */
export async function verifyLedgerRelease(
  deps: { registry: UpdateRegistry; domain: TypedDataDomain },
  release: LedgerRelease,
  options: VerifyOptions = {},
): Promise<bigint> {
  const { registry, domain } = deps;
  const fail = (code: string, message: string): never => {
    throw new ReleaseVerificationError(code, `release ${release.id}: ${message}`, { details: { releaseId: release.id } });
  };
  const proven = options.proven;
  const stored = proven?.release(release.id);
  const at = proven?.at ?? {}; // the calls compared with the proofs, at the proofs' block
  const state = await registry.releaseState(release.id, at).catch((err: unknown) => {
    if (decodeRevert(err, [registry.interface])?.name === "UpdateRegistryUnknownRelease") {
      proven?.agree(`whether release ${release.id} is on the ledger`, "unknown", stored && stored.status !== "none" ? "published" : undefined);
      return fail("RELEASE_NOT_ON_LEDGER", "the registry does not know this release id");
    }
    throw err;
  });
  if (proven && stored) {
    // What the registry stores for the release (one slot), as proven; the rest is committed to by the id.
    proven.agree(`whether release ${release.id} is on the ledger`, "published", stored.status === "none" ? "unknown" : "published");
    proven.agree(`the version of release ${release.id}`, state.version, stored.version);
    proven.agree(`the release time of release ${release.id}`, Number(state.publishedAt), stored.publishedAt);
    proven.agree(`the status of release ${release.id}`, ledgerName(RELEASE_STATUS, state.status), stored.status);
    const inline = state.hardware.slice(0, 6).map(Number).join();
    proven.agree(`the hardware of release ${release.id}`, `${state.hardware.length}:${inline}`, `${stored.hardwareCount}:${inlineHardwareOf(stored).join()}`);
  }
  // typechain leaves out provider(uint32): its name clashes with ethers' Contract.provider.
  const [providerName] = await registry.getFunction("provider")(release.record.provider, at);
  if (
    state.component !== release.record.component ||
    Number(state.provider) !== release.record.provider ||
    providerName !== release.providerName ||
    state.version !== release.record.version ||
    Number(state.publishedAt) !== release.releasedAt ||
    state.hardware.map(Number).join() !== release.record.hardware.join()
  ) {
    fail("RELEASE_STATE_MISMATCH", "the event disagrees with the registry's stored state");
  }
  const registered = await registry.isProviderSigner(release.record.provider, release.signer, at);
  proven?.agree(`whether ${release.signer} is a signing key of provider ${release.record.provider}`, registered, proven.facts.signerRegistered);
  if (!registered) {
    fail("SIGNER_NOT_REGISTERED", `${release.signer} is not a signing key of provider ${release.record.provider}`);
  }
  if (options.pinnedSigners && !options.pinnedSigners.some((s) => s.toLowerCase() === release.signer.toLowerCase())) {
    fail("SIGNER_NOT_PINNED", `${release.signer} is not among the pinned signing keys`);
  }
  const provider = registry.runner?.provider;
  if (!provider) fail("NO_PROVIDER", "the registry client has no provider to check the signer with");
  const code = await provider!.getCode(release.signer);
  if (code === "0x") {
    let recovered = "";
    try {
      recovered = recoverReleaseSigner(domain, release.record, release.signature);
    } catch {
      fail("SIGNATURE_INVALID", "the signature is malformed");
    }
    if (recovered.toLowerCase() !== release.signer.toLowerCase()) fail("SIGNATURE_INVALID", `the signature is not ${release.signer}'s`);
  } else {
    const digest = computeReleaseId(domain, release.record);
    const wallet = new Contract(release.signer, ERC1271, provider);
    let answer = "";
    try {
      answer = await wallet.isValidSignature(digest, release.signature);
    } catch {
      fail("SIGNATURE_INVALID", `the contract signer ${release.signer} did not answer isValidSignature`);
    }
    if (answer !== ERC1271_MAGIC) fail("SIGNATURE_INVALID", `the contract signer ${release.signer} does not vouch for the signature`);
  }
  return state.status;
}
