import type { UpdateRegistry } from "./contracts";
import type { Dependency } from "../core/release";

/**
 * The witnesses publishRelease takes: for each dependency, in the order given, the newest
 * unrevoked release in its range (zero where there is none), as the registry finds it.
 */
export async function findWitnesses(registry: UpdateRegistry, dependencies: Dependency[]): Promise<string[]> {
  return Promise.all(dependencies.map((d) => registry.findSatisfyingRelease(d.component, d.minVersion, d.maxVersion)));
}
