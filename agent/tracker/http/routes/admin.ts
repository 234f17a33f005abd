import * as z from "zod";
import type { FastifyRequest } from "fastify";
import { OtaError } from "../../../core/errors";
import { HEADER } from "../../../crypto/requestSignature";
import { MAX_GROUPS, MAX_TAGS_PER_DEVICE } from "../../deviceTags";
import { requireAdministrator } from "../../rolloutCohorts";
import { devicesMatching, handleUpdateRequest } from "../../updateRequests";
import {
  ANYONE,
  BODY_ERRORS,
  BYTES32,
  CohortsRequest,
  CohortsResult,
  EvidenceRequest,
  EvidenceResult,
  GroupName,
  GroupRemoved,
  GroupRequest,
  GroupResult,
  SIGNED_ERRORS,
  TagChange,
  TagChangeResult,
  UpdateRequest,
  UpdateRequestResult,
  errorResponses,
  ok,
} from "../schemas";
import type { TrackerApp } from "../server";
import type { RouteContext } from "./context";

/**
 * The headers of a request signed by an administrator's account (agent/crypto/requestSignature.ts).
 * Their rules are agent/crypto/requestAuth.ts's, checked before the body is read: these describe them.
 */
const SignedHeaders = z.looseObject({
  [HEADER.account]: z
    .string()
    .describe(
      "The administrator's Ethereum address (0x and 40 hex digits), the identity that signed the request (AUTH_MISSING without it, AUTH_MALFORMED if it is not an address).",
    ),
  [HEADER.timestamp]: z
    .string()
    .describe("When the request was signed, in milliseconds since the epoch; refused (AUTH_STALE) when more than a minute away from the tracker's clock."),
  [HEADER.nonce]: z
    .string()
    .describe(
      "16 random bytes as 32 lower-case hex digits, fresh for every request; a request whose account and nonce were seen before is refused (409 AUTH_REPLAY).",
    ),
  [HEADER.signature]: z
    .string()
    .describe(
      "EIP-191 signature (65 bytes, 0x hex) by the account of the request message: `OTA-Ledger-Request-v1 \\n tracker origin \\n method \\n path \\n account (lower case) \\n timestamp \\n nonce \\n sha256(body bytes, hex) \\n context`.",
    ),
  [HEADER.context]: z.string().optional().describe("Extra signed data; these requests use none. When sent, it is the last line of the signed message."),
});

const releaseInPath = (name: "releaseId" | "id") =>
  z.object({
    [name]: z
      .string()
      .regex(BYTES32, "the release id in the path is 0x followed by 64 hex digits")
      .transform((s) => s.toLowerCase())
      .describe("The release (any case)."),
  }) as z.ZodObject<Record<typeof name, z.ZodPipe<z.ZodString, z.ZodTransform<string, string>>>>;

