import type { ReleaseRecord } from "../../core/release";
import type { ResultKind } from "../../core/updateOutcome";

/**
 * The rows of the fleet database as the stores hand them out (agent/tracker/store), and how each
 * is read from its table's columns.
 */

export interface DeviceRow {
  id: string;
  publicKey: string;
  hardwareClass: number;
  network: string;
  region: string;
  standing: "active" | "suspended" | "revoked";
  lastSeen: number | null; // ms: last report or other contact
  lastCounter: number; // highest report counter taken
  lastOutcome: string | null;
  lastCode: string | null;
  lastKind: ResultKind | null; // what its last result means (agent/core/updateOutcome); null: none reported
  lastRelease: string | null; // the release its last result is about
  blockedSince: number | null; // ms: since when delivery of lastRelease is blocked (lastKind blocked)
  configId: number | null; // null until the device's first report: what it runs is unknown
  failedRelease: string | null; // the release whose install failed last (not offered again)
  declined: string[]; // releases the device declined by its own policy (CAP-11.1-a-vi)
  upstream: string | null; // the module its last report came through (this module's id: direct)
  batchId: number | null; // enrolled in a Merkle batch: introduced by its first report's credential
  leaf: string | null; // its batch leaf
  safeMode: boolean; // its latest report says it runs in safe mode (CAP-11.1-b): it waits for a person
}

export interface ReleaseRow {
  id: string;
  component: string;
  provider: number;
  version: bigint;
  hardware: number[];
  status: "active" | "vulnerable" | "revoked";
  blockHash: string;
  logIndex: number;
  record: ReleaseRecord;
  publishedAt: number; // block number
}

export interface InstalledRow {
  deviceId: string;
  component: string;
  version: bigint;
  releaseId: string;
}

/** A configuration: devices alike for the resolver (ADR 0004). */
export interface ConfigRow {
  id: number;
  hardwareClass: number;
  installed: { component: string; version: bigint; releaseId: string }[];
  failedRelease: string | null;
}

/** What a report changes in the fleet database. */
export interface ReportBody {
  installed: { component: string; version: string; releaseId: string }[];
  lastResult: { releaseId?: string; outcome: string; code: string } | null;
  declined?: { releaseId: string }[];
  safeMode?: boolean; // the device runs in safe mode (CAP-11.1-b); absent: not
}

/** A release bundle as the mirror holds it (docs/adr/0019): its members in the bundle's order (ascending component). */
export interface BundleRow {
  id: string;
  provider: number;
  name: string;
  version: bigint;
  members: { releaseId: string; component: string }[];
  hardware: number[];
  createdBlock: number;
  blockHash: string;
  logIndex: number;
}

/** A device's report session with this module (ADR 0013). */
export interface ReportSessionRow {
  deviceId: string;
  sessionId: string;
  wrappedKey: Buffer; // the session key, sealed under the module's key (reportSession.wrapSessionKey)
  deviceKey: string; // the device's enrolled key when the session was made
  moduleKey: string; // the module's public key when the session was made
  establishedAt: number;
}

/** An administrator's update request as the tracker keeps it (PROC-2, issue 19 item 11). */
export interface UpdateRequestRow {
  id: string;
  releaseId: string;
  component: string;
  target: { devices?: number; filter?: unknown; group?: string; query?: string };
  deadline: number | null; // ms since the epoch
  overridePins: boolean;
  requestedBy: string;
  requestedAt: number;
  refused: { deviceId: string; code: string; message: string }[];
}

/** Columns of the tables, as SQLite returns them. */
export interface UpdateRequestDb {
  id: string;
  release_id: string;
  component: string;
  target: string;
  deadline: number | null;
  override_pins: number;
  requested_by: string;
  requested_at: number;
  refused: string;
}
export const toUpdateRequest = (r: UpdateRequestDb): UpdateRequestRow => ({
  id: r.id,
  releaseId: r.release_id,
  component: r.component,
  target: JSON.parse(r.target),
  deadline: r.deadline,
  overridePins: r.override_pins === 1,
  requestedBy: r.requested_by,
  requestedAt: r.requested_at,
  refused: JSON.parse(r.refused),
});

