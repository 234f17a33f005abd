import { expect } from "chai";
import { promises as fs, readFileSync } from "node:fs";
import path from "node:path";
import { commandHealthCheck } from "../../../../agent/consumer/slots/healthCheck";
import { makeImage, useTempRoot } from "./slotFixture";

const image = makeImage("1.0.0", 16).image;

/** Whether a process is gone (or a zombie nobody reaps, which runs nothing). */
function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(" ")[2] === "Z";
  } catch {
    return true;
  }
}

describe("agent/consumer/slots command health check", function () {
  const tmp = useTempRoot("ota-health-");

  it("CAP-11.1-a-iii: passes on exit 0 and hands the command the slot directory and image path", async () => {
    const check = commandHealthCheck(
      [process.execPath, "-e", "process.exit(process.env.OTA_IMAGE === require('path').join(process.env.OTA_SLOT_DIR, 'image.bin') ? 0 : 3)"],
      10_000,
    );
    expect(await check(tmp.dir, image)).to.equal(true);
  });

  it("CAP-11.1-a-iii: fails on a non-zero exit and on a command that does not exist", async () => {
    expect(await commandHealthCheck([process.execPath, "-e", "process.exit(1)"], 10_000)(tmp.dir, image)).to.equal(false);
    expect(await commandHealthCheck([path.join(tmp.dir, "no-such-command")], 10_000)(tmp.dir, image)).to.equal(false);
  });

  it("CAP-11.1-a-iii: fails a command that outlives the timeout and kills it with everything it started", async () => {
    const pidFile = path.join(tmp.dir, "pid");
    const check = commandHealthCheck(["sh", "-c", `sleep 30 & echo $! > "${pidFile}"; wait`], 300);
    expect(await check(tmp.dir, image)).to.equal(false);
    const pid = Number(await fs.readFile(pidFile, "utf8"));
    for (let i = 0; i < 50 && !gone(pid); i++) await new Promise((r) => setTimeout(r, 20));
    expect(gone(pid), `sleep ${pid} still runs`).to.equal(true);
  });
});
