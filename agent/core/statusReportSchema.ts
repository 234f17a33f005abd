// A namespace import lets a bundler leave out zod's locales (ADR 0007); the device agent does not
// import this module: it writes reports of the type in ./statusReport.ts.
import * as z from "zod";
import type { StatusReport } from "./statusReport";

/**
 * A status report as a tracker takes it (PROC-5, CAP-11.1-a): the one definition of its wire shape,
 * which the tracker's intake checks (agent/tracker/reportIntake.ts, over HTTP and MQTT) and its
 * OpenAPI document shows (agent/tracker/http/). The device writes `StatusReport`
 * (./statusReport.ts), kept as a plain interface so that the device bundle carries no schema
 * code; the assertions at the end of this file hold the two together at compile time: the same
 * fields, and every report a device writes is one a tracker takes.
 *
 * A tracker takes what it checks and keeps the rest as sent (objects are loose): fields that
 * older devices do not send are optional here, and `needs`, `credential` and `sources` are not
 * read by the intake (a batch device's credential is checked on its own, ledgerMirror).
 */

const HEX32 = /^0x[0-9a-fA-F]{64}$/;
const hex32 = (what: string) => z.string().regex(HEX32, `${what} is 0x and 64 hex digits`);

export const StatusReportSchema = z
  .looseObject({
    deviceId: z.string().describe("The device, as the envelope's `from` (in the device's own case)."),
    counter: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).describe("Rises with every report the device sends (a whole number above 0)."),
    installed: z
      .array(
        z.looseObject({
          component: hex32("a component id"),
          version: z
            .string()
            .regex(/^\d{1,20}$/, "a version is the encoded version as a decimal integer")
            .describe("The encoded version as a decimal integer."),
          releaseId: hex32("a release id"),
          slot: z.string().optional().describe('The A/B slot it runs from ("a" or "b"), as the device sent it.'),
        }),
      )
      .describe("What the device runs, one entry per component."),
    lastResult: z
      .looseObject({
        releaseId: z
          .union([z.literal(""), hex32("lastResult.releaseId")])
          .optional()
          .describe("The release the result is about."),
        component: z.string().optional().describe("Its component."),
        outcome: z
          .string()
          .describe(
            "confirmed, rolled-back or failed (the release failed on the device after an intact delivery), blocked (delivery blocked: retried), rejected (refused: revoked, another hardware class...), declined (the device's own policy). agent/core/updateOutcome.ts",
          ),
        code: z.string().describe("The code that came with the outcome."),
        at: z.number().optional().describe("When (ms)."),
        policy: z
          .looseObject({ address: z.string(), reason: z.string() })
          .optional()
          .describe("For POLICY_REFUSED: the policy the ledger asked and its answer, a decimal reason code (issue 18)."),
      })
      .nullable()
      .describe("The outcome of the previous update (CAP-11.1-a-i); null if none."),
    needs: z
      .array(z.looseObject({ releaseId: z.string().optional(), component: z.string().optional(), reason: z.string().optional() }))
      .optional()
      .describe("Updates it learned of and needs (CAP-11.1-a-iv), as the device sent them."),
    declined: z
      .array(z.looseObject({ releaseId: hex32("declined.releaseId"), code: z.string().optional() }))
      .optional()
      .describe("Updates it declined by its own policy (CAP-11.1-a-vi): reported, not silent."),
    safeMode: z
      .boolean()
      .optional()
      .describe("Whether it runs in safe mode (CAP-11.1-b), as the device sent it: the device is then listed with the status safe-mode."),
    credential: z
      .unknown()
      .optional()
      .describe("A device enrolled in a Merkle batch: its record, batch id and proof, so that a tracker that has only the batch root can take it."),
    sources: z.unknown().optional().describe("Where the device fetches releases from and how each source fared (REQ-10f-ii)."),
    session: z
      .looseObject({
        id: z.string().regex(/^0x[0-9a-fA-F]{32}$/, "a report session's id is 0x and 32 hex digits"),
        commitment: hex32("a report session's commitment"),
      })
      .optional()
      .describe("A report session the device offers (ADR 0013): its id and the sha256 of its secret, signed with the report."),
  })
  .describe(
    "What a device tells its tracker (PROC-5, CAP-11.1-a), as agent/core/statusReportSchema.ts defines it, stored as the device sent it. The tracker checks deviceId, counter, installed, lastResult (null or with an outcome and a code), declined, safeMode and a session offer; the other fields are kept as sent.",
  );

/** A report as a tracker takes it. */
export type TakenStatusReport = z.infer<typeof StatusReportSchema>;

// ---------------------------------------------------------------------------- held together at compile time
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;
/** The schema's fields without its looseness (an interface has no index signature to match one). */
type Declared = z.input<z.ZodObject<typeof StatusReportSchema.shape>>;
/** The schema names exactly the fields of the device's StatusReport. */
export type SameFields = Assert<Equal<keyof typeof StatusReportSchema.shape, keyof StatusReport>>;
/** Every report a device writes is one a tracker takes (as far as types tell). */
export type DeviceReportsAreTaken = Assert<StatusReport extends Declared ? true : false>;
