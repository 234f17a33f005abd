/**
 * Exponential backoff with full jitter (the AWS architecture blog's "full jitter"): the delay before
 * attempt `attempt` (1 = the first retry) is uniform in [0, min(maxMs, baseMs * 2^(attempt-1))].
 * Jitter matters at fleet scale: thousands of devices blocked by the same server outage would
 * otherwise all come back at the same instant and knock it over again.
 */
export function backoffDelayMs(attempt: number, o: { baseMs: number; maxMs: number }, random: () => number = Math.random): number {
  const ceiling = Math.min(o.maxMs, o.baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.floor(random() * ceiling);
}
