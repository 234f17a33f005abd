import { promises as fs } from "node:fs";
import path from "node:path";
import { BOOT_STATE_FILE, BootState, bootStatePath, emptyBootState, loadBootState, saveBootState } from "./bootState";
import { SlotStateError } from "./slotErrors";
import { syncDirectory } from "./slotImageFile";

/**
 * Safe mode (CAP-11.1-b) after a corrupt boot state. Nothing in a corrupt file can be trusted,
 * so no part of it is carried over as fact:
 * - the file is kept aside as `boot-state.json.corrupt-<ms>` for a person to inspect;
 * - every component is unknown: the new state lists none, so the device reports no installed
 *   versions and the tracker sees that it needs recovery; the slot images stay on disk untouched;
 * - updates stay refused (SAFE_MODE) until a person calls SlotStore.leaveSafeMode, optionally
 *   giving the anti-rollback floors (lost with the file) from the tracker's records;
 * - the report counter restarts at max(now in ms, the old counter if still readable + 1), so
 *   report counters keep rising as long as the clock has not gone back.
 * Refuses (BOOT_STATE_NOT_CORRUPT) when the state loads, so a good state is never thrown away.
 */
export async function resetToSafeMode(root: string, { clock = Date.now }: { clock?: () => number } = {}): Promise<BootState> {
  const loaded = await loadBootState(root);
  if (!("corrupt" in loaded)) throw new SlotStateError("BOOT_STATE_NOT_CORRUPT", "the boot state loads: safe mode is only for a corrupt one");
  const now = clock();
  const salvaged = await readableCounter(bootStatePath(root));
  let keptAs: string | null = `${BOOT_STATE_FILE}.corrupt-${now}`;
  try {
    await fs.rename(bootStatePath(root), path.join(root, keptAs));
    await syncDirectory(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    keptAs = null; // the file was missing: nothing to keep
  }
  const state: BootState = {
    ...emptyBootState(),
    counter: Math.max(now, salvaged + 1),
    safeMode: { since: now, reason: loaded.corrupt, keptAs },
  };
  await saveBootState(root, state);
  return state;
}

/** The counter of a corrupt file when its JSON still parses (it only ever raises the new one). */
async function readableCounter(file: string): Promise<number> {
  try {
    const counter = (JSON.parse(await fs.readFile(file, "utf8")) as { state?: { counter?: unknown } }).state?.counter;
    return Number.isSafeInteger(counter) && (counter as number) >= 0 && (counter as number) < Number.MAX_SAFE_INTEGER ? (counter as number) : -1;
  } catch {
    return -1;
  }
}
