import { formatVersion } from "../../core/version";
import type { StoreConnection } from "./connection";
import { encodeRecord, toBundle, toRelease, type BundleDb, type BundleRow, type ReleaseDb, type ReleaseRow } from "./rows";

/**
 * The mirror of the ledger's catalogue (tables releases, bundles, component_names,
 * hardware_classes, providers): releases and their status, release bundles (docs/adr/0019), the
 * names components and hardware classes were registered under (issue 19), barred providers.
 */
export class CatalogueStore {
  constructor(private readonly c: StoreConnection) {}

  upsertRelease(r: ReleaseRow): void {
    this.c
      .sql(
        `INSERT INTO releases (id, component, provider, version, hardware, status, block_hash, log_index, record, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, block_hash = excluded.block_hash, log_index = excluded.log_index,
           record = excluded.record, published_at = excluded.published_at`,
      )
      .run(
        r.id.toLowerCase(),
        r.component.toLowerCase(),
        r.provider,
        r.version.toString(),
        JSON.stringify(r.hardware),
        r.status,
        r.blockHash,
        r.logIndex,
        encodeRecord(r.record),
        r.publishedAt,
      );
  }

  setReleaseStatus(id: string, status: ReleaseRow["status"]): void {
    this.c.sql(`UPDATE releases SET status = ? WHERE id = ?`).run(status, id.toLowerCase());
  }

  /** Drops releases published in blocks a reorganisation removed. */
  dropReleasesOfBlocks(blockHashes: string[]): void {
    const del = this.c.sql(`DELETE FROM releases WHERE block_hash = ?`);
    this.c.transaction(() => blockHashes.forEach((h) => del.run(h)));
  }

  deleteRelease(id: string): void {
    this.c.sql(`DELETE FROM releases WHERE id = ?`).run(id.toLowerCase());
  }

  releases(): ReleaseRow[] {
    return (this.c.sql(`SELECT * FROM releases ORDER BY published_at, log_index`).all() as ReleaseDb[]).map(toRelease);
  }

  release(id: string): ReleaseRow | undefined {
    const r = this.c.sql(`SELECT * FROM releases WHERE id = ?`).get(id.toLowerCase()) as ReleaseDb | undefined;
    return r && toRelease(r);
  }

  // ------------------------------------------------------------------ release bundles (docs/adr/0019)

  upsertBundle(b: BundleRow): void {
    this.c
      .sql(
        `INSERT OR REPLACE INTO bundles (id, provider, name, version, members, components, hardware, created_block, block_hash, log_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        b.id.toLowerCase(),
        b.provider,
        b.name,
        b.version.toString(),
        JSON.stringify(b.members.map((m) => m.releaseId.toLowerCase())),
        JSON.stringify(b.members.map((m) => m.component.toLowerCase())),
        JSON.stringify(b.hardware),
        b.createdBlock,
        b.blockHash,
        b.logIndex,
      );
  }

  deleteBundle(id: string): void {
    this.c.sql(`DELETE FROM bundles WHERE id = ?`).run(id.toLowerCase());
  }

  /** A mirrored bundle; undefined for any other id (a release's among them). */
  bundle(id: string): BundleRow | undefined {
    const r = this.c.sql(`SELECT * FROM bundles WHERE id = ?`).get(id.toLowerCase()) as BundleDb | undefined;
    return r && toBundle(r);
  }

  /** Every mirrored bundle, oldest first. */
  bundles(): BundleRow[] {
    return (this.c.sql(`SELECT * FROM bundles ORDER BY created_block, log_index`).all() as BundleDb[]).map(toBundle);
  }

  /**
   * A release's name, "<component name> <version>" (e.g. "acme.bootloader 1.0.0"), or a bundle's,
   * "bundle <name> <version>" (e.g. "bundle sensor-kit 2.0.0"): null for an id the mirror does not
   * hold or whose component's name it does not know yet.
   */
  releaseName(id: string | null): string | null {
    if (!id) return null;
    const bundle = this.c.sql(`SELECT name, version FROM bundles WHERE id = ?`).get(id.toLowerCase()) as { name: string; version: string } | undefined;
    if (bundle) return `bundle ${bundle.name} ${formatVersion(BigInt(bundle.version))}`;
    const r = this.c.sql(`SELECT component, version FROM releases WHERE id = ?`).get(id.toLowerCase()) as { component: string; version: string } | undefined;
    const component = r && this.names().component(r.component);
    return component ? `${component} ${formatVersion(BigInt(r.version))}` : null;
  }

  // ------------------------------------------------------------------ names of components and hardware classes

  private namesCache: { components: Map<string, string>; hardware: Map<number, string> } | undefined;

  /** Mirrors a component's registered name (null: its registration left the chain). */
  setComponentName(id: string, name: string | null): void {
    if (name === null) this.c.sql(`DELETE FROM component_names WHERE id = ?`).run(id.toLowerCase());
    else this.c.sql(`INSERT INTO component_names (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name`).run(id.toLowerCase(), name);
    this.namesCache = undefined;
  }

  /** Mirrors a hardware class's registered name (null: its registration left the chain). */
  setHardwareName(id: number, name: string | null): void {
    if (name === null) this.c.sql(`DELETE FROM hardware_classes WHERE id = ?`).run(id);
    else this.c.sql(`INSERT INTO hardware_classes (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name`).run(id, name);
    this.namesCache = undefined;
  }

  /**
   * The names the mirror holds, from a cache read once after each change (a few hundred rows at
   * most): the read API names every component and hardware class it shows without a query per row.
   * Null for one not mirrored yet.
   */
  names(): { component(id: string): string | null; hardware(id: number): string | null } {
    const c = (this.namesCache ??= {
      components: new Map(this.c.sql(`SELECT id, name FROM component_names`).raw().all() as [string, string][]),
      hardware: new Map(this.c.sql(`SELECT id, name FROM hardware_classes`).raw().all() as [number, string][]),
    });
    return { component: (id) => c.components.get(id.toLowerCase()) ?? null, hardware: (id) => c.hardware.get(id) ?? null };
  }

  /** The components the mirror shows (in releases or configurations) whose names it does not hold. */
  unnamedComponents(): string[] {
    return this.c
      .sql(
        `SELECT component FROM releases UNION SELECT lower(json_extract(i.value, '$.component')) FROM configs, json_each(configs.installed) AS i
         EXCEPT SELECT id FROM component_names`,
      )
      .pluck()
      .all()
      .filter((x): x is string => typeof x === "string");
  }

  setProviderBarred(provider: number, barred: boolean): void {
    this.c.sql(`INSERT INTO providers (id, barred) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET barred = excluded.barred`).run(provider, barred ? 1 : 0);
  }

  barredProviders(): Set<number> {
    return new Set(this.c.sql(`SELECT id FROM providers WHERE barred = 1`).pluck().all() as number[]);
  }
}
