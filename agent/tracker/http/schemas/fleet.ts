import * as z from "zod";
import { StatusReportSchema } from "../../../core/statusReportSchema";
import { RESULT_KINDS } from "../../../core/updateOutcome";
import { DEVICE_STATUSES } from "../../fleetViews";
import { Bytes32, Version, address, bundleNamed, componentName, count, id, ms, msOrNull, releaseName } from "./common";
import { Tags } from "./admin";

/** What readers read (GET /v1/fleet/*, /v1/releases*, /v1/rollouts, /v1/modules, /v1/anchors*, /v1/update-requests*, /v1/groups, /v1/health). */

export const DeviceStatus = z.enum(DEVICE_STATUSES, `status must be one of ${DEVICE_STATUSES.join(", ")}`).meta({
  id: "DeviceStatus",
  description:
    "outdated: its plan has steps; vulnerable: it runs a release flagged vulnerable or revoked; failed: a release was delivered to it intact (every chunk verified against the ledger) and then failed: it did not decrypt or hash to the ledger's file hash, the install failed, or the trial boot or health check failed (only these count against a rollout); blocked: its delivery of `lastRelease` is blocked since `blockedSince` by something outside the release, named by `lastCode` (a server's or proxy's error, a mirror's wrong bytes, the network, the device's clock, a key not granted yet): retried, never a failure, the release still offered; refused: its last result is a correct refusal, with the reason in `lastCode` (revoked, vulnerable, barred, another hardware class, an unmet dependency, a policy, declined by the device's own policy) (agent/core/updateOutcome.ts defines the three kinds); safe-mode: its latest report says it runs in safe mode (X.1368 CAP-11.1-b: its boot state was corrupt, it lists nothing installed, refuses automatic updates and waits for a person to install a release by hand, `ota-ledger device install`); unreachable: no contact within the liveness window; up-to-date: none of these (a device that never reported is not up to date: what it runs is unknown; nor is a device in safe mode); suspended: suspended or withdrawn on the ledger, and then its only status.",
});

/** A status report as the tracker keeps it: the intake's schema (agent/core/statusReportSchema.ts). */
export const StatusReport = StatusReportSchema.meta({ id: "StatusReport" });

export const InstalledComponent = z
  .object({ component: id("The component id."), componentName: componentName(), version: Version, releaseId: id("The release the device installed it from.") })
  .meta({
    id: "InstalledComponent",
    description: 'What a device runs of one component. Its release\'s name is `componentName` and `version` (e.g. "acme.bootloader 1.0.0").',
  });

const deviceExample = {
  id: "0x" + "ab".repeat(32),
  hardwareClass: 3,
  hardwareName: "rev-c",
  network: "plant-north",
  region: "eu-west",
  standing: "active",
  statuses: ["outdated", "unreachable"],
  installed: [{ component: "0x" + "01".repeat(32), componentName: "acme.bootloader", version: "2.4.1", releaseId: "0x" + "02".repeat(32) }],
  lastSeen: 1767225600000,
  lastOutcome: "confirmed",
  lastCode: "OK",
  lastKind: "installed",
  lastRelease: "0x" + "02".repeat(32),
  lastReleaseName: "acme.bootloader 2.4.1",
  blockedSince: null,
  upstream: "0x" + "cd".repeat(32),
  safeMode: false,
};

