import { getAddress, type TypedDataDomain } from "ethers";
import { OtaError } from "../core/errors";
import type { DeviceStandingName } from "../core/ledgerCodes";
import { computeReleaseId, recoverReleaseSignerOf } from "../crypto/releaseSignature";
import { keyWrapContext, unwrapContentKey } from "../crypto/keyWrap";
import { ChunkMerkleTree, chunkLeaf } from "../crypto/chunkMerkle";
import { artifactSize, MIN_SERVED_CHUNK_SIZE, splitStoredChunks } from "../crypto/artifactCipher";
import type { DeviceCredential } from "../crypto/deviceCredential";
import { inlineHardwareOf, readProvenFacts, type ProvenFacts, type ProvenQuery, type StoredRelease } from "../chain/provenFacts";
import { StateProofError, verifyHeader, type VerifiedHeader } from "../chain/stateProof";
import type { RpcSender } from "../chain/eventStream";
import type { LedgerRelease } from "../chain/releaseEvents";
import { OfflineBundleRefused, type OfflineManifest, type OpenedBundle } from "./offlineBundle";

/** A block the device trusts for an offline install: learned while online, or configured (device.json offline.trustedBlocks). */
export interface TrustedBlock {
  number: number;
  hash: string;
  /** unix s, when known (a configured block's time comes from its header in the bundle). */
  timestamp?: number;
  origin: "learned" | "configured";
}

/** The default and largest age of a trusted block for an offline install (device.json offline.maxBlockAgeSeconds). */
export const DEFAULT_OFFLINE_MAX_BLOCK_AGE_S = 7 * 24 * 3600;
export const MAX_OFFLINE_MAX_BLOCK_AGE_S = 90 * 24 * 3600;
/** A header dated this far after the device's clock is not believed (clock drift is allowed, a header from the future is not). */
const FUTURE_SLACK_S = 300;

export interface OfflineTrust {
  chainId: bigint;
  registry: string;
  fleet: string;
  domain: TypedDataDomain;
  trusted: TrustedBlock[];
  maxBlockAgeSeconds: number;
  now: number; // unix s
  device: { privateKey: string; credential: DeviceCredential };
  pinnedSigners?: string[];
}

/** What an offline bundle proved, against a block the device trusts. */
export interface OfflineFacts {
  bundle: OpenedBundle;
  block: VerifiedHeader;
  release: LedgerRelease;
  stored: StoredRelease;
  providerBarred: boolean;
  standing: DeviceStandingName;
  wrappedKey: Buffer;
}

/**
 * Checks everything in a bundle without any network, in this order, and throws at the first
 * failure (OfflineBundleRefused, an InputError: exit 2; nothing on the device has changed):
 *   1. the chain id and the registries' addresses are the device's          OFFLINE_BLOCK_UNTRUSTED
 *   2. the block header hashes to its hash                                    OFFLINE_PROOF_INVALID
 *   3. that hash is a block the device trusts, no older than its limit       OFFLINE_BLOCK_UNTRUSTED
 *   4. the record hashes to the release id (the EIP-712 digest the author signed)  OFFLINE_RECORD_INVALID
 *   5. the storage proofs verify against the header's state root              OFFLINE_PROOF_INVALID
 *   6. the registry held the release at that block, with the record's version, time and hardware  OFFLINE_RECORD_INVALID
 *   7. the signature recovers to the signer, which the provider had registered (and the device pins)
 *                                                                             SIGNATURE_INVALID, SIGNER_NOT_REGISTERED, SIGNER_NOT_PINNED
 *   8. the wrapped key opens with the device's key for this release and device KEY_UNWRAP_FAILED
 *   9. every stored chunk of the ciphertext against the record's Merkle root, within the size the record implies
 *                                                                             CHUNK_MISMATCH, OFFLINE_BUNDLE_MALFORMED
 * The release's status, its provider's bar and the device's standing are returned (proven), for
 * the device's usual checks (agent/core/updateCheck) to decide on.
 */
