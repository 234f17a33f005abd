import * as z from "zod";
import { getAddress, isAddress } from "ethers";
import { isEvidence, MAX_EVIDENCE_BYTES } from "../../../core/installedContext";
import { EVERY_POLICY } from "../../../core/policyEvidence";
import {
  GROUP_NAME,
  MAX_QUERY_LENGTH,
  MAX_TAGS_PER_DEVICE,
  RESERVED_KEYS,
  TAG_KEY,
  TAG_VALUE,
  formatTagQuery,
  parseTagQuery,
  type QueryTerm,
} from "../../deviceTags";
import { OtaError } from "../../../core/errors";
import { Bytes32, BYTES32, Version, count, id, msOrNull } from "./common";

/**
 * What administrators send (signed requests, agent/crypto/requestAuth.ts) and what they are answered:
 * update requests, rollout cohorts, policy evidence, device tags and groups. Every rule of a body
 * is here: its shape, its limits and its semantic checks (a refinement carries the error code it
 * is refused with when it is not the route's BAD_REQUEST, in `params.code`).
 */

export const MAX_REQUEST_DEVICES = 100_000;
export const MAX_WAVES = 64; // as StagedRollout.MAX_WAVES
export const MAX_WAVE_DEVICES = 100_000;
export const MAX_COHORT_DEVICES = 200_000; // over all waves (a request body is at most 16 MiB)
export const MAX_EVIDENCE_DEVICES = 200_000;

type Ctx = z.core.$RefinementCtx;
/** A refusal inside a refinement, with its code when it is not the route's own. */
const refuse = (ctx: Ctx, message: string, code?: string, path?: PropertyKey[]) =>
  ctx.addIssue({ code: "custom", message, ...(code ? { params: { code } } : {}), ...(path ? { path } : {}) });

/** A string that `check` accepts, refused with `code` otherwise; `pattern` documents the form in the OpenAPI document. */
const checked = (check: (s: string) => string | undefined, code: string, pattern?: RegExp) =>
  z
    .string()
    .superRefine((s, ctx) => {
      const problem = check(s);
      if (problem) refuse(ctx, problem, code);
    })
    .meta(pattern ? { pattern: pattern.source } : {});

/** The message of an OtaError `f` throws (its code must be `code`), or undefined when it passes. */
const thrown = (f: () => unknown, code: string) => (): string | undefined => {
  try {
    f();
    return undefined;
  } catch (err) {
    if (err instanceof OtaError && err.code === code) return err.message;
    throw err;
  }
};

// ---------------------------------------------------------------------------- tags, queries, groups

const tagKeyProblem = (key: string): string | undefined =>
  !TAG_KEY.test(key)
    ? `tag key ${JSON.stringify(key).slice(0, 80)} must be 1 to 64 characters: letters, digits, '.', '_', '-', starting with a letter or digit`
    : (RESERVED_KEYS as readonly string[]).includes(key.toLowerCase())
      ? `tag key "${key}" is reserved: queries read ${RESERVED_KEYS.join(", ")} from the device's enrolment on the ledger`
      : undefined;
const tagKeyCode = (key: string) => (TAG_KEY.test(key) ? "TAG_KEY_RESERVED" : "TAG_INVALID");

/** A tag key: TAG_INVALID names the rule, TAG_KEY_RESERVED the keys queries read from the ledger. */
export const TagKey = z
  .string()
  .superRefine((k, ctx) => {
    const problem = tagKeyProblem(k);
    if (problem) refuse(ctx, problem, tagKeyCode(k));
  })
  .meta({
    pattern: TAG_KEY.source,
    description: "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit; not network, region or hardware.",
  });

export const TagValue = checked(
  (v) =>
    TAG_VALUE.test(v)
      ? undefined
      : `a tag value must be 1 to 128 characters: letters, digits and . _ : / @ + - (got ${JSON.stringify(v).slice(0, 80)}${v.length > 80 ? "..." : ""})`,
  "TAG_INVALID",
  TAG_VALUE,
);

