import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";

export interface AtomicWriteOptions {
  /**
   * The file's permission bits, given to the temporary file when it is created (the process's
   * umask may only narrow them), so the content is never readable more widely, not even for a
   * moment. 0o600 for secrets. Default 0o644.
   */
  mode?: number;
  /**
   * Default true: the file and its directory are fsync'd, so the new content survives a power cut
   * once the call returns. False for records that are only informational (the phase of an update
   * in progress, a preference order): still never torn, since the rename is atomic and a killed
   * process leaves the old or the new file, but a power cut may lose the last write. It saves two
   * fsyncs per write: on a device, flash wear and time; in a simulated fleet, most of the writes' cost.
   */
  durable?: boolean;
}

/** How many fresh temporary names to try before giving up; each is 128 random bits. */
const TEMP_NAME_ATTEMPTS = 3;

/**
 * Writes a file so that after a crash it holds either the old or the new content, never a mix:
 * create a temporary file beside it under an unpredictable name, exclusively (O_CREAT|O_EXCL, so
 * nothing already there, a planted file or link, is ever opened) and with its final mode, write
 * and fsync it, rename it over the target, fsync the directory. On any error the temporary file
 * is removed. A target already there takes the new file's mode, not its old one.
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array, { mode = 0o644, durable = true }: AtomicWriteOptions = {}): Promise<void> {
  const dir = path.dirname(target);
  const { temp, handle } = await createTemp(dir, path.basename(target), mode);
  try {
    try {
      await handle.writeFile(data);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, target);
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
  if (!durable) return;
  const dirHandle = await fs.open(dir, "r");
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

/** The temporary file, created exclusively; its folder is created only when it is missing (one call fewer per write). */
async function createTemp(dir: string, name: string, mode: number): Promise<{ temp: string; handle: FileHandle }> {
  let madeDir = false;
  for (let attempt = 1; ; attempt++) {
    const temp = path.join(dir, `.${name}.${randomBytes(16).toString("hex")}.tmp`);
    try {
      return { temp, handle: await fs.open(temp, "wx", mode) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" && !madeDir) {
        await fs.mkdir(dir, { recursive: true });
        madeDir = true;
        attempt--; // a missing folder is not a name collision
        continue;
      }
      if (code !== "EEXIST" || attempt === TEMP_NAME_ATTEMPTS) throw err;
    }
  }
}

/**
 * One file's writes, one after another: each call writes what `content()` gives when its turn
 * comes (so the newest state), after the writes before it settle, failed or not. A record kept
 * by several callers (the agent's memory, its offline state) is never written by two at once.
 */
export function serialFileWriter(file: string, options: AtomicWriteOptions = {}): (content: () => string) => Promise<void> {
  let tail: Promise<void> = Promise.resolve();
  return (content) => {
    const write = tail.catch(() => {}).then(() => writeFileAtomic(file, content(), options));
    tail = write;
    return write;
  };
}
