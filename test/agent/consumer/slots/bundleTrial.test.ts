import { expect } from "chai";
import { promises as fs } from "node:fs";
import path from "node:path";
import { id } from "ethers";
import { SlotStore } from "../../../../agent/consumer/slots/slotStore";
import type { SlotPhase } from "../../../../agent/consumer/slots/slotStore";
import { expectCode } from "../../../helpers/expectCode";
import { APP, BOOTLOADER, chunksOf, makeImage, TestImage, useTempRoot } from "./slotFixture";

const BUNDLE = id("bundle: acme kit 1.1.0");
const MEMBERS = [APP, BOOTLOADER].sort(); // a bundle's order
const healthy = async () => true;

describe("agent/consumer/slots: a bundle's members boot, confirm and roll back together (docs/adr/0019)", function () {
  const tmp = useTempRoot("ota-bundle-");
  let clock = 1_000;
  let saves: SlotPhase[] = [];
  const open = () => SlotStore.open(tmp.dir, { clock: () => clock++, hooks: { at: (p) => void (p.endsWith(":saved") && saves.push(p)) } });

  /** Both components running 1.0.0, and the bundle's 1.1.0 of each written into their inactive slots. */
  async function written(): Promise<{ store: SlotStore; old: TestImage[]; next: TestImage[] }> {
    const store = await open();
    const old = MEMBERS.map((c) => makeImage("1.0.0", 64 * 1024, c));
    const next = MEMBERS.map((c) => makeImage("1.1.0", 64 * 1024, c));
    for (const [i, c] of MEMBERS.entries()) {
      await store.writeInactive(c, old[i].image, chunksOf(old[i].bytes));
      await store.beginTrial(c);
      await store.bootTrial(c, healthy);
      await store.writeInactive(c, next[i].image, chunksOf(next[i].bytes));
    }
    saves = [];
    return { store, old, next };
  }
  const membersOf = (next: TestImage[]) => MEMBERS.map((component, i) => ({ component, releaseId: next[i].image.releaseId }));
  const runningOf = (store: SlotStore) => MEMBERS.map((c) => store.snapshot().components[c].slots[store.snapshot().components[c].active]);
  const floorsOf = (store: SlotStore) => MEMBERS.map((c) => store.snapshot().components[c].floor);

  it("REQ-10c-ii CAP-11.1-a-iii: one write starts the trial of every member, one counts the attempt, one confirms them all, and the floors move then", async () => {
    const { store, next } = await written();
    await store.beginBundleTrial(BUNDLE, membersOf(next), 2);
    expect(MEMBERS.map((c) => store.snapshot().components[c].trial)).to.deep.equal(
      MEMBERS.map(() => ({ slot: "a", attemptsLeft: 2, startedAt: clock - 1, bundle: BUNDLE })),
    );
    const floors = floorsOf(store);
    const checked: string[] = [];
    const outcome = await store.bootBundleTrial(BUNDLE, async (_dir, image) => (checked.push(image.releaseId), true));
    expect(outcome).to.include({ outcome: "confirmed", code: "OK", releaseId: BUNDLE });
    expect(checked).to.deep.equal(next.map((n) => n.image.releaseId)); // every member's health asked, in the bundle's order
    expect(runningOf(store)).to.deep.equal(next.map((n) => n.image));
    expect(floors).to.not.deep.equal(floorsOf(store)); // unchanged until confirmed
    expect(floorsOf(store)).to.deep.equal(next.map((n) => n.image.version));
    expect(store.snapshot().lastResult).to.include({ releaseId: BUNDLE, outcome: "confirmed", code: "OK", component: MEMBERS[0] });
    expect(saves).to.deep.equal(["trial:saved", "attempt:saved", "confirm:saved"]);
    expect(store.installed().map((i) => i.version.toString())).to.deep.equal(next.map((n) => n.image.version));
  });

  it("REQ-10c-ii CAP-11.1-a-iii: the second member's failing health check rolls both back in one write; the bundle, not its members, is remembered as failed", async () => {
    const { store, old, next } = await written();
    const floors = floorsOf(store);
    await store.beginBundleTrial(BUNDLE, membersOf(next));
    const outcome = await store.bootBundleTrial(BUNDLE, async (_dir, image) => image.releaseId !== next[1].image.releaseId);
    expect(outcome).to.deep.equal({
      outcome: "rolled-back",
      code: "HEALTH_CHECK_FAILED",
      releaseId: BUNDLE,
      version: "0",
      failedMember: next[1].image.releaseId,
    });
    expect(runningOf(store)).to.deep.equal(old.map((o) => o.image));
    expect(floorsOf(store)).to.deep.equal(floors);
    expect(MEMBERS.map((c) => store.snapshot().components[c].trial)).to.deep.equal([null, null]);
    expect(Object.keys(store.snapshot().failedReleases)).to.deep.equal([BUNDLE]);
    expect(saves).to.deep.equal(["trial:saved", "attempt:saved", "rollback:saved"]);
    await expectCode(store.beginBundleTrial(BUNDLE, membersOf(next)), "RELEASE_FAILED_BEFORE");
    // Each member alone is not refused as failed (another bundle, or a plan, may bring it).
    await store.beginTrial(MEMBERS[0]);
    expect(store.snapshot().components[MEMBERS[0]].trial).to.include({ slot: "a" });
  });

  it("REQ-10c-ii: a member whose slot bytes changed, or a health check that throws, rolls every member back", async () => {
    const { store, old, next } = await written();
    await store.beginBundleTrial(BUNDLE, membersOf(next));
    await fs.appendFile(path.join(store.slotDir(MEMBERS[1], "a"), "image.bin"), "x");
    expect(await store.bootBundleTrial(BUNDLE, healthy)).to.include({
      outcome: "rolled-back",
      code: "SLOT_IMAGE_CORRUPT",
      failedMember: next[1].image.releaseId,
    });
    expect(runningOf(store)).to.deep.equal(old.map((o) => o.image));

    const other = id("bundle: another");
    await store.clearFailure(BUNDLE);
    await fs.writeFile(path.join(store.slotDir(MEMBERS[1], "a"), "image.bin"), next[1].bytes);
    await store.beginBundleTrial(other, membersOf(next));
    expect(
      await store.bootBundleTrial(other, async () => {
        throw new Error("watchdog");
      }),
    ).to.include({ outcome: "rolled-back", code: "HEALTH_CHECK_ERROR", failedMember: next[0].image.releaseId });
    expect(runningOf(store)).to.deep.equal(old.map((o) => o.image));
  });

  it("REQ-10c-ii CAP-11.1-a-i: a restart lists every member's pending trial with its bundle; a boot that fails, or a person, rolls every member back", async () => {
    const { store, old, next } = await written();
    await store.beginBundleTrial(BUNDLE, membersOf(next), 1);
    const reopened = await open();
    const report = await reopened.recover(); // a restart with the attempt still left: the caller boots the bundle
    expect(report.components.filter((c) => c.action === "boot-trial")).to.deep.equal(
      MEMBERS.map((component) => ({ component, action: "boot-trial", slot: "a", attemptsLeft: 1, bundle: BUNDLE })),
    );
    expect(await reopened.bootBundleTrial(BUNDLE, async () => false)).to.include({ outcome: "rolled-back", code: "HEALTH_CHECK_FAILED" });
    const other = id("bundle: by hand");
    await reopened.beginBundleTrial(other, membersOf(next));
    expect(await reopened.rollbackBundle(other, "OPERATOR")).to.include({ outcome: "rolled-back", code: "OPERATOR", releaseId: other });
    expect(runningOf(reopened)).to.deep.equal(old.map((o) => o.image));
  });

  it("REQ-10d-i: a slot holding another release than the member's starts no member's trial", async () => {
    const { store, next } = await written();
    const before = store.snapshot();
    await expectCode(
      store.beginBundleTrial(BUNDLE, [
        { component: MEMBERS[0], releaseId: next[0].image.releaseId },
        { component: MEMBERS[1], releaseId: id("other") },
      ]),
      "SLOT_NOT_MEMBER",
    );
    expect(store.snapshot()).to.deep.equal(before);
    await store.beginTrial(MEMBERS[1]);
    await store.bootTrial(MEMBERS[1], healthy); // the second member's 1.1.0 now runs alone: its inactive slot holds 1.0.0
    const after = store.snapshot();
    await expectCode(store.beginBundleTrial(BUNDLE, membersOf(next)), "SLOT_NOT_MEMBER");
    expect(store.snapshot()).to.deep.equal(after);
    await expectCode(store.beginBundleTrial(BUNDLE, []), "SLOT_INPUT_INVALID");
    await expectCode(store.beginBundleTrial("0x12", membersOf(next)), "SLOT_INPUT_INVALID");
  });

  it("CAP-11.1-a-iii: a bundle member's trial is not booted, confirmed or rolled back alone", async () => {
    const { store, next } = await written();
    await store.beginBundleTrial(BUNDLE, membersOf(next));
    await expectCode(store.bootTrial(MEMBERS[0], healthy), "BUNDLE_TRIAL");
    await expectCode(store.confirm(MEMBERS[0]), "BUNDLE_TRIAL");
    await expectCode(store.rollback(MEMBERS[1], "X"), "BUNDLE_TRIAL");
    await expectCode(store.bootBundleTrial(id("no such bundle"), healthy), "NO_TRIAL");
    expect(MEMBERS.map((c) => store.snapshot().components[c].trial?.bundle)).to.deep.equal([BUNDLE, BUNDLE]);
  });
});
