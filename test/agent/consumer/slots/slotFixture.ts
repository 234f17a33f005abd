import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { id } from "ethers";
import { encodeVersion } from "../../../../agent/core/version";
import type { SlotImage } from "../../../../agent/consumer/slots/bootState";

/** Shared by the slot tests (not a test file itself): images, ids and temp roots. */

export const BOOTLOADER = id("acme.bootloader");
export const APP = id("acme.app-fw");

export interface TestImage {
  image: SlotImage;
  bytes: Buffer;
}

export function makeImage(version: string, size = 64 * 1024, component = BOOTLOADER): TestImage {
  const bytes = randomBytes(size);
  return {
    image: {
      releaseId: id(`${component}@${version}`),
      version: encodeVersion(version).toString(),
      fileHash: "0x" + createHash("sha256").update(bytes).digest("hex"),
      size,
    },
    bytes,
  };
}

/** The bytes as a stream of `chunk`-sized pieces, the way a download hands them over. */
export async function* chunksOf(bytes: Uint8Array, chunk = 16 * 1024): AsyncIterable<Uint8Array> {
  for (let at = 0; at < bytes.length; at += chunk) yield bytes.subarray(at, at + chunk);
}

/** A temp directory per test, removed after it. */
export function useTempRoot(prefix: string): { readonly dir: string } {
  const holder = { dir: "" };
  beforeEach(() => (holder.dir = mkdtempSync(path.join(tmpdir(), prefix))));
  afterEach(() => rmSync(holder.dir, { recursive: true, force: true }));
  return holder;
}
