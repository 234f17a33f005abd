import Fastify, { FastifyInstance, FastifyRequest } from "fastify";
import { Readable } from "node:stream";
import { id as roleId, isHexString } from "ethers";
import { WRAPPED_KEY_SIZE } from "../crypto/keyWrap";
import { ContentStoreError, type ContentStore } from "../storage/contentStore";
import { carStream } from "../storage/dagBlocks";
import { checkEntitlement, contextOf } from "./entitlement";
import type { LedgerGate } from "./ledgerGate";
import { Refusal, REFUSALS, type RefusalCode } from "./refusals";
import { RequestAuthenticator, RequestRefused, type RequestAuthLimits } from "../crypto/requestAuth";
import { RevocationFollower } from "./revocationFollower";
import type { DownloadEntry, ServerDatabase } from "./serverDatabase";
import { screenSubmission } from "./submission";
import { checkReleaseClaim, PreparedArtifacts, type PreparedLimits } from "./preparedRelease";
import { PREPARED_DEFAULTS } from "../core/serviceDefaults";
import { RELEASE_CLAIM_HEADER, type ReleaseClaim } from "../core/releaseClaim";
import { artifactSize, MIN_SERVED_CHUNK_SIZE } from "../crypto/artifactCipher";
import { parseRange } from "./byteRange";
import { registerDeltaRoutes } from "./deltaRoutes";
import type { ReleaseDeltas } from "../chain/contracts";

export interface FirmwareServerOptions {
  gate: LedgerGate;
  store: ContentStore;
  db: ServerDatabase;
  host?: string; // 127.0.0.1 unless told otherwise
  port?: number; // 0 picks a free port
  authWindowMs?: number;
  /** The signed requests' limits, if not REQUEST_AUTH_LIMITS (agent/crypto/requestAuth.ts). */
  authLimits?: Partial<RequestAuthLimits>;
  pollMs?: number;
  now?: () => number;
  log?: (line: string) => void;
  /** The origin devices and accounts sign for (default: the listening URL's). */
  publicOrigin?: string;
  /** A connection idle this long is closed (ms). */
  idleTimeoutMs?: number;
  /**
   * How long a kept-alive connection waits for the device's next request (ms; default 10 s): a
   * device's requests (chunk list, artifact, key) follow each other at once, and thousands of idle
   * devices must not hold a socket each for long afterwards.
   */
  keepAliveTimeoutMs?: number;
  /** Connections waiting to be accepted (default 4,096, as far as the kernel's somaxconn allows): a fleet that arrives at once is queued, not dropped. */
  backlog?: number;
  /** The deadline of a submission: `graceMs` plus its largest possible size at `minBytesPerSecond`. */
  submission?: Partial<typeof SUBMISSION_LIMITS>;
  /** ReleaseDeltas beside the registry (ADR 0018): with it the server takes and serves releases' delta artifacts. */
  deltas?: ReleaseDeltas;
  /** Artifacts of releases not yet published: their lifetime and per-provider limits (PREPARED_DEFAULTS). */
  prepared?: Partial<PreparedLimits>;
}

/**
 * A submission must arrive within SUBMISSION_LIMITS.graceMs plus its size at minBytesPerSecond
 * (a 100 MiB artifact: 30 s + 1,600 s), or it is refused SUBMISSION_TOO_SLOW: a connection that
 * sends a valid header and then trickles cannot hold its release's turn for good.
 */
export const SUBMISSION_LIMITS = { graceMs: 30_000, minBytesPerSecond: 64 * 1024 };

/** Bytes of an artifact read ahead of one connection's socket. */
const STREAM_BUFFER = 512 * 1024;

export interface RunningFirmwareServer {
  url: string;
  app: FastifyInstance;
  follower: RevocationFollower;
  /** Removes the prepared artifacts that expired unpublished now (it also runs on a timer); their release ids. */
  sweepPrepared(): Promise<string[]>;
  close(): Promise<void>;
}

const LOG_READER_ROLES = ["ADMINISTRATOR_ROLE", "AUDITOR_ROLE", "TRACKER_ROLE"].map((name) => roleId(name));

/**
 * The firmware server (X.1368 11.3): screens submissions against the ledger and pins what it
 * accepts, serves artifacts only to entitled devices (plain bytes with Range, or the IPFS
 * trustless-gateway formats), serves each device its wrapped key, logs every download and follows
 * revocations. It is untrusted for integrity: devices check every byte against the ledger record.
 */
