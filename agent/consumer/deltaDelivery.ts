import { createHash } from "node:crypto";
import { createReadStream, promises as fs } from "node:fs";
import path from "node:path";
import type { ReleaseDeltas } from "../chain/contracts";
import type { LedgerRelease } from "../chain/releaseEvents";
import { OtaError } from "../core/errors";
import { decryptArtifact, readArtifactFile } from "../crypto/artifactCipher";
import { deltaContentKey } from "../crypto/deltaKey";
import { keyWrapContext, unwrapContentKey } from "../crypto/keyWrap";
import { applyDelta, DeltaRejected, type DeltaExpectation } from "../delta/deltaPatch";
import type { SlotImage } from "./slots/bootState";
import { downloadArtifact, type DownloadOptions } from "./downloadRelease";
import type { SourceSet } from "./deliverySources";

/** A delta fetched, verified and decrypted: its plaintext on disk, ready to apply to the running image. */
export interface FetchedDelta {
  fromReleaseId: string;
  patchFile: string;
  /** Bytes of the stored delta fetched (what the full artifact would have cost instead is the release's). */
  fetchedBytes: number;
}

/**
 * The delta of `release` from the image the device runs (ADR 0018, REQ-10e-i), if the ledger's
 * ReleaseDeltas records one: fetched from the device's firmware servers (the chunk list checked
 * against the delta's Merkle root on the ledger, each chunk as it arrives), decrypted with the key
 * derived from the release's wrapped key, its plaintext's SHA-256 checked against the ledger's
 * delta hash. Undefined when there is none; throws on any fault, which the caller takes as a reason
 * to fetch the whole image (a delta problem is a delivery fault, never a failed release: ADR 0009).
 */
export async function fetchDelta(
  deps: { deltas: ReleaseDeltas; sources: SourceSet },
  o: Omit<DownloadOptions, "serverUrl" | "clock" | "artifactFile" | "basePath"> & { base: SlotImage; workDir: string },
): Promise<FetchedDelta | undefined> {
  const from = o.base.releaseId.toLowerCase();
  const record = await deps.deltas.delta(o.release.id, from);
  if (record.size === 0n) return undefined;
  const id = o.release.id.toLowerCase();
  // The delta stands in for the release's artifact: its size and root are the ledger's delta record.
  const asArtifact: DownloadOptions["release"] = {
    id: o.release.id,
    record: { ...o.release.record, fileSize: record.size, merkleRoot: record.merkleRoot, fileLink: record.link },
  };
  const artifactFile = path.join(o.workDir, `${id}.from-${from.slice(2, 18)}.otad.otae`);
  const patchFile = path.join(o.workDir, `${id}.from-${from.slice(2, 18)}.otad`);
  let last: unknown = new OtaError("SOURCE_FAILED", "no firmware server to ask for the delta");
  for (const server of deps.sources.ordered().filter((s) => s.kind === "server")) {
    try {
      const { wrappedKey } = await downloadArtifact({
        ...o,
        release: asArtifact,
        serverUrl: server.url,
        clock: deps.sources.clock(server.url),
        artifactFile,
        basePath: `/v1/releases/${id}/deltas/${from}`,
      });
      const fetchedBytes = (await fs.stat(artifactFile)).size;
      const contentKey = unwrapContentKey(
        wrappedKey,
        Buffer.from(o.device.privateKey.replace(/^0x/, ""), "hex"),
        keyWrapContext(id, o.device.credential.record.id),
      );
      const hash = createHash("sha256");
      const out = await fs.open(patchFile, "w");
      try {
        for await (const plain of decryptArtifact(deltaContentKey(contentKey, id, from), readArtifactFile(artifactFile))) {
          hash.update(plain);
          await out.write(plain);
        }
      } finally {
        await out.close();
      }
      if ("0x" + hash.digest("hex") !== record.deltaHash.toLowerCase())
        throw new DeltaRejected("DELTA_HASH_MISMATCH", `the decrypted delta does not hash to the ledger's ${record.deltaHash}`);
      return { fromReleaseId: from, patchFile, fetchedBytes };
    } catch (err) {
      last = err;
      await fs.rm(patchFile, { force: true });
    } finally {
      await fs.rm(artifactFile, { force: true });
    }
  }
  throw last;
}

/** The image the delta makes, in pieces, from the running image in `baseFile` (checked against the slot's record and the ledger's). */
export function imageFromDelta(delta: FetchedDelta, baseFile: string, base: SlotImage, release: Pick<LedgerRelease, "record">): AsyncGenerator<Buffer> {
  const expect: DeltaExpectation = {
    baseSize: BigInt(base.size),
    baseHash: base.fileHash,
    targetSize: release.record.fileSize,
    targetHash: release.record.fileHash,
  };
  return applyDelta(baseFile, createReadStream(delta.patchFile, { highWaterMark: 64 * 1024 }), expect);
}
