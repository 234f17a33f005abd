import { AuthenticationError, InputError } from "../core/errors";
import { openMessage, type Envelope } from "../crypto/sealedMessage";
import { REPORT_KIND, type StatusReport } from "../core/statusReport";
import type { FleetDatabase } from "./fleetDatabase";

/** A report the tracker does not take: unknown or inactive device, wrong key, replay. */
export class ReportRefused extends AuthenticationError {}

/**
 * Takes one sealed status report addressed to this tracker module (PROC-5): it must open with the
 * module's key, come from a device the fleet database knows (from the ledger's enrolment) and is
 * active, be signed by that device's enrolled key, and carry a counter above the last one taken
 * (no replay). The report and what the device runs are stored in one transaction.
 */
export function takeSealedReport(db: FleetDatabase, envelope: Envelope, module: { id: string; privateKey: string }, now: number): StatusReport {
  const { message, signedBy } = openMessage<StatusReport>(envelope, module.privateKey, module.id, "device");
  if (message.kind !== REPORT_KIND) throw new ReportRefused("REPORT_KIND", `a ${message.kind} message is not a status report`);
  const device = db.device(message.from);
  if (!device) throw new ReportRefused("REPORT_UNKNOWN_DEVICE", `device ${message.from} is not enrolled in this fleet`);
  if (device.standing !== "active") throw new ReportRefused("REPORT_DEVICE_NOT_ACTIVE", `device ${message.from} is ${device.standing}`);
  if (signedBy.toLowerCase() !== device.publicKey.toLowerCase()) throw new ReportRefused("REPORT_SIGNATURE", `the report is not signed by device ${message.from}'s enrolled key`);
  const report = message.body;
  if (!report || report.deviceId?.toLowerCase() !== message.from.toLowerCase() || !Number.isSafeInteger(report.counter) || !Array.isArray(report.installed)) {
    throw new InputError("REPORT_MALFORMED", "a status report names its device, a counter and the installed components");
  }
  if (!db.takeReport(message.from, report.counter, now, report)) throw new ReportRefused("REPORT_REPLAYED", `report ${report.counter} of device ${message.from} is not newer than the last one taken`);
  return report;
}
