import { expect } from "chai";
import { promises as fs } from "node:fs";
import path from "node:path";
import { BootState, bootStatePath, loadBootState, saveBootState } from "../../../../agent/consumer/slots/bootState";
import { hashFile } from "../../../../agent/consumer/slots/slotImageFile";
import { SlotStore } from "../../../../agent/consumer/slots/slotStore";
import { encodeVersion } from "../../../../agent/core/version";
import { expectCode } from "../../../helpers/expectCode";
import { APP, BOOTLOADER, chunksOf, makeImage, TestImage, useTempRoot } from "./slotFixture";

const C = BOOTLOADER;
const healthy = async () => true;
const unhealthy = async () => false;

describe("agent/consumer/slots slot store", function () {
  const tmp = useTempRoot("ota-slots-");
  let clock = 1_000;
  const open = () => SlotStore.open(tmp.dir, { clock: () => clock++ });

  /** A device running `version` (confirmed), as after a normal first install. */
  async function running(version: string): Promise<{ store: SlotStore; old: TestImage }> {
    const store = await open();
    const old = makeImage(version);
    await store.writeInactive(C, old.image, chunksOf(old.bytes));
    await store.beginTrial(C);
    expect((await store.bootTrial(C, healthy)).outcome).to.equal("confirmed");
    return { store, old };
  }

  async function activeBytes(store: SlotStore): Promise<Buffer> {
    const c = store.snapshot().components[C];
    return fs.readFile(path.join(store.slotDir(C, c.active), "image.bin"));
  }

  describe("writeInactive", function () {
    it("CAP-11.1-a-iii: writes the image into the inactive slot only and records it there", async () => {
      const { store, old } = await running("1.0.0");
      const next = makeImage("1.1.0");
      const before = store.snapshot().components[C];
      expect(await store.writeInactive(C, next.image, chunksOf(next.bytes))).to.equal("a");
      const after = store.snapshot().components[C];
      expect(after).to.deep.equal({ ...before, slots: { a: next.image, b: old.image } });
      expect(await fs.readFile(path.join(store.slotDir(C, "a"), "image.bin"))).to.deep.equal(next.bytes);
      expect(await activeBytes(store)).to.deep.equal(old.bytes);
    });

    it("REQ-10d-ii REQ-10c-i: refuses bytes with the wrong hash, leaves the active slot and pointer untouched and records the failure", async () => {
      const { store, old } = await running("1.0.0");
      const next = makeImage("1.1.0");
      const tampered = Buffer.from(next.bytes);
      tampered[1234] ^= 1;
      const before = store.snapshot();
      await expectCode(store.writeInactive(C, next.image, chunksOf(tampered)), "SLOT_HASH_MISMATCH");
      const after = store.snapshot();
      expect(after.components).to.deep.equal(before.components);
      expect(after.lastResult).to.include({ releaseId: next.image.releaseId, outcome: "failed", code: "SLOT_HASH_MISMATCH", reported: false });
      expect(after.failedReleases).to.deep.equal({}); // a bad download may be retried
      expect(await activeBytes(store)).to.deep.equal(old.bytes);
      expect(await fs.readdir(store.slotDir(C, "a")).catch(() => [])).to.deep.equal([]);
    });

    const sizes: { name: string; bytes: (b: Buffer) => Buffer }[] = [
      { name: "a stream longer than recorded (stopped early)", bytes: (b) => Buffer.concat([b, Buffer.alloc(10)]) },
      { name: "a stream shorter than recorded", bytes: (b) => b.subarray(0, b.length - 1) },
    ];
    for (const s of sizes) {
      it(`REQ-10d-ii: refuses ${s.name} (SLOT_SIZE_MISMATCH)`, async () => {
        const { store } = await running("1.0.0");
        const next = makeImage("1.1.0");
        await expectCode(store.writeInactive(C, next.image, chunksOf(s.bytes(next.bytes))), "SLOT_SIZE_MISMATCH");
        expect(store.snapshot().components[C].slots.a).to.equal(null);
      });
    }

    it("CAP-11.1-a-iii: forgets the inactive slot's old image before overwriting it", async () => {
      const { store } = await running("1.0.0");
      const v11 = makeImage("1.1.0");
      await store.writeInactive(C, v11.image, chunksOf(v11.bytes));
      await store.beginTrial(C);
      await store.bootTrial(C, healthy); // 1.1.0 runs in a; 1.0.0 is left in b
      const phases: string[] = [];
      let recordedWhileReplaced: unknown = "unread";
      const hooked = await SlotStore.open(tmp.dir, {
        hooks: {
          async at(phase) {
            phases.push(phase);
            const loaded = await loadBootState(tmp.dir);
            if (phase === "image:renamed" && "state" in loaded) recordedWhileReplaced = loaded.state.components[C].slots.b;
          },
        },
      });
      const v12 = makeImage("1.2.0");
      await hooked.writeInactive(C, v12.image, chunksOf(v12.bytes));
      expect(phases).to.deep.equal(["clear:before-save", "clear:saved", "image:synced", "image:renamed", "record:before-save", "record:saved"]);
      expect(recordedWhileReplaced).to.equal(null);
      expect(hooked.snapshot().components[C].slots.b).to.deep.equal(v12.image);
    });

    it("REQ-10d-i: refuses an image not newer than the running one before writing anything", async () => {
      const { store } = await running("1.1.0");
      const older = makeImage("1.0.0");
      await expectCode(store.writeInactive(C, older.image, chunksOf(older.bytes)), "VERSION_BELOW_FLOOR");
      expect(await fs.readdir(path.join(tmp.dir, C))).to.deep.equal(["b"]);
    });

    it("REQ-10c-ii: refuses to overwrite a slot under trial (TRIAL_PENDING)", async () => {
      const { store } = await running("1.0.0");
      const next = makeImage("1.1.0");
      await store.writeInactive(C, next.image, chunksOf(next.bytes));
      await store.beginTrial(C);
      const other = makeImage("1.2.0");
      await expectCode(store.writeInactive(C, other.image, chunksOf(other.bytes)), "TRIAL_PENDING");
      expect(await fs.readFile(path.join(store.slotDir(C, "a"), "image.bin"))).to.deep.equal(next.bytes);
    });

    it("refuses a component id that is not bytes32 (it names a directory)", async () => {
      const store = await open();
      const next = makeImage("1.0.0");
      await expectCode(store.writeInactive("../../etc", next.image, chunksOf(next.bytes)), "SLOT_COMPONENT_INVALID");
      await expectCode(store.writeInactive(C, { ...next.image, version: "1.0.0" }, chunksOf(next.bytes)), "SLOT_IMAGE_INVALID");
    });
  });

  describe("trial, confirm and rollback", function () {
    it("REQ-10d-i: refuses a trial of an empty inactive slot (SLOT_EMPTY)", async () => {
      const { store } = await running("1.0.0");
      await expectCode(store.beginTrial(C), "SLOT_EMPTY");
      expect(store.snapshot().components[C].trial).to.equal(null);
    });

    it("CAP-11.1-a-iii: persists the attempt before the health check runs, then confirms: active slot switched, floor raised", async () => {
      const { store } = await running("1.0.0");
      const next = makeImage("1.1.0");
      await store.writeInactive(C, next.image, chunksOf(next.bytes));
      expect(await store.beginTrial(C, 3)).to.deep.equal({ slot: "a", attemptsLeft: 3 });
      let seenOnDisk: BootState | undefined;
      const outcome = await store.bootTrial(C, async (slotDir, image) => {
        seenOnDisk = (await SlotStore.open(tmp.dir)).snapshot();
        expect(slotDir).to.equal(store.slotDir(C, "a"));
        expect(image).to.deep.equal(next.image);
        return true;
      });
      expect(seenOnDisk!.components[C].trial).to.include({ slot: "a", attemptsLeft: 2 });
      expect(outcome).to.deep.equal({ outcome: "confirmed", code: "OK", releaseId: next.image.releaseId, version: next.image.version });
      expect(store.snapshot().components[C]).to.deep.include({ active: "a", trial: null, floor: next.image.version });
      expect(store.installed()).to.deep.equal([{ component: C, version: encodeVersion("1.1.0") }]);
    });

    const failures: { name: string; check: () => Promise<boolean>; code: string }[] = [
      { name: "fails its health check", check: unhealthy, code: "HEALTH_CHECK_FAILED" },
      { name: "makes its health check throw", check: async () => Promise.reject(new Error("boom")), code: "HEALTH_CHECK_ERROR" },
    ];
    for (const f of failures) {
      it(`CAP-11.1-a-iii REQ-10c-ii: rolls back an image that ${f.name} (${f.code}): old slot active, floor kept, release remembered`, async () => {
        const { store, old } = await running("1.0.0");
        const next = makeImage("1.1.0");
        await store.writeInactive(C, next.image, chunksOf(next.bytes));
        await store.beginTrial(C);
        const before = store.snapshot().components[C];
        expect(await store.bootTrial(C, f.check)).to.deep.equal({
          outcome: "rolled-back",
          code: f.code,
          releaseId: next.image.releaseId,
          version: next.image.version,
        });
        expect(store.snapshot().components[C]).to.deep.equal({ ...before, trial: null });
        expect(store.snapshot().failedReleases[next.image.releaseId]).to.include({ code: f.code });
        expect(store.installed()).to.deep.equal([{ component: C, version: BigInt(old.image.version) }]);
        await expectCode(store.beginTrial(C), "RELEASE_FAILED_BEFORE");
        await store.clearFailure(next.image.releaseId);
        await store.beginTrial(C); // a person allowed the retry
      });
    }

    it("REQ-10d-ii CAP-11.1-a-iii: rolls back a trial slot whose bytes changed on disk without booting it", async () => {
      const { store } = await running("1.0.0");
      const next = makeImage("1.1.0");
      await store.writeInactive(C, next.image, chunksOf(next.bytes));
      await store.beginTrial(C);
      const file = path.join(store.slotDir(C, "a"), "image.bin");
      await fs.writeFile(file, Buffer.concat([next.bytes.subarray(0, 100), Buffer.alloc(next.bytes.length - 100)]));
      let booted = false;
      const outcome = await store.bootTrial(C, async () => (booted = true));
      expect(outcome).to.include({ outcome: "rolled-back", code: "SLOT_IMAGE_CORRUPT" });
      expect(booted).to.equal(false);
    });

    it("REQ-10d-i: the floor never decreases: a rolled-back newer image and an explicit rollback leave it where it was", async () => {
      const { store } = await running("1.0.0");
      const floors: string[] = [store.snapshot().components[C].floor];
      for (const [version, end] of [
        ["1.1.0", "confirm"],
        ["1.2.0", "rollback"],
        ["1.3.0", "confirm"],
        ["1.4.0", "rollback"],
      ] as const) {
        const next = makeImage(version);
        await store.writeInactive(C, next.image, chunksOf(next.bytes));
        await store.beginTrial(C);
        if (end === "confirm") await store.confirm(C);
        else await store.rollback(C, "OPERATOR");
        floors.push(store.snapshot().components[C].floor);
      }
      expect(floors.map((f) => BigInt(f))).to.deep.equal(["1.0.0", "1.1.0", "1.1.0", "1.3.0", "1.3.0"].map(encodeVersion));
      await expectCode(store.confirm(C), "NO_TRIAL");
      await expectCode(store.rollback(C, "X"), "NO_TRIAL");
    });

    it("CAP-11.1-a-iii: keeps components apart", async () => {
      const { store } = await running("1.0.0");
      const app = makeImage("3.0.0", 1024, APP);
      await store.writeInactive(APP, app.image, chunksOf(app.bytes));
      await store.beginTrial(APP);
      await store.bootTrial(APP, healthy);
      expect(store.installed()).to.have.deep.members([
        { component: C, version: encodeVersion("1.0.0") },
        { component: APP, version: encodeVersion("3.0.0") },
      ]);
    });
  });

  describe("start-up and reports", function () {
    it("REQ-10c-i: the report counter survives a restart and never repeats, even under concurrent calls", async () => {
      const store = await open();
      expect(await Promise.all([store.nextCounter(), store.nextCounter(), store.nextCounter()])).to.deep.equal([1, 2, 3]);
      const again = await open();
      expect(await again.nextCounter()).to.equal(4);
    });

    it("CAP-11.1-a-i: recover says whether the previous update succeeded, and remembers when it was reported", async () => {
      const { store, old } = await running("1.0.0");
      const report = await (await open()).recover();
      expect(report.components).to.deep.equal([{ component: C, action: "running", slot: "b", image: old.image }]);
      expect(report.lastResult).to.include({ releaseId: old.image.releaseId, outcome: "confirmed", reported: false });
      await store.markReported();
      expect((await (await open()).recover()).lastResult).to.include({ reported: true });
    });

    it("CAP-11.1-a-iii REQ-10c-ii: recover asks for another boot of a pending trial and rolls back one without attempts left", async () => {
      const { store } = await running("1.0.0");
      const next = makeImage("1.1.0");
      await store.writeInactive(C, next.image, chunksOf(next.bytes));
      await store.beginTrial(C, 2);
      expect((await (await open()).recover()).components).to.deep.equal([{ component: C, action: "boot-trial", slot: "a", attemptsLeft: 2 }]);

      const spent = store.snapshot();
      spent.components[C].trial!.attemptsLeft = 0; // as after two boots that never came back
      await saveBootState(tmp.dir, spent);
      const report = await (await open()).recover();
      expect(report.components).to.deep.equal([{ component: C, action: "rolled-back", releaseId: next.image.releaseId, code: "TRIAL_ATTEMPTS_EXHAUSTED" }]);
      expect(report.lastResult).to.include({ outcome: "rolled-back", code: "TRIAL_ATTEMPTS_EXHAUSTED" });
    });

    it("REQ-10c-ii: recover deletes the temp files a crash left in slot directories and beside the boot state", async () => {
      const { store, old } = await running("1.0.0");
      const leftovers = [path.join(C, "a", ".image.bin.123.abcd.tmp"), ".boot-state.json.123.456.tmp"];
      await fs.mkdir(path.join(tmp.dir, C, "a"), { recursive: true });
      for (const f of leftovers) await fs.writeFile(path.join(tmp.dir, f), "partial");
      const report = await store.recover();
      expect(report.cleaned).to.have.members(leftovers);
      expect(await fs.readdir(path.join(tmp.dir, C, "a"))).to.deep.equal([]);
      expect(await hashFile(path.join(store.slotDir(C, "b"), "image.bin"))).to.deep.equal({ fileHash: old.image.fileHash, size: old.image.size });
      await fs.access(bootStatePath(tmp.dir));
    });
  });
});
