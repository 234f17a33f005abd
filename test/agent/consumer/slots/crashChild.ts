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
};

function crashIf(phase: string): void {
  if (phase === env.crashAt) process.kill(process.pid, "SIGKILL");
}

async function* halfThenCrash(file: string, size: number): AsyncIterable<Uint8Array> {
  let sent = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 64 * 1024 })) {
    if (sent >= size / 2) crashIf("slot-mid-write");
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

async function health(): Promise<boolean> {
  crashIf("health-running");
  return env.healthy;
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
  if (mode === "install") {
    await store.writeInactive(env.component, env.image!, halfThenCrash(env.imageFile, env.image!.size));
    crashIf("after-write");
    await store.beginTrial(env.component, env.attempts);
    const outcome = await store.bootTrial(env.component, health);
    console.log(JSON.stringify({ outcomes: [outcome] }));
  } else {
    const report = await store.recover();
    const outcomes: TrialOutcome[] = [];
    for (const c of report.components) if (c.action === "boot-trial") outcomes.push(await store.bootTrial(c.component, health));
    console.log(JSON.stringify({ report, outcomes }));
  }
}

if (require.main === module) {
  main(process.argv[2]).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
