/**
 * Exponential backoff with jitter: the delay before attempt `attempt` (1 = the first retry) is
 * uniform in [floor × c, c], c = min(maxMs, baseMs × 2^(attempt-1)). `floor` 0 (the default) is
 * "full jitter", 0.5 "equal jitter" (never sooner than half the step). Jitter matters at fleet
 * scale: thousands of devices blocked by the same server outage would otherwise all come back at
 * the same instant and knock it over again.
 */
export function backoffDelayMs(attempt: number, o: { baseMs: number; maxMs: number; floor?: number }, random: () => number = Math.random): number {
  const ceiling = Math.min(o.maxMs, o.baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  const floor = Math.min(Math.max(o.floor ?? 0, 0), 1);
  return Math.floor(ceiling * (floor + (1 - floor) * random()));
}
