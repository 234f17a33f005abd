import * as z from "zod";
import { ERROR_CODES, REQUEST_AUTH_CODES, type ErrorCode } from "../../../core/errorCodes";

/**
 * The building blocks of the tracker's HTTP schemas (agent/tracker/http/): ids, versions, times,
 * names beside ids, and the error answers, built from the one table of error codes
 * (agent/core/errorCodes.ts). A schema with an `id` in its metadata is a component of the
 * OpenAPI document (#/components/schemas/<id>).
 */

export const BYTES32 = /^0x[0-9a-fA-F]{64}$/;

export const Bytes32 = z
  .string()
  .regex(BYTES32, "an id is 0x and 64 hex digits")
  .meta({
    id: "Bytes32",
    description: "32 bytes as 0x and 64 hex digits: a release, component, device or tracker-module id. Answers give ids in lower case.",
    examples: ["0x4f1c2b7a9e0d3c5b8a6f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3"],
  });

/** An id with what it names. */
export const id = (description: string) => Bytes32.describe(description);

export const Version = z
  .string()
  .regex(/^[0-9]+\.[0-9]+\.[0-9]+(-(alpha|beta|rc)\.[0-9]+)?$/)
  .meta({ id: "Version", description: "A version as major.minor.patch (with -alpha.n, -beta.n or -rc.n for a pre-release).", examples: ["2.4.1"] });

/** An Ethereum address as answers give it: lower case. */
export const address = (description: string) =>
  z
    .string()
    .regex(/^0x[0-9a-f]{40}$/)
    .describe(description);

// Times are milliseconds since the epoch; counts are whole numbers of devices.
export const ms = (description: string) => z.number().int().min(0).describe(description);
export const msOrNull = (description: string) => z.number().int().min(0).nullable().describe(description);
export const count = (description: string) => z.number().int().min(0).describe(description);

/**
 * Names beside ids (issue 19): `componentName` beside each `component`, `hardwareName` beside a
 * `hardwareClass`, `releaseName` beside a release named only by its id. The names the registry
 * registered (attacker-controlled text: show it as text), as the module's mirror holds them; null
 * until the mirror has them. The ids stay: clients key on them.
 */
export const componentName = () =>
  z.string().nullable().describe("The component's registered name (e.g. \"acme.bootloader\"); null while this module's mirror does not hold it.");
export const releaseName = (what = "The release") =>
  z
    .string()
    .nullable()
    .describe(
      `${what}'s name: its component's registered name and its version (e.g. "acme.bootloader 1.0.0"), or for a release bundle "bundle <name> <version>" (e.g. "bundle sensor-kit 2.0.0"); null while this module's mirror does not hold them.`,
    );

/** A release bundle (docs/adr/0019) named beside its id: its name, version and members in its order. */
export const bundleNamed = () =>
  z
    .object({
      name: z.string().describe("The bundle's name (as its BundleCreated event carries it)."),
      version: Version,
      members: z
        .array(z.object({ releaseId: Bytes32, component: Bytes32, releaseName: releaseName("The member").optional() }))
        .describe("Its member releases, ascending by component (the bundle's order)."),
    })
    .describe("Present when the id is a release bundle's (docs/adr/0019): its members are installed together, as one step.");

// ---------------------------------------------------------------------------- errors

export const ErrorBody = z
  .object({
    error: z.object({
      code: z
        .string()
        .regex(/^[A-Z][A-Z0-9_]*$/)
        .describe("Stable machine-readable code (see each response)."),
      message: z.string().describe("What went wrong, for a person: which field or part, and how to fix it."),
    }),
  })
  .meta({
    id: "Error",
    description: "Every refusal. Branch on `code`, never on `message` (for people).",
    examples: [{ error: { code: "DEVICE_UNKNOWN", message: "no device 0x4f1c… in this fleet" } }],
  });

/** The body of every refusal: `{"error": {code, message}}`. */
export function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

const STATUS_TEXT: Record<number, string> = {
  400: "Malformed or refused request",
  401: "Not authenticated",
  403: "Not authorised",
  404: "Unknown",
  409: "Replayed, or in conflict with what the ledger or the tracker holds",
  413: "Body too large",
  414: "Path parameter too long",
  415: "Unsupported content type",
  422: "Not verified",
  429: "Too many requests",
  500: "Internal error",
  503: "Unavailable: the ledger did not answer, or the tracker is busy",
};

/** A refusal with a code and the status it is answered with: the table's, or Fastify's own for BAD_REQUEST (413, 414, 415). */
export type Refusal = ErrorCode | [ErrorCode, number];

/**
 * The error answers of an operation, one per status: its description lists each code with its
 * hint from the table, its schema is the Error shape with `code` limited to those codes. Every
 * operation can also fail unexpectedly: 500 INTERNAL is added to each.
 */
export function errorResponses(...refusals: Refusal[]) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const r of [...refusals, "INTERNAL" as const]) {
    const [code, status] = Array.isArray(r) ? r : [r, ERROR_CODES[r][0]];
    const codes = byStatus.get(status) ?? [];
    if (!codes.includes(code)) byStatus.set(status, [...codes, code]);
  }
  const out: Record<number, { description: string; content: { "application/json": { schema: z.ZodType } } }> = {};
  for (const [status, codes] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[status] = {
      description: `${STATUS_TEXT[status]}. Error codes:\n\n${codes.map((c) => `- \`${c}\`: ${ERROR_CODES[c][1]}`).join("\n")}`,
      content: {
        "application/json": {
          schema: z.object({ error: z.object({ code: z.enum(codes as [ErrorCode, ...ErrorCode[]]), message: z.string() }) }),
        },
      },
    };
  }
  return out;
}

/** A success answer: its description and its JSON schema. */
export function ok<S extends z.ZodType>(description: string, schema: S) {
  return { 200: { description, content: { "application/json": { schema } } } };
}

/** What Fastify refuses before a POST handler runs: a body over the limit, or of a type it has no parser for. */
export const BODY_ERRORS: Refusal[] = ["BAD_REQUEST", ["BAD_REQUEST", 413], ["BAD_REQUEST", 415]];
/** What Fastify refuses before a handler with a path parameter runs: a path that is not valid percent-encoding, a parameter over 100 characters. */
export const PATH_ERRORS: Refusal[] = ["BAD_REQUEST", ["BAD_REQUEST", 414]];
/** A signed request of an administrator: its signature and role (agent/crypto/requestAuth.ts). */
export const SIGNED_ERRORS: Refusal[] = [...REQUEST_AUTH_CODES, "NOT_ADMINISTRATOR", "LEDGER_UNAVAILABLE", "SERVER_BUSY"];
/** What opening a sealed message (agent/crypto/sealedMessage.ts, agent/crypto/ecies.ts) can refuse. */
export const SEALED_MESSAGE_ERRORS: Refusal[] = ["MESSAGE_MALFORMED", "MESSAGE_NOT_FOR_ME", "MESSAGE_FORMAT", "MESSAGE_AUTHENTICATION", "MESSAGE_SIGNATURE"];

/** Security requirements: readers send the bearer token (when the tracker has one); the others authenticate by seal or signature. */
export const READER = [{ bearerAuth: [] }];
export const ANYONE = [];

/** A page of a list: `limit` and `offset` in the query, as decimal digits ("" or absent: the default). */
export const wholeNumber = (what: string) =>
  z
    .string()
    .regex(/^(\d{1,9})?$/, `${what} must be a whole number`)
    .transform((s) => (s === "" ? undefined : Number(s)));
