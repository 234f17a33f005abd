/**
 * A plain-text table: a header row, then one row per entry, columns padded to their widest cell
 * and separated by two spaces. Columns named in `right` are right-aligned (counts).
 */
export function formatTable(headers: string[], rows: string[][], right: ReadonlySet<number> = new Set()): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]) : i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

/** A long 0x identifier, shortened to its first 10 characters (enough to tell ids apart by eye). */
export function shortHex(hex: string): string {
  return hex.length > 12 ? `${hex.slice(0, 10)}…` : hex;
}

/** A size in bytes as people read it: 512 bytes, 3.4 KiB, 12.0 MiB, 1.5 GiB. */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 * 1024) return `${(n / 1024 / 1024 / 1024).toFixed(1)} GiB`;
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/** A duration in milliseconds as people read it: in whole hours, else whole minutes, else seconds. */
export function describeMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms / 1000} s`;
}
