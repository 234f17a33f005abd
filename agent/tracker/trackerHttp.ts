import { isAddress } from "ethers";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { timingSafeEqual, createHash } from "node:crypto";
import { AuthenticationError, InputError, OtaError } from "../core/errors";
import { RequestAuthenticator, RequestRefused } from "../io/requestAuth";
import { SqliteNonceStore } from "../io/sqliteNonceStore";
import type { Envelope } from "../crypto/sealedMessage";
import { DEVICE_STATUSES, type DeviceStatus } from "./fleetViews";
import { TRACKER_OPENAPI } from "./openapi";
import type { TrackerModule } from "./trackerModule";
import { devicesMatching, handleUpdateRequest, requestProgress, UpdateRequestRefused } from "./updateRequests";
import { checkGroupName, MAX_GROUPS, MAX_TAGS_PER_DEVICE, parseGroupRequest, parseTagChange, parseTagQuery, type QueryTerm } from "./deviceTags";
import { isReleaseId, parseCohortsRequest, requireAdministrator } from "./rolloutCohorts";
import { parseEvidenceRequest } from "./evidenceRequests";
import { RefusalNames } from "../chain/policyExplanation";
import type { StatusReport } from "../core/statusReport";
import { reportEnvelope } from "./reportIntake";
import { BODY_MAX_BYTES, REPORT_BODY_MAX_BYTES } from "../core/wireLimits";

export interface TrackerHttpOptions {
  host?: string; // 127.0.0.1 unless told otherwise
  port?: number; // 0 picks a free port
  /** If set, read endpoints and the dashboard's data need `Authorization: Bearer <token>`. */
  apiToken?: string;
  /** The origin administrators sign update requests for (default: the listening URL's). */
  publicOrigin?: string;
  log?: (line: string) => void;
}

