import { createHash } from "node:crypto";
import { createReadStream, promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { isHexString } from "ethers";
import type { Connection } from "./connect";
import { InputError, OtaError } from "../core/errors";
import { encodeVersion, formatVersion } from "../core/version";
import { fetchRelease, type LedgerRelease } from "../chain/releaseEvents";
import type { ContentKeyStore } from "../author/contentKeyStore";
import { packageDelta, publishDelta, type PackagedDelta } from "../author/releaseDelta";
import { ChunkMerkleTree, chunkLeaf } from "../crypto/chunkMerkle";
import { decryptArtifact, readArtifactFile, splitStoredChunks } from "../crypto/artifactCipher";

/** Deltas a release may carry (ReleaseDeltas.MAX_DELTAS). */
const MAX_DELTAS = 16;

/** The release a delta leads to, as far as the checks need it (it may not be on the ledger yet: `release publish`). */
export interface DeltaTarget {
  releaseId?: string; // absent before it is published
  component: string; // id
  componentName: string;
  version: bigint;
  provider: number;
}

/** A checked base: its ledger release and a plaintext image whose SHA-256 is its file hash. */
export interface DeltaBase {
  text: string;
  release: LedgerRelease;
  imageFile: string;
}

/** What `--json` shows of a delta recorded and submitted. */
export interface DeltaResult {
  releaseId: string;
  fromReleaseId: string;
  fromVersion: string;
  deltaHash: string;
  merkleRoot: string;
  link: string;
  size: bigint; // the delta's plaintext
  deltaArtifactBytes: number; // the stored (encrypted) delta: what a device fetches
  fullArtifactBytes: number; // the release's full artifact: what a device fetches without the delta
  percentOfFull: number;
  deltaArtifactFile: string;
  encodeMs: number;
  transactionHash?: string;
  cid?: string;
}

/**
 * Temporary plaintext images (decrypted from the author's artifacts); `close` removes them.
 */
export class DeltaWorkspace {
  #dir?: string;
  async file(name: string): Promise<string> {
    this.#dir ??= await fs.mkdtemp(path.join(os.tmpdir(), "ota-delta-"));
    return path.join(this.#dir, name);
  }
  async close(): Promise<void> {
    if (this.#dir) await fs.rm(this.#dir, { recursive: true, force: true });
  }
}

/**
 * `--delta-from` / `--from`: a release id, or a version of the target's component; optionally
 * `=<image file>`, the base's plaintext image (else the author's artifact of the base, in the
 * artifacts folder `release publish` wrote it to, decrypted with its content key). Refused with
 * exit 2: a base not on the ledger, of another component, not older than the target, or an image
 * whose SHA-256 is not the base's file hash.
 */
export async function resolveDeltaBase(
  conn: Pick<Connection, "registry" | "domain" | "fromBlock">,
  target: DeltaTarget,
  text: string,
  where: { artifactDir: string; keys: ContentKeyStore; work: DeltaWorkspace; cwd: string; option: string },
): Promise<DeltaBase> {
  const eq = text.indexOf("=");
  const ref = (eq < 0 ? text : text.slice(0, eq)).trim();
  const givenImage = eq < 0 ? undefined : path.resolve(where.cwd, text.slice(eq + 1).trim());
  const shown = `${where.option} ${text}`;
  let id: string;
  if (isHexString(ref, 32)) {
    id = ref.toLowerCase();
  } else {
    let version: bigint;
    try {
      version = encodeVersion(ref);
    } catch {
      throw new InputError(
        "INVALID_INPUT",
        `${shown}: give the base release as a version of ${target.componentName} (e.g. 1.0.0) or a release id (0x + 64 hex digits)`,
      );
    }
    id = (await conn.registry.findSatisfyingRelease(target.component, version, version + 1n)).toLowerCase();
    if (BigInt(id) === 0n)
      throw new InputError("DELTA_BASE_UNKNOWN", `${shown}: the ledger has no release ${ref} of ${target.componentName} (or it is revoked)`, {
        details: { base: text, component: target.componentName },
      });
  }
  if (target.releaseId !== undefined && id === target.releaseId.toLowerCase())
    throw new InputError("DELTA_BASE_NOT_OLDER", `${shown}: that is the release itself; a delta is from an older release`);
  const release = (await conn.registry.releaseStatus(id)) === 0n ? undefined : await fetchRelease(conn.registry, conn.domain, id, conn.fromBlock);
  if (!release) throw new InputError("DELTA_BASE_UNKNOWN", `${shown}: no release ${id} on the registry`, { details: { base: text } });
  if (release.record.component.toLowerCase() !== target.component.toLowerCase())
    throw new InputError(
      "DELTA_BASE_OTHER_COMPONENT",
      `${shown}: release ${id} is of another component (${release.record.component}), not ${target.componentName}: a delta is from an older release of the same component`,
      { details: { base: id, component: release.record.component } },
    );
  if (release.record.version >= target.version)
    throw new InputError(
      "DELTA_BASE_NOT_OLDER",
      `${shown}: ${target.componentName} ${formatVersion(release.record.version)} is not older than ${formatVersion(target.version)}: a delta is from an older release`,
      { details: { base: id, baseVersion: formatVersion(release.record.version), version: formatVersion(target.version) } },
    );
  const version = formatVersion(release.record.version);
  const imageFile =
    givenImage ??
    (await decryptOwnArtifact(
      release,
      path.join(where.artifactDir, `${target.componentName}-${version}.otae`),
      where,
      `${shown}`,
      `${where.option} ${ref}=<file>`,
    ));
  await checkImage(imageFile, release, `${shown}: the base image ${imageFile}`);
  return { text, release, imageFile };
}

/**
 * The release's plaintext image: `given` (checked against its file hash), else its artifact in the
 * artifacts folder decrypted with its content key (written by `release publish`).
 */
export async function targetImage(
  release: LedgerRelease,
  componentName: string,
  given: string | undefined,
  where: { artifactDir: string; keys: ContentKeyStore; work: DeltaWorkspace },
): Promise<string> {
  const artifact = path.join(where.artifactDir, `${componentName}-${formatVersion(release.record.version)}.otae`);
  const file = given ?? (await decryptOwnArtifact(release, artifact, where, "the release", "--image <file>"));
  await checkImage(file, release, `--image ${file}`);
  return file;
}

/**
 * Checks before anything is sent, on the ledger's views (ReleaseDeltas.addDelta's conditions): the
 * contract deployed, the sender an author of the provider, not barred, the release not revoked,
 * no delta from this base yet and room for one more.
 */
export async function checkDeltasRecordable(conn: Connection, target: DeltaTarget, bases: DeltaBase[], artifactDir: string): Promise<void> {
  if (!conn.deltas)
    throw new InputError(
      "DELTAS_NOT_DEPLOYED",
      "this deployment has no ReleaseDeltas (releaseDeltas in the deployment file): deploy the registries again (it is deployed beside them since ADR 0018) to publish deltas",
    );
  const author = await conn.registry.authorProvider(conn.signer.address);
  if (Number(author) !== target.provider)
    throw new OtaError(
      "NOT_AN_AUTHOR",
      `the account ${conn.signer.address} is not an author of provider ${target.provider}: send with an author's key (OTA_PRIVATE_KEY), or have an administrator add it`,
      { details: { account: conn.signer.address, provider: target.provider } },
    );
  // getFunction: `provider` is also the contract object's own field (its ethers runner).
  const [, barred] = (await conn.registry.getFunction("provider")(target.provider)) as [string, boolean];
  if (barred) throw new OtaError("PROVIDER_BARRED", `provider ${target.provider} is barred: it records no deltas`);
  const seen = new Set<string>();
  for (const b of bases) {
    const key = b.release.id.toLowerCase();
    if (seen.has(key)) throw new InputError("INVALID_INPUT", `the base ${b.text} is named twice`);
    seen.add(key);
  }
  if (target.releaseId === undefined) return;
  if ((await conn.registry.releaseStatus(target.releaseId)) === 3n)
    throw new InputError("RELEASE_REVOKED", `release ${target.releaseId} is revoked: a revoked release takes no delta`);
  for (const b of bases) {
    const recorded = await conn.deltas.delta(target.releaseId, b.release.id);
    // Recorded by an earlier run whose submission failed: its stored delta is submitted again.
    if (recorded.size !== 0n && (await storedDelta(artifactDir, target.releaseId, b.release.id, recorded.merkleRoot))) continue;
    if (recorded.size !== 0n)
      throw new InputError(
        "DELTA_ALREADY_RECORDED",
        `the ledger already records a delta of ${target.releaseId} from ${formatVersion(b.release.record.version)} (${b.release.id}): deltas are immutable`,
        { details: { releaseId: target.releaseId, fromReleaseId: b.release.id, link: recorded.link } },
      );
  }
  const count = (await conn.deltas.deltaBases(target.releaseId)).length;
  if (count + bases.length > MAX_DELTAS)
    throw new InputError("DELTA_TOO_MANY", `release ${target.releaseId} carries ${count} delta(s); at most ${MAX_DELTAS} are recorded per release`);
}

/** Packages, records (ReleaseDeltas.addDelta) and submits the delta from each base, in order. */
export async function publishDeltas(
  conn: Connection,
  o: {
    releaseId: string;
    contentKey: Uint8Array;
    imageFile: string;
    fullArtifactBytes: number;
    bases: DeltaBase[];
    artifactDir: string;
    serverUrl: string;
    progress?: (line: string) => void;
  },
): Promise<DeltaResult[]> {
  const results: DeltaResult[] = [];
  for (const b of o.bases) {
    const recorded = await conn.deltas!.delta(o.releaseId, b.release.id);
    const stored = recorded.size === 0n ? undefined : await storedDelta(o.artifactDir, o.releaseId, b.release.id, recorded.merkleRoot);
    o.progress?.(`${stored ? "submitting the recorded" : "packaging the"} delta from ${formatVersion(b.release.record.version)}`);
    const packaged: PackagedDelta =
      stored !== undefined
        ? {
            deltaHash: recorded.deltaHash,
            merkleRoot: recorded.merkleRoot,
            link: recorded.link,
            size: recorded.size,
            releaseId: o.releaseId,
            fromReleaseId: b.release.id,
            artifactFile: stored,
            encodeMs: 0,
          }
        : await packageDelta(
            { contentKey: o.contentKey, releaseId: o.releaseId, fromReleaseId: b.release.id, baseFile: b.imageFile, targetFile: o.imageFile },
            o.artifactDir,
          );
    const { transactionHash, cid } = await publishDelta({ deltas: conn.deltas!, author: conn.signer, serverUrl: o.serverUrl }, packaged);
    const deltaArtifactBytes = (await fs.stat(packaged.artifactFile)).size;
    results.push({
      releaseId: o.releaseId,
      fromReleaseId: b.release.id,
      fromVersion: formatVersion(b.release.record.version),
      deltaHash: packaged.deltaHash,
      merkleRoot: packaged.merkleRoot,
      link: packaged.link,
      size: packaged.size,
      deltaArtifactBytes,
      fullArtifactBytes: o.fullArtifactBytes,
      percentOfFull: Math.round((10_000 * deltaArtifactBytes) / Math.max(1, o.fullArtifactBytes)) / 100,
      deltaArtifactFile: packaged.artifactFile,
      encodeMs: Math.round(packaged.encodeMs),
      ...(transactionHash ? { transactionHash } : {}),
      ...(cid ? { cid } : {}),
    });
  }
  return results;
}

/**
 * The stored delta an earlier run wrote (packageDelta's file name), if it is there and its chunk
 * root is the one the ledger records.
 */
async function storedDelta(artifactDir: string, releaseId: string, fromReleaseId: string, merkleRoot: string): Promise<string | undefined> {
  const file = path.join(artifactDir, `${releaseId.toLowerCase()}-from-${fromReleaseId.toLowerCase().slice(0, 18)}.otad.otae`);
  try {
    return (await storedRoot(file)).toLowerCase() === merkleRoot.toLowerCase() ? file : undefined;
  } catch {
    return undefined;
  }
}

/** The chunk Merkle root of a stored artifact file (one chunk in memory at a time). */
async function storedRoot(file: string): Promise<string> {
  const leaves: string[] = [];
  for await (const chunk of splitStoredChunks(readArtifactFile(file))) leaves.push(chunkLeaf(leaves.length, chunk));
  return new ChunkMerkleTree(leaves).root;
}

/** The human lines of recorded deltas. */
export function describeDeltas(results: DeltaResult[]): string[] {
  return results.map(
    (d) =>
      `  delta from   ${d.fromVersion} (${d.fromReleaseId.slice(0, 10)}…): ${d.deltaArtifactBytes} bytes, ${d.percentOfFull}% of the full artifact's ${d.fullArtifactBytes} (CID ${d.link})`,
  );
}

async function decryptOwnArtifact(
  release: LedgerRelease,
  artifact: string,
  where: { keys: ContentKeyStore; work: DeltaWorkspace },
  what: string,
  instead: string,
): Promise<string> {
  try {
    await fs.access(artifact);
  } catch {
    throw new InputError(
      "DELTA_IMAGE_MISSING",
      `${what}: no artifact of ${formatVersion(release.record.version)} at ${artifact} to take its image from: give the plaintext image as ${instead} (or --out, the folder \`release publish\` wrote it to)`,
      { details: { releaseId: release.id, artifact } },
    );
  }
  const key = await where.keys.load(release.id);
  const file = await where.work.file(`${release.id.toLowerCase()}.bin`);
  const out = await fs.open(file, "w", 0o600);
  try {
    for await (const plain of decryptArtifact(key, readArtifactFile(artifact))) await out.write(plain);
  } catch (cause) {
    throw new InputError(
      "DELTA_IMAGE_MISMATCH",
      `${what}: ${artifact} does not decrypt with release ${release.id}'s content key: give the image as ${instead}`,
      {
        cause,
      },
    );
  } finally {
    await out.close();
  }
  return file;
}

/** The image's SHA-256 and size must be the release's file hash and size (the device checks the delta's result against them). */
async function checkImage(file: string, release: LedgerRelease, what: string): Promise<void> {
  const hash = createHash("sha256");
  let size = 0n;
  try {
    for await (const piece of createReadStream(file)) {
      hash.update(piece as Buffer);
      size += BigInt((piece as Buffer).length);
    }
  } catch (cause) {
    throw new InputError("INVALID_INPUT", `${what} cannot be read (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, { cause });
  }
  const fileHash = "0x" + hash.digest("hex");
  if (fileHash !== release.record.fileHash.toLowerCase() || size !== release.record.fileSize)
    throw new InputError(
      "DELTA_IMAGE_MISMATCH",
      `${what} hashes to ${fileHash} (${size} bytes), but release ${formatVersion(release.record.version)} (${release.id}) records the file hash ${release.record.fileHash} (${release.record.fileSize} bytes): give that release's image`,
      { details: { file, fileHash, expected: release.record.fileHash, releaseId: release.id } },
    );
}
