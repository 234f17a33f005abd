import { expect } from "chai";
import { ChildProcess, spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import path from "node:path";
import { BootState, loadBootState } from "../../../../agent/consumer/slots/bootState";
import { hashFile } from "../../../../agent/consumer/slots/slotImageFile";
import { RecoveryReport, SlotStore, TrialOutcome } from "../../../../agent/consumer/slots/slotStore";
import { BOOTLOADER, chunksOf, makeImage, TestImage, useTempRoot } from "./slotFixture";

const C = BOOTLOADER;
const MIB = 1024 * 1024;
const CHILD = path.join(__dirname, "crashChild.ts");
const REPO = path.resolve(__dirname, "../../../..");

type Expected = "old" | "confirmed" | "rolled-back";
interface Row {
  name: string;
  crashAt: string; // see crashChild.ts
  healthy: boolean;
  expect: Expected;
  leftover?: boolean; // the kill leaves a temp file for recover() to delete
}

/** Mender-style: kill the device in every phase of an install and see where it ends. */
const ROWS: Row[] = [
  { name: "mid-write of the slot image", crashAt: "slot-mid-write", healthy: true, expect: "old", leftover: true },
  { name: "after the image's temp file is synced, before its rename", crashAt: "image:synced", healthy: true, expect: "old", leftover: true },
  { name: "after the image's rename, before the state records it", crashAt: "image:renamed", healthy: true, expect: "old" },
  { name: "after the write, before beginTrial", crashAt: "after-write", healthy: true, expect: "old" },
  { name: "before the boot-pointer write", crashAt: "trial:before-save", healthy: true, expect: "old" },
  { name: "inside the boot-pointer write (temp synced, not renamed)", crashAt: "pointer-inside", healthy: true, expect: "old", leftover: true },
  { name: "just after the boot-pointer write", crashAt: "trial:saved", healthy: true, expect: "confirmed" },
  { name: "during the trial boot of a good image (health check running)", crashAt: "health-running", healthy: true, expect: "confirmed" },
  { name: "during the trial boot of a bad image (health check running)", crashAt: "health-running", healthy: false, expect: "rolled-back" },
  { name: "while confirming (before the write)", crashAt: "confirm:before-save", healthy: true, expect: "confirmed" },
  { name: "just after confirming", crashAt: "confirm:saved", healthy: true, expect: "confirmed" },
  { name: "while rolling back (before the write)", crashAt: "rollback:before-save", healthy: false, expect: "rolled-back" },
  { name: "just after rolling back", crashAt: "rollback:saved", healthy: false, expect: "rolled-back" },
];

describe("agent/consumer/slots crash safety (child processes killed with SIGKILL)", function () {
  this.timeout(60_000);
  const tmp = useTempRoot("ota-crash-");
  const children = new Set<ChildProcess>();
  afterEach(() => children.forEach((c) => c.kill("SIGKILL")));

  /** Runs crashChild.ts to its end or its kill; never outlives the test. */
  function runChild(
    mode: "install" | "recover",
    env: Record<string, string>,
  ): Promise<{ signal: string | null; code: number | null; out: string; err: string }> {
    const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", CHILD, mode], {
      cwd: REPO,
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "true", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    let out = "";
    let err = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (err += d));
    return new Promise((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code, signal) => {
        children.delete(child);
        resolve({ code, signal, out, err });
      });
    });
  }

  /** A device that went 1.0.0 -> 1.1.0: 1.1.0 runs in slot a, 1.0.0 waits in b to be overwritten. */
  async function deviceRunningOld(root: string): Promise<{ old: TestImage; next: TestImage; env: Record<string, string> }> {
    const store = await SlotStore.open(root);
    const [first, old, next] = ["1.0.0", "1.1.0", "1.2.0"].map((v) => makeImage(v, MIB));
    for (const { image, bytes } of [first, old]) {
      await store.writeInactive(C, image, chunksOf(bytes));
      await store.beginTrial(C);
      await store.bootTrial(C, async () => true);
    }
    const imageFile = path.join(tmp.dir, "next.bin");
    await fs.writeFile(imageFile, next.bytes);
    return { old, next, env: { OTA_ROOT: root, OTA_COMPONENT: C, OTA_IMAGE_FILE: imageFile, OTA_IMAGE_JSON: JSON.stringify(next.image) } };
  }

  async function recoverOnce(env: Record<string, string>): Promise<{ report: RecoveryReport; outcomes: TrialOutcome[] }> {
    const run = await runChild("recover", env);
    expect(run.code, run.err).to.equal(0);
    return JSON.parse(run.out);
  }

  /** What every crash must leave: a loadable state, no trial, every recorded slot's bytes as recorded. */
  async function assertSettled(root: string): Promise<BootState> {
    const loaded = await loadBootState(root);
    if (!("state" in loaded)) return expect.fail(`boot state corrupt: ${loaded.corrupt}`);
    const c = loaded.state.components[C];
    expect(c.trial).to.equal(null);
    expect(c.slots[c.active]).to.not.equal(null);
    for (const slot of ["a", "b"] as const) {
      const recorded = c.slots[slot];
      if (recorded)
        expect(await hashFile(path.join(root, C, slot, "image.bin")), `slot ${slot}`).to.deep.equal({ fileHash: recorded.fileHash, size: recorded.size });
    }
    expect(await tempFiles(root)).to.deep.equal([]);
    return loaded.state;
  }

  for (const row of ROWS) {
    it(`REQ-10c-ii CAP-11.1-a-iii CAP-11.1-a-i: killed ${row.name}: ends ${row.expect === "old" ? "on the old image" : row.expect}`, async () => {
      const root = path.join(tmp.dir, "device");
      const { old, next, env } = await deviceRunningOld(root);
      const install = await runChild("install", { ...env, OTA_CRASH_AT: row.crashAt, OTA_HEALTH: row.healthy ? "pass" : "fail" });
      expect(install.signal, `not killed: ${install.out}${install.err}`).to.equal("SIGKILL");

      const { report, outcomes } = await recoverOnce({ ...env, OTA_HEALTH: row.healthy ? "pass" : "fail" });
      expect(report.cleaned.length > 0, `cleaned ${report.cleaned}`).to.equal(row.leftover === true);
      const state = await assertSettled(root);
      const c = state.components[C];
      const runningNew = row.expect === "confirmed";
      expect(c.slots[c.active]).to.deep.equal(runningNew ? next.image : old.image);
      expect(c.floor).to.equal(runningNew ? next.image.version : old.image.version); // moves only on confirmation

      // What the device reports about the update it was doing (CAP-11.1-a-i).
      const said = outcomes[0]?.outcome ?? (report.lastResult?.releaseId === next.image.releaseId ? report.lastResult.outcome : "old");
      expect(said).to.equal(row.expect);
      if (row.expect === "old") {
        expect(state.lastResult).to.include({ releaseId: old.image.releaseId, outcome: "confirmed" });
        expect(state.failedReleases).to.deep.equal({});
        // Nothing is stuck: the same update goes through on the next try.
        const store = await SlotStore.open(root);
        await store.writeInactive(C, next.image, chunksOf(next.bytes));
        await store.beginTrial(C);
        expect((await store.bootTrial(C, async () => true)).outcome).to.equal("confirmed");
      } else {
        expect(state.lastResult).to.include({ releaseId: next.image.releaseId, outcome: row.expect });
        expect(Object.keys(state.failedReleases)).to.deep.equal(row.expect === "rolled-back" ? [next.image.releaseId] : []);
      }
    });
  }

  it("REQ-10c-ii CAP-11.1-a-iii: a crash loop during the trial ends after `attempts` boots, rolled back, with the release recorded as failed", async () => {
    const root = path.join(tmp.dir, "device");
    const { old, next, env } = await deviceRunningOld(root);
    const crashing = { ...env, OTA_CRASH_AT: "health-running", OTA_ATTEMPTS: "3" };
    let boots = 0;
    let run = await runChild("install", crashing);
    while (run.signal === "SIGKILL" && boots < 10) {
      boots++;
      run = await runChild("recover", crashing);
    }
    expect(run.code, run.err).to.equal(0);
    expect(boots).to.equal(3);
    const { report } = JSON.parse(run.out) as { report: RecoveryReport };
    expect(report.components).to.deep.equal([{ component: C, action: "rolled-back", releaseId: next.image.releaseId, code: "TRIAL_ATTEMPTS_EXHAUSTED" }]);
    const state = await assertSettled(root);
    expect(state.components[C].slots[state.components[C].active]).to.deep.equal(old.image);
    expect(state.components[C].floor).to.equal(old.image.version);
    expect(state.failedReleases[next.image.releaseId]).to.include({ code: "TRIAL_ATTEMPTS_EXHAUSTED" });
    expect(state.lastResult).to.include({ releaseId: next.image.releaseId, outcome: "rolled-back", reported: false });
  });
});

async function tempFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await tempFiles(full)));
    else if (entry.name.endsWith(".tmp")) found.push(full);
  }
  return found;
}
