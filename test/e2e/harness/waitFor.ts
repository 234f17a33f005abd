/**
 * Waiting with a deadline. A failure says what was awaited, the last state seen and, through
 * `context`, the recent output of the processes involved, so a red test explains itself.
 */
export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Extra text for the failure message (e.g. the processes' recent output). */
  context?: () => string;
}

export class WaitTimeout extends Error {}

/**
 * Polls `probe` until it returns something other than undefined/false, and returns that.
 * `probe` may throw while the condition is not met yet (e.g. a server not listening yet): the
 * last error is shown if the deadline passes.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, o: WaitOptions = {}): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 20_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value as T;
      last = value;
    } catch (err) {
      last = err instanceof Error ? `${err.name}: ${err.message}` : err;
    }
    if (Date.now() > deadline) {
      const seen = typeof last === "string" ? last : JSON.stringify(last, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 1);
      throw new WaitTimeout(
        `timed out after ${o.timeoutMs ?? 20_000} ms waiting for ${what}\nlast seen: ${seen?.slice(0, 4000)}${o.context ? `\n${o.context()}` : ""}`,
      );
    }
    await sleep(o.intervalMs ?? 100);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
