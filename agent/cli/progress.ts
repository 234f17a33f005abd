import type { CliIo } from "./io";

/**
 * A one-line progress bar on stderr, drawn only on a terminal and at most every 100 ms; silent
 * otherwise (pipes, --json, CI logs).
 */
export function progressBar(io: CliIo, enabled: boolean): { update(label: string, done: bigint, total: bigint): void; end(): void } {
  let last = 0;
  let drawn = false;
  const on = enabled && io.isTTY;
  return {
    update(label, done, total) {
      if (!on) return;
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const ratio = total === 0n ? 1 : Number((done * 1000n) / total) / 1000;
      const width = 30;
      const filled = Math.round(ratio * width);
      io.stderr(
        `\r${label.padEnd(10)} [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}% ${mib(done)}/${mib(total)} MiB`,
      );
      drawn = true;
    },
    end() {
      if (drawn) io.stderr("\n");
      drawn = false;
    },
  };
}

function mib(n: bigint): string {
  return (Number(n) / 1048576).toFixed(1);
}
