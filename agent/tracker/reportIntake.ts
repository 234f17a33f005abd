import { AuthenticationError, InputError } from "../core/errors";
import { openMessage, recoverMessageSigner, type Envelope, type OpenedMessage } from "../crypto/sealedMessage";
import { REPORT_KIND, type StatusReport } from "../core/statusReport";
import type { FleetDatabase } from "./fleetDatabase";

/** A report the tracker does not take: unknown or inactive device, wrong key, replay. */
export class ReportRefused extends AuthenticationError {}

/** A report as its device signed it: what a module forwards to the module above it. */
export interface SignedReport {
  message: OpenedMessage<StatusReport>;
  signature: string;
}

/**
 * Takes one sealed status report addressed to this tracker module (PROC-5): it must open with the
 * module's key, and pass {@link acceptReport}. Returns the report as signed, to forward upstream.
 */
export function takeSealedReport(db: FleetDatabase, envelope: Envelope, module: { id: string; privateKey: string }, now: number): SignedReport {
  const { message, signedBy, signature } = openMessage<StatusReport>(envelope, module.privateKey, module.id, "device");
  acceptReport(db, message, signedBy, now, module.id);
  return { message, signature };
}

/** One report's outcome in a batch: taken (as signed, to forward) or refused with the error a single intake would throw. */
export type BatchedReport = { ok: true; report: SignedReport } | { ok: false; error: Error };

/**
 * Takes several sealed reports with one durable commit (one WAL fsync for the batch instead of one
 * per report): each report is opened and passes exactly the checks of {@link takeSealedReport},
 * and one that is refused (or fails) leaves the others and the database as they were. Reports of
 * the same device are taken in array order. Returns when the batch is committed: a caller answers
 * the devices only then, so a report acknowledged is a report stored.
 */
export function takeSealedReports(db: FleetDatabase, envelopes: readonly Envelope[], module: { id: string; privateKey: string }, now: number): BatchedReport[] {
  // The cryptography first, outside the transaction, so the write lock is held only for the writes.
  const opened = envelopes.map((envelope) => {
    try {
      return openMessage<StatusReport>(envelope, module.privateKey, module.id, "device");
    } catch (error) {
      return error as Error;
    }
  });
  return db.transaction(() =>
    opened.map((o): BatchedReport => {
      if (o instanceof Error) return { ok: false, error: o };
      try {
        // Each report in its own savepoint: a refusal or failure undoes only its own writes.
        db.transaction(() => acceptReport(db, o.message, o.signedBy, now, module.id));
        return { ok: true, report: { message: o.message, signature: o.signature } };
      } catch (error) {
        return { ok: false, error: error as Error };
      }
    }),
  );
}

/**
 * Takes a report a module below forwarded: the device's own signature is checked, so the module in
 * between cannot alter it (ADR 0004); it must have been addressed to that module.
 */
export function takeForwardedReport(db: FleetDatabase, r: SignedReport, via: string, now: number): StatusReport {
  if (!r?.message || typeof r.signature !== "string") throw new InputError("REPORT_MALFORMED", "a forwarded report is {message, signature}");
  if (String(r.message.to).toLowerCase() !== via.toLowerCase()) throw new ReportRefused("REPORT_NOT_FOR_MODULE", `the report was sealed for ${r.message.to}, not the forwarding module ${via}`);
  return acceptReport(db, r.message, recoverMessageSigner(r.message, r.signature, "device"), now, via);
}

/**
 * The checks every report passes, wherever it entered the hierarchy: it is a status report, from a
 * device the fleet database knows (from the ledger's enrolment) and is active, signed by that
 * device's enrolled key, with a counter above the last one taken (no replay). The report and what
 * the device runs are stored in one transaction.
 */
function acceptReport(db: FleetDatabase, message: OpenedMessage<StatusReport>, signedBy: string, now: number, via: string): StatusReport {
  if (message.kind !== REPORT_KIND) throw new ReportRefused("REPORT_KIND", `a ${message.kind} message is not a status report`);
  const device = db.device(message.from);
  if (!device) throw new ReportRefused("REPORT_UNKNOWN_DEVICE", `device ${message.from} is not enrolled in this fleet`);
  if (device.standing !== "active") throw new ReportRefused("REPORT_DEVICE_NOT_ACTIVE", `device ${message.from} is ${device.standing}`);
  if (signedBy.toLowerCase() !== device.publicKey.toLowerCase()) throw new ReportRefused("REPORT_SIGNATURE", `the report is not signed by device ${message.from}'s enrolled key`);
  const report = message.body;
  if (!isReport(report, message.from)) throw new InputError("REPORT_MALFORMED", "a status report names its device, a counter and the installed components");
  if (!db.takeReport(message.from, report.counter, now, report, via)) throw new ReportRefused("REPORT_REPLAYED", `report ${report.counter} of device ${message.from} is not newer than the last one taken`);
  return report;
}

function isReport(r: StatusReport, from: string): boolean {
  const hex32 = (x: unknown) => typeof x === "string" && /^0x[0-9a-fA-F]{64}$/.test(x);
  return (
    !!r &&
    typeof r.deviceId === "string" &&
    r.deviceId.toLowerCase() === from.toLowerCase() &&
    Number.isSafeInteger(r.counter) &&
    r.counter > 0 &&
    Array.isArray(r.installed) &&
    r.installed.every((i) => hex32(i?.component) && hex32(i?.releaseId) && typeof i.version === "string" && /^\d{1,20}$/.test(i.version)) &&
    (r.lastResult === null || (typeof r.lastResult === "object" && typeof r.lastResult.outcome === "string")) &&
    (r.declined === undefined || (Array.isArray(r.declined) && r.declined.every((d) => hex32(d?.releaseId))))
  );
}
