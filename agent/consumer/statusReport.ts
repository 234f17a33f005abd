import { createHash } from "node:crypto";
import { sealMessage, type Envelope } from "../crypto/sealedMessage";
import { newSessionOffer, sealWithSession, sessionKey, type SessionEnvelope } from "../crypto/reportSession";
import { InputError } from "../core/errors";
import { REPORT_KIND, type StatusReport } from "../core/statusReport";
import { NOTICES_PER_ANSWER_MAX, REPORT_LIST_MAX } from "../core/wireLimits";
import { openReportTransport, ReportDeliveryError, type ReportAnswer, type ReportTransport, type TrackerSetting } from "./reportTransport";

export { ReportDeliveryError } from "./reportTransport";

/**
 * The device's report session with its tracker module (ADR 0013): made by a full sealed report
 * whose offer the module took, then used for the reports after it. Kept in memory only: a restart
 * of the device opens a new one (its first report is a full one), and nothing of it is at rest.
 * It holds for one module id and key and one device key: a change of any opens a new one.
 */
export class ReportSession {
  private current: { moduleId: string; modulePublicKey: string; deviceKey: string; id: string; key: Buffer } | undefined;

  /** The session id in use, if any. */
  get id(): string | undefined {
    return this.current?.id;
  }

  /** Ends the session: the next report is a full sealed report, which offers a new one. */
  clear(): void {
    this.current = undefined;
  }

  /** @internal the session for this module and device key, if it is the one held. */
  use(tracker: { moduleId: string; publicKey: string }, deviceKey: string): { id: string; key: Buffer } | undefined {
    const c = this.current;
    if (!c) return undefined;
    if (c.moduleId !== tracker.moduleId.toLowerCase() || c.modulePublicKey !== tracker.publicKey.toLowerCase() || c.deviceKey !== deviceKey) {
      this.current = undefined; // the module, its key or the device key changed: a new session is needed
      return undefined;
    }
    return c;
  }

  /** @internal */
  set(tracker: { moduleId: string; publicKey: string }, deviceKey: string, id: string, key: Buffer): void {
    this.current = { moduleId: tracker.moduleId.toLowerCase(), modulePublicKey: tracker.publicKey.toLowerCase(), deviceKey, id: id.toLowerCase(), key };
  }
}

/**
 * Seals a report to the tracker module's public key, signed with the device key, and sends it over
 * the device's report transport (HTTP `POST /v1/reports` by default, or MQTT: ADR 0015). The
 * transport only carries bytes: the seal carries the security. The answer carries the module's
 * sealed update notices for this device (ADR 0004), which the caller verifies before acting on any.
 *
 * With a `session` (ADR 0013): while the module holds a session with this device, the report is
 * sealed under the session key (the module opens it with one AES-GCM, no key exchange nor
 * signature); otherwise, or when the module refuses the session (REPORT_SESSION_*: expired, its
 * key rotated, its database restored, ...), the same report goes as a full sealed report that
 * offers a new session, which the module's answer confirms.
 *
 * The answer is read up to a bound (agent/core/wireLimits.ts): a tracker, or whatever sits on the
 * path, cannot grow the device's memory, nor make it open more than NOTICES_PER_ANSWER_MAX
 * notices (a key exchange and a ledger check each) for one report; the excess is dropped and
 * logged, and the tracker notices again at the next report.
 */
export async function sendStatusReport(
  report: StatusReport,
  device: { privateKey: string },
  tracker: TrackerSetting & { reportTransport?: ReportTransport },
  now = Date.now(),
  log?: (line: string) => void,
  session?: ReportSession,
): Promise<{ envelope: Envelope | SessionEnvelope; notices: Envelope[] }> {
  const transport = tracker.reportTransport ?? openReportTransport(tracker, { privateKey: device.privateKey, id: report.deviceId }, log);
  try {
    return await sendOver(transport, report, device, tracker, now, log, session);
  } finally {
    if (!tracker.reportTransport) await transport.close();
  }
}

