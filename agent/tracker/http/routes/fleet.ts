import { isAddress } from "ethers";
import * as z from "zod";
import type { StatusReport } from "../../../core/statusReport";
import { OtaError } from "../../../core/errors";
import { parseTagQuery, type QueryTerm } from "../../deviceTags";
import { DEVICE_STATUSES } from "../../fleetViews";
import { devicesMatching, requestProgress } from "../../updateRequests";
import {
  AdoptionPoints,
  BYTES32,
  AnchorList,
  AnchorProof,
  DeviceDetail,
  DeviceList,
  GroupList,
  GroupName,
  ModuleList,
  PATH_ERRORS,
  READER,
  ReleaseList,
  RequestList,
  RequestProgress,
  RolloutList,
  Summary,
  TagQuery,
  errorResponses,
  ok,
  wholeNumber,
  type Refusal,
} from "../schemas";
import type { TrackerApp } from "../server";
import type { RouteContext } from "./context";

/** What a reader may be refused: no token (when the tracker has one). */
const readerErrors = (...more: Refusal[]) => errorResponses(...more, "UNAUTHORIZED");

const page = (limit: string, offset: string) => ({
  limit: wholeNumber("limit").optional().describe(limit).meta({ default: 50 }),
  offset: wholeNumber("offset").optional().describe(offset).meta({ default: 0 }),
});

/** The device list's tag filter: `tag=k=v` (repeatable; every term must hold), at most 32. */
const tagTerms = z
  .preprocess(
    (v) => (v === undefined || Array.isArray(v) ? v : [v]),
    z
      .array(TagQuery)
      .superRefine((t, ctx) => {
        if (t.length > 32) ctx.addIssue({ code: "custom", message: "at most 32 tag terms", params: { code: "QUERY_INVALID" } });
      })
      .meta({ maxItems: 32 })
      .optional(),
  )
  .transform((t): QueryTerm[] => (t ?? []).flatMap((q) => parseTagQuery(q)));

