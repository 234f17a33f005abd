import { expect } from "chai";
import type { CliProcess } from "./cliProcess";
import type { World } from "./world";
import type { DeviceHandle } from "./device";
import type { Published } from "./author";

/**
 * The outcome a device agent logged for a release ("release <id>: <outcome> (<code>)", the line
 * `device run` prints when it finishes considering one), waited for and then checked exactly: a
 * different outcome fails at once with the device's output, not after a timeout.
 */
export async function deviceOutcome(
  world: World,
  device: CliProcess,
  releaseId: string,
  o: { from?: number; timeoutMs?: number; skip?: readonly string[] } = {},
): Promise<{ outcome: string; code: string }> {
  const re = new RegExp(`release ${releaseId.toLowerCase()}: ([a-z-]+) \\(([A-Z_]+)\\)`);
  const skip = new Set(o.skip ?? []);
  const line = await device.waitForLine(re, {
    from: o.from,
    timeoutMs: o.timeoutMs ?? 30_000,
    context: world.context,
    ...(skip.size > 0 ? { accept: (l: string) => !skip.has(re.exec(l)![2]) } : {}),
  });
  const [, outcome, code] = re.exec(line)!;
  return { outcome, code };
}

/**
 * A release is published before its author submits and grants it: a device that asks in between
 * is told KEY_NOT_GRANTED (or ARTIFACT_NOT_AVAILABLE) and tries again later. Those outcomes are
 * passed over unless expected.
 */
const NOT_SHIPPED_YET = ["KEY_NOT_GRANTED", "ARTIFACT_NOT_AVAILABLE"];

export async function expectOutcome(
  world: World,
  device: CliProcess,
  releaseId: string,
  expected: { outcome: string; code: string },
  o: { from?: number; timeoutMs?: number } = {},
): Promise<void> {
  const got = await deviceOutcome(world, device, releaseId, { ...o, skip: NOT_SHIPPED_YET.filter((c) => c !== expected.code) });
  expect(got, `device outcome for ${releaseId}\n${device.output()}`).to.deep.equal(expected);
}

/** Ships a release to these devices (publish, submit, grant) and waits until `device` has installed it. */
export async function shipInstalled(
  world: World,
  device: CliProcess,
  component: string,
  version: string,
  deviceIds: string[],
  o: Parameters<World["author"]["ship"]>[4] = {},
): Promise<Published> {
  const published = await world.author.ship(world.serverUrl, component, version, deviceIds, o);
  await expectOutcome(world, device, published.releaseId, { outcome: "confirmed", code: "OK" });
  return published;
}

/**
 * What must not move when an update is refused: the same release active in the same slot, its
 * bytes those the author built, the anti-rollback floor, no trial under way, no partial download
 * of the refused release left behind. A blocked delivery (agent/core/updateOutcome) keeps its
 * verified chunks to resume from: `blocked` says so.
 */
export async function expectUntouched(
  d: DeviceHandle,
  component: string,
  running: Published,
  refused?: Published,
  o: { blocked?: boolean } = {},
): Promise<void> {
  const active = await d.active(component);
  expect(active, `${d.label} runs nothing`).to.not.equal(undefined);
  expect(active!.releaseId).to.equal(running.releaseId);
  expect(active!.bytes.equals(running.image), "the active slot holds the running image byte for byte").to.equal(true);
  expect(active!.floor).to.equal(running.record.version.toString());
  expect(active!.trial).to.equal(null);
  if (refused) {
    const boot = (await d.boot())!;
    const c = boot.components[running.record.component.toLowerCase()];
    const images = [c.slots.a, c.slots.b].filter(Boolean).map((s) => s!.releaseId);
    expect(images, "no slot records the refused release").to.not.include(refused.releaseId);
    if (!o.blocked) expect(await d.partialDownload(refused.releaseId), "no partial download of the refused release is kept").to.equal(0);
  }
}

/** The release confirmed and running, its bytes the author's, the floor raised to it. */
export async function expectRunning(d: DeviceHandle, component: string, r: Published): Promise<void> {
  const active = await d.active(component);
  expect(active?.releaseId, `${d.label} runs ${r.version}`).to.equal(r.releaseId);
  expect(active!.bytes.equals(r.image), "the active slot holds the new image byte for byte").to.equal(true);
  expect(active!.floor).to.equal(r.record.version.toString());
  expect(active!.trial).to.equal(null);
}