/** Administrators' signed requests: update requests, rollout cohorts, policy evidence, tags and groups. */
export function adminRoutes(app: TrackerApp, { tracker, log }: RouteContext): void {
  const signed = { signed: true };
  /** The request's signer holds the role (asked again once the body is read), and the release in its path is in this tracker's mirror. */
  const administrator = async (req: FastifyRequest) => {
    await requireAdministrator(tracker.options.chain.registry, req.account!);
    return req.account!;
  };
  const mirrored = (releaseId: string) => {
    if (!tracker.store.catalogue.release(releaseId))
      throw new OtaError(
        "RELEASE_UNKNOWN",
        `release ${releaseId} is not in this tracker's mirror of the ledger (yet): check the id, or retry once the tracker has followed the ledger`,
      );
  };

  app.post(
    "/v1/update-requests",
    {
      config: signed,
      schema: {
        operationId: "postUpdateRequest",
        summary: "An administrator requests an update",
        description: [
          "X.1368 PROC-2. An administrator asks for a release to be installed on devices named by id or selected by a filter, a group or a tag query. The request is signed by the administrator's Ethereum account (headers below, agent/crypto/requestSignature.ts) for this tracker's origin, so it cannot be replayed here or elsewhere, and is checked against the ledger: the account must hold the registry's ADMINISTRATOR_ROLE; the release must exist and be active and its provider not barred; an imageLocation must be the release's recorded file link. A request may name a release bundle (bundleId, docs/adr/0019) instead: every member is validated as a release, each device is checked with the ledger's checkBundle and decided the bundle as one step.",
          "",
          "Nothing is decided if the request fails. Otherwise each selected device must be enrolled, active and of a supported hardware class, and the registry's checkInstallable must pass for it; the devices that fail are listed with their reason, the others get a decision and receive their notice at their next contact (CAP-11.3-g).",
        ].join("\n"),
        tags: ["administrators"],
        "x-x1368": ["PROC-2", "CAP-11.3-g"],
        security: ANYONE,
        headers: SignedHeaders,
        body: UpdateRequest.describe("The release and the devices. The exact bytes sent are the ones signed."),
        response: {
          ...ok("The request was taken: decisions made and devices refused.", UpdateRequestResult),
          ...errorResponses(
            ...BODY_ERRORS,
            ...SIGNED_ERRORS,
            "RELEASE_UNKNOWN",
            "RELEASE_NOT_VERIFIED",
            "RELEASE_NOT_ACTIVE",
            "PROVIDER_BARRED",
            "IMAGE_LOCATION_MISMATCH",
            "BUNDLES_NOT_DEPLOYED",
            "BUNDLE_UNKNOWN",
            "NO_DEVICES",
            "QUERY_INVALID",
            "GROUP_UNKNOWN",
            "NOT_FROM_REGISTRY",
            "NOT_RELEASE_EVENT",
            "RELEASE_EVENT_MISMATCH",
          ),
        },
      },
    },
    async (req) => {
      const account = req.account!;
      const { registry, policies, bundles, domain, fromBlock } = tracker.options.chain;
      const result = await handleUpdateRequest({ registry, policies, bundles, domain, fromBlock, db: tracker.store, now: tracker.now }, account, req.body);
      log(
        `update request ${result.requestId} by ${account}: ${result.bundle ? "bundle" : "release"} ${result.releaseId}, ${result.decided} decided, ${result.refused.length} refused${
          result.deadline === null ? "" : `, deadline ${new Date(result.deadline).toISOString()}`
        }`,
      );
      return result;
    },
  );

  app.post(
    "/v1/rollouts/:releaseId/cohorts",
    {
      config: signed,
      schema: {
        operationId: "postRolloutCohorts",
        summary: "An administrator gives a staged rollout's cohorts",
        description: [
          "X.1368 APP-II-3. The device ids of each wave of a release's staged rollout. Signed by an administrator exactly as POST /v1/update-requests (headers below, for this tracker's origin and this path; ADMINISTRATOR_ROLE on the registry). When the release's policy is a StagedRollout or a composer holding one, each wave's cohort root must be the root each such rollout holds on the ledger (409 ROLLOUT_ROOT_MISMATCH names the wave).",
          "",
          "The tracker keeps each device's evidence (its wave and Merkle proof), asks the ledger with it before every notice and hands it out with the notice. A later request for the same release replaces the evidence of the devices it names.",
        ].join("\n"),
        tags: ["administrators"],
        "x-x1368": ["APP-II-3"],
        security: ANYONE,
        headers: SignedHeaders,
        params: releaseInPath("releaseId"),
        body: CohortsRequest.describe("The waves. The exact bytes sent are the ones signed."),
        response: {
          ...ok("The cohorts were kept.", CohortsResult),
          ...errorResponses(...BODY_ERRORS, ["BAD_REQUEST", 414], ...SIGNED_ERRORS, "RELEASE_UNKNOWN", "ROLLOUT_ROOT_MISMATCH"),
        },
      },
    },
    async (req) => {
      const account = await administrator(req);
      const releaseId = req.params.releaseId;
      mirrored(releaseId);
      const result = await tracker.setRolloutCohorts(releaseId, req.body.waves);
      log(`rollout cohorts of release ${releaseId} by ${account}: ${result.devices} device(s) in ${result.roots.length} wave(s)`);
      return { releaseId, devices: result.devices, roots: result.roots };
    },
  );

  // `:id`, as GET /v1/releases/:id/adoption: Fastify takes one parameter name per path segment.
  app.post(
    "/v1/releases/:id/evidence",
    {
      config: signed,
      schema: {
        operationId: "postPolicyEvidence",
        summary: "An administrator gives devices the evidence a release's policy needs",
        description: [
          "X.1368 APP-II-3. Per device, the evidence an update policy reads (an allowlist proof, a cohort proof: whatever the policy's `check` takes), for one policy of the release's composition or for every policy. Signed by an administrator exactly as POST /v1/update-requests (headers below, for this tracker's origin and this path; ADMINISTRATOR_ROLE on the registry).",
          "",
          "The tracker keeps it, asks the ledger with it before every notice and hands it out with the notice. Each policy of a composition gets its own part: the tracker joins a device's parts in one envelope. A later request for the same release and policy replaces the evidence of the devices it names. 409 POLICY_NOT_ATTACHED when `policy` is not a leaf policy of the release's (composers pass evidence on); 409 POLICY_READS_WHOLE_EVIDENCE when it reads its evidence whole (deployed before the envelope: send without `policy`); 409 EVIDENCE_CONFLICT when a device holds evidence for every policy that the part would replace (the cohort proofs of the release's staged rollouts are kept as their parts instead).",
        ].join("\n"),
        tags: ["administrators"],
        "x-x1368": ["APP-II-3"],
        security: ANYONE,
        headers: SignedHeaders,
        params: releaseInPath("id"),
        body: EvidenceRequest.describe("The evidence. The exact bytes sent are the ones signed."),
        response: {
          ...ok("The evidence was kept.", EvidenceResult),
          ...errorResponses(
            ...BODY_ERRORS,
            ["BAD_REQUEST", 414],
            ...SIGNED_ERRORS,
            "RELEASE_UNKNOWN",
            "EVIDENCE_INVALID",
            "POLICY_NOT_ATTACHED",
            "POLICY_READS_WHOLE_EVIDENCE",
            "EVIDENCE_CONFLICT",
          ),
        },
      },
    },
    async (req) => {
      const account = await administrator(req);
      const releaseId = req.params.id;
      mirrored(releaseId);
      const { policy, devices } = req.body;
      const result = await tracker.setPolicyEvidence(releaseId, policy, devices);
      log(`policy evidence of release ${releaseId} for ${policy || "every policy"} by ${account}: ${result.devices} device(s)`);
      return { releaseId, policy: policy || null, devices: result.devices };
    },
  );

  // Device tags and groups (issue 19, item 11): administrators write, readers read.
  app.post(
    "/v1/fleet/devices/:id/tags",
    {
      config: signed,
      schema: {
        operationId: "postDeviceTags",
        summary: "An administrator sets or removes a device's tags",
        description:
          "X.1368 CAP-11.2-a. Tags are the tracker's labels on a device (issue 19, item 11): at most 32, keys of 1 to 64 characters, values of 1 to 128. Signed by an administrator exactly as POST /v1/update-requests (for this path). Nothing is changed when any part is refused. A device that now matches the group or query of an earlier update request joins it (after the same ledger checks). The tags are anchored with the device's status (anchor format 2).",
        tags: ["administrators"],
        "x-x1368": ["CAP-11.2-a"],
        security: ANYONE,
        headers: SignedHeaders,
        params: z.object({
          id: z
            .string()
            .regex(BYTES32, "the device id in the path is 0x followed by 64 hex digits")
            .transform((s) => s.toLowerCase())
            .describe("The device (any case)."),
        }),
        body: TagChange.describe("The change. The exact bytes sent are the ones signed."),
        response: {
          ...ok("The device's tags after the change.", TagChangeResult),
          ...errorResponses(...BODY_ERRORS, ["BAD_REQUEST", 414], ...SIGNED_ERRORS, "TAG_INVALID", "TAG_KEY_RESERVED", "TAG_LIMIT", "DEVICE_UNKNOWN"),
        },
      },
    },
    async (req) => {
      const account = await administrator(req);
      const deviceId = req.params.id;
      const set = req.body.set ?? {};
      const remove = req.body.remove ?? [];
      if (!tracker.store.devices.get(deviceId))
        throw new OtaError("DEVICE_UNKNOWN", `no device ${deviceId} in this tracker's fleet (as it follows the ledger)`);
      const tags = tracker.store.tags.change(deviceId, set, remove, MAX_TAGS_PER_DEVICE);
      log(`tags of device ${deviceId} by ${account}: set ${Object.keys(set).join(",") || "-"}, removed ${remove.join(",") || "-"}`);
      const joined = await tracker.tagsChanged([deviceId]);
      return { deviceId, tags, joinedRequests: joined };
    },
  );

  app.post(
    "/v1/groups",
    {
      config: signed,
      schema: {
        operationId: "postGroup",
        summary: "An administrator saves a group (a named tag query)",
        description:
          "X.1368 CAP-11.2-a. A dynamic group: its query is evaluated whenever the group is used (update requests, the device list's group=), so devices join and leave it as their tags change. Signed by an administrator exactly as POST /v1/update-requests (for this path). A later group of the same name replaces the query; devices it now selects join the requests that target it.",
        tags: ["administrators"],
        "x-x1368": ["CAP-11.2-a"],
        security: ANYONE,
        headers: SignedHeaders,
        body: GroupRequest.describe("The group. The exact bytes sent are the ones signed."),
        response: { ...ok("The group was saved.", GroupResult), ...errorResponses(...BODY_ERRORS, ...SIGNED_ERRORS, "QUERY_INVALID", "GROUP_LIMIT") },
      },
    },
    async (req) => {
      const account = await administrator(req);
      const body = req.body;
      if (!tracker.store.groups.get(body.name) && tracker.store.groups.list().length >= MAX_GROUPS)
        throw new OtaError("GROUP_LIMIT", `a tracker keeps at most ${MAX_GROUPS} groups: remove one first`);
      tracker.store.groups.put(body.name, body.query, account, tracker.now());
      log(`group ${body.name} = ${body.query} by ${account}`);
      const devices = devicesMatching(tracker.store, body.terms);
      await tracker.tagsChanged(devices.slice(0, 100_000));
      return { name: body.name, query: body.query, devices: devices.length };
    },
  );

  app.delete(
    "/v1/groups/:name",
    {
      config: signed,
      schema: {
        operationId: "deleteGroup",
        summary: "An administrator removes a group",
        description:
          "Signed by an administrator exactly as POST /v1/update-requests (method DELETE, this path, an empty body). Requests that targeted it keep the devices they decided; no device joins them any more.",
        tags: ["administrators"],
        security: ANYONE,
        headers: SignedHeaders,
        params: z.object({ name: GroupName.describe("The group's name.") }),
        response: { ...ok("The group was removed.", GroupRemoved), ...errorResponses(...BODY_ERRORS, ["BAD_REQUEST", 414], ...SIGNED_ERRORS, "GROUP_UNKNOWN") },
      },
    },
    async (req) => {
      const account = await administrator(req);
      const name = req.params.name;
      if (!tracker.store.groups.delete(name)) throw new OtaError("GROUP_UNKNOWN", `no group "${name}" on this tracker`);
      log(`group ${name} removed by ${account}`);
      return { name, removed: true as const };
    },
  );
}