export async function verifyOfflineBundle(bundle: OpenedBundle, t: OfflineTrust): Promise<OfflineFacts> {
  const m = bundle.manifest;
  const refuse = (code: string, message: string, details: Record<string, unknown> = {}): never => {
    throw new OfflineBundleRefused(code, message, { details: { releaseId: m.release.id, ...details } });
  };
  // 1. The device's ledger, not another one.
  const mine = { chainId: t.chainId.toString(), registry: getAddress(t.registry), fleet: getAddress(t.fleet) };
  const theirs = { chainId: m.chain.chainId, registry: getAddress(m.chain.registry), fleet: getAddress(m.chain.fleet) };
  for (const k of ["chainId", "registry", "fleet"] as const)
    if (mine[k] !== theirs[k])
      refuse("OFFLINE_BLOCK_UNTRUSTED", `the bundle is for ${k} ${theirs[k]}; this device's ledger is ${k} ${mine[k]}`, { reason: "other-ledger", field: k });

  // 2, 3. The header, and whether the device trusts its block.
  let block: VerifiedHeader;
  try {
    block = verifyHeader(m.block);
  } catch (err) {
    return refuse("OFFLINE_PROOF_INVALID", `the bundle's block header does not verify: ${(err as Error).message}`, { reason: "header" });
  }
  const trusted = t.trusted.find((b) => b.number === block.number && b.hash.toLowerCase() === block.hash);
  if (!trusted) {
    const known = [...t.trusted].sort((a, b) => b.number - a.number).slice(0, 5);
    refuse(
      "OFFLINE_BLOCK_UNTRUSTED",
      `block ${block.number} (${block.hash}) is not a block this device trusts` +
        (known.length > 0
          ? `; it trusts ${known.map((b) => `${b.number} (${b.origin})`).join(", ")}${t.trusted.length > known.length ? " and older" : ""}: export again with --block <one of them>`
          : ": it learned none while online and device.json lists none (offline.trustedBlocks)"),
      {
        reason: "unknown-block",
        block: block.number,
        blockHash: block.hash,
        trusted: known.map((b) => ({ number: b.number, hash: b.hash, origin: b.origin })),
      },
    );
  }
  const age = t.now - block.timestamp;
  if (age > t.maxBlockAgeSeconds)
    refuse(
      "OFFLINE_BLOCK_UNTRUSTED",
      `block ${block.number} is ${age} s old, over this device's limit of ${t.maxBlockAgeSeconds} s (offline.maxBlockAgeSeconds): a revocation since may be hidden; export again at a newer block`,
      { reason: "too-old", block: block.number, ageSeconds: age, maxBlockAgeSeconds: t.maxBlockAgeSeconds },
    );
  if (age < -FUTURE_SLACK_S)
    refuse("OFFLINE_BLOCK_UNTRUSTED", `block ${block.number} is dated ${-age} s after this device's clock: check the device's clock`, {
      reason: "future",
      block: block.number,
    });

  // 4. The record is what the id commits to (and what the author signed).
  const release = bundle.release;
  const digest = computeReleaseId(t.domain, release.record).toLowerCase();
  if (digest !== release.id.toLowerCase())
    refuse("OFFLINE_RECORD_INVALID", `the bundle's record hashes to ${digest}, not to its release id ${release.id}: the record was altered`, {
      reason: "record-id",
    });

  // 5. The proofs: the same read as online (agent/chain/provenFacts.ts readProvenFacts), its
  // eth_getBlockByNumber and eth_getProof answered from the bundle, at the trusted block's hash.
  // The device names the slots (from the record and its own credential), never the bundle.
  const { provider } = release.record;
  const query = offlineQuery(release, t.device.credential);
  let facts: ProvenFacts;
  try {
    facts = await readProvenFacts(bundleRpc(m, mine), { registry: mine.registry, fleet: mine.fleet }, query, { block: block.number, agreedHash: block.hash });
  } catch (err) {
    if (!(err instanceof StateProofError)) throw err;
    return refuse("OFFLINE_PROOF_INVALID", `the bundle's storage proofs do not verify against block ${block.number}'s state root: ${err.message}`, {
      reason: "proof",
      block: block.number,
    });
  }

  // 6. The registry held this release at that block, as the record says.
  const stored = facts.releases.get(release.id.toLowerCase())!;
  if (stored.status === "none")
    refuse("OFFLINE_RECORD_INVALID", `the registry held no release ${release.id} at block ${block.number}`, { reason: "not-on-ledger" });
  const hw = release.record.hardware;
  if (
    stored.version !== release.record.version ||
    stored.publishedAt !== release.releasedAt ||
    stored.hardwareCount !== hw.length ||
    inlineHardwareOf(stored).join() !== hw.slice(0, 6).join()
  )
    refuse("OFFLINE_RECORD_INVALID", `the bundle's record of release ${release.id} disagrees with what the registry stored at block ${block.number}`, {
      reason: "stored-state",
    });

  // 7. The author's signature, by a key the provider had registered (an ERC-1271 contract's answer is code, not storage: not provable offline).
  let recovered = "";
  try {
    recovered = recoverReleaseSignerOf(release.id, release.signature);
  } catch {
    refuse("SIGNATURE_INVALID", `the signature of release ${release.id} is malformed`);
  }
  if (recovered.toLowerCase() !== release.signer.toLowerCase())
    refuse(
      "SIGNATURE_INVALID",
      `the signature of release ${release.id} is not ${release.signer}'s (a contract signer's signature cannot be checked offline: install it online)`,
    );
  if (!facts.signerRegistered)
    refuse("SIGNER_NOT_REGISTERED", `${release.signer} was not a valid signing key of provider ${provider} for this release at block ${block.number}`);
  if (t.pinnedSigners && !t.pinnedSigners.some((s) => s.toLowerCase() === release.signer.toLowerCase()))
    refuse("SIGNER_NOT_PINNED", `${release.signer} is not among the device's pinned signing keys`);
  const providerBarred = facts.providerBarred === true;
  const standing = facts.standing ?? "unknown";

  // 8. The key: only this device's private key opens it, for this release and this device id.
  try {
    unwrapContentKey(bundle.wrappedKey, Buffer.from(t.device.privateKey.replace(/^0x/, ""), "hex"), keyWrapContext(release.id, t.device.credential.record.id));
  } catch (cause) {
    refuse(
      "KEY_UNWRAP_FAILED",
      `the bundle's wrapped key does not open with this device's key for release ${release.id}: it was wrapped for another device or release`,
      {
        reason: "key",
      },
    );
    throw cause;
  }

  // 9. The ciphertext, chunk by chunk, against the record's Merkle root (the plaintext hash is checked as it is decrypted into the slot).
  const limit = artifactSize(release.record.fileSize, MIN_SERVED_CHUNK_SIZE);
  if (BigInt(bundle.ciphertext.length) > limit)
    refuse(
      "OFFLINE_BUNDLE_MALFORMED",
      `the bundle's ciphertext is ${bundle.ciphertext.length} bytes, longer than release ${release.id}'s record allows (${limit})`,
    );
  const leaves: string[] = [];
  try {
    for await (const chunk of splitStoredChunks(bundle.readCiphertext())) leaves.push(chunkLeaf(leaves.length, chunk));
  } catch (err) {
    if (err instanceof OtaError) refuse("CHUNK_MISMATCH", `the bundle's ciphertext is not the release's artifact: ${err.message}`, { reason: "ciphertext" });
    throw err;
  }
  if (leaves.length === 0 || new ChunkMerkleTree(leaves).root.toLowerCase() !== release.record.merkleRoot.toLowerCase())
    refuse("CHUNK_MISMATCH", `the bundle's ciphertext does not match release ${release.id}'s Merkle root on the ledger`, { reason: "ciphertext" });

  return { bundle, block, release, stored, providerBarred, standing, wrappedKey: bundle.wrappedKey };
}

