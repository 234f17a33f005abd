import * as z from "zod";
import { REPORT_KIND } from "../../../core/statusReport";
import { count } from "./common";

/**
 * Sealed messages as they travel (agent/crypto/sealedMessage.ts, agent/crypto/reportSession.ts):
 * the envelope a device's status report, a child module's downstream status and the tracker's
 * notices and decisions come in. The report envelope is the one shape both intakes read: POST
 * /v1/reports and the MQTT reports topic (agent/tracker/reportIntake.ts reportEnvelope).
 */

const SEALED = /^0x(?:[0-9a-fA-F]{2})+$/;
const envelopeShape = `{v: 1, kind: "${REPORT_KIND}", from, to, sealed: "0x<hex>"}`;

const envelopeFields = {
  v: z.literal(1, `v is 1: a sealed envelope ${envelopeShape}`).describe("Envelope format version."),
  kind: z
    .string(`kind names what is sealed: a sealed envelope ${envelopeShape}`)
    .describe(`What the sealed message is: "${REPORT_KIND}", "update-notice", "downstream-status" or "update-decisions".`),
  from: z.string(`from is the sender's id: a sealed envelope ${envelopeShape}`).describe("The sender: a device id or a tracker-module id."),
  to: z.string(`to is the recipient's id: a sealed envelope ${envelopeShape}`).describe("The recipient: a tracker-module id or a device id."),
  sealed: z.string(`sealed is the ciphertext: a sealed envelope ${envelopeShape}`).regex(SEALED, `sealed is the ciphertext as "0x<hex>" (whole bytes)`),
};

export const Envelope = z.object(envelopeFields).meta({
  id: "Envelope",
  description:
    "A sealed message (agent/crypto/sealedMessage.ts): signed by the sender (a device with its enrolled key, a tracker module with its registered signer), then sealed with ECIES to the recipient's public key. Only `v`, `kind`, `from` and `to` are in the clear, for routing; the recipient checks that the sealed copy agrees with them.",
  examples: [{ v: 1, kind: REPORT_KIND, from: "0x" + "ab".repeat(32), to: "0x" + "cd".repeat(32), sealed: "0x01" + "00".repeat(120) }],
});

/**
 * A posted status report: sealed in full (an Envelope), or under the device's report session
 * (ADR 0013) when it names one. Checked before anything costly is done with it.
 */
export const ReportEnvelope = z
  .object({
    ...envelopeFields,
    session: z
      .string()
      .regex(/^0x[0-9a-fA-F]{32}$/, 'a session report names its session as "0x" and 32 hex digits')
      .optional()
      .describe(
        "Only for a report sealed under a report session (ADR 0013, agent/crypto/reportSession.ts): the session's id (16 bytes), as the module confirmed it. `sealed` is then nonce (12 bytes) | AES-256-GCM ciphertext | tag (16 bytes) under the session's key, and v, kind, from, to and session are authenticated with it.",
      ),
  })
  .meta({
    id: "ReportEnvelope",
    description: `A "${REPORT_KIND}" message from a device: sealed in full (as an Envelope), or, with \`session\`, sealed under its report session (ADR 0013), which the device offered in a full sealed report (its id and commitment signed with its enrolled key, the secret sealed to this module) and this module took.`,
    examples: [
      { v: 1, kind: REPORT_KIND, from: "0x" + "ab".repeat(32), to: "0x" + "cd".repeat(32), sealed: "0x01" + "00".repeat(120) },
      { v: 1, kind: REPORT_KIND, from: "0x" + "ab".repeat(32), to: "0x" + "cd".repeat(32), session: "0x" + "5e".repeat(16), sealed: "0x" + "00".repeat(60) },
    ],
  });
export type ReportEnvelope = z.infer<typeof ReportEnvelope>;

export const ReportAccepted = z
  .object({
    accepted: z.literal(true),
    counter: z.number().int().min(1).describe("The counter of the report taken."),
    session: z
      .object({
        id: z
          .string()
          .regex(/^0x[0-9a-f]{32}$/)
          .describe("The session's id, as the device offered it."),
        expiresAt: z.number().int().describe("When the module stops taking reports under it (ms); the device then sends a full report, which offers another."),
      })
      .optional()
      .describe(
        "Present when this report (sealed in full) offered a report session and the module took it: the device seals its next reports under it (ADR 0013). A module that forwards reports upstream takes no session.",
      ),
    notices: z
      .array(Envelope)
      .describe('Update notices for the device (kind "update-notice"), signed by this module and sealed to the device; empty when none is due.'),
  })
  .meta({ id: "ReportAccepted" });

export const DownstreamAccepted = z
  .object({
    accepted: z.literal(true),
    taken: count("How many of the forwarded device reports were taken."),
    refused: z
      .array(z.object({ deviceId: z.string().describe("The device the report claims to come from."), code: z.string() }))
      .describe(
        "The forwarded reports that were not taken, with the code of the check each failed (e.g. REPORT_SIGNATURE, REPORT_REPLAYED, REPORT_NOT_FOR_MODULE); one bad report does not block the others.",
      ),
    decisions: Envelope.describe(
      'The decisions for the child module\'s devices (kind "update-decisions", body `{decisions, acknowledges}`), signed by this module and sealed to the child, sent even when there are none: `acknowledges` is the counter of the status it answers, and the child drops the reports it forwarded only on that signed word, never on a bare 200.',
    ),
  })
  .meta({ id: "DownstreamAccepted" });
