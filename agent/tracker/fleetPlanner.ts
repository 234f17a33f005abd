import { indexCatalogue, InstallPlanError, planInstall, type CatalogueIndex, type InstallPlan } from "../core/installPlan";
import type { ConfigRow, FleetStore } from "./store";

/** A configuration's plan and the statuses it gives its devices. */
export interface ConfigPlan {
  plan: InstallPlan;
  outdated: boolean; // the plan has steps (CAP-11.2-b)
  vulnerable: boolean; // it runs a release now flagged vulnerable or revoked (REQ-10b-ii)
}

/**
 * The server module's decisions (CAP-11.2-c, REQ-10e-i), one plan per configuration (ADR 0004):
 * devices with the same hardware, installed versions and last failed release get the same plan
 * from the resolver (agent/core/installPlan), so it runs once per configuration and the result is
 * cached until the mirrored catalogue changes. The components a configuration manages are the
 * ones its devices run; the device's own choices (pins, windows) stay on the device, which reports
 * what it declined.
 */
export class FleetPlanner {
  private catalogue: CatalogueIndex | undefined;
  private readonly plans = new Map<number, ConfigPlan>();
  private readonly heldPlans = new Map<string, ConfigPlan>();

  constructor(private readonly db: FleetStore) {}

  /** The ledger's releases changed (published, flagged, revoked, reorganised, provider barred): every plan is stale. */
  catalogueChanged(): void {
    this.catalogue = undefined;
    this.plans.clear();
    this.heldPlans.clear();
  }

  private index(): CatalogueIndex {
    if (!this.catalogue) {
      const barred = this.db.catalogue.barredProviders();
      this.catalogue = indexCatalogue(
        this.db.catalogue.releases().map((r) => ({ id: r.id, record: r.record, status: r.status, providerBarred: barred.has(r.provider) })),
      );
    }
    return this.catalogue;
  }

  planOf(config: ConfigRow): ConfigPlan {
    const cached = this.plans.get(config.id);
    if (cached) return cached;
    const result = this.plan(config.hardwareClass, config.installed, config.failedRelease);
    this.plans.set(config.id, result);
    return result;
  }

  /**
   * The plan for what a device holds by the firmware servers' download logs, not by its reports
   * (CAP-11.3-g): made as a configuration's is, and kept per hardware class and held set until the
   * catalogue changes, so devices that fetched the same releases share one.
   */
  planOfHeld(hardwareClass: number, held: ConfigRow["installed"]): ConfigPlan {
    const key = `${hardwareClass}|${held
      .map((h) => `${h.component}:${h.releaseId}`)
      .sort()
      .join(",")}`;
    const cached = this.heldPlans.get(key);
    if (cached) return cached;
    const result = this.plan(hardwareClass, held, null);
    this.heldPlans.set(key, result);
    return result;
  }

  private plan(hardwareClass: number, installed: ConfigRow["installed"], failedRelease: string | null): ConfigPlan {
    const catalogue = this.index();
    let plan: InstallPlan;
    try {
      plan = planInstall({
        catalogue,
        device: { hardwareClass, installed, failedReleases: failedRelease ? [failedRelease] : [] },
        components: installed.map((i) => i.component),
      });
    } catch (err) {
      // A cycle among the newest releases: nothing can be installed first; the device stays as it is.
      if (!(err instanceof InstallPlanError)) throw err;
      plan = { steps: [], unchanged: installed.map((i) => ({ component: i.component, code: "DEPENDENCY_UNSATISFIABLE" as const })) };
    }
    const vulnerable = installed.some((i) => {
      const status = catalogue.byId.get(i.releaseId.toLowerCase())?.status;
      return status === "vulnerable" || status === "revoked";
    });
    return { plan, outdated: plan.steps.length > 0, vulnerable };
  }

  /** Every configuration some device is in, with its plan. */
  planAll(): Map<number, ConfigPlan & { config: ConfigRow }> {
    const out = new Map<number, ConfigPlan & { config: ConfigRow }>();
    for (const config of this.db.configs.all()) out.set(config.id, { ...this.planOf(config), config });
    return out;
  }

  /**
   * The decided set for one release (a new ReleasePublished, or a flag that makes devices move):
   * the configurations whose plan installs it, and how many active devices they hold. The device
   * ids follow from `FleetStore.configs.activeDevicesIn(configs)`.
   */
  affectedBy(releaseId: string): { configs: number[]; devices: number } {
    const id = releaseId.toLowerCase();
    const perConfig = this.db.configs.activeCounts();
    const configs: number[] = [];
    let devices = 0;
    for (const [configId, { plan }] of this.planAll()) {
      if (!plan.steps.some((s) => s.releaseId.toLowerCase() === id)) continue;
      configs.push(configId);
      devices += perConfig.get(configId) ?? 0;
    }
    return { configs, devices };
  }
}