async function sendOver(
  transport: ReportTransport,
  report: StatusReport,
  device: { privateKey: string },
  tracker: TrackerSetting,
  now: number,
  log: ((line: string) => void) | undefined,
  session: ReportSession | undefined,
): Promise<{ envelope: Envelope | SessionEnvelope; notices: Envelope[] }> {
  const body = withinLimits(report);
  const message = { kind: REPORT_KIND, from: report.deviceId, to: tracker.moduleId, issuedAt: now, body };
  const deviceKey = session ? createHash("sha256").update(device.privateKey.toLowerCase()).digest("hex") : "";
  const held = session?.use(tracker, deviceKey);
  if (held) {
    const envelope = sealWithSession(message, held);
    try {
      return { envelope, notices: readAnswer(await transport.exchange(envelope), log) };
    } catch (err) {
      if (!(err instanceof ReportDeliveryError) || !err.refusal?.startsWith("REPORT_SESSION_")) throw err;
      // The report was not taken: the same report (same counter) goes in full, and opens a new session.
      session!.clear();
      log?.(`the tracker refused report session ${held.id} (${err.refusal}); sending the report sealed in full`);
    }
  }
  const offer = session ? newSessionOffer() : undefined;
  const envelope = await sealMessage(
    offer ? { ...message, body: { ...body, session: { id: offer.id, commitment: offer.commitment } } } : message,
    { kind: "device", privateKey: device.privateKey },
    tracker.publicKey,
    offer ? { sessionSecret: offer.secret } : undefined,
  );
  let answered: { id?: unknown } | undefined;
  const notices = readAnswer(await transport.exchange(envelope), log, (s) => (answered = s as { id?: unknown }));
  // The module took the offer: its answer names the session (a tracker without sessions does not, and reports stay full).
  if (offer && typeof answered?.id === "string" && answered.id.toLowerCase() === offer.id) {
    session!.set(tracker, deviceKey, offer.id, sessionKey(offer.secret, offer.id, report.deviceId, tracker.moduleId));
  }
  return { envelope, notices };
}

/** The notices of an answer to a report the tracker took (bounded), and its session confirmation to `onSession`. */
function readAnswer(taken: ReportAnswer, log?: (line: string) => void, onSession?: (session: unknown) => void): Envelope[] {
  // The report was taken; an answer too large or not JSON only loses this round's notices.
  if (taken.unusable !== undefined) log?.(`the tracker's answer to the report is unusable, its notices are dropped: ${taken.unusable}`);
  const answer = (typeof taken.body === "object" && taken.body !== null ? taken.body : {}) as { notices?: unknown; session?: unknown };
  const notices = Array.isArray(answer.notices) ? (answer.notices as Envelope[]) : [];
  if (notices.length > NOTICES_PER_ANSWER_MAX) {
    log?.(
      `the tracker's answer holds ${notices.length} notices; taking the first ${NOTICES_PER_ANSWER_MAX} and dropping ${notices.length - NOTICES_PER_ANSWER_MAX} (the tracker notices again at the next report)`,
    );
  }
  onSession?.(answer.session);
  return notices.slice(0, NOTICES_PER_ANSWER_MAX);
}

/**
 * The report as the tracker takes it (REPORT_LIST_MAX entries a list): the newest needed and
 * declined releases, and every installed component, which a device cannot leave out.
 */
function withinLimits(report: StatusReport): StatusReport {
  if (report.installed.length > REPORT_LIST_MAX) {
    throw new InputError(
      "REPORT_TOO_MANY_COMPONENTS",
      `the device runs ${report.installed.length} components; a status report holds at most ${REPORT_LIST_MAX}: configure fewer components`,
    );
  }
  return {
    ...report,
    needs: report.needs.slice(-REPORT_LIST_MAX),
    declined: report.declined.slice(-REPORT_LIST_MAX),
  };
}