export const DeviceView = z
  .object({
    id: id("The device id."),
    hardwareClass: z.number().int().min(0).describe("The hardware class it is enrolled with."),
    hardwareName: z.string().nullable().describe("That hardware class's registered name (e.g. \"rev-c\"); null while this module's mirror does not hold it."),
    network: z.string().describe("The network label it is enrolled with, decoded (the bytes32 hex when it is not a label)."),
    region: z.string().describe("The region label it is enrolled with, decoded (the bytes32 hex when it is not a label)."),
    standing: z.enum(["active", "suspended", "revoked"]).describe("Its standing on the ledger (revoked: the enrolment was withdrawn)."),
    statuses: z.array(DeviceStatus).describe("Every status that applies (a device can be vulnerable and unreachable at once)."),
    installed: z.array(InstalledComponent).describe("What it runs, as of its last report."),
    lastSeen: msOrNull("Its last contact (a report, a download from a firmware server, or a module below vouching for it); null if never."),
    lastOutcome: z.string().nullable().describe("The outcome of its last update, e.g. confirmed, rolled-back, rejected; null if none reported."),
    lastCode: z.string().nullable().describe("The code that came with that outcome: the cause of a blocked delivery, the reason of a refusal."),
    lastKind: z
      .enum(RESULT_KINDS)
      .nullable()
      .describe("What its last result means (agent/core/updateOutcome.ts): installed, failed, blocked or refused; null if none reported."),
    lastRelease: Bytes32.nullable().describe("The release its last result is about; null if none."),
    lastReleaseName: releaseName("That release"),
    blockedSince: msOrNull("Since when its delivery of lastRelease is blocked (lastKind blocked); null otherwise."),
    upstream: Bytes32.nullable().describe(
      "The tracker module its last report came through: this module's id when it reports directly, a child module's id otherwise; null before its first report.",
    ),
    safeMode: z
      .boolean()
      .describe(
        "Whether its latest report says it runs in safe mode (CAP-11.1-b): it then has the status safe-mode, lists nothing installed, and needs a person to install a release by hand; false before its first report.",
      ),
    tags: Tags.optional(),
  })
  .meta({
    id: "DeviceView",
    description: "One device as this module sees it: its ledger enrolment, what it last reported, and its statuses.",
    examples: [
      deviceExample,
      {
        ...deviceExample,
        id: "0x" + "ef".repeat(32),
        statuses: ["safe-mode"],
        installed: [],
        lastOutcome: null,
        lastCode: null,
        lastKind: null,
        lastRelease: null,
        lastReleaseName: null,
        safeMode: true,
      },
    ],
  });

export const DeviceList = z
  .object({
    total: count("How many devices match the filters (before limit and offset)."),
    devices: z.array(DeviceView).describe("The page asked for, in id order."),
  })
  .meta({ id: "DeviceList" });

const statusCounts = {
  upToDate: count("Devices up to date."),
  outdated: count("Devices whose plan has steps."),
  vulnerable: count("Devices running a release flagged vulnerable or revoked."),
  failed: count("Devices whose last update failed after an intact delivery (see DeviceStatus)."),
  blocked: count("Devices whose delivery is blocked by a server, a mirror, the network or their clock (see DeviceStatus)."),
  refused: count("Devices whose last result is a correct refusal (see DeviceStatus)."),
  safeMode: count("Devices whose latest report says they run in safe mode (CAP-11.1-b): each waits for a person to install by hand."),
  unreachable: count("Devices not heard from within the liveness window."),
};

export const StatusCounts = z
  .object({ ...statusCounts, suspended: count("Devices suspended or withdrawn on the ledger.") })
  .meta({ id: "StatusCounts", description: "Device counts by status for the whole fleet. A device may count under several statuses." });

export const NetworkCounts = z
  .object({
    network: z.string().describe("The network label (the bytes32 hex when it is not a label)."),
    total: count("Devices in that network."),
    ...statusCounts,
  })
  .meta({ id: "NetworkCounts", description: "Device counts by status in one network (suspended devices count in `total` only)." });

export const Summary = z
  .object({
    generatedAt: ms("When the summary was computed."),
    livenessMs: count("The liveness window: a device not heard from for this long is unreachable."),
    total: count("Devices in this module's fleet."),
    counts: StatusCounts,
    byNetwork: z.array(NetworkCounts),
  })
  .meta({
    id: "Summary",
    description: "Device counts by status, for the whole fleet and per network. A device may count under several statuses.",
    examples: [
      {
        generatedAt: 1767225600000,
        livenessMs: 3600000,
        total: 1200,
        counts: { upToDate: 1099, outdated: 80, vulnerable: 5, failed: 3, blocked: 7, refused: 12, safeMode: 1, unreachable: 40, suspended: 2 },
        byNetwork: [
          {
            network: "plant-north",
            total: 1200,
            upToDate: 1099,
            outdated: 80,
            vulnerable: 5,
            failed: 3,
            blocked: 7,
            refused: 12,
            safeMode: 1,
            unreachable: 40,
          },
        ],
      },
    ],
  });

export const PlanStep = z
  .object({
    component: id("The component to update."),
    componentName: componentName(),
    releaseId: id("The release to install."),
    version: Version,
    reason: z.enum(["new-release", "outdated", "vulnerable-installed", "revoked-installed", "dependency"]).describe("Why this step is planned."),
  })
  .meta({ id: "PlanStep" });

