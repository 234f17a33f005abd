import { promises as fs } from "node:fs";
import path from "node:path";
import { isHexString } from "ethers";
import { InputError } from "../core/errors";
import { writeFileAtomic } from "../files/atomicFile";

/**
 * The author's store of content keys, one file per release, written atomically before the release
 * is published: a key lost after publication would leave a release no device can ever be granted.
 * Each file is 0600 from the moment it is created, so no one else can read a key at any time
 * (CAP-11.4-b, REQ-10f-ii); a folder the store makes is 0700. Keys never leave this store except
 * wrapped for a device.
 */
export class ContentKeyStore {
  constructor(readonly directory: string) {}

  /** Where the key of `releaseId` is (or would be) kept. */
  fileOf(releaseId: string): string {
    if (!isHexString(releaseId, 32)) throw new InputError("RELEASE_ID", `"${releaseId}" is not a release id (0x + 64 hex digits)`);
    return path.join(this.directory, `${releaseId.toLowerCase()}.key`);
  }

  async save(releaseId: string, key: Uint8Array): Promise<void> {
    await fs.mkdir(this.directory, { recursive: true, mode: 0o700 });
    const file = this.fileOf(releaseId);
    await writeFileAtomic(file, Buffer.from(key).toString("hex") + "\n", { mode: 0o600 });
  }

  /**
   * Removes the key of a release that does not exist (its publication was refused); true if there
   * was one. Never call it for a release on the ledger: its key is the only way to grant it.
   */
  async remove(releaseId: string): Promise<boolean> {
    try {
      await fs.unlink(this.fileOf(releaseId));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
  }

  async load(releaseId: string): Promise<Buffer> {
    let text: string;
    try {
      text = await fs.readFile(this.fileOf(releaseId), "utf8");
    } catch {
      throw new InputError(
        "CONTENT_KEY_MISSING",
        `no content key for release ${releaseId} in ${this.directory}: grant from the machine (keystoreDir) that published it`,
      );
    }
    const key = Buffer.from(text.trim(), "hex");
    if (key.length !== 32) throw new InputError("CONTENT_KEY_CORRUPT", `the content key file of release ${releaseId} is not 32 bytes of hex`);
    return key;
  }
}
