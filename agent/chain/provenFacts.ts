import { AbiCoder, keccak256, toBeHex } from "ethers";
import { RELEASE_STATUS, ledgerName, type DeviceStandingName, type ReleaseStatusName } from "../core/ledgerCodes";
import { deviceLeaf, verifyDeviceProof } from "../crypto/deviceTree";
import type { DeviceCredential } from "../crypto/deviceCredential";
import type { RpcSender } from "./eventStream";
import { slotKey, verifyGetProof, verifyHeader, type VerifiedHeader } from "./stateProof";

/**
 * The facts a device acts on, read from the registries' storage with eth_getProof at one block and
 * proven against that block's state root (agent/chain/stateProof.ts, docs/adr/0010): a release's
 * stored record (its status), its provider's bar, whether its signer is one of the provider's
 * keys, and the device's own standing. An endpoint can then withhold an answer, never forge one.
 *
 * The slots come from the contracts' storage layout, written here as constants so the device
 * bundle needs no compiler output at run time (ADR 0007); test/agent/chain/provenFacts.test.ts
 * checks each one against the compiler's layout (artifacts/build-info), so a contract change that
 * moves a field fails that test.
 */

/** A field inside a struct: the slot from the struct's base slot, its byte offset from the right of that word, its size. */
export interface PackedField {
  slot: number;
  offset: number;
  bytes: number;
}

/** UpdateRegistry (contracts/registry/Catalog.sol, Releases.sol). */
export const REGISTRY_LAYOUT = {
  contract: "UpdateRegistry",
  variables: {
    _providers: { slot: 4n, key: "t_uint32" }, // => StoredProvider
    _providerSigners: { slot: 6n, key: "t_uint32" }, // => (address => SignerTerm)
    _releases: { slot: 16n, key: "t_bytes32" }, // => StoredRelease
  },
  structs: {
    StoredProvider: { barred: { slot: 0, offset: 0, bytes: 1 } },
    SignerTerm: {
      ordinal: { slot: 0, offset: 0, bytes: 1 },
      addedAt: { slot: 0, offset: 1, bytes: 5 },
      retiredAt: { slot: 0, offset: 6, bytes: 5 },
      compromised: { slot: 0, offset: 11, bytes: 1 },
      compromisedSince: { slot: 0, offset: 12, bytes: 5 },
    },
    StoredRelease: {
      version: { slot: 0, offset: 0, bytes: 8 },
      publishedAt: { slot: 0, offset: 8, bytes: 5 },
      status: { slot: 0, offset: 13, bytes: 1 },
      componentIndex: { slot: 0, offset: 14, bytes: 4 },
      hardwareCount: { slot: 0, offset: 18, bytes: 1 },
      inlineHardware: { slot: 0, offset: 19, bytes: 12 },
      signer: { slot: 0, offset: 31, bytes: 1 },
    },
  },
} as const;

/** FleetRegistry (contracts/FleetRegistry.sol). */
export const FLEET_LAYOUT = {
  contract: "FleetRegistry",
  variables: {
    _singleDevices: { slot: 1n, key: "t_bytes32" }, // => leaf
    _batches: { slot: 2n, key: "t_uint64" }, // => Batch
    _suspended: { slot: 3n, key: "t_bytes32" }, // => bool
    _revokedLeaves: { slot: 4n, key: "t_bytes32" }, // => bool
  },
  structs: {
    Batch: {
      root: { slot: 0, offset: 0, bytes: 32 },
      count: { slot: 1, offset: 0, bytes: 4 },
      revoked: { slot: 1, offset: 4, bytes: 1 },
    },
  },
} as const;

const abi = AbiCoder.defaultAbiCoder();

/** The slot of `mapping[key]` for a mapping at `slot` (Solidity: keccak256 of the key padded to 32 bytes, then the slot). */
export function mappingSlot(key: string | bigint, keyType: "t_bytes32" | "t_uint32" | "t_uint64" | "t_address", slot: bigint | string): bigint {
  const type = keyType === "t_bytes32" ? "bytes32" : keyType === "t_address" ? "address" : "uint256";
  return BigInt(keccak256(abi.encode([type, "uint256"], [key, BigInt(slot)])));
}

