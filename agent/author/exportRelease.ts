import { promises as fs } from "node:fs";
import { createReadStream } from "node:fs";
import type { TypedDataDomain } from "ethers";
import type { FleetRegistry, UpdateRegistry } from "../chain/contracts";
import { InputError, OtaError } from "../core/errors";
import { fetchRelease } from "../chain/releaseEvents";
import { readProvenFacts } from "../chain/provenFacts";
import type { RpcSender } from "../chain/eventStream";
import type { GetProofAnswer } from "../chain/stateProof";
import type { DeviceCredential } from "../crypto/deviceCredential";
import { keyWrapContext, wrapContentKey } from "../crypto/keyWrap";
import { ChunkMerkleTree, chunkLeaf } from "../crypto/chunkMerkle";
import { splitStoredChunks } from "../crypto/artifactCipher";
import { manifestOf, writeBundle } from "../consumer/offlineBundle";
import { offlineQuery, recordingRpc } from "../consumer/offlineVerify";
import type { ContentKeyStore } from "./contentKeyStore";
import { readFleetEvents } from "./grantKeys";

export interface ExportResult {
  bundle: string;
  releaseId: string;
  deviceId: string;
  block: { number: number; hash: string; timestamp: number };
  bytes: { bundle: number; ciphertext: number; manifest: number };
}

/**
 * `ota-ledger release export` (issue 19 item 10, ADR 0017): one file that lets a device install a
 * release with no network (agent/consumer/offlineBundle.ts). The author's tool writes it, because
 * the content key is the author's: it is wrapped here for the device's enrolled public key, bound
 * to the release and device ids, so only that device opens it (the firmware server holds wrapped
 * keys only, served to the device's own signed requests). The proofs are what the device's
 * readProvenFacts asks at `block`, recorded from this machine's endpoint and checked here as the
 * device will check them; a bundle the device would refuse for the ledger's facts (the release
 * unknown or revoked, the device not active or of another hardware class) is not written.
 */
export async function exportRelease(
  deps: {
    provider: RpcSender & { getBlockNumber(): Promise<number> };
    registry: UpdateRegistry;
    fleet: FleetRegistry;
    domain: TypedDataDomain;
    chainId: bigint;
    fromBlock: number;
    keys: ContentKeyStore;
  },
  o: { releaseId: string; device: DeviceCredential | string; artifactFile: string; out: string; block?: number; now?: number },
): Promise<ExportResult> {
  const release = await fetchRelease(deps.registry, deps.domain, o.releaseId, deps.fromBlock);
  if (!release) throw new InputError("RELEASE_UNKNOWN", `the ledger has no release ${o.releaseId}: check the id printed by \`release publish\``);
  const credential = typeof o.device === "string" ? await singleDevice(deps.fleet, deps.fromBlock, o.device) : o.device;
  const at = { registry: String(await deps.registry.getAddress()), fleet: String(await deps.fleet.getAddress()) };
  const blockNumber = o.block ?? (await deps.provider.getBlockNumber());
  const { rpc, recorded } = recordingRpc(deps.provider);
  const facts = await readProvenFacts(rpc, at, offlineQuery(release, credential), { block: blockNumber });
  const stored = facts.releases.get(release.id.toLowerCase())!;
  if (stored.status === "none")
    throw new InputError("RELEASE_UNKNOWN", `release ${release.id} was not on the ledger at block ${blockNumber}: export at a later block (--block)`);
  if (stored.status === "revoked") throw new OtaError("RELEASE_REVOKED", `release ${release.id} is revoked at block ${blockNumber}: no device would take it`);
  if (facts.standing !== "active")
    throw new InputError("DEVICE_NOT_ELIGIBLE", `device ${credential.record.id} is ${facts.standing} at block ${blockNumber}: no bundle is made for it`);
  if (!release.record.hardware.includes(credential.record.hardwareClass))
    throw new InputError(
      "DEVICE_NOT_ELIGIBLE",
      `device ${credential.record.id} is of hardware class ${credential.record.hardwareClass}, not supported by release ${release.id}`,
    );
  if (!facts.signerRegistered)
    throw new OtaError("SIGNER_NOT_REGISTERED", `release ${release.id}'s signer ${release.signer} is not valid at block ${blockNumber}`);

  // The ciphertext must be the release's: the device would refuse it chunk by chunk anyway.
  const leaves: string[] = [];
  try {
    for await (const chunk of splitStoredChunks(createReadStream(o.artifactFile))) leaves.push(chunkLeaf(leaves.length, chunk));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new InputError("ARTIFACT_MISSING", `cannot read --artifact ${o.artifactFile}`);
    if (err instanceof OtaError) throw new InputError("CHUNK_MISMATCH", `--artifact ${o.artifactFile} is not release ${release.id}'s artifact: ${err.message}`);
    throw err;
  }
  if (leaves.length === 0 || new ChunkMerkleTree(leaves).root.toLowerCase() !== release.record.merkleRoot.toLowerCase())
    throw new InputError("CHUNK_MISMATCH", `--artifact ${o.artifactFile} does not match release ${release.id}'s Merkle root on the ledger`);

  const contentKey = await deps.keys.load(release.id);
  const wrappedKey = wrapContentKey(
    contentKey,
    Buffer.from(credential.record.publicKey.replace(/^0x/, ""), "hex"),
    keyWrapContext(release.id, credential.record.id),
  );
  const proof = (address: string) => recorded.proofs.get(address) as GetProofAnswer;
  const manifest = manifestOf({
    exportedAt: Math.floor((o.now ?? Date.now()) / 1000),
    chain: { chainId: deps.chainId, registry: at.registry, fleet: at.fleet },
    block: recorded.block as Record<string, unknown>,
    release,
    device: credential,
    wrappedKey,
    proofs: { registry: proof(at.registry), fleet: proof(at.fleet) },
  });
  let size: number;
  try {
    size = await writeBundle(o.out, manifest, o.artifactFile);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST")
      throw new InputError("OUT_EXISTS", `${o.out} exists: give another --out file or remove it (a bundle is never overwritten)`);
    throw err;
  }
  const ciphertext = (await fs.stat(o.artifactFile)).size;
  return {
    bundle: o.out,
    releaseId: release.id,
    deviceId: credential.record.id,
    block: { number: facts.block.number, hash: facts.block.hash, timestamp: facts.block.timestamp },
    bytes: { bundle: size, ciphertext, manifest: size - ciphertext - 22 },
  };
}

/** A device enrolled singly, from its DeviceEnrolled event (a batch device is given by its credential). */
async function singleDevice(fleet: FleetRegistry, fromBlock: number, id: string): Promise<DeviceCredential> {
  const events = await readFleetEvents(fleet, fromBlock);
  const record = events.singles.get(id.toLowerCase());
  if (!record)
    throw new InputError(
      "DEVICE_UNKNOWN",
      `device ${id} is not enrolled singly on the ledger: enrol it, or give its device.json or credential file with --device <file>`,
    );
  return { record, batchId: 0, proof: [] };
}
