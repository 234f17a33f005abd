import { Refusal } from "./refusals";

/**
 * One HTTP byte range (RFC 9110 14.1.2, 14.2) within an entity of `size` bytes: "bytes=a-b",
 * "bytes=a-" or the suffix "bytes=-n". A header that is not one valid range (another unit,
 * several ranges, a reversed range) is ignored, as the RFC allows: the whole entity is served.
 * A valid range that starts past the end is refused (416, with Content-Range: bytes * /size).
 * Returns undefined when the whole entity is to be served.
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (!Number.isSafeInteger(suffix)) return undefined;
    if (suffix === 0) throw new Refusal("RANGE_NOT_SATISFIABLE", "an empty suffix range", { size });
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const last = m[2] === "" ? size - 1 : Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(last)) return undefined;
  if (start >= size) throw new Refusal("RANGE_NOT_SATISFIABLE", `range ${header} starts past the ${size}-byte artifact`, { size });
  if (last < start) return undefined;
  return { start, end: Math.min(last, size - 1) };
}