/** The bits of `word` that hold `field`. */
export function fieldOf(word: bigint, field: PackedField): bigint {
  return (word >> BigInt(8 * field.offset)) & ((1n << BigInt(8 * field.bytes)) - 1n);
}

/** What the registry stores for a release (one slot): the rest of its record is committed to by its id. */
export interface StoredRelease {
  status: ReleaseStatusName; // "none": the registry does not know the id
  version: bigint;
  publishedAt: number;
  componentIndex: number;
  hardwareCount: number;
  inlineHardware: bigint;
  /** The ordinal of the key that signed it among its provider's keys (SignerTerm.ordinal). */
  signer: number;
}

export function decodeStoredRelease(word: bigint): StoredRelease {
  const f = REGISTRY_LAYOUT.structs.StoredRelease;
  return {
    status: ledgerName(RELEASE_STATUS, fieldOf(word, f.status)),
    version: fieldOf(word, f.version),
    publishedAt: Number(fieldOf(word, f.publishedAt)),
    componentIndex: Number(fieldOf(word, f.componentIndex)),
    hardwareCount: Number(fieldOf(word, f.hardwareCount)),
    inlineHardware: fieldOf(word, f.inlineHardware),
    signer: Number(fieldOf(word, f.signer)),
  };
}

/**
 * A provider key's term (Catalog.SignerTerm, one slot): its ordinal among the provider's keys (0:
 * never added), the block times it was added and retired (0: it may sign now), and whether it was
 * retired as compromised, since when (docs/adr/0016-signer-rotation.md).
 */
export interface SignerTerm {
  ordinal: number;
  addedAt: number;
  retiredAt: number;
  compromised: boolean;
  compromisedSince: number;
}

export function decodeSignerTerm(word: bigint): SignerTerm {
  const f = REGISTRY_LAYOUT.structs.SignerTerm;
  return {
    ordinal: Number(fieldOf(word, f.ordinal)),
    addedAt: Number(fieldOf(word, f.addedAt)),
    retiredAt: Number(fieldOf(word, f.retiredAt)),
    compromised: fieldOf(word, f.compromised) !== 0n,
    compromisedSince: Number(fieldOf(word, f.compromisedSince)),
  };
}

/** Whether the key may sign a new release now (Catalog._maySign): added and not retired. */
export function maySign(t: SignerTerm): boolean {
  return t.ordinal !== 0 && t.retiredAt === 0;
}

/**
 * THE rule, as the registry applies it (Catalog._signedInTerm, docs/adr/0016-signer-rotation.md):
 * the key is valid for a published release when it is the key the registry recorded for it (its
 * ordinal), was added at or before its publication and not retired before it, and, if retired as
 * compromised, the release was published before the compromise time. A key retired since does not
 * make the release invalid.
 */
export function signerValidFor(t: SignerTerm, release: Pick<StoredRelease, "publishedAt" | "signer">): boolean {
  return (
    t.ordinal !== 0 &&
    t.ordinal === release.signer &&
    t.addedAt <= release.publishedAt &&
    (t.retiredAt === 0 || release.publishedAt <= t.retiredAt) &&
    (!t.compromised || release.publishedAt < t.compromisedSince)
  );
}

/** Whether the key was retired as compromised at or before the release's publication (what makes it invalid, not a rotation). */
export function signerCompromisedFor(t: SignerTerm, release: Pick<StoredRelease, "publishedAt" | "signer">): boolean {
  return t.ordinal !== 0 && t.ordinal === release.signer && t.compromised && release.publishedAt >= t.compromisedSince;
}

