import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { lockFolder } from "../../../agent/files/pidLock";

/** One process per data folder: a firmware server's, a device agent's. */
describe("agent/files/pidLock: one process per data folder", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), "ota-lock-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("takes a free folder (making it), holds it until released, then lets the next one take it", async () => {
    const folder = path.join(dir, "data");
    const lock = await lockFolder(folder, "a firmware server");
    expect(JSON.parse(readFileSync(lock.file, "utf8"))).to.include({ pid: process.pid, host: os.hostname() });
    const err = await lockFolder(folder, "a firmware server").then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(err?.code).to.equal("ALREADY_RUNNING");
    expect(err?.message).to.match(new RegExp(`in use by a firmware server in process ${process.pid} .*stop it first`));
    await lock.release();
    expect(existsSync(lock.file)).to.equal(false);
    await (await lockFolder(folder, "a firmware server")).release();
  });

  it("takes over a lock left by a process that no longer runs (a crash), and an unreadable one", async () => {
    const gone = spawnSync(process.execPath, ["-e", "process.exit(0)"]).pid!;
    writeFileSync(path.join(dir, ".lock"), JSON.stringify({ pid: gone, host: os.hostname(), since: "earlier" }));
    const lock = await lockFolder(dir, "a device agent");
    expect(JSON.parse(readFileSync(lock.file, "utf8")).pid).to.equal(process.pid);
    await lock.release();
    writeFileSync(path.join(dir, ".lock"), "{ torn");
    await (await lockFolder(dir, "a device agent")).release();
  });
});
