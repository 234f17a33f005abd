/**
 * The tracker module's timings and limits when its options leave them out (agent/tracker/trackerModule.ts
 * TrackerModuleOptions): one place, read by the module and by the pieces that take them.
 */
export const TRACKER_DEFAULTS = {
  livenessMs: 15 * 60_000, // no contact for this long: unreachable
  renoticeMs: 60 * 60_000, // a notice not acted on is handed out again after this long
  adoptionSampleMs: 60_000,
  upstreamMs: 30_000, // how often an intermediate module posts upstream
  maxMessageAgeMs: 10 * 60_000, // module messages older than this are refused
  failureReportMs: 30_000, // how often failure totals are posted, at most
  anchorMs: 60 * 60_000, // how often the fleet's status is anchored (0: never)
  anchorRecordsKept: 168, // the anchors whose records are kept to serve proofs: a week of hourly anchors
  downloadLogMs: 60_000, // how often the firmware servers' download logs are read
  pollMs: 2000, // ledger polling
  confirmations: 0,
  ledgerTxDeadlineMs: 180_000, // how long a ledger-duty transaction may wait to be mined before it is cancelled
  ledgerTxPollMs: 1000, // between receipt polls
} as const;
