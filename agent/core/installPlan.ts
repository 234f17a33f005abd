import type { Dependency, ReleaseRecord } from "./release";
import type { DevicePolicy } from "./devicePolicy";
import type { ReleaseStatus } from "./updateCheck";
import { OtaError } from "./errors";
import { formatVersion, inRange } from "./version";

/**
 * The tracker's resolver (CAP-11.2-c, REQ-10e-i): which release of each component one device
 * should install, dependencies first. It applies the same rules as the device's own check
 * (updateCheck.ts) so that every planned step passes it when applied in order, and plans nothing
 * where nothing is needed.
 */

/** A release as the ledger shows it. */
export interface CatalogueRelease {
  id: string; // bytes32 release id
  record: ReleaseRecord;
  status: ReleaseStatus;
  providerBarred: boolean;
}

/** The catalogue prepared once and shared by every device's plan. Keys are lower-case ids. */
export interface CatalogueIndex {
  readonly byComponent: ReadonlyMap<string, readonly CatalogueRelease[]>; // newest first, ties by release id
  readonly byId: ReadonlyMap<string, CatalogueRelease>;
}

export interface PlanInput {
  catalogue: CatalogueIndex;
  device: {
    hardwareClass: number;
    installed: { component: string; version: bigint; releaseId?: string }[];
    policy?: DevicePolicy; // absent: the ledger's rules only
    failedReleases?: string[];
  };
  /** The components the tracker manages on this device (ids). */
  components: string[];
  /** Administrator targets: an exact encoded version, or "latest" (the default). */
  targets?: Record<string, bigint | "latest">;
  /** Bound on the dependency search (choices tried); past it the plan is empty with SEARCH_LIMIT. */
  maxSearchSteps?: number;
}

export type StepReason = "new-release" | "outdated" | "vulnerable-installed" | "revoked-installed" | "dependency";
export interface PlanStep {
  component: string;
  releaseId: string;
  version: bigint;
  reason: StepReason;
}

/** Why a managed component gets no step; the first filter that leaves no release names it. */
export type UnchangedCode =
  | "UP_TO_DATE" // nothing newer than the installed version on the ledger
  | "NO_RELEASE" // not installed, and the ledger has no release of it
  | "NO_RELEASE_FOR_HARDWARE" // APP-II-2
  | "NO_TRUSTED_RELEASE" // every fitting release is revoked, vulnerable or from a barred provider
  | "PREVIOUSLY_FAILED"
  | "PINNED" // CAP-11.1-a-vi
  | "NOT_A_SECURITY_FIX" // CAP-11.1-a-vi: securityOnly and the installed release is not flagged
  | "TARGET_NOT_AVAILABLE" // the administrator's target is not among the eligible releases
  | "DEPENDENCY_UNSATISFIABLE" // APP-II-2
  | "SEARCH_LIMIT";

export interface InstallPlan {
  steps: PlanStep[]; // dependencies before their dependants
  unchanged: { component: string; code: UnchangedCode }[];
}

/** A plan that cannot be carried out at all, e.g. releases that depend on each other. */
export class InstallPlanError extends OtaError {}

export const DEFAULT_MAX_SEARCH_STEPS = 10_000;

/** Sorts each component's releases once, so each device's plan only filters short lists. */
export function indexCatalogue(releases: readonly CatalogueRelease[]): CatalogueIndex {
  const byComponent = new Map<string, CatalogueRelease[]>();
  const byId = new Map<string, CatalogueRelease>();
  for (const r of releases) {
    const k = key(r.record.component);
    const list = byComponent.get(k) ?? [];
    if (list.length === 0) byComponent.set(k, list);
    list.push(r);
    byId.set(key(r.id), r);
  }
  for (const list of byComponent.values()) {
    list.sort((a, b) => (a.record.version !== b.record.version ? (a.record.version > b.record.version ? -1 : 1) : cmp(key(a.id), key(b.id))));
  }
  return { byComponent, byId };
}

type Choice = { kind: "keep" } | { kind: "absent" } | { kind: "release"; release: CatalogueRelease };
interface Variable {
  component: string; // lower case
  options: Choice[]; // in order of preference
  code?: UnchangedCode; // set when no release is eligible
}
type Range = { min: bigint; max: bigint };

const KEEP: Choice = { kind: "keep" };
const ABSENT: Choice = { kind: "absent" };

/**
 * Plans one device. Each component is a variable whose options are its eligible releases and
 * "keep what is installed"; a depth-first search takes the first assignment, in preference order,
 * that satisfies every dependency range of what will be installed in the end (planned or kept).
 * Managed components prefer the newest release; others prefer to stay, and move only when a
 * dependant needs them (reason "dependency"). A first search requires every managed component
 * that can move to move; only if that fails may one stay behind (earlier component id first).
 * Throws InstallPlanError DEPENDENCY_CYCLE when the
 * chosen releases need each other: the device could install none of them first.
 */