export async function startFirmwareServer(o: FirmwareServerOptions): Promise<RunningFirmwareServer> {
  const { gate, store, db } = o;
  const now = o.now ?? Date.now;
  // Enrolment (devices) and authorship or a role (accounts) are checked, and cached, before a signed
  // request's signature is recovered and its nonce kept; the nonces are kept in the database.
  const auth = new RequestAuthenticator({
    now,
    store: db.nonces,
    limits: { ...(o.authWindowMs === undefined ? {} : { windowMs: o.authWindowMs }), ...o.authLimits },
    admission: {
      device: async (c) => {
        const standing = await gate.admitDevice(c); // a batch proof is checked here against its root: one read per batch
        if (standing === "unknown") return new Refusal("DEVICE_NOT_ENROLLED", `device ${c.record.id} is not enrolled with this record`);
        if (standing === "revoked") return new Refusal("DEVICE_REVOKED", `the record of device ${c.record.id} was withdrawn`);
        return undefined; // a suspended device is refused by the entitlement check, read live
      },
      // A batch's devices are admitted against its root: one question of the ledger for all of them.
      deviceLookup: (c) => (c.batchId === 0 ? undefined : `batch|${c.batchId}`),
      account: async (a) =>
        (await gate.authorProvider(a)) !== 0 || (await gate.hasAnyRole(a, LOG_READER_ROLES))
          ? undefined
          : new Refusal("NOT_AUTHORIZED", `${a} is neither an author of a provider nor holds an administrator, auditor or tracker role on the ledger`),
    },
  });
  const submissionLimits = { ...SUBMISSION_LIMITS, ...o.submission };
  const inFlight = new Map<string, number>(); // block CID -> submissions in progress that wrote it
  const prepared = new PreparedArtifacts({ gate, db, store, now, inFlight: (cid) => inFlight.has(cid), log: o.log }, { ...PREPARED_DEFAULTS, ...o.prepared });
  const follower = new RevocationFollower(gate, db, store, o.pollMs, (err) => o.log?.(`ledger follower: ${(err as Error).message}`));
  await follower.start();

  // On close, drop open connections: a device that stopped reading mid-artifact must not hold a
  // shutdown for the keep-alive timeout.
  // No implicit HEAD routes: Fastify would drain the artifact stream for them and log a download.
  const app = Fastify({
    logger: false,
    bodyLimit: 1024 * 1024,
    forceCloseConnections: true,
    exposeHeadRoutes: false,
    connectionTimeout: o.idleTimeoutMs ?? 60_000,
    keepAliveTimeout: o.keepAliveTimeoutMs ?? 10_000,
  });
  // Submissions stream through the screening into the store; JSON bodies are kept raw because
  // their bytes are signed.
  app.addContentTypeParser("application/octet-stream", (_req, payload, done) => done(null, payload));
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, _req, reply) => {
    let refusal: Refusal;
    if (err instanceof Refusal) refusal = err;
    else if (err instanceof RequestRefused) refusal = new Refusal(err.code as RefusalCode, err.message, err.details);
    else if (err instanceof ContentStoreError) refusal = new Refusal("STORE_UNAVAILABLE", err.message, { reason: err.code });
    else if ((err as { statusCode?: number }).statusCode === 413) refusal = new Refusal("BODY_TOO_LARGE", (err as Error).message);
    else if ((err as { statusCode?: number }).statusCode === 415) refusal = new Refusal("UNSUPPORTED_MEDIA_TYPE", (err as Error).message);
    else if ((err as { statusCode?: number }).statusCode && (err as { statusCode: number }).statusCode < 500)
      refusal = new Refusal("BAD_REQUEST", (err as Error).message);
    else {
      o.log?.(`internal error: ${(err as Error).stack ?? err}`);
      return reply.code(500).send({ error: { code: "INTERNAL", message: "internal server error" } });
    }
    if (refusal.code === "LEDGER_UNAVAILABLE" || refusal.code === "STORE_UNAVAILABLE") o.log?.(`${refusal.code}: ${refusal.message}`);
    if (refusal.code === "RANGE_NOT_SATISFIABLE" && typeof refusal.details.size === "number") reply.header("content-range", `bytes */${refusal.details.size}`);
    // The server's clock, for a client whose clock is off to correct its request time (the
    // details carry it in ms too); Node's own Date header would not follow an injected clock.
    if (refusal.code === "AUTH_STALE") reply.header("date", new Date(now()).toUTCString());
    return reply.code(refusal.status).send({ error: { code: refusal.code, message: refusal.message, hint: refusal.hint, details: refusal.details } });
  });

  let listening = "";
  const origin = () => listening;
  const releaseId = (req: FastifyRequest): string => {
    const id = (req.params as { releaseId: string }).releaseId;
    if (!isHexString(id, 32)) throw new Refusal("BAD_REQUEST", "a release id is 32 bytes of hex (0x + 64 hex digits)");
    return id.toLowerCase();
  };
  const device = async (req: FastifyRequest) => {
    const { credential, context } = await auth.device({ method: req.method, path: req.url, headers: req.headers, audience: origin() });
    return { credential, ...contextOf(context) };
  };
  // Pulled as the socket drains (backpressure): at most about STREAM_BUFFER bytes wait per
  // connection, whatever the artifact's size, so a thousand slow devices cost a thousand buffers.
  const logged = (entry: Omit<DownloadEntry, "id" | "at" | "bytes" | "complete">, stream: AsyncIterable<Uint8Array>, finalByte: boolean) =>
    Readable.from(
      (async function* () {
        let bytes = 0;
        let done = false;
        try {
          for await (const piece of stream) {
            bytes += piece.length;
            yield piece;
          }
          done = true;
        } finally {
          db.logDownload({ ...entry, at: now(), bytes, complete: done && finalByte });
        }
      })(),
      { objectMode: false, highWaterMark: STREAM_BUFFER },
    );

  app.get("/v1/health", async () => ({ ok: true, store: store.kind, registry: String(gate.registry.target), head: await gate.blockNumber() }));

  app.get("/v1/errors", async () => Object.fromEntries(Object.entries(REFUSALS).map(([code, [status, hint]]) => [code, { status, hint }])));

  app.get("/v1/releases", async () =>
    db.artifacts().map((a) => ({ releaseId: a.releaseId, cid: a.cid, artifactSize: a.artifactSize.toString(), state: a.state, acceptedAt: a.acceptedAt })),
  );

  // CAP-11.3-a: an author of the release's provider submits (a signed request, without the body:
  // the ledger record binds the bytes); only bytes that match the record are kept. Submissions of
  // different releases run at once; those of one release take turns, each within its deadline.
  const turns = new Map<string, Promise<unknown>>(); // release id -> the submission in progress
  app.post("/v1/releases/:releaseId/artifact", async (req, reply) => {
    const id = releaseId(req);
    if (!(req.body instanceof Readable)) throw new Refusal("BAD_REQUEST", "send the artifact as application/octet-stream");
    const body = req.body;
    // A refusal closes the connection: what the client still sends is not read.
    reply.header("connection", "close");
    const account = await auth.account({ method: req.method, path: req.url, headers: req.headers, audience: origin() });
    // A release not yet on the ledger comes with its record and signature (issue 17): it is checked
    // as the registry will check it, screened the same way, and kept "prepared", never served,
    // until the release is published. Without the header, or once published, the ledger's record.
    const claimHeader = req.headers[RELEASE_CLAIM_HEADER];
    let claim: ReleaseClaim | undefined;
    if (typeof claimHeader === "string" && (await gate.releaseStatus(id)) === "none") claim = await checkReleaseClaim(gate, account, id, claimHeader);
    const release = claim ? { id, record: claim.record } : await gate.release(id);
    if (!claim && (await gate.authorProvider(account)) !== release.record.provider) {
      throw new Refusal("NOT_AUTHORIZED", `${account} is not an author of provider ${release.record.provider}, which published release ${id}`);
    }
    const turn = (turns.get(id) ?? Promise.resolve()).then(async () => {
      const existing = db.artifact(id);
      if (existing?.state === "prepared" && !claim) db.promoteArtifact(id); // published since: serve it
      if (existing?.state === "serving" || (existing?.state === "prepared" && !claim))
        return { code: 200, answer: { releaseId: id, cid: existing.cid, accepted: true, already: true, state: "serving" } };
      if (existing?.state === "prepared")
        return { code: 200, answer: { releaseId: id, cid: existing.cid, accepted: true, already: true, state: "prepared", expiresAt: existing.expiresAt } };
      const admissible = async () => {
        if ((await gate.releaseStatus(id)) === "revoked") throw new Refusal("RELEASE_REVOKED", `release ${id} is revoked on the ledger`);
        if (await gate.providerBarred(release.record.provider))
          throw new Refusal("PROVIDER_BARRED", `provider ${release.record.provider} is barred on the ledger`);
      };
      await admissible();
      const unreserve = claim ? await prepared.reserve(claim) : () => {};
      const written: string[] = [];
      const ours = new Set<string>();
      const onBlock = (cid: string) => {
        written.push(cid);
        if (ours.has(cid)) return;
        ours.add(cid);
        inFlight.set(cid, (inFlight.get(cid) ?? 0) + 1);
      };
      try {
        const deadlineMs =
          submissionLimits.graceMs +
          Math.ceil((Number(artifactSize(release.record.fileSize, MIN_SERVED_CHUNK_SIZE)) / submissionLimits.minBytesPerSecond) * 1000);
        const { artifact, leaves } = await screenSubmission(store, release, withinDeadline(body, deadlineMs, submissionLimits), { onBlock });
        await admissible(); // again: the ledger may have moved while the bytes streamed in
        // Published while the bytes streamed in: served at once.
        const stillPrepared = claim !== undefined && (await gate.releaseStatus(id)) === "none";
        const expiresAt = stillPrepared ? prepared.expiresAt() : undefined;
        await store.pin(artifact.cid);
        db.saveArtifact({ ...artifact, acceptedAt: now() }, leaves, [...new Set(written)], expiresAt === undefined ? undefined : { expiresAt });
        reply.header("connection", "keep-alive");
        return {
          code: 201,
          answer: {
            releaseId: id,
            cid: artifact.cid,
            merkleRoot: artifact.merkleRoot,
            artifactSize: artifact.artifactSize.toString(),
            accepted: true,
            state: stillPrepared ? "prepared" : "serving",
            ...(expiresAt === undefined ? {} : { expiresAt }),
          },
        };
      } catch (err) {
        // Blocks that an accepted release or another submission in progress also holds are kept.
        const mine = [...ours];
        release_(ours);
        await store
          .deleteBlocks(mine.filter((c) => db.releasesOfBlock(c).length === 0 && !inFlight.has(c)))
          .catch((e) => o.log?.(`cleaning a refused submission: ${(e as Error).message}`));
        throw err;
      } finally {
        release_(ours);
        unreserve();
      }
    });
    const settled = turn.catch(() => {});
    turns.set(id, settled);
    void settled.then(() => {
      if (turns.get(id) === settled) turns.delete(id);
    });
    const { code, answer } = await turn;
    return reply.code(code).send(answer);
  });
  function release_(cids: Set<string>): void {
    for (const c of cids) {
      const n = (inFlight.get(c) ?? 1) - 1;
      if (n > 0) inFlight.set(c, n);
      else inFlight.delete(c);
    }
    cids.clear();
  }

  // Wrapped keys come from an author of the release's provider, in a signed request.
  app.put("/v1/releases/:releaseId/keys", { bodyLimit: 4 * 1024 * 1024 }, async (req, reply) => {
    const id = releaseId(req);
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const account = await auth.account({ method: req.method, path: req.url, headers: req.headers, body: raw, audience: origin() });
    // Keys of a release not yet published are taken once its artifact is here, prepared (checked
    // then against its author's signature), and kept with it: removed with it if it expires.
    const held = db.artifact(id);
    const provider = held?.state === "prepared" && (await gate.releaseStatus(id)) === "none" ? held.providerId : (await gate.release(id)).record.provider;
    if ((await gate.authorProvider(account)) !== provider) {
      throw new Refusal("NOT_AUTHORIZED", `${account} is not an author of provider ${provider}`);
    }
    if (held?.state === "prepared" && (await gate.providerBarred(provider)))
      throw new Refusal("PROVIDER_BARRED", `provider ${provider} is barred on the ledger`);
    const keys = parseKeys(raw);
    db.saveWrappedKeys(id, account, keys, now());
    return reply.code(200).send({ releaseId: id, granted: keys.length });
  });

  app.get("/v1/releases/:releaseId/manifest", async (req) => {
    const id = releaseId(req);
    const { credential, installed, evidence } = await device(req);
    const { artifact } = await checkEntitlement(gate, db, credential, installed, id, evidence);
    db.logDownload({ at: now(), deviceId: credential.record.id, releaseId: id, kind: "manifest", rangeStart: null, rangeEnd: null, bytes: 0, complete: true });
    return {
      releaseId: id,
      cid: artifact.cid,
      merkleRoot: artifact.merkleRoot,
      artifactSize: artifact.artifactSize.toString(),
      chunkSize: artifact.chunkSize,
      leaves: db.artifactLeaves(id),
    };
  });

  app.get("/v1/releases/:releaseId/key", async (req) => {
    const id = releaseId(req);
    const { credential, installed, evidence } = await device(req);
    const { wrappedKey } = await checkEntitlement(gate, db, credential, installed, id, evidence);
    db.logDownload({
      at: now(),
      deviceId: credential.record.id,
      releaseId: id,
      kind: "key",
      rangeStart: null,
      rangeEnd: null,
      bytes: wrappedKey.length,
      complete: true,
    });
    return { releaseId: id, deviceId: credential.record.id, wrappedKey: "0x" + wrappedKey.toString("hex") };
  });

  // CAP-11.3-b: plain bytes, resumable with a Range header.
  app.get("/v1/releases/:releaseId/artifact", async (req, reply) => {
    const id = releaseId(req);
    const { credential, installed, evidence } = await device(req);
    const { artifact } = await checkEntitlement(gate, db, credential, installed, id, evidence);
    const size = Number(artifact.artifactSize);
    const range = parseRange(req.headers.range, size);
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    // No content-length: the stream is chunked, and a device bounds it by the ledger record anyway.
    reply.header("accept-ranges", "bytes").header("content-type", "application/octet-stream");
    reply.header("x-ota-cid", artifact.cid).header("x-ota-merkle-root", artifact.merkleRoot);
    if (range) reply.code(206).header("content-range", `bytes ${start}-${end}/${size}`);
    const stream = store.cat(artifact.cid, { offset: start, length: end - start + 1 });
    return reply.send(logged({ deviceId: credential.record.id, releaseId: id, kind: "artifact", rangeStart: start, rangeEnd: end }, stream, end === size - 1));
  });

  // The artifact's size and ranges, with the same checks, without reading or logging anything.
  app.head("/v1/releases/:releaseId/artifact", async (req, reply) => {
    const id = releaseId(req);
    const { credential, installed, evidence } = await device(req);
    const { artifact } = await checkEntitlement(gate, db, credential, installed, id, evidence);
    reply.header("accept-ranges", "bytes").header("content-type", "application/octet-stream").header("content-length", artifact.artifactSize.toString());
    return reply.header("x-ota-cid", artifact.cid).header("x-ota-merkle-root", artifact.merkleRoot).send();
  });

  // CAP-11.3-b: the IPFS trustless-gateway formats (a raw block, or a CAR of the whole DAG).
  app.get("/ipfs/:cid", async (req, reply) => {
    const cid = (req.params as { cid: string }).cid;
    const format = gatewayFormat(req);
    const { credential, installed, evidence } = await device(req);
    const candidates = db.releasesOfBlock(cid);
    if (candidates.length === 0) throw new Refusal("BLOCK_UNKNOWN", `this server serves no release containing ${cid}`);
    let lastRefusal: unknown;
    for (const id of candidates) {
      try {
        await checkEntitlement(gate, db, credential, installed, id, evidence);
      } catch (err) {
        lastRefusal = err;
        continue;
      }
      reply.header("x-content-type-options", "nosniff").header("cache-control", "private, no-store");
      if (format === "raw") {
        const block = await store.getBlock(cid);
        db.logDownload({
          at: now(),
          deviceId: credential.record.id,
          releaseId: id,
          kind: "block",
          rangeStart: null,
          rangeEnd: null,
          bytes: block.length,
          complete: false,
        });
        return reply.header("content-type", "application/vnd.ipld.raw").send(Buffer.from(block));
      }
      reply.header("content-type", "application/vnd.ipld.car; version=1");
      return reply.send(logged({ deviceId: credential.record.id, releaseId: id, kind: "car", rangeStart: null, rangeEnd: null }, carStream(store, cid), true));
    }
    throw lastRefusal;
  });

  if (o.deltas)
    registerDeltaRoutes(app, {
      gate,
      store,
      db,
      deltas: o.deltas,
      account: (req) => auth.account({ method: req.method, path: req.url, headers: req.headers, audience: origin() }),
      device,
      logged,
      now,
    });

  // CAP-11.3-f: the download log, for administrators, auditors and trackers.
  app.get("/v1/downloads", async (req) => {
    const account = await auth.account({ method: req.method, path: req.url, headers: req.headers, audience: origin() });
    if (!(await gate.hasAnyRole(account, LOG_READER_ROLES))) throw new Refusal("NOT_AUTHORIZED", `${account} holds no administrator, auditor or tracker role`);
    const q = req.query as Record<string, unknown>;
    for (const [k, v] of Object.entries(q)) if (typeof v !== "string") throw new Refusal("BAD_REQUEST", `give ${k} once`);
    const since = q.since === undefined ? undefined : Number(q.since);
    const after = q.after === undefined ? undefined : Number(q.after);
    const limit = q.limit === undefined ? undefined : Number(q.limit);
    if (
      (since !== undefined && !Number.isSafeInteger(since)) ||
      (after !== undefined && !Number.isSafeInteger(after)) ||
      (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0))
    ) {
      throw new Refusal("BAD_REQUEST", "since is ms since the epoch, after an entry id (to page on) and limit a positive integer");
    }
    return { downloads: db.downloads({ deviceId: q.device as string | undefined, releaseId: q.release as string | undefined, since, after, limit }) };
  });

  let address: string;
  try {
    address = await app.listen({ host: o.host ?? "127.0.0.1", port: o.port ?? 0, backlog: o.backlog ?? 4096 });
  } catch (err) {
    await follower.stop(); // e.g. the port is taken: leave nothing running
    await app.close();
    throw err;
  }
  listening = new URL(o.publicOrigin ?? address).origin;
  // Expired prepared artifacts are removed within a tenth of their lifetime (at most an hour) after expiry.
  const sweep = () => prepared.sweep().catch((err: unknown) => (o.log?.(`sweeping prepared artifacts: ${(err as Error).message}`), []));
  const sweeper = setInterval(() => void sweep(), Math.min(prepared.limits.ttlMs / 10, 3600_000));
  sweeper.unref();
  return {
    url: address,
    app,
    follower,
    sweepPrepared: () => prepared.sweep(),
    async close() {
      clearInterval(sweeper);
      await follower.stop();
      await app.close();
    },
  };
}

