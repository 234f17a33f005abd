/**
 * The services' timings and limits when their options leave them out: one place, read by the services
 * themselves (programmatic use, tests) and by the settings table (agent/cli/settings.ts), which shows
 * them as its defaults in docs/configuration.md. Here in core because the device bundle loads the
 * settings table and must not load agent/tracker or agent/server.
 *
 * The tracker module's (agent/tracker/trackerModule.ts TrackerModuleOptions):
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
  reorgWindow: 64, // recent blocks remembered to undo a reorganisation (the event stream's window)
  ledgerTxDeadlineMs: 180_000, // how long a ledger-duty transaction may wait to be mined before it is cancelled
  ledgerTxPollMs: 1000, // between receipt polls
} as const;

/**
 * How much a provider may keep on a firmware server for releases it has not published (yet)
 * (agent/server/preparedRelease.ts explains the bound).
 */
export const PREPARED_DEFAULTS = {
  ttlMs: 7 * 24 * 3600 * 1000,
  maxPerProvider: 8,
  maxBytesPerProvider: 4 * 1024 ** 3,
};