/**
 * The bundle as the JSON-RPC endpoint readProvenFacts asks: its block for eth_getBlockByNumber,
 * its proof of the registry or of the fleet registry for eth_getProof (by the account asked), and
 * nothing else. Whatever it answers is checked by readProvenFacts as an endpoint's answer is.
 */
export function bundleRpc(m: OfflineManifest, at: { registry: string; fleet: string }): RpcSender {
  return {
    send: async (method: string, params: unknown[]): Promise<unknown> => {
      if (method === "eth_getBlockByNumber") return m.block;
      if (method === "eth_getProof") {
        const account = getAddress(String(params[0]));
        if (account === at.registry) return m.proofs.registry;
        if (account === at.fleet) return m.proofs.fleet;
      }
      throw new StateProofError("PROOF_MALFORMED", `an offline bundle answers no ${method} for ${String(params[0])}`);
    },
  } as RpcSender;
}

/**
 * An RPC sender that passes `rpc`'s answers on and keeps the block and proofs, for the exporter:
 * the bundle then holds exactly what the device's readProvenFacts will ask.
 */
export function recordingRpc(rpc: RpcSender): { rpc: RpcSender; recorded: { block?: unknown; proofs: Map<string, unknown> } } {
  const recorded: { block?: unknown; proofs: Map<string, unknown> } = { proofs: new Map() };
  return {
    recorded,
    rpc: {
      send: async (method: string, params: unknown[]): Promise<unknown> => {
        const answer: unknown = await rpc.send(method, params);
        if (method === "eth_getBlockByNumber") recorded.block = answer;
        if (method === "eth_getProof") recorded.proofs.set(getAddress(String(params[0])), answer);
        return answer;
      },
    } as RpcSender,
  };
}

/** The query the device proves for a bundle (the exporter asks the same). */
export function offlineQuery(release: LedgerRelease, credential: DeviceCredential): ProvenQuery {
  const signer = { provider: release.record.provider, address: release.signer, release: release.id };
  return { releases: [release.id], provider: release.record.provider, signer, device: credential };
}
