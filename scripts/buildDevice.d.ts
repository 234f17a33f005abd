// Types of scripts/buildDevice.js, for the tests and the bench that build the device bundle.
import type { Metafile } from "esbuild";

export function buildDevice(o?: {
  dist?: string;
  quiet?: boolean;
}): Promise<{ dir: string; tarball: string; files: { file: string; bytes: number }[]; metafile: Metafile }>;
