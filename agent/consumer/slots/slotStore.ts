import path from "node:path";
import { promises as fs } from "node:fs";
import type { InstalledVersion } from "../../core/release";
import { BootState, COMPONENT_ID, LastResult, loadBootState, saveBootState, SlotImage, slotImageSchema, SlotName } from "./bootState";
import * as t from "./bootTransitions";
import type { HealthCheck } from "./healthCheck";
import { BootStateCorruptError, SlotImageMismatchError, SlotInputError, TRIAL_FAILURE } from "./slotErrors";
import { hashFile, IMAGE_FILE, removeTempFiles, writeSlotImage } from "./slotImageFile";

/** Named points inside the operations, for crash tests; the library never acts on them itself. */
export type SlotOp = "clear" | "record" | "failure" | "trial" | "attempt" | "confirm" | "rollback" | "counter" | "reported" | "manual";
export type SlotPhase = `${SlotOp}:before-save` | `${SlotOp}:saved` | "image:synced" | "image:renamed";
export interface SlotHooks {
  at(phase: SlotPhase): void | Promise<void>;
}

export interface SlotStoreOptions {
  clock?: () => number; // ms since the epoch
  hooks?: SlotHooks;
}

export interface TrialOutcome {
  outcome: "confirmed" | "rolled-back";
  code: string; // "OK" or why it was rolled back
  releaseId: string;
  version: string;
}

/** What start-up found for one component (CAP-11.1-a-i). */
export type RecoveryAction =
  | { component: string; action: "running"; slot: SlotName; image: SlotImage | null }
  | { component: string; action: "boot-trial"; slot: SlotName; attemptsLeft: number; bundle?: string } // the caller runs bootTrial (bootBundleTrial for a bundle's member)
  | { component: string; action: "rolled-back"; releaseId: string; code: string };

export interface RecoveryReport {
  components: RecoveryAction[];
  lastResult: LastResult | null; // the previous update's outcome; `reported` says whether it was sent
  safeMode: boolean;
  cleaned: string[]; // temp files a crash left behind, now deleted
}

const STATE_TEMP = /^\.boot-state\.json\..+\.tmp$/;

/**
 * A device's A/B slots over a directory that stands in for flash (CAP-11.1-a-iii, REQ-10c-ii):
 * new images go only to the inactive slot, a trial boot must pass a health check before it is
 * confirmed, and every change of the boot state is one atomic write, so a crash at any point
 * leaves the old image or the confirmed new one running. Operations run one at a time.
 */
