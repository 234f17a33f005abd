/**
 * At most `limit` tasks at once among everyone who shares the limit; the others wait in the order
 * they asked. A DeviceRunner's agents share one (ADR 0012): past what the process's CPU serves,
 * more updates at once only add memory, open files and stalls, and every device finishes last.
 */
export class ConcurrencyLimit {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a concurrency limit must be a whole number of at least 1, not ${limit}`);
  }

  /** Runs `task` once a place is free, and frees it when the task ends, however it ends. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next)
        next(); // the place passes on: `running` stays as it is
      else this.running--;
    }
  }

  /** Tasks running now, and waiting for a place. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }
}
