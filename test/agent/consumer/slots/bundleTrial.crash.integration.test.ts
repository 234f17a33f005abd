import { expect } from "chai";
import { ChildProcess, spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import path from "node:path";
import { id } from "ethers";
import { BootState, loadBootState } from "../../../../agent/consumer/slots/bootState";
import { hashFile } from "../../../../agent/consumer/slots/slotImageFile";
import { RecoveryReport, SlotStore, TrialOutcome } from "../../../../agent/consumer/slots/slotStore";
import { APP, BOOTLOADER, chunksOf, makeImage, TestImage, useTempRoot } from "./slotFixture";

const MIB = 1024 * 1024;
const CHILD = path.join(__dirname, "crashChild.ts");
const REPO = path.resolve(__dirname, "../../../..");
const BUNDLE = id("bundle: acme kit 1.2.0");
const MEMBERS = [APP, BOOTLOADER].sort(); // a bundle's order: ascending by component

type Expected = "old" | "confirmed" | "rolled-back";
interface Row {
  name: string;
  crashAt: string; // see crashChild.ts; "#2" is the second member's occurrence
  unhealthy?: "second"; // the second member's health check fails
  expect: Expected;
}

/** Every phase of a two-member bundle install (docs/adr/0019): afterwards both members old, or both new. */
const ROWS: Row[] = [
  { name: "mid-write of the first member's image", crashAt: "slot-mid-write#1", expect: "old" },
  { name: "after the first member's image is renamed, before the state records it", crashAt: "image:renamed#1", expect: "old" },
  { name: "after the first member is recorded", crashAt: "record:saved#1", expect: "old" },
  { name: "between the two members' writes", crashAt: "after-write#1", expect: "old" },
  { name: "while the second member's old record is cleared", crashAt: "clear:saved#2", expect: "old" },
  { name: "mid-write of the second member's image", crashAt: "slot-mid-write#2", expect: "old" },
  { name: "after the second member's image is synced, before its rename", crashAt: "image:synced#2", expect: "old" },
  { name: "after both are written, before the bundle's trial", crashAt: "after-write#2", expect: "old" },
  { name: "before the bundle's boot-pointer write", crashAt: "trial:before-save", expect: "old" },
  { name: "inside the bundle's boot-pointer write (temp synced, not renamed)", crashAt: "pointer-inside", expect: "old" },
  { name: "just after the bundle's boot-pointer write", crashAt: "trial:saved", expect: "confirmed" },
  { name: "just after the attempt is counted for both", crashAt: "attempt:saved", expect: "confirmed" },
  { name: "during the first member's health check", crashAt: "health-running#1", expect: "confirmed" },
  { name: "during the second member's health check", crashAt: "health-running#2", expect: "confirmed" },
  { name: "during the second member's failing health check", crashAt: "health-running#2", unhealthy: "second", expect: "rolled-back" },
  { name: "while confirming both (before the write)", crashAt: "confirm:before-save", expect: "confirmed" },
  { name: "just after confirming both", crashAt: "confirm:saved", expect: "confirmed" },
  { name: "while rolling both back (before the write)", crashAt: "rollback:before-save", unhealthy: "second", expect: "rolled-back" },
  { name: "just after rolling both back", crashAt: "rollback:saved", unhealthy: "second", expect: "rolled-back" },
];

describe("agent/consumer/slots: a bundle's install is atomic across a power cut (child processes killed with SIGKILL)", function () {
  this.timeout(90_000);
  const tmp = useTempRoot("ota-bundle-crash-");
  const children = new Set<ChildProcess>();
  afterEach(() => children.forEach((c) => c.kill("SIGKILL")));

  function runChild(
    mode: "bundle" | "recover",
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

  /** Two components each went 1.0.0 -> 1.1.0 (1.0.0 waits in the inactive slot); the bundle brings both to 1.2.0. */
  async function deviceRunningOld(root: string): Promise<{ old: TestImage[]; next: TestImage[]; env: Record<string, string> }> {
    const store = await SlotStore.open(root);
    const old: TestImage[] = [];
    const next: TestImage[] = [];
    for (const component of MEMBERS) {
      const [first, current, coming] = ["1.0.0", "1.1.0", "1.2.0"].map((v) => makeImage(v, MIB, component));
      for (const { image, bytes } of [first, current]) {
        await store.writeInactive(component, image, chunksOf(bytes));
        await store.beginTrial(component);
        await store.bootTrial(component, async () => true);
      }
      old.push(current);
      next.push(coming);
    }
    const members = await Promise.all(
      MEMBERS.map(async (component, i) => {
        const imageFile = path.join(tmp.dir, `next-${i}.bin`);
        await fs.writeFile(imageFile, next[i].bytes);
        return { component, image: next[i].image, imageFile };
      }),
    );
    return { old, next, env: { OTA_ROOT: root, OTA_COMPONENT: MEMBERS[0], OTA_BUNDLE_JSON: JSON.stringify({ id: BUNDLE, members }) } };
  }

  /** A loadable state, no trial, every recorded slot's bytes as recorded, no temp file left. */
  async function assertSettled(root: string): Promise<BootState> {
    const loaded = await loadBootState(root);
    if (!("state" in loaded)) return expect.fail(`boot state corrupt: ${loaded.corrupt}`);
    for (const component of MEMBERS) {
      const c = loaded.state.components[component];
      expect(c.trial, component).to.equal(null);
      for (const slot of ["a", "b"] as const) {
        const recorded = c.slots[slot];
        if (recorded) expect(await hashFile(path.join(root, component, slot, "image.bin"))).to.deep.equal({ fileHash: recorded.fileHash, size: recorded.size });
      }
    }
    expect(await tempFiles(root)).to.deep.equal([]);
    return loaded.state;
  }

  for (const row of ROWS) {
    it(`REQ-10c-ii CAP-11.1-a-iii APP-II-2: a 2-member bundle killed ${row.name}: both members end ${row.expect === "old" ? "on the old release" : row.expect}`, async () => {
      const root = path.join(tmp.dir, "device");
      const { old, next, env } = await deviceRunningOld(root);
      const health: Record<string, string> = row.unhealthy ? { OTA_UNHEALTHY: next[1].image.releaseId } : {};
      const install = await runChild("bundle", { ...env, ...health, OTA_CRASH_AT: row.crashAt });
      expect(install.signal, `not killed: ${install.out}${install.err}`).to.equal("SIGKILL");

      const recovered = await runChild("recover", { ...env, ...health });
      expect(recovered.code, recovered.err).to.equal(0);
      const { outcomes } = JSON.parse(recovered.out) as { report: RecoveryReport; outcomes: TrialOutcome[] };
      const state = await assertSettled(root);
      const runningNew = row.expect === "confirmed";
      MEMBERS.forEach((component, i) => {
        const c = state.components[component];
        expect(c.slots[c.active], component).to.deep.equal(runningNew ? next[i].image : old[i].image);
        expect(c.floor, component).to.equal(runningNew ? next[i].image.version : old[i].image.version); // floors move only with the whole set
      });
      if (row.expect === "old") {
        expect(outcomes).to.deep.equal([]);
        expect(state.failedReleases).to.deep.equal({});
        // Nothing is stuck: the same bundle goes through on the next try.
        const store = await SlotStore.open(root);
        for (const [i, component] of MEMBERS.entries()) await store.writeInactive(component, next[i].image, chunksOf(next[i].bytes));
        await store.beginBundleTrial(
          BUNDLE,
          MEMBERS.map((component, i) => ({ component, releaseId: next[i].image.releaseId })),
        );
        expect((await store.bootBundleTrial(BUNDLE, async () => true)).outcome).to.equal("confirmed");
      } else {
        expect(state.lastResult).to.include({ releaseId: BUNDLE, outcome: row.expect });
        expect(Object.keys(state.failedReleases)).to.deep.equal(row.expect === "rolled-back" ? [BUNDLE] : []);
      }
    });
  }

  it("REQ-10c-ii CAP-11.1-a-iii: a crash loop during the bundle's trial ends after `attempts` boots with both members rolled back", async () => {
    const root = path.join(tmp.dir, "device");
    const { old, next, env } = await deviceRunningOld(root);
    const crashing = { ...env, OTA_CRASH_AT: "health-running#1", OTA_ATTEMPTS: "2" };
    let boots = 0;
    let run = await runChild("bundle", crashing);
    while (run.signal === "SIGKILL" && boots < 10) {
      boots++;
      run = await runChild("recover", crashing);
    }
    expect(run.code, run.err).to.equal(0);
    expect(boots).to.equal(2);
    const { report } = JSON.parse(run.out) as { report: RecoveryReport };
    expect(report.components).to.have.deep.members(
      MEMBERS.map((component, i) => ({ component, action: "rolled-back", releaseId: next[i].image.releaseId, code: "TRIAL_ATTEMPTS_EXHAUSTED" })),
    );
    const state = await assertSettled(root);
    MEMBERS.forEach((component, i) => expect(state.components[component].slots[state.components[component].active]).to.deep.equal(old[i].image));
    expect(state.failedReleases[BUNDLE]).to.include({ code: "TRIAL_ATTEMPTS_EXHAUSTED" });
    expect(state.lastResult).to.include({ releaseId: BUNDLE, outcome: "rolled-back", reported: false });
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
