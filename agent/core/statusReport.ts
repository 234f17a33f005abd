/** The report a device sends its tracker: one shape for the device that writes it and the tracker that reads it. */

/** PROC-5 / CAP-11.1-a-i, -iv: what a device tells its tracker. */
export interface StatusReport {
  deviceId: string;
  counter: number; // monotonic per device, persisted: a replayed report is older than the last one
  installed: { component: string; version: string; releaseId: string; slot: "a" | "b" }[];
  /** `policy`: for POLICY_REFUSED, the policy the ledger asked and its answer (a decimal reason code). */
  lastResult: null | { releaseId: string; component: string; outcome: string; code: string; at: number; policy?: { address: string; reason: string } };
  needs: { releaseId: string; component: string; reason: string }[]; // updates it learned of and needs (CAP-11.1-a-iv)
  declined: { releaseId: string; code: string }[]; // updates it declined by its own policy (CAP-11.1-a-vi): reported, not silent
  safeMode: boolean;
  /**
   * A device enrolled in a Merkle batch sends its record and proof, so that a tracker that has
   * only the batch root from the ledger can take it (the report is signed by the record's key).
   */
  credential?: { record: { id: string; publicKey: string; hardwareClass: number; network: string; region: string }; batchId: number; proof: string[] };
  /** Where the device fetches releases from and how each source fared (REQ-10f-ii): a bad mirror shows at once. */
  sources?: SourceHealth[];
  /**
   * A report session the device offers the tracker module (ADR 0013): its id and the sha256 of its
   * secret, signed with the report; the secret itself travels beside the signature in the seal.
   * Once the module took it, the device's next reports are sealed under the session key.
   */
  session?: { id: string; commitment: string };
}

/** A firmware server (artifact, chunk list, wrapped key) or an IPFS trustless gateway (blocks only). */
export type SourceKind = "server" | "gateway";

/** One delivery source as the device sees it. */
export interface SourceHealth {
  url: string;
  kind: SourceKind;
  lastCode: string | null; // "OK" after a delivery, else the last failure's code
  failures: number; // delivery faults of its own so far (wrong bytes, 5xx, unreachable, ...)
  demotedAt: number | null; // ms; while set, the source is tried after the others
  lastOkAt?: number; // ms, its last delivery
}

export const REPORT_KIND = "status-report";
