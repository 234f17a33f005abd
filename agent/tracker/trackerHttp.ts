import type { FastifyInstance, FastifyRequest } from "fastify";
import { timingSafeEqual, createHash } from "node:crypto";
import { AuthenticationError } from "../core/errors";
import { RequestAuthenticator } from "../crypto/requestAuth";
import { SqliteNonceStore } from "../database/sqliteNonceStore";
import { RefusalNames } from "../chain/policyExplanation";
import type { TrackerModule } from "./trackerModule";
import { UpdateRequestRefused } from "./updateRequests";
import { requireAdministrator } from "./rolloutCohorts";
import { createTrackerApp } from "./http/server";
import type { RouteContext } from "./http/routes/context";
import { messageRoutes } from "./http/routes/messages";
import { fleetRoutes } from "./http/routes/fleet";
import { adminRoutes } from "./http/routes/admin";
import { siteRoutes } from "./http/routes/site";

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

/**
 * The tracker's HTTP API (ADR 0004) and its dashboard. Every route declares its params, query,
 * body and answers once, as zod schemas (agent/tracker/http/schemas), which validate the requests,
 * serialize the answers and make the OpenAPI document served at /openapi.json. Devices and modules
 * below post sealed messages (their seal and signature authenticate them); readers may need a
 * bearer token; administrators sign their requests.
 */
export async function startTrackerHttp(tracker: TrackerModule, o: TrackerHttpOptions = {}): Promise<RunningTrackerHttp> {
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
  const authenticate = (req: FastifyRequest, body: Buffer) =>
    auth.account({ method: req.method, path: req.url, headers: req.headers, body, audience: origin() });
  try {
    const app = await createTrackerApp({ log: o.log, authenticate });
    const ctx: RouteContext = {
      tracker,
      log: (line) => o.log?.(line),
      refusalNames: new RefusalNames(tracker.options.chain.provider),
      reader: (req) => {
        if (!o.apiToken) return;
        const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "";
        if (!sameSecret(given, o.apiToken))
          throw new AuthenticationError("UNAUTHORIZED", "this tracker's read API needs `Authorization: Bearer <tracker.apiToken>`");
      },
    };
    siteRoutes(app, ctx);
    messageRoutes(app, ctx);
    fleetRoutes(app, ctx);
    adminRoutes(app, ctx);
    url = await app.listen({ host: o.host ?? "127.0.0.1", port: o.port ?? 0 });
    return {
      url,
      app: app as unknown as FastifyInstance,
      close: async () => {
        await app.close();
        nonces.close();
      },
    };
  } catch (err) {
    nonces.close();
    throw err;
  }
}

/**
 * The OpenAPI document the tracker serves at /openapi.json, built from the route schemas without a
 * tracker behind them (no route is called): for tools and tests that read the API's contract.
 */
export async function trackerOpenApi(): Promise<Record<string, unknown>> {
  const app = await createTrackerApp({ authenticate: () => Promise.reject(new Error("no tracker")) });
  const ctx = { tracker: undefined as unknown as TrackerModule, log: () => {}, reader: () => {}, refusalNames: undefined as unknown as RefusalNames };
  siteRoutes(app, ctx);
  messageRoutes(app, ctx);
  fleetRoutes(app, ctx);
  adminRoutes(app, ctx);
  await app.ready();
  const doc = app.swagger() as unknown as Record<string, unknown>;
  await app.close();
  return doc;
}

function sameSecret(a: string, b: string): boolean {
  const h = (x: string) => createHash("sha256").update(x).digest();
  return timingSafeEqual(h(a), h(b));
}
