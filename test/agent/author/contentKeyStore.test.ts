import { expect } from "chai";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ContentKeyStore } from "../../../agent/author/contentKeyStore";
import { expectCode } from "../../helpers/expectCode";
import { interceptOpen, modeOf } from "../files/openSpy";

const RELEASE = "0x" + "ab".repeat(32);

/** The author's content keys, kept only for the author (CAP-11.4-b, REQ-10f-ii). */
describe("agent/author/contentKeyStore: the author's content keys", () => {
  let dir: string;
  let restoreOpen: (() => void) | undefined;
  let umask: number;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "ota-keystore-"));
    umask = process.umask(0); // a umask would hide a mode that is too wide
  });
  afterEach(() => {
    restoreOpen?.();
    restoreOpen = undefined;
    process.umask(umask);
    rmSync(dir, { recursive: true, force: true });
  });

  it("CAP-11.4-b: a content key is readable by no one but its owner at any moment, the temporary file included", async () => {
    const modes: { file: string; mode: number }[] = [];
    restoreOpen = interceptOpen(async (call, open) => {
      const handle = await open();
      if (call.flags !== "r") modes.push({ file: call.file, mode: await modeOf(handle) });
      return handle;
    });
    const keys = new ContentKeyStore(path.join(dir, ".ota-ledger", "keys"));
    const key = Buffer.alloc(32, 7);
    await keys.save(RELEASE, key);
    expect(modes).to.have.length(1);
    expect(modes[0].mode).to.equal(0o600);
    const file = path.join(keys.directory, `${RELEASE}.key`);
    expect(await modeOf(file)).to.equal(0o600);
    expect(await modeOf(keys.directory)).to.equal(0o700);
    expect(readdirSync(keys.directory)).to.deep.equal([`${RELEASE}.key`]);
    expect(await keys.load(RELEASE)).to.deep.equal(key);
  });

  it("makes a world-readable key file left by an older version 0600 when it writes the key again", async () => {
    const keys = new ContentKeyStore(dir);
    const file = path.join(dir, `${RELEASE}.key`);
    writeFileSync(file, "00".repeat(32) + "\n", { mode: 0o644 });
    await keys.save(RELEASE, Buffer.alloc(32, 9));
    expect(await modeOf(file)).to.equal(0o600);
    expect(await keys.load(RELEASE)).to.deep.equal(Buffer.alloc(32, 9));
  });

  it("removes the key of a release that does not exist (a refused publication), and says whether there was one", async () => {
    const keys = new ContentKeyStore(dir);
    await keys.save(RELEASE, Buffer.alloc(32, 5));
    expect(keys.fileOf(RELEASE)).to.equal(path.join(dir, `${RELEASE}.key`));
    expect(await keys.remove(RELEASE)).to.equal(true);
    expect(readdirSync(dir)).to.deep.equal([]);
    expect(await keys.remove(RELEASE)).to.equal(false);
    await expectCode(keys.load(RELEASE), "CONTENT_KEY_MISSING");
  });

  it("refuses a missing or damaged key, and a release id that is not one", async () => {
    const keys = new ContentKeyStore(dir);
    await expectCode(keys.load(RELEASE), "CONTENT_KEY_MISSING");
    writeFileSync(path.join(dir, `${RELEASE}.key`), "abcd\n", { mode: 0o600 });
    await expectCode(keys.load(RELEASE), "CONTENT_KEY_CORRUPT");
    await expectCode(keys.save("0x1234", Buffer.alloc(32)), "RELEASE_ID");
  });
});
