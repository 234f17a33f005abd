import { StoreConnection } from "./connection";
import { MIGRATIONS } from "./schema";
import { AnchorStore } from "./anchors";
import { CatalogueStore } from "./catalogue";
import { ConfigStore } from "./configs";
import { DecisionStore } from "./decisions";
import { DeviceStore } from "./devices";
import { DownloadStore } from "./downloads";
import { EvidenceStore } from "./evidence";
import { GroupStore } from "./groups";
import { HierarchyStore } from "./hierarchy";
import { LedgerStore } from "./ledger";
import { MarkStore } from "./marks";
import { ReportStore } from "./reports";
import { RequestStore } from "./requests";
import { RolloutStore } from "./rollouts";
import { SessionStore } from "./sessions";
import { TagStore } from "./tags";

/** The fleet database's page cache, in KiB. */
const FLEET_DB_CACHE_KIB = 65_536;

/**
 * The status tracker's fleet database (SQLite, WAL, synchronous FULL): devices as enrolled on the
 * ledger (with their public keys, to check their signed reports), what each runs, a mirror of the
 * ledger's releases, and every report received, and what the tracker decides and does with them.
 * One connection, private, shared by one store per area (each over its own tables); the schema's
 * numbered migrations (./schema.ts) are applied in order at open, and a database newer than the
 * code is refused.
 */
export class FleetStore {
  private readonly c: StoreConnection;
  readonly marks: MarkStore;
  readonly sessions: SessionStore;
  readonly configs: ConfigStore;
  readonly devices: DeviceStore;
  readonly reports: ReportStore;
  readonly catalogue: CatalogueStore;
  readonly decisions: DecisionStore;
  readonly rollouts: RolloutStore;
  readonly evidence: EvidenceStore;
  readonly tags: TagStore;
  readonly groups: GroupStore;
  readonly requests: RequestStore;
  readonly hierarchy: HierarchyStore;
  readonly downloads: DownloadStore;
  readonly ledger: LedgerStore;
  readonly anchors: AnchorStore;

  /** `cacheKiB`: the page cache (default 64 MiB; bench:tracker measures with SQLite's 2 MiB). */
  constructor(file: string, o: { cacheKiB?: number } = {}) {
    // 64 MiB of page cache instead of SQLite's 2 MiB: a report touches its device's rows at random
    // among a million, and every page the cache misses is a read (issue 17, bench:tracker).
    const pragmas = [`cache_size = -${o.cacheKiB ?? FLEET_DB_CACHE_KIB}`];
    this.c = new StoreConnection(file, MIGRATIONS, { database: "the fleet database", program: "tracker" }, pragmas);
    const c = this.c;
    this.marks = new MarkStore(c);
    this.sessions = new SessionStore(c);
    this.configs = new ConfigStore(c);
    this.devices = new DeviceStore(c, { configs: this.configs, sessions: this.sessions });
    this.reports = new ReportStore(c, this.configs);
    this.catalogue = new CatalogueStore(c);
    this.decisions = new DecisionStore(c);
    this.rollouts = new RolloutStore(c);
    this.evidence = new EvidenceStore(c);
    this.tags = new TagStore(c, this.marks);
    this.groups = new GroupStore(c);
    this.requests = new RequestStore(c);
    this.hierarchy = new HierarchyStore(c);
    this.downloads = new DownloadStore(c, { devices: this.devices, marks: this.marks });
    this.ledger = new LedgerStore(c);
    this.anchors = new AnchorStore(c, this.marks);
  }

  /** The database file (":memory:" for none): another connection to it (the nonce store) opens it by name. */
  get file(): string {
    return this.c.file;
  }

  /** Rows this connection inserted, updated or deleted since it opened (SQLite's total_changes()): a figure of the benchmarks. */
  rowsWritten(): number {
    return this.c.sql(`SELECT total_changes()`).pluck().get() as number;
  }

  /** Runs `fn` in one transaction over every store (nested calls join the outer one). */
  transaction<T>(fn: () => T): T {
    return this.c.transaction(fn);
  }

  close(): void {
    this.c.close();
  }
}
