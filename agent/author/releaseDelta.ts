import { promises as fs } from "node:fs";
import path from "node:path";
import type { Signer } from "ethers";
import type { ReleaseDeltas } from "../chain/contracts";
import { InputError } from "../core/errors";
import { deltaContentKey } from "../crypto/deltaKey";
import { encodeDelta } from "../delta/deltaEncode";
import { minedWithin } from "../chain/minedWithin";
import { packageArtifact } from "./packageArtifact";
import { uploadArtifact } from "./uploadArtifact";

/** What the ledger records of a delta (ReleaseDeltas.addDelta), and the stored artifact's file. */
export interface PackagedDelta {
  releaseId: string;
  fromReleaseId: string;
  deltaHash: string; // SHA-256 of the delta's plaintext
  merkleRoot: string; // over the stored (encrypted) delta's chunks
  link: string; // CID of the stored delta
  size: bigint; // the delta's plaintext size
  artifactFile: string;
  encodeMs: number;
}

/**
 * Packages the delta that turns the base release's image (`baseFile`) into the release's
 * (`targetFile`): encoded (deltaEncode.ts), then encrypted and chunked exactly as a full artifact,
 * with the key derived from the release's content key for this base (deltaKey.ts), so that the
 * devices granted the release need no new key. Writes the stored delta to `artifactDir`.
 */
export async function packageDelta(
  o: { contentKey: Uint8Array; releaseId: string; fromReleaseId: string; baseFile: string; targetFile: string },
  artifactDir: string,
): Promise<PackagedDelta> {
  const [base, target] = await Promise.all([o.baseFile, o.targetFile].map((f) => fs.readFile(f)));
  const started = performance.now();
  const plain = encodeDelta(base, target);
  const encodeMs = performance.now() - started;
  await fs.mkdir(artifactDir, { recursive: true });
  const artifactFile = path.join(artifactDir, `${o.releaseId.toLowerCase()}-from-${o.fromReleaseId.toLowerCase().slice(0, 18)}.otad.otae`);
  const out = await fs.open(artifactFile, "w", 0o644);
  let packaged;
  try {
    packaged = await packageArtifact(deltaContentKey(o.contentKey, o.releaseId, o.fromReleaseId), [plain], {
      plaintextSize: BigInt(plain.length),
      sink: async (chunk) => void (await out.write(chunk)),
    });
    await out.sync();
  } finally {
    await out.close();
  }
  return {
    releaseId: o.releaseId,
    fromReleaseId: o.fromReleaseId,
    deltaHash: packaged.fileHash,
    merkleRoot: packaged.merkleRoot,
    link: packaged.fileLink,
    size: BigInt(plain.length),
    artifactFile,
    encodeMs,
  };
}

/**
 * Records a packaged delta on the ledger (ReleaseDeltas.addDelta, as an author of the release's
 * provider), then submits it to the firmware server, which screens it against that record.
 * A delta already recorded with these fields is only submitted again.
 */
export async function publishDelta(
  deps: { deltas: ReleaseDeltas; author: Signer & { address: string }; serverUrl?: string },
  d: PackagedDelta,
): Promise<{ transactionHash?: string; cid?: string }> {
  const recorded = await deps.deltas.delta(d.releaseId, d.fromReleaseId);
  let transactionHash: string | undefined;
  if (recorded.size === 0n) {
    const tx = await deps.deltas.connect(deps.author).addDelta(d.releaseId, d.fromReleaseId, d.deltaHash, d.merkleRoot, d.size, d.link);
    const receipt = await minedWithin(tx);
    if (!receipt || receipt.status !== 1) throw new InputError("DELTA_RECORD_FAILED", `the transaction ${tx.hash} recording the delta failed`);
    transactionHash = tx.hash;
  } else if (recorded.deltaHash.toLowerCase() !== d.deltaHash.toLowerCase() || recorded.merkleRoot.toLowerCase() !== d.merkleRoot.toLowerCase()) {
    throw new InputError("DELTA_ALREADY_RECORDED", `the ledger already records another delta of ${d.releaseId} from ${d.fromReleaseId}: deltas are immutable`);
  }
  if (!deps.serverUrl) return { transactionHash };
  const pathname = `/v1/releases/${d.releaseId.toLowerCase()}/deltas/${d.fromReleaseId.toLowerCase()}/artifact`;
  const { cid } = await uploadArtifact({ serverUrl: deps.serverUrl, author: deps.author, pathname }, d.releaseId, d.artifactFile);
  return { transactionHash, cid };
}
