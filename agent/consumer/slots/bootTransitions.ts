import type { BootState, ComponentBoot, SlotImage, SlotName } from "./bootState";
import { RollbackRefusedError, SlotInputError, SlotStateError } from "./slotErrors";
import type { InstalledVersion } from "../../core/release";

/**
 * The boot state machine without I/O: each transition takes a state and returns a new one (or
 * throws a typed error and changes nothing). The slot store persists what these return, one
 * atomic write per transition, so a crash leaves either the state before or the state after.
 */

/** The confirmed version of each component: the active slot's image (what dependency checks, policies and reports use). */
export function installedOf(state: BootState): InstalledVersion[] {
  return Object.entries(state.components).flatMap(([component, c]) => {
    const image = c.slots[c.active];
    return image ? [{ component, version: BigInt(image.version) }] : [];
  });
}

export function componentBoot(state: BootState, component: string): ComponentBoot {
  return state.components[component] ?? { active: "a", slots: { a: null, b: null }, trial: null, floor: "0" };
}

export function inactiveOf(c: ComponentBoot): SlotName {
  return c.active === "a" ? "b" : "a";
}

/** Records what a slot holds (null while it is being rewritten). */
export function withSlot(state: BootState, component: string, slot: SlotName, image: SlotImage | null): BootState {
  const c = structuredClone(componentBoot(state, component));
  c.slots[slot] = image;
  return withComponent(state, component, c);
}

/** Whether `image` may go into the inactive slot: no trial in the way, not failed before, newer (REQ-10d-i). */
export function checkInstallable(state: BootState, component: string, image: SlotImage): void {
  const c = componentBoot(state, component);
  if (c.trial)
    throw new SlotStateError("TRIAL_PENDING", `component ${component} has a trial pending in slot ${c.trial.slot}: boot, confirm or roll it back first`);
  const failed = state.failedReleases[image.releaseId];
  if (failed) {
    throw new SlotStateError(
      "RELEASE_FAILED_BEFORE",
      `release ${image.releaseId} failed a trial before (${failed.code}); clear the failure by hand to retry it`,
      {
        details: { releaseId: image.releaseId, ...failed },
      },
    );
  }
  const version = BigInt(image.version);
  if (version <= BigInt(c.floor)) {
    throw new RollbackRefusedError("VERSION_BELOW_FLOOR", `version ${image.version} is not above the anti-rollback floor ${c.floor}`, {
      details: { component, version: image.version, floor: c.floor },
    });
  }
  const active = c.slots[c.active];
  if (active && version <= BigInt(active.version)) {
    throw new RollbackRefusedError("VERSION_NOT_NEWER", `version ${image.version} is not newer than the running ${active.version}`, {
      details: { component, version: image.version, active: active.version },
    });
  }
}

/** Points the next boot at the inactive slot, for `attempts` tries. */
export function startTrial(state: BootState, component: string, attempts: number, now: number): BootState {
  if (!Number.isInteger(attempts) || attempts < 1) throw new SlotInputError("SLOT_INPUT_INVALID", `attempts must be a positive integer, not ${attempts}`);
  if (state.safeMode) throw new SlotStateError("SAFE_MODE", "the device is in safe mode: a person must leave it before updates resume");
  const c = structuredClone(componentBoot(state, component));
  const slot = inactiveOf(c);
  const image = c.slots[slot];
  if (!image) throw new SlotStateError("SLOT_EMPTY", `the inactive slot ${slot} of component ${component} holds no image`);
  checkInstallable(state, component, image);
  c.trial = { slot, attemptsLeft: attempts, startedAt: now };
  return withComponent(state, component, c);
}

/** Counts one boot of the trial slot; persisted before the boot so that a crash counts too. */
export function spendAttempt(state: BootState, component: string): BootState {
  const c = structuredClone(trialOf(state, component));
  c.trial!.attemptsLeft -= 1;
  return withComponent(state, component, c);
}

export function confirmTrial(state: BootState, component: string, now: number): BootState {
  const c = structuredClone(trialOf(state, component));
  const image = trialImage(state, component);
  c.active = c.trial!.slot;
  c.trial = null;
  if (BigInt(image.version) > BigInt(c.floor)) c.floor = image.version; // the floor never decreases
  const next = withComponent(state, component, c);
  delete next.failedReleases[image.releaseId]; // retried by hand and now good
  next.lastResult = { releaseId: image.releaseId, component, outcome: "confirmed", code: "OK", at: now, reported: false };
  return next;
}

/** Ends the trial: the active slot and the floor stay; the release is remembered as failed. */
export function rollbackTrial(state: BootState, component: string, code: string, now: number): BootState {
  const c = structuredClone(trialOf(state, component));
  const image = trialImage(state, component);
  c.trial = null;
  const next = withComponent(state, component, c);
  next.failedReleases[image.releaseId] = { at: now, code };
  next.lastResult = { releaseId: image.releaseId, component, outcome: "rolled-back", code, at: now, reported: false };
  return next;
}

/** An update that failed before any trial (e.g. a bad image): reported, not remembered as failed. */
export function recordFailure(state: BootState, component: string, releaseId: string, code: string, now: number): BootState {
  return { ...structuredClone(state), lastResult: { releaseId, component, outcome: "failed", code, at: now, reported: false } };
}

function trialOf(state: BootState, component: string): ComponentBoot {
  const c = state.components[component];
  if (!c?.trial) throw new SlotStateError("NO_TRIAL", `component ${component} has no trial pending`);
  return c;
}

/** The image the pending trial boots. */
export function trialImage(state: BootState, component: string): SlotImage {
  const c = trialOf(state, component);
  const image = c.slots[c.trial!.slot];
  if (!image) throw new SlotStateError("SLOT_EMPTY", `the trial slot ${c.trial!.slot} of component ${component} holds no image`);
  return image;
}

/** Ends safe mode; `floors` (encoded versions) restore what a person knows, never lowering one. */
export function leaveSafeMode(state: BootState, floors: Record<string, bigint>): BootState {
  let next: BootState = { ...structuredClone(state), safeMode: undefined };
  for (const [component, floor] of Object.entries(floors)) {
    const c = structuredClone(componentBoot(next, component));
    if (floor > BigInt(c.floor)) c.floor = floor.toString();
    next = withComponent(next, component, c);
  }
  return next;
}

function withComponent(state: BootState, component: string, c: ComponentBoot): BootState {
  const next = structuredClone(state);
  next.components[component] = c;
  return next;
}
