import type * as z from "zod";

/** Where an issue is, as a person reads it: `waves.0.1`, `set.site`; `the body` at the top. */
export function issuePath(path: readonly PropertyKey[], top = "the body"): string {
  return path.length === 0 ? top : path.map(String).join(".");
}

/**
 * The first issue of a failed parse, as one line that names the field and says what it must be
 * ("waves.0: wave 0 must be a list of 1 to 100000 device ids"). A record's key issue names the key.
 */
export function describeIssues(error: z.core.$ZodError, top = "the body"): string {
  const issue = error.issues[0];
  if (!issue) return `${top} is not of its form`;
  const inner = issue.code === "invalid_key" || issue.code === "invalid_element" ? issue.issues[0] : undefined;
  const where = issuePath(issue.path, top);
  return inner ? `${where}: ${inner.message}` : `${where}: ${issue.message}`;
}

/** The code an issue carries (`params.code` of a refinement), if any: the first in nested key or element issues too. */
export function issueCode(issue: z.core.$ZodIssue | undefined): string | undefined {
  if (!issue) return undefined;
  const own = (issue as { params?: { code?: unknown } }).params?.code;
  if (typeof own === "string") return own;
  if (issue.code === "invalid_key" || issue.code === "invalid_element" || issue.code === "invalid_union") {
    const nested = issue.code === "invalid_union" ? issue.errors.flat() : issue.issues;
    for (const n of nested) {
      const c = issueCode(n);
      if (c) return c;
    }
  }
  return undefined;
}
