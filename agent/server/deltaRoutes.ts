import type { FastifyInstance, FastifyRequest } from "fastify";
import { Readable } from "node:stream";
import { isHexString } from "ethers";
import type { ReleaseDeltas } from "../chain/contracts";
import type { LedgerRelease } from "../chain/releaseEvents";
import type { DeviceCredential } from "../crypto/deviceCredential";
import type { InstalledVersion } from "../core/release";
import type { ContentStore } from "../storage/contentStore";
import { parseRange } from "./byteRange";
import { checkEntitlement } from "./entitlement";
import type { LedgerGate } from "./ledgerGate";
import { Refusal } from "./refusals";
import type { DownloadEntry, ServerDatabase } from "./serverDatabase";
import { screenSubmission } from "./submission";

/** The key a delta artifact is held under in the server's database: release id, then base id. */
export function deltaKey(releaseId: string, fromReleaseId: string): string {
  return `${releaseId.toLowerCase()}:${fromReleaseId.toLowerCase()}`;
}

/**
 * A release's delta artifacts (ADR 0018): submitted by an author of its provider and screened
 * against the ReleaseDeltas record exactly as a full artifact is against the release's (plaintext
 * size, chunk Merkle root, CID); served only to a device entitled to the release itself (the same
 * checks as its full artifact, which the server must hold too: it is the device's fallback), with
 * its chunk list and Range requests. Logged as kind `delta` under the release's id.
 */
export function registerDeltaRoutes(
  app: FastifyInstance,
  d: {
    gate: LedgerGate;
    store: ContentStore;
    db: ServerDatabase;
    deltas: ReleaseDeltas;
    account: (req: FastifyRequest) => Promise<string>;
    device: (req: FastifyRequest) => Promise<{ credential: DeviceCredential; installed: InstalledVersion[]; evidence: string }>;
    logged: (entry: Omit<DownloadEntry, "id" | "at" | "bytes" | "complete">, stream: AsyncIterable<Uint8Array>, finalByte: boolean) => Readable;
    now: () => number;
  },
): void {
  const { gate, store, db, deltas } = d;
  const ids = (req: FastifyRequest) => {
    const { releaseId, fromId } = req.params as { releaseId: string; fromId: string };
    if (!isHexString(releaseId, 32) || !isHexString(fromId, 32)) throw new Refusal("BAD_REQUEST", "release ids are 32 bytes of hex (0x + 64 hex digits)");
    return { id: releaseId.toLowerCase(), from: fromId.toLowerCase() };
  };
  /** The ledger's delta record as the record screenSubmission checks a stored artifact against. */
  const recordOf = async (release: LedgerRelease, from: string) => {
    const delta = await deltas.delta(release.id, from);
    if (delta.size === 0n) throw new Refusal("DELTA_UNKNOWN", `the ledger records no delta of release ${release.id} from ${from}`);
    return { ...release.record, fileSize: delta.size, merkleRoot: delta.merkleRoot, fileLink: delta.link, fileHash: delta.deltaHash };
  };

  app.post("/v1/releases/:releaseId/deltas/:fromId/artifact", async (req, reply) => {
    const { id, from } = ids(req);
    if (!(req.body instanceof Readable)) throw new Refusal("BAD_REQUEST", "send the delta artifact as application/octet-stream");
    reply.header("connection", "close");
    const account = await d.account(req);
    const release = await gate.release(id);
    if ((await gate.authorProvider(account)) !== release.record.provider)
      throw new Refusal("NOT_AUTHORIZED", `${account} is not an author of provider ${release.record.provider}, which published release ${id}`);
    const key = deltaKey(id, from);
    const existing = db.artifact(key);
    if (existing && existing.state !== "withdrawn")
      return reply.code(200).send({ releaseId: id, fromReleaseId: from, cid: existing.cid, accepted: true, already: true });
    if ((await gate.releaseStatus(id)) === "revoked") throw new Refusal("RELEASE_REVOKED", `release ${id} is revoked on the ledger`);
    const record = await recordOf(release, from);
    const written: string[] = [];
    try {
      const { artifact, leaves } = await screenSubmission(store, { id: key, record }, req.body, { onBlock: (c) => written.push(c) });
      await store.pin(artifact.cid);
      db.saveArtifact({ ...artifact, releaseId: key, acceptedAt: d.now() }, leaves, [...new Set(written)]);
      reply.header("connection", "keep-alive");
      return reply.code(201).send({
        releaseId: id,
        fromReleaseId: from,
        cid: artifact.cid,
        merkleRoot: artifact.merkleRoot,
        artifactSize: artifact.artifactSize.toString(),
        accepted: true,
      });
    } catch (err) {
      await store.deleteBlocks([...new Set(written)].filter((c) => db.releasesOfBlock(c).length === 0)).catch(() => {});
      throw err;
    }
  });

  /** The delta held here, once the device is entitled to the release itself. */
  const entitled = async (req: FastifyRequest) => {
    const { id, from } = ids(req);
    const { credential, installed, evidence } = await d.device(req);
    await checkEntitlement(gate, db, credential, installed, id, evidence);
    const artifact = db.artifact(deltaKey(id, from));
    if (!artifact || artifact.state === "withdrawn") throw new Refusal("DELTA_NOT_AVAILABLE", `this server holds no delta of release ${id} from ${from}`);
    return { id, from, credential, artifact };
  };

  app.get("/v1/releases/:releaseId/deltas/:fromId/manifest", async (req) => {
    const { id, from, credential, artifact } = await entitled(req);
    db.logDownload({
      at: d.now(),
      deviceId: credential.record.id,
      releaseId: id,
      kind: "manifest",
      rangeStart: null,
      rangeEnd: null,
      bytes: 0,
      complete: true,
    });
    return {
      releaseId: id,
      fromReleaseId: from,
      cid: artifact.cid,
      merkleRoot: artifact.merkleRoot,
      artifactSize: artifact.artifactSize.toString(),
      chunkSize: artifact.chunkSize,
      leaves: db.artifactLeaves(deltaKey(id, from)),
    };
  });

  app.get("/v1/releases/:releaseId/deltas/:fromId/artifact", async (req, reply) => {
    const { id, credential, artifact } = await entitled(req);
    const size = Number(artifact.artifactSize);
    const range = parseRange(req.headers.range, size);
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    reply.header("accept-ranges", "bytes").header("content-type", "application/octet-stream");
    if (range) reply.code(206).header("content-range", `bytes ${start}-${end}/${size}`);
    const stream = store.cat(artifact.cid, { offset: start, length: end - start + 1 });
    return reply.send(d.logged({ deviceId: credential.record.id, releaseId: id, kind: "delta", rangeStart: start, rangeEnd: end }, stream, end === size - 1));
  });
}