/** The hardware class ids a release's slot holds inline (the first six, 16 bits each, the first in the low bits). */
export function inlineHardwareOf(s: StoredRelease): number[] {
  return Array.from({ length: Math.min(s.hardwareCount, 6) }, (_, i) => Number((s.inlineHardware >> BigInt(16 * i)) & 0xffffn));
}

// ------------------------------------------------------------------ the slots of each fact

const R = REGISTRY_LAYOUT.variables;
const F = FLEET_LAYOUT.variables;

export function releaseSlot(releaseId: string): bigint {
  return mappingSlot(releaseId, R._releases.key, R._releases.slot) + BigInt(REGISTRY_LAYOUT.structs.StoredRelease.status.slot);
}

export function providerBarredSlot(providerId: number): bigint {
  return mappingSlot(BigInt(providerId), R._providers.key, R._providers.slot) + BigInt(REGISTRY_LAYOUT.structs.StoredProvider.barred.slot);
}

export function providerSignerSlot(providerId: number, signer: string): bigint {
  return mappingSlot(signer, "t_address", mappingSlot(BigInt(providerId), R._providerSigners.key, R._providerSigners.slot));
}

/** The slots FleetRegistry.deviceStanding reads for this credential. */
export function standingSlots(c: DeviceCredential): { single: bigint; suspended: bigint; revokedLeaf: bigint; batchRoot?: bigint; batchFlags?: bigint } {
  const id = c.record.id;
  const slots = {
    single: mappingSlot(id, F._singleDevices.key, F._singleDevices.slot),
    suspended: mappingSlot(id, F._suspended.key, F._suspended.slot),
    revokedLeaf: mappingSlot(deviceLeaf(c.record), F._revokedLeaves.key, F._revokedLeaves.slot),
  };
  if (c.batchId === 0) return slots;
  const base = mappingSlot(BigInt(c.batchId), F._batches.key, F._batches.slot);
  const b = FLEET_LAYOUT.structs.Batch;
  return { ...slots, batchRoot: base + BigInt(b.root.slot), batchFlags: base + BigInt(b.revoked.slot) };
}

/**
 * The standing FleetRegistry.deviceStanding computes, from the proven words: enrolled alone (the
 * single record is this leaf) or in a batch (the proof leads to the batch's root); withdrawn if
 * the leaf is revoked, or the batch is, or the id was since enrolled alone; then suspended or active.
 */
export function standingOf(
  c: DeviceCredential,
  words: { single: bigint; suspended: bigint; revokedLeaf: bigint; batchRoot?: bigint; batchFlags?: bigint },
): DeviceStandingName {
  const leaf = BigInt(deviceLeaf(c.record));
  if (BigInt(c.record.id) === 0n) return "unknown";
  const enrolled =
    c.batchId === 0 ? words.single === leaf : (words.batchRoot ?? 0n) !== 0n && verifyDeviceProof(c.record, c.proof, toBeHex(words.batchRoot!, 32));
  if (!enrolled) return "unknown";
  const batchRevoked = c.batchId !== 0 && fieldOf(words.batchFlags ?? 0n, FLEET_LAYOUT.structs.Batch.revoked) !== 0n;
  if (words.revokedLeaf !== 0n || (c.batchId !== 0 && (batchRevoked || words.single !== 0n))) return "revoked";
  return words.suspended !== 0n ? "suspended" : "active";
}

// ------------------------------------------------------------------ one proven read

export interface ProvenQuery {
  /** Release ids whose stored record to prove. */
  releases?: string[];
  /** A provider whose bar to prove. */
  provider?: number;
  /**
   * A signer to prove valid (or not) for a provider: for `release` (one of `releases`) when given,
   * by the key's term at its publication (signerValidFor); else whether it may sign now.
   */
  signer?: { provider: number; address: string; release?: string };
  /** The device whose standing to prove. */
  device?: DeviceCredential;
}

