import * as z from "zod";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { FastifyReply } from "fastify";
import { OtaError } from "../../../core/errors";
import { ANYONE, Health, PATH_ERRORS, errorResponses, ok } from "../schemas";
import type { TrackerApp } from "../server";
import type { RouteContext } from "./context";

const DASHBOARD_DIR = path.join(__dirname, "..", "..", "dashboard");
const DASHBOARD_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};
const DASHBOARD_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const OpenApiDocument = z
  .looseObject({
    openapi: z.literal("3.1.0"),
    info: z.looseObject({}),
    tags: z.array(z.unknown()),
    paths: z.record(z.string(), z.unknown()),
    components: z.looseObject({}),
  })
  .describe("An OpenAPI 3.1 document.");
const text = (description: string, ...types: string[]) => ({
  200: { description, content: Object.fromEntries(types.map((t) => [t, { schema: z.string() }])) },
});

/** The module itself: health, this document, the dashboard. */
export function siteRoutes(app: TrackerApp, { tracker }: RouteContext): void {
  // Not "ok" while the ledger stream is halted by a reorganisation below its window (issue 16): the
  // fleet view no longer follows the chain until an operator runs `ota-ledger tracker resync`.
  app.get(
    "/v1/health",
    {
      schema: {
        operationId: "getHealth",
        summary: "Module health",
        description:
          "Whether this tracker module serves, which module it is (id, role, parent, and the public key devices and child modules seal their messages to), how far its ledger mirror has read, how many devices it follows and, for an intermediate module, how its exchanges with its parent go. Needs no token: meant for load balancers and supervisors.",
        tags: ["health"],
        security: ANYONE,
        response: {
          ...ok("The module's health.", Health),
          503: {
            description: "The module's ledger mirror is halted (status ledger-halted): the body is the same Health object.",
            content: { "application/json": { schema: Health } },
          },
          ...errorResponses(),
        },
      },
    },
    async (_req, reply) => {
      const halted = tracker.stream.halted;
      if (halted) reply.code(503);
      return {
        status: halted ? ("ledger-halted" as const) : ("ok" as const),
        module: { id: tracker.id, role: tracker.role, parent: tracker.options.parent?.id.toLowerCase() ?? null, publicKey: tracker.publicKey },
        ledger: {
          block: tracker.stream.position?.block ?? null,
          // How fresh the chain its node shows is: a frozen or lagging endpoint keeps answering with old blocks.
          newestBlockTime: tracker.stream.newestBlock?.timestamp ?? null,
          ageSeconds: tracker.stream.newestBlock ? Math.max(0, Math.floor(Date.now() / 1000) - tracker.stream.newestBlock.timestamp) : null,
          ...(halted && {
            halted: {
              code: "REORG_TOO_DEEP" as const,
              message: halted.message,
              fix: "stop the tracker and run `ota-ledger tracker resync` (docs/guides/operations.md)",
            },
          }),
        },
        devices: tracker.store.devices.count(),
        upstream: tracker.options.parent ? tracker.upstreamState : null,
      };
    },
  );

  app.get(
    "/openapi.json",
    {
      schema: {
        operationId: "getOpenApi",
        summary: "This document",
        description: "The OpenAPI 3.1 document of the tracker's HTTP API (v1), built from the schemas its routes validate and answer with.",
        tags: ["health"],
        security: ANYONE,
        response: {
          ...ok("The OpenAPI document.", OpenApiDocument),
          ...errorResponses(),
        },
      },
    },
    async () => app.swagger() as unknown as z.infer<typeof OpenApiDocument>,
  );

  app.get(
    "/",
    {
      schema: {
        operationId: "getDashboard",
        summary: "The fleet dashboard",
        description:
          "X.1368 CAP-11.2-a, CAP-11.2-b. The fleet dashboard page: device counts, the device list with its filters and detail, adoption curves, rollouts and the modules below. It loads its script and style sheet from /dashboard/ and its data from the read endpoints above; everything comes from the tracker, so it works on an offline network. The page and its files need no token; the page sends the read token given in its address (`/#token=<tracker.apiToken>`) with its data requests.",
        tags: ["dashboard"],
        "x-x1368": ["CAP-11.2-a", "CAP-11.2-b"],
        security: ANYONE,
        response: { ...text("The page.", "text/html"), ...errorResponses("NOT_FOUND") },
      },
    },
    async (_req, reply) => sendDashboardFile(reply, "index.html"),
  );

  app.get(
    "/dashboard/:file",
    {
      schema: {
        operationId: "getDashboardFile",
        summary: "A file of the dashboard",
        description:
          "The dashboard's page, script and style sheet (index.html, dashboard.js, dashboard.css), served from the tracker itself; only .html, .js and .css files of the dashboard's folder are served.",
        tags: ["dashboard"],
        security: ANYONE,
        params: z.object({ file: z.string().meta({ pattern: DASHBOARD_FILE.source }).describe("The file name, without any directory.") }),
        response: { ...text("The file.", "text/html", "text/javascript", "text/css"), ...errorResponses(...PATH_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) => sendDashboardFile(reply, req.params.file),
  );
}

async function sendDashboardFile(reply: FastifyReply, file: string) {
  const type = DASHBOARD_TYPES[path.extname(file)];
  if (!DASHBOARD_FILE.test(file) || !type) throw new OtaError("NOT_FOUND", "no such dashboard file");
  const body = await readFile(path.join(DASHBOARD_DIR, file)).catch(() => undefined);
  if (!body) throw new OtaError("NOT_FOUND", "no such dashboard file");
  return reply
    .header("content-type", type)
    .header("cache-control", "no-cache")
    .header("content-security-policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
    .send(body);
}
