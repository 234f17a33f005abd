/**
 * What the demo expected at each step and what it saw, printed as it happens and summed up at
 * the end. `npm start -- --once` exits 0 only if every step behaved as expected.
 */
export interface StepResult {
  act: string;
  step: string;
  expected: string;
  observed: string;
  ok: boolean;
}

export class StoryLog {
  readonly steps: StepResult[] = [];
  private act = "";

  constructor(private readonly print: (line: string) => void = console.log) {}

  /** A new act of the story: a heading. */
  begin(act: string, what: string): void {
    this.act = act;
    this.print(`\n== ${act}: ${what}`);
  }

  /** Something that happened, with no expectation attached. */
  note(line: string): void {
    this.print(`   ${line}`);
  }

  /** A step whose outcome is checked: printed with ✓ or ✗ and kept for the summary. */
  check(step: string, expected: string, observed: string, ok: boolean): boolean {
    this.steps.push({ act: this.act, step, expected, observed, ok });
    this.print(`  ${ok ? "✓" : "✗"} ${step}: ${observed}${ok ? "" : ` (expected ${expected})`}`);
    return ok;
  }

  get allOk(): boolean {
    return this.steps.length > 0 && this.steps.every((s) => s.ok);
  }

  /** The summary table: one row per checked step. */
  summary(): string {
    const rows = this.steps.map((s) => [s.ok ? "✓" : "✗", s.act, s.step, s.observed]);
    const header = ["", "act", "step", "observed"];
    const widths = header.map((h, i) => Math.min(i === 3 ? 70 : 40, Math.max(h.length, ...rows.map((r) => r[i].length))));
    const cut = (text: string, width: number) => (text.length > width ? text.slice(0, width - 1) + "…" : text.padEnd(width));
    const line = (cells: string[]) =>
      cells
        .map((c, i) => cut(c, widths[i]))
        .join("  ")
        .trimEnd();
    const failed = this.steps.filter((s) => !s.ok);
    return [
      line(header),
      line(widths.map((w) => "-".repeat(w))),
      ...rows.map(line),
      "",
      failed.length === 0
        ? `all ${this.steps.length} steps behaved as expected`
        : `${failed.length} of ${this.steps.length} steps did not behave as expected:\n` +
          failed.map((s) => `  ✗ ${s.act} / ${s.step}: expected ${s.expected}, observed ${s.observed}`).join("\n"),
    ].join("\n");
  }
}

/**
 * Polls `probe` until `done` holds or `timeoutMs` passes; returns the last value either way, so
 * that the caller reports what it saw rather than only that it waited in vain.
 */
export async function waitFor<T>(
  probe: () => Promise<T> | T,
  done: (value: T) => boolean,
  timeoutMs: number,
  everyMs = 500,
): Promise<{ value: T; met: boolean; ms: number }> {
  const start = Date.now();
  for (;;) {
    const value = await probe();
    if (done(value)) return { value, met: true, ms: Date.now() - start };
    if (Date.now() - start >= timeoutMs) return { value, met: false, ms: Date.now() - start };
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