export interface ProvenFacts {
  block: VerifiedHeader;
  releases: Map<string, StoredRelease>; // by lowercase id
  providerBarred?: boolean;
  /** The signer's validity: for the query's release (its term at publication), else whether it may sign now. */
  signerRegistered?: boolean;
  /** With a release: whether the signer's key was retired as compromised at or before its publication. */
  signerCompromised?: boolean;
  /** Whether the signer may sign new releases now (not retired). */
  signerActive?: boolean;
  /** The signer's term as stored. */
  signerTerm?: SignerTerm;
  standing?: DeviceStandingName;
  /** What the read cost: JSON-RPC calls, and the bytes of their answers (the JSON results). */
  cost: { calls: number; bytes: number };
}

/**
 * Reads the facts `q` names with eth_getProof at one block, the header of that block read first
 * from the same provider (with a quorum provider, the block its endpoints agreed on) and checked
 * against its hash (and `agreedHash` when given): every value comes from a proof against that
 * header's state root. A proof or header that does not verify is a StateProofError; an endpoint
 * without eth_getProof fails as its provider reports it.
 */
export async function readProvenFacts(
  rpc: RpcSender,
  at: { registry: string; fleet: string },
  q: ProvenQuery,
  options: { block?: "latest" | number; agreedHash?: string } = {},
): Promise<ProvenFacts> {
  const cost = { calls: 0, bytes: 0 };
  const send = async (method: string, params: unknown[]): Promise<unknown> => {
    const result: unknown = await rpc.send(method, params);
    cost.calls += 1;
    cost.bytes += JSON.stringify(result ?? null).length;
    return result;
  };
  const tag = options.block === undefined || options.block === "latest" ? "latest" : toBeHex(options.block);
  const block = verifyHeader(await send("eth_getBlockByNumber", [tag, false]), options.agreedHash);
  const blockTag = toBeHex(block.number);

  const ids = [...new Set([...(q.releases ?? []), ...(q.signer?.release ? [q.signer.release] : [])].map((id) => id.toLowerCase()))];
  const registrySlots = new Map<string, bigint>(ids.map((id) => [`release:${id}`, releaseSlot(id)]));
  if (q.provider !== undefined) registrySlots.set("barred", providerBarredSlot(q.provider));
  if (q.signer) registrySlots.set("signer", providerSignerSlot(q.signer.provider, q.signer.address));
  const fleetSlots = new Map<string, bigint>(q.device ? Object.entries(standingSlots(q.device)).filter((e): e is [string, bigint] => e[1] !== undefined) : []);

  const prove = async (address: string, slots: Map<string, bigint>): Promise<Map<string, bigint>> => {
    if (slots.size === 0) return new Map();
    const keys = [...slots.values()].map(slotKey);
    const { values } = verifyGetProof(block.stateRoot, address, keys, await send("eth_getProof", [address, keys, blockTag]));
    return new Map([...slots].map(([name, slot]) => [name, values.get(slotKey(slot))!]));
  };
  const [registry, fleet] = await Promise.all([prove(at.registry, registrySlots), prove(at.fleet, fleetSlots)]);

  const facts: ProvenFacts = { block, releases: new Map(ids.map((id) => [id, decodeStoredRelease(registry.get(`release:${id}`)!)])), cost };
  if (q.provider !== undefined) facts.providerBarred = fieldOf(registry.get("barred")!, REGISTRY_LAYOUT.structs.StoredProvider.barred) !== 0n;
  if (q.signer) {
    const term = decodeSignerTerm(registry.get("signer")!);
    const release = q.signer.release ? facts.releases.get(q.signer.release.toLowerCase()) : undefined;
    facts.signerTerm = term;
    facts.signerActive = maySign(term);
    facts.signerRegistered = release && release.status !== "none" ? signerValidFor(term, release) : maySign(term);
    facts.signerCompromised = release && release.status !== "none" ? signerCompromisedFor(term, release) : false;
  }
  if (q.device) facts.standing = standingOf(q.device, Object.fromEntries(fleet) as Parameters<typeof standingOf>[1]);
  return facts;
}
