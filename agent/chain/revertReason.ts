import type { Interface, ErrorDescription } from "ethers";

/**
 * The custom error a failed call or transaction reverted with, decoded with the contracts'
 * interfaces, or null if none matches. Revert data sits in different places depending on the
 * provider (in-process Hardhat, a JSON-RPC node, ethers' wrapping), so look in each.
 */
export function decodeRevert(err: unknown, interfaces: Interface[]): ErrorDescription | null {
  const data = findRevertData(err);
  if (!data) return null;
  for (const iface of interfaces) {
    try {
      const parsed = iface.parseError(data);
      if (parsed) return parsed;
    } catch {
      // not this interface's error
    }
  }
  return null;
}

/** The revert data in a failed call's error, wherever the provider put it; null when there is none. */
export function findRevertData(err: unknown, depth = 0): string | null {
  if (depth > 5 || err === null || typeof err !== "object") return null;
  const e = err as Record<string, unknown>;
  if (typeof e.data === "string" && e.data.startsWith("0x")) return e.data;
  for (const key of ["data", "error", "info", "cause"]) {
    const found = findRevertData(e[key], depth + 1);
    if (found) return found;
  }
  return null;
}