export class SlotStore {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly root: string,
    private state: BootState,
    private readonly clock: () => number,
    private readonly hooks: SlotHooks,
  ) {}

  /** Opens the store; a corrupt boot state throws BootStateCorruptError (see resetToSafeMode). */
  static async open(root: string, { clock = Date.now, hooks = { at() {} } }: SlotStoreOptions = {}): Promise<SlotStore> {
    await fs.mkdir(root, { recursive: true });
    const loaded = await loadBootState(root);
    if ("corrupt" in loaded) throw new BootStateCorruptError(loaded.corrupt);
    // Written before any slot directory exists, so a missing file later means a lost state.
    if (loaded.fresh) await saveBootState(root, loaded.state);
    return new SlotStore(root, loaded.state, clock, hooks);
  }

  snapshot(): BootState {
    return structuredClone(this.state);
  }

  slotDir(component: string, slot: SlotName): string {
    return path.join(this.root, checkComponent(component), slot);
  }

  /** Writes and verifies an image into the inactive slot, then records it; returns that slot. */
  async writeInactive(component: string, image: SlotImage, content: AsyncIterable<Uint8Array>): Promise<SlotName> {
    const id = checkComponent(component);
    const img = checkImage(image);
    return this.exclusive(async () => {
      t.checkInstallable(this.state, id, img);
      const slot = t.inactiveOf(t.componentBoot(this.state, id));
      // Forget the old image first: its record must never describe bytes being replaced.
      if (t.componentBoot(this.state, id).slots[slot]) await this.commit(t.withSlot(this.state, id, slot, null), "clear");
      try {
        await writeSlotImage(this.slotDir(id, slot), img, content, () => this.hooks.at("image:synced"));
      } catch (err) {
        if (err instanceof SlotImageMismatchError) await this.commit(t.recordFailure(this.state, id, img.releaseId, err.code, this.clock()), "failure");
        throw err;
      }
      await this.hooks.at("image:renamed");
      await this.commit(t.withSlot(this.state, id, slot, img), "record");
      return slot;
    });
  }

  /** Points the next boot at the inactive slot for `attempts` tries (REQ-10d-i checked again). */
  async beginTrial(component: string, attempts = 3): Promise<{ slot: SlotName; attemptsLeft: number }> {
    const id = checkComponent(component);
    return this.exclusive(async () => {
      await this.commit(t.startTrial(this.state, id, attempts, this.clock()), "trial");
      const trial = this.state.components[id].trial!;
      return { slot: trial.slot, attemptsLeft: trial.attemptsLeft };
    });
  }

  /**
   * One trial boot: the attempt is counted on disk first (a crash during boot uses it up), the
   * slot's bytes are checked against their record, then `healthCheck` decides. Healthy: confirm;
   * unhealthy, throwing, corrupt or out of attempts: roll back.
   */
  async bootTrial(component: string, healthCheck: HealthCheck): Promise<TrialOutcome> {
    const id = checkComponent(component);
    return this.exclusive(async () => {
      const trial = t.componentBoot(this.state, id).trial;
      if (trial && trial.attemptsLeft === 0) return this.doRollback(id, TRIAL_FAILURE.attemptsExhausted);
      await this.commit(t.spendAttempt(this.state, id), "attempt");
      const slotDir = this.slotDir(id, trial!.slot);
      const image = t.trialImage(this.state, id);
      const onDisk = await hashFile(path.join(slotDir, IMAGE_FILE));
      if (onDisk?.fileHash !== image.fileHash || onDisk.size !== image.size) return this.doRollback(id, TRIAL_FAILURE.imageCorrupt);
      let healthy: boolean;
      try {
        healthy = await healthCheck(slotDir, structuredClone(image));
      } catch {
        return this.doRollback(id, TRIAL_FAILURE.healthError);
      }
      return healthy ? this.doConfirm(id) : this.doRollback(id, TRIAL_FAILURE.healthFailed);
    });
  }

  /**
   * A bundle (docs/adr/0019): points the next boot of every member at its inactive slot, which
   * must hold the member's release (written with writeInactive), in one state write.
   */
  async beginBundleTrial(bundleId: string, members: { component: string; releaseId: string }[], attempts = 3): Promise<{ attemptsLeft: number }> {
    const id = checkBundleId(bundleId);
    const checked = members.map((m) => ({ component: checkComponent(m.component), releaseId: m.releaseId.toLowerCase() }));
    return this.exclusive(async () => {
      await this.commit(t.startBundleTrial(this.state, id, checked, attempts, this.clock()), "trial");
      return { attemptsLeft: attempts };
    });
  }

  /**
   * One trial boot of a whole bundle: the attempt counted for every member in one write, each
   * member's slot bytes checked against its record, then `healthCheck` asked for each member in
   * turn. All healthy: every member confirmed in one write (floors move then, all together);
   * otherwise every member rolled back in one write. The outcome names the bundle.
   */
  async bootBundleTrial(bundleId: string, healthCheck: HealthCheck): Promise<TrialOutcome & { failedMember?: string }> {
    const id = checkBundleId(bundleId);
    return this.exclusive(async () => {
      const members = t.bundleTrialOf(this.state, id);
      if (members.length > 0 && this.state.components[members[0]].trial!.attemptsLeft === 0) return this.doRollbackBundle(id, TRIAL_FAILURE.attemptsExhausted);
      await this.commit(t.spendBundleAttempt(this.state, id), "attempt");
      for (const component of members) {
        const slotDir = this.slotDir(component, this.state.components[component].trial!.slot);
        const image = t.trialImage(this.state, component);
        const onDisk = await hashFile(path.join(slotDir, IMAGE_FILE));
        if (onDisk?.fileHash !== image.fileHash || onDisk.size !== image.size) return this.doRollbackBundle(id, TRIAL_FAILURE.imageCorrupt, image.releaseId);
      }
      for (const component of members) {
        const slotDir = this.slotDir(component, this.state.components[component].trial!.slot);
        const image = t.trialImage(this.state, component);
        let healthy: boolean;
        try {
          healthy = await healthCheck(slotDir, structuredClone(image));
        } catch {
          return this.doRollbackBundle(id, TRIAL_FAILURE.healthError, image.releaseId);
        }
        if (!healthy) return this.doRollbackBundle(id, TRIAL_FAILURE.healthFailed, image.releaseId);
      }
      await this.commit(t.confirmBundle(this.state, id, this.clock()), "confirm");
      return { outcome: "confirmed", code: "OK", releaseId: id, version: "0" };
    });
  }

  /** Rolls a bundle's trial back, every member at once. */
  async rollbackBundle(bundleId: string, code: string): Promise<TrialOutcome> {
    const id = checkBundleId(bundleId);
    return this.exclusive(() => this.doRollbackBundle(id, code));
  }

  private async doRollbackBundle(id: string, code: string, failedMember?: string): Promise<TrialOutcome & { failedMember?: string }> {
    await this.commit(t.rollbackBundle(this.state, id, code, this.clock()), "rollback");
    return { outcome: "rolled-back", code, releaseId: id, version: "0", ...(failedMember ? { failedMember } : {}) };
  }

  async confirm(component: string): Promise<TrialOutcome> {
    const id = checkComponent(component);
    return this.exclusive(() => this.doConfirm(id));
  }

  async rollback(component: string, code: string): Promise<TrialOutcome> {
    const id = checkComponent(component);
    return this.exclusive(() => this.doRollback(id, code));
  }

  /**
   * Start-up: deletes temp files a crash left, rolls back trials that used up their attempts (a
   * crash loop ends here) and says which trials the caller must boot again.
   */
  recover(): Promise<RecoveryReport> {
    return this.exclusive(async () => {
      const cleaned = await removeTempFiles(this.root, STATE_TEMP);
      for (const name of await fs.readdir(this.root)) {
        if (!COMPONENT_ID.test(name)) continue;
        for (const slot of ["a", "b"] as const) cleaned.push(...(await removeTempFiles(path.join(this.root, name, slot))));
      }
      const components: RecoveryAction[] = [];
      // A bundle's members used up their attempts together: rolled back together (docs/adr/0019).
      for (const bundle of t.pendingBundles(this.state)) {
        const members = t.bundleTrialOf(this.state, bundle);
        if (this.state.components[members[0]].trial!.attemptsLeft > 0) continue;
        const releases = members.map((m) => t.trialImage(this.state, m).releaseId);
        await this.commit(t.rollbackBundle(this.state, bundle, TRIAL_FAILURE.attemptsExhausted, this.clock()), "rollback");
        members.forEach((component, i) => components.push({ component, action: "rolled-back", releaseId: releases[i], code: TRIAL_FAILURE.attemptsExhausted }));
      }
      for (const [component, c] of Object.entries(this.state.components)) {
        if (components.some((a) => a.component === component)) continue;
        if (c.trial && c.trial.attemptsLeft > 0) {
          const bundle = c.trial.bundle ? { bundle: c.trial.bundle } : {};
          components.push({ component, action: "boot-trial", slot: c.trial.slot, attemptsLeft: c.trial.attemptsLeft, ...bundle });
        } else if (c.trial) {
          const { releaseId, code } = await this.doRollback(component, TRIAL_FAILURE.attemptsExhausted);
          components.push({ component, action: "rolled-back", releaseId, code });
        } else {
          components.push({ component, action: "running", slot: c.active, image: c.slots[c.active] });
        }
      }
      const { lastResult, safeMode } = this.snapshot();
      return { components, lastResult, safeMode: safeMode !== undefined, cleaned: cleaned.map((f) => path.relative(this.root, f)) };
    });
  }

  /** The confirmed version of each component (what dependency checks and reports use). */
  installed(): InstalledVersion[] {
    return t.installedOf(this.state);
  }

  /** The next value of the report counter, persisted before it is returned. */
  nextCounter(): Promise<number> {
    return this.exclusive(async () => {
      await this.commit({ ...this.snapshot(), counter: this.state.counter + 1 }, "counter");
      return this.state.counter;
    });
  }

  /** Marks the last result as sent to the tracker (REQ-10c-i). */
  markReported(): Promise<void> {
    return this.exclusive(async () => {
      const next = this.snapshot();
      if (next.lastResult && !next.lastResult.reported) await this.commit({ ...next, lastResult: { ...next.lastResult, reported: true } }, "reported");
    });
  }

  /** By hand: allows a release that failed its trial to be installed again. */
  clearFailure(releaseId: string): Promise<void> {
    return this.exclusive(async () => {
      const next = this.snapshot();
      delete next.failedReleases[releaseId.toLowerCase()];
      await this.commit(next, "manual");
    });
  }

  /**
   * By hand (CAP-11.1-b): ends safe mode. `floors` restores anti-rollback floors a person knows
   * (e.g. the versions the tracker last saw); other components start from no floor.
   */
  async leaveSafeMode(floors: Record<string, bigint> = {}): Promise<void> {
    const known = Object.entries(floors).map(([component, floor]) => [checkComponent(component), floor] as const);
    return this.exclusive(() => this.commit(t.leaveSafeMode(this.state, Object.fromEntries(known)), "manual"));
  }

  private async doConfirm(id: string): Promise<TrialOutcome> {
    const image = t.trialImage(this.state, id);
    await this.commit(t.confirmTrial(this.state, id, this.clock()), "confirm");
    return { outcome: "confirmed", code: "OK", releaseId: image.releaseId, version: image.version };
  }

  private async doRollback(id: string, code: string): Promise<TrialOutcome> {
    const image = t.trialImage(this.state, id);
    await this.commit(t.rollbackTrial(this.state, id, code, this.clock()), "rollback");
    return { outcome: "rolled-back", code, releaseId: image.releaseId, version: image.version };
  }

  private async commit(next: BootState, op: SlotOp): Promise<void> {
    await this.hooks.at(`${op}:before-save`);
    await saveBootState(this.root, next);
    this.state = next;
    await this.hooks.at(`${op}:saved`);
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function checkComponent(component: string): string {
  const id = component.toLowerCase();
  if (!COMPONENT_ID.test(id)) throw new SlotInputError("SLOT_COMPONENT_INVALID", `component id ${component} is not 0x + 64 hex digits`);
  return id;
}

function checkBundleId(bundleId: string): string {
  const id = bundleId.toLowerCase();
  if (!COMPONENT_ID.test(id)) throw new SlotInputError("SLOT_INPUT_INVALID", `bundle id ${bundleId} is not 0x + 64 hex digits`);
  return id;
}

function checkImage(image: SlotImage): SlotImage {
  const img = { ...image, releaseId: image.releaseId.toLowerCase(), fileHash: image.fileHash.toLowerCase() };
  const parsed = slotImageSchema.safeParse(img);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SlotInputError("SLOT_IMAGE_INVALID", `slot image ${issue.path.join(".")}: ${issue.message}`, { details: { image } });
  }
  return parsed.data;
}
