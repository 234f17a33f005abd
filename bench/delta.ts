/**
 * Delta updates (issue 19, item 8, ADR 0018): bytes transferred and time, delta against the whole
 * image, for a realistic pair: one C program built twice by the machine's gcc with a one-line
 * change early in main (so the code after it moves and every address in it changes), statically
 * linked (about 1 MiB of ELF). Without gcc, a synthetic image with a shifted code section.
 *
 *   npm run bench:delta            figures as text
 *   npm run bench:delta -- --json  one JSON document
 *
 * Measures the encoder (author side), the stored artifacts' sizes (encrypted and chunked, what a
 * device downloads: the full artifact and the delta's), and applying the delta on the device
 * (streaming, from the base file, as the device agent does), with its peak RSS growth.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createHash } from "node:crypto";
import { encodeDelta } from "../agent/delta/deltaEncode";
import { applyDelta } from "../agent/delta/deltaPatch";
import { artifactSize, DEFAULT_CIPHER_CHUNK_SIZE } from "../agent/crypto/artifactCipher";

const json = process.argv.includes("--json") || process.env.BENCH_JSON === "1";
const dir = mkdtempSync(path.join(tmpdir(), "ota-bench-delta-"));

function cSource(change: boolean, functions: number): string {
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), 1 + (seed % n));
  const lines = ["#include <stdio.h>", "#include <string.h>"];
  for (let i = 0; i < functions; i++) {
    const [a, b, c] = [rnd(1000), rnd(1000), rnd(9)];
    lines.push(`static const char *msg_${i} = "sensor ${i} reading out of range: %d";`);
    lines.push(
      `int f_${i}(int x) { int y = x * ${a} + ${b}; for (int k = 0; k < ${c}; k++) y ^= (y << ${c}) + k; if (y % ${a} == 7) printf(msg_${i}, y); return y; }`,
    );
  }
  lines.push("int main(int argc, char **argv) { int s = argc;");
  if (change) lines.push('  s += strlen(argv[0]) * 3; printf("build with calibration fix\\n");');
  for (let i = 0; i < functions; i++) lines.push(`  s += f_${i}(s);`);
  lines.push("  return s & 1; }");
  return lines.join("\n") + "\n";
}

function pair(): { base: Buffer; target: Buffer; kind: string } {
  const functions = Number(process.env.BENCH_DELTA_FUNCTIONS ?? 1500);
  try {
    for (const [name, change] of [
      ["v1", false],
      ["v2", true],
    ] as const) {
      writeFileSync(path.join(dir, `${name}.c`), cSource(change, functions));
      execFileSync("gcc", ["-O2", "-static", "-o", path.join(dir, `${name}.elf`), path.join(dir, `${name}.c`)], { stdio: "ignore" });
    }
    return {
      base: readFileSync(path.join(dir, "v1.elf")),
      target: readFileSync(path.join(dir, "v2.elf")),
      kind: `gcc -O2 -static, ${functions} functions, one line added to main`,
    };
  } catch {
    const base = Buffer.alloc(1 << 20);
    for (let i = 0; i < base.length; i++) base[i] = (i * 7 + (i >> 5)) & 0xff;
    for (let i = 0; i + 4 <= base.length; i += 24) base.writeUInt32LE(0x400000 + i, i);
    const target = Buffer.concat([base.subarray(0, 4096), Buffer.alloc(64, 0x90), base.subarray(4096)]);
    for (let i = 4160; i + 4 <= target.length; i += 24) target.writeUInt32LE(target.readUInt32LE(i) + 64, i);
    return { base, target, kind: "synthetic 1 MiB image, code section shifted by 64 bytes (no gcc)" };
  }
}

async function main() {
  const { base, target, kind } = pair();
  const baseFile = path.join(dir, "base.bin");
  writeFileSync(baseFile, base);
  const sha = (b: Buffer) => "0x" + createHash("sha256").update(b).digest("hex");
  let t = performance.now();
  const delta = encodeDelta(base, target);
  const encodeMs = performance.now() - t;
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  t = performance.now();
  const hash = createHash("sha256");
  for await (const piece of applyDelta(
    baseFile,
    (async function* () {
      for (let o = 0; o < delta.length; o += 64 * 1024) yield delta.subarray(o, o + 64 * 1024);
    })(),
    { baseSize: BigInt(base.length), baseHash: sha(base), targetSize: BigInt(target.length), targetHash: sha(target) },
  )) {
    hash.update(piece);
    peak = Math.max(peak, process.memoryUsage().rss);
  }
  const applyMs = performance.now() - t;
  if ("0x" + hash.digest("hex") !== sha(target)) throw new Error("the delta did not rebuild the target");
  const fullArtifact = Number(artifactSize(BigInt(target.length), DEFAULT_CIPHER_CHUNK_SIZE));
  const deltaArtifact = Number(artifactSize(BigInt(delta.length), DEFAULT_CIPHER_CHUNK_SIZE));
  const figures = {
    pair: kind,
    baseBytes: base.length,
    targetBytes: target.length,
    fullArtifactBytes: fullArtifact,
    deltaBytes: delta.length,
    deltaArtifactBytes: deltaArtifact,
    bytesSavedPercent: Number((100 * (1 - deltaArtifact / fullArtifact)).toFixed(1)),
    encodeMs: Math.round(encodeMs),
    applyMs: Math.round(applyMs),
    applyPeakRssGrowthMiB: Number(((peak - rss0) / 2 ** 20).toFixed(1)),
  };
  if (json) console.log(JSON.stringify(figures, null, 2));
  else {
    console.log(`pair: ${kind}`);
    console.log(`image ${target.length} bytes (base ${base.length}); full artifact ${fullArtifact} bytes`);
    console.log(`delta ${delta.length} bytes; delta artifact ${deltaArtifact} bytes: ${figures.bytesSavedPercent}% fewer bytes fetched`);
    console.log(
      `encode (author) ${figures.encodeMs} ms; apply (device, streaming) ${figures.applyMs} ms, peak RSS growth ${figures.applyPeakRssGrowthMiB} MiB`,
    );
  }
}

main()
  .finally(() => rmSync(dir, { recursive: true, force: true }))
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