export const DeviceDetail = z
  .object({
    policyRefusal: z
      .object({
        releaseId: Bytes32,
        policy: z.string().describe("The policy attached (the one the ledger asked)."),
        reason: z.string().describe("Its answer, a decimal reason code (a composer's carries the member's path)."),
        path: z
          .array(z.object({ composer: z.string(), member: z.number().int().min(0), address: z.string() }))
          .describe("The composers' members the refusal went through, outermost first."),
        decidedBy: z
          .object({ policy: z.string(), reason: z.string(), name: z.string().nullable() })
          .describe("The policy that refused, its own reason code and that code's name."),
      })
      .nullable()
      .describe(
        "When the device's latest report is a POLICY_REFUSED naming the policy (issue 18): the policy the ledger asked, its answer, the members of a composer down to the policy that refused, and that policy's reason by name (reasonName; null when the policy names none). Null otherwise, or while the ledger does not answer.",
      ),
    device: DeviceView,
    plan: z
      .object({
        steps: z.array(PlanStep),
        unchanged: z.array(
          z.object({
            component: id("The component."),
            componentName: componentName(),
            code: z
              .enum([
                "UP_TO_DATE",
                "NO_RELEASE",
                "NO_RELEASE_FOR_HARDWARE",
                "NO_TRUSTED_RELEASE",
                "PREVIOUSLY_FAILED",
                "PINNED",
                "NOT_A_SECURITY_FIX",
                "TARGET_NOT_AVAILABLE",
                "DEPENDENCY_UNSATISFIABLE",
                "SEARCH_LIMIT",
              ])
              .describe("Why no step (agent/core/installPlan.ts UnchangedCode)."),
          }),
        ),
      })
      .describe(
        "The install plan of the device's configuration (CAP-11.2-c): steps in order, dependencies first, and why the other managed components get none. Empty until the device's first report.",
      ),
    reports: z
      .array(
        z.object({
          counter: z.number().int().min(1),
          receivedAt: ms("When this module took it."),
          // A report stored by an earlier version, whose intake took looser shapes, is answered as it was
          // stored rather than failing the whole answer.
          body: z.union([
            StatusReport,
            z.record(z.string(), z.unknown()).describe("A report stored by an earlier version of the tracker, as it was received."),
          ]),
        }),
      )
      .describe("Its latest reports (at most 50), newest first, as the device sent them."),
    decisions: z
      .array(
        z.object({
          releaseId: Bytes32,
          releaseName: releaseName(),
          component: Bytes32,
          componentName: componentName(),
          reason: z
            .string()
            .describe(
              "Why it was decided: \"requested\" for an administrator's request, or a plan step's reason (the module above's, or this module's from the download logs).",
            ),
          origin: z
            .string()
            .describe(
              'Who decided: "request:<requestId>" for an administrator\'s update request, "upstream:<origin>" for the module above, "download-log" for this module from the firmware servers\' download logs.',
            ),
          decidedAt: ms("When it was decided."),
        }),
      )
      .describe(
        "Updates decided for it by name (CAP-11.3-g), oldest first: an administrator's update request, the module above's decisions, or (server module) what the firmware servers' download logs show it fetched and what it must now move to, for the components it does not report. The server module's plan from its reports is in `plan`, not here; how far each went is in `deliveries` and the device's `installed`.",
      ),
    deliveries: z
      .array(
        z.object({
          releaseId: Bytes32,
          releaseName: releaseName(),
          reason: z.string().describe("The plan step's reason, or the decision's."),
          origin: z.string().describe("\"ledger\" for this module's plan, or the decision's origin."),
          via: z
            .string()
            .describe('The module the notice went through: "direct" when handed to the device in the answer to its report, else the child module\'s id.'),
          deliveredAt: ms("When the notice was handed out."),
        }),
      )
      .describe(
        "The notices handed out for it, one per release (the latest), oldest first: which release, why, decided by whom, through which module, and when.",
      ),
    downloads: z
      .array(
        z.object({
          releaseId: Bytes32,
          kind: z
            .string()
            .describe(
              "What was fetched, as the firmware server logs it: artifact, block, car, delta (a release's delta from an earlier one, ADR 0018), key or manifest.",
            ),
          at: ms("When."),
          complete: z.boolean().describe("Whether the answer carried the artifact's last byte."),
        }),
      )
      .describe("What it fetched from the firmware servers whose download logs this module reads (CAP-11.2-b-i), newest first, at most 20."),
  })
  .meta({
    id: "DeviceDetail",
    description:
      "One device: its view, the resolver's plan for its configuration, its latest reports, the decisions recorded for it, the notices handed out, what it fetched from the firmware servers, and the update policy's refusal its latest report names.",
  });

