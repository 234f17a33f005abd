import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type RawServerDefault } from "fastify";
import fastifySwagger from "@fastify/swagger";
import {
  createJsonSchemaTransform,
  jsonSchemaTransformObject,
  hasZodFastifySchemaValidationErrors,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from "fastify-type-provider-zod";
import type { IncomingMessage, ServerResponse } from "node:http";
import { AuthenticationError, InputError, OtaError } from "../../core/errors";
import { statusOf } from "../../core/errorCodes";
import { BODY_MAX_BYTES } from "../../core/wireLimits";
import { RequestRefused } from "../../crypto/requestAuth";
import { errorBody } from "./schemas";
import { OPENAPI_INFO } from "./openapiInfo";

/** The tracker's Fastify app, typed by its zod route schemas. */
export type TrackerApp = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyInstance["log"], ZodTypeProvider>;

declare module "fastify" {
  interface FastifyContextConfig {
    /** The code a request that fails its schema is refused with (default BAD_REQUEST); a refinement may carry its own. */
    malformed?: string;
    /** An administrator's signed request: authenticated before its body is validated (its bytes are what was signed). */
    signed?: boolean;
  }
  interface FastifyRequest {
    /** The bytes of a JSON body, as received (what an administrator signed). */
    rawJson?: Buffer;
    /** The body was sent as JSON and is not JSON. */
    notJson?: boolean;
    /** The body has a "__proto__" key (refused). */
    protoKey?: boolean;
    /** The administrator who signed the request (config.signed). */
    account?: string;
  }
}

const PROTO_KEY = Buffer.from('"__proto__"');

export interface TrackerAppOptions {
  log?: (line: string) => void;
  /** Authenticates an administrator's signed request (its bytes as received): the account, or a RequestRefused. */
  authenticate(req: FastifyRequest, raw: Buffer): Promise<string>;
}

/**
 * The tracker's Fastify app before its routes: zod validation and serialization
 * (fastify-type-provider-zod), the OpenAPI document built from the route schemas
 * (@fastify/swagger, served by the /openapi.json route), JSON bodies kept as their bytes too,
 * administrators' signatures checked before their bodies are read, and every refusal in the
 * API's error shape with the status of the one error table (agent/core/errorCodes.ts).
 */
export async function createTrackerApp(o: TrackerAppOptions): Promise<TrackerApp> {
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_MAX_BYTES,
    forceCloseConnections: true,
    exposeHeadRoutes: false,
    connectionTimeout: 60_000,
    // A path Fastify cannot route (bad percent-encoding: 400; a parameter over 100 characters: 414)
    // is refused in the API's error shape too, not Fastify's own.
    frameworkErrors: (err, _req, reply) => void (reply as FastifyReply).code(err.statusCode ?? 400).send(errorBody("BAD_REQUEST", err.message)),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // JSON bodies: parsed once, their bytes kept (an administrator's request is signed over them).
  // A signed request's body is parsed only once its signature checks out (preValidation): whoever
  // cannot sign costs the tracker no JSON parse of up to BODY_MAX_BYTES. A body that is not JSON is
  // refused in preValidation, after a signed request's signature.
  const parseJson = (req: FastifyRequest, raw: Buffer): unknown => {
    if (raw.length === 0) return undefined;
    try {
      const text = raw.toString("utf8");
      // zod's records skip a "__proto__" key, so the tracker would apply less than was signed: such a
      // body is refused, as Fastify's own parser does (onProtoPoisoning). The byte search keeps the
      // reviver's cost off every body that has no such key.
      if (raw.includes(PROTO_KEY)) return JSON.parse(text, (key, value: unknown) => (key === "__proto__" ? ((req.protoKey = true), value) : value));
      return JSON.parse(text);
    } catch {
      req.notJson = true;
      return undefined;
    }
  };
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (req, body, done) => {
    const raw = body as Buffer;
    req.rawJson = raw;
    done(null, req.routeOptions.config.signed ? undefined : parseJson(req, raw));
  });

  app.addHook("preValidation", async (req) => {
    if (req.routeOptions.config.signed) {
      req.account = await o.authenticate(req, req.rawJson ?? Buffer.alloc(0));
      if (req.rawJson !== undefined) req.body = parseJson(req, req.rawJson);
    }
    if (req.notJson) throw new InputError("BAD_REQUEST", "the body is not valid JSON");
    if (req.protoKey) throw new InputError("BAD_REQUEST", 'the body has a key named "__proto__", which is not accepted: remove it');
    const takesBody = req.routeOptions.schema?.body !== undefined;
    if (takesBody && (req.rawJson === undefined || req.rawJson.length === 0))
      throw new InputError("BAD_REQUEST", "the body must be JSON (content-type: application/json)");
  });

  app.setErrorHandler((err, req, reply) => {
    const send = (status: number, code: string, message: string) =>
      reply
        .code(status)
        .type("application/json; charset=utf-8")
        .serializer((p) => JSON.stringify(p))
        .send(errorBody(code, message));
    if (hasZodFastifySchemaValidationErrors(err)) {
      const { code, message } = validationRefusal(err.validation, err.validationContext, req.routeOptions.config.malformed ?? "BAD_REQUEST");
      return send(statusOf(code) ?? 400, code, message);
    }
    if ((err as { code?: string }).code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      const limit = req.routeOptions.bodyLimit ?? BODY_MAX_BYTES;
      const what = req.routeOptions.url === "/v1/reports" ? "a status report" : "this request's body";
      return send(413, "BAD_REQUEST", `${what} is at most ${limit} bytes (agent/core/wireLimits.ts); send a smaller one`);
    }
    if (err instanceof OtaError) {
      const status = statusOf(err.code) ?? (err instanceof RequestRefused || err instanceof AuthenticationError ? 401 : err instanceof InputError ? 400 : 500);
      if (status >= 500) o.log?.(`${err.code}: ${err.message}`);
      return send(status, err.code, err.message);
    }
    const statusCode = (err as { statusCode?: number }).statusCode;
    if (statusCode && statusCode < 500) return send(statusCode, "BAD_REQUEST", (err as Error).message);
    o.log?.(`internal error: ${(err as Error).stack ?? err}`);
    return send(500, "INTERNAL", "internal error");
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody("NOT_FOUND", `no route ${req.method} ${req.url.split("?")[0]}: see /openapi.json`)));

  await app.register(fastifySwagger, {
    openapi: OPENAPI_INFO,
    transform: createJsonSchemaTransform({ skipList: [] }),
    transformObject: (documentObject) =>
      withUsedComponents(jsonSchemaTransformObject(documentObject) as Record<string, unknown>) as ReturnType<typeof jsonSchemaTransformObject>,
  });
  return app;
}

