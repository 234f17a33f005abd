/**
 * Test-only device process for the crash tests (run with node -r ts-node/register/transpile-only).
 *   install: writeInactive, beginTrial, bootTrial of one image, as the agent does
 *   recover: start-up after a crash: recover(), then boot every pending trial again
 * With OTA_CRASH_AT=<phase> it kills itself with SIGKILL at that point: a library phase
 * (SlotHooks, e.g. "confirm:before-save") or one of this script's own:
 *   slot-mid-write   after half of the image bytes were written to the slot's temp file
 *   after-write      after writeInactive returned, before beginTrial
 *   pointer-inside   inside beginTrial's state write: temp file synced, before its rename
 *   health-running   while the trial boot's health check runs (in every process: a crash loop)
 *   after-write#1    (bundle) after the first member's writeInactive returned
 * A phase that happens more than once in a bundle install is named with its occurrence: "image:renamed#2"
 * is the second member's (a name without #n is the first occurrence).
 *   bundle: writeInactive of each member of OTA_BUNDLE_JSON, beginBundleTrial, bootBundleTrial (docs/adr/0019)
 * It prints one JSON line with what it did when it is not killed.
 */
import { createReadStream, promises as fs } from "node:fs";
import type { SlotImage } from "../../../../agent/consumer/slots/bootState";
import { SlotStore, TrialOutcome } from "../../../../agent/consumer/slots/slotStore";

const env = {
  root: process.env.OTA_ROOT!,
  component: process.env.OTA_COMPONENT!,
  imageFile: process.env.OTA_IMAGE_FILE ?? "",
  image: JSON.parse(process.env.OTA_IMAGE_JSON ?? "null") as SlotImage | null,
  crashAt: process.env.OTA_CRASH_AT ?? "",
  healthy: process.env.OTA_HEALTH !== "fail",
  attempts: Number(process.env.OTA_ATTEMPTS ?? 3),
  bundle: JSON.parse(process.env.OTA_BUNDLE_JSON ?? "null") as null | { id: string; members: { component: string; image: SlotImage; imageFile: string }[] },
  unhealthy: process.env.OTA_UNHEALTHY ?? "", // (bundle) the release id whose health check fails
};

const seen = new Map<string, number>();
function crashIf(phase: string): void {
  const n = (seen.get(phase) ?? 0) + 1;
  seen.set(phase, n);
  if (phase === env.crashAt || `${phase}#${n}` === env.crashAt) process.kill(process.pid, "SIGKILL");
}

async function* halfThenCrash(file: string, size: number): AsyncIterable<Uint8Array> {
  let sent = 0;
  let crossed = false; // once per image, so that "slot-mid-write#2" is the second image's
  for await (const chunk of createReadStream(file, { highWaterMark: 64 * 1024 })) {
    if (sent >= size / 2 && !crossed) {
      crossed = true;
      crashIf("slot-mid-write");
    }
    sent += (chunk as Buffer).length;
    yield chunk as Buffer;
  }
}

/** Kills the process when the boot-state rename happens, once armed (the real "inside the write"). */
function armRenameCrash(): void {
  const rename = fs.rename;
  fs.rename = async (from, to) => {
    if (String(to).endsWith("boot-state.json")) crashIf("pointer-inside");
    return rename(from, to);
  };
}

async function health(_dir: string, image: SlotImage): Promise<boolean> {
  crashIf("health-running");
  return env.bundle ? image.releaseId !== env.unhealthy : env.healthy;
}

async function main(mode: string): Promise<void> {
  const store = await SlotStore.open(env.root, {
    hooks: {
      at(phase) {
        if (phase === "trial:before-save" && env.crashAt === "pointer-inside") armRenameCrash();
        crashIf(phase);
      },
    },
  });
  if (mode === "bundle") {
    const { id, members } = env.bundle!;
    for (const m of members) {
      await store.writeInactive(m.component, m.image, halfThenCrash(m.imageFile, m.image.size));
      crashIf("after-write");
    }
    await store.beginBundleTrial(
      id,
      members.map((m) => ({ component: m.component, releaseId: m.image.releaseId })),
      env.attempts,
    );
    console.log(JSON.stringify({ outcomes: [await store.bootBundleTrial(id, health)] }));
  } else if (mode === "install") {
    await store.writeInactive(env.component, env.image!, halfThenCrash(env.imageFile, env.image!.size));
    crashIf("after-write");
    await store.beginTrial(env.component, env.attempts);
    const outcome = await store.bootTrial(env.component, health);
    console.log(JSON.stringify({ outcomes: [outcome] }));
  } else {
    const report = await store.recover();
    const outcomes: TrialOutcome[] = [];
    const bundles = new Set<string>();
    for (const c of report.components) {
      if (c.action !== "boot-trial") continue;
      if (!c.bundle) outcomes.push(await store.bootTrial(c.component, health));
      else if (!bundles.has(c.bundle)) {
        bundles.add(c.bundle);
        outcomes.push(await store.bootBundleTrial(c.bundle, health));
      }
    }
    console.log(JSON.stringify({ report, outcomes }));
  }
}

if (require.main === module) {
  main(process.argv[2]).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