export const Release = z
  .object({
    id: id("The release id."),
    component: id("The component id."),
    componentName: componentName(),
    version: Version,
    status: z.enum(["active", "vulnerable", "revoked"]).describe("Its status on the ledger."),
    hardware: z.array(z.number().int().min(0)).describe("The hardware classes it supports."),
    provider: z.number().int().min(0).describe("The id of its provider on the ledger."),
    publishedBlock: z.number().int().min(0).describe("The ledger block it was published in."),
    installed: count("Devices running it."),
    notified: count("Devices that were handed a notice for it."),
    failed: count("Devices whose last failed install was this release."),
    blocked: count("Devices whose delivery of this release is blocked now (a bad server or mirror shows here first); not failures."),
  })
  .meta({ id: "Release", description: "A release as mirrored from the ledger, with what this module's fleet did with it." });

export const ReleaseList = z.object({ releases: z.array(Release).describe("In ledger order.") }).meta({ id: "ReleaseList" });

export const AdoptionPoints = z
  .object({
    releaseId: Bytes32,
    points: z.array(z.object({ t: ms("The sample time."), installed: count("Devices running the release then.") })),
  })
  .meta({
    id: "AdoptionPoints",
    description: "The adoption curve of a release: how many devices ran it over time, oldest point first (the latest 500).",
    examples: [
      {
        releaseId: "0x" + "02".repeat(32),
        points: [
          { t: 1767225600000, installed: 10 },
          { t: 1767229200000, installed: 640 },
        ],
      },
    ],
  });

export const Rollout = z
  .object({
    releaseId: Bytes32,
    bundle: bundleNamed().optional(),
    component: Bytes32,
    componentName: componentName(),
    version: Version,
    origin: z
      .string()
      .describe('What started it: "ledger" for this module\'s resolver after a ledger change, "request:<requestId>" for an administrator\'s update request.'),
    startedAt: ms("When the first decision was taken."),
    decided: count("Devices the release was decided for (installed + failed + pending)."),
    notified: count("Devices handed a notice for it."),
    installed: count("Devices running the release."),
    failed: count("Devices whose install of it failed after an intact delivery (only these count against a staged rollout)."),
    blocked: count("Of the pending devices, those whose delivery of it is blocked now (retried; never counted as failures)."),
    pending: count("Devices whose plan has it, and decided devices that do not run it yet."),
  })
  .meta({
    id: "Rollout",
    description:
      "The rollout of one release in this module's fleet (CAP-11.3-g): devices decided, notified, done and still pending. A release bundle's rollout (requested by an administrator) has `bundle`; its releaseId is the bundle's id, its component its first member's, a device counts installed once it runs every member and failed once, for the bundle.",
  });

export const RolloutList = z.object({ rollouts: z.array(Rollout).describe("Oldest first.") }).meta({ id: "RolloutList" });

export const ChildModule = z
  .object({
    id: id("The module id."),
    lastSeen: ms("Its last downstream status post to the child."),
    reachable: z.boolean().describe("Whether the child holds it reachable (false when the child itself is not reachable)."),
    devices: count("Devices it reported for."),
    unreachableDevices: count("Of those, devices it cannot reach (all of them when the child itself is not reachable)."),
  })
  .meta({ id: "ChildModule", description: "A module below a child module, as the child reported it (not checked by this module)." });

export const Module = z
  .object({
    id: id("The module id (as registered on the ledger)."),
    networks: z.array(z.string()).describe("The networks it serves, decoded to labels."),
    lastSeen: ms("Its last downstream status post taken."),
    reachable: z.boolean().describe("Whether it posted within the liveness window."),
    devices: count("Devices that reach the hierarchy through it."),
    unreachableDevices: count("Of those, devices it has not heard from within its liveness window (all of them when it is not reachable itself)."),
    children: z.array(ChildModule).describe("The modules below it, as it reported them."),
  })
  .meta({
    id: "Module",
    description:
      "A tracker module below this one, as its latest downstream status describes it (DEP-8.2.3). Counts, networks and children are as the module reported them, except that a module not reachable vouches for nothing below it: all its devices count as unreachable and its children as not reachable (CAP-11.2-m-c).",
  });

