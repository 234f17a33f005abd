import fs from "node:fs";
import type { FileHandle } from "node:fs/promises";

/** One call of `fs.promises.open` as the code under test made it. */
export interface OpenCall {
  file: string;
  flags?: string | number;
  mode?: number;
}

/**
 * Routes every `fs.promises.open` through `hook` until the returned function is called: the hook
 * sees the call, may act before it (plant a file at the name) and after it (look at the file just
 * created, or hand back a handle whose writes fail), and opens the file with `open()`.
 */
export function interceptOpen(hook: (call: OpenCall, open: () => Promise<FileHandle>) => Promise<FileHandle>): () => void {
  const original = fs.promises.open;
  fs.promises.open = ((file: string, flags?: string | number, mode?: number) =>
    hook({ file: String(file), flags, mode }, () => original(file, flags, mode))) as typeof original;
  return () => {
    fs.promises.open = original;
  };
}

/** The permission bits of a file, as `stat` gives them: 0o600, 0o644. */
export async function modeOf(handleOrFile: FileHandle | string): Promise<number> {
  const stat = typeof handleOrFile === "string" ? await fs.promises.stat(handleOrFile) : await handleOrFile.stat();
  return stat.mode & 0o777;
}