export const Tags = z
  .record(TagKey, TagValue)
  .superRefine((tags, ctx) => {
    const n = Object.keys(tags).length;
    if (n > MAX_TAGS_PER_DEVICE) refuse(ctx, `a device has at most ${MAX_TAGS_PER_DEVICE} tags; this change sets ${n}`, "TAG_LIMIT");
  })
  .meta({
    id: "Tags",
    description: `A device's tags (issue 19, item 11): key -> value, at most ${MAX_TAGS_PER_DEVICE}, set by administrators on this tracker.`,
    maxProperties: MAX_TAGS_PER_DEVICE,
  });

/** A tag query's text, refused QUERY_INVALID naming the term; parsed into its terms. */
export const TagQuery = checked((q) => thrown(() => parseTagQuery(q), "QUERY_INVALID")(), "QUERY_INVALID").meta({
  maxLength: MAX_QUERY_LENGTH,
  description: "A tag query: terms joined by commas, k=v, k!=v (no such tag, or another value), k, !k, network=, region=, hardware=<id>; at most 32 terms.",
});

export const GroupName = z
  .string()
  .regex(GROUP_NAME, "a group name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
  .describe("A group's name.");

export const TagChange = z
  .strictObject({
    set: Tags.optional(),
    remove: z.array(TagKey).max(MAX_TAGS_PER_DEVICE, `remove is a list of at most ${MAX_TAGS_PER_DEVICE} tag keys`).optional(),
  })
  .superRefine((c, ctx) => {
    const set = c.set ?? {};
    const remove = c.remove ?? [];
    if (Object.keys(set).length === 0 && remove.length === 0) refuse(ctx, "the change sets or removes at least one tag");
    const both = remove.find((k) => Object.hasOwn(set, k)); // own keys only: "constructor" is a tag key like any other
    if (both !== undefined) refuse(ctx, `tag "${both}" is both set and removed`);
  })
  .meta({ id: "TagChange", description: "Tags to set (key -> value) and keys to remove, in one change; at least one of them." });
export type TagChange = z.infer<typeof TagChange>;

export const TagChangeResult = z
  .object({
    deviceId: id("The device."),
    tags: Tags,
    joinedRequests: count("Update requests (by group or query) the device now matches and was decided for."),
  })
  .meta({ id: "TagChangeResult" });

export const GroupRequest = z
  .strictObject({ name: GroupName, query: TagQuery })
  .transform((g): { name: string; query: string; terms: QueryTerm[] } => {
    const terms = parseTagQuery(g.query);
    return { name: g.name, query: formatTagQuery(terms), terms };
  })
  .meta({ id: "GroupRequest", description: "A group: a name and a tag query, evaluated whenever it is used (a later one of the same name replaces it)." });

export const GroupResult = z.object({ name: z.string(), query: z.string(), devices: count("Devices the query selects now.") }).meta({ id: "GroupResult" });

export const GroupRemoved = z.object({ name: z.string(), removed: z.literal(true) }).meta({ id: "GroupRemoved" });

// ---------------------------------------------------------------------------- update requests (PROC-2)

const releaseIdField = (what: string) => z.string().regex(BYTES32, `${what} must be a release id (0x + 64 hex digits)`);

export const UpdateRequest = z
  .strictObject({
    releaseId: releaseIdField("releaseId")
      .optional()
      .describe("The release to install; it must be on the ledger and active, from a provider that is not barred."),
    bundleId: z
      .string()
      .regex(BYTES32, "bundleId must be a release bundle's id (0x + 64 hex digits)")
      .optional()
      .describe(
        "Instead of releaseId: a release bundle (docs/adr/0019) on ReleaseBundles, as this module mirrors it; every member must be on the ledger and active, their provider not barred. Each device is checked with the ledger's checkBundle (and each member it does not run with the update policies, the other members at their bundle versions), and is decided the bundle as one step: its notice carries `bundle: true`. imageLocation is not taken with it.",
      ),
    devices: z
      .array(z.string().regex(BYTES32, "a device id is 0x + 64 hex digits"))
      .max(MAX_REQUEST_DEVICES, `devices must be a list of at most ${MAX_REQUEST_DEVICES} device ids (0x + 64 hex digits)`)
      .optional()
      .describe("Device ids to update."),
    filter: z
      .object({
        network: z.string().optional().describe("Only devices of this network: its label (at most 31 bytes) or its bytes32 hex."),
        region: z.string().optional().describe("Only devices of this region: its label (at most 31 bytes) or its bytes32 hex."),
        hardware: z
          .array(z.number("filter.hardware is a list of hardware class ids").int().min(0).max(65535))
          .optional()
          .describe("Only devices of one of these hardware classes (an empty list does not narrow)."),
      })
      .optional()
      .describe(
        `Selects devices from this module's fleet; each field given narrows the selection ({} is the whole fleet, at most ${MAX_REQUEST_DEVICES} devices).`,
      ),
    group: GroupName.optional().describe("A group saved on this tracker (POST /v1/groups): the devices its query selects."),
    query: TagQuery.optional().describe("A tag query (as a group holds one): terms joined by commas, k=v, k!=v, k, !k, network=, region=, hardware=."),
    deadline: z
      .number('deadline is a time in milliseconds since the epoch (e.g. Date.parse("2030-01-01T00:00:00Z"))')
      .int('deadline is a time in milliseconds since the epoch (e.g. Date.parse("2030-01-01T00:00:00Z"))')
      .min(0, "deadline is a time in milliseconds since the epoch")
      .max(Number.MAX_SAFE_INTEGER, "deadline is a time in milliseconds since the epoch")
      .optional()
      .describe(
        "After this time a device that defers the release to its closed update window installs it anyway (the notice carries it); the device's pins hold unless overridePins.",
      ),
    overridePins: z
      .boolean("overridePins is true or false")
      .optional()
      .describe("With a deadline: after it, a device whose policy pins the component to another version installs the release too. Default false."),
    imageLocation: z
      .string("imageLocation is the release's file link (its CID)")
      .optional()
      .describe("Where the image is to be fetched; if given, it must be the file link the ledger records for the release (IMAGE_LOCATION_MISMATCH otherwise)."),
  })
  .superRefine((r, ctx) => {
    if ((r.releaseId === undefined) === (r.bundleId === undefined)) refuse(ctx, "name one release (releaseId) or one release bundle (bundleId)");
    if (r.bundleId !== undefined && r.imageLocation !== undefined)
      refuse(ctx, "imageLocation names one release's image: a bundle's members each have their own");
    const targets = (["devices", "filter", "group", "query"] as const).filter((k) => r[k] !== undefined);
    if (targets.length === 0)
      refuse(
        ctx,
        "name the devices (devices), a filter (filter: {network, region, hardware}; {} means the whole fleet), a group (group) or a tag query (query)",
      );
    if (targets.length > 1) refuse(ctx, `name one target, not ${targets.join(" and ")}`);
    if (r.overridePins === true && r.deadline === undefined) refuse(ctx, "overridePins takes effect at the deadline: give a deadline too");
  })
  .meta({
    id: "UpdateRequest",
    // The refinement's rules the JSON Schema can say: one release or one bundle; a target.
    oneOf: [{ required: ["releaseId"] }, { required: ["bundleId"] }],
    anyOf: [{ required: ["devices"] }, { required: ["filter"] }, { required: ["group"] }, { required: ["query"] }],
    description:
      "An administrator's request to roll a release out (PROC-2): which release (releaseId, or bundleId) and which devices: exactly one of `devices`, `filter`, `group` or `query`. With `group` or `query`, a device that comes to match later (its tags changed) joins the request.",
    examples: [
      { releaseId: "0x" + "02".repeat(32), filter: { network: "plant-north", hardware: [3] } },
      { releaseId: "0x" + "02".repeat(32), group: "plant-1-canary", deadline: 1_900_000_000_000 },
      { bundleId: "0x" + "0b".repeat(32), devices: ["0x" + "0d".repeat(32)] },
    ],
  });
export type UpdateRequest = z.infer<typeof UpdateRequest>;

export const UpdateRequestResult = z
  .object({
    requestId: z
      .string()
      .regex(/^0x[0-9a-f]{32}$/)
      .describe("This request's id (16 random bytes), recorded as the origin `request:<requestId>` of its decisions."),
    releaseId: Bytes32.describe("The release, or the release bundle's id for a request of a bundle."),
    bundle: z.object({ id: Bytes32, name: z.string(), version: Version }).optional().describe("Present for a request of a release bundle (docs/adr/0019)."),
    decided: count("Devices the release was decided for."),
    refused: z.array(
      z.object({
        deviceId: Bytes32,
        code: z
          .string()
          .describe(
            "Why this device was left out: DEVICE_UNKNOWN for a device this module does not know, DEVICE_NOT_ACTIVE for a suspended or withdrawn one, else the registry's checkInstallable answer for its configuration (e.g. HARDWARE_NOT_SUPPORTED, DEPENDENCY_VERSION_OUT_OF_RANGE), for a bundle the ledger's checkBundle answer (NOT_NEWER_THAN_INSTALLED: it runs every member), or POLICY_REFUSED.",
          ),
        message: z.string(),
      }),
    ),
    deadline: msOrNull("The request's deadline; null: none."),
  })
  .meta({
    id: "UpdateRequestResult",
    description:
      "What an update request decided. Devices refused individually are listed; the others now have a decision and get their notice at their next contact.",
    examples: [
      {
        requestId: "0x" + "5a".repeat(16),
        releaseId: "0x" + "02".repeat(32),
        decided: 118,
        refused: [{ deviceId: "0x" + "ab".repeat(32), code: "DEVICE_UNKNOWN", message: "not in this fleet" }],
        deadline: null,
      },
    ],
  });

// ---------------------------------------------------------------------------- rollout cohorts (APP-II-3)

const DEVICE_ID = /^0x[0-9a-fA-F]{64}$/;

export const CohortsRequest = z
  .strictObject({
    waves: z
      .array(z.array(z.unknown()).meta({ minItems: 1, maxItems: MAX_WAVE_DEVICES, items: { type: "string", pattern: DEVICE_ID.source } }), {
        error: `waves must be a list of 1 to ${MAX_WAVES} waves, in the rollout's order`,
      })
      .min(1, `waves must be a list of 1 to ${MAX_WAVES} waves, in the rollout's order`)
      .max(MAX_WAVES, `waves must be a list of 1 to ${MAX_WAVES} waves, in the rollout's order`)
      .superRefine((waves, ctx) => {
        let total = 0;
        waves.forEach((wave, i) => {
          if (wave.length < 1 || wave.length > MAX_WAVE_DEVICES) return refuse(ctx, `wave ${i} must be a list of 1 to ${MAX_WAVE_DEVICES} device ids`);
          const seen = new Set<string>();
          wave.forEach((d, k) => {
            if (typeof d !== "string" || !DEVICE_ID.test(d)) return refuse(ctx, `wave ${i}, device ${k}: a device id is 0x followed by 64 hex digits`);
            if (BigInt(d) === 0n) return refuse(ctx, `wave ${i}, device ${k}: the zero id is no device`);
            if (seen.has(d.toLowerCase())) return refuse(ctx, `wave ${i}, device ${k}: ${d} appears twice in the wave; list each device once`);
            seen.add(d.toLowerCase());
          });
          total += wave.length;
        });
        if (total > MAX_COHORT_DEVICES) refuse(ctx, `the waves name ${total} device ids, more than ${MAX_COHORT_DEVICES}: split the rollout`);
      })
      .describe(`1 to ${MAX_WAVES} waves, each of 1 to ${MAX_WAVE_DEVICES} distinct device ids; at most ${MAX_COHORT_DEVICES} ids in all.`),
  })
  .transform((b) => ({ waves: b.waves as string[][] }))
  .meta({
    id: "CohortsRequest",
    description:
      "The device ids of each wave of a staged rollout, in the rollout's order, as the administrator built the cohorts (agent/crypto/cohortTree.ts buildCohort).",
  });

export const CohortsResult = z
  .object({
    releaseId: id("The release."),
    devices: count("Distinct devices over all waves."),
    roots: z.array(Bytes32).describe("Each wave's cohort root, in order (as the StagedRollout holds them)."),
  })
  .meta({ id: "CohortsResult", description: "The cohorts were kept: each device's evidence (wave and proof) goes with its notices." });

// ---------------------------------------------------------------------------- policy evidence (issue 18)

const evidenceShape = 'the body is a JSON object {"policy": "0x<policy address>" (optional), "devices": {"0x<deviceId>": "0x<evidence>", ...}}';

export const EvidenceRequest = z
  .strictObject(
    {
      policy: z
        .string()
        .refine((p) => isAddress(p), "policy must be a policy's address (0x followed by 40 hex digits)")
        .optional()
        .meta({ pattern: "^0x[0-9a-fA-F]{40}$", description: "The policy the evidence is for: the release's policy or one of its members." }),
      devices: z
        .record(z.string(), z.unknown(), evidenceShape)
        .superRefine((devices, ctx) => {
          const entries = Object.entries(devices);
          if (entries.length < 1 || entries.length > MAX_EVIDENCE_DEVICES)
            return refuse(ctx, `devices must hold 1 to ${MAX_EVIDENCE_DEVICES} device ids: split a larger fleet into several requests`);
          const seen = new Set<string>();
          for (const [deviceId, evidence] of entries) {
            if (!DEVICE_ID.test(deviceId) || BigInt(deviceId) === 0n)
              return refuse(ctx, `${deviceId}: a device id is 0x followed by 64 hex digits, not all zero`);
            if (!isEvidence(evidence) || evidence === "0x")
              return refuse(ctx, `the evidence of device ${deviceId} must be 0x-prefixed hex of 1 to ${MAX_EVIDENCE_BYTES} bytes`);
            if (seen.has(deviceId.toLowerCase())) return refuse(ctx, `device ${deviceId} is named twice (ids are compared in any case); name each device once`);
            seen.add(deviceId.toLowerCase());
          }
        })
        .meta({
          minProperties: 1,
          maxProperties: MAX_EVIDENCE_DEVICES,
          propertyNames: { pattern: DEVICE_ID.source },
          additionalProperties: { type: "string", pattern: `^0x([0-9a-fA-F]{2}){1,${MAX_EVIDENCE_BYTES}}$` },
          description: `1 to ${MAX_EVIDENCE_DEVICES} device ids (keys, 0x and 64 hex digits), each with its evidence (1 to ${MAX_EVIDENCE_BYTES} bytes as 0x hex; all of a device's parts together at most ${MAX_EVIDENCE_BYTES} bytes).`,
        }),
    },
    evidenceShape,
  )
  .transform((b) => ({
    /** The policy the evidence is for, checksummed; EVERY_POLICY when the request names none. */
    policy: b.policy === undefined ? EVERY_POLICY : getAddress(b.policy),
    /** Device id (lower case) -> evidence (0x hex). */
    devices: Object.fromEntries(Object.entries(b.devices).map(([d, e]) => [d.toLowerCase(), e as string])),
  }))
  .meta({
    id: "EvidenceRequest",
    description:
      "Evidence for a release's update policy, per device (agent/core/policyEvidence.ts): for one policy of the release's composition (`policy`), each policy then reading its own part, or, without `policy`, given whole to every policy.",
  });

export const EvidenceResult = z
  .object({
    releaseId: id("The release."),
    policy: z.string().nullable().describe("The policy it is for (checksummed), null for every policy."),
    devices: count("Devices whose evidence was set."),
  })
  .meta({ id: "EvidenceResult", description: "The evidence was kept: each device gets it with its notices." });
