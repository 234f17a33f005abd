import { createHash, randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { SlotImageMismatchError } from "./slotErrors";

/** The image file of a slot: `<root>/<componentId>/<slot>/image.bin`. */
export const IMAGE_FILE = "image.bin";

const TEMP_NAME = /^\.image\.bin\..+\.tmp$/;

/**
 * Streams `content` into `<slotDir>/image.bin` so that after a crash the slot holds either its
 * previous file or the complete new one: a temp file beside it, fsync, a hash and size check,
 * rename, directory fsync. Bytes that are not the expected image never reach image.bin.
 */
export async function writeSlotImage(
  slotDir: string,
  expected: { fileHash: string; size: number },
  content: AsyncIterable<Uint8Array>,
  beforeRename: () => void | Promise<void> = () => {},
): Promise<void> {
  await fs.mkdir(slotDir, { recursive: true });
  const temp = path.join(slotDir, `.${IMAGE_FILE}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const hash = createHash("sha256");
  let size = 0;
  try {
    const handle = await fs.open(temp, "wx", 0o644);
    // One write in flight, in order: the disk works while the next chunk is produced and hashed.
    let writing: Promise<unknown> = Promise.resolve();
    try {
      for await (const chunk of content) {
        size += chunk.length;
        // Stop at once on an overlong stream: flash is finite and the image is wrong anyway.
        if (size > expected.size) throw sizeMismatch(expected.size, size, "at least ");
        hash.update(chunk);
        await writing;
        writing = handle.write(chunk);
        writing.catch(() => {}); // surfaced by the next await of it
      }
      await writing;
      await handle.sync();
    } finally {
      await writing.catch(() => {});
      await handle.close();
    }
    if (size !== expected.size) throw sizeMismatch(expected.size, size, "");
    const fileHash = "0x" + hash.digest("hex");
    if (fileHash !== expected.fileHash.toLowerCase()) {
      throw new SlotImageMismatchError("SLOT_HASH_MISMATCH", `the written image hashes to ${fileHash}, not the recorded ${expected.fileHash}`, {
        details: { expected: expected.fileHash, actual: fileHash },
      });
    }
    await beforeRename();
    await fs.rename(temp, path.join(slotDir, IMAGE_FILE));
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
  await syncDirectory(slotDir);
}

/** SHA-256 ("0x" + hex) and size of a file, or null when it does not exist. */
export async function hashFile(file: string): Promise<{ fileHash: string; size: number } | null> {
  let handle;
  try {
    handle = await fs.open(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  // One buffer read into again and again: a whole image hashed without a new allocation per piece.
  const buffer = Buffer.allocUnsafe(HASH_READ_SIZE);
  const hash = createHash("sha256");
  let size = 0;
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return { fileHash: "0x" + hash.digest("hex"), size };
}

const HASH_READ_SIZE = 1024 * 1024;

/** Deletes temp files a crash left in `dir` whose names match `pattern`; returns their paths. */
export async function removeTempFiles(dir: string, pattern: RegExp = TEMP_NAME): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return [];
    throw err;
  }
  const stale = names.filter((name) => pattern.test(name)).map((name) => path.join(dir, name));
  await Promise.all(stale.map((file) => fs.rm(file, { force: true })));
  if (stale.length > 0) await syncDirectory(dir);
  return stale;
}

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function sizeMismatch(expected: number, actual: number, qualifier: string): SlotImageMismatchError {
  return new SlotImageMismatchError("SLOT_SIZE_MISMATCH", `the image is ${qualifier}${actual} bytes, not the recorded ${expected}`, {
    details: { expected, actual },
  });
}