/**
 * The submitted bytes, refused SUBMISSION_TOO_SLOW once `deadlineMs` has passed since the first
 * was asked for: a stalled or trickling connection ends its release's turn at its deadline.
 */
async function* withinDeadline(body: Readable, deadlineMs: number, limits: typeof SUBMISSION_LIMITS): AsyncGenerator<Uint8Array> {
  const pieces = body[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Refusal("SUBMISSION_TOO_SLOW", `the artifact did not arrive within ${deadlineMs} ms`, {
            deadlineMs,
            graceMs: limits.graceMs,
            minBytesPerSecond: limits.minBytesPerSecond,
          }),
        ),
      deadlineMs,
    );
  });
  late.catch(() => {});
  try {
    for (;;) {
      const next = await Promise.race([pieces.next(), late]);
      if (next.done) return;
      yield next.value;
    }
  } finally {
    clearTimeout(timer);
  }
}

function gatewayFormat(req: FastifyRequest): "raw" | "car" {
  const format = (req.query as { format?: string }).format;
  const accept = req.headers.accept ?? "";
  if (format === "raw" || (!format && accept.includes("application/vnd.ipld.raw"))) return "raw";
  if (format === "car" || (!format && accept.includes("application/vnd.ipld.car"))) return "car";
  throw new Refusal("FORMAT_NOT_ACCEPTABLE", "this gateway serves only verifiable responses: raw blocks or CARs");
}

function parseKeys(raw: Buffer): { deviceId: string; wrappedKey: Buffer }[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new Refusal("BAD_REQUEST", 'send the keys as JSON: {"keys": [{"deviceId": "0x...", "wrappedKey": "0x..."}]}');
  }
  const keys = (parsed as { keys?: unknown }).keys;
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > 10_000) throw new Refusal("BAD_REQUEST", "keys must be a list of 1..10000 entries");
  return keys.map((k: { deviceId?: unknown; wrappedKey?: unknown }, i) => {
    if (!isHexString(k?.deviceId, 32)) throw new Refusal("KEYS_MALFORMED", `key ${i}: deviceId must be 32 bytes of hex`);
    if (!isHexString(k.wrappedKey, WRAPPED_KEY_SIZE) || !(k.wrappedKey as string).startsWith("0x01")) {
      throw new Refusal("KEYS_MALFORMED", `key ${i}: wrappedKey must be the ${WRAPPED_KEY_SIZE}-byte key wrap (0x01...)`);
    }
    return { deviceId: (k.deviceId as string).toLowerCase(), wrappedKey: Buffer.from((k.wrappedKey as string).slice(2), "hex") };
  });
}