/** Reads of the fleet, for readers (a bearer token when the tracker has one). */
export function fleetRoutes(app: TrackerApp, { tracker, reader, refusalNames }: RouteContext): void {
  app.addHook("onRequest", async (req) => {
    if (req.routeOptions.schema?.security === READER) reader(req);
  });

  app.get(
    "/v1/fleet/summary",
    {
      schema: {
        operationId: "getFleetSummary",
        summary: "Device counts by status",
        description:
          "X.1368 CAP-11.2-a, CAP-11.2-b, CAP-11.1-b. How many devices of this module's fleet are up to date, outdated, vulnerable, failed, in safe mode (waiting for a person to install by hand), unreachable or suspended, for the whole fleet and per network. A device can count under several statuses.",
        tags: ["fleet"],
        "x-x1368": ["CAP-11.2-a", "CAP-11.2-b", "CAP-11.1-b"],
        security: READER,
        response: { ...ok("The summary.", Summary), ...readerErrors() },
      },
    },
    async () => tracker.views.summary(),
  );

  app.get(
    "/v1/fleet/devices",
    {
      schema: {
        operationId: "listDevices",
        summary: "Devices, by status, network, region, hardware and tags",
        description:
          "X.1368 CAP-11.2-a, CAP-11.2-b, CAP-11.1-b. The lists of devices by status (e.g. all vulnerable devices, all unreachable devices of a network, all devices in safe mode that need a person), one page at a time. Filters combine: a device is listed when it matches every one given. Each device carries its hardware class's name (`hardwareName`) and each component it runs its name (`componentName`, which with `version` names the release it runs, CAP-11.2-b-iii), beside the ids, from this module's ledger mirror: no ledger call per device.",
        tags: ["fleet"],
        "x-x1368": ["CAP-11.2-a", "CAP-11.2-b", "CAP-11.1-b"],
        security: READER,
        querystring: z.object({
          status: z
            .enum(DEVICE_STATUSES, `status must be one of ${DEVICE_STATUSES.join(", ")}`)
            .optional()
            .describe("Only devices with this status (see DeviceStatus)."),
          network: z.string().optional().describe("Only devices of this network: its label (at most 31 bytes) or its bytes32 hex."),
          region: z.string().optional().describe("Only devices of this region: its label (at most 31 bytes) or its bytes32 hex."),
          hardware: wholeNumber("hardware").optional().describe("Only devices of this hardware class."),
          q: z.string().optional().describe("Only devices whose id starts with this hex (with or without 0x)."),
          tag: tagTerms.describe(
            "Only devices matching this tag query (repeatable; every one must hold): terms joined by commas, k=v, k!=v, k, !k, network=, region=, hardware= (issue 19, item 11). QUERY_INVALID otherwise.",
          ),
          group: z.preprocess((v) => (v === "" ? undefined : v), GroupName.optional()).describe("Only devices the group of this name selects now."),
          ...page("The page size (at most 1000; more is taken as 1000).", "How many matching devices to skip."),
        }),
        response: { ...ok("The matching devices.", DeviceList), ...readerErrors("BAD_REQUEST", "QUERY_INVALID", "GROUP_UNKNOWN") },
      },
    },
    async (req) => {
      const q = req.query;
      const terms = [...q.tag];
      if (q.group !== undefined) {
        const g = tracker.store.groups.get(q.group);
        if (!g) throw new OtaError("GROUP_UNKNOWN", `no group "${q.group}" on this tracker`);
        terms.push(...parseTagQuery(g.query));
      }
      return tracker.views.devices({
        status: q.status,
        network: q.network || undefined,
        region: q.region || undefined,
        hardware: q.hardware,
        q: q.q || undefined,
        tags: terms.length ? terms : undefined,
        limit: q.limit,
        offset: q.offset,
      });
    },
  );

  app.get(
    "/v1/fleet/devices/:id",
    {
      schema: {
        operationId: "getDevice",
        summary: "One device: view, plan, reports and decisions",
        description:
          "X.1368 CAP-11.2-a, CAP-11.2-b, CAP-11.2-c, CAP-11.3-g. Everything this module knows of one device: what it runs and its statuses, the install plan the resolver made for its configuration (which update it needs, dependencies first, and why other components get none), its latest reports, the updates decided for it by name, the notices handed out for it, and what it fetched from the firmware servers. Components, releases and the hardware class are named beside their ids (`componentName`, `releaseName`, `hardwareName`; null while the mirror does not hold a name). Any id that is not a device of this fleet is 404 DEVICE_UNKNOWN.",
        tags: ["fleet"],
        "x-x1368": ["CAP-11.2-a", "CAP-11.2-b", "CAP-11.2-c", "CAP-11.3-g"],
        security: READER,
        params: z.object({ id: z.string().describe("The device id (any case).") }),
        response: { ...ok("The device.", DeviceDetail), ...readerErrors(...PATH_ERRORS, "DEVICE_UNKNOWN") },
      },
    },
    async (req) => {
      const found = tracker.views.device(req.params.id);
      if (!found) throw new OtaError("DEVICE_UNKNOWN", "no such device in this tracker's fleet");
      // A policy's refusal the device reported, with the policy that decided and its reason's name (issue 18).
      const last = (found.reports[0]?.body as StatusReport | undefined)?.lastResult;
      // Only a refusal of a release the report names: the device's word, which the answer's schema holds to.
      const refused =
        last?.code === "POLICY_REFUSED" && last.policy && isAddress(last.policy.address) && BYTES32.test(last.releaseId ?? "") ? last.policy : undefined;
      const policyRefusal = refused ? await refusalNames.of(refused.address, String(refused.reason)) : null;
      return { ...found, policyRefusal: policyRefusal && { releaseId: last!.releaseId, ...policyRefusal } } as z.infer<typeof DeviceDetail>;
    },
  );

  app.get(
    "/v1/releases",
    {
      schema: {
        operationId: "listReleases",
        summary: "Releases and how far the fleet took them",
        description:
          "X.1368 CAP-11.2-a, CAP-11.2-b. Every release this module's ledger mirror holds, with its ledger status and supported hardware, and how many devices of the fleet run it, were notified of it and failed to install it.",
        tags: ["fleet"],
        "x-x1368": ["CAP-11.2-a", "CAP-11.2-b"],
        security: READER,
        response: { ...ok("The releases.", ReleaseList), ...readerErrors() },
      },
    },
    async () => ({ releases: tracker.views.releases() }),
  );

  app.get(
    "/v1/releases/:id/adoption",
    {
      schema: {
        operationId: "getReleaseAdoption",
        summary: "Adoption of a release over time",
        description: "X.1368 CAP-11.2-a. How many devices ran the release at each sample time, oldest first: the adoption curve of the dashboard.",
        tags: ["fleet"],
        "x-x1368": ["CAP-11.2-a"],
        security: READER,
        params: z.object({
          id: z.string().describe("The release id (any case); any id that is not in this module's mirror of the ledger is 404 RELEASE_UNKNOWN."),
        }),
        response: { ...ok("The adoption curve.", AdoptionPoints), ...readerErrors(...PATH_ERRORS, "RELEASE_UNKNOWN") },
      },
    },
    async (req) => {
      const id = req.params.id.toLowerCase();
      if (!tracker.store.catalogue.release(id)) throw new OtaError("RELEASE_UNKNOWN", `release ${id} is not in this tracker's mirror of the ledger`);
      return { releaseId: id, points: tracker.store.rollouts.adoption(id) };
    },
  );

  app.get(
    "/v1/rollouts",
    {
      schema: {
        operationId: "listRollouts",
        summary: "Rollouts in progress and done",
        description:
          "X.1368 CAP-11.2-c, CAP-11.3-g. For every release this module decided for some device: what started it, and how many devices were decided, notified, installed it, failed, or are still pending.",
        tags: ["fleet"],
        "x-x1368": ["CAP-11.2-c", "CAP-11.3-g"],
        security: READER,
        response: { ...ok("The rollouts.", RolloutList), ...readerErrors() },
      },
    },
    async () => ({ rollouts: tracker.views.rollouts() }) as z.infer<typeof RolloutList>,
  );

  app.get(
    "/v1/modules",
    {
      schema: {
        operationId: "listModules",
        summary: "The tracker modules below this one",
        description:
          "X.1368 DEP-8.2.3, CAP-11.2-a, CAP-11.2-b. The child modules that post their downstream status here: the networks each serves, when it last posted, whether it is reachable, how many devices reach the hierarchy through it and how many of those it cannot reach, and the modules below it.",
        tags: ["fleet"],
        "x-x1368": ["DEP-8.2.3", "CAP-11.2-a", "CAP-11.2-b"],
        security: READER,
        response: { ...ok("The modules.", ModuleList), ...readerErrors() },
      },
    },
    async () => ({ modules: tracker.views.modules() }) as z.infer<typeof ModuleList>,
  );

  // Campaigns (issue 19, item 11): the requests taken and their progress.
  app.get(
    "/v1/update-requests",
    {
      schema: {
        operationId: "listUpdateRequests",
        summary: "The update requests taken, and their progress",
        description:
          "X.1368 PROC-2, CAP-11.2-c. The administrators' update requests this tracker took, newest first, each with its counts (GET /v1/update-requests/{id} for its devices).",
        tags: ["fleet"],
        "x-x1368": ["PROC-2", "CAP-11.2-c"],
        security: READER,
        querystring: z.object(page("The page size (at least 1; more than 1000 is taken as 1000).", "How many to skip.")),
        response: { ...ok("The requests.", RequestList), ...readerErrors("BAD_REQUEST") },
      },
    },
    async (req) => {
      const limit = pageLimit(req.query.limit);
      const { total, requests } = tracker.store.requests.list(limit, req.query.offset ?? 0);
      return { total, requests: requests.map((r) => requestProgress(tracker.store, r.id, tracker.now())!) } as z.infer<typeof RequestList>;
    },
  );

  app.get(
    "/v1/update-requests/:id",
    {
      schema: {
        operationId: "getUpdateRequest",
        summary: "An update request's progress",
        description:
          "X.1368 PROC-2, CAP-11.2-c. An update request and where each device it decided stands: installed, failed, blocked, refused (with the device's code, e.g. DEFERRED_TO_WINDOW, VERSION_PINNED), notified or pending; and how many are past the deadline without it installed.",
        tags: ["fleet"],
        "x-x1368": ["PROC-2", "CAP-11.2-c"],
        security: READER,
        params: z.object({
          id: z
            .string()
            .regex(/^0x[0-9a-fA-F]{32}$/, "an update request id is 0x followed by 32 hex digits")
            .describe("The request id (POST /v1/update-requests answered it)."),
        }),
        response: { ...ok("The request and its devices.", RequestProgress), ...readerErrors(...PATH_ERRORS, "REQUEST_UNKNOWN") },
      },
    },
    async (req) => {
      const id = req.params.id.toLowerCase();
      const progress = requestProgress(tracker.store, id, tracker.now(), { devices: true });
      if (!progress) throw new OtaError("REQUEST_UNKNOWN", `no update request ${id} on this tracker: \`ota-ledger update status\` lists them`);
      return progress as z.infer<typeof RequestProgress>;
    },
  );

  app.get(
    "/v1/groups",
    {
      schema: {
        operationId: "listGroups",
        summary: "The groups saved on this tracker",
        description: "X.1368 CAP-11.2-a. Each group's name, query, who saved it and when, and how many devices it selects now (evaluated at the request).",
        tags: ["fleet"],
        "x-x1368": ["CAP-11.2-a"],
        security: READER,
        response: { ...ok("The groups.", GroupList), ...readerErrors() },
      },
    },
    async () => ({
      groups: tracker.store.groups.list().map((g) => ({ ...g, devices: devicesMatching(tracker.store, parseTagQuery(g.query)).length })),
    }),
  );

  app.get(
    "/v1/anchors",
    {
      schema: {
        operationId: "listAnchors",
        summary: "The status anchors this tracker made",
        description:
          "X.1368 CAP-11.2-a, CAP-11.2-b. The anchors of the fleet's status this tracker made on the ledger (StatusAnchors), newest first: root, device count, counts per release, the transaction. An empty list when the tracker anchors nothing (no ledger account or no StatusAnchors).",
        tags: ["fleet"],
        "x-x1368": ["CAP-11.2-a", "CAP-11.2-b"],
        security: READER,
        querystring: z.object(page("The page size (at least 1; more than 1000 is taken as 1000).", "How many anchors to skip.")),
        response: { ...ok("The anchors.", AnchorList), ...readerErrors("BAD_REQUEST") },
      },
    },
    async (req) => {
      const limit = pageLimit(req.query.limit);
      if (!tracker.anchoring) return { total: 0, anchors: [] };
      return tracker.anchoring.list(limit, req.query.offset ?? 0);
    },
  );

  app.get(
    "/v1/anchors/:index/devices/:deviceId",
    {
      schema: {
        operationId: "getAnchorProof",
        summary: "A device's record in an anchor, and its proof",
        description:
          "X.1368 CAP-11.2-a, CAP-11.2-b. The status record of one device in one anchor and its Merkle proof, as StatusAnchors.verifyStatus(anchorIndex, record, proof) takes them: a device or an auditor checks it on the ledger, trusting the tracker for nothing.",
        tags: ["fleet"],
        "x-x1368": ["CAP-11.2-a", "CAP-11.2-b"],
        security: READER,
        params: z.object({
          index: z
            .string()
            .regex(/^\d{1,9}$/, "the anchor index must be a whole number")
            .transform(Number)
            .describe("The anchor's index on StatusAnchors."),
          deviceId: z.string().describe("The device id (any case)."),
        }),
        response: {
          ...ok("The record and its proof.", AnchorProof),
          ...readerErrors(...PATH_ERRORS, "ANCHOR_UNKNOWN", "ANCHOR_RECORDS_PRUNED", "DEVICE_NOT_IN_ANCHOR"),
        },
      },
    },
    async (req) => {
      const { index, deviceId } = req.params;
      if (!tracker.anchoring) throw new OtaError("ANCHOR_UNKNOWN", `this tracker made no anchor ${index}`);
      return tracker.anchoring.proof(index, deviceId.toLowerCase()) as z.infer<typeof AnchorProof>;
    },
  );
}

/** A page size: 50 unless given, at least 1, at most 1000 (more is taken as 1000). */
function pageLimit(given: number | undefined): number {
  const limit = Math.min(given ?? 50, 1000);
  if (limit < 1) throw new OtaError("BAD_REQUEST", "limit must be at least 1");
  return limit;
}
