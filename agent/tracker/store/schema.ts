import { NONCE_TABLE_SQL } from "../../database/sqliteNonceStore";
import { resultKindSql } from "../../core/updateOutcome";

/**
 * The fleet database's schema (agent/tracker/store): numbered migrations applied in order at open
 * (agent/database/sqlite migrate), each taking user_version i to i + 1. Never edit one that shipped: a
 * change is a new migration at the end, so that every database file opens and migrates as before.
 */

/** SQL: the kind of a report's last result, as agent/core/updateOutcome resultKind says. */
const reportKindSql = (body: string) => resultKindSql(`json_extract(${body}, '$.lastResult.outcome')`, `json_extract(${body}, '$.lastResult.code')`);

export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE devices (
     id TEXT PRIMARY KEY, public_key TEXT NOT NULL, hardware_class INTEGER NOT NULL, network TEXT NOT NULL,
     region TEXT NOT NULL, standing TEXT NOT NULL DEFAULT 'active', last_seen INTEGER, last_counter INTEGER NOT NULL DEFAULT 0,
     last_outcome TEXT, last_code TEXT);
   CREATE INDEX devices_by_hardware ON devices (hardware_class);
   CREATE TABLE installed (
     device_id TEXT NOT NULL, component TEXT NOT NULL, version TEXT NOT NULL, release_id TEXT NOT NULL,
     PRIMARY KEY (device_id, component));
   CREATE INDEX installed_by_release ON installed (release_id);
   CREATE TABLE releases (
     id TEXT PRIMARY KEY, component TEXT NOT NULL, provider INTEGER NOT NULL, version TEXT NOT NULL,
     hardware TEXT NOT NULL, status TEXT NOT NULL, block_hash TEXT NOT NULL, log_index INTEGER NOT NULL);
   CREATE INDEX releases_by_component ON releases (component);
   CREATE TABLE reports (
     id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, counter INTEGER NOT NULL, received_at INTEGER NOT NULL,
     body TEXT NOT NULL);
   CREATE INDEX reports_by_device ON reports (device_id, id);`,
  // The ledger events the mirror applied, so that a reorganisation can be undone exactly.
  `CREATE TABLE ledger_events (
     block_hash TEXT NOT NULL, log_index INTEGER NOT NULL, block_number INTEGER NOT NULL, kind TEXT NOT NULL,
     subject TEXT NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (block_hash, log_index));
   CREATE INDEX ledger_events_by_subject ON ledger_events (subject, block_number, log_index);`,
  // Configurations (ADR 0004): devices with the same hardware, installed versions and last failed
  // release share one plan. The full release record (dependencies) and barred providers feed the
  // resolver. Decisions of administrators, notices delivered, rollouts, adoption samples and the
  // modules below this one.
  `CREATE TABLE configs (
     id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, hardware_class INTEGER NOT NULL, installed TEXT NOT NULL,
     failed_release TEXT);
   ALTER TABLE devices ADD COLUMN config_id INTEGER;
   ALTER TABLE devices ADD COLUMN failed_release TEXT;
   ALTER TABLE devices ADD COLUMN declined TEXT NOT NULL DEFAULT '[]';
   ALTER TABLE devices ADD COLUMN upstream TEXT;
   CREATE INDEX devices_by_config ON devices (config_id);
   CREATE INDEX devices_by_network ON devices (network);
   ALTER TABLE releases ADD COLUMN record TEXT NOT NULL DEFAULT '{}';
   ALTER TABLE releases ADD COLUMN published_at INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE providers (id INTEGER PRIMARY KEY, barred INTEGER NOT NULL);
   CREATE TABLE decisions (
     device_id TEXT NOT NULL, release_id TEXT NOT NULL, component TEXT NOT NULL, reason TEXT NOT NULL, origin TEXT NOT NULL,
     decided_at INTEGER NOT NULL, PRIMARY KEY (device_id, release_id));
   CREATE INDEX decisions_by_release ON decisions (release_id);
   CREATE TABLE deliveries (
     device_id TEXT NOT NULL, release_id TEXT NOT NULL, reason TEXT NOT NULL, origin TEXT NOT NULL, via TEXT NOT NULL,
     delivered_at INTEGER NOT NULL, PRIMARY KEY (device_id, release_id));
   CREATE INDEX deliveries_by_release ON deliveries (release_id);
   CREATE TABLE rollouts (release_id TEXT PRIMARY KEY, origin TEXT NOT NULL, started_at INTEGER NOT NULL);
   CREATE TABLE adoption (release_id TEXT NOT NULL, at INTEGER NOT NULL, installed INTEGER NOT NULL, PRIMARY KEY (release_id, at));
   CREATE TABLE modules (
     id TEXT PRIMARY KEY, networks TEXT NOT NULL, last_seen INTEGER NOT NULL, last_counter INTEGER NOT NULL DEFAULT 0,
     devices INTEGER NOT NULL DEFAULT 0, unreachable_devices INTEGER NOT NULL DEFAULT 0, children TEXT NOT NULL DEFAULT '[]');
   CREATE INDEX devices_by_upstream ON devices (upstream);
   CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
   CREATE TABLE downloads (
     server TEXT NOT NULL, id INTEGER NOT NULL, device_id TEXT NOT NULL, release_id TEXT NOT NULL, kind TEXT NOT NULL,
     at INTEGER NOT NULL, complete INTEGER NOT NULL, PRIMARY KEY (server, id));
   CREATE INDEX downloads_by_device ON downloads (device_id, at);
   ALTER TABLE devices ADD COLUMN batch_id INTEGER;
   ALTER TABLE devices ADD COLUMN leaf TEXT;
   CREATE INDEX devices_by_batch ON devices (batch_id);
   CREATE TABLE batches (id INTEGER PRIMARY KEY, root TEXT NOT NULL, revoked INTEGER NOT NULL);`,
  // Decisions at fleet scale (issue 5): how many devices (and active ones) each configuration
  // holds, kept by triggers on every write to devices, so that a new release does not count a
  // million rows; and the active devices of a configuration readable from an index alone.
  `CREATE TABLE config_devices (config_id INTEGER PRIMARY KEY, devices INTEGER NOT NULL, active INTEGER NOT NULL);
   INSERT INTO config_devices (config_id, devices, active)
     SELECT config_id, COUNT(*), SUM(standing = 'active') FROM devices WHERE config_id IS NOT NULL GROUP BY config_id;
   CREATE TRIGGER devices_counted_insert AFTER INSERT ON devices WHEN NEW.config_id IS NOT NULL BEGIN
     INSERT INTO config_devices (config_id, devices, active) VALUES (NEW.config_id, 1, NEW.standing = 'active')
       ON CONFLICT (config_id) DO UPDATE SET devices = devices + 1, active = active + excluded.active;
   END;
   CREATE TRIGGER devices_counted_delete AFTER DELETE ON devices WHEN OLD.config_id IS NOT NULL BEGIN
     UPDATE config_devices SET devices = devices - 1, active = active - (OLD.standing = 'active') WHERE config_id = OLD.config_id;
   END;
   CREATE TRIGGER devices_counted_update AFTER UPDATE OF config_id, standing ON devices
     WHEN OLD.config_id IS NOT NEW.config_id OR OLD.standing IS NOT NEW.standing BEGIN
     UPDATE config_devices SET devices = devices - 1, active = active - (OLD.standing = 'active') WHERE config_id = OLD.config_id;
     INSERT INTO config_devices (config_id, devices, active) SELECT NEW.config_id, 1, NEW.standing = 'active' WHERE NEW.config_id IS NOT NULL
       ON CONFLICT (config_id) DO UPDATE SET devices = devices + 1, active = active + excluded.active;
   END;
   CREATE INDEX devices_active_by_config ON devices (config_id, id) WHERE standing = 'active';`,
  // Evidence for update policies, per release and device (e.g. rollout cohort proofs), handed out with notices.
  `CREATE TABLE policy_evidence (release_id TEXT NOT NULL, device_id TEXT NOT NULL, evidence TEXT NOT NULL, PRIMARY KEY (release_id, device_id));`,
  // The tracker's duties on the ledger (issue 6). The release and time of each device's last report
  // (its status record); every device that ever failed a release (the failure totals a staged
  // rollout is told, which only rise); the status anchors made and their records, packed (proofs
  // are served from them).
  `ALTER TABLE devices ADD COLUMN last_release TEXT;
   ALTER TABLE devices ADD COLUMN last_report_at INTEGER;
   UPDATE devices SET
     last_release = (SELECT lower(json_extract(body, '$.lastResult.releaseId')) FROM reports WHERE device_id = devices.id ORDER BY id DESC LIMIT 1),
     last_report_at = (SELECT received_at FROM reports WHERE device_id = devices.id ORDER BY id DESC LIMIT 1)
     WHERE last_counter > 0;
   CREATE INDEX devices_reported ON devices (id) WHERE last_counter > 0;
   CREATE TABLE release_failures (release_id TEXT NOT NULL, device_id TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (release_id, device_id)) WITHOUT ROWID;
   INSERT OR IGNORE INTO release_failures (release_id, device_id, at)
     SELECT lower(json_extract(body, '$.lastResult.releaseId')), device_id, MIN(received_at) FROM reports
     WHERE json_extract(body, '$.lastResult.releaseId') IS NOT NULL
       AND ${reportKindSql("body")} = 'failed'
     GROUP BY 1, 2;
   CREATE TABLE status_anchors (
     id INTEGER PRIMARY KEY, anchor_index INTEGER UNIQUE, root TEXT NOT NULL, tx_hash TEXT, block INTEGER, anchored_at INTEGER NOT NULL,
     device_count INTEGER NOT NULL, counts TEXT NOT NULL, account TEXT NOT NULL, contract TEXT NOT NULL, fingerprint TEXT NOT NULL,
     chunk_roots BLOB NOT NULL, chunk_size INTEGER NOT NULL, records_kept INTEGER NOT NULL DEFAULT 1);
   CREATE TABLE status_anchor_records (
     anchor_id INTEGER NOT NULL, position INTEGER NOT NULL, device_id BLOB NOT NULL, record BLOB NOT NULL,
     PRIMARY KEY (anchor_id, position)) WITHOUT ROWID;
   CREATE INDEX status_anchor_records_by_device ON status_anchor_records (anchor_id, device_id);`,
  // Safe mode (CAP-11.1-b, CAP-11.2-a): whether each device's latest report says it runs in safe
  // mode, taken from that report for the devices that already reported; the devices in safe mode
  // readable from an index alone (few against the fleet).
  `ALTER TABLE devices ADD COLUMN safe_mode INTEGER NOT NULL DEFAULT 0;
   UPDATE devices SET safe_mode = 1
     WHERE last_counter > 0
       AND (SELECT json_extract(body, '$.safeMode') FROM reports WHERE device_id = devices.id ORDER BY id DESC LIMIT 1) = 1;
   CREATE INDEX devices_in_safe_mode ON devices (id) WHERE safe_mode = 1;`,
  // Replay state that must survive a restart (issue 15): the administrators' request nonces
  // (agent/database/sqliteNonceStore.ts) and the module's replay marks, e.g. the issue time of the last
  // decisions taken from its parent.
  `${NONCE_TABLE_SQL}
   CREATE TABLE IF NOT EXISTS replay_marks (name TEXT PRIMARY KEY, value INTEGER NOT NULL);`,
  // Three kinds of result (issue 15): the kind of each device's last result, and since when its
  // delivery is blocked. A delivery fault or a correct refusal that an earlier version counted as
  // a failure no longer is: the failed release and the failure totals are taken again from the
  // reports kept (a device's configuration follows at its next report).
  `ALTER TABLE devices ADD COLUMN last_kind TEXT;
   ALTER TABLE devices ADD COLUMN blocked_since INTEGER;
   UPDATE devices SET last_kind = ${resultKindSql("last_outcome", "last_code")};
   UPDATE devices SET blocked_since = last_report_at WHERE last_kind = 'blocked';
   UPDATE devices SET failed_release = (
       SELECT lower(json_extract(body, '$.lastResult.releaseId')) FROM reports
       WHERE device_id = devices.id AND ${reportKindSql("body")} = 'failed' ORDER BY id DESC LIMIT 1)
     WHERE failed_release IS NOT NULL AND EXISTS (SELECT 1 FROM reports WHERE device_id = devices.id);
   DELETE FROM release_failures WHERE
     EXISTS (SELECT 1 FROM reports WHERE device_id = release_failures.device_id)
     AND NOT EXISTS (SELECT 1 FROM reports WHERE device_id = release_failures.device_id
       AND lower(json_extract(body, '$.lastResult.releaseId')) = release_failures.release_id AND ${reportKindSql("body")} = 'failed');
   CREATE INDEX devices_by_kind ON devices (last_kind) WHERE last_kind IS NOT NULL;`,
  // Where the module's ledger stream stands (issue 16), written in the transaction that applies or
  // undoes the events of those blocks: a crash can no longer leave the two apart (it was a file).
  // And the transactions of its ledger account not yet buried (agent/tracker/ledgerAccount.ts): one
  // that a reorganisation dropped, or left waiting when the module stopped, is cancelled at the next
  // send or start, never mined later.
  `CREATE TABLE IF NOT EXISTS ledger_position (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL);
   CREATE TABLE IF NOT EXISTS ledger_txs (nonce INTEGER PRIMARY KEY, tx TEXT NOT NULL);`,
  // Report sessions (issue 17, ADR 0013): one per device with this module, its key wrapped under
  // the module's key, with the device and module keys it was made under (a rotation ends it).
  `CREATE TABLE IF NOT EXISTS report_sessions (
     device_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, wrapped_key BLOB NOT NULL,
     device_key TEXT NOT NULL, module_key TEXT NOT NULL, established_at INTEGER NOT NULL) WITHOUT ROWID;`,
  // Evidence per policy (issue 18): each policy of a composition its own part, keyed by its
  // address ('' = evidence given whole to every policy, as all evidence was before).
  `CREATE TABLE policy_evidence_by_policy (
     release_id TEXT NOT NULL, device_id TEXT NOT NULL, policy TEXT NOT NULL, evidence TEXT NOT NULL,
     PRIMARY KEY (release_id, device_id, policy)) WITHOUT ROWID;
   INSERT INTO policy_evidence_by_policy (release_id, device_id, policy, evidence) SELECT release_id, device_id, '', evidence FROM policy_evidence;
   DROP TABLE policy_evidence;
   ALTER TABLE policy_evidence_by_policy RENAME TO policy_evidence;`,
  // Names where people look (issue 19): components and hardware classes by the names the registry
  // registered them under (ComponentRegistered, HardwareClassRegistered), mirrored as releases are.
  // Every row kept; the names of a database from before are read once from the registry's views
  // at the next start (agent/tracker/ledgerMirror.ts fillMissingNames).
  `CREATE TABLE IF NOT EXISTS component_names (id TEXT PRIMARY KEY, name TEXT NOT NULL) WITHOUT ROWID;
   CREATE TABLE IF NOT EXISTS hardware_classes (id INTEGER PRIMARY KEY, name TEXT NOT NULL);`,
  // Device groups and update campaigns (issue 19, item 11): administrators' tags on devices, groups
  // that are saved tag queries, update requests with their targets, deadline and the devices they
  // decided (their progress), and, for status anchors of format 2, each device's tags at the anchor.
  `CREATE TABLE IF NOT EXISTS device_tags (device_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (device_id, key)) WITHOUT ROWID;
   CREATE INDEX IF NOT EXISTS device_tags_by_key ON device_tags (key, value);
   CREATE TABLE IF NOT EXISTS device_groups (name TEXT PRIMARY KEY, query TEXT NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID;
   CREATE TABLE IF NOT EXISTS update_requests (
     id TEXT PRIMARY KEY, release_id TEXT NOT NULL, component TEXT NOT NULL, target TEXT NOT NULL, deadline INTEGER, override_pins INTEGER NOT NULL DEFAULT 0,
     requested_by TEXT NOT NULL, requested_at INTEGER NOT NULL, refused TEXT NOT NULL DEFAULT '[]') WITHOUT ROWID;
   CREATE TABLE IF NOT EXISTS update_request_devices (request_id TEXT NOT NULL, device_id TEXT NOT NULL, decided_at INTEGER NOT NULL, PRIMARY KEY (request_id, device_id)) WITHOUT ROWID;
   CREATE INDEX IF NOT EXISTS update_request_devices_by_device ON update_request_devices (device_id);
   ALTER TABLE status_anchors ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE status_anchor_records ADD COLUMN tags TEXT;`,
  // Release bundles (docs/adr/0019), mirrored from ReleaseBundles' BundleCreated as releases are
  // from the registry: every row of the tables before is kept. A bundle's decisions, deliveries,
  // failures and rollout are keyed by its id in the tables releases use (ids never collide: each
  // is a hash). Bundles created before a tracker follows ReleaseBundles: \`ota-ledger tracker resync\`.
  `CREATE TABLE IF NOT EXISTS bundles (
     id TEXT PRIMARY KEY, provider INTEGER NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
     members TEXT NOT NULL, components TEXT NOT NULL, hardware TEXT NOT NULL,
     created_block INTEGER NOT NULL, block_hash TEXT NOT NULL, log_index INTEGER NOT NULL) WITHOUT ROWID;`,
  // An administrator's terms for a decision taken from the module above (issue 19 review): its
  // deadline and pin override, so that a module below hands its devices the same.
  `CREATE TABLE IF NOT EXISTS decision_terms (
     device_id TEXT NOT NULL, release_id TEXT NOT NULL, deadline INTEGER NOT NULL, override_pin INTEGER NOT NULL,
     PRIMARY KEY (device_id, release_id)) WITHOUT ROWID;`,
];

/** The schema this code writes (the database's user_version once migrated): backups check it. */
export const FLEET_SCHEMA = MIGRATIONS.length;
