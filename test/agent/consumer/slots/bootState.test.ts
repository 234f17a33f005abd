import { expect } from "chai";
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { BootState, bootStatePath, emptyBootState, loadBootState, saveBootState } from "../../../../agent/consumer/slots/bootState";
import { resetToSafeMode } from "../../../../agent/consumer/slots/safeMode";
import { SlotStore } from "../../../../agent/consumer/slots/slotStore";
import { expectCode } from "../../../helpers/expectCode";
import { BOOTLOADER, chunksOf, makeImage, useTempRoot } from "./slotFixture";

function sampleState(): BootState {
  const { image } = makeImage("1.0.0", 16);
  return {
    ...emptyBootState(),
    components: { [BOOTLOADER]: { active: "b", slots: { a: null, b: image }, trial: null, floor: image.version } },
    counter: 7,
  };
}

describe("agent/consumer/slots boot state file", function () {
  const tmp = useTempRoot("ota-bootstate-");

  it("REQ-10c-ii: reads back exactly what was saved", async () => {
    const state = sampleState();
    await saveBootState(tmp.dir, state);
    expect(await loadBootState(tmp.dir)).to.deep.equal({ state });
  });

  it("REQ-10c-ii: treats a missing file on an empty root as a fresh device", async () => {
    expect(await loadBootState(path.join(tmp.dir, "new"))).to.deep.equal({ state: emptyBootState(), fresh: true });
  });

  it("REQ-10c-ii: reports a missing file as corrupt when slot directories exist (never a silent reset)", async () => {
    await fs.mkdir(path.join(tmp.dir, BOOTLOADER, "a"), { recursive: true });
    const loaded = await loadBootState(tmp.dir);
    expect(loaded)
      .to.have.property("corrupt")
      .that.matches(/missing/);
  });

  const damages: { name: string; damage: (text: string) => string; why: RegExp }[] = [
    { name: "a torn file (cut in half)", damage: (t) => t.slice(0, t.length / 2), why: /not valid JSON/ },
    { name: "an empty file", damage: () => "", why: /not valid JSON/ },
    { name: "one digit changed (counter 7 -> 8)", damage: (t) => t.replace('"counter": 7', '"counter": 8'), why: /checksum mismatch/ },
    { name: "the floor lowered", damage: (t) => t.replace(/"floor": "\d+"/, '"floor": "0"'), why: /checksum mismatch/ },
    { name: "JSON without the checksum envelope", damage: (t) => JSON.stringify(JSON.parse(t).state), why: /envelope/ },
  ];
  for (const d of damages) {
    it(`REQ-10c-ii CAP-11.1-b: detects ${d.name} as corrupt and leaves the file as it was`, async () => {
      await saveBootState(tmp.dir, sampleState());
      const damaged = d.damage(await fs.readFile(bootStatePath(tmp.dir), "utf8"));
      await fs.writeFile(bootStatePath(tmp.dir), damaged);
      const loaded = await loadBootState(tmp.dir);
      expect(loaded).to.have.property("corrupt").that.matches(d.why);
      expect(await fs.readFile(bootStatePath(tmp.dir), "utf8")).to.equal(damaged);
      await expectCode(SlotStore.open(tmp.dir), "BOOT_STATE_CORRUPT");
    });
  }

  it("REQ-10c-ii: detects a well-checksummed body of the wrong shape as corrupt", async () => {
    const body = { ...sampleState(), format: 2 };
    // Rebuild the checksum the way the writer does (sorted keys at every level).
    const sorted = (v: unknown): unknown =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(
            Object.entries(v)
              .sort(([a], [b]) => (a < b ? -1 : 1))
              .map(([k, x]) => [k, sorted(x)]),
          )
        : v;
    const sha256 = createHash("sha256")
      .update(JSON.stringify(sorted(body)))
      .digest("hex");
    await fs.writeFile(bootStatePath(tmp.dir), JSON.stringify({ sha256, state: body }));
    expect(await loadBootState(tmp.dir))
      .to.have.property("corrupt")
      .that.matches(/format/);
  });

  it("refuses to save a state that would not load again", async () => {
    const bad = { ...sampleState(), counter: -1 };
    await expectCode(saveBootState(tmp.dir, bad), "BOOT_STATE_INVALID");
    await fs.access(bootStatePath(tmp.dir)).then(
      () => expect.fail("nothing should have been written"),
      () => undefined,
    );
  });
});

describe("agent/consumer/slots safe mode", function () {
  const tmp = useTempRoot("ota-safemode-");

  async function corruptDevice(): Promise<void> {
    const store = await SlotStore.open(tmp.dir, { clock: () => 1_000 });
    const { image, bytes } = makeImage("1.0.0");
    await store.writeInactive(BOOTLOADER, image, chunksOf(bytes));
    for (let i = 0; i < 5; i++) await store.nextCounter();
    const text = await fs.readFile(bootStatePath(tmp.dir), "utf8");
    await fs.writeFile(bootStatePath(tmp.dir), text.replace(image.releaseId.slice(2, 10), "deadbeef"));
  }

  it("CAP-11.1-b: keeps the corrupt file aside, marks every component unknown and refuses updates until a person leaves safe mode", async () => {
    await corruptDevice();
    const corruptText = await fs.readFile(bootStatePath(tmp.dir), "utf8");
    const state = await resetToSafeMode(tmp.dir, { clock: () => 2_000 });
    expect(state.safeMode).to.deep.equal({ since: 2_000, reason: "checksum mismatch", keptAs: "boot-state.json.corrupt-2000" });
    expect(await fs.readFile(path.join(tmp.dir, "boot-state.json.corrupt-2000"), "utf8")).to.equal(corruptText);
    expect(state.components).to.deep.equal({});
    expect(state.counter).to.equal(2_000); // max(now, readable old counter 5 + 1)

    const store = await SlotStore.open(tmp.dir);
    expect(store.installed()).to.deep.equal([]);
    expect((await store.recover()).safeMode).to.equal(true);
    const { image, bytes } = makeImage("1.1.0");
    await store.writeInactive(BOOTLOADER, image, chunksOf(bytes)); // installing by hand stays possible
    await expectCode(store.beginTrial(BOOTLOADER), "SAFE_MODE");
    await store.leaveSafeMode({ [BOOTLOADER]: BigInt(image.version) });
    await expectCode(store.beginTrial(BOOTLOADER), "VERSION_BELOW_FLOOR");
    expect(store.snapshot().safeMode).to.equal(undefined);
  });

  it("CAP-11.1-b: keeps the counter rising when the old counter is still readable and above the clock", async () => {
    await corruptDevice();
    const text = JSON.parse(await fs.readFile(bootStatePath(tmp.dir), "utf8"));
    text.state.counter = 5_000;
    await fs.writeFile(bootStatePath(tmp.dir), JSON.stringify(text));
    expect((await resetToSafeMode(tmp.dir, { clock: () => 2_000 })).counter).to.equal(5_001);
  });

  it("CAP-11.1-b: refuses to reset a boot state that loads", async () => {
    await SlotStore.open(tmp.dir);
    const before = await fs.readFile(bootStatePath(tmp.dir), "utf8");
    await expectCode(resetToSafeMode(tmp.dir), "BOOT_STATE_NOT_CORRUPT");
    expect(await fs.readFile(bootStatePath(tmp.dir), "utf8")).to.equal(before);
  });
});