export function planInstall(input: PlanInput): InstallPlan {
  const { catalogue, device } = input;
  const installed = new Map(device.installed.map((c) => [key(c.component), c]));
  const failed = new Set((device.failedReleases ?? []).map(key));
  const pins = lowerKeys(device.policy?.pins);
  const targets = lowerKeys(input.targets);
  const managed = [...new Set(input.components.map(key))].sort(cmp);
  const isManaged = new Set(managed);

  const statusOf = (component: string) => {
    const id = installed.get(component)?.releaseId;
    return id === undefined ? undefined : catalogue.byId.get(key(id))?.status;
  };

  // Filters in the device's order (updateCheck.ts): the stage that empties the list is the reason.
  const memo = new Map<string, { releases: CatalogueRelease[]; code?: UnchangedCode }>();
  const eligible = (component: string) => memo.get(component) ?? memo.set(component, filterReleases(component)).get(component)!;
  const filterReleases = (component: string): { releases: CatalogueRelease[]; code?: UnchangedCode } => {
    const all = catalogue.byComponent.get(component) ?? [];
    const have = installed.get(component)?.version;
    let list = have === undefined ? [...all] : all.slice(0, countNewer(all, have)); // REQ-10d-i
    if (list.length === 0) return { releases: [], code: have === undefined ? "NO_RELEASE" : "UP_TO_DATE" };
    const pin = pins.get(component);
    const target = targets.get(component);
    const flagged = statusOf(component) === "vulnerable" || statusOf(component) === "revoked";
    const stages: [UnchangedCode, (r: CatalogueRelease) => boolean][] = [
      ["NO_RELEASE_FOR_HARDWARE", (r) => r.record.hardware.includes(device.hardwareClass)],
      ["NO_TRUSTED_RELEASE", (r) => !r.providerBarred && (r.status === "active" || (r.status === "vulnerable" && !!device.policy?.allowVulnerable))],
      ["PREVIOUSLY_FAILED", (r) => !failed.has(key(r.id))],
      ["PINNED", (r) => pin === undefined || BigInt(pin) === r.record.version],
      ["NOT_A_SECURITY_FIX", () => !device.policy?.securityOnly || flagged],
      ["TARGET_NOT_AVAILABLE", (r) => target === undefined || target === "latest" || target === r.record.version],
    ];
    for (const [code, ok] of stages) {
      list = list.filter(ok);
      if (list.length === 0) return { releases: [], code };
    }
    return { releases: list };
  };

  const versionOf = (component: string, c: Choice): bigint | undefined =>
    c.kind === "release" ? c.release.record.version : c.kind === "keep" ? installed.get(component)?.version : undefined;
  const depsOf = (component: string, c: Choice): readonly Dependency[] => {
    if (c.kind === "release") return c.release.record.dependencies;
    const id = c.kind === "keep" ? installed.get(component)?.releaseId : undefined;
    return (id !== undefined && catalogue.byId.get(key(id))?.record.dependencies) || []; // unknown release: no known needs
  };
  const fits = (component: string, c: Choice, ranges: Range[] | undefined): boolean => {
    const v = versionOf(component, c);
    return !ranges || ranges.every((r) => v !== undefined && inRange(v, r));
  };
  const budget = input.maxSearchSteps ?? DEFAULT_MAX_SEARCH_STEPS;
  let tried = 0;

  /**
   * One depth-first search. `strict`: every managed component with an eligible release must
   * move, so two dependants that conflict on their newest releases settle on older ones that
   * agree rather than one of them staying behind.
   */
  const search = (strict: boolean): { assigned: Map<string, Choice>; variables: Map<string, Variable> } | undefined => {
    const variables = new Map<string, Variable>();
    const addVariable = (component: string): Variable => {
      const { releases, code } = eligible(component);
      const upgrades: Choice[] = releases.map((release) => ({ kind: "release", release }));
      const stay = installed.has(component) ? KEEP : ABSENT;
      // A managed component prefers the newest release; any other one prefers to stay as it is.
      // An uninstalled one that is not managed only enters when a dependant needs it, so it cannot stay absent.
      let options: Choice[];
      if (isManaged.has(component)) options = strict && upgrades.length > 0 ? upgrades : [...upgrades, stay];
      else options = stay === KEEP ? [KEEP, ...upgrades] : upgrades;
      const v: Variable = { component, options, code };
      variables.set(component, v);
      return v;
    };
    // Installed components take part too: their dependencies must still hold after the plan.
    const agenda = [...managed, ...[...installed.keys()].filter((c) => !isManaged.has(c)).sort(cmp)];
    agenda.forEach(addVariable);
    const assigned = new Map<string, Choice>();
    const ranges = new Map<string, Range[]>(); // ranges that assigned dependants put on unassigned components

    const solve = (i: number): boolean => {
      if (i === agenda.length) return true;
      const { component, options } = variables.get(agenda[i])!;
      for (const choice of options) {
        if (!fits(component, choice, ranges.get(component))) continue;
        if (++tried > budget) throw new SearchLimit();
        const constrained: string[] = [];
        const added: string[] = [];
        let ok = true;
        for (const dep of depsOf(component, choice)) {
          const d = key(dep.component);
          const range = { min: dep.minVersion, max: dep.maxVersion };
          const done = assigned.get(d);
          if (done !== undefined) {
            ok = fits(d, done, [range]);
          } else {
            if (!variables.has(d)) {
              addVariable(d);
              agenda.push(d);
              added.push(d);
            }
            const list = ranges.get(d) ?? [];
            ranges.set(d, list);
            list.push(range);
            constrained.push(d);
            // Forward check: give up on this choice as soon as a dependency has no option left.
            ok = variables.get(d)!.options.some((o) => fits(d, o, list));
          }
          if (!ok) break;
        }
        if (ok) {
          assigned.set(component, choice);
          if (solve(i + 1)) return true;
          assigned.delete(component);
        }
        for (const d of constrained) ranges.get(d)!.pop();
        for (const d of added) variables.delete(d);
        agenda.length -= added.length; // deeper levels have already removed theirs
      }
      return false;
    };
    return solve(0) ? { assigned, variables } : undefined;
  };

  const report = (c: string, code: UnchangedCode) => ({ component: original(input.components, c), code });
  let found: ReturnType<typeof search>;
  try {
    found = search(true) ?? search(false);
  } catch (err) {
    if (!(err instanceof SearchLimit)) throw err;
    return { steps: [], unchanged: managed.map((c) => report(c, "SEARCH_LIMIT")) };
  }
  if (found === undefined) {
    // Even keeping everything fails: the installed set already breaks a dependency range.
    return { steps: [], unchanged: managed.map((c) => report(c, eligible(c).code ?? "DEPENDENCY_UNSATISFIABLE")) };
  }
  const { assigned, variables } = found;

  const chosen = new Map<string, CatalogueRelease>();
  for (const [component, c] of assigned) if (c.kind === "release") chosen.set(component, c.release);
  const reasonFor = (component: string): StepReason => {
    const status = statusOf(component);
    if (!installed.has(component)) return isManaged.has(component) ? "new-release" : "dependency";
    if (status === "revoked") return "revoked-installed";
    if (status === "vulnerable") return "vulnerable-installed";
    return isManaged.has(component) ? "outdated" : "dependency";
  };
  const steps = topological(chosen).map((release) => ({
    component: release.record.component,
    releaseId: release.id,
    version: release.record.version,
    reason: reasonFor(key(release.record.component)),
  }));
  const unchanged = managed.filter((c) => !chosen.has(c)).map((c) => report(c, variables.get(c)!.code ?? "DEPENDENCY_UNSATISFIABLE"));
  return { steps, unchanged };
}