export interface DeviceDb {
  id: string;
  public_key: string;
  hardware_class: number;
  network: string;
  region: string;
  standing: DeviceRow["standing"];
  last_seen: number | null;
  last_counter: number;
  last_outcome: string | null;
  last_code: string | null;
  last_kind: ResultKind | null;
  last_release: string | null;
  blocked_since: number | null;
  config_id: number | null;
  failed_release: string | null;
  declined: string;
  upstream: string | null;
  batch_id: number | null;
  leaf: string | null;
  safe_mode: number;
}
export interface ReleaseDb {
  id: string;
  component: string;
  provider: number;
  version: string;
  hardware: string;
  status: ReleaseRow["status"];
  block_hash: string;
  log_index: number;
  record: string;
  published_at: number;
}
export interface InstalledDb {
  device_id: string;
  component: string;
  version: string;
  release_id: string;
}
export interface ConfigDb {
  id: number;
  hardware_class: number;
  installed: string;
  failed_release: string | null;
}

export const toDevice = (r: DeviceDb): DeviceRow => ({
  id: r.id,
  publicKey: r.public_key,
  hardwareClass: r.hardware_class,
  network: r.network,
  region: r.region,
  standing: r.standing,
  lastSeen: r.last_seen,
  lastCounter: r.last_counter,
  lastOutcome: r.last_outcome,
  lastCode: r.last_code,
  lastKind: r.last_kind,
  lastRelease: r.last_release,
  blockedSince: r.blocked_since,
  configId: r.config_id,
  failedRelease: r.failed_release,
  declined: JSON.parse(r.declined),
  upstream: r.upstream,
  batchId: r.batch_id,
  leaf: r.leaf,
  safeMode: r.safe_mode === 1,
});
export const toRelease = (r: ReleaseDb): ReleaseRow => ({
  id: r.id,
  component: r.component,
  provider: r.provider,
  version: BigInt(r.version),
  hardware: JSON.parse(r.hardware),
  status: r.status,
  blockHash: r.block_hash,
  logIndex: r.log_index,
  record: decodeRecord(r.record),
  publishedAt: r.published_at,
});
export const toInstalled = (r: InstalledDb): InstalledRow => ({
  deviceId: r.device_id,
  component: r.component,
  version: BigInt(r.version),
  releaseId: r.release_id,
});
export const toConfig = (r: ConfigDb): ConfigRow => ({
  id: r.id,
  hardwareClass: r.hardware_class,
  installed: (JSON.parse(r.installed) as { component: string; version: string; releaseId: string }[]).map((i) => ({ ...i, version: BigInt(i.version) })),
  failedRelease: r.failed_release,
});

/** A release record as JSON (bigints as decimal strings). */
export function encodeRecord(r: ReleaseRecord): string {
  return JSON.stringify(r, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
}
function decodeRecord(text: string): ReleaseRecord {
  const r = JSON.parse(text);
  return {
    ...r,
    version: BigInt(r.version ?? 0),
    fileSize: BigInt(r.fileSize ?? 0),
    hardware: r.hardware ?? [],
    dependencies: (r.dependencies ?? []).map((d: { component: string; minVersion: string; maxVersion: string }) => ({
      component: d.component,
      minVersion: BigInt(d.minVersion),
      maxVersion: BigInt(d.maxVersion),
    })),
  };
}

export interface BundleDb {
  id: string;
  provider: number;
  name: string;
  version: string;
  members: string;
  components: string;
  hardware: string;
  created_block: number;
  block_hash: string;
  log_index: number;
}

export function toBundle(r: BundleDb): BundleRow {
  const components = JSON.parse(r.components) as string[];
  return {
    id: r.id,
    provider: r.provider,
    name: r.name,
    version: BigInt(r.version),
    members: (JSON.parse(r.members) as string[]).map((releaseId, i) => ({ releaseId, component: components[i] })),
    hardware: JSON.parse(r.hardware) as number[],
    createdBlock: r.created_block,
    blockHash: r.block_hash,
    logIndex: r.log_index,
  };
}