export const ModuleList = z.object({ modules: z.array(Module).describe("In id order.") }).meta({ id: "ModuleList" });

export const ReleaseCounts = z
  .object({
    releaseId: id("The release."),
    installed: count("Devices whose last result installed it."),
    failed: count("Devices whose last result failed it, rolled it back, or refused it for good."),
    pending: count("Devices whose last result is a blocked delivery or a refusal that passes by itself (not yet)."),
  })
  .meta({ id: "ReleaseCounts", description: "How many devices of an anchor report each outcome for one release (as StatusAnchors.anchor takes them)." });

export const Anchor = z
  .object({
    index: count("The anchor's index on StatusAnchors (anchorAt, verifyStatus)."),
    root: id("The Merkle root of the status records."),
    txHash: id("The transaction that made it."),
    block: count("The block it is in."),
    anchoredAt: ms("When the tracker recorded it."),
    deviceCount: count("How many devices' records it covers (every device that had reported)."),
    counts: z.array(ReleaseCounts).describe("Counts per release, ascending by release id (also in the StatusAnchored event)."),
    account: address("The tracker's ledger account that sent it (lower case)."),
    contract: address("The StatusAnchors contract (lower case)."),
  })
  .meta({
    id: "Anchor",
    description: "A status anchor this tracker made on the ledger (StatusAnchors): the Merkle root of its reported devices' status records.",
  });

export const AnchorList = z
  .object({ total: count("How many anchors this tracker made."), anchors: z.array(Anchor).describe("The page asked for, newest first.") })
  .meta({ id: "AnchorList" });

export const StatusRecord = z
  .object({
    deviceId: id("The device."),
    releaseId: id("The release its last result is about; zero when it reported none."),
    version: z
      .string()
      .regex(/^[0-9]{1,20}$/)
      .describe("The release's encoded version (uint64), decimal; 0 with no release."),
    outcome: z
      .number()
      .int()
      .min(0)
      .max(5)
      .describe("0 none, 1 installed, 2 pending, 3 failed, 4 rolled back, 5 rejected (agent/crypto/statusTree.ts STATUS_OUTCOME)."),
    reportCounter: z
      .string()
      .regex(/^[0-9]{1,20}$/)
      .describe("The counter of the report the record comes from (uint64), decimal."),
    reportedAt: z.number().int().min(0).describe("When the tracker took that report, unix seconds (uint40)."),
  })
  .meta({
    id: "StatusRecord",
    description:
      "A device's status record (IStatusAnchors.StatusRecord), in the form StatusAnchors.verifyStatus takes: the leaf is keccak256(keccak256(abi.encode(deviceId, releaseId, version, outcome, reportCounter, reportedAt))). Large integers are decimal strings.",
  });

export const AnchorProof = z
  .object({
    anchorIndex: count("The anchor's index on StatusAnchors."),
    root: id("The anchor's root (as anchorAt answers)."),
    contract: address("The StatusAnchors contract (lower case)."),
    record: StatusRecord,
    proof: z.array(Bytes32).describe("The sibling hashes from the leaf up (sorted pairs, OpenZeppelin MerkleProof)."),
    format: z
      .union([z.literal(1), z.literal(2)])
      .optional()
      .describe(
        "1: the device's node is its status leaf (anchors made before tags). 2: the device's node pairs its status leaf with its tags leaf, and proof[0] is the tags leaf (verifyStatus takes the proof unchanged; agent/tracker/deviceTags.ts verifyTagsProof checks the tags against the anchor's root).",
      ),
    tags: Tags.optional().describe("Format 2: the device's tags at the anchor, whose leaf is proof[0]."),
  })
  .meta({
    id: "AnchorProof",
    description: "A device's record in an anchor and its Merkle proof: StatusAnchors.verifyStatus(anchorIndex, record, proof) answers true.",
  });

const requestTarget = z
  .object({
    devices: count("Devices named.").optional(),
    filter: z.looseObject({}).optional().describe("The filter, as the request gave it."),
    group: z.string().optional(),
    query: z.string().optional(),
  })
  .describe("What it targeted: how many devices it named, the filter, the group or the query.");