/** The refusal of a request that failed its schema: the code a refinement carries or the route's, and which field, and what it must be. */
function validationRefusal(
  issues: { instancePath: string; message?: string; params: Record<string, unknown> }[],
  context: string | undefined,
  fallback: string,
) {
  const first = issues[0];
  const nested = [...((first.params.issues as { message: string; params?: { code?: string } }[] | undefined) ?? [])];
  const code = (first.params.params as { code?: string } | undefined)?.code ?? nested.find((n) => n.params?.code)?.params?.code ?? fallback;
  const top = context === "querystring" ? "the query" : context === "params" ? "the path" : context === "headers" ? "the headers" : "the body";
  const where = first.instancePath === "/" || first.instancePath === "" ? top : first.instancePath.slice(1).replace(/\//g, ".");
  const message = nested[0]?.message ?? first.message ?? "is not of its form";
  return { code, message: `${where}: ${message}` };
}

/**
 * The document with only the component schemas its paths reach (the zod transform emits every
 * registered one, as input and output), and Error: the shape of every refusal, also of a path the
 * API does not have (404 NOT_FOUND).
 */
function withUsedComponents(doc: Record<string, unknown>) {
  const components = doc.components as { schemas?: Record<string, unknown> } | undefined;
  const schemas = components?.schemas ?? {};
  const used = new Set<string>(["Error"]);
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== "object") return;
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string" && v.startsWith("#/components/schemas/")) {
        const name = v.slice("#/components/schemas/".length);
        if (!used.has(name)) {
          used.add(name);
          visit(schemas[name]);
        }
      } else visit(v);
    }
  };
  visit(doc.paths);
  return { ...doc, components: { ...components, schemas: Object.fromEntries(Object.entries(schemas).filter(([name]) => used.has(name))) } };
}
