import { Refusal } from "./refusals";

/**
 * One HTTP byte range (RFC 9110 14.1.2) within an entity of `size` bytes: "bytes=a-b", "bytes=a-"
 * or the suffix "bytes=-n". Several ranges, or one outside the entity, are refused (416).
 * Returns undefined when there is no Range header.
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) throw new Refusal("RANGE_NOT_SATISFIABLE", `"${header}" is not a single byte range`, { size });
  let start: number;
  let end: number;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) throw new Refusal("RANGE_NOT_SATISFIABLE", "an empty suffix range", { size });
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (!Number.isSafeInteger(start) || start >= size || end < start) {
    throw new Refusal("RANGE_NOT_SATISFIABLE", `range ${header} is outside the ${size}-byte artifact`, { size });
  }
  return { start, end };
}
