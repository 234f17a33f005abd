import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { OtaError } from "../core/errors";

const LOCK_FILE = ".lock";

export interface HeldLock {
  file: string;
  release(): Promise<void>;
}

/**
 * Takes a folder for one process (`<dir>/.lock`, holding the pid): two firmware servers or two
 * device agents on one data folder would both write its database or slots. A lock left by a
 * process that no longer runs (a crash, a power cut) is taken over; one held by a running process
 * is refused with ALREADY_RUNNING, naming it.
 */
export async function lockFolder(dir: string, what: string): Promise<HeldLock> {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  const mine = JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() }) + "\n";
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fs.writeFile(file, mine, { flag: "wx" });
      return { file, release: () => fs.rm(file, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = await readHolder(file);
    if (holder && holder.host === os.hostname() && isRunning(holder.pid)) {
      throw new OtaError(
        "ALREADY_RUNNING",
        `${dir} is in use by ${what} in process ${holder.pid} (since ${holder.since}): stop it first, or give this one another folder; if no such process runs, remove ${file}`,
        { details: { dir, pid: holder.pid } },
      );
    }
    await fs.rm(file, { force: true }); // left behind by a process that is gone
  }
  throw new OtaError("ALREADY_RUNNING", `${file} is being taken by another process at the same moment: try again`);
}

async function readHolder(file: string): Promise<{ pid: number; host: string; since: string } | undefined> {
  try {
    const h = JSON.parse(await fs.readFile(file, "utf8")) as { pid: unknown; host: unknown; since: unknown };
    return typeof h.pid === "number" && typeof h.host === "string" ? { pid: h.pid, host: h.host, since: String(h.since) } : undefined;
  } catch {
    return undefined; // unreadable or half-written: not a lock anyone can prove they hold
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // it runs, as another user
  }
}
