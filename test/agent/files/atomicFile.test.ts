import { expect } from "chai";
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { writeFileAtomic } from "../../../agent/files/atomicFile";
import { expectCode } from "../../helpers/expectCode";
import { interceptOpen, modeOf, type OpenCall } from "./openSpy";

/** Every file on disk that must survive a crash is written whole or not at all, and secrets 0600 from the start. */
describe("agent/files/atomicFile: writeFileAtomic", () => {
  let dir: string;
  let restoreOpen: (() => void) | undefined;
  let umask: number;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "ota-atomic-"));
    umask = process.umask(0); // no umask to hide a mode that is too wide
  });
  afterEach(() => {
    restoreOpen?.();
    restoreOpen = undefined;
    process.umask(umask);
    rmSync(dir, { recursive: true, force: true });
  });

  /** The files opened for writing during the test: how, and their mode the moment they existed. */
  function recordCreations(): (OpenCall & { modeAtCreation: number })[] {
    const created: (OpenCall & { modeAtCreation: number })[] = [];
    restoreOpen = interceptOpen(async (call, open) => {
      const handle = await open();
      if (call.flags !== "r") created.push({ ...call, modeAtCreation: await modeOf(handle) });
      return handle;
    });
    return created;
  }

  it("replaces the file whole, makes its folder, and leaves nothing else beside it", async () => {
    const target = path.join(dir, "state", "update-state.json");
    await writeFileAtomic(target, "first\n");
    await writeFileAtomic(target, Buffer.from("second\n"));
    expect(readFileSync(target, "utf8")).to.equal("second\n");
    expect(readdirSync(path.dirname(target))).to.deep.equal(["update-state.json"]);
    expect(await modeOf(target)).to.equal(0o644);
  });

  it("REQ-10c-ii: syncs the file and its folder by default; `durable: false` (informational records) skips both fsyncs and is still never torn", async () => {
    const syncs: string[] = [];
    restoreOpen = interceptOpen(async (call, open) => {
      const handle = await open();
      const sync = handle.sync.bind(handle);
      handle.sync = () => (syncs.push(call.flags === "r" ? "folder" : "file"), sync());
      return handle;
    });
    const target = path.join(dir, "phase", "update-state.json");
    await writeFileAtomic(target, "durable\n");
    expect(syncs).to.deep.equal(["file", "folder"]);
    syncs.length = 0;
    await writeFileAtomic(target, "informational\n", { durable: false });
    expect(syncs).to.deep.equal([]);
    expect(readFileSync(target, "utf8")).to.equal("informational\n");
    expect(readdirSync(path.dirname(target))).to.deep.equal(["update-state.json"]);
  });

  it("creates the temporary file exclusively (wx), under an unpredictable name, already with the mode asked for (CAP-11.4-b)", async () => {
    const created = recordCreations();
    const target = path.join(dir, "secret.key");
    await writeFileAtomic(target, "k1\n", { mode: 0o600 });
    await writeFileAtomic(target, "k2\n", { mode: 0o600 });
    expect(created).to.have.length(2);
    for (const c of created) {
      expect(path.dirname(c.file)).to.equal(dir);
      expect(path.basename(c.file)).to.match(/^\.secret\.key\.[0-9a-f]{32}\.tmp$/);
      expect(c).to.include({ flags: "wx", mode: 0o600, modeAtCreation: 0o600 });
    }
    expect(created[0].file).to.not.equal(created[1].file);
    expect(await modeOf(target)).to.equal(0o600);
  });

  it("gives a file written over an existing world-readable one the new mode (0644 becomes 0600)", async () => {
    const target = path.join(dir, "secret.key");
    writeFileSync(target, "old\n", { mode: 0o644 });
    expect(await modeOf(target)).to.equal(0o644);
    await writeFileAtomic(target, "new\n", { mode: 0o600 });
    expect(await modeOf(target)).to.equal(0o600);
    expect(readFileSync(target, "utf8")).to.equal("new\n");
  });

  it("does not open or clobber a file or link already at the temporary name: it takes another name", async () => {
    const outside = path.join(dir, "outside.txt");
    writeFileSync(outside, "someone else's\n");
    const target = path.join(dir, "secret.key");
    const planted: string[] = [];
    restoreOpen = interceptOpen(async (call, open) => {
      if (call.flags === "wx" && planted.length === 0) {
        symlinkSync(outside, call.file); // what an attacker who guessed the name would leave there
        planted.push(call.file);
      } else if (call.flags === "wx" && planted.length === 1) {
        writeFileSync(call.file, "planted\n");
        planted.push(call.file);
      }
      return open();
    });
    await writeFileAtomic(target, "key\n", { mode: 0o600 });
    expect(readFileSync(target, "utf8")).to.equal("key\n");
    expect(readFileSync(outside, "utf8")).to.equal("someone else's\n");
    expect(fs.readlinkSync(planted[0])).to.equal(outside);
    expect(readFileSync(planted[1], "utf8")).to.equal("planted\n");
    expect(readdirSync(dir).sort()).to.deep.equal([...planted.map((p) => path.basename(p)), "outside.txt", "secret.key"].sort());
  });

  it("gives up with EEXIST after three taken names, touching none of them and writing nothing", async () => {
    const target = path.join(dir, "secret.key");
    writeFileSync(target, "old\n", { mode: 0o600 });
    const planted: string[] = [];
    restoreOpen = interceptOpen(async (call, open) => {
      if (call.flags === "wx") {
        writeFileSync(call.file, "planted\n");
        planted.push(call.file);
      }
      return open();
    });
    await expectCode(writeFileAtomic(target, "new\n", { mode: 0o600 }), "EEXIST");
    expect(planted).to.have.length(3);
    for (const p of planted) expect(readFileSync(p, "utf8")).to.equal("planted\n");
    expect(readFileSync(target, "utf8")).to.equal("old\n");
  });

  it("leaves no temporary file, and the old content in place, when a write fails (a full disk)", async () => {
    const target = path.join(dir, "update-state.json");
    writeFileSync(target, "old\n");
    restoreOpen = interceptOpen(async (call, open) => {
      const handle = await open();
      if (call.flags === "wx") {
        handle.writeFile = async () => {
          throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
        };
      }
      return handle;
    });
    await expectCode(writeFileAtomic(target, "new\n"), "ENOSPC");
    expect(readdirSync(dir)).to.deep.equal(["update-state.json"]);
    expect(readFileSync(target, "utf8")).to.equal("old\n");
  });

  it("leaves no temporary file when the rename fails (a folder stands at the target)", async () => {
    const target = path.join(dir, "taken");
    fs.mkdirSync(path.join(target, "inside"), { recursive: true });
    const err = await writeFileAtomic(target, "data\n").then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).to.be.oneOf(["EISDIR", "ENOTEMPTY", "EEXIST", "EPERM"]);
    expect(readdirSync(dir)).to.deep.equal(["taken"]);
  });
});
