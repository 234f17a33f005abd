import { execFileSync } from "node:child_process";
import { DEFAULT_CIPHER_CHUNK_SIZE } from "../../agent/crypto/artifactCipher";

const MiB = 1024 * 1024;

/** The median of some figures. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** A figure rounded to `digits` decimals, as the benches print them. */
export const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Peak resident memory of this process so far, in MiB. */
export const peakRssMiB = () => Math.round((process.resourceUsage().maxRSS * 1024) / MiB);

/**
 * This CPU's OpenSSL throughput for `algorithm` (e.g. "aes-256-gcm", "sha256") on chunk-sized
 * buffers, in MiB/s, measured now: the ceiling a benchmark's figures are set beside. Null when
 * openssl is missing.
 */
export function opensslMBps(algorithm: string): number | null {
  try {
    const out = execFileSync("openssl", ["speed", "-evp", algorithm, "-seconds", "2", "-bytes", String(DEFAULT_CIPHER_CHUNK_SIZE)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    const kBps = Number(out.trim().split("\n").pop()!.trim().split(/\s+/).pop()!.replace(/k$/, ""));
    return (kBps * 1000) / MiB;
  } catch {
    return null;
  }
}