export interface RunningTrackerHttp {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

const DASHBOARD_DIR = path.join(__dirname, "dashboard");
const DASHBOARD_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

/** Codes answered with something other than their family's status. */
const STATUS_OF_CODE: Record<string, number> = {
  REPORT_REPLAYED: 409,
  MESSAGE_REPLAYED: 409,
  AUTH_REPLAY: 409,
  AUTH_QUOTA: 429,
  REPORT_DEVICE_NOT_ACTIVE: 403,
  MODULE_NOT_CHILD: 403,
  MESSAGE_NOT_FOR_ME: 400,
  MESSAGE_MALFORMED: 400,
  REPORT_MALFORMED: 400,
  DEVICE_UNKNOWN: 404,
  GROUP_UNKNOWN: 404,
  REQUEST_UNKNOWN: 404,
  RELEASE_UNKNOWN: 404,
  ANCHOR_UNKNOWN: 404,
  ANCHOR_RECORDS_PRUNED: 404,
  DEVICE_NOT_IN_ANCHOR: 404,
  ROLLOUT_ROOT_MISMATCH: 409,
  POLICY_NOT_ATTACHED: 409,
  POLICY_READS_WHOLE_EVIDENCE: 409,
  EVIDENCE_CONFLICT: 409,
  EVIDENCE_INVALID: 400,
  LEDGER_UNAVAILABLE: 503,
  SERVER_BUSY: 503,
};

/**
 * The tracker's HTTP API (ADR 0004, OpenAPI at /openapi.json) and its dashboard. Devices and
 * modules below post sealed messages (their seal and signature authenticate them); readers may
 * need a bearer token; administrators sign their update requests.
 */
export async function startTrackerHttp(tracker: TrackerModule, o: TrackerHttpOptions = {}): Promise<RunningTrackerHttp> {
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_MAX_BYTES,
    forceCloseConnections: true,
    exposeHeadRoutes: false,
    connectionTimeout: 60_000,
    // A path Fastify cannot route (bad percent-encoding: 400; a parameter over 100 characters: 414)
    // is refused in the API's error shape too, not Fastify's own.
    frameworkErrors: (err, _req, reply) => void (reply as FastifyReply).code(err.statusCode ?? 400).send(errorBody("BAD_REQUEST", err.message)),
  });
  // Only administrators sign requests here: a key without the role is refused (and remembered)
  // before its signature is recovered or its nonce kept. The nonces are kept in the fleet database.
  const nonces = new SqliteNonceStore(tracker.store.file);
  const auth = new RequestAuthenticator({
    store: nonces,
    admission: {
      account: (address) =>
        requireAdministrator(tracker.options.chain.registry, address).then(
          () => undefined,
          (err: unknown) => {
            if (err instanceof UpdateRequestRefused) return err;
            throw err;
          },
        ),
    },
  });
  let url = "";
  const origin = () => o.publicOrigin ?? url;
  const refusalNames = new RefusalNames(tracker.options.chain.provider);
  // Raw JSON bodies: an update request's bytes are signed.
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    if ((err as { code?: string }).code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      const limit = req.routeOptions.bodyLimit ?? BODY_MAX_BYTES;
      const what = req.routeOptions.url === "/v1/reports" ? "a status report" : "this request's body";
      return reply.code(413).send(errorBody("BAD_REQUEST", `${what} is at most ${limit} bytes (agent/core/wireLimits.ts); send a smaller one`));
    }
    if (err instanceof UpdateRequestRefused) return reply.code(err.status).send(errorBody(err.code, err.message));
    if (err instanceof OtaError) {
      const status =
        STATUS_OF_CODE[err.code] ?? (err instanceof RequestRefused || err instanceof AuthenticationError ? 401 : err instanceof InputError ? 400 : 500);
      if (status >= 500) o.log?.(`${err.code}: ${err.message}`);
      return reply.code(status).send(errorBody(err.code, err.message));
    }
    const statusCode = (err as { statusCode?: number }).statusCode;
    if (statusCode && statusCode < 500) return reply.code(statusCode).send(errorBody("BAD_REQUEST", (err as Error).message));
    o.log?.(`internal error: ${(err as Error).stack ?? err}`);
    return reply.code(500).send(errorBody("INTERNAL", "internal error"));
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody("NOT_FOUND", `no route ${req.method} ${req.url.split("?")[0]}: see /openapi.json`)));

  const reader = (req: FastifyRequest) => {
    if (!o.apiToken) return;
    const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "";
    if (!sameSecret(given, o.apiToken))
      throw new AuthenticationError("UNAUTHORIZED", "this tracker's read API needs `Authorization: Bearer <tracker.apiToken>`");
  };
  const json = (body: unknown): unknown => {
    if (!Buffer.isBuffer(body) || body.length === 0) throw new InputError("BAD_REQUEST", "the body must be JSON (content-type: application/json)");
    try {
      return JSON.parse(body.toString("utf8"));
    } catch {
      throw new InputError("BAD_REQUEST", "the body is not valid JSON");
    }
  };

  // Not "ok" while the ledger stream is halted by a reorganisation below its window (issue 16): the
  // fleet view no longer follows the chain until an operator runs `ota-ledger tracker resync`.
  app.get("/v1/health", async (_req, reply) => {
    const halted = tracker.stream.halted;
    if (halted) reply.code(503);
    return {
      status: halted ? "ledger-halted" : "ok",
      module: { id: tracker.id, role: tracker.role, parent: tracker.options.parent?.id.toLowerCase() ?? null, publicKey: tracker.publicKey },
      ledger: {
        block: tracker.stream.position?.block ?? null,
        // How fresh the chain its node shows is: a frozen or lagging endpoint keeps answering with old blocks.
        newestBlockTime: tracker.stream.newestBlock?.timestamp ?? null,
        ageSeconds: tracker.stream.newestBlock ? Math.max(0, Math.floor(Date.now() / 1000) - tracker.stream.newestBlock.timestamp) : null,
        ...(halted && {
          halted: { code: halted.code, message: halted.message, fix: "stop the tracker and run `ota-ledger tracker resync` (docs/guides/operations.md)" },
        }),
      },
      devices: tracker.store.devices.count(),
      upstream: tracker.options.parent ? tracker.upstreamState : null,
    };
  });

  // Anyone may post here: the body is bounded by the largest legitimate report (wireLimits.ts),
  // refused by its content-length before it is read, parsed once, and its envelope checked before
  // it is queued for opening (a key exchange and a signature recovery on a worker thread).
  app.post("/v1/reports", { bodyLimit: REPORT_BODY_MAX_BYTES }, async (req) =>
    tracker.takeReport(reportEnvelope(json(req.body), tracker.id)).then((r) => ({ accepted: true, ...r })),
  );
  app.post("/v1/downstream", async (req) => tracker.takeDownstream(json(req.body) as Envelope));

  app.get("/v1/fleet/summary", async (req) => {
    reader(req);
    return tracker.views.summary();
  });
  app.get("/v1/fleet/devices", async (req) => {
    reader(req);
    const q = req.query as Record<string, string | undefined>;
    if (q.status !== undefined && !(DEVICE_STATUSES as readonly string[]).includes(q.status))
      throw new InputError("BAD_REQUEST", `status must be one of ${DEVICE_STATUSES.join(", ")}`);
    return tracker.views.devices({
      status: q.status as DeviceStatus | undefined,
      network: q.network || undefined,
      region: q.region || undefined,
      hardware: intParam(q.hardware, "hardware"),
      q: q.q || undefined,
      tags: tagTerms(tracker, req.query as Record<string, string | string[] | undefined>),
      limit: intParam(q.limit, "limit"),
      offset: intParam(q.offset, "offset"),
    });
  });
  app.get("/v1/fleet/devices/:id", async (req) => {
    reader(req);
    const found = tracker.views.device((req.params as { id: string }).id);
    if (!found) throw new OtaError("DEVICE_UNKNOWN", "no such device in this tracker's fleet");
    // A policy's refusal the device reported, with the policy that decided and its reason's name (issue 18).
    const last = (found.reports[0]?.body as StatusReport | undefined)?.lastResult;
    const refused = last?.code === "POLICY_REFUSED" && last.policy && isAddress(last.policy.address) ? last.policy : undefined;
    const policyRefusal = refused ? await refusalNames.of(refused.address, String(refused.reason)) : null;
    return { ...found, policyRefusal: policyRefusal && { releaseId: last!.releaseId, ...policyRefusal } };
  });
  app.get("/v1/releases", async (req) => {
    reader(req);
    return { releases: tracker.views.releases() };
  });
  app.get("/v1/releases/:id/adoption", async (req) => {
    reader(req);
    const id = (req.params as { id: string }).id.toLowerCase();
    if (!tracker.store.catalogue.release(id)) throw new OtaError("RELEASE_UNKNOWN", `release ${id} is not in this tracker's mirror of the ledger`);
    return { releaseId: id, points: tracker.store.rollouts.adoption(id) };
  });
  app.get("/v1/rollouts", async (req) => {
    reader(req);
    return { rollouts: tracker.views.rollouts() };
  });
  app.get("/v1/modules", async (req) => {
    reader(req);
    return { modules: tracker.views.modules() };
  });

  app.post("/v1/update-requests", async (req, reply) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const account = await auth.account({ method: req.method, path: req.url, headers: req.headers, body: raw, audience: origin() });
    const { registry, policies, bundles, domain, fromBlock } = tracker.options.chain;
    const result = await handleUpdateRequest({ registry, policies, bundles, domain, fromBlock, db: tracker.store, now: tracker.now }, account, json(raw));
    o.log?.(
      `update request ${result.requestId} by ${account}: ${result.bundle ? "bundle" : "release"} ${result.releaseId}, ${result.decided} decided, ${result.refused.length} refused${
        result.deadline === null ? "" : `, deadline ${new Date(result.deadline).toISOString()}`
      }`,
    );
    return reply.send(result);
  });
  // Campaigns (issue 19, item 11): the requests taken and their progress.
  app.get("/v1/update-requests", async (req) => {
    reader(req);
    const q = req.query as Record<string, string | undefined>;
    const limit = Math.min(intParam(q.limit, "limit") ?? 50, 1000);
    if (limit < 1) throw new InputError("BAD_REQUEST", "limit must be at least 1");
    const { total, requests } = tracker.store.requests.list(limit, intParam(q.offset, "offset") ?? 0);
    return { total, requests: requests.map((r) => requestProgress(tracker.store, r.id, tracker.now())!) };
  });
  app.get("/v1/update-requests/:id", async (req) => {
    reader(req);
    const id = (req.params as { id: string }).id.toLowerCase();
    if (!/^0x[0-9a-f]{32}$/.test(id)) throw new InputError("BAD_REQUEST", "an update request id is 0x followed by 32 hex digits");
    const progress = requestProgress(tracker.store, id, tracker.now(), { devices: true });
    if (!progress) throw new OtaError("REQUEST_UNKNOWN", `no update request ${id} on this tracker: \`ota-ledger update status\` lists them`);
    return progress;
  });

  app.get("/v1/anchors", async (req) => {
    reader(req);
    const q = req.query as Record<string, string | undefined>;
    const limit = Math.min(intParam(q.limit, "limit") ?? 50, 1000);
    if (limit < 1) throw new InputError("BAD_REQUEST", "limit must be at least 1");
    if (!tracker.anchoring) return { total: 0, anchors: [] };
    return tracker.anchoring.list(limit, intParam(q.offset, "offset") ?? 0);
  });
  app.get("/v1/anchors/:index/devices/:deviceId", async (req) => {
    reader(req);
    const p = req.params as { index: string; deviceId: string };
    const index = intParam(p.index, "the anchor index")!;
    if (!tracker.anchoring) throw new OtaError("ANCHOR_UNKNOWN", `this tracker made no anchor ${index}`);
    return tracker.anchoring.proof(index, p.deviceId.toLowerCase());
  });

  /**
   * An administrator's signed request (tags, groups): the signature, the body as `parse` takes it
   * (none for a DELETE), the role.
   */
  const administrator = async <T>(req: FastifyRequest, parse: (body: unknown) => T) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const account = await auth.account({ method: req.method, path: req.url, headers: req.headers, body: raw, audience: origin() });
    const body = parse(req.method === "DELETE" && raw.length === 0 ? undefined : json(raw));
    await requireAdministrator(tracker.options.chain.registry, account);
    return { account, body };
  };
  /**
   * An administrator's signed request about one mirrored release (rollout cohorts, policy
   * evidence): the signature, the release id in the path, the body as `parse` takes it, the role.
   */
  const administratorsRequest = async <T>(req: FastifyRequest, parse: (body: unknown) => T) => {
    const params = req.params as { releaseId?: string; id?: string };
    const releaseId = (params.releaseId ?? params.id ?? "").toLowerCase();
    const { account, body } = await administrator(req, (b) => {
      if (!isReleaseId(releaseId)) throw new InputError("BAD_REQUEST", "the release id in the path is 0x followed by 64 hex digits");
      return parse(b);
    });
    if (!tracker.store.catalogue.release(releaseId))
      throw new OtaError(
        "RELEASE_UNKNOWN",
        `release ${releaseId} is not in this tracker's mirror of the ledger (yet): check the id, or retry once the tracker has followed the ledger`,
      );
    return { account, releaseId, body };
  };
  app.post("/v1/rollouts/:releaseId/cohorts", async (req, reply) => {
    const { account, releaseId, body } = await administratorsRequest(req, parseCohortsRequest);
    const result = await tracker.setRolloutCohorts(releaseId, body.waves);
    o.log?.(`rollout cohorts of release ${releaseId} by ${account}: ${result.devices} device(s) in ${result.roots.length} wave(s)`);
    return reply.send({ releaseId, devices: result.devices, roots: result.roots });
  });
  // `:id`, as GET /v1/releases/:id/adoption: Fastify takes one parameter name per path segment.
  app.post("/v1/releases/:id/evidence", async (req, reply) => {
    const { account, releaseId, body } = await administratorsRequest(req, parseEvidenceRequest);
    const result = await tracker.setPolicyEvidence(releaseId, body.policy, body.devices);
    o.log?.(`policy evidence of release ${releaseId} for ${body.policy || "every policy"} by ${account}: ${result.devices} device(s)`);
    return reply.send({ releaseId, policy: body.policy || null, devices: result.devices });
  });

  // Device tags and groups (issue 19, item 11): administrators write, readers read.
  app.post("/v1/fleet/devices/:id/tags", async (req, reply) => {
    const deviceId = (req.params as { id: string }).id.toLowerCase();
    const { account, body } = await administrator(req, (b) => {
      if (!/^0x[0-9a-f]{64}$/.test(deviceId)) throw new InputError("BAD_REQUEST", "the device id in the path is 0x followed by 64 hex digits");
      return parseTagChange(b);
    });
    if (!tracker.store.devices.get(deviceId)) throw new OtaError("DEVICE_UNKNOWN", `no device ${deviceId} in this tracker's fleet (as it follows the ledger)`);
    const tags = tracker.store.tags.change(deviceId, body.set, body.remove, MAX_TAGS_PER_DEVICE);
    o.log?.(`tags of device ${deviceId} by ${account}: set ${Object.keys(body.set).join(",") || "-"}, removed ${body.remove.join(",") || "-"}`);
    const joined = await tracker.tagsChanged([deviceId]);
    return reply.send({ deviceId, tags, joinedRequests: joined });
  });
  app.get("/v1/groups", async (req) => {
    reader(req);
    return { groups: tracker.store.groups.list().map((g) => ({ ...g, devices: devicesMatching(tracker.store, parseTagQuery(g.query)).length })) };
  });
  app.post("/v1/groups", async (req, reply) => {
    const { account, body } = await administrator(req, parseGroupRequest);
    if (!tracker.store.groups.get(body.name) && tracker.store.groups.list().length >= MAX_GROUPS)
      throw new InputError("GROUP_LIMIT", `a tracker keeps at most ${MAX_GROUPS} groups: remove one first`);
    tracker.store.groups.put(body.name, body.query, account, tracker.now());
    o.log?.(`group ${body.name} = ${body.query} by ${account}`);
    const devices = devicesMatching(tracker.store, body.terms);
    await tracker.tagsChanged(devices.slice(0, 100_000));
    return reply.send({ name: body.name, query: body.query, devices: devices.length });
  });
  app.delete("/v1/groups/:name", async (req, reply) => {
    const name = (req.params as { name: string }).name;
    const { account } = await administrator(req, () => checkGroupName(name));
    if (!tracker.store.groups.delete(name)) throw new OtaError("GROUP_UNKNOWN", `no group "${name}" on this tracker`);
    o.log?.(`group ${name} removed by ${account}`);
    return reply.send({ name, removed: true });
  });

  app.get("/openapi.json", async () => TRACKER_OPENAPI);
  app.get("/", async (_req, reply) => sendDashboardFile(reply, "index.html"));
  app.get("/dashboard/:file", async (req, reply) => sendDashboardFile(reply, (req.params as { file: string }).file));

  try {
    url = await app.listen({ host: o.host ?? "127.0.0.1", port: o.port ?? 0 });
  } catch (err) {
    nonces.close();
    throw err;
  }
  return {
    url,
    app,
    close: async () => {
      await app.close();
      nonces.close();
    },
  };
}

