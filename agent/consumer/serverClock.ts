/** The largest correction taken from one server's Date header by default (ms): a day. */
export const DEFAULT_MAX_CLOCK_CORRECTION_MS = 24 * 3600_000;

/** A correction smaller than this is not the reason a request was refused as stale (ms). */
const MEANINGFUL_MS = 2000;

/**
 * The time a device signs its requests to one firmware server with: its own clock plus an offset
 * learned from that server's `Date` header when the server refused a request as stale
 * (AUTH_STALE). Kept per server, so a server that lies about the time only spoils the requests
 * signed for itself (they carry its origin); bounded, so no answer moves it further than
 * `maxCorrectionMs`; every change is logged.
 */
export class ServerClock {
  private offset = 0;

  constructor(
    readonly url: string,
    private readonly o: { now?: () => number; maxCorrectionMs?: number; log?: (line: string) => void } = {},
  ) {}

  /** The offset now added to the device's clock for this server (ms). */
  get offsetMs(): number {
    return this.offset;
  }

  /** The time to sign a request for this server with (ms since the epoch). */
  now(): number {
    return this.local() + this.offset;
  }

  private local(): number {
    return (this.o.now ?? Date.now)();
  }

  /**
   * After a stale refusal: takes the server's time from its answer's `Date` header (whole seconds,
   * so the end of that second: never behind the server, which also refuses times before its start). True when the offset moved, so that the request is worth
   * signing again at once; false when the header is missing, unparseable, about what the device
   * already uses, or further off than the bound (the device's clock is then left alone, and logged).
   */
  correctFrom(res: Response): boolean {
    const header = res.headers.get("date");
    const serverMs = header === null ? NaN : Date.parse(header);
    if (!Number.isFinite(serverMs)) return false;
    const wanted = serverMs + 1000 - this.local();
    if (Math.abs(wanted - this.offset) < MEANINGFUL_MS) return false;
    const bound = this.o.maxCorrectionMs ?? DEFAULT_MAX_CLOCK_CORRECTION_MS;
    if (Math.abs(wanted) > bound) {
      this.o.log?.(`clock: ${this.url} says the device's clock is ${fmt(-wanted)} off, more than the ${fmt(bound)} bound: not corrected`);
      return false;
    }
    this.o.log?.(`clock: signing requests to ${this.url} ${fmt(wanted)} from the device's clock (its Date header; it refused the device's time as stale)`);
    this.offset = wanted;
    return true;
  }
}

function fmt(ms: number): string {
  return `${ms >= 0 ? "+" : "-"}${(Math.abs(ms) / 1000).toFixed(1)} s`;
}