/** Dependencies first (the device checks a release's dependencies against what is installed); ties by component id. */
function topological(chosen: Map<string, CatalogueRelease>): CatalogueRelease[] {
  const needs = new Map<string, Set<string>>();
  for (const [component, r] of chosen) {
    needs.set(component, new Set(r.record.dependencies.map((d) => key(d.component)).filter((d) => chosen.has(d))));
  }
  const order: CatalogueRelease[] = [];
  while (needs.size > 0) {
    const ready = [...needs]
      .filter(([, deps]) => deps.size === 0)
      .map(([c]) => c)
      .sort(cmp);
    if (ready.length === 0) {
      const cycle = [...needs.keys()].sort(cmp).map((c) => `${chosen.get(c)!.record.component}@${formatVersion(chosen.get(c)!.record.version)}`);
      throw new InstallPlanError("DEPENDENCY_CYCLE", `the chosen releases depend on each other, so none can be installed first: ${cycle.join(", ")}`, {
        details: { releases: [...needs.keys()].sort(cmp).map((c) => chosen.get(c)!.id) },
      });
    }
    for (const c of ready) {
      order.push(chosen.get(c)!);
      needs.delete(c);
    }
    for (const deps of needs.values()) for (const c of ready) deps.delete(c);
  }
  return order;
}

class SearchLimit extends Error {}

/** How many of `newestFirst` are newer than `version`: they form a prefix. */
function countNewer(newestFirst: readonly CatalogueRelease[], version: bigint): number {
  let n = 0;
  while (n < newestFirst.length && newestFirst[n].record.version > version) n++;
  return n;
}

/** Ids are hex and may differ in case only between a JSON file, an RPC and the record. */
function key(id: string): string {
  return id.toLowerCase();
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function lowerKeys<T>(map: Record<string, T> | undefined): Map<string, T> {
  return new Map(Object.entries(map ?? {}).map(([k, v]) => [key(k), v]));
}

/** The caller's spelling of a managed component id, for the report. */
function original(components: string[], lower: string): string {
  return components.find((c) => key(c) === lower) ?? lower;
}