async function sendDashboardFile(reply: FastifyReply, file: string) {
  const type = DASHBOARD_TYPES[path.extname(file)];
  if (!/^[a-z0-9._-]+$/i.test(file) || !type) return reply.code(404).send(errorBody("NOT_FOUND", "no such dashboard file"));
  const body = await readFile(path.join(DASHBOARD_DIR, file)).catch(() => undefined);
  if (!body) return reply.code(404).send(errorBody("NOT_FOUND", "no such dashboard file"));
  return reply
    .header("content-type", type)
    .header("cache-control", "no-cache")
    .header("content-security-policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
    .send(body);
}

/**
 * The device list's tag filter: `tag=k=v` (repeatable; every term must hold, each one a query
 * term: k=v, k!=v, k, !k) and `group=<name>` (the group's saved query).
 */
function tagTerms(tracker: TrackerModule, q: Record<string, string | string[] | undefined>): QueryTerm[] | undefined {
  const terms: QueryTerm[] = [];
  const tags = q.tag === undefined ? [] : Array.isArray(q.tag) ? q.tag : [q.tag];
  if (tags.length > 32) throw new InputError("QUERY_INVALID", "at most 32 tag terms");
  for (const t of tags) terms.push(...parseTagQuery(t));
  if (typeof q.group === "string" && q.group !== "") {
    const g = tracker.store.groups.get(checkGroupName(q.group));
    if (!g) throw new OtaError("GROUP_UNKNOWN", `no group "${q.group}" on this tracker`);
    terms.push(...parseTagQuery(g.query));
  }
  return terms.length ? terms : undefined;
}

function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

function intParam(v: string | undefined, name: string): number | undefined {
  if (v === undefined || v === "") return undefined;
  if (!/^\d{1,9}$/.test(v)) throw new InputError("BAD_REQUEST", `${name} must be a whole number`);
  return Number(v);
}

function sameSecret(a: string, b: string): boolean {
  const h = (x: string) => createHash("sha256").update(x).digest();
  return timingSafeEqual(h(a), h(b));
}
