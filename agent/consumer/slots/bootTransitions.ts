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
  const c = structuredClone(singleTrialOf(state, component));
  c.trial!.attemptsLeft -= 1;
  return withComponent(state, component, c);
}

export function confirmTrial(state: BootState, component: string, now: number): BootState {
  const c = structuredClone(singleTrialOf(state, component));
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
  const c = structuredClone(singleTrialOf(state, component));
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

/** A trial of its own: a bundle member's boots, confirms and rolls back only with its bundle. */
function singleTrialOf(state: BootState, component: string): ComponentBoot {
  const c = trialOf(state, component);
  if (c.trial!.bundle)
    throw new SlotStateError(
      "BUNDLE_TRIAL",
      `component ${component} is on trial as a member of bundle ${c.trial!.bundle}: boot, confirm or roll back the bundle`,
    );
  return c;
}

// ---------------------------------------------------------------- bundles (docs/adr/0019)
// A bundle's members are on trial together: one state write starts, counts, confirms or rolls back
// every member's trial, so a crash leaves all of them before or all after it.

/** The components on trial as members of `bundleId`, ascending (a bundle's order). */
export function bundleTrialOf(state: BootState, bundleId: string): string[] {
  return Object.entries(state.components)
    .filter(([, c]) => c.trial?.bundle === bundleId)
    .map(([component]) => component)
    .sort();
}

/** The bundles with a trial pending. */
export function pendingBundles(state: BootState): string[] {
  return [...new Set(Object.values(state.components).flatMap((c) => (c.trial?.bundle ? [c.trial.bundle] : [])))];
}

/**
 * Points the next boot of every member at its inactive slot, which must hold the member's release,
 * for `attempts` tries: one transition (each member checked as startTrial checks it, and the
 * bundle not failed before).
 */
export function startBundleTrial(
  state: BootState,
  bundleId: string,
  members: { component: string; releaseId: string }[],
  attempts: number,
  now: number,
): BootState {
  if (members.length === 0) throw new SlotInputError("SLOT_INPUT_INVALID", `bundle ${bundleId} has no member to boot`);
  const failed = state.failedReleases[bundleId];
  if (failed)
    throw new SlotStateError("RELEASE_FAILED_BEFORE", `bundle ${bundleId} failed a trial before (${failed.code}); clear the failure by hand to retry it`, {
      details: { releaseId: bundleId, ...failed },
    });
  let next = state;
  for (const { component, releaseId } of members) {
    const image = componentBoot(next, component).slots[inactiveOf(componentBoot(next, component))];
    if (image && image.releaseId !== releaseId)
      throw new SlotStateError("SLOT_NOT_MEMBER", `the inactive slot of component ${component} holds ${image.releaseId}, not the bundle's ${releaseId}`);
    next = startTrial(next, component, attempts, now);
    next.components[component].trial!.bundle = bundleId;
  }
  return next;
}

/** Counts one boot of the bundle's trial, for every member at once. */
export function spendBundleAttempt(state: BootState, bundleId: string): BootState {
  const next = structuredClone(state);
  for (const component of requireBundle(state, bundleId)) next.components[component].trial!.attemptsLeft -= 1;
  return next;
}

/** Every member runs its new image; every member's floor moves (never down); the bundle is the last result. */
export function confirmBundle(state: BootState, bundleId: string, now: number): BootState {
  const components = requireBundle(state, bundleId);
  const next = structuredClone(state);
  for (const component of components) {
    const c = next.components[component];
    const image = trialImage(state, component);
    c.active = c.trial!.slot;
    c.trial = null;
    if (BigInt(image.version) > BigInt(c.floor)) c.floor = image.version;
    delete next.failedReleases[image.releaseId];
  }
  delete next.failedReleases[bundleId];
  next.lastResult = { releaseId: bundleId, component: components[0], outcome: "confirmed", code: "OK", at: now, reported: false };
  return next;
}

/** Ends every member's trial: active slots and floors stay; the bundle (not its members) is remembered as failed. */
export function rollbackBundle(state: BootState, bundleId: string, code: string, now: number): BootState {
  const components = requireBundle(state, bundleId);
  const next = structuredClone(state);
  for (const component of components) next.components[component].trial = null;
  next.failedReleases[bundleId] = { at: now, code };
  next.lastResult = { releaseId: bundleId, component: components[0], outcome: "rolled-back", code, at: now, reported: false };
  return next;
}

function requireBundle(state: BootState, bundleId: string): string[] {
  const components = bundleTrialOf(state, bundleId);
  if (components.length === 0) throw new SlotStateError("NO_TRIAL", `bundle ${bundleId} has no trial pending`);
  return components;
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