export const RequestProgress = z
  .object({
    requestId: z.string().regex(/^0x[0-9a-f]{32}$/),
    releaseId: id("The release."),
    releaseName: releaseName(),
    bundle: bundleNamed().optional(),
    component: id("Its component (a bundle's first member's)."),
    target: requestTarget,
    deadline: msOrNull("Its deadline; null: none."),
    overridePins: z.boolean(),
    requestedBy: address("The administrator who made it."),
    requestedAt: ms("When it was taken."),
    counts: z.object({
      decided: count("Devices decided (also those that joined later by their tags)."),
      notified: count("Of them, devices told of the release."),
      installed: count("Devices that run the release (or a newer one)."),
      failed: count("Devices whose last result failed it after an intact delivery."),
      blocked: count("Devices whose delivery of it is blocked (retried)."),
      refused: count("Devices that refused it: declined by their own policy (VERSION_PINNED, DEFERRED_TO_WINDOW...) or their checks."),
      pending: count("Devices with no result about it yet (told or not)."),
      pastDeadline: count("Devices without it installed once the deadline passed."),
    }),
    notDecided: z
      .array(z.object({ deviceId: Bytes32, code: z.string(), message: z.string() }))
      .describe("Devices the request selected and left out, with the reason (as POST answered)."),
    devices: z
      .array(
        z.object({
          deviceId: Bytes32,
          state: z.enum(["installed", "failed", "blocked", "refused", "notified", "pending"]),
          code: z.string().nullable().describe("The code of its last result about the release (failed, blocked, refused)."),
          pastDeadline: z.boolean(),
        }),
      )
      .optional()
      .describe("GET /v1/update-requests/{id} only: each decided device and its state."),
  })
  .meta({ id: "RequestProgress", description: "An update request and where its devices stand (issue 19, item 11)." });

export const RequestList = z
  .object({ total: count("Requests this tracker took."), requests: z.array(RequestProgress).describe("Newest first.") })
  .meta({ id: "RequestList" });

export const GroupList = z
  .object({
    groups: z.array(
      z.object({
        name: z.string(),
        query: z.string(),
        createdBy: address("The administrator who saved it."),
        createdAt: ms("When."),
        devices: count("Devices it selects now."),
      }),
    ),
  })
  .meta({ id: "GroupList" });

export const Health = z
  .object({
    status: z
      .enum(["ok", "ledger-halted"])
      .describe(
        "ok: the module serves. ledger-halted (answered with 503): the chain reorganised below the blocks the module remembers (REORG_TOO_DEEP); its mirror stopped following the ledger, reports are still taken, and an operator stops it and runs `ota-ledger tracker resync` (docs/guides/operations.md).",
      ),
    module: z.object({
      id: id("This module's id."),
      role: z.enum(["server", "intermediate"]).describe("server: the top of the hierarchy; intermediate: it posts to a parent."),
      parent: Bytes32.nullable().describe("The parent module's id, as configured; null for a server module."),
      publicKey: z
        .string()
        .regex(/^0x0[23][0-9a-f]{64}$/)
        .describe(
          "This module's compressed secp256k1 public key: devices and child modules seal their messages to it (it is also on the ledger, in the module's registration).",
        ),
    }),
    ledger: z.object({
      block: z.number().int().min(0).nullable().describe("The last ledger block this module's mirror has applied; null before the first."),
      newestBlockTime: z
        .number()
        .int()
        .nullable()
        .optional()
        .describe("The time (unix s) of the newest block the module has read from its RPC endpoint(s); null before the first."),
      ageSeconds: z
        .number()
        .int()
        .min(0)
        .nullable()
        .optional()
        .describe(
          "How old that block is now: a frozen or lagging endpoint keeps answering with old blocks (on a development chain that mines only on demand, an idle chain ages too). Monitor it against the chain's block time.",
        ),
      halted: z
        .object({ code: z.literal("REORG_TOO_DEEP"), message: z.string(), fix: z.string() })
        .optional()
        .describe("Present only when status is ledger-halted: why the mirror stopped, and what to do."),
    }),
    devices: count("Devices in this module's fleet."),
    upstream: z
      .object({
        lastOk: msOrNull("The last exchange with the parent that succeeded; null if none yet."),
        lastError: z.string().nullable().describe("Why the last exchange failed; null once one succeeds."),
      })
      .nullable()
      .describe("An intermediate module's exchanges with its parent; null for a server module."),
  })
  .meta({
    id: "Health",
    examples: [
      {
        status: "ok",
        module: { id: "0x" + "cd".repeat(32), role: "server", parent: null, publicKey: "0x02" + "ef".repeat(32) },
        ledger: { block: 1204 },
        devices: 1200,
        upstream: null,
      },
    ],
  });
